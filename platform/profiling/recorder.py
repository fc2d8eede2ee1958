"""`record`: profile a process or a command and write every artifact of a profile directory.

Layout of the directory (the run directory's `profile/`):
  profile.txt            folded stacks, all segments merged (py-spy raw format)
  segments/NN.txt        the raw py-spy output of each consecutive segment
  profile.speedscope.json, flamegraph.svg, functions.json, layers.json, profile.json (what ran, how)

A profile taken in several consecutive segments gives the comparison several
observations of each function's share from one run.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rolescope.errors import ConfigError
from rolescope.profiling.collapsed import (
    Profile,
    format_collapsed,
    function_table,
    merge,
    read_collapsed,
)
from rolescope.profiling.flamegraph import render_svg
from rolescope.profiling.layers import layer_table
from rolescope.profiling.pyspy import find_serving_worker, record_raw
from rolescope.profiling.speedscope import to_speedscope
from rolescope.rundir import (
    FLAMEGRAPH_FILE,
    FUNCTIONS_FILE,
    PROFILE_COLLAPSED,
    PROFILE_LAYERS_FILE,
    PROFILE_META,
    PROFILE_SEGMENTS_DIR,
    PROFILE_SPEEDSCOPE,
)

COLLAPSED = PROFILE_COLLAPSED
SEGMENTS = PROFILE_SEGMENTS_DIR


@dataclass
class ProfileRun:
    out_dir: Path
    target: str
    pid: int | None
    duration: int
    rate: int
    nonblocking: bool
    subprocesses: bool
    segments: int
    samples: int
    files: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["out_dir"] = str(self.out_dir)
        return data


def record(
    target: int | Sequence[str],
    duration: int,
    rate: int,
    out_dir: Path,
    *,
    subprocesses: bool = False,
    nonblocking: bool = False,
    segments: int = 1,
    find_worker: bool = False,
    py_spy: str | None = None,
    on_segment: Callable[[int, int], None] | None = None,
) -> ProfileRun:
    """Profile `target` (a pid, or a command to start) for `duration` seconds at `rate` Hz.

    With a pid, `find_worker` first picks the busiest python process under it
    (the uvicorn worker serving requests); `subprocesses` follows all children
    instead. A command is started by py-spy itself (so no extra ptrace
    permission is needed) and is recorded in one segment.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    seg_dir = out_dir / SEGMENTS
    seg_dir.mkdir(exist_ok=True)
    pid: int | None = None
    command: list[str] | None = None
    if isinstance(target, int):
        pid = find_serving_worker(target) if find_worker and not subprocesses else target
        label = f"pid {pid}" + (f" (worker of {target})" if pid != target else "")
    else:
        command = list(target)
        if not command:
            raise ConfigError("profile was given an empty command after `--`")
        label = " ".join(command)
        segments = 1
    if segments < 1 or duration < segments:
        raise ConfigError(f"segments ({segments}) must be between 1 and the duration in seconds ({duration})")
    per_segment = duration // segments
    profiles: list[Profile] = []
    for index in range(segments):
        path = seg_dir / f"{index + 1:02d}.txt"
        record_raw(
            path, pid=pid, command=command, duration=per_segment, rate=rate,
            subprocesses=subprocesses, nonblocking=nonblocking, py_spy=py_spy,
        )
        profiles.append(read_collapsed(path))
        if on_segment:
            on_segment(index + 1, segments)
    run = ProfileRun(
        out_dir=out_dir, target=label, pid=pid, duration=per_segment * segments, rate=rate,
        nonblocking=nonblocking, subprocesses=subprocesses, segments=segments, samples=0,
    )
    return write_artifacts(merge(profiles), run)


def write_artifacts(profile: Profile, run: ProfileRun) -> ProfileRun:
    out = run.out_dir
    run.samples = profile.total
    (out / COLLAPSED).write_text(format_collapsed(profile), encoding="utf-8")
    speedscope = to_speedscope(profile, name=f"rolescope: {run.target}")
    (out / PROFILE_SPEEDSCOPE).write_text(json.dumps(speedscope), encoding="utf-8")
    title = f"{run.target} — {profile.total} samples at {run.rate} Hz"
    (out / FLAMEGRAPH_FILE).write_text(render_svg(profile, title=title), encoding="utf-8")
    rows = [asdict(r) for r in function_table(profile)]
    (out / FUNCTIONS_FILE).write_text(json.dumps(rows, indent=1), encoding="utf-8")
    layers = [row.to_dict() for row in layer_table(profile, top=5)]
    (out / PROFILE_LAYERS_FILE).write_text(json.dumps(layers, indent=1), encoding="utf-8")
    run.files = {
        "collapsed": COLLAPSED,
        "segments": SEGMENTS,
        "speedscope": PROFILE_SPEEDSCOPE,
        "flamegraph": FLAMEGRAPH_FILE,
        "functions": FUNCTIONS_FILE,
        "layers": PROFILE_LAYERS_FILE,
    }
    meta = {**run.to_dict(), "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (out / PROFILE_META).write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return run


def load_runs(path: Path, *, split_segments: bool = True) -> list[Profile]:
    """The observations a path holds: a folded-stacks file is one; a profile directory gives its segments."""
    if path.is_file():
        return [read_collapsed(path)]
    if not path.is_dir():
        raise ConfigError(f"{path}: no such profile file or directory")
    seg_dir = path / SEGMENTS
    segments = sorted(seg_dir.glob("*.txt")) if seg_dir.is_dir() else []
    if split_segments and segments:
        return [read_collapsed(p) for p in segments]
    if (path / COLLAPSED).is_file():
        return [read_collapsed(path / COLLAPSED)]
    raise ConfigError(f"{path}: expected {COLLAPSED} or {SEGMENTS}/*.txt written by `rolescope profile`")
