"""The pure-ASGI metrics and server-span middlewares on a tiny FastAPI app served by real uvicorn."""

from __future__ import annotations

import httpx
from fastapi import FastAPI, Request
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from rolescope.exporters import names
from rolescope.exporters.exposition import METRICS_PATH, metrics_endpoint
from rolescope.exporters.metrics import ServiceMetrics
from rolescope.exporters.middleware import (
    ROLE_STATE_KEY,
    MetricsMiddleware,
    RouteTemplates,
    ServerSpanMiddleware,
    status_class,
)


def _app(metrics: ServiceMetrics, provider: TracerProvider | None = None) -> FastAPI:
    app = FastAPI()

    @app.get("/items/{item_id}")
    async def item(item_id: str, request: Request) -> dict[str, str]:
        setattr(request.state, ROLE_STATE_KEY, "sherlock" if item_id != "stranger" else "mallory")
        return {
            "item": item_id,
            "trace_id": format(trace.get_current_span().get_span_context().trace_id, "032x"),
        }

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("planted")

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    app.add_route(METRICS_PATH, metrics_endpoint(metrics.registry), include_in_schema=False)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(ServerSpanMiddleware, tracer_provider=provider)
    return app


def _metrics() -> ServiceMetrics:
    return ServiceMetrics(CollectorRegistry(), roles=["sherlock"])


def test_status_classes() -> None:
    assert [status_class(s) for s in (101, 200, 204, 302, 404, 499, 500, 503, 0, 999)] == [
        "1xx",
        "2xx",
        "2xx",
        "3xx",
        "4xx",
        "4xx",
        "5xx",
        "5xx",
        "5xx",
        "5xx",
    ]


def test_route_templates_resolve_before_the_router_runs() -> None:
    templates = RouteTemplates(_app(_metrics()).router.routes)
    assert templates.resolve("/items/42") == "/items/{item_id}"
    assert templates.resolve("/healthz") == "/healthz"
    assert templates.resolve("/nowhere/42") == names.UNMATCHED_ROUTE


# A role named by a route handler, with no version: the bounded `<other>` version.
NO_VERSION = {"role_version": names.OTHER_ROLE_VERSION}


def test_requests_are_counted_by_template_method_status_class_and_role(asgi_server) -> None:  # type: ignore[no-untyped-def]
    metrics = _metrics()
    server = asgi_server(_app(metrics))
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for item_id in ("1", "2", "3", "stranger"):
            assert client.get(f"/items/{item_id}").status_code == 200
        assert client.get("/nowhere/at/all").status_code == 404
        assert client.post("/items/1").status_code == 405
        assert client.get("/boom").status_code == 500
    get = metrics.registry.get_sample_value
    http = names.HTTP_REQUESTS_TOTAL
    items_ok = {"route": "/items/{item_id}", "method": "GET", "status_class": "2xx", **NO_VERSION}
    assert get(http, {**items_ok, "role": "sherlock"}) == 3
    assert get(http, {**items_ok, "role": names.UNKNOWN_ROLE}) == 1
    assert (
        get(
            http,
            {
                "route": names.UNMATCHED_ROUTE,
                "method": "GET",
                "status_class": "4xx",
                "role": names.UNKNOWN_ROLE,
                **NO_VERSION,
            },
        )
        == 1
    )
    assert (
        get(
            http,
            {
                "route": "/items/{item_id}",
                "method": "POST",
                "status_class": "4xx",
                "role": names.UNKNOWN_ROLE,
                **NO_VERSION,
            },
        )
        == 1
    )
    boom = {"route": "/boom", "method": "GET", "status_class": "5xx", "role": names.UNKNOWN_ROLE}
    boom.update(NO_VERSION)
    assert get(http, boom) == 1
    assert get(f"{names.HTTP_REQUEST_DURATION}_count", {**items_ok, "role": "sherlock"}) == 3
    assert get(names.HTTP_IN_FLIGHT, {"route": "/items/{item_id}"}) == 0


def test_one_server_span_per_request_except_scrapes_and_probes(asgi_server) -> None:  # type: ignore[no-untyped-def]
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    server = asgi_server(_app(_metrics(), provider))
    parent_trace = "4bf92f3577b34da6a3ce929d0e0e4736"
    with httpx.Client(base_url=server.url, timeout=10) as client:
        reply = client.get("/items/7").json()
        client.get("/healthz")
        client.get(METRICS_PATH)
        continued = client.get(
            "/items/8", headers={"traceparent": f"00-{parent_trace}-00f067aa0ba902b7-01"}
        ).json()
        client.get("/boom")  # last: the server closes the connection after an unhandled error
    spans = exporter.get_finished_spans()
    assert [span.name for span in spans] == ["GET /items/{item_id}", "GET /items/{item_id}", "GET /boom"]
    first, remote_child, failed = spans
    assert first.kind == trace.SpanKind.SERVER
    assert format(first.context.trace_id, "032x") == reply["trace_id"]
    assert first.attributes["http.route"] == "/items/{item_id}"
    assert first.attributes["http.response.status_code"] == 200
    assert failed.attributes["http.response.status_code"] == 500
    assert not failed.status.is_ok
    assert continued["trace_id"] == parent_trace
    assert remote_child.parent is not None and remote_child.parent.span_id == 0x00F067AA0BA902B7


def test_without_a_tracer_every_request_still_gets_its_own_trace_id(asgi_server) -> None:  # type: ignore[no-untyped-def]
    server = asgi_server(_app(_metrics(), None))
    with httpx.Client(base_url=server.url, timeout=10) as client:
        ids = {client.get(f"/items/{n}").json()["trace_id"] for n in range(5)}
    assert len(ids) == 5
    assert "0" * 32 not in ids


def test_metrics_endpoint_speaks_openmetrics_when_asked(asgi_server) -> None:  # type: ignore[no-untyped-def]
    metrics = _metrics()
    server = asgi_server(_app(metrics))
    with httpx.Client(base_url=server.url, timeout=10) as client:
        client.get("/items/1")
        classic = client.get(METRICS_PATH)
        open_metrics = client.get(
            METRICS_PATH, headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
    assert classic.headers["content-type"].startswith("text/plain")
    assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
    assert open_metrics.text.rstrip().endswith("# EOF")
    assert names.HTTP_REQUESTS_TOTAL in classic.text
