"""The pure parts of the load-generator ceiling: steps, the server's truth, each step's judgement, the table.

A step passes for a tool when its ITL p50 and p90 are each within 1 ms of
the server's own (per stream: last send minus first send over the gaps
between, the same definition AIPerf and rolescope use) and it timed every
stream it sent. A tool's ceiling is the highest streamed token rate of a
passing step (its Poisson rate times the stream length).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.table import Table

from rolescope.bench.peer_compare import percentiles_ms

ITL_TOLERANCE_MS = 1.0
JUDGED = ("p50", "p90")


@dataclass(frozen=True, slots=True)
class Step:
    """Poisson arrivals at `rate` per second, each stream `tokens` long with `itl_ms` between tokens."""

    rate: float
    itl_ms: float
    tokens: int

    @property
    def offered_tokens_per_s(self) -> float:
        return self.rate * self.tokens


@dataclass(frozen=True, slots=True)
class ServerTruth:
    """What the server sent while one tool measured: per-stream ITL (ms) and the streamed token rate."""

    itl_ms: tuple[float, ...]
    tokens_per_s: float


def server_truth(streams: Sequence[Sequence[float]]) -> ServerTruth:
    """From `GET /record` rows `[first_send_s, last_send_s, tokens]`."""
    itl = tuple((last - first) * 1000 / (count - 1) for first, last, count in streams if count > 1)
    if not streams:
        return ServerTruth(itl, 0.0)
    start = min(row[0] for row in streams)
    end = max(row[1] for row in streams)
    tokens = sum(row[2] for row in streams)
    return ServerTruth(itl, tokens / (end - start) if end > start else 0.0)


@dataclass(frozen=True, slots=True)
class Judgement:
    tool: str
    step: Step
    tokens_per_s: float
    errors_ms: Mapping[str, float]
    timed: int
    failures: int
    reason: str

    @property
    def passed(self) -> bool:
        return not self.reason


def judge(
    tool: str, step: Step, tool_itl_ms: Sequence[float], failures: int, truth: ServerTruth
) -> Judgement:
    """Compare a tool's per-request ITL with the server's; the reason says why a step failed, empty if not."""
    errors: dict[str, float] = {}
    reasons: list[str] = []
    if not tool_itl_ms or not truth.itl_ms:
        reasons.append("no ITL measured" if not tool_itl_ms else "server sent no stream")
    else:
        measured = percentiles_ms(tool_itl_ms)
        sent = percentiles_ms(truth.itl_ms)
        for key in JUDGED:
            errors[key] = measured[key] - sent[key]
            if abs(errors[key]) > ITL_TOLERANCE_MS:
                reasons.append(f"ITL {key} off by {errors[key]:+.2f} ms")
    if failures:
        reasons.append(f"{failures} failed requests")
    return Judgement(tool, step, truth.tokens_per_s, errors, len(tool_itl_ms), failures, "; ".join(reasons))


def ceiling(judgements: Sequence[Judgement], tool: str) -> float:
    """The highest token rate a tool timed correctly; 0 when it passed no step.

    The step's offered rate, not the rate the server saw during that tool's
    window: the tools start, ramp and drain differently, so the rate over each
    one's own window differs at the same step, and the ceiling is a step both faced.
    """
    passed = [j.step.offered_tokens_per_s for j in judgements if j.tool == tool and j.passed]
    return max(passed, default=0.0)


def ceiling_table(judgements: Sequence[Judgement], tools: Sequence[str]) -> Table:
    """One row per step, one column per tool: pass/fail with the p50/p90 errors, then each tool's ceiling."""
    table = Table(
        title=f"load-generator ceiling: ITL within {ITL_TOLERANCE_MS:g} ms of the server's, one core"
    )
    table.add_column("step")
    table.add_column("offered tok/s", justify="right")
    for tool in tools:
        table.add_column(f"{tool} streamed tok/s", justify="right")
        table.add_column(f"{tool} ITL p50/p90 error", justify="right")
    steps = list(dict.fromkeys(j.step for j in judgements))
    for step in steps:
        row = [
            f"{step.rate:g} req/s × {step.tokens} tok, {step.itl_ms:g} ms",
            f"{step.offered_tokens_per_s:.0f}",
        ]
        for tool in tools:
            found = [j for j in judgements if j.tool == tool and j.step == step]
            row.extend(_cells(found[0]) if found else ["—", "—"])
        table.add_row(*row)
    summary = ["ceiling (offered tok/s)", ""]
    for tool in tools:
        summary.extend([f"{ceiling(judgements, tool):.0f}", ""])
    table.add_row(*summary)
    return table


def _cells(judgement: Judgement) -> list[str]:
    errors = "/".join(f"{judgement.errors_ms[key]:+.2f}" for key in JUDGED if key in judgement.errors_ms)
    verdict = "ok" if judgement.passed else f"FAIL ({judgement.reason})"
    return [f"{judgement.tokens_per_s:.0f}", f"{errors or '—'} ms {verdict}"]
