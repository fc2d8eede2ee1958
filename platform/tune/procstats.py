"""CPU time and resident memory of the service's process tree, read from /proc (Linux).

The service may run uvicorn workers in child processes, so every figure sums
the whole tree under the launched pid.
"""

from __future__ import annotations

import os
from pathlib import Path

from rolescope.profiling.pyspy import children_of

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _tree(pid: int) -> list[int]:
    return [pid, *children_of(pid)]


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by `pid` and its live descendants."""
    return sum(_cpu_ticks(p) for p in _tree(pid)) / _TICKS_PER_SECOND


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid` and its live descendants."""
    total = 0
    for p in _tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
                break
    return total
