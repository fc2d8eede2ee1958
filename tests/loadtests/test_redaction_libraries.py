"""Redaction backed by detect-secrets and phonenumbers: what our own patterns alone would miss."""

from __future__ import annotations

import pytest

from rolescope.loadtests.redaction import DETECTORS, Placeholders, Redactor, redact_text
from rolescope.loadtests.secret_scan import find_phones, find_secrets

KEY = b"k" * 32
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
ENTROPY_STRING = "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZmdoaWprbG1u"
QUOTED = "Q3JhenlTZWNyZXQxMjM0NTY3ODkwQUJDREVGR0hJSktM"


def _regexes_only(text: str) -> str:
    placeholders = Placeholders()
    for detector in DETECTORS:
        text = detector.pattern.sub(
            lambda m, d=detector: (
                m.group(0)
                if d.accept is not None and not d.accept(m.group(0))
                else placeholders.for_value(d.kind, m.group(0))
            ),
            text,
        )
    return text


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (f"aws_secret_access_key={AWS_SECRET} and the region", AWS_SECRET),
        (f"export CI_DEPLOY_CREDENTIAL {ENTROPY_STRING} now", ENTROPY_STRING),
        ("my signing key is 3f9a1c7e5b2d4a6f8e0c1b3d5a7f9e2c, keep it", "3f9a1c7e5b2d4a6f8e0c1b3d5a7f9e2c"),
        (f'use "{QUOTED}" please', QUOTED),
        ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc works", "4eC39HqLyjWDarjtT1zdp7dc"),
        ("twilio SKd1f0a2b3c4d5e6f708192a3b4c5d6e7f here", "SKd1f0a2b3c4d5e6f708192a3b4c5d6e7f"),
        ("db_pass = 's3cr3t pass' in the config", "s3cr3t pass"),
    ],
)
def test_secrets_the_libraries_know_and_our_regexes_do_not(text: str, secret: str) -> None:
    assert secret in _regexes_only(text), "the case must be one our own patterns miss"
    redacted = redact_text(text, Placeholders())
    assert secret not in redacted
    assert "<SECRET_1>" in redacted or "<API_KEY_1>" in redacted


def test_a_private_key_block_goes_whole() -> None:
    block = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\nq7Lz\n-----END RSA PRIVATE KEY-----"
    text = f"here:\n{block}\nthanks"
    assert redact_text(text, Placeholders()) == "here:\n<PRIVATE_KEY_1>\nthanks"


def test_jwt_from_the_library_keeps_its_signature_in_the_placeholder() -> None:
    token = (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
        ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
    )
    spans = find_secrets(f"token {token}.")
    assert any(f"token {token}."[s.start : s.end] == token for s in spans)


def test_phone_numbers_in_any_national_format() -> None:
    text = "ruf an: +49 30/1234 5678 bitte"
    assert "+49 30/" in _regexes_only(text), "our pattern alone leaves part of the number"
    assert redact_text(text, Placeholders()) == "ruf an: <PHONE_1> bitte"
    assert redact_text("call +1 (650) 253-0000 x123", Placeholders()) == "call <PHONE_1>"
    assert find_phones("tel. 030/12345678", region="DE")
    assert not find_phones("tel. 030/12345678", region="US")


def test_library_placeholders_stay_consistent_within_a_session() -> None:
    redactor = Redactor(KEY)
    first = redactor.redact_message("s1", f"aws_secret_access_key={AWS_SECRET}")
    again = redactor.redact_message("s1", f"again: key {AWS_SECRET}")
    other = redactor.redact_message("s2", f"secret_token={ENTROPY_STRING} then aws_secret={AWS_SECRET}")
    assert first == "aws_secret_access_key=<SECRET_1>"
    assert again == "again: key <SECRET_1>"
    assert other == "secret_token=<SECRET_1> then aws_secret=<SECRET_2>"
    assert redactor.redact_message("s1", first) == first


@pytest.mark.parametrize(
    "text",
    [
        "Elementary, my dear Watson. The key to this mystery lies in the mud.",
        "The password is something only you would remember.",
        "On 2024-01-05 at 12:30 I read chapter 3 of version 1.2.3 with 42 friends.",
        "The commit 9fceb02d0ae598e95dc970b74767f19372d61af8 broke the build.",
        "Internationalization and counterrevolutionaries are long words.",
        "It is 1,234,567 light years away, give or take 300 metres.",
    ],
)
def test_ordinary_prose_survives(text: str) -> None:
    assert redact_text(text, Placeholders()) == text
