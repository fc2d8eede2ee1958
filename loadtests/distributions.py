"""Length distributions for synthetic workloads: fixed, normal (mean, std), or an empirical histogram.

The same three shapes AIPerf and GuideLLM offer for prompt and output token
counts. A histogram file holds one bin a line, `TOKENS,COUNT` or
`LOW-HIGH,COUNT` (a count of requests whose length fell in that range, drawn
uniformly inside it); `#` starts a comment and a header line is allowed.
"""

from __future__ import annotations

import bisect
import itertools
import math
import random
from dataclasses import dataclass
from pathlib import Path

from rolescope.errors import ConfigError


@dataclass(frozen=True, slots=True)
class LengthDistribution:
    """Draws whole numbers ≥ `minimum`; a normal draw below it is clipped, as the peers do."""

    mean: float
    stddev: float = 0.0
    bins: tuple[tuple[int, int], ...] = ()  # (low, high) inclusive, for a histogram
    cumulative: tuple[float, ...] = ()  # cumulative weights, same length as bins
    minimum: int = 1
    source: str = ""

    @classmethod
    def fixed(cls, value: int, minimum: int = 1) -> LengthDistribution:
        return cls(mean=float(value), minimum=minimum)

    @classmethod
    def normal(cls, mean: float, stddev: float, minimum: int = 1) -> LengthDistribution:
        if stddev < 0:
            raise ValueError("a standard deviation cannot be negative")
        return cls(mean=float(mean), stddev=float(stddev), minimum=minimum)

    @classmethod
    def histogram(cls, bins: list[tuple[int, int, float]], source: str = "") -> LengthDistribution:
        """Bins of (low, high, weight); the mean is the weighted mean of bin midpoints."""
        total = sum(weight for _, _, weight in bins)
        if not bins or total <= 0:
            raise ValueError("a histogram needs at least one bin with a positive count")
        mean = sum((low + high) / 2 * weight for low, high, weight in bins) / total
        cumulative = tuple(itertools.accumulate(weight for _, _, weight in bins))
        return cls(
            mean=mean,
            bins=tuple((low, high) for low, high, _ in bins),
            cumulative=cumulative,
            minimum=min(low for low, _, _ in bins),
            source=source,
        )

    @property
    def kind(self) -> str:
        if self.bins:
            return "histogram"
        return "normal" if self.stddev > 0 else "fixed"

    def sample(self, rng: random.Random) -> int:
        if self.bins:
            pick = rng.random() * self.cumulative[-1]
            low, high = self.bins[bisect.bisect_right(self.cumulative, pick)]
            return low if low == high else rng.randint(low, high)
        if self.stddev == 0:
            return max(self.minimum, round(self.mean))
        return max(self.minimum, round(rng.gauss(self.mean, self.stddev)))

    def describe(self) -> str:
        if self.bins:
            return f"histogram {self.source} (mean {self.mean:.0f})"
        if self.stddev > 0:
            return f"normal mean {self.mean:g} std {self.stddev:g}"
        return f"fixed {self.mean:g}"


def _parse_bin(field: str) -> tuple[int, int]:
    low_text, sep, high_text = field.partition("-")
    low = int(low_text)
    high = int(high_text) if sep else low
    if low < 1 or high < low:
        raise ValueError
    return low, high


def read_histogram(path: Path) -> LengthDistribution:
    """A histogram file as a distribution; every bad line is named at once."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read histogram file {path}: {exc.strerror}") from exc
    bins: list[tuple[int, int, float]] = []
    problems: list[str] = []
    for lineno, raw in enumerate(lines, start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = [f.strip() for f in line.replace("\t", ",").split(",")]
        try:
            if len(fields) != 2:
                raise ValueError
            low, high = _parse_bin(fields[0])
            weight = float(fields[1])
            if not math.isfinite(weight) or weight < 0:
                raise ValueError
        except ValueError:
            if not bins and not problems and not any(ch.isdigit() for ch in fields[0]):
                continue  # a header such as "tokens,count"
            problems.append(
                f"{path}, line {lineno}: expected TOKENS,COUNT or LOW-HIGH,COUNT with whole tokens ≥ 1 "
                f"and a count ≥ 0; got {raw.strip()!r}"
            )
            continue
        bins.append((low, high, weight))
    if not problems and sum(w for _, _, w in bins) <= 0:
        problems.append(f"{path}: no bin with a positive count")
    if problems:
        raise ConfigError("\n".join(problems))
    return LengthDistribution.histogram(bins, source=str(path))
