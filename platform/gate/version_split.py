"""One-run A/B: the samples one version answered against another's, from the same run.

When a release policy splits sessions between two versions, every request of a
load run says which version answered it (`role_version` in `samples.jsonl`).
Both versions then ran on the same machine, in the same minutes, interleaved by
the split: the fairest comparison there is. The relative judgement compares
runs, not requests (requests inside one run are correlated), so each run is cut
into equal time slices and every slice of each version becomes one "run" of its
side. The slices pair up in time, so a slow minute slows both sides alike.

Pure: plain data in, plain data out.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field

from rolescope.errors import ConfigError
from rolescope.gate.model import CheckResult, RunData, Verdict
from rolescope.rundir import RequestSample

# Enough slices a side for the one-sided rank test to reach significance (8 a side: p ≥ 1/12870),
# few enough that each slice still holds a useful percentile in a short run.
DEFAULT_SLICES = 8


@dataclass(frozen=True)
class VersionChoice:
    """Which versions a one-run A/B compares (`--split-by-version`, `--primary-version`, `--slices`)."""

    candidate: str
    primary: str | None = None
    slices: int = DEFAULT_SLICES


@dataclass(frozen=True)
class VersionSplit:
    candidate_version: str
    primary_version: str
    candidate: list[RunData]
    reference: list[RunData]
    notes: list[str] = field(default_factory=list)


def versions_answered(runs: list[RunData]) -> Counter[str]:
    """How many requests each version answered, over every run."""
    return Counter(s.role_version for run in runs for s in run.samples if s.role_version)


def _slices(run: RunData, version: str, slices: int) -> list[RunData]:
    if not run.samples:
        return []
    first = min(s.start for s in run.samples)
    span = max(max(s.start for s in run.samples) - first, 1e-9)
    buckets: list[list[RequestSample]] = [[] for _ in range(slices)]
    for sample in run.samples:
        if sample.role_version == version:
            index = min(int((sample.start - first) / span * slices), slices - 1)
            buckets[index].append(sample)
    return [
        RunData(
            path=f"{run.path} (version {version}, slice {index + 1}/{slices})",
            samples=bucket,
            slis={},
            settings=run.settings,
            service={},
        )
        for index, bucket in enumerate(buckets)
        if bucket
    ]


def split_by_version(
    runs: list[RunData], candidate: str, primary: str | None = None, slices: int = DEFAULT_SLICES
) -> VersionSplit:
    """The candidate version's slices against the primary's (by default the other version that
    answered most). Raises ConfigError when the runs cannot be split that way."""
    if slices < 2:
        raise ConfigError(f"--slices is {slices}; expected at least 2")
    answered = versions_answered(runs)
    if not answered:
        raise ConfigError(
            "no request in these runs says which role version answered (role_version in samples.jsonl); "
            "run the load against a rolescope service that serves several versions"
        )
    seen = ", ".join(f"{v} ({n} requests)" for v, n in sorted(answered.items()))
    problems = []
    if candidate not in answered:
        problems.append(f"candidate version {candidate!r} answered no request; versions seen: {seen}")
    others = [v for v, _ in answered.most_common() if v != candidate]
    chosen = primary if primary is not None else (others[0] if others else None)
    if chosen is None:
        problems.append(f"only version {candidate!r} answered; there is nothing to compare it with")
    elif chosen not in answered or chosen == candidate:
        problems.append(
            f"primary version {chosen!r} is not another version that answered; versions seen: {seen}"
        )
    if problems:
        raise ConfigError("\n".join(problems))
    assert chosen is not None
    candidate_runs = [part for run in runs for part in _slices(run, candidate, slices)]
    reference_runs = [part for run in runs for part in _slices(run, chosen, slices)]
    notes = [
        f"one-run A/B: version {candidate} ({answered[candidate]} requests) against version {chosen} "
        f"({answered[chosen]} requests), the same run{'s' if len(runs) > 1 else ''} cut into "
        f"{slices} time slices a side"
    ]
    return VersionSplit(candidate, chosen, candidate_runs, reference_runs, notes)


def _named(check: CheckResult, split: VersionSplit) -> CheckResult:
    if check.kind != "relative":
        prefixed = f"version {split.candidate_version}: {check.message}" if check.message else ""
        return dataclasses.replace(check, message=prefixed)
    return dataclasses.replace(
        check,
        name=f"{check.name}@{split.candidate_version}",
        description=check.description.replace(
            "vs reference", f"of version {split.candidate_version} vs version {split.primary_version}"
        ),
        message=f"version {split.candidate_version} vs {split.primary_version}: {check.message}",
    )


def name_versions(verdict: Verdict, split: VersionSplit) -> Verdict:
    """The verdict with the versions named: in each check, the note, and the runs judged."""
    verdict.checks = [_named(check, split) for check in verdict.checks]
    verdict.notes = split.notes + verdict.notes
    return verdict
