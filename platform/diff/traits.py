"""What one reply shows, field by field: status, length, confidence, rule violations, persona markers.

Pure: a reply's text and the role's rules in, plain values out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rolescope.mirroring.pairs import Answer

_SENTENCE_END = re.compile(r"[.!?]+(?:[\"'”’)]*)(?:\s+|$)")
_WORD = re.compile(r"[\w'-]+")


@dataclass(frozen=True, slots=True)
class RoleMarkers:
    """The parts of a role's definition a reply is checked against."""

    banned_words: tuple[str, ...] = ()
    min_sentences: int = 1
    max_sentences: int = 50
    max_length: int = 100_000
    openers: tuple[str, ...] = ()
    closers: tuple[str, ...] = ()
    catchphrases: tuple[str, ...] = ()


def sentence_count(text: str) -> int:
    return len([piece for piece in _SENTENCE_END.split(text.strip()) if piece.strip()])


def banned_used(text: str, markers: RoleMarkers) -> str:
    """The banned words the reply uses, sorted and comma-separated ("" when none)."""
    words = {word.lower() for word in _WORD.findall(text)}
    return ",".join(sorted(words & set(markers.banned_words)))


def constraint_violations(text: str, markers: RoleMarkers) -> str:
    """Which response constraints the reply breaks ("" when none)."""
    broken: list[str] = []
    sentences = sentence_count(text)
    if sentences < markers.min_sentences:
        broken.append("too few sentences")
    if sentences > markers.max_sentences:
        broken.append("too many sentences")
    if len(text) > markers.max_length:
        broken.append("too long")
    return ", ".join(broken)


def opener_used(text: str, markers: RoleMarkers) -> str:
    stripped = text.lstrip()
    return next((o for o in markers.openers if stripped.startswith(o)), "")


def closer_used(text: str, markers: RoleMarkers) -> str:
    stripped = text.rstrip()
    return next((c for c in markers.closers if stripped.endswith(c)), "")


def catchphrases_used(text: str, markers: RoleMarkers) -> str:
    return " | ".join(c for c in markers.catchphrases if c in text)


# Categorical fields: compared for equality. Text fields only exist for answers with content.
TEXT_FIELDS = {
    "banned_words": banned_used,
    "constraint_violations": constraint_violations,
    "opener": opener_used,
    "closer": closer_used,
    "catchphrases": catchphrases_used,
}


def numeric_fields(answer: Answer) -> dict[str, float | None]:
    return {
        "output_tokens": float(answer.output_tokens) if answer.content is not None else None,
        "confidence": answer.confidence,
        "latency_s": answer.latency_s,
    }
