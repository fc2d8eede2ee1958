"""The shadow-mirroring section of a verdict: what the mirror did during the runs, and the pairs' diff.

A tune run whose roles mirror to a candidate leaves `mirroring.json` in its
directory (the mirror's outcome counts over the load runs, and the diff of the
pairs they produced); a run without mirroring leaves none, and the verdict's
forms say nothing about it. The section informs; it does not change the verdict
(`rolescope diff --noise` is the gate for replies).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolescope.diff.compare import DiffReport
from rolescope.errors import ConfigError
from rolescope.rundir import MIRRORING_FILE

OUTCOMES: tuple[str, ...] = ("ok", "shed", "failed", "timeout")
# How the outcome labels read in the report: an `ok` mirror was sent and answered.
OUTCOME_TITLES = {"ok": "mirrored", "shed": "shed", "failed": "failed", "timeout": "timed out"}


@dataclass(frozen=True, slots=True)
class MirroringSection:
    counts: dict[str, int]  # by outcome: ok, shed, failed, timeout
    targets: tuple[str, ...]  # where the pairs were mirrored to
    pairs_file: str  # relative to the run directory
    diff: DiffReport | None  # None when no pair was written

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": {outcome: self.counts.get(outcome, 0) for outcome in OUTCOMES},
            "targets": list(self.targets),
            "pairs_file": self.pairs_file,
            "diff": self.diff.as_dict() if self.diff is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MirroringSection:
        diff = data.get("diff")
        return cls(
            counts={outcome: int(data["counts"].get(outcome, 0)) for outcome in OUTCOMES},
            targets=tuple(str(t) for t in data.get("targets", ())),
            pairs_file=str(data.get("pairs_file", "")),
            diff=DiffReport.from_dict(diff) if diff else None,
        )


def write_section(section: MirroringSection, directory: Path) -> Path:
    path = directory / MIRRORING_FILE
    path.write_text(json.dumps(section.as_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def find_section(paths: list[Path]) -> MirroringSection | None:
    """The section of the first of `paths` that holds a `mirroring.json`, else None."""
    for path in paths:
        file = path / MIRRORING_FILE
        if file.is_file():
            try:
                return MirroringSection.from_dict(json.loads(file.read_text(encoding="utf-8")))
            except (ValueError, KeyError, TypeError) as exc:
                raise ConfigError(
                    f"{file}: expected the mirroring section a tune run writes ({exc})"
                ) from exc
    return None


def counts_line(section: MirroringSection) -> str:
    return ", ".join(f"{OUTCOME_TITLES[o]} {section.counts.get(o, 0)}" for o in OUTCOMES)


def summary_lines(section: MirroringSection) -> list[str]:
    """The section of summary.md."""
    targets = ", ".join(f"`{t}`" for t in section.targets) or "a candidate"
    lines = ["### Shadow mirroring", "", f"Mirrored to {targets}: {counts_line(section)}.", ""]
    diff = section.diff
    if diff is None:
        return [*lines, "No mirrored pair was written, so there is no diff.", ""]
    changed = diff.beyond_noise
    noise = f"{diff.noise_pairs} noise pairs" if diff.noise_pairs else "no noise pairs (default thresholds)"
    lines += [f"Diff of {diff.pairs} pairs ({noise}, tolerance {diff.tolerance:.0%}): "
              + ("nothing changed beyond the noise." if not changed else
                 f"{len(changed)} field(s) changed beyond the noise."), ""]
    if changed:
        lines += ["| field | differ | rate | noise | primary → candidate | |", "|---|---|---|---|---|---|"]
        for item in changed:
            means = (f"{item.primary_mean:.4g} → {item.candidate_mean:.4g}"
                     if item.primary_mean is not None and item.candidate_mean is not None else "")
            lines.append(f"| `{item.field}` | {item.differing}/{item.compared} | {item.rate:.1%} "
                         f"| {item.noise_rate:.1%} | {means} | {'over tolerance' if item.exceeds else ''} |")
        lines.append("")
        for item in changed:
            for example in item.examples[:2]:
                lines.append(f"- `{item.field}`, message “{_short(example.message)}”: primary "
                             f"“{_short(example.primary)}”, candidate “{_short(example.candidate)}”")
        lines.append("")
    return lines


def _short(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
