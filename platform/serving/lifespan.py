"""The app's one lifespan: every resource entered on one `AsyncExitStack`, left in reverse order.

Start-up, in order: the memory meter (so its window covers everything), the
telemetry flush (registered early, so spans from the rest of shutdown are still
exported), the session store, the inference backends, shadow mirroring (its
running mirrors are cancelled at shutdown), role reloads (SIGHUP, `--watch`),
shadow-traffic capture, the metrics port, and last the drain hook on the server's
exit signals (which lets open WebSockets close with their terminal frames before
the server goes on).
Shutdown undoes them the other way round: the drain hook goes first, the meter
stops last. A resource that fails to start unwinds the ones entered before it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from functools import partial

from rolescope.serving.components import ServiceComponents
from rolescope.serving.exit_signals import call_on_hangup, drain_on_exit_signals
from rolescope.serving.memory_meter import metering
from rolescope.serving.metrics_port import metrics_port_served
from rolescope.serving.reload_signal import hangup_came_while_starting, reload_on_hangup
from rolescope.serving.tls import reload_tls_files
from rolescope.storage.base import SessionStore


@asynccontextmanager
async def _opened(store: SessionStore) -> AsyncIterator[None]:
    await store.open()
    try:
        yield
    finally:
        await store.close()


async def _close_backends(components: ServiceComponents) -> None:
    # The backends serving at shutdown: a reload may have replaced those of start-up.
    for backend in components.distinct_backends():
        await backend.aclose()


@asynccontextmanager
async def _reloading(components: ServiceComponents) -> AsyncIterator[None]:
    reloader = components.reloader
    if components.settings.watch_roles:
        reloader.start_watching(components.settings.watch_interval_s)
    try:
        with reload_on_hangup(reloader.request):
            yield
    finally:
        await reloader.aclose()


@asynccontextmanager
async def service_lifespan(components: ServiceComponents) -> AsyncIterator[None]:
    async with AsyncExitStack() as stack:
        if components.memory_meter is not None:
            stack.enter_context(metering(components.memory_meter))
        if components.telemetry is not None:
            stack.callback(components.telemetry.close)
        await stack.enter_async_context(_opened(components.store))
        stack.push_async_callback(_close_backends, components)
        components.mirror.start()
        stack.push_async_callback(components.mirror.aclose)  # before the backends it answers with
        # Read before `_reloading` takes it: a worker builds its SSL context before its app, so TLS
        # files rewritten while it was starting are read again as well.
        hangup_while_starting = hangup_came_while_starting()
        await stack.enter_async_context(_reloading(components))
        if components.capture is not None:
            components.capture.start()
            stack.callback(components.capture.close)
        stack.enter_context(metrics_port_served(components.settings, components.metrics))
        stack.enter_context(drain_on_exit_signals(components.drain, components.websockets.wait_closed))
        if components.settings.tls_cert is not None:
            # Rotation: a SIGHUP loads the certificate, key and client CA files again.
            metrics = components.telemetry.metrics if components.telemetry is not None else None
            reload = partial(reload_tls_files, metrics.tls_reload) if metrics else reload_tls_files
            stack.enter_context(call_on_hangup(reload))
            if hangup_while_starting:
                reload()
        yield
