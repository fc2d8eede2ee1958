"""`--api websocket`: frames read into replies, and real runs against `rolescope serve` over `/v1/ws`."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import pytest

from rolescope.loadtests.runner import LoadOptions, run_load
from rolescope.loadtests.targets.base import TargetOptions, TurnCall
from rolescope.loadtests.targets.preflight import judge_preflight
from rolescope.loadtests.targets.probe import check_target
from rolescope.loadtests.targets.websocket import WebSocketAdapter, WsFrameReader
from rolescope.loadtests.ws_sessions import ws_url
from rolescope.rundir import RequestSample, read_samples
from tests.loadtests.targets.conftest import write_sessions

ServiceFactory = Callable[..., Any]
KEY = "ws-load-key-0123456789"


def _frame(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def _read(frames: list[tuple[float, bytes]]) -> tuple[WsFrameReader, Any]:
    reader = WsFrameReader()
    for now, frame in frames:
        reader.feed(frame, now)
    return reader, reader.close(9.0)


def test_frames_become_a_reply_with_token_times_and_the_final_frames_usage() -> None:
    final = _frame(type="final", response={"content": "Ab c", "usage": {"output_tokens": 3}})
    reader, reply = _read(
        [
            (1.0, _frame(type="token", text="", index=0)),
            (1.1, _frame(type="token", text="A", index=1)),
            (1.2, _frame(type="token", text="b", index=2)),
            (1.4, _frame(type="token", text=" c", index=3)),
            (1.5, final),
            (1.6, _frame(type="token", text="late", index=4)),
        ]
    )
    assert reader.ended and reader.status == 200 and reply.error is None
    assert reply.token_times == [1.1, 1.2, 1.4] and reply.output_tokens == 3 and reply.text == "Ab c"


def test_an_error_frame_or_a_turn_cut_off_is_a_failure() -> None:
    error = _frame(type="error", status=503, error={"code": "overloaded", "message": "busy"})
    reader, reply = _read([(1.0, _frame(type="token", text="x")), (1.1, error)])
    assert reader.ended and reader.status == 503
    assert reply.error == "error frame 503: overloaded: busy" and reply.token_times == [1.0]
    reader, reply = _read([(1.0, _frame(type="token", text="x"))])
    assert not reader.ended and reader.status == 0
    assert reply.error == "the connection ended before the turn's final frame"
    assert _read([(1.0, b"{oops")])[1].error == "not a JSON frame: b'{oops'"


def test_the_adapter_sends_the_turn_as_one_frame_with_the_key_on_the_upgrade() -> None:
    adapter = WebSocketAdapter(TargetOptions(api="websocket", headers={"X-Tenant": "t1"}), "k1")
    call = adapter.request(TurnCall("Who?", "sherlock", "s-1", stream=True))
    assert (adapter.transport, adapter.stateless, call.path) == ("websocket", False, "/v1/ws")
    assert json.loads(call.body or b"") == {"message": "Who?", "session_id": "s-1", "role": "sherlock"}
    assert dict(call.headers) == {"X-Tenant": "t1", "Authorization": "Bearer k1"}
    assert ws_url("https://h:8443/prefix/", "/v1/ws") == "wss://h:8443/prefix/v1/ws"
    assert ws_url("http://127.0.0.1:80", "/v1/ws") == "ws://127.0.0.1:80/v1/ws"


@contextmanager
def _counting_proxy(upstream: str) -> Iterator[tuple[str, list[int]]]:
    """A TCP relay in front of the service: counts the connections the load generator opens."""
    target = httpx.URL(upstream)
    listener = socket.create_server(("127.0.0.1", 0))
    accepted = [0]

    def pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            accepted[0] += 1
            server = socket.create_connection((target.host, target.port or 80))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", accepted
    finally:
        listener.close()


def _open_connections(url: str) -> float:
    for line in httpx.get(f"{url}/metrics", timeout=5).text.splitlines():
        if line.startswith("rolescope_websocket_connections_open"):
            return float(line.split()[-1])
    raise AssertionError("no rolescope_websocket_connections_open on /metrics")


def _load(url: str, out: Path, target: TargetOptions, traffic: Path, **options: Any) -> list[RequestSample]:
    settings: dict[str, Any] = {"users": 3, "speed": 100, "duration_s": 5, "user": "stream"}
    settings.update(options)
    run = run_load(LoadOptions(host=url, out=out, traffic=traffic, target=target, **settings))
    return sorted(read_samples(run / "samples.jsonl"), key=lambda s: s.start)


def _first_pass(samples: list[RequestSample]) -> dict[tuple[str, int], RequestSample]:
    firsts: dict[tuple[str, int], RequestSample] = {}
    for sample in samples:
        firsts.setdefault((sample.session, sample.turn), sample)
    return firsts


def test_websocket_load_holds_one_connection_per_session_and_matches_the_http_figures(
    tmp_path: Path, service_factory: ServiceFactory, fast_roles_path: Path
) -> None:
    svc = service_factory(roles_path=fast_roles_path)
    sessions = {f"s_ws{i}": [f"Who rang the bell at {i}?", "And why twice?", "Then who?"] for i in range(3)}
    traffic = write_sessions(tmp_path / "traffic.jsonl", sessions)
    gauge: list[float] = []
    done = threading.Event()

    def watch() -> None:
        while not done.wait(0.1):
            gauge.append(_open_connections(svc.url))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with _counting_proxy(svc.url) as (proxy_url, accepted):
        ws = _load(proxy_url, tmp_path / "ws", TargetOptions(api="websocket"), traffic)
    done.set()
    watcher.join()
    assert ws and all(s.ok for s in ws), [s.error for s in ws if not s.ok]
    assert {(s.name, s.kind, s.status) for s in ws} == {("ws", "stream", 200)}
    assert all(s.ttft_s is not None and 0 < s.ttft_s < s.e2e_s and len(s.itl_s) >= 1 for s in ws)
    # Every session replay opens one connection for all of its turns: connections = sessions begun.
    begun = sum(1 for s in ws if s.turn == 0)
    assert len(ws) > begun and accepted[0] == begun, [(s.session, s.turn, s.start, s.e2e_s) for s in ws]
    assert max(gauge) >= 1 and max(gauge) <= 3 and _open_connections(svc.url) == 0
    # The service answers the same history with the same tokens over HTTP: the figures must agree.
    http = _first_pass(_load(svc.url, tmp_path / "http", TargetOptions(), traffic))
    ws_first = _first_pass(ws)
    common = set(http) & set(ws_first)
    assert len(common) >= 6 and all(http[k].ok for k in common)
    assert {k: ws_first[k].output_tokens for k in common} == {k: http[k].output_tokens for k in common}


def test_error_frames_are_failures_with_their_text(
    tmp_path: Path, service_factory: ServiceFactory, fast_roles_path: Path
) -> None:
    svc = service_factory(roles_path=fast_roles_path)
    traffic = write_sessions(tmp_path / "traffic.jsonl", {"s_gone": ["Hello?", "Anyone?"]}, role="nobody")
    samples = _load(svc.url, tmp_path / "run", TargetOptions(api="websocket"), traffic, users=1, duration_s=3)
    assert samples and not any(s.ok for s in samples)
    assert {s.status for s in samples} == {404}
    assert all((s.error or "").startswith("error frame 404: unknown_role") for s in samples), samples[0].error
    summary = json.loads((tmp_path / "run" / "slis.json").read_text())
    assert summary["failures"] == summary["requests"] == len(samples)


def test_check_before_load_lists_roles_over_http_and_sends_a_turn_over_the_websocket(
    tmp_path: Path, service_factory: ServiceFactory, fast_roles_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    svc = service_factory(roles_path=fast_roles_path, env={"ROLESCOPE_API_KEYS": KEY})
    traffic = write_sessions(tmp_path / "traffic.jsonl", {"s_pre": ["Who?"]})
    target = TargetOptions(api="websocket")
    monkeypatch.setenv("ROLESCOPE_LOAD_API_KEY", KEY)
    plan, probe = check_target(svc.url, target, traffic, "stream", 10)
    assert judge_preflight(plan, probe) == []
    assert probe.listing is not None and "sherlock" in (probe.listing.names or ())
    assert [(t.role, t.status, t.error) for t in probe.trials] == [("sherlock", 200, None)]
    assert probe.trials[0].output_tokens > 1
    monkeypatch.setenv("ROLESCOPE_LOAD_API_KEY", "wrong-key-0123456789")
    refused = judge_preflight(*check_target(svc.url, target, traffic, "stream", 10))
    expected = "the target refused the API key from $ROLESCOPE_LOAD_API_KEY (HTTP 401)"
    assert [f.text for f in refused] == [expected]


def test_rolescope_load_api_websocket_from_the_command_line(
    tmp_path: Path, service_factory: ServiceFactory, fast_roles_path: Path
) -> None:
    svc = service_factory(roles_path=fast_roles_path, env={"ROLESCOPE_API_KEYS": KEY})
    traffic = write_sessions(tmp_path / "traffic.jsonl", {"s_cli0": ["Who?", "Why?"], "s_cli1": ["When?"]})
    out = tmp_path / "run"
    command = [sys.executable, "-m", "rolescope", "load", "-H", svc.url, "--api", "websocket", "-t", "3s"]
    command += ["--traffic", str(traffic), "-u", "2", "--speed", "20", "--out", str(out)]
    env = {**os.environ, "ROLESCOPE_LOAD_API_KEY": KEY, "COLUMNS": "200"}
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    samples = read_samples(out / "samples.jsonl")
    assert samples and all(s.ok and s.name == "ws" for s in samples)
    assert json.loads((out / "settings.json").read_text())["options"]["target"]["api"] == "websocket"
    assert time.monotonic() - started < 100


def test_open_model_shares_each_sessions_connection_between_the_turns_due(
    tmp_path: Path, service_factory: ServiceFactory, fast_roles_path: Path
) -> None:
    svc = service_factory(roles_path=fast_roles_path)
    sessions = {f"s_open{i}": ["Who?", "Why?", "When?"] for i in range(4)}
    traffic = write_sessions(tmp_path / "traffic.jsonl", sessions)
    with _counting_proxy(svc.url) as (proxy_url, accepted):
        samples = _load(
            proxy_url, tmp_path / "run", TargetOptions(api="websocket"), traffic, rate=5, duration_s=4
        )
    assert len(samples) >= 12 and all(s.ok for s in samples), {s.error for s in samples}
    assert all(s.intended_start <= s.start + 0.001 and s.ttft_s is not None for s in samples)
    # Turns of a session reuse its connection: about one connection per session replayed (a turn of the
    # trace's next cycle may get the lock before the last turn of this one, which then closes it).
    turns = [(s.session, s.turn, round(s.intended_start % 100, 2)) for s in samples]
    assert 0 < accepted[0] <= sum(1 for s in samples if s.turn == 0) + 2 < len(samples), (accepted, turns)
