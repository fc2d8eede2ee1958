"""The mirrored-pairs format: whatever is written reads back the same; bad lines are all named."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rolescope.errors import ConfigError
from rolescope.mirroring.pairs import Answer, MirrorPair, dump_pair, parse_pair, read_pairs

_finite = st.floats(min_value=0, max_value=1e6, allow_nan=False)
_answers = st.builds(
    Answer,
    version=st.none() | st.from_regex(r"\A\d+(\.\d+){0,2}\Z"),
    status=st.integers(0, 599),
    latency_s=_finite,
    ttft_s=st.none() | _finite,
    output_tokens=st.integers(0, 100_000),
    confidence=st.none() | st.floats(0, 1),
    content=st.none() | st.text(max_size=200),
)
_pairs = st.builds(
    MirrorPair,
    arrival=_finite,
    session=st.text(min_size=1, max_size=40),
    role=st.from_regex(r"\A[a-z][a-z0-9_-]{0,20}\Z"),
    message=st.text(max_size=200),
    target=st.text(min_size=1, max_size=60),
    outcome=st.sampled_from(["ok", "failed", "timeout"]),
    primary=_answers,
    candidate=_answers,
)


@given(_pairs)
def test_a_pair_reads_back_as_it_was_written(pair: MirrorPair) -> None:
    assert parse_pair(dump_pair(pair)) == pair


def test_every_bad_line_is_named_at_once(tmp_path: Path) -> None:
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"arrival": 1}\n\n[1, 2]\nnot json\n')
    with pytest.raises(ConfigError) as caught:
        read_pairs(path)
    message = str(caught.value)
    assert all(f"pairs.jsonl:{line}:" in message for line in (1, 3, 4))
