"""Shadow-traffic capture: sampling by session, redaction before writing, drops that never block."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import yaml

from rolescope.capture.observer import CaptureObserver
from rolescope.capture.sink import CaptureSink
from rolescope.loadtests.runner import LoadOptions, run_load
from rolescope.loadtests.traffic_format import read_traffic
from rolescope.rundir import read_samples
from rolescope.service.observer import ExchangeSummary
from rolescope.settings import bundled_roles_path

KEY = "capture-test-key-0123456789"
CANARIES = {
    "email": "canary.person@example.org",
    "phone": "+1 415 555 0142",
    "card": "4242 4242 4242 4242",
    "ip": "203.0.113.77",
    "api_key": "sk-canaryABCDEFGHIJKLMNOP1234",
    "bearer": "Bearer canarytokenXYZ987654321",
    "url_password": "hunter2canary",
}


def _summary(session: str, message: str = "hi") -> ExchangeSummary:
    return ExchangeSummary(1.0, session, None, "sherlock", message, False, 200, 0.1, None, 5)


def test_sampling_keeps_or_drops_whole_sessions(tmp_path: Path) -> None:
    observer = CaptureObserver(tmp_path / "c.jsonl", 0.5, KEY.encode(), lambda *a: None)
    decisions = {f"session-{i}": observer.sampled(f"session-{i}") for i in range(400)}
    assert 120 < sum(decisions.values()) < 280
    assert all(observer.sampled(s) == kept for s, kept in decisions.items())


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path: Path) -> None:
    release = threading.Event()
    drops: list[tuple[str, str, int]] = []

    def slow_render(item: object) -> str:
        release.wait(10)
        return "{}"

    sink = CaptureSink(tmp_path / "c.jsonl", slow_render, lambda *a: drops.append(a), max_queue=2)
    sink.start()
    for _ in range(10):
        sink.offer(object())  # never blocks although the writer is stuck
    release.set()
    sink.close()
    assert sink.dropped >= 7 and sink.written + sink.dropped == 10
    assert drops[0][:2] == ("capture", "queue_full")


def test_an_unwritable_sink_drops_and_counts(tmp_path: Path) -> None:
    drops: list[tuple[str, str, int]] = []
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    observer = CaptureObserver(blocker / "c.jsonl", 1.0, KEY.encode(), lambda *a: drops.append(a))
    observer.sink.path = blocker / "c.jsonl"
    observer.sink._thread.start()  # start() would try to create the folder; the open must fail instead
    observer.exchange_completed(_summary("abcdefgh01"))
    observer.close()
    observer.exchange_completed(_summary("abcdefgh01"))
    assert sum(n for signal, _, n in drops if signal == "capture") == 2


def _fast_sherlock(folder: Path) -> Path:
    role = yaml.safe_load((bundled_roles_path() / "sherlock.yaml").read_text(encoding="utf-8"))
    role["inference"]["simulator"].update({"ttft_ms": 20, "tokens_per_second": 400})
    folder.mkdir()
    (folder / "sherlock.yaml").write_text(yaml.safe_dump(role), encoding="utf-8")
    return folder


def _chat(url: str, session: str, message: str, stream: bool) -> None:
    body = {"message": message, "session_id": session, "role": "sherlock", "stream": stream}
    headers = {"Accept": "text/event-stream"} if stream else {}
    response = httpx.post(f"{url}/v1/chat", json=body, headers=headers, timeout=30)
    assert response.status_code == 200, response.text


def test_capture_redact_replay_round_trip(tmp_path: Path, service_factory: Callable[..., object]) -> None:
    captured = tmp_path / "captured.jsonl"
    svc = service_factory(
        extra_args=["--capture", str(captured), "--capture-sample", "1"], env={"ROLESCOPE_CAPTURE_KEY": KEY}
    )
    url = svc.url  # type: ignore[attr-defined]
    raw_sessions = ["canarysession-alpha", "canarysession-beta"]
    for index, session in enumerate(raw_sessions):
        _chat(url, session, f"Mail me at {CANARIES['email']} or call {CANARIES['phone']}.", stream=index == 0)
        _chat(
            url,
            session,
            f"My card is {CANARIES['card']}, again {CANARIES['email']}, from {CANARIES['ip']}.",
            stream=False,
        )
        _chat(
            url,
            session,
            f"Key {CANARIES['api_key']}, header Authorization: {CANARIES['bearer']}, "
            f"db https://admin:{CANARIES['url_password']}@db.example.org/x",
            stream=True,
        )
    svc.stop()  # type: ignore[attr-defined]

    text = captured.read_text(encoding="utf-8")
    for secret in [*CANARIES.values(), *raw_sessions, "415 555", "4242"]:
        assert secret not in text, secret
    records = read_traffic(captured)
    assert len(records) == 6
    first = next(r for r in records if r.turn == 1)
    assert "<EMAIL_1>" in first.message and "<CARD_1>" in first.message and "<IP_1>" in first.message
    assert {r.turn for r in records} == {0, 1, 2} and len({r.session for r in records}) == 2
    assert all(r.original.status == 200 and r.original.output_tokens > 0 for r in records)

    redacted = tmp_path / "redacted.jsonl"
    subprocess.run(
        [sys.executable, "-m", "rolescope", "traffic", "redact", str(captured), str(redacted)],
        check=True,
        capture_output=True,
        env={**os.environ, "ROLESCOPE_CAPTURE_KEY": KEY},
    )
    replayable = read_traffic(redacted)
    assert [r.message for r in replayable] == [r.message for r in records]  # already clean: unchanged

    target = service_factory(roles_path=_fast_sherlock(tmp_path / "roles"))
    run = run_load(
        LoadOptions(
            host=target.url,
            out=tmp_path / "replay",
            traffic=redacted,  # type: ignore[attr-defined]
            users=2,
            speed=1000.0,
            duration_s=6,
        )
    )
    samples = list(read_samples(run / "samples.jsonl"))
    assert {(s.session, s.turn) for s in samples} == {(r.session, r.turn) for r in replayable}
    assert all(s.ok for s in samples)
    assert json.loads((run / "slis.json").read_text())["failures"] == 0
