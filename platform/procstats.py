"""CPU time, resident memory, threads and open files of a process or a process tree, through psutil.

The service may run uvicorn workers in child processes, so the tree figures
sum everything under the launched pid. A process that exits while it is being
read counts as zero: the figures are taken from outside, at any moment.
"""

from __future__ import annotations

from dataclasses import dataclass

import psutil


@dataclass(frozen=True, slots=True)
class ProcessStats:
    rss_bytes: int
    open_files: int  # file descriptors, sockets and pipes included
    threads: int
    cpu_s: float


def children_of(pid: int) -> list[int]:
    """Every live descendant of `pid`; empty when `pid` is gone."""
    try:
        return sorted(child.pid for child in psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return []


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process, all its threads included (0 once it is gone)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return float(times.user + times.system)


def is_python(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        return "python" in (process.exe() or process.name()).rsplit("/", 1)[-1]
    except psutil.Error:
        return False


def _tree(pid: int) -> list[int]:
    return [pid, *children_of(pid)]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by `pid` and its live descendants."""
    return sum(process_cpu_seconds(p) for p in _tree(pid))


def rss_bytes(pid: int) -> int:
    """Resident set size of `pid` and its live descendants."""
    total = 0
    for p in _tree(pid):
        try:
            total += int(psutil.Process(p).memory_info().rss)
        except psutil.Error:
            continue
    return total


def process_stats(pid: int) -> ProcessStats:
    """Resident memory, open file descriptors, threads and CPU time of one live process.

    Raises `psutil.NoSuchProcess` when the process is gone: a caller watching one
    service must notice that it died rather than read zeros.
    """
    process = psutil.Process(pid)
    with process.oneshot():
        times = process.cpu_times()
        return ProcessStats(
            rss_bytes=int(process.memory_info().rss),
            open_files=process.num_fds(),
            threads=process.num_threads(),
            cpu_s=float(times.user + times.system),
        )
