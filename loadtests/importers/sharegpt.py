"""ShareGPT conversations: `[{"id", "conversations": [{"from": "human"|"gpt"|"system", "value"}]}]`.

Read as one JSON array (the published dumps) or as JSON Lines, one
conversation a line. Every `human` message becomes a turn and the `gpt`
message after it gives the reply's length; `system` messages are skipped. The
format has no times, so arrivals are synthetic. Problems name the line where
the conversation starts and its index in the array.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from rolescope.loadtests.importers.base import (
    ImportedConversation,
    ImportedTurn,
    ImportResult,
    estimate_tokens,
    read_text,
)

_USER = {"human", "user"}
_ASSISTANT = {"gpt", "assistant", "chatgpt", "bard", "bing", "model"}
_SKIPPED = {"system", "tool", "function", "function_call", "observation"}
_DECODER = json.JSONDecoder()


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _array_items(text: str, path: Path, problems: list[str]) -> Iterator[tuple[object, str]]:
    """Elements of a top-level JSON array, each with where it starts, without losing line numbers."""
    position = text.index("[") + 1
    index = 0
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text):
            problems.append(f"{path}: the JSON array is not closed")
            return
        if text[position] == "]":
            return
        where = f"{path}, line {_line_of(text, position)} (conversation [{index}])"
        try:
            item, position = _DECODER.raw_decode(text, position)
        except json.JSONDecodeError as exc:
            problems.append(f"{path}, line {exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno})")
            return  # the rest of the array cannot be found reliably after a syntax error
        yield item, where
        index += 1


def _jsonl_items(text: str, path: Path, problems: list[str]) -> Iterator[tuple[object, str]]:
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield json.loads(line), f"{path}, line {lineno}"
        except json.JSONDecodeError as exc:
            problems.append(f"{path}, line {lineno}: not valid JSON ({exc.msg} at column {exc.colno})")


def parse_conversation(item: object, where: str, problems: list[str]) -> list[ImportedTurn]:
    if not isinstance(item, dict):
        problems.append(f"{where}: expected a JSON object, got {type(item).__name__}")
        return []
    messages = item.get("conversations", item.get("conversation"))
    if not isinstance(messages, list):
        problems.append(
            f"{where}: field 'conversations' must be a list of {{from, value}}; got {messages!r:.60}"
        )
        return []
    users: list[tuple[str, int]] = []
    for index, message in enumerate(messages):
        field = f"conversations[{index}]"
        if not isinstance(message, dict):
            problems.append(f"{where}: field '{field}' must be an object; got {message!r:.60}")
            continue
        speaker = str(message.get("from", message.get("role", ""))).lower()
        value = message.get("value", message.get("content"))
        if speaker in _SKIPPED:
            continue
        if speaker not in _USER | _ASSISTANT:
            problems.append(f"{where}: field '{field}.from' must be human, gpt or system; got {speaker!r}")
        elif not isinstance(value, str):
            problems.append(f"{where}: field '{field}.value' must be a string; got {value!r:.60}")
        elif speaker in _USER:
            if not value.strip():
                problems.append(f"{where}: field '{field}.value' is empty")
            else:
                users.append((value, 0))
        elif users:
            users[-1] = (users[-1][0], estimate_tokens(value))
    if not users and not problems:
        problems.append(f"{where}: field 'conversations' holds no human message")
    return [ImportedTurn(message=text, output_tokens=tokens) for text, tokens in users]


class ShareGPTImporter:
    name = "sharegpt"
    summary = "ShareGPT multi-turn JSON (an array, or one conversation a line)"
    timed = False

    def read(self, path: Path) -> ImportResult:
        result = ImportResult()
        text = read_text(path, result)
        if text is None:
            return result
        is_array = text.lstrip().startswith("[")
        items = (_array_items if is_array else _jsonl_items)(text, path, result.problems)
        for number, (item, where) in enumerate(items):
            before = len(result.problems)
            turns = parse_conversation(item, where, result.problems)
            if turns and len(result.problems) == before:
                raw_id = item.get("id") if isinstance(item, dict) else None
                source_id = str(raw_id) if raw_id else f"{path.name}:{number}"
                result.conversations.append(ImportedConversation(source_id, where, tuple(turns)))
        if not result.conversations and not result.problems:
            result.problems.append(f"{path}: no conversations")
        return result
