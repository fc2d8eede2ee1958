"""Known changes planted in synthetic pairs are found; differences that two primaries show are not."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

from rolescope.diff.compare import compare_pairs
from rolescope.diff.traits import RoleMarkers, constraint_violations, sentence_count
from rolescope.mirroring.pairs import Answer, MirrorPair, dump_pair

MARKERS = RoleMarkers(
    banned_words=("dude", "lol"),
    min_sentences=2,
    max_sentences=4,
    max_length=400,
    openers=("Ah, I perceive", "Come now."),
    closers=("Pray, give me more data.", "Elementary."),
    catchphrases=("The game is afoot.",),
)


def markers_of(role: str, version: str | None) -> RoleMarkers:
    return MARKERS


def _reply(rng: random.Random, *, opener: bool = True, banned: bool = False) -> str:
    start = "Ah, I perceive the mud on your boots." if opener else "The mud on your boots tells much."
    middle = " You came by the Underground, dude." if banned else " You came by the Underground."
    return start + middle + " " + rng.choice(("Pray, give me more data.", "Elementary."))


def _answer(version: str, content: str | None, latency: float, tokens: int, status: int = 200) -> Answer:
    return Answer(version, status, latency, 0.1, tokens if content else 0, 0.8 if content else None, content)


def _pairs(count: int, seed: int, *, candidate: str, lost_opener: float = 0.0, banned: float = 0.0,
           failed: float = 0.0, jitter: float = 0.8) -> list[MirrorPair]:
    """Primary 1.2 against `candidate`; latency varies by up to ±jitter on both sides, as noise."""
    rng = random.Random(seed)
    pairs = []
    for index in range(count):
        p_latency = 0.4 * (1 + rng.uniform(-jitter, jitter) / 2)
        c_latency = 0.4 * (1 + rng.uniform(-jitter, jitter) / 2)
        fails = rng.random() < failed
        c_content = None if fails else _reply(
            rng, opener=rng.random() >= lost_opener, banned=rng.random() < banned
        )
        pairs.append(MirrorPair(
            arrival=1_700_000_000 + index, session=f"s_{index}", role="sherlock",
            message=f"Question {index}?",
            target=f"sherlock@{candidate}", outcome="failed" if fails else "ok",
            primary=_answer("1.2", _reply(rng), p_latency, 30),
            candidate=_answer(candidate, c_content, c_latency, 30, status=500 if fails else 200),
        ))
    return pairs


def test_sentences_and_constraints_are_read_from_the_text() -> None:
    assert sentence_count("One. Two! Three? Four") == 4
    assert constraint_violations("Just one.", MARKERS) == "too few sentences"
    assert constraint_violations("A. B. C.", MARKERS) == ""


def test_a_candidate_that_lost_its_opener_and_uses_a_banned_word_is_caught_beyond_the_noise() -> None:
    changed = _pairs(200, 1, candidate="1.3", lost_opener=0.4, banned=0.2)
    noise = _pairs(200, 2, candidate="1.2")
    report = compare_pairs(changed, markers_of, noise=noise, tolerance=0.05)
    fields = {f.field: f for f in report.fields}
    assert not report.passed
    assert 0.3 < fields["opener"].beyond_noise < 0.5 and fields["opener"].exceeds
    assert 0.12 < fields["banned_words"].beyond_noise < 0.28 and fields["banned_words"].exceeds
    assert fields["opener"].examples[0].primary == "Ah, I perceive"
    assert fields["opener"].examples[0].candidate == "—"
    # The closer is drawn at random on both sides: it differs about half the time, for two
    # primaries as much as for the candidate, so it is noise.
    assert fields["closer"].rate > 0.3 and fields["closer"].beyond_noise == 0
    assert fields["status"].beyond_noise == 0 and not fields["latency_s"].exceeds


def test_the_noise_file_is_what_keeps_latency_jitter_from_counting_as_a_change() -> None:
    same = _pairs(200, 3, candidate="1.3", jitter=1.6)
    without_noise = {f.field: f for f in compare_pairs(same, markers_of, tolerance=0.05).fields}
    assert without_noise["latency_s"].exceeds  # ±80 % jitter looks like a change to a fixed threshold
    with_noise = compare_pairs(same, markers_of, noise=_pairs(200, 4, candidate="1.2", jitter=1.6))
    fields = {f.field: f for f in with_noise.fields}
    assert fields["latency_s"].threshold is not None and fields["latency_s"].threshold > 0.5
    assert not fields["latency_s"].exceeds


def test_a_candidate_that_fails_more_often_changes_the_status_field() -> None:
    report = compare_pairs(_pairs(200, 5, candidate="1.3", failed=0.15), markers_of,
                           noise=_pairs(200, 6, candidate="1.2"))
    status = next(f for f in report.fields if f.field == "status")
    assert status.exceeds and status.examples[0].candidate == "500"


def test_the_diff_command_prints_json_and_exits_1_beyond_the_tolerance(tmp_path: Path) -> None:
    changed, noise = tmp_path / "pairs.jsonl", tmp_path / "noise.jsonl"
    changed.write_text("\n".join(dump_pair(p) for p in _pairs(100, 7, candidate="1.3", lost_opener=0.5)))
    noise.write_text("\n".join(dump_pair(p) for p in _pairs(100, 8, candidate="1.2")))
    command = [sys.executable, "-m", "rolescope", "diff", str(changed), "--noise", str(noise), "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert report["passed"] is False
    assert [f["field"] for f in report["fields"] if f["exceeds"]] == ["opener"]
    within = subprocess.run([*command, "--tolerance", "0.9"], capture_output=True, text=True, timeout=60)
    assert within.returncode == 0, within.stderr
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"arrival": 1}\nnot json\n')
    bad = subprocess.run([sys.executable, "-m", "rolescope", "diff", str(broken)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "broken.jsonl:1" in bad.stderr and "broken.jsonl:2" in bad.stderr
