"""A role's release policy: which loaded version answers a request that pins none.

Written in the role file of one version of the role (usually the stable one) as
a `release:` section:

    release:
      weights: {"1.2": 90, "1.3": 10}        # percent of sessions, sum 100
      rules:                                  # checked in order, before the weights
        - header: X-Beta-Tester               # a header (or `cookie: name`) ...
          equals: "yes"                       # ... with this value (absent: any value)
          version: "1.3"

The weights split **sessions**, not requests: a session's version is chosen by
weighted rendezvous (highest random weight) hashing of the session id, so every
turn of a session reaches the same version, replicas agree without sharing any
state, and raising one version's weight moves only sessions onto that version
(the least that any split can move). Hashing uses BLAKE2b, not Python's `hash`,
which differs between processes.

Pure: no I/O; `rolescope.roles` validates the section against the loaded versions.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# A request pins a version with this header (`X-Role-Version: 1.3`) as it would with `name@version`.
VERSION_HEADER = "x-role-version"
WEIGHT_TOTAL = 100.0
_WEIGHT_TOLERANCE = 1e-6
_HASH_SPAN = float(2**64)


def _as_version_text(value: object) -> object:
    # YAML reads `1.3` as a float; accept it as the text the author wrote (as the role's own version).
    return str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


class HeaderRule(BaseModel):
    """Requests carrying a header (or a cookie), optionally with one value, go to `version`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    header: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9-]+$")
    cookie: str | None = Field(default=None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.-]+$")
    equals: str | None = Field(default=None, max_length=256, description="absent: any value matches")
    version: str

    _version_text = field_validator("version", mode="before")(_as_version_text)
    _equals_text = field_validator("equals", mode="before")(_as_version_text)

    @model_validator(mode="after")
    def _one_source(self) -> HeaderRule:
        if (self.header is None) == (self.cookie is None):
            raise ValueError("expected exactly one of `header` or `cookie`")
        return self

    def value_in(self, headers: Mapping[str, str]) -> str | None:
        if self.header is not None:
            return headers.get(self.header.lower())
        assert self.cookie is not None  # one of the two, checked above
        return _cookie(headers.get("cookie"), self.cookie)

    def matches(self, headers: Mapping[str, str]) -> bool:
        value = self.value_in(headers)
        return value is not None and (self.equals is None or value.strip() == self.equals)


def _cookie(header: str | None, name: str) -> str | None:
    if not header:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


class ReleaseSpec(BaseModel):
    """The `release:` section of a role file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weights: dict[str, float] = Field(
        min_length=1, description="percent of sessions per version; they sum to 100"
    )
    rules: tuple[HeaderRule, ...] = ()

    @field_validator("weights", mode="before")
    @classmethod
    def _keys_as_text(cls, value: object) -> object:
        if isinstance(value, dict):
            return {_as_version_text(k): v for k, v in value.items()}
        return value

    @field_validator("weights")
    @classmethod
    def _percentages(cls, value: dict[str, float]) -> dict[str, float]:
        problems = [f"{v!r} for {k} (expected 0 to 100)" for k, v in value.items() if not 0 <= v <= 100]
        if problems:
            raise ValueError("weights are percentages: " + "; ".join(problems))
        total = sum(value.values())
        if abs(total - WEIGHT_TOTAL) > _WEIGHT_TOLERANCE:
            listed = " + ".join(f"{v:g} ({k})" for k, v in value.items())
            raise ValueError(f"weights must sum to 100; they sum to {total:g}: {listed}")
        return value

    def named_versions(self) -> tuple[str, ...]:
        """Every version the section names, weights first, then rules, each once."""
        seen = dict.fromkeys([*self.weights, *(rule.version for rule in self.rules)])
        return tuple(seen)

    @property
    def primary(self) -> str:
        """The version with the largest weight (the first written, on a tie): the stable one."""
        return max(self.weights, key=lambda version: self.weights[version])


@dataclass(frozen=True, slots=True)
class Decision:
    version: str
    reason: Literal["rule", "weight"]


def hash_unit(*parts: str) -> float:
    """A number in (0, 1) that depends on `parts` only: the same on every machine and process."""
    digest = hashlib.blake2b("\x00".join(parts).encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / _HASH_SPAN


def rendezvous_version(role: str, session_id: str, weights: Mapping[str, float]) -> str:
    """The version a session lands on: weighted highest-random-weight hashing.

    Each version scores `-weight / ln(u)` with `u` uniform in (0, 1) from the hash of
    (role, version, session); the highest score wins. A version wins a share of sessions
    equal to its share of the weight, and its score grows with its weight alone, so
    raising one weight moves sessions onto that version only.
    """
    best_version, best_score = "", -1.0
    for version, weight in weights.items():
        if weight <= 0:
            continue
        score = -weight / math.log(hash_unit(role, version, session_id))
        if score > best_score:
            best_version, best_score = version, score
    if not best_version:
        raise ValueError(f"role {role!r} has no version with a positive weight")
    return best_version


def decide(spec: ReleaseSpec, role: str, session_id: str, headers: Mapping[str, str]) -> Decision:
    """Rules first (the first that matches), then the sticky weight split.

    `headers` are keyed by lowercase name (Starlette's `Headers` are).
    """
    for rule in spec.rules:
        if rule.matches(headers):
            return Decision(rule.version, "rule")
    return Decision(rendezvous_version(role, session_id, spec.weights), "weight")
