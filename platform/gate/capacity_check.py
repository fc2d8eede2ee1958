"""A candidate's capacity against a reference's: fail on a drop beyond the spec's tolerance.

`rolescope capacity` reports the rate found with its bracket: `low` is the
highest rate a full step held, `high` the lowest that failed, so the truth lies
between them. Two searches disagree by their bracket widths without anything
having changed, so the check compares the brackets, not the point estimates: it
fails only when even the candidate's upper bound is below the reference's lower
bound by more than the tolerance — a drop that the search's precision cannot
explain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rolescope.errors import ConfigError
from rolescope.gate.model import CheckResult

CAPACITY_FILE = "capacity.json"
CHECK_NAME = "capacity"


@dataclass(frozen=True)
class CapacityFound:
    """What one capacity search found: the rate and its bracket (None where the search had no bound)."""

    source: str
    rate_rps: float | None
    low: float | None
    high: float | None


def capacity_from_dict(data: dict[str, Any], source: str) -> CapacityFound:
    """The figures of a parsed `capacity.json`; a missing or mistyped field is a ConfigError naming it."""
    section = data.get("capacity")
    bracket = section.get("bracket") if isinstance(section, dict) else None
    if not isinstance(section, dict) or not isinstance(bracket, dict):
        raise ConfigError(
            f"{source}: capacity.bracket missing (expected a capacity.json of `rolescope capacity`)"
        )
    values: dict[str, float | None] = {}
    problems: list[str] = []
    for field, value in (
        ("rate_rps", section.get("rate_rps")),
        ("low", bracket.get("low")),
        ("high", bracket.get("high")),
    ):
        if value is None or (isinstance(value, int | float) and not isinstance(value, bool) and value > 0):
            values[field] = None if value is None else float(value)
        else:
            problems.append(f"{field}={value!r} (expected a rate > 0 or null)")
    if problems:
        raise ConfigError(f"{source}: capacity " + "; ".join(problems))
    return CapacityFound(source, values["rate_rps"], values["low"], values["high"])


def load_capacity(path: Path) -> CapacityFound:
    """The capacity of a `rolescope capacity` directory (or its `capacity.json` itself)."""
    file = path / CAPACITY_FILE if path.is_dir() else path
    if not file.is_file():
        raise ConfigError(f"{path}: no {CAPACITY_FILE} (expected a `rolescope capacity` output directory)")
    try:
        data = json.loads(file.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{file}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a JSON object")
    return capacity_from_dict(data, str(file))


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.3g} req/s"


def capacity_check(candidate: CapacityFound, reference: CapacityFound, drop_pct: float) -> CheckResult:
    """Pass unless the candidate's upper bound < the reference's lower bound × (1 − drop_pct/100).

    A candidate search that never failed has no upper bound: nothing shows a drop.
    A reference that held no rate has no lower bound: there is nothing to drop from.
    """
    limit = reference.low * (1 - drop_pct / 100) if reference.low is not None else 0.0
    upper = candidate.high if candidate.high is not None else float("inf")
    passed = upper >= limit
    figure = upper if candidate.high is not None else (candidate.low or 0.0)
    change = (
        f" ({(candidate.rate_rps / reference.rate_rps - 1) * 100:+.1f} % on the rates found)"
        if candidate.rate_rps and reference.rate_rps
        else ""
    )
    verdict = "drop beyond" if not passed else "within"
    return CheckResult(
        name=CHECK_NAME,
        kind="capacity",
        description=f"capacity: candidate's bracket top ≥ reference's bracket bottom − {drop_pct:g} %",
        figure=figure,
        limit=limit,
        direction="min",
        passed=passed,
        unit="req/s",
        statistics={
            "candidate": {"rate_rps": candidate.rate_rps, "low": candidate.low, "high": candidate.high},
            "reference": {"rate_rps": reference.rate_rps, "low": reference.low, "high": reference.high},
            "drop_pct": drop_pct,
            "candidate_source": candidate.source,
            "reference_source": reference.source,
        },
        message=f"candidate {_rate(candidate.rate_rps)} "
        f"in [{_rate(candidate.low)}, {_rate(candidate.high)}], "
        f"reference {_rate(reference.rate_rps)} in [{_rate(reference.low)}, {_rate(reference.high)}]"
        f"{change}: {verdict} the {drop_pct:g} % tolerance",
    )
