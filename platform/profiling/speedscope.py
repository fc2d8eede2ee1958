"""Speedscope JSON (https://www.speedscope.app/file-format-schema.json) from collapsed stacks."""

from __future__ import annotations

from typing import Any

from rolescope.profiling.collapsed import Profile, split_frame

SCHEMA = "https://www.speedscope.app/file-format-schema.json"


def to_speedscope(profile: Profile, name: str = "rolescope profile") -> dict[str, Any]:
    """One `sampled` profile: each distinct stack is one sample weighted by its count."""
    frame_index: dict[str, int] = {}
    frames: list[dict[str, Any]] = []
    samples: list[list[int]] = []
    weights: list[int] = []
    for stack, count in sorted(profile.stacks.items()):
        indices = []
        for frame in stack:
            if frame not in frame_index:
                frame_index[frame] = len(frames)
                func, file, line = split_frame(frame)
                entry: dict[str, Any] = {"name": func}
                if file:
                    entry["file"] = file
                if line is not None:
                    entry["line"] = line
                frames.append(entry)
            indices.append(frame_index[frame])
        samples.append(indices)
        weights.append(count)
    total = sum(weights)
    return {
        "$schema": SCHEMA,
        "name": name,
        "exporter": "rolescope",
        "activeProfileIndex": 0,
        "shared": {"frames": frames},
        "profiles": [
            {
                "type": "sampled",
                "name": name,
                "unit": "none",
                "startValue": 0,
                "endValue": total,
                "samples": samples,
                "weights": weights,
            }
        ],
    }
