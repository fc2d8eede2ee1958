"""The locustfile of rolescope: replays shadow traffic, settings from `ROLESCOPE_LOAD_*` variables.

Works the same under `rolescope load` and plain Locust, as a single process,
a master or a worker:

    ROLESCOPE_LOAD_USER=stream locust -f locustfile.py --headless -H http://127.0.0.1:8080 -u 20 -t 1m
    ROLESCOPE_LOAD_RATE=50 ROLESCOPE_LOAD_PROCESSES=2 locust -f locustfile.py --master ...
    ROLESCOPE_LOAD_PROCESSES=2 locust -f locustfile.py --worker --master-host ...

The master (or the single process) appends every request's sample to
`ROLESCOPE_LOAD_SAMPLES` and serves Prometheus metrics on
`ROLESCOPE_LOAD_METRICS_PORT` when set.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gevent.ssl
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from rolescope.exporters.locust_exporter import LoadMetrics, serve_load_metrics
from rolescope.loadtests.collector import Role, SampleCollector
from rolescope.loadtests.load_config import load_config_from_env
from rolescope.loadtests.replay_context import ReplayContext
from rolescope.loadtests.shapes import make_shape
from rolescope.loadtests.users import ReplayUserBase

CONFIG = load_config_from_env()
_CONTEXT = ReplayContext.from_config(CONFIG)
_CA_FILE = str(CONFIG.target.ca_file) if CONFIG.target.ca_file else None
_CLIENT_CERT = (
    (str(CONFIG.target.client_cert), str(CONFIG.target.client_key))
    if CONFIG.target.client_cert and CONFIG.target.client_key
    else None
)


def _client_context(
    ca_file: str | None, client_cert: tuple[str, str] | None, insecure: bool
) -> Callable[..., gevent.ssl.SSLContext]:
    # geventhttpclient passes its own (empty) cafile; the one given with --ca must win.
    def make(**_: Any) -> gevent.ssl.SSLContext:
        context = gevent.ssl.create_default_context(cafile=ca_file)
        if insecure:
            context.check_hostname = False
            context.verify_mode = gevent.ssl.CERT_NONE
        if client_cert is not None:
            # Mutual TLS: every connection of every user presents --client-cert.
            context.load_cert_chain(*client_cert)
        return context

    return make


class ReplayUser(ReplayUserBase):
    """Replays sessions as recorded: streamed turns stream, JSON turns do not."""

    replay = _CONTEXT
    force_stream = {"replay": None, "chat": False, "stream": True}[CONFIG.user]
    network_timeout = CONFIG.timeout_s
    connection_timeout = CONFIG.timeout_s
    # Certificates are verified unless --insecure (Locust alone would not verify them).
    insecure = CONFIG.target.insecure
    ssl_context_factory = staticmethod(_client_context(_CA_FILE, _CLIENT_CERT, CONFIG.target.insecure))


if CONFIG.shape is not None:
    LoadShape = make_shape(CONFIG.shape, CONFIG.users, CONFIG.spawn_rate, CONFIG.duration_s)


@events.init.add_listener
def _on_init(environment: Any, **_: Any) -> None:
    runner = environment.runner
    role: Role = (
        "master"
        if isinstance(runner, MasterRunner)
        else ("worker" if isinstance(runner, WorkerRunner) else "local")
    )
    metrics = LoadMetrics() if CONFIG.metrics_port is not None and role != "worker" else None
    collector = SampleCollector(CONFIG.samples if role != "worker" else None, metrics)
    collector.attach(environment.events, role)
    if metrics is not None and CONFIG.metrics_port is not None:
        metrics.track_users(lambda: float(environment.runner.user_count if environment.runner else 0))
        serve_load_metrics(metrics, CONFIG.metrics_port, CONFIG.metrics_host)
