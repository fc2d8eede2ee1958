"""Collapsed stacks (py-spy's `--format raw`, Brendan Gregg's folded format) and the function table.

A profile is a multiset of stacks, root first, each with its sample count. Every
other artifact (speedscope JSON, flame graphs, the function table, the
comparison) is computed from this one structure.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

Stack = tuple[str, ...]

_COUNT_AT_END = re.compile(r"^(?P<stack>.*\S)\s+(?P<count>\d+)$", re.DOTALL)
# With --subprocesses py-spy prefixes a frame `process 1234:"cmdline"`; the pid differs
# from run to run, so it is dropped to let runs of the same service line up.
_PROCESS_FRAME = re.compile(r'^process \d+:"(?P<cmd>.*)"$', re.DOTALL)
_FRAME = re.compile(r"^(?P<name>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


@dataclass(frozen=True)
class Profile:
    """Samples per stack (root first)."""

    stacks: Mapping[Stack, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.stacks.values())

    def merged(self, other: Profile) -> Profile:
        counts: Counter[Stack] = Counter(self.stacks)
        counts.update(other.stacks)
        return Profile(dict(counts))


def merge(profiles: Iterable[Profile]) -> Profile:
    counts: Counter[Stack] = Counter()
    for profile in profiles:
        counts.update(profile.stacks)
    return Profile(dict(counts))


def normalize_frame(frame: str) -> str:
    match = _PROCESS_FRAME.match(frame)
    if match:
        return 'process:"' + " ".join(match.group("cmd").split()) + '"'
    return frame


def split_frame(frame: str) -> tuple[str, str, int | None]:
    """`name (file:line)` → (name, file, line); frames of other shapes keep their text as the name."""
    match = _FRAME.match(frame)
    if not match:
        return frame, "", None
    line = match.group("line")
    return match.group("name"), match.group("file"), int(line) if line else None


def parse_collapsed(text: str) -> Profile:
    """Parse folded stacks; a stack may span lines when a process command line held a newline."""
    counts: Counter[Stack] = Counter()
    pending = ""
    for line in text.splitlines():
        pending = f"{pending}\n{line}" if pending else line
        match = _COUNT_AT_END.match(pending)
        if not match:
            continue
        pending = ""
        frames = _split_stack(match.group("stack"))
        if frames:
            counts[tuple(normalize_frame(f) for f in frames)] += int(match.group("count"))
    return Profile(dict(counts))


def _split_stack(stack: str) -> list[str]:
    """Split on `;` outside double quotes (a process frame's command line may contain `;`)."""
    frames: list[str] = []
    current: list[str] = []
    quoted = False
    for char in stack:
        if char == '"':
            quoted = not quoted
        if char == ";" and not quoted:
            frames.append("".join(current))
            current = []
        else:
            current.append(char)
    frames.append("".join(current))
    return [f for f in frames if f.strip()]


def read_collapsed(path: Path) -> Profile:
    return parse_collapsed(path.read_text(encoding="utf-8", errors="replace"))


def format_collapsed(profile: Profile) -> str:
    lines = [";".join(stack) + f" {count}" for stack, count in sorted(profile.stacks.items())]
    return "\n".join(lines) + ("\n" if lines else "")


@dataclass(frozen=True)
class FunctionShare:
    """One function's samples: `self` where it was the leaf, `total` where it was anywhere on the stack."""

    function: str
    self_samples: int
    total_samples: int
    self_share: float
    total_share: float


def function_samples(profile: Profile) -> tuple[Counter[str], Counter[str]]:
    """Self and total samples per function; recursion counts a stack once for its total."""
    self_counts: Counter[str] = Counter()
    total_counts: Counter[str] = Counter()
    for stack, count in profile.stacks.items():
        self_counts[stack[-1]] += count
        for frame in set(stack):
            total_counts[frame] += count
    return self_counts, total_counts


def function_table(profile: Profile, *, by: str = "self") -> list[FunctionShare]:
    """Every function with its self and total share of samples, largest first (`by` = self | total)."""
    total = profile.total
    self_counts, total_counts = function_samples(profile)
    rows = [
        FunctionShare(
            function=name,
            self_samples=self_counts.get(name, 0),
            total_samples=total_counts[name],
            self_share=self_counts.get(name, 0) / total if total else 0.0,
            total_share=total_counts[name] / total if total else 0.0,
        )
        for name in total_counts
    ]
    def key(row: FunctionShare) -> tuple[int, int, str]:
        first, second = (row.self_samples, row.total_samples) if by == "self" else (
            row.total_samples, row.self_samples
        )
        return -first, -second, row.function

    return sorted(rows, key=key)
