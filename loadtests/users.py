"""Locust users that replay shadow traffic against a role service and time every token.

`ChatUser` sends JSON chat requests; `StreamUser` asks for server-sent events
and measures, from the client side, time to first non-empty token, time per
output token, inter-token latencies and end-to-end time; `ReplayUser` follows
each record's stream flag. An in-stream `error` event is a failure although the
status was 200, and a stream whose tokens all arrive in one read is flagged.
In the open model every latency counts from the intended send time.

The concrete classes are made by `locustfile.py`, which gives them the
process's `ReplayContext`.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import gevent
from locust import FastHttpUser, task

from rolescope.loadtests.collector import SAMPLE_CONTEXT_KEY
from rolescope.loadtests.replay_context import ReplayContext
from rolescope.loadtests.schedule import PlannedTurn, turn_send_time
from rolescope.loadtests.sse import StreamParser
from rolescope.rundir import RequestSample

CHAT_PATH = "/v1/chat"
JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}
# Compression would make the server buffer the stream; the client must see tokens as they leave.
STREAM_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "text/event-stream",
    "Accept-Encoding": "identity",
}
# Read from the environment only (never written to settings.json with the run).
API_KEY_ENV = "ROLESCOPE_LOAD_API_KEY"


def with_api_key(headers: dict[str, str], api_key: str | None) -> dict[str, str]:
    """The headers with `Authorization: Bearer <key>` when the service needs a key."""
    return {**headers, "Authorization": f"Bearer {api_key}"} if api_key else headers


def _sleep_until(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        gevent.sleep(delay)


@dataclass(slots=True)
class _Due:
    """The next request of a user: what, for which session, and when."""

    turn: PlannedTurn
    session_id: str
    intended: float
    earliest: float
    from_intended: bool


class ReplayUserBase(FastHttpUser):
    """One request per task; the waiting between requests happens in `wait_time`.

    Waiting outside the task matters at the end of a run: Locust stops a
    waiting user at once but lets a running task finish, so a request that
    was sent is always completed and recorded, and none is sent after the end.
    """

    abstract = True
    replay: ClassVar[ReplayContext]
    force_stream: ClassVar[bool | None] = None  # None: follow the record

    def on_start(self) -> None:
        runner = self.environment.runner
        index = max(int(getattr(runner, "worker_index", 0) or 0), 0)
        self.replay.bind_process(index)
        self._process_index = index
        self._due: _Due | None = None
        self._session: list[PlannedTurn] = []
        self._session_id = ""
        self._session_start = 0.0
        self._previous_end: float | None = None
        api_key = os.environ.get(API_KEY_ENV, "").strip() or None
        self._json_headers = with_api_key(JSON_HEADERS, api_key)
        self._stream_headers = with_api_key(STREAM_HEADERS, api_key)

    def wait_time(self) -> float:
        self._due = self._plan_next()
        return max(0.0, self._due.earliest - time.time())

    def _plan_next(self) -> _Due:
        ctx = self.replay
        if ctx.config.open_model:
            intended, turn = ctx.next_open_request(self._process_index)
            return _Due(turn, ctx.session_id(turn.session, 0), intended, intended, True)
        if not self._session:
            cycle, plan = ctx.next_session()
            self._session = list(plan.turns)
            self._session_id = ctx.session_id(plan.session, cycle)
            self._session_start = time.time()
            self._previous_end = None
        turn = self._session.pop(0)
        intended, earliest = turn_send_time(self._session_start, turn, self._previous_end)
        return _Due(turn, self._session_id, intended, earliest, False)

    @task
    def replay_next(self) -> None:
        due, self._due = self._due, None
        if due is None:  # the first task runs before any wait
            due = self._plan_next()
            _sleep_until(due.earliest)
        self.send(due.turn, due.session_id, due.intended, from_intended=due.from_intended)
        self._previous_end = time.time()

    def send(self, turn: PlannedTurn, session_id: str, intended: float, *, from_intended: bool) -> None:
        stream = turn.stream if self.force_stream is None else self.force_stream
        body = {"message": turn.message, "session_id": session_id, "role": turn.role, "stream": stream}
        if stream:
            self._send_stream(turn, body, intended, from_intended)
        else:
            self._send_chat(turn, body, intended, from_intended)

    def _sample(self, kind: str, turn: PlannedTurn, intended: float, start: float) -> RequestSample:
        return RequestSample(
            name=kind,
            kind="stream" if kind == "stream" else "chat",
            intended_start=intended,
            start=start,
            ok=False,
            status=0,
            e2e_s=0.0,
            session=turn.session,
            turn=turn.turn,
            process=self._process_index,
        )

    def _send_chat(
        self, turn: PlannedTurn, body: dict[str, Any], intended: float, from_intended: bool
    ) -> None:
        start = time.time()
        origin = intended if from_intended else start
        sample = self._sample("chat", turn, intended, start)
        with self.client.post(
            CHAT_PATH, data=json.dumps(body), headers=self._json_headers, name="chat", catch_response=True
        ) as response:
            end = time.time()
            sample.status = int(response.status_code or 0)
            sample.e2e_s = end - origin
            if 200 <= sample.status < 300:
                try:
                    sample.output_tokens = int(response.json()["usage"]["output_tokens"])
                    sample.ok = True
                except (ValueError, KeyError, TypeError) as exc:
                    sample.error = f"unreadable answer: {exc}"
            else:
                sample.error = _error_text(response)
            self._report(response, sample)

    def _send_stream(
        self, turn: PlannedTurn, body: dict[str, Any], intended: float, from_intended: bool
    ) -> None:
        start = time.time()
        origin = intended if from_intended else start
        sample = self._sample("stream", turn, intended, start)
        parser = StreamParser()
        with self.client.post(
            CHAT_PATH,
            data=json.dumps(body),
            headers=self._stream_headers,
            name="stream",
            stream=True,
            catch_response=True,
        ) as response:
            sample.status = int(response.status_code or 0)
            raw = getattr(response, "_response", None)
            if 200 <= sample.status < 300 and raw is not None:
                try:
                    while line := raw.readline(b"\n"):
                        parser.feed(line, time.time())
                except Exception as exc:  # a broken connection mid-stream is a failed request
                    sample.error = f"stream broken: {type(exc).__name__}: {exc}"[:200]
            elif sample.status:
                sample.error = _error_text(response)
            else:
                sample.error = str(getattr(response, "error", "no response"))[:200]
            end = time.time()
            reading = parser.close(end)
            sample.e2e_s = end - origin
            sample.itl_s = reading.inter_token_latencies()
            sample.output_tokens = reading.output_tokens()
            sample.all_at_once = reading.arrived_all_at_once()
            if reading.first_token_at is not None:
                sample.ttft_s = reading.first_token_at - origin
                if sample.output_tokens > 1:
                    sample.tpot_s = (end - reading.first_token_at) / (sample.output_tokens - 1)
            if sample.error is None and reading.error is not None:
                sample.error = f"error event: {reading.error}"
            elif sample.error is None and reading.first_token_at is None:
                sample.error = "stream ended without a token"
            sample.ok = sample.error is None
            self._report(response, sample)

    def _report(self, response: Any, sample: RequestSample) -> None:
        meta = response.request_meta
        meta["context"][SAMPLE_CONTEXT_KEY] = sample
        meta["response_time"] = sample.e2e_s * 1000.0
        if sample.ok:
            response.success()
        else:
            response.failure(sample.error or f"HTTP {sample.status}")


def _error_text(response: Any) -> str:
    try:
        detail = response.json().get("error", {})
        return f"HTTP {response.status_code}: {detail.get('code', '')} {detail.get('message', '')}".strip()[
            :200
        ]
    except Exception:
        return f"HTTP {response.status_code}"
