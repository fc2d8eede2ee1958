"""Interleaved windows of several load tools against one endpoint, their samples pooled per tool.

Each round runs every tool once, one after another, in an order that turns
by one every round, so drift of the machine during the run falls on every
tool alike. Each tool's per-request samples are pooled over its windows and
the percentiles computed the same way for all (`peer_compare.percentiles_ms`),
so differences come from measuring, not from percentile methods. Around each
window the server's `/metrics` can be scraped, for the server's own view of
that tool's requests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from rolescope.bench.peer_compare import FIGURES, ToolFigures
from rolescope.bench.peer_server_view import Buckets, add_buckets, scrape, window_delta
from rolescope.bench.peer_workload import Workload

# A tool window: (base URL, workload, a fresh directory for its files) -> its samples.
ToolRun = Callable[[str, Workload, Path], ToolFigures]


@dataclass
class Pooled:
    """One tool's samples over every window, and the server's bucket deltas over the same windows."""

    tool: str
    samples_ms: dict[str, list[float]] = field(default_factory=lambda: {f: [] for f in FIGURES})
    failures: int = 0
    windows: int = 0
    notes: list[str] = field(default_factory=list)
    server: dict[str, Buckets] = field(default_factory=dict)

    def add(self, figures: ToolFigures) -> None:
        for figure in FIGURES:
            self.samples_ms[figure].extend(figures.samples_ms.get(figure, ()))
        self.failures += figures.failures
        self.windows += 1
        self.notes.extend(n for n in figures.notes if n not in self.notes)

    def figures(self) -> ToolFigures:
        return ToolFigures(self.tool, self.samples_ms, self.failures, tuple(self.notes))


def round_order(tools: Sequence[str], round_index: int) -> list[str]:
    """The tools of one round, rotated by the round's index."""
    if not tools:
        return []
    shift = round_index % len(tools)
    return [*tools[shift:], *tools[:shift]]


def run_rounds(
    url: str,
    workload: Workload,
    tools: dict[str, ToolRun],
    rounds: int,
    work: Path,
    *,
    scrape_server: bool,
    say: Callable[[str], None] = print,
) -> dict[str, Pooled]:
    pooled = {name: Pooled(name) for name in tools}
    for index in range(rounds):
        round_workload = replace(workload, seed=workload.seed + index)
        for name in round_order(list(tools), index):
            say(f"round {index + 1}/{rounds}: {name} for {workload.seconds:g} s at {workload.rate:g} req/s")
            before = scrape(url) if scrape_server else ""
            window = work / f"round{index + 1}-{name}"
            window.mkdir(parents=True)
            try:
                figures = tools[name](url, round_workload, window)
            except RuntimeError as exc:
                say(f"{name}: window failed: {exc}")
                pooled[name].notes.append(f"round {index + 1}: {str(exc).splitlines()[0]}")
                continue
            pooled[name].add(figures)
            if scrape_server:
                delta = window_delta(before, scrape(url))
                current = pooled[name].server
                pooled[name].server = {f: add_buckets(current.get(f, {}), delta[f]) for f in delta}
    return pooled
