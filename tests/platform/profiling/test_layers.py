"""Samples by layer: each frame's module decides, the event loop is its own line, a diff names the layer."""

from __future__ import annotations

import pytest

from rolescope.profiling.collapsed import Profile, parse_collapsed
from rolescope.profiling.compare import compare_layers, compare_profiles
from rolescope.profiling.layers import (
    BUSINESS,
    CAPTURE,
    EVENT_LOOP,
    FRAMEWORK,
    INFERENCE,
    OTHER,
    STORAGE,
    TELEMETRY,
    WAITING,
    attribute,
    describe,
    frame_layer,
    layer_table,
)

# Frames as py-spy writes them (shortened to the path from the top-most package folder).
ROOT = (
    "_run_module_as_main (<frozen runpy>:173);main (cli.py:45);register.<locals>.serve (commands/serve.py:27)"
)
LOOP = f"{ROOT};run_server (service/server.py:100);Runner.run (asyncio/runners.py:86)"
ASGI = (
    f"{LOOP};RequestResponseCycle.run_asgi (uvicorn/protocols/http/httptools_impl.py:420)"
    ";TelemetryMiddleware.__call__ (exporters/middleware.py:163)"
    ";APIRouter.app (fastapi/routing.py:2908)"
)
CHAT = f"{ASGI};chat (service/routes.py:80);ChatService.prepare (service/chat.py:120)"
POOL = "Thread._bootstrap (threading.py:988);Thread.run (threading.py:971)"


@pytest.mark.parametrize(
    ("frame", "layer"),
    [
        ("Runner.run (asyncio/runners.py:86)", EVENT_LOOP),
        ("BaseEventLoop._run_once (asyncio/base_events.py:1922)", EVENT_LOOP),
        ("Loop.run_until_complete (uvloop/__init__.py:82)", EVENT_LOOP),
        ("RequestResponseCycle.send (uvicorn/protocols/http/httptools_impl.py:463)", FRAMEWORK),
        ("Request.body (starlette/requests.py:255)", FRAMEWORK),
        ("Lock.acquire (asyncio/locks.py:114)", FRAMEWORK),
        ("EventSourceResponse._stream (sse_starlette/sse.py:230)", FRAMEWORK),
        ("serve_forever (service/server.py:84)", FRAMEWORK),
        ("ChatService.prepare (service/chat.py:120)", BUSINESS),
        ("SimulatorBackend.stream (inference/simulator.py:122)", INFERENCE),
        ("SqliteSessionStore.save_exchange (storage/sqlite_store.py:90)", STORAGE),
        ("Redis.execute_command (redis/client.py:600)", STORAGE),
        ("TelemetryMiddleware.__call__ (exporters/middleware.py:163)", TELEMETRY),
        ("Histogram.observe (prometheus_client/metrics.py:660)", TELEMETRY),
        ("ContextVarsRuntimeContext.attach (context/contextvars_context.py:37)", TELEMETRY),
        ("CaptureSink.write (capture/sink.py:70)", CAPTURE),
        # Full file names (py-spy --full-filenames, other profilers, a wheel install).
        ("Server.serve (/usr/lib/python3/dist-packages/uvicorn/server.py:67)", FRAMEWORK),
        (
            "prepare (/w/build/__editable__.rolescope-0.1.0-py3-none-any/rolescope/service/chat.py:1)",
            BUSINESS,
        ),
        ("stream (/src/rolescope/platform/inference/simulator.py:9)", INFERENCE),
        ("_run_once (/root/.pyenv/versions/3.11.7/lib/python3.11/asyncio/base_events.py:1)", EVENT_LOOP),
        ("dumps (json/__init__.py:231)", None),
        ("TypeAdapter.validate_python (pydantic/type_adapter.py:398)", None),
        ('process:"python -m rolescope serve"', None),
    ],
)
def test_each_frame_belongs_to_the_layer_of_its_module(frame: str, layer: str | None) -> None:
    assert frame_layer(frame) == layer


def test_a_leaf_no_layer_owns_counts_for_its_nearest_caller_that_has_one() -> None:
    encoder = "JSONEncoder.iterencode (json/encoder.py:205)"
    render = "JSONResponse.render (starlette/responses.py:190)"
    assert attribute(tuple(f"{ASGI};{render};{encoder}".split(";"))) == (FRAMEWORK, render)
    prepare = "ChatService.prepare (service/chat.py:120)"
    assert attribute(tuple(f"{CHAT};{encoder}".split(";"))) == (BUSINESS, prepare)
    idle = f"{POOL};_worker (concurrent/futures/thread.py:69)"
    assert attribute(tuple(idle.split(";"))) == (WAITING, "_worker (concurrent/futures/thread.py:69)")
    start_up = f"{ROOT};import_module (importlib/__init__.py:126)"
    assert attribute(tuple(start_up.split(";"))) == (OTHER, "import_module (importlib/__init__.py:126)")


def profile_of(**counts: int) -> Profile:
    stacks = {
        "loop": LOOP,
        "send": f"{ASGI};RequestResponseCycle.send (uvicorn/protocols/http/httptools_impl.py:463)",
        "prepare": CHAT,
        "planted": f"{CHAT};SimulatorBackend.stream (inference/simulator.py:122)"
        ";_planted_cpu_work (inference/simulator.py:36)",
        "tokens": f"{CHAT};SimulatorBackend.stream (inference/simulator.py:122)",
        "store": f"{POOL};SqliteSessionStore.save_exchange (storage/sqlite_store.py:90)",
        "observe": f"{ASGI};Histogram.observe (prometheus_client/metrics.py:660)",
        "idle": f"{POOL};_worker (concurrent/futures/thread.py:69)",
    }
    return parse_collapsed("".join(f"{stacks[name]} {n}\n" for name, n in counts.items() if n))


def test_the_table_leads_with_layers_names_the_event_loop_and_lists_top_functions() -> None:
    profile = profile_of(loop=30, send=25, prepare=10, tokens=15, store=5, observe=5, idle=10)
    rows = layer_table(profile, top=2)
    assert [row.layer for row in rows] == [
        EVENT_LOOP,
        FRAMEWORK,
        INFERENCE,
        BUSINESS,
        WAITING,
        STORAGE,
        TELEMETRY,
    ]
    assert sum(row.share for row in rows) == pytest.approx(1.0)
    loop = rows[0]
    assert loop.share == pytest.approx(0.30)
    assert loop.top_functions == (("Runner.run (asyncio/runners.py:86)", pytest.approx(0.30)),)
    framework = rows[1]
    assert framework.top_functions[0][0].startswith("RequestResponseCycle.send")
    lines = describe(rows)
    assert lines[0] == "event loop 30.0 % — Runner.run 30.0 %"
    assert lines[2] == "inference 15.0 % — SimulatorBackend.stream 15.0 %"
    assert layer_table(Profile()) == []


def test_a_layer_diff_names_the_layer_that_grew_and_the_function_within_it() -> None:
    baseline = [profile_of(loop=40 + i, send=30, prepare=10, tokens=10, store=5) for i in range(4)]
    candidate = [
        profile_of(loop=40 + i, send=30, prepare=10, tokens=10, store=5, planted=40) for i in range(4)
    ]
    changes = compare_layers(baseline, candidate)
    first = changes[0]
    assert (first.layer, first.direction, first.significant) == (INFERENCE, "grew", True)
    assert first.function == "_planted_cpu_work (inference/simulator.py:36)"
    assert first.candidate_share > first.baseline_share
    shrank = {c.layer for c in changes if c.significant and c.direction == "shrank"}
    assert EVENT_LOOP in shrank and FRAMEWORK in shrank  # their share fell as inference took more
    diff = compare_profiles(baseline, candidate)
    assert [c.layer for c in diff.grown_layers] == [INFERENCE]
    assert diff.to_dict()["layers"][0]["layer"] == INFERENCE


def test_one_run_a_side_ranks_layers_by_size_without_testing() -> None:
    changes = compare_layers([profile_of(loop=50, prepare=50)], [profile_of(loop=50, prepare=80)])
    assert changes[0].layer == BUSINESS and changes[0].direction == "grew"
    assert all(c.p_value is None and not c.significant for c in changes)
    assert compare_layers([Profile()], [profile_of(loop=1)]) == []
