"""Process figures of real child processes: CPU, resident memory, threads, descriptors, the tree."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rolescope.procstats import (
    children_of,
    cpu_seconds,
    is_python,
    process_cpu_seconds,
    process_stats,
    rss_bytes,
)

# A child that burns CPU for a while, holds 64 MB resident, 3 extra threads and 10 open files,
# then starts a grandchild that does the same (minus the grandchild), and reports both pids.
_HOLDER = """
import os, subprocess, sys, threading, time
block = bytearray(64 * 1024 * 1024)
for i in range(0, len(block), 4096):
    block[i] = 1
files = [open(os.devnull) for _ in range(10)]
for _ in range(3):
    threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
end = time.process_time() + 0.3
while time.process_time() < end:
    pass
kid = None
if sys.argv[1] == "parent":
    kid = subprocess.Popen([sys.executable, "-c", sys.argv[2], "child", ""], stdout=subprocess.PIPE)
    kid.stdout.readline()
print(os.getpid(), kid.pid if kid else 0, flush=True)
time.sleep(30)
"""


@contextmanager
def holder() -> Iterator[tuple[int, int]]:
    process = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, "parent", _HOLDER], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        parent, child = (int(x) for x in process.stdout.readline().split())
        yield parent, child
    finally:
        for pid in children_of(process.pid):
            subprocess.run(["kill", "-9", str(pid)], check=False)
        process.kill()
        process.wait()


def test_figures_of_one_process() -> None:
    with holder() as (parent, _child):
        stats = process_stats(parent)
        assert stats.rss_bytes > 64 * 1024 * 1024
        assert stats.threads >= 4
        assert stats.open_files >= 10 + 3  # the files plus stdin, stdout, stderr
        assert 0.25 <= stats.cpu_s < 5
        assert process_cpu_seconds(parent) >= stats.cpu_s
        assert is_python(parent)


def test_tree_figures_sum_the_descendants() -> None:
    with holder() as (parent, child):
        assert children_of(parent) == [child]
        assert cpu_seconds(parent) >= process_cpu_seconds(parent) + process_cpu_seconds(child) - 0.05
        assert cpu_seconds(parent) >= 0.5
        assert rss_bytes(parent) > 2 * 64 * 1024 * 1024


def test_a_process_that_is_gone_reads_as_nothing() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    time.sleep(0.05)
    assert children_of(gone.pid) == []
    assert process_cpu_seconds(gone.pid) == 0.0
    assert cpu_seconds(gone.pid) == 0.0 and rss_bytes(gone.pid) == 0
    assert not is_python(gone.pid)
