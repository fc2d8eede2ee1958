"""Primary against candidate, field by field, with the primary-against-primary noise taken out.

Diffy's idea, for role replies. Each pair says, for each field, whether the two
answers differ: categorical fields (status, banned words used, constraints
broken, opener, closer, catchphrases) when their values are not equal, numeric
ones (output tokens, latency: relative change; confidence: absolute change)
when the change passes a threshold. A second file of pairs in which the primary
answered twice (or two replicas of it did) measures how often each field
differs by chance: it sets each numeric threshold (the 95th percentile of its
own changes) and each field's noise rate. Only a difference rate above the noise
rate counts, and only when it is above it beyond sampling chance (a one-sided
two-proportion z-test at 1 %); one above it by more than the tolerance fails.

Pure: pairs and role markers in, a `DiffReport` out.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from rolescope.diff.traits import TEXT_FIELDS, RoleMarkers, numeric_fields
from rolescope.mirroring.pairs import Answer, MirrorPair

# Thresholds used without a noise file: what counts as a change of a numeric field.
DEFAULT_THRESHOLDS: Mapping[str, float] = {"output_tokens": 0.10, "confidence": 0.02, "latency_s": 0.50}
RELATIVE_FIELDS = frozenset({"output_tokens", "latency_s"})
FIELDS: tuple[str, ...] = ("status", *TEXT_FIELDS, *DEFAULT_THRESHOLDS)
MAX_EXAMPLES = 3
# One-sided 1 % level: two primaries sampled anew differ by chance about as often as they agree.
Z_CRITICAL = 2.326
MarkersOf = Callable[[str, str | None], RoleMarkers]  # (role, version) → the markers to check against


@dataclass(frozen=True, slots=True)
class Example:
    message: str
    primary: str
    candidate: str


@dataclass(frozen=True, slots=True)
class FieldDiff:
    field: str
    compared: int  # pairs where both answers have this field
    differing: int
    rate: float
    noise_rate: float  # 0 without a noise file
    beyond_noise: float  # rate - noise_rate, never below 0
    threshold: float | None  # numeric fields: the change that counts
    primary_mean: float | None
    candidate_mean: float | None
    exceeds: bool  # beyond_noise > tolerance
    examples: tuple[Example, ...] = ()


@dataclass(frozen=True, slots=True)
class DiffReport:
    pairs: int
    noise_pairs: int
    tolerance: float
    fields: tuple[FieldDiff, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return not any(f.exceeds for f in self.fields)

    @property
    def beyond_noise(self) -> tuple[FieldDiff, ...]:
        return tuple(f for f in self.fields if f.beyond_noise > 0)

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "passed": self.passed}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DiffReport:
        """The report `as_dict` wrote (a run directory's `mirroring.json` keeps one)."""
        fields = tuple(
            FieldDiff(
                **{
                    **{k: v for k, v in item.items() if k != "examples"},
                    "examples": tuple(Example(**example) for example in item.get("examples", ())),
                }
            )
            for item in data.get("fields", ())
        )
        return cls(int(data["pairs"]), int(data["noise_pairs"]), float(data["tolerance"]), fields)


def _change(name: str, primary: float, candidate: float) -> float:
    if name in RELATIVE_FIELDS:
        return abs(candidate - primary) / max(abs(primary), 1e-9)
    return abs(candidate - primary)


def _values(pair: MirrorPair, name: str, markers_of: MarkersOf) -> tuple[object, object] | None:
    """The field's value in each answer, or None when one of them does not have it."""
    primary, candidate = pair.primary, pair.candidate
    if name == "status":
        return primary.status, candidate.status
    if name in TEXT_FIELDS:
        if primary.content is None or candidate.content is None:
            return None
        extract = TEXT_FIELDS[name]
        return (
            extract(primary.content, markers_of(pair.role, primary.version)),
            extract(candidate.content, markers_of(pair.role, candidate.version or primary.version)),
        )
    p, c = numeric_fields(primary)[name], numeric_fields(candidate)[name]
    return None if p is None or c is None else (p, c)


def _differs(name: str, values: tuple[object, object], threshold: float | None) -> bool:
    p, c = values
    if threshold is None:
        return p != c
    assert isinstance(p, float) and isinstance(c, float)
    return _change(name, p, c) > threshold


def learned_thresholds(noise: Sequence[MirrorPair], markers_of: MarkersOf) -> dict[str, float]:
    """Each numeric field's threshold: the 95th percentile of its change between two primaries
    (never below the default), so at most about 5 % of noise pairs count as different."""
    thresholds = dict(DEFAULT_THRESHOLDS)
    for name in DEFAULT_THRESHOLDS:
        changes = []
        for pair in noise:
            values = _values(pair, name, markers_of)
            if values is not None:
                p, c = values
                assert isinstance(p, float) and isinstance(c, float)
                changes.append(_change(name, p, c))
        if len(changes) >= 2:
            thresholds[name] = max(thresholds[name], statistics.quantiles(changes, n=20)[18])
    return thresholds


def _rate(pairs: Sequence[MirrorPair], name: str, threshold: float | None, markers_of: MarkersOf
          ) -> tuple[int, int, list[tuple[MirrorPair, tuple[object, object]]]]:
    compared, differing = 0, []
    for pair in pairs:
        values = _values(pair, name, markers_of)
        if values is None:
            continue
        compared += 1
        if _differs(name, values, threshold):
            differing.append((pair, values))
    return compared, len(differing), differing


def _mean(pairs: Sequence[MirrorPair], name: str, side: Callable[[MirrorPair], Answer]) -> float | None:
    if name not in DEFAULT_THRESHOLDS:
        return None
    values = [v for pair in pairs if (v := numeric_fields(side(pair))[name]) is not None]
    return statistics.fmean(values) if values else None


def compare_pairs(
    pairs: Sequence[MirrorPair],
    markers_of: MarkersOf,
    *,
    noise: Sequence[MirrorPair] = (),
    tolerance: float = 0.05,
) -> DiffReport:
    """Every field's difference rate, its noise rate, and whether the difference beyond the noise
    passes `tolerance` (a share of pairs, 0-1)."""
    thresholds = learned_thresholds(noise, markers_of) if noise else dict(DEFAULT_THRESHOLDS)
    fields: list[FieldDiff] = []
    for name in FIELDS:
        threshold = thresholds.get(name)
        compared, differing, examples = _rate(pairs, name, threshold, markers_of)
        noise_compared, noise_differing, _ = _rate(noise, name, threshold, markers_of)
        rate = differing / compared if compared else 0.0
        noise_rate = noise_differing / noise_compared if noise_compared else 0.0
        beyond = max(0.0, rate - noise_rate)
        if noise_compared and not _above_chance(differing, compared, noise_differing, noise_compared):
            beyond = 0.0
        fields.append(FieldDiff(
            field=name, compared=compared, differing=differing, rate=rate, noise_rate=noise_rate,
            beyond_noise=beyond, threshold=threshold,
            primary_mean=_mean(pairs, name, lambda p: p.primary),
            candidate_mean=_mean(pairs, name, lambda p: p.candidate),
            exceeds=beyond > tolerance,
            examples=tuple(
                Example(pair.message[:200], _shown(values[0]), _shown(values[1]))
                for pair, values in examples[:MAX_EXAMPLES]
            ),
        ))
    return DiffReport(len(pairs), len(noise), tolerance, tuple(fields))


def _above_chance(differing: int, compared: int, noise_differing: int, noise_compared: int) -> bool:
    """Whether the difference rate is above the noise rate beyond what sampling explains."""
    if compared == 0:
        return False
    pooled = (differing + noise_differing) / (compared + noise_compared)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / compared + 1 / noise_compared))
    if spread == 0:
        return differing / compared > noise_differing / noise_compared
    return (differing / compared - noise_differing / noise_compared) / spread > Z_CRITICAL


def _shown(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value) if value != "" else "—"
