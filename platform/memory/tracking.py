"""Counting every allocation of a block of work with memray, and reading the totals back.

memray sees each allocation and free (tracemalloc only sees the blocks still
alive), so total allocations and bytes divided by requests is an honest
allocs/op and bytes/op. Python's own allocator (pymalloc) is traced too:
without it the small objects that make up most of a request would be
invisible behind pymalloc's arenas.
"""

from __future__ import annotations

import gc
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SITES_KEPT = 25
# Every location is read, so that the event loop's bookkeeping can be taken out of the totals.
_ALL_LOCATIONS = 1_000_000
# The event loop's own bookkeeping, as (file, function; None: any): each loop iteration allocates
# a little (the selector's result list, wake-up reads, the ready queue), and how many iterations a
# block of work takes follows the wall clock (a worker thread, SQLite's, finishing before or after
# the next `select`), not the requests. Counted, they moved repeats of one replay by up to 4 %
# while every site on the request path moved by well under 1 %.
LOOP_BOOKKEEPING: frozenset[tuple[str, str | None]] = frozenset(
    {
        ("selectors.py", None),
        ("asyncio/base_events.py", "_run_once"),
        ("asyncio/base_events.py", "run_forever"),
        ("asyncio/base_events.py", "_add_callback"),
        ("asyncio/selector_events.py", "_process_events"),
        ("asyncio/selector_events.py", "_read_from_self"),
        ("asyncio/unix_events.py", "_process_self_data"),
    }
)
# Where installed code lives differs between machines; a site is named from here on.
_PATH_MARKERS = ("site-packages/", "dist-packages/", "-py3-none-any/", "/lib/python3.")


def short_path(path: str) -> str:
    """`…/site-packages/httpx/_models.py` → `httpx/_models.py`; stdlib keeps `json/encoder.py`."""
    for marker in _PATH_MARKERS:
        at = path.rfind(marker)
        if at >= 0:
            rest = path[at + len(marker):]
            return rest.split("/", 1)[1] if marker.startswith("/lib/") and "/" in rest else rest
    return path


@dataclass(frozen=True)
class Site:
    function: str
    file: str
    line: int
    allocations: int
    bytes: int


@dataclass
class Totals:
    """What memray saw between start and stop; `retained_bytes` is what was still allocated at the stop."""

    allocations: int = 0
    bytes: int = 0
    peak_bytes: int = 0
    retained_bytes: int = 0
    sites: list[Site] = field(default_factory=list)


def read_capture(path: Path, sites: int = SITES_KEPT) -> Totals:
    """Totals, peak, still-allocated bytes and the top sites (by count and by bytes) of a capture file."""
    from memray import FileReader
    from memray._memray import compute_statistics  # the public API has no summary statistics

    stats = compute_statistics(str(path), num_largest=_ALL_LOCATIONS)
    by_location: dict[tuple[str, str, int], list[int]] = {}
    for (function, file, line), count in stats.top_locations_by_count:
        by_location.setdefault((function, short_path(file), int(line)), [0, 0])[0] = int(count)
    for (function, file, line), size in stats.top_locations_by_size:
        by_location.setdefault((function, short_path(file), int(line)), [0, 0])[1] = int(size)
    work: dict[tuple[str, str, int], list[int]] = {}
    bookkeeping = [0, 0]
    for where, (count, size) in by_location.items():
        if is_loop_bookkeeping(where[1], where[0]):
            bookkeeping[0] += count
            bookkeeping[1] += size
        else:
            work[where] = [count, size]
    by_count = sorted(work, key=lambda where: work[where][0], reverse=True)[:sites]
    by_size = sorted(work, key=lambda where: work[where][1], reverse=True)[:sites]
    top = by_count + [where for where in by_size if where not in by_count]
    reader = FileReader(str(path))
    try:
        retained = sum(r.size for r in reader.get_leaked_allocation_records(merge_threads=True))
    finally:
        reader.close()
    return Totals(
        allocations=int(stats.total_num_allocations) - bookkeeping[0],
        bytes=int(stats.total_memory_allocated) - bookkeeping[1],
        peak_bytes=int(stats.peak_memory_allocated),
        retained_bytes=int(retained),
        sites=[Site(f, fl, ln, *work[(f, fl, ln)]) for (f, fl, ln) in top],
    )


def is_loop_bookkeeping(file: str, function: str) -> bool:
    return (file, None) in LOOP_BOOKKEEPING or (file, function) in LOOP_BOOKKEEPING


@contextmanager
def tracked(directory: Path | None = None, name: str = "capture.bin") -> Iterator[Totals]:
    """Track allocations inside the block; the yielded Totals is filled in when the block ends.

    A full collection runs before the start (so earlier garbage is not freed on
    our account) and before the stop (so cyclic garbage made by the block is
    not counted as retained).
    """
    from memray import FileFormat, Tracker

    totals = Totals()
    with tempfile.TemporaryDirectory(prefix="rolescope-memray-") as scratch:
        path = (directory or Path(scratch)) / name
        path.unlink(missing_ok=True)
        gc.collect()
        with Tracker(str(path), trace_python_allocators=True, file_format=FileFormat.ALL_ALLOCATIONS):
            yield totals
            gc.collect()
        found = read_capture(path)
    for name_ in ("allocations", "bytes", "peak_bytes", "retained_bytes", "sites"):
        setattr(totals, name_, getattr(found, name_))
