"""The gate over run directories on disk, and everything it writes: verdict, junit, summary, report."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from rolescope.gate.collect import collect
from rolescope.gate.model import FunctionShift
from rolescope.gate.outputs import judge_collected, write_all
from rolescope.gate.policy import load_policy
from rolescope.gate.report import ReportInputs, render_report, write_report
from rolescope.memory.environment import capture_environment
from rolescope.memory.model import Baseline, KindFigures


def memory_file(path: Path, allocations: float, bytes_: float, python: str | None = None) -> Path:
    """A memory figures file in the baseline format, recorded "here" unless told otherwise."""
    environment = capture_environment(digest="sha256:traffic")
    if python:
        environment = environment.model_copy(update={"python": python})
    figures = KindFigures(
        requests=100,
        sessions=10,
        allocations_per_request=allocations,
        bytes_per_request=bytes_,
        peak_bytes=1,
        retained_bytes_per_session=0.0,
        allocations_spread_pct=0.1,
        bytes_spread_pct=0.1,
        repeats=[],
    )
    Baseline(
        recorded_at="2026-01-01T00:00:00Z",
        repeats=3,
        warmup=1,
        environment=environment,
        kinds={"chat": figures},
    ).dump(path)
    return path


def write_run(directory: Path, seed: int, ttft: float = 0.12, error_every: int = 0, n: int = 120) -> Path:
    rng = random.Random(seed)
    directory.mkdir(parents=True)
    lines = []
    for i in range(n):
        failed = error_every > 0 and i % error_every == 0
        first = ttft * rng.uniform(0.9, 1.1)
        itl = [rng.uniform(0.02, 0.03) for _ in range(8)]
        lines.append(
            json.dumps(
                {
                    "name": "chat stream",
                    "kind": "stream",
                    "intended_start": 1000 + i * 0.1,
                    "start": 1000 + i * 0.1,
                    "ok": not failed,
                    "status": 500 if failed else 200,
                    "ttft_s": None if failed else first,
                    "tpot_s": None if failed else sum(itl) / len(itl),
                    "itl_s": [] if failed else itl,
                    "e2e_s": first + sum(itl),
                    "output_tokens": 0 if failed else 9,
                    "error": "HTTP 500" if failed else None,
                }
            )
        )
    (directory / "samples.jsonl").write_text("\n".join(lines) + "\n")
    (directory / "slis.json").write_text("{}")
    (directory / "service.json").write_text(json.dumps({"cpu_seconds": 0.5 + rng.uniform(0, 0.01)}))
    return directory


def write_tune_dir(root: Path, seeds: range, allocations: float = 1010.0, **kwargs: float) -> Path:
    for index, seed in enumerate(seeds, start=1):
        write_run(root / f"load-{index}", seed, **kwargs)  # type: ignore[arg-type]
    memory_file(root / "memory.json", allocations, 201_000.0)
    return root


@pytest.fixture
def baseline(tmp_path: Path) -> Path:
    return memory_file(tmp_path / "baseline.json", 1000.0, 200_000.0)


def run_gate(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "rolescope.cli", "gate", *args], capture_output=True, text=True, timeout=120
    )
    # Rich wraps long lines at the terminal width; compare words, not line breaks.
    result.stderr = " ".join(result.stderr.split())
    return result


def test_memory_from_another_environment_is_noted_not_judged(tmp_path: Path) -> None:
    tune = write_tune_dir(tmp_path / "tune", range(1), allocations=5000.0)
    other = memory_file(tmp_path / "other.json", 1000.0, 200_000.0, python="2.7.18")
    collected = collect([tune], None, other)
    assert collected.memory == {}
    assert any("different environment" in note and "2.7.18" in note for note in collected.notes)


def test_a_tune_directory_expands_to_its_load_runs_and_passes(tmp_path: Path, baseline: Path) -> None:
    tune = write_tune_dir(tmp_path / "tune", range(3))
    collected = collect([tune], None, baseline)
    assert [Path(run.path).name for run in collected.candidate] == ["load-1", "load-2", "load-3"]
    assert collected.memory == {"chat.allocations_per_request": 1010.0, "chat.bytes_per_request": 201_000.0}
    policy = load_policy(None)
    verdict = judge_collected(policy, collected)
    assert verdict.passed, [c.message for c in verdict.failed]
    names = {c.name for c in verdict.checks}
    assert {"chat-availability", "streaming-time-to-first-token", "goodput"} <= names
    assert {"memory:chat.allocations_per_request", "memory:chat.bytes_per_request"} <= names


def test_every_output_names_the_failed_check(tmp_path: Path, baseline: Path) -> None:
    reference = write_tune_dir(tmp_path / "ref", range(5))
    candidate = write_tune_dir(tmp_path / "cand", range(10, 15), allocations=1100.0, ttft=0.2)
    collected = collect([candidate], [reference], baseline)
    policy = load_policy(None)
    verdict = judge_collected(policy, collected)
    out = tmp_path / "out"
    files = write_all(verdict, policy, collected, out)
    assert set(files) == {"verdict", "junit", "summary", "report"}

    data = json.loads(files["verdict"].read_text())
    assert data["verdict"] == "fail" and data["passed"] is False
    assert set(data["failed"]) == {"ab:ttft_p95", "ab:e2e_p95", "memory:chat.allocations_per_request"}
    ttft = next(c for c in data["checks"] if c["name"] == "ab:ttft_p95")
    assert ttft["figure"] == pytest.approx(0.667, abs=0.1)
    assert ttft["limit"] == 0.10 and ttft["margin"] < 0
    assert ttft["statistics"]["p_adjusted"] < 0.05 and len(ttft["statistics"]["candidate"]) == 5

    suites = ET.parse(files["junit"]).getroot()
    cases = {case.get("name"): case for case in suites.iter("testcase")}
    assert len(cases) == len(data["checks"])
    assert cases["memory:chat.allocations_per_request"].find("failure") is not None
    assert cases["goodput"].find("failure") is None
    assert suites.get("failures") == "3"

    summary = files["summary"].read_text()
    assert summary.startswith("## ❌ rolescope gate: FAIL — 3 of")
    assert "| ❌ | `chat.allocations_per_request` | 1,000.0 | 1,100.0 | +10.00 %" in summary
    assert "### SLIs vs SLOs" in summary and "### Memory vs baseline" in summary

    report = files["report"].read_text()
    assert report.startswith("<!doctype html>") and "<svg" in report
    assert "ab:ttft_p95" in report and "memory per request vs baseline" in report
    assert "<script src=" not in report and "<link " not in report  # self-contained


def test_gate_cli_exit_codes(tmp_path: Path, baseline: Path) -> None:
    good = write_tune_dir(tmp_path / "good", range(3))
    passed = run_gate(str(good), "--baseline", str(baseline))
    assert passed.returncode == 0, passed.stderr + passed.stdout
    assert "PASS" in passed.stdout and (good / "report.html").is_file()

    bad = write_tune_dir(tmp_path / "bad", range(3), error_every=50)
    failed = run_gate(str(bad), "--baseline", str(baseline), "--out", str(tmp_path / "verdict"))
    assert failed.returncode == 1
    assert "chat-availability" in failed.stderr
    assert json.loads((tmp_path / "verdict" / "verdict.json").read_text())["failed"] == ["chat-availability"]

    missing = run_gate(str(tmp_path / "nope"))
    assert missing.returncode == 2
    assert "no such run directory" in missing.stderr

    spec = tmp_path / "slo.yaml"
    spec.write_text("slos: []\ngate:\n  relative_tolerance:\n    nonsense_p95: 0.1\n")
    wrong = run_gate(str(good), "--slo", str(spec))
    assert wrong.returncode == 2 and "nonsense_p95" in wrong.stderr


LOOP_STACK = "main (cli.py:45);serve_forever (service/server.py:84);Runner.run (asyncio/runners.py:86)"
SEND_STACK = (
    "main (cli.py:45);Runner.run (asyncio/runners.py:86)"
    ";RequestResponseCycle.send (uvicorn/protocols/http/httptools_impl.py:463)"
)
CHAT_STACK = "main (cli.py:45);Runner.run (asyncio/runners.py:86);ChatService.prepare (service/chat.py:120)"
HOT_STACK = f"{CHAT_STACK};render_persona (service/persona.py:40)"


def write_profiles(tune: Path, hot: int) -> None:
    """py-spy-shaped profile directories under each load run: four one-second segments each."""
    from rolescope.profiling.collapsed import format_collapsed, merge, parse_collapsed
    from rolescope.profiling.recorder import SEGMENTS, ProfileRun, write_artifacts

    for load in sorted(tune.glob("load-*")):
        out = tune / "profile" / load.name
        (out / SEGMENTS).mkdir(parents=True)
        segments = []
        for index in range(4):
            text = f"{LOOP_STACK} {40 + index}\n{SEND_STACK} 30\n{CHAT_STACK} 10\n"
            text += f"{HOT_STACK} {hot + index}\n" if hot else ""
            segments.append(parse_collapsed(text))
            (out / SEGMENTS / f"{index + 1:02d}.txt").write_text(format_collapsed(segments[-1]))
        run = ProfileRun(out, "test", None, 4, 100, False, False, 4, 0)
        write_artifacts(merge(segments), run)


def test_the_summary_names_the_layer_that_grew_before_the_function(tmp_path: Path, baseline: Path) -> None:
    reference = write_tune_dir(tmp_path / "ref", range(2))
    candidate = write_tune_dir(tmp_path / "cand", range(10, 12))
    write_profiles(reference, hot=0)
    write_profiles(candidate, hot=30)
    collected = collect([candidate], [reference], baseline)
    policy = load_policy(None)
    verdict = judge_collected(policy, collected)
    grown = [c for c in verdict.layer_shifts if c.significant and c.direction == "grew"]
    assert [c.layer for c in grown] == ["business"]
    assert grown[0].function == "render_persona (service/persona.py:40)"
    files = write_all(verdict, policy, collected, tmp_path / "out")
    summary = files["summary"].read_text()
    layers_at = summary.index("### Layers whose share of CPU samples changed")
    assert layers_at < summary.index("### Functions to look at first")
    assert "| ⬆️ | business | 12.27 % | 36.72 % | +24.45 pp | `render_persona` +27.87 pp |" in summary
    data = json.loads(files["verdict"].read_text())
    assert data["layer_shifts"][0]["layer"] == "business"
    report = files["report"].read_text()
    layers_section = report.index("Layers whose share of CPU changed")
    assert layers_section < report.index("Functions to look at first")
    assert "<td>business</td>" in report and "<code>render_persona</code> +27.87 pp" in report


def test_without_a_reference_the_summary_shows_cpu_by_layer_then_by_function(
    tmp_path: Path, baseline: Path
) -> None:
    candidate = write_tune_dir(tmp_path / "cand", range(2))
    write_profiles(candidate, hot=30)
    collected = collect([candidate], None, baseline)
    verdict = judge_collected(load_policy(None), collected)
    assert verdict.layers[0].layer == "event loop"
    summary = write_all(verdict, load_policy(None), collected, tmp_path / "out")["summary"].read_text()
    by_layer = summary.index("### Where the service spent its CPU, by layer")
    assert by_layer < summary.index("### Where the service spent its CPU, by function")
    assert "| event loop | 36.73 % | `Runner.run` 36.73 % |" in summary
    assert "| business | 36.73 % | `render_persona` 27.88 %, `ChatService.prepare` 8.85 % |" in summary
    assert (candidate / "profile" / "load-1" / "layers.json").is_file()
    report = write_all(verdict, load_policy(None), collected, tmp_path / "page")["report"].read_text()
    assert report.index("Where the service spent its CPU, by layer") < report.index(
        "Where the service spent its CPU</h2>"
    )
    assert "<td>event loop</td><td>36.7 %</td>" in report


HOSTILE = "<script>alert('x')</script>"


def _inputs(tmp_path: Path, *, with_reference: bool) -> ReportInputs:
    baseline = memory_file(tmp_path / "baseline.json", 1000.0, 200_000.0)
    reference = [write_tune_dir(tmp_path / "ref", range(3))] if with_reference else None
    candidate = write_tune_dir(tmp_path / "cand", range(10, 13), ttft=0.2)
    collected = collect([candidate], reference, baseline)
    policy = load_policy(None)
    verdict = judge_collected(policy, collected)
    verdict.notes.append(f"note {HOSTILE}")
    verdict.hot_functions = [(f"handler{HOSTILE}", 0.4), ("json.dumps", 0.1)]
    if with_reference:
        verdict.suspects = [FunctionShift(f"slow{HOSTILE}", 0.1, 0.3)]
    return ReportInputs(
        verdict=verdict,
        policy=policy,
        candidate=collected.candidate,
        reference=collected.reference,
        memory=collected.memory,
        memory_baseline=collected.memory_baseline,
        function_shifts=[FunctionShift(f"shifted{HOSTILE}", 0.2, 0.25)],
        links={f"flame graph {HOSTILE}": f'x.svg" onclick="{HOSTILE}'},
        title=f"run {HOSTILE}",
    )


def test_a_function_name_with_a_script_tag_is_escaped_everywhere(tmp_path: Path) -> None:
    for with_reference in (True, False):
        report = render_report(_inputs(tmp_path / str(with_reference), with_reference=with_reference))
        assert "<script" not in report
        assert "&lt;script&gt;" in report
        assert 'onclick="' not in report  # an attribute value cannot be closed from the data
        expected = "slow&lt;script&gt;" if with_reference else "handler&lt;script&gt;"
        assert expected in report


def test_the_written_report_is_one_self_contained_page(tmp_path: Path) -> None:
    path = write_report(_inputs(tmp_path, with_reference=True), tmp_path)
    report = path.read_text()
    assert path.name == "report.html" and report.startswith("<!doctype html>")
    assert report.rstrip().endswith("</html>") and report.count("<svg") >= 5
    assert "Functions to look at first" in report and "Function-share changes" in report
    assert "memory per request vs baseline" in report
    assert "<style>" in report and "<link " not in report and "<script" not in report
