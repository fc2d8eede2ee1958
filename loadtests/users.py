"""Locust users that replay shadow traffic against a role service and time every token.

Whatever the protocol (`--api`), a user asks the process's target adapter
(`targets/`) to turn each planned turn into a request, sends it, and hands the
answer back to the adapter's reader, which reports token arrival times, output
tokens, the reply text and an error. From the client side it measures time to
first non-empty token, time per output token, inter-token latencies and
end-to-end time; an in-stream error or a cut-off stream is a failure although
the status was 200, and a stream whose tokens all arrive in one read is
flagged. In the open model every latency counts from the intended send time.
For stateless targets each session's conversation is resent with every turn.
Over a WebSocket target each session holds one connection for its turns
(`ws_sessions.py`); a turn is reported to Locust as a `WS` request.

The concrete classes are made by `locustfile.py`, which gives them the
process's `ReplayContext`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import gevent
from locust import FastHttpUser, task

from rolescope.loadtests.collector import SAMPLE_CONTEXT_KEY
from rolescope.loadtests.replay_context import ReplayContext
from rolescope.loadtests.schedule import PlannedTurn, turn_send_time
from rolescope.loadtests.targets.base import FrameReader, HttpCall, Reply, TurnCall, http_error_text
from rolescope.loadtests.ws_sessions import WsSessions, client_tls
from rolescope.rundir import Kind, RequestSample


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
    # WebSocket targets: the process's open connections, one per session in flight.
    _ws_sessions: ClassVar[WsSessions | None] = None

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

    def on_stop(self) -> None:
        # Open-model users share sessions and may stop while others go on: their connections are
        # closed by each session's last turn, or when the process ends.
        sessions = type(self)._ws_sessions
        if sessions is not None and not self.replay.config.open_model:
            sessions.close(self._session_id)

    def _ws(self) -> WsSessions:
        cls = type(self)
        if cls._ws_sessions is None:
            target = self.replay.config.target
            tls = client_tls(target.insecure, str(target.ca_file) if target.ca_file else None)
            cls._ws_sessions = WsSessions(self.host or "", self.replay.config.timeout_s, tls)
        return cls._ws_sessions

    def wait_time(self) -> float:
        self._due = self._plan_next()
        return max(0.0, self._due.earliest - time.time())

    def _plan_next(self) -> _Due:
        ctx = self.replay
        if ctx.config.open_model:
            intended, turn = ctx.next_open_request(self._process_index)
            return _Due(turn, ctx.session_id(turn.session, 0), intended, intended, True)
        if not self._session:
            ctx.conversations.forget(self._session_id)
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
        last = self.replay.is_last_turn(due.turn) if due.from_intended else not self._session
        self.send(due.turn, due.session_id, due.intended, from_intended=due.from_intended, last=last)
        self._previous_end = time.time()

    def send(
        self, turn: PlannedTurn, session_id: str, intended: float, *, from_intended: bool, last: bool = False
    ) -> None:
        """One turn; `last`: the session has no more turns, so a WebSocket it holds is closed after."""
        ctx = self.replay
        adapter = ctx.adapter
        stream = turn.stream if self.force_stream is None else self.force_stream
        history = ctx.conversations.history(session_id, turn.turn) if adapter.stateless else ()
        call = TurnCall(turn.message, turn.role, session_id, stream, history, ctx.personas.get(turn.role))
        request = adapter.request(call)
        start = time.time()
        origin = intended if from_intended else start
        if adapter.transport == "websocket":
            sample = self._sample("ws", turn, intended, start, kind="stream")
            reply = self._send_websocket(request, sample, origin, session_id, last)
        elif request.stream:
            sample = self._sample(request.name, turn, intended, start)
            reply = self._send_stream(request, sample, origin)
        else:
            sample = self._sample(request.name, turn, intended, start)
            reply = self._send_json(request, sample, origin)
        if adapter.stateless and sample.ok:
            ctx.conversations.record(session_id, turn.turn, turn.message, reply.text)

    def _sample(
        self, name: str, turn: PlannedTurn, intended: float, start: float, kind: Kind | None = None
    ) -> RequestSample:
        return RequestSample(
            name=name,
            kind=kind or ("stream" if name == "stream" else "chat"),
            intended_start=intended,
            start=start,
            ok=False,
            status=0,
            e2e_s=0.0,
            session=turn.session,
            turn=turn.turn,
            process=self._process_index,
        )

    def _send_json(self, request: HttpCall, sample: RequestSample, origin: float) -> Reply:
        with self.client.request(
            request.method,
            request.path,
            data=request.body,  # type: ignore[arg-type]  # bytes are sent as they are
            headers=dict(request.headers),
            name=request.name,
            catch_response=True,
        ) as response:
            sample.status = int(response.status_code or 0)
            if 200 <= sample.status < 300:
                reply = self.replay.adapter.read_body(response.content or b"")
            elif sample.status:
                reply = Reply(error=http_error_text(sample.status, response.content or b""))
            else:
                reply = Reply(error=str(getattr(response, "error", "no response"))[:200])
            self._finish(response, sample, reply, origin)
        return reply

    def _send_stream(self, request: HttpCall, sample: RequestSample, origin: float) -> Reply:
        reader = self.replay.adapter.stream_reader()
        failure: str | None = None
        with self.client.request(
            request.method,
            request.path,
            data=request.body,  # type: ignore[arg-type]  # bytes are sent as they are
            headers=dict(request.headers),
            name=request.name,
            stream=True,
            catch_response=True,
        ) as response:
            sample.status = int(response.status_code or 0)
            raw = getattr(response, "_response", None)
            if 200 <= sample.status < 300 and raw is not None:
                try:
                    while line := raw.readline(b"\n"):
                        reader.feed(line, time.time())
                except Exception as exc:  # a broken connection mid-stream is a failed request
                    failure = f"stream broken: {type(exc).__name__}: {exc}"[:200]
            elif sample.status:
                failure = http_error_text(sample.status, response.content or b"")
            else:
                failure = str(getattr(response, "error", "no response"))[:200]
            reply = reader.close(time.time())
            if failure is not None:
                reply.error = failure
            self._finish(response, sample, reply, origin)
        return reply

    def _send_websocket(
        self, request: HttpCall, sample: RequestSample, origin: float, session_id: str, last: bool
    ) -> Reply:
        reader = self.replay.adapter.stream_reader()
        if not isinstance(reader, FrameReader):
            raise TypeError(f"{type(reader).__name__} cannot read WebSocket frames (it has no `ended`)")
        outcome = self._ws().turn(session_id, request, reader, last=last)
        reply = reader.close(time.time())
        if outcome.failure is not None:
            reply.error = outcome.failure
        sample.status = outcome.status
        _fill(sample, reply, origin, time.time())
        self.environment.events.request.fire(
            request_type="WS",
            name=sample.name,
            response_time=sample.e2e_s * 1000.0,
            response_length=len(reply.text),
            exception=None if sample.ok else RuntimeError(sample.error or f"status {sample.status}"),
            context={SAMPLE_CONTEXT_KEY: sample},
        )
        return reply

    def _finish(self, response: Any, sample: RequestSample, reply: Reply, origin: float) -> None:
        _fill(sample, reply, origin, time.time())
        self._report(response, sample)

    def _report(self, response: Any, sample: RequestSample) -> None:
        meta = response.request_meta
        meta["context"][SAMPLE_CONTEXT_KEY] = sample
        meta["response_time"] = sample.e2e_s * 1000.0
        if sample.ok:
            response.success()
        else:
            response.failure(sample.error or f"HTTP {sample.status}")


def _fill(sample: RequestSample, reply: Reply, origin: float, end: float) -> None:
    """The sample's figures from what the adapter read; latencies count from `origin`."""
    sample.e2e_s = end - origin
    sample.output_tokens = reply.output_tokens
    sample.input_tokens = reply.input_tokens
    sample.error = reply.error
    sample.ok = reply.error is None
    sample.role_version = reply.role_version
    sample.trace_id = reply.trace_id
    if sample.kind == "stream":
        sample.itl_s = reply.inter_token_latencies()
        sample.all_at_once = reply.arrived_all_at_once()
        if reply.first_token_at is not None:
            sample.ttft_s = reply.first_token_at - origin
            if sample.output_tokens > 1:
                sample.tpot_s = (end - reply.first_token_at) / (sample.output_tokens - 1)
