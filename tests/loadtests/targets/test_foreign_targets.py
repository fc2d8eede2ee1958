"""Real Locust runs against a role service that is not rolescope (see conftest.py): timing truth,
failures, the conversation a stateless target is sent, and templates of other shapes."""

from __future__ import annotations

import itertools
import os
import statistics
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from rolescope.loadtests.runner import LoadOptions, run_load
from rolescope.loadtests.targets.base import TargetOptions
from rolescope.loadtests.targets.preflight import judge_preflight
from rolescope.loadtests.targets.probe import check_target
from rolescope.rundir import RequestSample, read_samples
from rolescope.settings import bundled_roles_path

TIMING_TOLERANCE_S = 0.002


def timing_tolerance_s() -> float:
    """2 ms on a machine with a core to spare. When more processes want to run than there are cores
    (tests share this machine), every wake-up of the client and the server waits its turn, and that
    wait shows in both; the tolerance grows with the run queue per core, and the test says so."""
    per_core = os.getloadavg()[0] / (os.cpu_count() or 1)
    return TIMING_TOLERANCE_S * max(1.0, per_core)


def _samples(run: Path) -> list[RequestSample]:
    return sorted(read_samples(run / "samples.jsonl"), key=lambda s: s.start)


def _template(name: str) -> Path:
    return Path(str(resources.files("rolescope.loadtests.templates").joinpath(name)))


def test_openai_stream_figures_match_the_servers_known_timing_and_cut_streams_fail(
    tmp_path: Path, foreign_service: Any, traffic_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", foreign_service.api_key)
    sessions = {f"s_time{i}": [f"Where is key {i}?", f"And lock {i}?"] for i in range(3)}
    sessions |= {"s_cut": ["please truncate this"], "s_boom": ["now explode"]}
    target = TargetOptions(api="openai", model=foreign_service.model, roles_path=bundled_roles_path())
    run = run_load(
        LoadOptions(
            host=foreign_service.url,
            out=tmp_path / "run",
            traffic=traffic_file(sessions),
            users=5,
            speed=50,
            duration_s=5,
            target=target,
        )
    )
    samples = _samples(run)
    good = [s for s in samples if s.session.startswith("s_time")]
    assert len(good) >= 6 and all(s.ok for s in good), [s.error for s in good if not s.ok]
    assert {s.output_tokens for s in good} == {foreign_service.tokens}  # from usage
    assert all(len(s.itl_s) == foreign_service.tokens - 1 for s in good)
    # The truth is what the server really did (its sleeps overshoot on a busy machine): per request,
    # from arrival to the first content delta, and the gaps between its writes. The role-only,
    # empty and reasoning deltas it sends at once are not the first token.
    pairs = _matched(good, sessions, foreign_service.sent)
    assert len(pairs) == len(good)
    client_ttft = statistics.median(sample.ttft_s or 0.0 for sample, _ in pairs)
    server_ttft = statistics.median(times[0] - received for _, (_, received, times) in pairs)
    client_itl = statistics.median(gap for sample, _ in pairs for gap in sample.itl_s)
    server_itl = statistics.median(
        later - earlier for _, (_, _, times) in pairs for earlier, later in itertools.pairwise(times)
    )
    tolerance = timing_tolerance_s()
    assert client_ttft == pytest.approx(server_ttft, abs=tolerance), f"tolerance {tolerance * 1000:.1f} ms"
    assert client_itl == pytest.approx(server_itl, abs=tolerance), f"tolerance {tolerance * 1000:.1f} ms"
    assert server_ttft == pytest.approx(foreign_service.ttft_s, abs=0.02)
    cut = [s for s in samples if s.session == "s_cut"]
    boom = [s for s in samples if s.session == "s_boom"]
    assert cut and all(not s.ok and "truncated" in (s.error or "") for s in cut)
    assert boom and all(not s.ok and "backend exploded" in (s.error or "") for s in boom)
    assert all(s.status == 200 for s in cut + boom)
    body = foreign_service.bodies[0]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["messages"][0]["role"] == "system" and "Sherlock" in body["messages"][0]["content"]


def _matched(
    samples: list[RequestSample], sessions: dict[str, list[str]], sent: list[tuple[str, float, list[float]]]
) -> list[tuple[RequestSample, tuple[str, float, list[float]]]]:
    """Client samples paired with the server's record of the same request (same message, in order)."""
    pairs = []
    for message in {m for messages in sessions.values() for m in messages}:
        mine = [s for s in samples if sessions[s.session][s.turn] == message]
        theirs = sorted((r for r in sent if r[0] == message), key=lambda r: r[1])
        pairs += list(zip(sorted(mine, key=lambda s: s.start), theirs, strict=False))
    return pairs


def test_a_stateless_target_is_sent_the_capped_conversation_with_the_replies_it_gave(
    tmp_path: Path, foreign_service: Any, traffic_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOREIGN_KEY", foreign_service.api_key)
    turns = ["First, the letter.", "Second, the stamp.", "Third, the postmark."]
    target = TargetOptions(
        api="openai",
        model=foreign_service.model,
        api_key_env="FOREIGN_KEY",
        history_turns=1,
        max_tokens=64,
        ignore_eos=True,
        headers={"X-Tenant": "blue"},
    )
    run = run_load(
        LoadOptions(
            host=foreign_service.url,
            out=tmp_path / "run",
            traffic=traffic_file({"s_talk": turns}, stream=False),
            users=1,
            speed=100,
            duration_s=5,
            target=target,
        )
    )
    samples = _samples(run)
    assert samples and all(s.ok and s.output_tokens == foreign_service.tokens for s in samples)
    sent = [b["messages"] for b in foreign_service.bodies]
    assert sent[0] == [{"role": "user", "content": turns[0]}]  # no role file: no persona
    assert sent[1] == [
        {"role": "user", "content": turns[0]},
        {"role": "assistant", "content": foreign_service.reply(turns[0])},
        {"role": "user", "content": turns[1]},
    ]
    assert sent[2] == [  # capped at one earlier exchange
        {"role": "user", "content": turns[1]},
        {"role": "assistant", "content": foreign_service.reply(turns[1])},
        {"role": "user", "content": turns[2]},
    ]
    first = foreign_service.bodies[0]
    assert first["max_tokens"] == 64 and first["max_completion_tokens"] == 64 and first["ignore_eos"] is True
    assert first["stream"] is False and "stream_options" not in first
    assert foreign_service.headers[0]["x-tenant"] == "blue"


def test_seed_chat_template_reads_a_foreign_sse_service(
    tmp_path: Path, foreign_service: Any, traffic_file: Callable[..., Path]
) -> None:
    sessions = {"s_seed0": ["Tell me about the moor."], "s_seed1": ["And the hound?"], "s_cut": ["truncate"]}
    run = run_load(
        LoadOptions(
            host=foreign_service.url,
            out=tmp_path / "run",
            traffic=traffic_file(sessions),
            users=3,
            speed=50,
            duration_s=5,
            target=TargetOptions(api="template", template=_template("seed-chat.yaml")),
        )
    )
    samples = _samples(run)
    good = [s for s in samples if s.session.startswith("s_seed")]
    assert good and all(s.ok and s.output_tokens == foreign_service.tokens for s in good)
    # No token leaves the server before TTFT_S: a first token seen earlier would be a misreading.
    assert all(foreign_service.ttft_s - 0.001 <= (s.ttft_s or 0.0) < s.e2e_s for s in good)
    cut = [s for s in samples if s.session == "s_cut"]
    assert cut and all(not s.ok and "end marker" in (s.error or "") for s in cut)
    assert set(foreign_service.bodies[0]) == {"message", "session_id"}


JSON_TEMPLATE = """
name: oracle
request:
  method: POST
  path: /ask
  body:
    query: {text: "{message}", earlier: "{history}"}
    session: "{session_id}"
reply:
  json:
    text: $.answer.text
    output_tokens: meta.tokens
    error: failure
"""


def test_a_template_reads_a_json_service_of_another_shape_and_its_error_field(
    tmp_path: Path, foreign_service: Any, traffic_file: Callable[..., Path]
) -> None:
    template = tmp_path / "oracle.yaml"
    template.write_text(JSON_TEMPLATE)
    sessions = {"s_json": ["What of the ring?", "And the glove?"], "s_boom": ["explode"]}
    run = run_load(
        LoadOptions(
            host=foreign_service.url,
            out=tmp_path / "run",
            traffic=traffic_file(sessions, stream=False),
            users=2,
            speed=100,
            duration_s=5,
            target=TargetOptions(api="template", template=template),
        )
    )
    samples = _samples(run)
    good = [s for s in samples if s.session == "s_json"]
    assert good and all(s.ok and s.output_tokens == foreign_service.tokens for s in good)
    boom = [s for s in samples if s.session == "s_boom"]
    assert boom and all(not s.ok and "the oracle is silent" in (s.error or "") for s in boom)
    second = next(b for b in foreign_service.bodies if b["query"]["text"] == "And the glove?")
    assert second["query"]["earlier"] == [
        {"role": "user", "content": "What of the ring?"},
        {"role": "assistant", "content": foreign_service.reply("What of the ring?")},
    ]


def test_tls_is_verified_by_default_and_trusts_the_ca_given(
    tmp_path: Path,
    tls_foreign_service: Any,
    traffic_file: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", tls_foreign_service.api_key)
    service = tls_foreign_service
    traffic = traffic_file({"s_tls": ["Is the line secure?"]})
    plain = TargetOptions(api="openai", model=service.model)
    findings = judge_preflight(*check_target(service.url, plain, traffic, "stream", 10))
    assert len(findings) == 1 and "CERTIFICATE_VERIFY_FAILED" in findings[0].text
    with_ca = TargetOptions(api="openai", model=service.model, ca_file=service.cert)
    insecure = TargetOptions(api="openai", model=service.model, insecure=True)
    for target in (with_ca, insecure):
        found = judge_preflight(*check_target(service.url, target, traffic, "stream", 10))
        assert [f.severity for f in found] == ["warning"]  # no persona: the only remark left
    for name, target, ok in (("ca", with_ca, True), ("default", plain, False)):
        options = LoadOptions(
            host=service.url, out=tmp_path / name, traffic=traffic, users=1, duration_s=3, target=target
        )
        samples = _samples(run_load(options))
        assert samples and all(s.ok is ok for s in samples), (name, [s.error for s in samples][:3])


def test_check_before_load_tries_a_template_target_with_a_real_turn(
    tmp_path: Path, foreign_service: Any, traffic_file: Callable[..., Path]
) -> None:
    traffic = traffic_file({"s_a": ["Hello?"], "s_b": ["Anyone?"]})
    seed = TargetOptions(api="template", template=_template("seed-chat.yaml"))
    assert judge_preflight(*check_target(foreign_service.url, seed, traffic, "replay", 10)) == []
    assert len(foreign_service.bodies) == 1  # no {role}: one turn tells all
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text(
        "name: wrong\nrequest: {path: '/roles/{role}/chat', body: {m: '{message}'}}\n"
        "reply: {json: {text: reply}}\n"
    )
    target = TargetOptions(api="template", template=wrong)
    traffic = traffic_file({"s_a": ["Hello?"], "s_b": ["Anyone?"]}, role="curie")
    findings = judge_preflight(*check_target(foreign_service.url, target, traffic, "replay", 10))
    assert [f.text for f in findings] == ["a trial turn for curie failed: HTTP 404: Not Found"]
