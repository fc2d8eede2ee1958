"""Secrets and phone numbers found by libraries made for the job, as spans of a message.

`detect-secrets` knows vendor token formats (AWS, GitHub, Slack, Stripe, JWTs,
private keys, …), the words that name a secret, and how random a string must
be to look like a key; `phonenumbers` knows every country's numbering plan.
Both catch what our own regexes in `redaction` miss. This module only finds
spans; `redaction` turns them into per-session placeholders.

detect-secrets scans source files, so three of its ideas are adapted to chat
text: assignments without quotes take one token as the value (its own unquoted
patterns run to the end of the line), a high-entropy string counts when it is
quoted or follows a key-like word (its own rule is "quoted"), and a private-key
header takes the whole key block with it.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

import phonenumbers
from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
from detect_secrets.plugins.base import BasePlugin
from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString, HexHighEntropyString
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.keyword import DENYLIST_REGEX_WITH_PREFIX, KeywordDetector
from detect_secrets.plugins.private_key import PrivateKeyDetector

DEFAULT_PHONE_REGION = "US"

# Handled separately (entropy, keywords, key blocks) or already covered by our IP detector.
_SPECIAL = {"Base64 High Entropy String", "Hex High Entropy String", "Secret Keyword", "Public IP (ipv4)"}
# A token grows left only over word characters (not into a URL's path) and right
# over anything a base64 or JWT token holds.
_LEFT_CHARS = frozenset(string.ascii_letters + string.digits + "_-")
_RIGHT_CHARS = _LEFT_CHARS | frozenset("./+=")
_KEY_WORD = re.compile(
    rf"(?i)(?:{DENYLIST_REGEX_WITH_PREFIX}|\w*(?:key|token|credential|auth|signature|bearer)\w*)"
)
_ASSIGNMENT = re.compile(
    rf"(?i)(?:{DENYLIST_REGEX_WITH_PREFIX})[\]'\"]{{0,2}}\s*(?::=|=>|=|:)\s*['\"]?(?P<value>[^\s'\",;]+)"
)
_KEY_BLOCK = re.compile(
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/_\-]{20,}={0,2}")
_HEX_RUN = re.compile(r"^[0-9a-fA-F]{16,}$")
_PLACEHOLDER = re.compile(r"<[A-Z_]+_\d+>")
# Cheap gates: every vendor token is a long unbroken run, and every keyword the
# keyword plugin knows contains one of these stems; most messages have neither.
_LONG_RUN = re.compile(r"[A-Za-z0-9_\-+/=.]{16,}")
_KEY_STEM = re.compile(r"(?i)key|pass|pwd|secret|contras")
_ALWAYS_RUN = ("Private Key", "Basic Auth Credentials")
_KEY_WORD_REACH = 40
_MIN_ASSIGNED_CHARS = 6
# Seven digits with at most a few separators between neighbours: the shortest phone number.
_PHONE_LIKE = re.compile(r"\d(?:[^\d\n]{0,3}\d){6}")


@dataclass(frozen=True, slots=True, order=True)
class Finding:
    start: int
    end: int
    kind: str


@cache
def _vendor_plugins() -> tuple[tuple[BasePlugin, str], ...]:
    mapping: Mapping[str, type[BasePlugin]] = get_mapping_from_secret_type_to_class()
    plugins = [cls() for secret_type, cls in sorted(mapping.items()) if secret_type not in _SPECIAL]
    return tuple((plugin, _kind_of(plugin)) for plugin in plugins)


@cache
def _entropy_plugins() -> tuple[Base64HighEntropyString, HexHighEntropyString]:
    return Base64HighEntropyString(), HexHighEntropyString()


@cache
def _keyword_plugin() -> KeywordDetector:
    return KeywordDetector()


def _kind_of(plugin: BasePlugin) -> str:
    if isinstance(plugin, JwtTokenDetector):
        return "TOKEN"
    if isinstance(plugin, PrivateKeyDetector):
        return "PRIVATE_KEY"
    return "API_KEY"


def _extend(text: str, start: int, end: int) -> tuple[int, int]:
    """Grow a match to the whole token: plugins may yield part of it (a JWT without its signature)."""
    while start > 0 and text[start - 1] in _LEFT_CHARS:
        start -= 1
    grown = end
    while grown < len(text) and text[grown] in _RIGHT_CHARS:
        grown += 1
    while grown > end and text[grown - 1] == ".":
        grown -= 1  # a sentence's full stop is not part of the token
    return start, grown


def _occurrences(text: str, value: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    index = text.find(value)
    while index >= 0 and value:
        spans.append((index, index + len(value)))
        index = text.find(value, index + len(value))
    return spans


def _looks_secret(value: str) -> bool:
    if len(value) < _MIN_ASSIGNED_CHARS or _PLACEHOLDER.fullmatch(value):
        return False
    has_digit = any(c.isdigit() for c in value)
    has_symbol = any(not c.isalnum() for c in value)
    mixed_case = value.lower() != value and value.upper() != value
    # "password: something" in prose names no secret; "password: hunter22" does.
    return has_digit or has_symbol or mixed_case


def _high_entropy(token: str) -> bool:
    base64_plugin, hex_plugin = _entropy_plugins()
    if _HEX_RUN.match(token):
        return hex_plugin.calculate_shannon_entropy(token) > hex_plugin.entropy_limit
    return base64_plugin.calculate_shannon_entropy(token) > base64_plugin.entropy_limit


def _quoted(text: str, start: int, end: int) -> bool:
    return start > 0 and end < len(text) and text[start - 1] in "'\"" and text[end] == text[start - 1]


def _after_key_word(text: str, start: int) -> bool:
    window = text[max(0, start - _KEY_WORD_REACH) : start]
    window = window[window.rfind("\n") + 1 :]
    return _KEY_WORD.search(window) is not None


def find_secrets(text: str) -> list[Finding]:
    """Spans of secrets detect-secrets recognises (possibly overlapping; see `merge`)."""
    found: list[Finding] = []
    has_long_run = _LONG_RUN.search(text) is not None
    for plugin, kind in _vendor_plugins():
        if not has_long_run and plugin.secret_type not in _ALWAYS_RUN:
            continue
        for value in set(plugin.analyze_string(text)):
            for start, end in _occurrences(text, value):
                if kind == "PRIVATE_KEY":
                    block = _KEY_BLOCK.search(text, max(0, start - 16))
                    if block is not None and block.start() <= start:
                        found.append(Finding(block.start(), block.end(), kind))
                    else:
                        # A header without a PEM block (PuTTY): everything after it is the key.
                        found.append(Finding(start, len(text), kind))
                else:
                    found.append(Finding(*_extend(text, start, end), kind))
    if _KEY_STEM.search(text):
        # The plugin's default patterns all want a quoted value.
        if any(quote in text for quote in "'\"`"):
            for value in set(_keyword_plugin().analyze_string(text)):
                if not _PLACEHOLDER.fullmatch(value):
                    found.extend(Finding(s, e, "SECRET") for s, e in _occurrences(text, value))
        for match in _ASSIGNMENT.finditer(text):
            if _looks_secret(match.group("value")):
                found.append(Finding(match.start("value"), match.end("value"), "SECRET"))
    for match in _BASE64_RUN.finditer(text):
        start, end = match.span()
        if _high_entropy(match.group(0)) and (_quoted(text, start, end) or _after_key_word(text, start)):
            found.append(Finding(start, end, "SECRET"))
    return found


def find_phones(text: str, region: str = DEFAULT_PHONE_REGION) -> list[Finding]:
    """Phone numbers valid in their country's numbering plan (national ones read as `region`)."""
    if _PHONE_LIKE.search(text) is None:
        return []  # most chat messages: skip the matcher's cost
    matcher = phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID)
    return [Finding(match.start, match.end, "PHONE") for match in matcher]


def merge(findings: list[Finding]) -> list[Finding]:
    """Non-overlapping spans in text order; where two overlap, the earlier-starting, longer one wins."""
    merged: list[Finding] = []
    for finding in sorted(findings, key=lambda f: (f.start, -f.end)):
        if merged and finding.start < merged[-1].end:
            last = merged[-1]
            if finding.end > last.end:
                merged[-1] = Finding(last.start, finding.end, last.kind)
            continue
        merged.append(finding)
    return merged
