"""OTLP-JSON spans carrying OpenTelemetry GenAI attributes: one turn per chat span.

Reads what the OpenTelemetry Collector's file exporter writes (one
`{"resourceSpans": …}` document a line) or a single such document. A span is a
turn when `gen_ai.operation.name` is `chat`, `text_completion` or
`generate_content` (or, without an operation name, when it carries input
messages). Its user message is the last `user` entry of, in this order:
`gen_ai.input.messages` (on the span, or on a
`gen_ai.client.inference.operation.details` event), the older `gen_ai.prompt`
(JSON, or indexed `gen_ai.prompt.N.role` / `.content`, also on a
`gen_ai.content.prompt` event), or a `gen_ai.user.message` event. The span's
start is the arrival; its duration, `gen_ai.usage.output_tokens`,
`gen_ai.request.max_tokens` and status describe the original answer. The
session is `gen_ai.conversation.id`, else `session.id`, else the trace.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rolescope.loadtests.importers.base import (
    ImportedConversation,
    ImportedTurn,
    ImportResult,
    read_text,
    text_of_parts,
)

_CHAT_OPERATIONS = {"chat", "text_completion", "generate_content"}
_ERROR_CODES = {2, "2", "STATUS_CODE_ERROR"}


def any_value(value: object) -> Any:
    """An OTLP-JSON AnyValue as plain Python (arrays as lists, key-value lists as dicts)."""
    if not isinstance(value, dict):
        return value
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])  # OTLP JSON writes 64-bit integers as strings
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [any_value(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return attributes(value["kvlistValue"].get("values", []))
    return None


def attributes(items: object) -> dict[str, Any]:
    if not isinstance(items, list):
        return {}
    return {str(i.get("key")): any_value(i.get("value")) for i in items if isinstance(i, dict)}


def _json_or_self(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _last_user_text(messages: Any) -> str | None:
    """The last user message of a GenAI message list (`parts` as the semconv has them, or `content`)."""
    messages = _json_or_self(messages)
    if isinstance(messages, str):
        return messages or None
    if not isinstance(messages, list):
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            parts = message.get("parts")
            text = text_of_parts(parts if isinstance(parts, list) else message.get("content"))
            if text:
                return text
    return None


def _indexed_prompt(attrs: dict[str, Any]) -> str | None:
    found: dict[int, dict[str, Any]] = {}
    for key, value in attrs.items():
        pieces = key.split(".")
        if len(pieces) == 4 and pieces[:2] == ["gen_ai", "prompt"] and pieces[2].isdigit():
            found.setdefault(int(pieces[2]), {})[pieces[3]] = value
    return _last_user_text([found[i] for i in sorted(found)]) if found else None


def user_message(attrs: dict[str, Any], events: list[dict[str, Any]]) -> str | None:
    event_attrs = [(str(e.get("name", "")), attributes(e.get("attributes"))) for e in events]
    candidates: list[Any] = [attrs.get("gen_ai.input.messages")]
    candidates += [a.get("gen_ai.input.messages") for n, a in event_attrs if "gen_ai.input.messages" in a]
    candidates += [attrs.get("gen_ai.prompt")]
    candidates += [a.get("gen_ai.prompt") for n, a in event_attrs if n == "gen_ai.content.prompt"]
    for candidate in candidates:
        text = _last_user_text(candidate) if candidate is not None else None
        if text:
            return text
    indexed = _indexed_prompt(attrs)
    if indexed:
        return indexed
    for name, event in reversed(event_attrs):
        if name == "gen_ai.user.message":
            body = _json_or_self(event.get("gen_ai.event.content", event.get("content")))
            text = text_of_parts(body.get("content") if isinstance(body, dict) else body)
            if text:
                return text
    return None


def _spans(document: object) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(document, dict):
        return
    for r, resource in enumerate(document.get("resourceSpans") or []):
        scopes = resource.get("scopeSpans") or resource.get("instrumentationLibrarySpans") or []
        for s, scope in enumerate(scopes):
            for n, span in enumerate(scope.get("spans") or []):
                if isinstance(span, dict):
                    yield f"resourceSpans[{r}].scopeSpans[{s}].spans[{n}]", span


def _documents(text: str, path: Path, problems: list[str]) -> Iterator[tuple[object, int]]:
    stripped = text.strip()
    try:
        yield json.loads(stripped), 1  # a single (possibly pretty-printed) document
        return
    except json.JSONDecodeError:
        pass
    for lineno, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                yield json.loads(line), lineno
            except json.JSONDecodeError as exc:
                problems.append(f"{path}, line {lineno}: not valid JSON ({exc.msg} at column {exc.colno})")


def parse_span(
    span: dict[str, Any], where: str, problems: list[str]
) -> tuple[str, ImportedTurn, str | None] | None:
    """(session, turn, role) of a GenAI chat span, None for any other span."""
    attrs = attributes(span.get("attributes"))
    operation = attrs.get("gen_ai.operation.name")
    events = [e for e in span.get("events") or [] if isinstance(e, dict)]
    message = user_message(attrs, events)
    if operation not in _CHAT_OPERATIONS and (operation is not None or message is None):
        return None
    if message is None:
        problems.append(
            f"{where}: span {span.get('spanId', '?')} ('{span.get('name', '')}') has no user message in "
            "gen_ai.input.messages, gen_ai.prompt or a gen_ai.user.message event; was content capture on?"
        )
        return None
    try:
        start_ns = int(span["startTimeUnixNano"])
        end_ns = int(span.get("endTimeUnixNano") or start_ns)
    except (KeyError, TypeError, ValueError):
        problems.append(f"{where}: field 'startTimeUnixNano' must be nanoseconds since the epoch")
        return None
    output_tokens = attrs.get("gen_ai.usage.output_tokens")
    max_tokens = attrs.get("gen_ai.request.max_tokens")
    http_status = attrs.get("http.response.status_code")
    failed = (span.get("status") or {}).get("code") in _ERROR_CODES or "error.type" in attrs
    status = (
        http_status if isinstance(http_status, int) and 100 <= http_status <= 599 else 500 if failed else 200
    )
    session = attrs.get("gen_ai.conversation.id") or attrs.get("session.id") or span.get("traceId") or "trace"
    turn = ImportedTurn(
        message=message,
        arrival=start_ns / 1e9,
        latency_s=max(end_ns - start_ns, 0) / 1e9,
        status=status,
        output_tokens=output_tokens if isinstance(output_tokens, int) and output_tokens >= 0 else 0,
        max_tokens=max_tokens if isinstance(max_tokens, int) and max_tokens >= 1 else None,
    )
    role = attrs.get("gen_ai.agent.name")
    return str(session), turn, str(role) if role else None


class OtelGenAIImporter:
    name = "otel-genai"
    summary = "OTLP-JSON spans with OpenTelemetry GenAI attributes (arrival times from the spans)"
    timed = True

    def read(self, path: Path) -> ImportResult:
        result = ImportResult()
        text = read_text(path, result)
        if text is None:
            return result
        sessions: dict[str, tuple[str, str | None, list[ImportedTurn]]] = {}
        for document, lineno in _documents(text, path, result.problems):
            if not isinstance(document, dict) or "resourceSpans" not in document:
                result.problems.append(
                    f"{path}, line {lineno}: expected an OTLP-JSON object with 'resourceSpans'"
                )
                continue
            for field, span in _spans(document):
                parsed = parse_span(span, f"{path}, line {lineno}, {field}", result.problems)
                if parsed is not None:
                    session, turn, role = parsed
                    first_seen: tuple[str, str | None, list[ImportedTurn]] = (
                        f"{path}, line {lineno}",
                        role,
                        [],
                    )
                    sessions.setdefault(session, first_seen)[2].append(turn)
        for session, (where, role, turns) in sessions.items():
            ordered = tuple(sorted(turns, key=lambda t: t.arrival or 0.0))
            result.conversations.append(ImportedConversation(session, where, ordered, role))
        if not result.conversations and not result.problems:
            result.problems.append(f"{path}: no GenAI chat spans (gen_ai.operation.name chat) found")
        return result
