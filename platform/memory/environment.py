"""What a baseline ran on, and the refusal to compare figures taken on different ground.

Allocation counts move with the interpreter and with every library on the
request path, so a baseline from another Python or other package versions is
refused rather than compared: the difference would be the upgrade, not the code.
"""

from __future__ import annotations

import hashlib
import platform
from collections.abc import Iterable
from importlib import metadata

from rolescope.errors import ConfigError
from rolescope.memory.model import Environment

# Everything on the in-process request path, plus memray itself (it does the counting).
SERVICE_PACKAGES: tuple[str, ...] = (
    "fastapi", "starlette", "pydantic", "pydantic-core", "pydantic-settings", "anyio", "httpx",
    "uvicorn", "prometheus-client", "opentelemetry-api", "opentelemetry-sdk",
    "PyYAML", "memray",
)


class EnvironmentMismatch(ConfigError):
    """A baseline and a candidate were recorded on different interpreters, packages or traffic."""


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def traffic_digest(lines: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.strip().encode())
        digest.update(b"\n")
    return "sha256:" + digest.hexdigest()


def capture_environment(
    *,
    role_versions: dict[str, str] | None = None,
    traffic: str = "",
    digest: str = "",
    records: int = 0,
    subset: str = "all",
) -> Environment:
    return Environment(
        python=platform.python_version(),
        implementation=platform.python_implementation(),
        platform=f"{platform.system()} {platform.machine()}",
        packages={name: _version(name) for name in SERVICE_PACKAGES},
        rolescope=_version("rolescope"),
        role_versions=dict(sorted((role_versions or {}).items())),
        traffic=traffic,
        traffic_digest=digest,
        traffic_records=records,
        traffic_subset=subset,
    )


def differences(baseline: Environment, candidate: Environment) -> list[str]:
    """Every difference that makes allocation counts incomparable, as short phrases."""
    found: list[str] = []
    if (baseline.implementation, baseline.python) != (candidate.implementation, candidate.python):
        found.append(
            f"Python {baseline.implementation} {baseline.python} in the baseline, "
            f"{candidate.implementation} {candidate.python} here"
        )
    for name in sorted(set(baseline.packages) | set(candidate.packages)):
        was, now = baseline.packages.get(name), candidate.packages.get(name)
        if was != now:
            found.append(f"{name} {was or 'absent'} in the baseline, {now or 'absent'} here")
    was_digest, now_digest = baseline.traffic_digest, candidate.traffic_digest
    if was_digest and now_digest and was_digest != now_digest:
        found.append(f"traffic {was_digest[:19]}… in the baseline, {now_digest[:19]}… here")
    if baseline.traffic_subset != candidate.traffic_subset:
        found.append(
            f"traffic subset {baseline.traffic_subset!r} in the baseline, {candidate.traffic_subset!r} here"
        )
    return found


def role_version_changes(baseline: Environment, candidate: Environment) -> list[str]:
    """Role versions that moved: compared anyway (a changed role is a change worth judging), but reported."""
    return [
        f"role {name}: {baseline.role_versions.get(name)} → {candidate.role_versions.get(name)}"
        for name in sorted(set(baseline.role_versions) | set(candidate.role_versions))
        if baseline.role_versions.get(name) != candidate.role_versions.get(name)
    ]


def check_comparable(baseline: Environment, candidate: Environment, source: str = "the baseline") -> None:
    """Raise EnvironmentMismatch naming every difference; return quietly when the figures are comparable."""
    found = differences(baseline, candidate)
    if found:
        raise EnvironmentMismatch(
            f"{source} was recorded on a different environment and is not compared ("
            + "; ".join(found)
            + "): record a new baseline here with `rolescope baseline record`."
        )
