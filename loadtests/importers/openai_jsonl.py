"""OpenAI chat conversations, one a line: `{"messages": [{"role", "content"}, ...], ...}`.

The shape of a Chat Completions request body; lines of the Batch API
(`{"custom_id", "body": {"messages": ...}}`) are read too. Every user message
becomes a turn; the assistant message after it gives the reply's length. The
format has no times, so arrivals are synthetic. `max_tokens` /
`max_completion_tokens` and `stream` are kept when present; an `id`,
`conversation_id`, `session_id` or `user` names the session.
"""

from __future__ import annotations

import json
from pathlib import Path

from rolescope.loadtests.importers.base import (
    ImportedConversation,
    ImportedTurn,
    ImportResult,
    estimate_tokens,
    read_text,
    text_of_parts,
)

_SKIPPED_ROLES = {"system", "developer", "tool", "function"}
_ID_FIELDS = ("id", "conversation_id", "session_id", "user", "custom_id")


def _max_tokens(body: dict[str, object], where: str, problems: list[str]) -> int | None:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"{where}: field '{name}' must be a whole number ≥ 1; got {value!r}")
            return None
        return value
    return None


def parse_conversation(body: dict[str, object], where: str, problems: list[str]) -> list[ImportedTurn]:
    """User turns of one `messages` list; problems name the message index and field."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        problems.append(
            f"{where}: field 'messages' must be a list of {{role, content}}; got {messages!r:.60}"
        )
        return []
    max_tokens = _max_tokens(body, where, problems)
    raw_stream = body.get("stream")
    stream = raw_stream if isinstance(raw_stream, bool) else None
    users: list[tuple[str, int]] = []  # (text, output tokens of the reply that followed)
    for index, message in enumerate(messages):
        field = f"messages[{index}]"
        if not isinstance(message, dict):
            problems.append(f"{where}: field '{field}' must be an object; got {message!r:.60}")
            continue
        role = message.get("role")
        text = text_of_parts(message.get("content"))
        if role == "user":
            if text is None or not text.strip():
                problems.append(f"{where}: field '{field}.content' holds no text")
                continue
            users.append((text, 0))
        elif role == "assistant":
            if users and text:
                users[-1] = (users[-1][0], estimate_tokens(text))
        elif role not in _SKIPPED_ROLES:
            problems.append(
                f"{where}: field '{field}.role' must be system, developer, user, assistant or tool; "
                f"got {role!r}"
            )
    if not users and not problems:
        problems.append(f"{where}: field 'messages' holds no user message")
    return [ImportedTurn(message=t, output_tokens=n, max_tokens=max_tokens, stream=stream) for t, n in users]


class OpenAIJsonlImporter:
    name = "openai-jsonl"
    summary = "OpenAI chat `messages`, one conversation a line (also Batch API lines)"
    timed = False

    def read(self, path: Path) -> ImportResult:
        result = ImportResult()
        text = read_text(path, result)
        if text is None:
            return result
        for lineno, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            where = f"{path}, line {lineno}"
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                result.problems.append(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(raw, dict):
                result.problems.append(f"{where}: expected a JSON object, got {type(raw).__name__}")
                continue
            body = raw.get("body") if isinstance(raw.get("body"), dict) else raw
            assert isinstance(body, dict)
            turns = parse_conversation(body, where, result.problems)
            source_id = next((str(raw[k]) for k in _ID_FIELDS if raw.get(k)), f"{path.name}:{lineno}")
            if turns:
                result.conversations.append(ImportedConversation(source_id, where, tuple(turns)))
        return result
