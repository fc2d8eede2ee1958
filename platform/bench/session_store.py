"""What SQLite's `synchronous` setting costs a chat exchange, side by side in one run.

Each round writes the same exchanges (concurrently, as the event loop would) into a
fresh file under every mode, interleaved so drift hits all modes alike; figures
are medians over rounds, given as exchanges per second and as ratios to NORMAL,
the default. Reads (a session's history) are measured once per round on NORMAL.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console

from rolescope.storage.base import ExchangeRecord, MemoryPolicyView, Turn
from rolescope.storage.sqlite_store import SqliteSessionStore, Synchronous

MODES: tuple[Synchronous, ...] = ("OFF", "NORMAL", "FULL")
POLICY = MemoryPolicyView(max_turns=20, ttl_seconds=None)


def _exchange(n: int) -> ExchangeRecord:
    now = time.time()
    return ExchangeRecord(
        f"session-{n % 50:04d}",
        "sherlock",
        None,
        Turn("user", f"What do you make of clue number {n}?", now),
        Turn("assistant", "Elementary. The mud on your boots tells me you came by the river path. " * 3, now),
    )


async def _write_rate(path: Path, mode: Synchronous, exchanges: int, concurrency: int) -> float:
    store = SqliteSessionStore(path, synchronous=mode)
    await store.open()
    gate = asyncio.Semaphore(concurrency)

    async def save(n: int) -> None:
        async with gate:
            await store.save_exchange(_exchange(n), POLICY)

    started = time.perf_counter()
    await asyncio.gather(*(save(n) for n in range(exchanges)))
    elapsed = time.perf_counter() - started
    await store.close()
    return exchanges / elapsed


async def _read_rate(path: Path, reads: int) -> float:
    store = SqliteSessionStore(path)
    await store.open()
    started = time.perf_counter()
    for n in range(reads):
        await store.get_session(f"session-{n % 50:04d}", POLICY)
    elapsed = time.perf_counter() - started
    await store.close()
    return reads / elapsed


def run(quick: bool = False) -> dict[str, float]:
    console = Console()
    rounds, exchanges, concurrency = (3, 300, 16) if quick else (7, 2000, 32)
    rates: dict[str, list[float]] = {mode: [] for mode in MODES}
    reads: list[float] = []
    with tempfile.TemporaryDirectory(prefix="rolescope-bench-store-") as folder:
        for round_index in range(rounds):
            for mode in MODES:
                path = Path(folder) / f"{mode}-{round_index}.db"
                rates[mode].append(asyncio.run(_write_rate(path, mode, exchanges, concurrency)))
            reads.append(asyncio.run(_read_rate(Path(folder) / f"NORMAL-{round_index}.db", exchanges)))
    medians = {mode: statistics.median(values) for mode, values in rates.items()}
    figures: dict[str, float] = {}
    for mode in MODES:
        figures[f"exchanges_per_s_{mode.lower()}"] = medians[mode]
        figures[f"write_ratio_{mode.lower()}_vs_normal"] = medians[mode] / medians["NORMAL"]
        console.print(
            f"synchronous={mode:<6} {medians[mode]:8.0f} exchanges/s   "
            f"×{medians[mode] / medians['NORMAL']:.2f} of NORMAL"
        )
    figures["history_reads_per_s"] = statistics.median(reads)
    figures["read_to_write_ratio_normal"] = figures["history_reads_per_s"] / medians["NORMAL"]
    console.print(
        f"history reads   {figures['history_reads_per_s']:8.0f} reads/s      "
        f"×{figures['read_to_write_ratio_normal']:.2f} of a NORMAL write"
    )
    return figures


if __name__ == "__main__":
    run()
