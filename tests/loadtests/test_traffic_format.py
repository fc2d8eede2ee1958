"""The traffic file format: reading, errors naming line and field, and the bundled sample."""

from __future__ import annotations

import io
import itertools
import json
from pathlib import Path

import pytest

from rolescope.errors import ConfigError
from rolescope.loadtests.synth import SynthOptions, synthesize
from rolescope.loadtests.traffic_format import (
    TrafficRecord,
    default_traffic_path,
    dump_record,
    group_sessions,
    read_traffic,
    write_traffic,
)

GOOD = {
    "arrival": 1.5,
    "session": "s_a",
    "turn": 0,
    "role": "sherlock",
    "message": "hi",
    "stream": True,
    "original": {"status": 200, "latency_s": 0.4, "output_tokens": 12},
}


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_reads_records_and_skips_blank_lines(tmp_path: Path) -> None:
    path = _write(tmp_path / "t.jsonl", [json.dumps(GOOD), "", json.dumps({**GOOD, "turn": 1})])
    records = read_traffic(path)
    assert [r.turn for r in records] == [0, 1]
    assert records[0].original.output_tokens == 12


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ({**GOOD, "original": {**GOOD["original"], "status": "ok"}}, "line 2: field `original.status`"),
        ({k: v for k, v in GOOD.items() if k != "session"}, "line 2: field `session`"),
        ({**GOOD, "turn": -1}, "line 2: field `turn`"),
        ({**GOOD, "colour": "red"}, "line 2: field `colour`"),
    ],
)
def test_malformed_record_names_line_and_field(tmp_path: Path, broken: dict, expected: str) -> None:
    path = _write(tmp_path / "bad.jsonl", [json.dumps(GOOD), json.dumps(broken)])
    with pytest.raises(ConfigError, match=expected) as info:
        read_traffic(path)
    assert str(path) in str(info.value)


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.jsonl", [json.dumps(GOOD), json.dumps(GOOD), "{not json"])
    with pytest.raises(ConfigError, match=r"bad.jsonl, line 3: not valid JSON"):
        read_traffic(path)


def test_missing_and_empty_files_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read traffic file"):
        read_traffic(tmp_path / "absent.jsonl")
    with pytest.raises(ConfigError, match="holds no records"):
        read_traffic(_write(tmp_path / "empty.jsonl", [""]))


def test_write_then_read_round_trips(tmp_path: Path) -> None:
    records = synthesize(SynthOptions(sessions=5, seed=3))
    path = tmp_path / "rt.jsonl"
    with path.open("w", encoding="utf-8") as out:
        assert write_traffic(records, out) == len(records)
    assert read_traffic(path) == records


def test_bundled_sample_regenerates_identically() -> None:
    buffer = io.StringIO()
    write_traffic(synthesize(), buffer)
    assert default_traffic_path().read_text(encoding="utf-8") == buffer.getvalue(), (
        "loadtests/traffic/sample.jsonl is stale; rewrite it with "
        "`rolescope traffic synth --out loadtests/traffic/sample.jsonl`"
    )


def test_bundled_sample_is_a_few_hundred_sessions_of_every_bundled_role() -> None:
    records = read_traffic()
    sessions = group_sessions(records)
    assert 200 <= len(sessions) <= 1000
    assert {r.role for r in records} == {"sherlock", "curie", "grimble"}
    for turns in sessions.values():
        assert [t.turn for t in turns] == list(range(len(turns)))
        assert all(a.arrival <= b.arrival for a, b in itertools.pairwise(turns))


def test_synth_depends_on_the_seed() -> None:
    one = [dump_record(r) for r in synthesize(SynthOptions(sessions=20, seed=1))]
    assert one == [dump_record(r) for r in synthesize(SynthOptions(sessions=20, seed=1))]
    assert one != [dump_record(r) for r in synthesize(SynthOptions(sessions=20, seed=2))]


def test_max_tokens_is_optional_and_written_only_when_known() -> None:
    without = read_traffic()[0]
    assert without.max_tokens is None
    assert "max_tokens" not in json.loads(dump_record(without))
    asked = without.model_copy(update={"max_tokens": 128})
    line = dump_record(asked)
    assert json.loads(line)["max_tokens"] == 128
    assert TrafficRecord.model_validate_json(line) == asked
