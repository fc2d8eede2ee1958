"""Redaction of shadow traffic: keyed-HMAC pseudonyms and PII / secret placeholders.

Identifiers (session, client) become HMAC-SHA256 pseudonyms under a key that
lives in an environment variable or a file, never next to the data: the same
id always maps to the same pseudonym, and nobody without the key can reverse
or even confirm it. Personal data and secrets inside messages become typed
placeholders that stay consistent within a session (`<EMAIL_1>` each time the
same address appears), so a replayed conversation still makes sense. Our own
patterns run alongside `detect-secrets` and `phonenumbers` (`secret_scan`),
which know many more token formats and every country's numbering plan.

The service imports this module for capture, so it must never import locust.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rolescope.errors import ConfigError
from rolescope.loadtests.secret_scan import DEFAULT_PHONE_REGION, Finding, find_phones, find_secrets, merge

KEY_ENV = "ROLESCOPE_CAPTURE_KEY"
KEY_FILE_ENV = "ROLESCOPE_CAPTURE_KEY_FILE"
MIN_KEY_BYTES = 16


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum every payment card number carries."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def _is_card(match: str) -> bool:
    digits = _digits(match)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _is_ipv4(match: str) -> bool:
    return all(0 <= int(part) <= 255 for part in match.split("."))


def _is_phone(match: str) -> bool:
    digits = _digits(match)
    if not 7 <= len(digits) <= 15:
        return False
    # ISO dates and times look like phone numbers to a regex.
    return not re.fullmatch(r"\d{4}-\d{2}-\d{2}", match.strip())


@dataclass(frozen=True, slots=True)
class Detector:
    kind: str
    pattern: re.Pattern[str]
    accept: Callable[[str], bool] | None = None


# Order matters: a URL with credentials contains an e-mail-like `user:pass@host`,
# and a card number is a run of digits a phone pattern would also take.
_SECRET_DETECTORS: tuple[Detector, ...] = (
    Detector("URL", re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s/:@]+:[^\s/@]+@[^\s]+")),
    Detector("TOKEN", re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{8,}=*")),
    Detector(
        "API_KEY",
        re.compile(
            r"\b(?:sk-(?:proj-|ant-)?[A-Za-z0-9_-]{16,}|AKIA[0-9A-Z]{16}|gh[pousr]_[A-Za-z0-9]{20,}"
            r"|xox[abprs]-[A-Za-z0-9-]{10,}|AIza[0-9A-Za-z_-]{35}"
            r"|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,})"
            r"|(?i:\b(?:api[_-]?key|secret|password|passwd|token)\s*[:=]\s*)[^\s,;]{6,}"
        ),
    ),
)
_DATA_DETECTORS: tuple[Detector, ...] = (
    Detector("EMAIL", re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")),
    Detector("CARD", re.compile(r"(?<![\w-])\d(?:[ -]?\d){12,18}(?![\w-])"), _is_card),
    Detector(
        "IP",
        re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)"),
        _is_ipv4,
    ),
    Detector(
        "IP",
        re.compile(
            r"(?<![\w:])(?:[0-9a-fA-F]{1,4}:){7}[0-9a-fA-F]{1,4}(?![\w:])"
            r"|(?<![\w:])(?:[0-9a-fA-F]{1,4}:){1,6}:(?:[0-9a-fA-F]{1,4}:){0,5}[0-9a-fA-F]{1,4}(?![\w:])"
        ),
    ),
)
_PHONE_DETECTOR = Detector("PHONE", re.compile(r"(?<![\w+])\+?\(?\d[\d\s().-]{5,18}\d(?![\w])"), _is_phone)
DETECTORS: tuple[Detector, ...] = (*_SECRET_DETECTORS, *_DATA_DETECTORS, _PHONE_DETECTOR)

PLACEHOLDER_RE = re.compile(r"<(?:URL|TOKEN|API_KEY|SECRET|PRIVATE_KEY|EMAIL|CARD|IP|PHONE)_\d+>")


class Placeholders:
    """Per-session numbering: the same secret gets the same placeholder every time."""

    __slots__ = ("_counts", "_seen")

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = {}

    def for_value(self, kind: str, value: str) -> str:
        key = (kind, value)
        found = self._seen.get(key)
        if found is None:
            number = self._counts.get(kind, 0) + 1
            self._counts[kind] = number
            found = f"<{kind}_{number}>"
            self._seen[key] = found
        return found


def _apply_detector(text: str, detector: Detector, placeholders: Placeholders) -> str:
    def substitute(match: re.Match[str]) -> str:
        value = match.group(0)
        if PLACEHOLDER_RE.fullmatch(value):
            return value
        if detector.accept is not None and not detector.accept(value):
            return value
        return placeholders.for_value(detector.kind, value.strip())

    return detector.pattern.sub(substitute, text)


def _apply_findings(text: str, findings: list[Finding], placeholders: Placeholders) -> str:
    if not findings:
        return text
    parts: list[str] = []
    cursor = 0
    for finding in merge(findings):
        value = text[finding.start : finding.end]
        parts.append(text[cursor : finding.start])
        kept = PLACEHOLDER_RE.fullmatch(value) is not None
        parts.append(value if kept else placeholders.for_value(finding.kind, value))
        cursor = finding.end
    parts.append(text[cursor:])
    return "".join(parts)


def redact_text(text: str, placeholders: Placeholders, phone_region: str = DEFAULT_PHONE_REGION) -> str:
    """Replace every detected personal datum or secret with its session placeholder.

    The libraries' secret scan runs after our token patterns (so their
    placeholders keep the kinds they always had) and before e-mail, card and
    IP patterns, which could otherwise take a piece of a key; the phone-number
    library runs just before our own, looser, phone pattern.
    """
    for detector in _SECRET_DETECTORS:
        text = _apply_detector(text, detector, placeholders)
    text = _apply_findings(text, find_secrets(text), placeholders)
    for detector in _DATA_DETECTORS:
        text = _apply_detector(text, detector, placeholders)
    text = _apply_findings(text, find_phones(text, phone_region), placeholders)
    return _apply_detector(text, _PHONE_DETECTOR, placeholders)


def load_key(key_file: Path | None = None, *, allow_ephemeral: bool = True) -> tuple[bytes, bool]:
    """The pseudonym key and whether it is ephemeral.

    Looks at `key_file`, then `$ROLESCOPE_CAPTURE_KEY_FILE`, then
    `$ROLESCOPE_CAPTURE_KEY`. With none of them, a random key is made for this
    process only: pseudonyms stay consistent within the file but cannot be
    linked to any other capture.
    """
    file_name = key_file or (Path(os.environ[KEY_FILE_ENV]) if os.environ.get(KEY_FILE_ENV) else None)
    if file_name is not None:
        try:
            key = file_name.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"cannot read the capture key file {file_name}: {exc.strerror}") from exc
        source = str(file_name)
    elif os.environ.get(KEY_ENV):
        key = os.environ[KEY_ENV].encode()
        source = f"${KEY_ENV}"
    elif allow_ephemeral:
        return secrets.token_bytes(32), True
    else:
        raise ConfigError(f"no pseudonym key: set ${KEY_ENV} or ${KEY_FILE_ENV}")
    if len(key) < MIN_KEY_BYTES:
        raise ConfigError(
            f"the capture key in {source} is {len(key)} bytes; expected at least {MIN_KEY_BYTES}"
        )
    return key, False


class Redactor:
    """Pseudonymises ids and redacts messages, remembering placeholders per session.

    The per-session maps are kept in a bounded LRU so a long-running service
    does not grow without limit; a session evicted and seen again restarts its
    numbering, which only matters for very long-lived sessions.
    """

    def __init__(
        self, key: bytes, max_sessions: int = 10_000, phone_region: str = DEFAULT_PHONE_REGION
    ) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"pseudonym key must be at least {MIN_KEY_BYTES} bytes")
        self._key = key
        self._phone_region = phone_region
        self._max_sessions = max_sessions
        self._sessions: OrderedDict[str, Placeholders] = OrderedDict()

    def pseudonym(self, value: str, prefix: str = "s") -> str:
        digest = hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"{prefix}_{digest[:20]}"

    def placeholders(self, session_pseudonym: str) -> Placeholders:
        found = self._sessions.get(session_pseudonym)
        if found is None:
            found = Placeholders()
            self._sessions[session_pseudonym] = found
            if len(self._sessions) > self._max_sessions:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(session_pseudonym)
        return found

    def redact_message(self, session_pseudonym: str, text: str) -> str:
        return redact_text(text, self.placeholders(session_pseudonym), self._phone_region)
