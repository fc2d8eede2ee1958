"""`record_baseline`: replay traffic in-process under memray and summarise it per kind of request.

Each repeat starts a fresh app on a fresh SQLite file, warms it up (imports,
caches, the first connection), then replays each kind's requests under its own
memray tracker. The figures kept are the medians over the repeats, with their
spread, so a reader can see how reproducible they are.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rolescope.errors import ConfigError
from rolescope.memory.environment import capture_environment, traffic_digest
from rolescope.memory.model import Baseline, RepeatFigures
from rolescope.memory.replay import InProcessService, kind_of, replay
from rolescope.memory.summary import summarise
from rolescope.memory.tracking import Site, tracked

if TYPE_CHECKING:
    from rolescope.loadtests.traffic_format import TrafficRecord
    from rolescope.settings import Settings

Progress = Callable[[str], None]
MEASURED_KINDS = ("chat", "stream")
# The committed baseline's recipe; `record_baseline()` without arguments reproduces it, so a
# candidate measured with the defaults is comparable with loadtests/baselines/bundled.json.
DEFAULT_REPEATS = 3
DEFAULT_WARMUP = 30
DEFAULT_LIMIT = 120


def _digest_line(record: TrafficRecord) -> str:
    """The record as the digest reads it: a field added to the format stays out while unset, so
    traffic that does not use it keeps the digest its baselines were recorded with."""
    unset_additions: dict[str, Any] = {}
    if record.max_tokens is None:
        unset_additions["max_tokens"] = True
    if record.original.role_version is None:
        unset_additions["original"] = {"role_version"}
    return record.model_dump_json(exclude=unset_additions or None)


def _combine(parts: list[tuple[RepeatFigures, list[Site]]]) -> tuple[RepeatFigures, list[Site]]:
    """The whole traffic mix: sums of the kinds (peak: the largest)."""
    merged: dict[tuple[str, str, int], list[int]] = {}
    for _, sites in parts:
        for s in sites:
            entry = merged.setdefault((s.function, s.file, s.line), [0, 0])
            entry[0] += s.allocations
            entry[1] += s.bytes
    figures = RepeatFigures(
        requests=sum(p.requests for p, _ in parts),
        sessions=sum(p.sessions for p, _ in parts),
        allocations=sum(p.allocations for p, _ in parts),
        bytes=sum(p.bytes for p, _ in parts),
        peak_bytes=max(p.peak_bytes for p, _ in parts),
        retained_bytes=sum(p.retained_bytes for p, _ in parts),
    )
    return figures, [Site(f, fl, ln, c, b) for (f, fl, ln), (c, b) in merged.items()]


async def _one_repeat(
    settings: Settings, by_kind: dict[str, list[TrafficRecord]], warm: list[TrafficRecord], index: int
) -> dict[str, tuple[RepeatFigures, list[Site]]]:
    measured: dict[str, tuple[RepeatFigures, list[Site]]] = {}
    async with InProcessService(settings) as service:
        if warm:
            await replay(service.client, warm, f"warm{index}")
        for kind, records in by_kind.items():
            with tracked() as totals:
                outcome = await replay(service.client, records, f"r{index}{kind}")
            if outcome.errors:
                raise ConfigError(
                    f"{outcome.errors} of {outcome.requests} {kind} requests failed during the replay: "
                    "a baseline is only meaningful when the service answers every request"
                )
            figures = RepeatFigures(
                requests=outcome.requests, sessions=outcome.sessions, allocations=totals.allocations,
                bytes=totals.bytes, peak_bytes=totals.peak_bytes, retained_bytes=totals.retained_bytes,
            )
            measured[kind] = (figures, totals.sites)
    return measured


def record_baseline(
    traffic: Path | None = None,
    repeats: int = DEFAULT_REPEATS,
    warmup: int = DEFAULT_WARMUP,
    *,
    limit: int | None = DEFAULT_LIMIT,
    settings: Settings | None = None,
    progress: Progress | None = None,
) -> Baseline:
    """Replay `traffic` (the bundled sample by default) `repeats` times and return the baseline.

    `limit` keeps the first N records (in arrival order) for a quicker run (None: all); the
    baseline records which subset it measured, and refuses to be compared with
    another subset.
    """
    from rolescope.loadtests.traffic_format import default_traffic_path, read_traffic
    from rolescope.roles import load_roles
    from rolescope.settings import Settings

    if repeats < 1 or warmup < 0:
        raise ConfigError(f"repeats ({repeats}) must be ≥ 1 and warmup ({warmup}) ≥ 0")
    settings = settings or Settings()
    path = traffic or default_traffic_path()
    records = sorted(read_traffic(path), key=lambda r: (r.arrival, r.turn))
    if not records:
        raise ConfigError(f"{path}: the traffic file holds no requests")
    lines = [_digest_line(r) for r in records]
    subset = "all"
    if limit is not None and limit < len(records):
        records, subset = records[:limit], f"first {limit} of {len(records)}"
    by_kind = {k: [r for r in records if kind_of(r) == k] for k in MEASURED_KINDS}
    by_kind = {k: v for k, v in by_kind.items() if v}
    warm = records[:warmup]
    per_kind: dict[str, list[tuple[RepeatFigures, list[Site]]]] = {k: [] for k in [*by_kind, "all"]}
    for index in range(repeats):
        started = time.perf_counter()
        measured = asyncio.run(_one_repeat(settings, by_kind, warm, index))
        for kind, result in measured.items():
            per_kind[kind].append(result)
        per_kind["all"].append(_combine(list(measured.values())))
        if progress:
            progress(f"repeat {index + 1}/{repeats} took {time.perf_counter() - started:.1f} s")
    roles = load_roles(settings.roles_path)
    environment = capture_environment(
        role_versions={name: role.version for name, role in roles.items()},
        traffic=path.name,
        digest=traffic_digest(lines),
        records=len(records),
        subset=subset,
    )
    kinds = {k: summarise([f for f, _ in v], [s for _, s in v]) for k, v in per_kind.items()}
    return Baseline(
        recorded_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        repeats=repeats,
        warmup=len(warm),
        settings={"faults": settings.faults.model_dump(), "store": settings.store},
        environment=environment,
        kinds=kinds,
    )
