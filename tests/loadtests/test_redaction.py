"""Redaction: every detector, per-session consistent placeholders, keyed pseudonyms."""

from __future__ import annotations

from pathlib import Path

import pytest

from rolescope.errors import ConfigError
from rolescope.loadtests.redaction import Placeholders, Redactor, load_key, luhn_valid, redact_text

KEY = b"k" * 32


@pytest.mark.parametrize(
    ("text", "secret", "placeholder"),
    [
        ("write to jane.doe+x@example.co.uk please", "jane.doe+x@example.co.uk", "<EMAIL_1>"),
        ("call +44 20 7946 0958 tonight", "+44 20 7946 0958", "<PHONE_1>"),
        ("call (415) 555-0199", "555-0199", "<PHONE_1>"),
        ("card 4111 1111 1111 1111 expires", "4111 1111 1111 1111", "<CARD_1>"),
        ("card 5500-0000-0000-0004.", "5500-0000-0000-0004", "<CARD_1>"),
        ("from 192.168.10.7 again", "192.168.10.7", "<IP_1>"),
        ("it came from 10.0.0.1.", "10.0.0.1", "<IP_1>"),
        ("v6 2001:db8:85a3::8a2e:370:7334 ok", "2001:db8:85a3::8a2e:370:7334", "<IP_1>"),
        ("key sk-proj-abcdefghijklmnop1234 leaked", "sk-proj-abcdefghijklmnop1234", "<API_KEY_1>"),
        ("aws AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "<API_KEY_1>"),
        (
            "gh ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "<API_KEY_1>",
        ),
        ("api_key=Zx81sQpL0o", "Zx81sQpL0o", "<API_KEY_1>"),
        (
            "Authorization: Bearer eyJhbGciOi.eyJzdWIi.sig_123456",
            "eyJhbGciOi.eyJzdWIi.sig_123456",
            "<TOKEN_1>",
        ),
        ("db at postgres://admin:s3cret@db.internal:5432/x", "s3cret", "<URL_1>"),
    ],
)
def test_detector_replaces_the_secret(text: str, secret: str, placeholder: str) -> None:
    redacted = redact_text(text, Placeholders())
    assert secret not in redacted
    assert placeholder in redacted


def test_card_numbers_must_pass_luhn() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert "<CARD_" not in redact_text("order 4111 1111 1111 1112", Placeholders())


def test_ordinary_text_dates_and_versions_survive() -> None:
    text = "On 2024-01-05 at 12:30 I read chapter 3 of version 1.2.3 with 42 friends."
    assert redact_text(text, Placeholders()) == text


def test_placeholders_are_consistent_within_a_session_and_independent_across() -> None:
    redactor = Redactor(KEY)
    first = redactor.redact_message("s1", "a@x.org then b@x.org")
    again = redactor.redact_message("s1", "back to a@x.org")
    other = redactor.redact_message("s2", "b@x.org")
    assert first == "<EMAIL_1> then <EMAIL_2>"
    assert again == "back to <EMAIL_1>"
    assert other == "<EMAIL_1>"


def test_redaction_is_idempotent() -> None:
    redactor = Redactor(KEY)
    once = redactor.redact_message("s", "mail a@x.org, card 4111111111111111, ip 10.1.2.3")
    assert redactor.redact_message("s", once) == once


def test_pseudonyms_are_keyed_and_stable() -> None:
    one, two = Redactor(KEY), Redactor(b"z" * 32)
    assert one.pseudonym("session-123") == one.pseudonym("session-123")
    assert one.pseudonym("session-123") != two.pseudonym("session-123")
    assert "session-123" not in one.pseudonym("session-123")


def test_session_maps_are_bounded() -> None:
    redactor = Redactor(KEY, max_sessions=2)
    for session in ("a", "b", "c"):
        redactor.redact_message(session, "x@y.org")
    assert len(redactor._sessions) == 2


def test_key_from_file_env_or_ephemeral(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ROLESCOPE_CAPTURE_KEY", raising=False)
    monkeypatch.delenv("ROLESCOPE_CAPTURE_KEY_FILE", raising=False)
    key_file = tmp_path / "key"
    key_file.write_bytes(b"0123456789abcdef-file\n")
    assert load_key(key_file) == (b"0123456789abcdef-file", False)
    monkeypatch.setenv("ROLESCOPE_CAPTURE_KEY", "0123456789abcdef-env")
    assert load_key() == (b"0123456789abcdef-env", False)
    monkeypatch.setenv("ROLESCOPE_CAPTURE_KEY", "short")
    with pytest.raises(ConfigError, match="at least 16"):
        load_key()
    monkeypatch.delenv("ROLESCOPE_CAPTURE_KEY")
    key, ephemeral = load_key()
    assert ephemeral and len(key) == 32
    with pytest.raises(ConfigError, match="no pseudonym key"):
        load_key(allow_ephemeral=False)
