"""Shadow mirroring during a tune run: the mirror's outcome counts over the load runs, and the pairs' diff.

The launched service writes mirrored pairs into the run directory; its
`rolescope_mirror_requests_total` is read before the first load run and after
the last, so warm-up mirrors count in neither the figures nor the diff. When
nothing was mirrored, the (empty) pairs file is removed and no section is
written.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from rolescope.diff.compare import compare_pairs
from rolescope.diff.role_markers import markers_from
from rolescope.exporters import names
from rolescope.gate.mirroring import MirroringSection, write_section
from rolescope.mirroring.pairs import read_pairs
from rolescope.rundir import MIRROR_PAIRS_FILE

MirrorCounts = dict[str, float]


def mirror_counts(url: str, *, verify: object = True) -> MirrorCounts:
    """`rolescope_mirror_requests_total` by outcome, read from the service's /metrics."""
    prefix = names.MIRROR_REQUESTS_TOTAL + "{"
    counts: MirrorCounts = {}
    text = httpx.get(f"{url}/metrics", timeout=10, verify=verify).text  # type: ignore[arg-type]
    for line in text.splitlines():
        if line.startswith(prefix):
            counts[line.split('outcome="')[1].split('"')[0]] = float(line.split()[-1])
    return counts


def record_mirroring(
    out: Path,
    before: MirrorCounts,
    after: MirrorCounts,
    since_unix: float,
    roles_path: Path | None,
    tolerance: float,
) -> MirroringSection | None:
    """Write `mirroring.json` when the load runs mirrored anything; the diff covers pairs from
    `since_unix` on (the load runs', not the warm-up's)."""
    counts = {o: int(after.get(o, 0) - before.get(o, 0)) for o in names.MIRROR_OUTCOMES}
    pairs_path = out / MIRROR_PAIRS_FILE
    if sum(counts.values()) <= 0:
        if pairs_path.is_file() and pairs_path.stat().st_size == 0:
            pairs_path.unlink()
        return None
    pairs = [p for p in read_pairs(pairs_path) if p.arrival >= since_unix] if pairs_path.is_file() else []
    report = compare_pairs(pairs, markers_from(roles_path), tolerance=tolerance) if pairs else None
    section = MirroringSection(
        counts=counts,
        targets=tuple(dict.fromkeys(p.target for p in pairs)),
        pairs_file=MIRROR_PAIRS_FILE,
        diff=report,
    )
    write_section(section, out)
    return section
