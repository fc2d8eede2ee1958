"""One goodput: `rolescope load` and `rolescope gate` count the same requests as good."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from rich.console import Console

from rolescope.commands.load_view import print_slis
from rolescope.gate.collect import collect
from rolescope.gate.console import print_verdict
from rolescope.gate.goodput import goodput_share, is_good
from rolescope.gate.outputs import judge_collected
from rolescope.gate.policy import load_policy
from rolescope.loadtests.runner import write_slis
from rolescope.rundir import SAMPLES_FILE, RequestSample, write_samples

LATENCY = load_policy().latency_objectives  # TTFT ≤ 0.5 s (99 %), end-to-end ≤ 5 s (99 %)


def _reply(
    at: float, *, stream: bool, e2e: float, ttft: float | None = None, ok: bool = True
) -> RequestSample:
    return RequestSample(
        name="stream" if stream else "chat",
        kind="stream" if stream else "chat",
        intended_start=at,
        start=at,
        ok=ok,
        status=200 if ok else 500,
        e2e_s=e2e,
        ttft_s=ttft if stream and ok else None,
        tpot_s=0.02 if stream and ok else None,
        itl_s=[0.02, 0.02] if stream and ok else [],
        output_tokens=3 if ok else 0,
        error=None if ok else "HTTP 500",
    )


def mixed_run() -> list[RequestSample]:
    """Ten replies: 3 good streams, 1 slow first token, 4 one-piece answers in time, 1 too slow, 1 failure."""
    return [
        _reply(0.0, stream=True, e2e=1.0, ttft=0.2),
        _reply(0.5, stream=True, e2e=1.2, ttft=0.3),
        _reply(1.0, stream=True, e2e=0.9, ttft=0.1),
        _reply(1.5, stream=True, e2e=2.0, ttft=0.8),
        # A one-piece answer slower than the TTFT threshold is still in time: it has no first token.
        _reply(2.0, stream=False, e2e=0.8),
        _reply(2.5, stream=False, e2e=1.5),
        _reply(3.0, stream=False, e2e=0.4),
        _reply(3.5, stream=False, e2e=4.9),
        _reply(4.0, stream=False, e2e=6.0),
        _reply(4.5, stream=False, e2e=0.3, ok=False),
    ]


def test_ttft_judges_streams_and_end_to_end_judges_every_reply() -> None:
    assert is_good(_reply(0, stream=True, e2e=1.0, ttft=0.2), LATENCY)
    assert not is_good(_reply(0, stream=True, e2e=1.0, ttft=0.7), LATENCY)
    assert not is_good(_reply(0, stream=True, e2e=5.5, ttft=0.2), LATENCY)
    assert is_good(_reply(0, stream=False, e2e=0.8), LATENCY)
    assert not is_good(_reply(0, stream=False, e2e=5.5), LATENCY)
    assert not is_good(_reply(0, stream=False, e2e=0.1, ok=False), LATENCY)
    assert goodput_share(mixed_run(), LATENCY) == pytest.approx(0.7)
    assert goodput_share([], LATENCY) == 0.0


def test_load_and_gate_print_the_same_goodput_for_one_mixed_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    write_samples(mixed_run(), run / SAMPLES_FILE)

    write_slis(run)
    print_slis(run)
    load_text = capsys.readouterr().out
    load_figure = re.search(r"goodput (\d+\.\d)%", load_text)

    collected = collect([run])
    verdict = judge_collected(load_policy(), collected)
    out = io.StringIO()
    print_verdict(Console(file=out, width=400), verdict)
    gate_figure = re.search(r"goodput\s*│\s*(\d+\.\d+) %", out.getvalue())

    assert load_figure is not None and gate_figure is not None, (load_text, out.getvalue())
    assert float(load_figure.group(1)) == pytest.approx(float(gate_figure.group(1)), abs=0.05) == 70.0
    assert "streams: TTFT ≤ 0.5 s; every reply: ok, end-to-end ≤ 5 s" in load_text
