"""What will go wrong with a run, decided before it starts from one probe of the target.

Pure: the probe (`probe.py`) gathers what the target answered; this turns it,
with what the run will ask for, into findings a person reads on one screen.
An error stops the run (exit 2) before any load is sent; a warning is shown
and the run goes on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from rolescope.loadtests.targets.base import ApiName

Severity = Literal["error", "warning"]
AUTH_STATUSES = frozenset({401, 403})
_MISSING_PREFIXES = ("models not served", "the traffic names roles")


@dataclass(frozen=True, slots=True)
class Listing:
    """`GET /v1/roles` or `GET /v1/models`: what the target says it serves."""

    path: str
    status: int | None
    names: tuple[str, ...] | None  # None: the answer could not be read as a list
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Trial:
    """One real turn sent the way the run will send it."""

    role: str
    status: int | None
    error: str | None  # None: the turn was answered and read without a problem
    output_tokens: int = 0


@dataclass(frozen=True, slots=True)
class ProbeResult:
    unreachable: str | None = None
    listing: Listing | None = None
    trials: tuple[Trial, ...] = ()


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What the run will ask of the target."""

    api: ApiName
    host: str
    requests_by_role: Mapping[str, int]  # after --roles
    served_as: Literal["role", "model"] = "role"
    needed: Mapping[str, int] = field(default_factory=dict)  # names that must be listed, with requests
    key_variable: str = ""
    key_sent: bool = False
    roles_path: str | None = None
    personas_missing: tuple[str, ...] = ()
    personas_unsent: bool = False  # the target knows no roles and no role file gives their personas
    selection_unknown: tuple[str, ...] = ()
    traffic_roles: tuple[str, ...] = ()  # before --roles
    roles_selectable: bool = True  # the command has --roles to keep or map roles
    roles_option: str = "--roles"  # that option's name in the command (tune: --target-roles)


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Severity
    text: str


def _share(count: int, total: int) -> str:
    return f"{count} of {total} requests, {count / total:.0%}" if total else f"{count} requests"


def _auth(plan: RunPlan, statuses: list[int]) -> Finding | None:
    refused = sorted({s for s in statuses if s in AUTH_STATUSES})
    if not refused:
        return None
    status = "/".join(map(str, refused))
    if not plan.key_sent:
        return Finding(
            "error",
            f"the target wants an API key (HTTP {status}) and none was sent: put it in "
            f"${plan.key_variable} (or name another variable with --api-key-env)",
        )
    return Finding("error", f"the target refused the API key from ${plan.key_variable} (HTTP {status})")


def _listing(plan: RunPlan, listing: Listing) -> list[Finding]:
    if listing.status in AUTH_STATUSES:
        return []
    if listing.names is None:
        got = f"HTTP {listing.status}" if listing.status else (listing.error or "no answer")
        if plan.api in ("rolescope", "websocket"):
            return [
                Finding(
                    "error",
                    f"GET {listing.path} answered {got}: {plan.host} does not speak rolescope's API; "
                    "try --api openai or --api template",
                )
            ]
        return [
            Finding(
                "warning",
                f"GET {listing.path} answered {got}: which {plan.served_as}s are served "
                "cannot be listed, so they are not checked",
            )
        ]
    missing = {name: count for name, count in plan.needed.items() if name not in listing.names}
    if not missing:
        return []
    total = sum(plan.requests_by_role.values())
    served = ", ".join(listing.names) or "nothing"
    named = "; ".join(f"{name} ({_share(count, total)})" for name, count in sorted(missing.items()))
    if plan.served_as == "model":
        hint = f"choose a listed model with --model, or keep and map roles with {plan.roles_option}"
        return [Finding("error", f"models not served (GET {listing.path} lists {served}): {named}; {hint}")]
    first = sorted(missing)[0]
    if not plan.roles_selectable:
        hint = "serve them, or replay only the roles served (rolescope load --roles)"
    elif listing.names:
        option = plan.roles_option
        hint = f"keep or map roles with {option} {listing.names[0]} or {option} {first}={listing.names[0]}"
    else:
        hint = f"keep or map roles with {plan.roles_option}"
    return [
        Finding(
            "error",
            f"the traffic names roles the target does not serve: {named}; it serves {served}. "
            f"These requests would fail (404 unknown role); {hint}",
        )
    ]


def judge_preflight(plan: RunPlan, probe: ProbeResult) -> list[Finding]:
    """Every problem the run would meet, errors first."""
    findings: list[Finding] = []
    if plan.selection_unknown:
        named = ", ".join(plan.selection_unknown)
        findings.append(
            Finding(
                "error",
                f"{plan.roles_option} names {named}, which the traffic never does "
                f"(it names {', '.join(plan.traffic_roles)})",
            )
        )
    if not plan.requests_by_role:
        findings.append(Finding("error", f"no traffic is left to send after {plan.roles_option}"))
    if plan.roles_path is not None and plan.personas_missing:
        findings.append(
            Finding(
                "error",
                f"no role file in {plan.roles_path} gives a persona for {', '.join(plan.personas_missing)}",
            )
        )
    if probe.unreachable is not None:
        findings.append(Finding("error", f"cannot reach {plan.host}: {probe.unreachable}"))
        return _ordered(findings)
    statuses = [
        s for s in [probe.listing.status if probe.listing else None, *(t.status for t in probe.trials)] if s
    ]
    auth = _auth(plan, statuses)
    if auth is not None:
        findings.append(auth)
    if probe.listing is not None:
        findings += _listing(plan, probe.listing)
    reported_missing = any(f.text.startswith(_MISSING_PREFIXES) for f in findings)
    for trial in probe.trials:
        if trial.error is None or trial.status in AUTH_STATUSES:
            continue
        if trial.status == 404 and reported_missing:
            continue
        findings.append(Finding("error", f"a trial turn for {trial.role} failed: {trial.error}"))
    if plan.personas_unsent:
        findings.append(
            Finding(
                "warning", "no role file given (--roles-dir): turns are sent without a persona system message"
            )
        )
    return _ordered(findings)


def _ordered(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"] + [f for f in findings if f.severity == "warning"]
