"""The release policy: sticky weighted split by session hash, rules, checks of the role file section."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from rolescope.errors import ConfigError
from rolescope.release_policy import ReleaseSpec, decide, hash_unit, rendezvous_version
from rolescope.roles import load_roles

SESSIONS = [f"session-{index:05d}" for index in range(20_000)]
versions = st.sampled_from(["1.0", "1.1", "1.2", "1.3", "2.0"])
session_ids = st.text(min_size=1, max_size=40)


def _shares(weights: dict[str, float], sessions: list[str]) -> dict[str, float]:
    counts = Counter(rendezvous_version("sherlock", s, weights) for s in sessions)
    return {version: counts[version] / len(sessions) for version in weights}


@pytest.mark.parametrize(
    "weights", [{"1.2": 50, "1.3": 50}, {"1.2": 90, "1.3": 10}, {"1.2": 70, "1.3": 20, "2.0": 10}]
)
def test_each_version_gets_its_share_of_sessions(weights: dict[str, float]) -> None:
    for version, share in _shares(weights, SESSIONS).items():
        # 20,000 sessions: a share's standard error is under 0.0036; 0.015 is over 4 of them.
        assert abs(share - weights[version] / 100) < 0.015, (version, share)


@given(
    weights=st.dictionaries(versions, st.integers(0, 100), min_size=2, max_size=4).filter(
        lambda w: sum(w.values()) > 0
    ),
    session=session_ids,
)
def test_a_session_always_lands_on_the_same_positive_weight_version(
    weights: dict[str, int], session: str
) -> None:
    chosen = rendezvous_version("sherlock", session, weights)
    assert weights[chosen] > 0
    assert all(rendezvous_version("sherlock", session, dict(weights)) == chosen for _ in range(3))
    # The order the weights are written in does not matter.
    assert rendezvous_version("sherlock", session, dict(reversed(weights.items()))) == chosen


@settings(max_examples=60)
@given(
    weights=st.dictionaries(versions, st.integers(1, 100), min_size=2, max_size=4),
    raised=st.integers(0, 3),
    extra=st.integers(1, 200),
)
def test_raising_one_weight_moves_sessions_onto_that_version_only(
    weights: dict[str, int], raised: int, extra: int
) -> None:
    target = list(weights)[raised % len(weights)]
    after = {**weights, target: weights[target] + extra}
    sessions = SESSIONS[:2_000]
    for session in sessions:
        before_version = rendezvous_version("sherlock", session, weights)
        after_version = rendezvous_version("sherlock", session, after)
        assert after_version in (before_version, target)


def test_moving_ten_points_moves_about_ten_percent_of_sessions() -> None:
    before = {"1.2": 90.0, "1.3": 10.0}
    after = {"1.2": 80.0, "1.3": 20.0}
    moved = sum(
        rendezvous_version("sherlock", s, before) != rendezvous_version("sherlock", s, after)
        for s in SESSIONS
    )
    assert 0.09 < moved / len(SESSIONS) < 0.11


def test_the_hash_is_the_same_in_another_process() -> None:
    code = (
        "from rolescope.release_policy import rendezvous_version as r;"
        "print(','.join(r('sherlock', f'session-{i:05d}', {'1.2': 50, '1.3': 50}) for i in range(300)))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    here = ",".join(rendezvous_version("sherlock", s, {"1.2": 50, "1.3": 50}) for s in SESSIONS[:300])
    assert other.stdout.strip() == here
    assert 0 < hash_unit("a") < 1


def test_rules_come_before_the_split_and_match_headers_and_cookies() -> None:
    spec = ReleaseSpec.model_validate(
        {
            "weights": {"1.2": 100},
            "rules": [
                {"header": "X-Beta-Tester", "equals": "yes", "version": "1.3"},
                {"cookie": "canary", "version": 1.4},
            ],
        }
    )
    assert decide(spec, "sherlock", "s1", {}).version == "1.2"
    assert decide(spec, "sherlock", "s1", {"x-beta-tester": "yes"}).version == "1.3"
    assert decide(spec, "sherlock", "s1", {"x-beta-tester": "no"}).version == "1.2"
    assert decide(spec, "sherlock", "s1", {"cookie": "a=1; canary=on"}) .version == "1.4"
    assert decide(spec, "sherlock", "s1", {"cookie": "not a cookie ;;; ="}).reason == "weight"
    assert spec.primary == "1.2"


@pytest.mark.parametrize(
    ("section", "expected"),
    [
        ({"weights": {"1.2": 60, "1.3": 30}}, "weights must sum to 100; they sum to 90: 60 (1.2) + 30 (1.3)"),
        ({"weights": {"1.2": 120, "1.3": -20}}, "120.0 for 1.2 (expected 0 to 100)"),
        ({"weights": {}}, "weights"),
        ({"weights": {"1.2": 100}, "rules": [{"version": "1.3"}]}, "exactly one of `header` or `cookie`"),
        ({"weights": {"1.2": 100}, "split": 3}, "split"),
    ],
)
def test_a_bad_section_is_refused_with_what_was_expected(section: dict[str, object], expected: str) -> None:
    with pytest.raises(ValidationError) as caught:
        ReleaseSpec.model_validate(section)
    assert expected in str(caught.value)


ROLE = """\
name: sherlock
version: "{version}"
persona: You are Sherlock Holmes.
{extra}
"""


def _write(folder: Path, version: str, extra: str = "") -> None:
    (folder / f"sherlock-{version}.yaml").write_text(ROLE.format(version=version, extra=extra))


def test_the_primary_version_becomes_the_default(tmp_path: Path) -> None:
    _write(tmp_path, "1.2", 'release:\n  weights: {"1.2": 90, "1.3": 10}')
    _write(tmp_path, "1.3")
    registry = load_roles(tmp_path)
    assert registry["sherlock"].version == "1.2"  # the highest would be 1.3


def test_unknown_versions_and_two_sections_are_all_reported_with_their_files(tmp_path: Path) -> None:
    section = 'release:\n  weights: {"1.2": 50, "1.4": 50}\n  rules: [{header: X-B, version: "2.0"}]'
    _write(tmp_path, "1.2", section)
    _write(tmp_path, "1.3", 'release:\n  weights: {"1.3": 100}')
    with pytest.raises(ConfigError) as caught:
        load_roles(tmp_path)
    message = str(caught.value)
    first, second = tmp_path / "sherlock-1.2.yaml", tmp_path / "sherlock-1.3.yaml"
    assert f"{first}: release: version '1.4' of role `sherlock` is not loaded" in message
    assert "version '2.0' of role `sherlock` is not loaded; loaded versions: 1.2, 1.3" in message
    assert f"{second}: release: role `sherlock` already has a release policy" in message


def test_a_bad_weight_in_a_role_file_names_the_file_and_field(tmp_path: Path) -> None:
    _write(tmp_path, "1.2", 'release:\n  weights: {"1.2": 60, "1.3": 30}')
    _write(tmp_path, "1.3")
    with pytest.raises(ConfigError) as caught:
        load_roles(tmp_path)
    assert "sherlock-1.2.yaml" in str(caught.value)
    assert "release.weights" in str(caught.value)
    assert "sum to 100" in str(caught.value)
