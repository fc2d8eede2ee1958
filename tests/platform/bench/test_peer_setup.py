"""The pieces around the tools: install layout, offline environment, workload traffic, round order."""

from __future__ import annotations

from pathlib import Path

from rolescope.bench.peer_compare import ToolFigures
from rolescope.bench.peer_install import (
    AIPERF,
    MINILM_TOKENIZER,
    _pip_failure,
    hub_snapshot,
    offline_env,
)
from rolescope.bench.peer_mock import MockTiming, mock_server_argv
from rolescope.bench.peer_rolescope import rolescope_load_argv
from rolescope.bench.peer_rounds import Pooled, round_order
from rolescope.bench.peer_workload import Workload, prompt_of, write_traffic
from rolescope.inference.tokens import count_tokens
from rolescope.loadtests.traffic_format import read_traffic


def test_each_peer_has_a_pinned_environment_of_its_own(tmp_path: Path) -> None:
    assert AIPERF.requirement == "aiperf==0.13.0"
    assert AIPERF.executable(tmp_path) == tmp_path / "aiperf-0.13.0" / "bin" / "aiperf"


def test_tokenizer_is_laid_out_as_a_hugging_face_cache_snapshot(tmp_path: Path) -> None:
    snapshot, ref = hub_snapshot(tmp_path, MINILM_TOKENIZER.repo_id, MINILM_TOKENIZER.revision)
    assert snapshot.parent.parent == ref.parent.parent
    assert snapshot.relative_to(tmp_path).parts[:2] == (
        "hub",
        "models--sentence-transformers--all-MiniLM-L6-v2",
    )
    assert snapshot.name == MINILM_TOKENIZER.revision and len(snapshot.name) == 40
    assert ref.relative_to(tmp_path).parts[-2:] == ("refs", "main")


def test_offline_environment_keeps_the_hub_off_the_network(tmp_path: Path) -> None:
    env = offline_env(tmp_path)
    assert env["HF_HOME"] == str(tmp_path)
    assert env["HF_HUB_OFFLINE"] == "1" and env["TRANSFORMERS_OFFLINE"] == "1"


def test_an_unreachable_index_is_reported_as_no_network() -> None:
    problem = _pip_failure("aiperf==0.13.0", "ERROR: Could not find a version that satisfies the requirement")
    assert "not reachable" in str(problem) and "aiperf==0.13.0" in str(problem)
    other = _pip_failure("aiperf==0.13.0", "error: subprocess-exited-with-error")
    assert "not reachable" not in str(other)


def test_traffic_states_the_workload_prompt_length_output_cap_and_role(tmp_path: Path) -> None:
    workload = Workload(rate=4, seconds=10, prompt_tokens=64, output_tokens=32, model="sherlock")
    records = read_traffic(write_traffic(workload, "sherlock", tmp_path / "t.jsonl"))
    assert len(records) >= 2 * workload.expected_requests
    assert {r.role for r in records} == {"sherlock"}
    assert {r.max_tokens for r in records} == {32}
    assert all(r.stream and r.turn == 0 for r in records)
    assert len({r.session for r in records}) == len(records)
    assert count_tokens(records[0].message) == 64 == count_tokens(prompt_of(64))


def test_rolescope_is_asked_for_the_openai_protocol_open_model_and_lengths(tmp_path: Path) -> None:
    argv = rolescope_load_argv(
        "http://127.0.0.1:1", Workload(4, 12, 64, 32, "sherlock"), tmp_path / "t", tmp_path / "o"
    )
    assert argv[argv.index("--api") + 1] == "openai"
    assert argv[argv.index("--rate") + 1] == "4" and argv[argv.index("--arrival") + 1] == "poisson"
    assert argv[argv.index("--max-tokens") + 1] == "32" and "--ignore-eos" in argv
    assert argv[argv.index("--model") + 1] == "sherlock"


def test_mock_server_has_fixed_timing_on_loopback() -> None:
    argv = mock_server_argv(Path("guidellm"), 1234, MockTiming())
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    for flag in ("--ttft-ms-std", "--itl-ms-std", "--output-tokens-std"):
        assert argv[argv.index(flag) + 1] == "0"
    assert argv[argv.index("--ttft-ms") + 1] == "150" and argv[argv.index("--itl-ms") + 1] == "20"


def test_every_tool_leads_a_round_in_turn() -> None:
    tools = ["aiperf", "guidellm", "rolescope"]
    firsts = [round_order(tools, i)[0] for i in range(3)]
    assert firsts == tools
    assert sorted(round_order(tools, 4)) == sorted(tools)
    assert round_order([], 1) == []


def test_pooled_windows_keep_every_sample_and_note_once() -> None:
    pooled = Pooled("aiperf")
    window = ToolFigures("aiperf", {"ttft": [1.0], "itl": [2.0], "e2e": [3.0]}, 1, ("retried",))
    pooled.add(window)
    pooled.add(window)
    figures = pooled.figures()
    assert figures.samples_ms["e2e"] == [3.0, 3.0]
    assert figures.failures == 2 and pooled.windows == 2
    assert figures.notes == ("retried",)


def test_rounds_interleave_the_tools_and_a_failed_window_is_noted(tmp_path: Path) -> None:
    from rolescope.bench.peer_rounds import ToolRun, run_rounds

    calls: list[tuple[str, int]] = []

    def tool(name: str, fail: bool = False) -> ToolRun:
        def window(url: str, workload: Workload, directory: Path) -> ToolFigures:
            calls.append((name, workload.seed))
            assert directory.is_dir()
            if fail:
                raise RuntimeError("exited with status 1\nlog tail")
            return ToolFigures(name, {"ttft": [1.0], "itl": [2.0], "e2e": [3.0]})

        return window

    workload = Workload(rate=4, seconds=1, prompt_tokens=8, output_tokens=8, model="m", seed=7)
    pooled = run_rounds(
        "http://127.0.0.1:1",
        workload,
        {"a": tool("a"), "b": tool("b", fail=True)},
        2,
        tmp_path,
        scrape_server=False,
        say=lambda _: None,
    )
    assert calls == [("a", 7), ("b", 7), ("b", 8), ("a", 8)]
    assert pooled["a"].windows == 2 and pooled["a"].figures().samples_ms["e2e"] == [3.0, 3.0]
    assert pooled["b"].windows == 0
    assert pooled["b"].notes == ["round 1: exited with status 1", "round 2: exited with status 1"]
