"""Per-kind memory figures from repeated measurements: medians, their spread, the top sites.

Pure functions over plain figures, shared by the in-process baseline recorder
and the live meter.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from rolescope.memory.model import AllocationSite, KindFigures, RepeatFigures
from rolescope.memory.tracking import Site


def spread_pct(values: Sequence[float]) -> float:
    """(max - min) / median, in percent; 0 for a single value."""
    middle = statistics.median(values)
    return 100.0 * (max(values) - min(values)) / middle if middle else 0.0


def summarise(repeats: list[RepeatFigures], sites: list[list[Site]]) -> KindFigures:
    """Medians over the repeats; the sites are those of the repeat closest to the median."""
    allocs = [r.allocations_per_request for r in repeats]
    sizes = [r.bytes_per_request for r in repeats]
    middle = statistics.median(allocs)
    closest = min(range(len(repeats)), key=lambda i: abs(allocs[i] - middle))
    requests = repeats[closest].requests or 1
    return KindFigures(
        requests=repeats[closest].requests,
        sessions=repeats[closest].sessions,
        allocations_per_request=middle,
        bytes_per_request=statistics.median(sizes),
        peak_bytes=int(statistics.median(r.peak_bytes for r in repeats)),
        retained_bytes_per_session=statistics.median(r.retained_bytes / max(r.sessions, 1) for r in repeats),
        allocations_spread_pct=spread_pct(allocs),
        bytes_spread_pct=spread_pct(sizes),
        repeats=repeats,
        top_sites=[
            AllocationSite(
                function=s.function, file=s.file, line=s.line,
                allocations_per_request=s.allocations / requests, bytes_per_request=s.bytes / requests,
            )
            for s in sorted(sites[closest], key=lambda s: (-s.allocations, -s.bytes))
        ],
    )
