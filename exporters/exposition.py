"""The `/metrics` endpoint, and prometheus-client's multiprocess mode for `serve --workers N`.

Prometheus asks for OpenMetrics (`Accept: application/openmetrics-text`), the only
format that carries exemplars; anything else gets the classic text format.

With several workers each process writes its values to files in
`PROMETHEUS_MULTIPROC_DIR` and a scrape, answered by any one worker, sums them
(counters and histograms add up, the in-flight gauge is summed over live
workers). What that mode loses: exemplars (prometheus-client cannot store them
in the shared files, so rolescope does not record any) and the per-process
`process_*` / `python_gc_*` series (they would describe only the worker that
happened to answer, so rolescope leaves them out).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from starlette.requests import Request
from starlette.responses import Response

from rolescope.errors import EnvironmentProblem
from rolescope.exporters.metrics import MULTIPROC_ENV

METRICS_PATH: Final = "/metrics"


def render(registry: CollectorRegistry, accept: str | None) -> tuple[bytes, str]:
    """The exposition body and its content type, chosen from the Accept header."""
    encoder, content_type = choose_encoder(accept or "")
    return encoder(registry), content_type


def multiprocess_registry(directory: str | os.PathLike[str]) -> CollectorRegistry:
    """A registry that sums every worker's files (built per scrape, as prometheus-client advises)."""
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return registry


def metrics_endpoint(registry: CollectorRegistry | None = None):  # type: ignore[no-untyped-def]
    """A Starlette/FastAPI endpoint serving `registry`, or every worker's files in multiprocess mode.

    Example: `app.add_route("/metrics", metrics_endpoint(metrics.registry), include_in_schema=False)`.
    """
    directory = os.environ.get(MULTIPROC_ENV)

    async def metrics(request: Request) -> Response:
        source = multiprocess_registry(directory) if directory else registry
        if source is None:
            raise RuntimeError("metrics_endpoint needs a registry outside multiprocess mode")
        body, content_type = render(source, request.headers.get("accept"))
        return Response(body, media_type=None, headers={"Content-Type": content_type})

    return metrics


def prepare_multiprocess_dir(directory: Path) -> Path:
    """Empty (or create) the shared metrics directory and point prometheus-client at it.

    Must run in the parent before the workers start: prometheus-client picks its
    value storage when first imported, from `PROMETHEUS_MULTIPROC_DIR`. Files left by
    an earlier run would otherwise be added to this run's totals.
    """
    directory = directory.resolve()
    try:
        if directory.exists():
            shutil.rmtree(directory)
        directory.mkdir(parents=True)
    except OSError as exc:
        raise EnvironmentProblem(
            f"cannot prepare the metrics directory {directory} for multiple workers ({exc.strerror}); "
            f"set {MULTIPROC_ENV} to a writable, empty directory."
        ) from exc
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def default_multiprocess_dir(base: Path | None = None) -> Path:
    """`$PROMETHEUS_MULTIPROC_DIR` if set, else a per-port folder under the temp directory."""
    configured = os.environ.get(MULTIPROC_ENV)
    if configured:
        return Path(configured)
    import tempfile

    return (base or Path(tempfile.gettempdir())) / f"rolescope-metrics-{os.getpid()}"


def mark_worker_dead(pid: int) -> None:
    """Drop a finished worker's live gauges (the in-flight count) from the totals."""
    directory = os.environ.get(MULTIPROC_ENV)
    if directory:
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
