"""The run directory's contract: one sample record, read back as written; a bad line names itself."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import rolescope.rundir
from rolescope.rundir import SAMPLES_FILE, RequestSample, SampleFileError, read_samples, write_samples


def _stream() -> RequestSample:
    return RequestSample(
        name="stream",
        kind="stream",
        intended_start=10.0,
        start=10.2,
        ok=True,
        status=200,
        e2e_s=1.5,
        ttft_s=0.3,
        tpot_s=0.02,
        itl_s=[0.02, 0.03],
        output_tokens=3,
        input_tokens=57,
        session="s1",
        turn=2,
        process=1,
    )


def test_samples_are_read_back_exactly_as_written(tmp_path: Path) -> None:
    chat = RequestSample("chat", "chat", 11.0, 11.0, False, 0, 30.0, error="no response")
    path = tmp_path / SAMPLES_FILE
    assert write_samples([_stream(), chat], path) == 2
    assert read_samples(path) == [_stream(), chat]
    assert _stream().latencies("itl") == [0.02, 0.03] and chat.latencies("ttft") == []
    assert _stream().streamed and not chat.streamed


def test_lines_without_the_optional_fields_take_their_defaults(tmp_path: Path) -> None:
    path = tmp_path / SAMPLES_FILE
    old = {"kind": "stream", "start": 5.0, "ok": True, "status": None, "e2e_s": 0.4}
    path.write_text(json.dumps(old) + "\n")
    (sample,) = read_samples(path)
    assert (sample.name, sample.intended_start, sample.status, sample.itl_s) == ("stream", 5.0, 0, [])
    assert sample.input_tokens is None


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("{not json", "Expecting property name"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('{"kind": "chat", "start": 1.0, "ok": true}', "needs `start` (or `intended_start`), `ok`"),
        ('{"kind": "ws", "start": 1, "ok": true, "e2e_s": 1}', "kind is 'ws', expected `chat` or `stream`"),
    ],
)
def test_a_malformed_line_is_refused_with_its_file_and_line_number(
    tmp_path: Path, line: str, reason: str
) -> None:
    path = tmp_path / SAMPLES_FILE
    write_samples([_stream()], path)
    with path.open("a") as out:
        out.write(line + "\n")
    with pytest.raises(SampleFileError, match=rf"{SAMPLES_FILE}:2: not a valid sample line \(.*") as caught:
        read_samples(path)
    assert reason in str(caught.value)


def test_the_run_directory_module_imports_nothing_else_of_rolescope() -> None:
    tree = ast.parse(Path(rolescope.rundir.__file__).read_text())
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.startswith("rolescope")]
