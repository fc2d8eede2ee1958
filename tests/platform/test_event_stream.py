"""The SSE decoder against the standard: any framing, any line endings, any chunking, same events."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from rolescope.event_stream import EventStreamDecoder, ServerSentEvent, decode_all

ENDINGS = (b"\n", b"\r\n", b"\r")
# Field text: anything but the line breaks (and NUL, which an `id` may not hold).
line_text = st.text(st.characters(blacklist_characters="\r\n\0", blacklist_categories=("Cs",)), max_size=12)
names = st.text(st.characters(whitelist_categories=("L", "N"), whitelist_characters="_-."), max_size=8)


@st.composite
def event_specs(draw: st.DrawFn) -> tuple[str, list[str], str | None, bool]:
    """(event name or "", data lines, id or None, comment before it)."""
    return (
        draw(names),
        draw(st.lists(line_text, min_size=1, max_size=4)),
        draw(st.none() | line_text),
        draw(st.booleans()),
    )


def _field(name: str, value: str, space: bool) -> str:
    # Without the optional space a value that starts with a space would lose it: keep the space then.
    return f"{name}: {value}" if space or value.startswith(" ") else f"{name}:{value}"


def encode(
    specs: list[tuple[str, list[str], str | None, bool]], endings: list[bytes], spaces: list[bool]
) -> bytes:
    lines: list[str] = []
    for name, data, event_id, comment in specs:
        if comment:
            lines.append(": keep-alive")
        if name:
            lines.append(_field("event", name, spaces[len(lines) % len(spaces)]))
        if event_id is not None:
            lines.append(_field("id", event_id, spaces[len(lines) % len(spaces)]))
        lines += [_field("data", part, spaces[len(lines) % len(spaces)]) for part in data]
        lines.append("")
    out = bytearray()
    previous = b""
    for index, line in enumerate(lines):
        ending = endings[index % len(endings)]
        if previous == b"\r" and not line:
            ending = b"\r"  # CR then an empty LF-ended line would read as one CRLF
        out += line.encode() + ending
        previous = ending
    return bytes(out)


def expected(specs: list[tuple[str, list[str], str | None, bool]]) -> list[ServerSentEvent]:
    events, last_id = [], ""
    for name, data, event_id, _ in specs:
        last_id = event_id if event_id is not None else last_id
        events.append(ServerSentEvent(name or "message", "\n".join(data), last_id))
    return events


def feed_in_pieces(body: bytes, cuts: list[int]) -> list[ServerSentEvent]:
    decoder = EventStreamDecoder()
    events: list[ServerSentEvent] = []
    start = 0
    for cut in [*sorted({c % (len(body) + 1) for c in cuts}), len(body)]:
        events += decoder.feed(body[start:cut])
        start = cut
    return events


@given(
    st.lists(event_specs(), max_size=6),
    st.lists(st.sampled_from(ENDINGS), min_size=1, max_size=5),
    st.lists(st.booleans(), min_size=1, max_size=3),
    st.lists(st.integers(min_value=0), max_size=12),
)
def test_events_survive_any_line_endings_and_any_chunking(
    specs: list[tuple[str, list[str], str | None, bool]],
    endings: list[bytes],
    spaces: list[bool],
    cuts: list[int],
) -> None:
    body = encode(specs, endings, spaces)
    assert decode_all(body) == expected(specs)
    assert feed_in_pieces(body, cuts) == expected(specs)


# Streams built from the pieces that matter to the format, so that random bytes do hit its rules.
PIECES = (b"\r", b"\n", b"\r\n", b"data", b"event", b"id", b"retry", b":", b" ", b"7", b"x", b"\xef\xbb\xbf")
streams = st.binary(max_size=60) | st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join)


@given(streams, st.lists(st.integers(min_value=0), max_size=12))
@example(b"data: a\rdata: b\n\n", [15])  # a CR inside a chunk says nothing about the next one
def test_how_bytes_are_chunked_never_changes_the_events(body: bytes, cuts: list[int]) -> None:
    assert feed_in_pieces(body, cuts) == decode_all(body)


@given(st.lists(st.integers(min_value=0), max_size=6))
def test_a_byte_order_mark_at_the_start_is_skipped_once(cuts: list[int]) -> None:
    body = b"\xef\xbb\xbfdata: one\n\n\xef\xbb\xbfdata: two\n\n"
    events = feed_in_pieces(body, cuts)
    # Only the stream's first BOM is skipped; a later one is part of a (then unknown) field name.
    assert events == [ServerSentEvent("message", "one")]


def test_multi_line_data_comments_and_unknown_fields() -> None:
    body = (
        b": a comment\r\n"
        b"event: update\r\n"
        b"data: first\r\n"
        b"vendor-field: ignored\r\n"
        b"data\r\n"  # no colon: a data field with an empty value
        b"data:  two spaces\r\n"
        b"\r\n"
    )
    assert decode_all(body) == [ServerSentEvent("update", "first\n\n two spaces")]


def test_an_event_without_data_is_not_dispatched_and_its_name_does_not_leak() -> None:
    assert decode_all(b"event: lonely\n\ndata: x\n\n") == [ServerSentEvent("message", "x")]


def test_an_unfinished_event_at_the_end_of_the_stream_is_discarded() -> None:
    decoder = EventStreamDecoder()
    assert decoder.feed(b"data: complete\n\n") == [ServerSentEvent("message", "complete")]
    assert decoder.feed(b"data: cut off\n") == []
    assert decoder.feed(b"") == []


def test_ids_persist_retry_is_kept_and_a_nul_id_is_ignored() -> None:
    decoder = EventStreamDecoder()
    events = decoder.feed(b"id: 7\nretry: 1500\ndata: a\n\ndata: b\n\nid: x\0y\nretry: soon\ndata: c\n\n")
    assert [e.id for e in events] == ["7", "7", "7"]
    assert decoder.last_event_id == "7" and decoder.retry_ms == 1500


def test_invalid_utf8_becomes_replacement_characters() -> None:
    assert decode_all(b"data: caf\xc3\n\n") == [ServerSentEvent("message", "caf\ufffd")]


def test_a_crlf_split_across_chunks_is_one_line_ending() -> None:
    decoder = EventStreamDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n") == []  # completes the CRLF: not an empty line
    assert decoder.feed(b"\n") == [ServerSentEvent("message", "a")]  # now an empty line
