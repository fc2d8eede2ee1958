"""WebSocket chat: `GET /v1/ws` and `/role/{name}`, several turns on one connection.

Each turn goes through the same `ChatService.prepare` / `stream` as an SSE reply,
so spans, the GenAI histograms and capture see it exactly as they see HTTP; the
telemetry middleware counts it under route `ws` through the `TurnRecorder` it
leaves in the connection's scope. One turn runs at a time: a frame that arrives
while a turn streams is answered with an `error` frame (`turn_in_progress`) and
dropped, never queued, so a client cannot pile up work or memory.

The connection ends with a close code that says why: 1000 idle, 1001 shutting
down (after a terminal frame for the turn in flight), 1009 frame too large,
1013 the client reads too slowly for its send queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from fastapi import APIRouter, WebSocket
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse

from rolescope.service.admission import REASON_OVERLOAD
from rolescope.service.auth import owner_from_scope
from rolescope.service.chat import ChatCommand, DoneEvent, ErrorEvent, StreamEvent, TokenEvent
from rolescope.service.context import ServiceContext
from rolescope.service.errors import ServiceError, error_body
from rolescope.service.shutdown import SHUTDOWN_CODE, SHUTDOWN_MESSAGE, drain_aware
from rolescope.service.ws_frames import (
    CLOSE_GOING_AWAY,
    CLOSE_NORMAL,
    CLOSE_TOO_BIG,
    CLOSE_TRY_AGAIN_LATER,
    SUBPROTOCOL,
    TURN_IN_PROGRESS,
    TURN_RECORDER_STATE_KEY,
    FrameError,
    TurnRecorder,
    error_frame,
    final_frame,
    header,
    offered_subprotocols,
    origin_allowed,
    parse_turn,
    token_frame,
)
from rolescope.service.ws_hub import OpenWebSockets, SendQueue

logger = logging.getLogger("rolescope.service")
router = APIRouter()
tracer = trace.get_tracer("rolescope")

# How long a close (or the last frames before it) may wait for a client that does not read.
CLOSE_WAIT_S = 5.0


class _Close(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


class ShuttingDown(ServiceError):
    status, code = 503, SHUTDOWN_CODE


def _context(connection: HTTPConnection) -> ServiceContext:
    context = connection.app.state.components
    if not isinstance(context, ServiceContext):
        raise TypeError(f"app.state.components is a {type(context).__name__}, not a ServiceContext")
    return context


def _farewell() -> StreamEvent:
    return ErrorEvent(ShuttingDown(SHUTDOWN_MESSAGE))


async def _deny(websocket: WebSocket, status: int, code: str, message: str) -> None:
    """Refuse the upgrade with an HTTP answer (the denial-response extension), else a bare 403."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(JSONResponse(error_body(code, message), status_code=status))
    else:
        await websocket.close(1008, message[:120])


@router.websocket("/v1/ws")
async def chat_socket(websocket: WebSocket) -> None:
    """Chat over one WebSocket; the role comes from each frame (`role`) or is the default role."""
    await _serve(websocket, None)


@router.websocket("/role/{name}")
async def role_socket(websocket: WebSocket, name: str) -> None:
    """Chat with the role named in the path (a frame's `role` still wins, as a body's does over `?role=`)."""
    await _serve(websocket, name)


async def _serve(websocket: WebSocket, path_role: str | None) -> None:
    context = _context(websocket)
    hub = context.websockets
    scope = websocket.scope
    headers = scope.get("headers", [])
    if context.drain.draining:
        await _deny(websocket, 503, "shutting_down", "the service is shutting down; connect again")
        return
    origin = header(headers, b"origin")
    if not origin_allowed(origin, header(headers, b"host"), hub.policy.allowed_origins):
        await _deny(websocket, 403, "forbidden", f"origin {origin!r} is not allowed (ws_allowed_origins)")
        return
    if path_role is not None:
        try:
            context.chat_service.role(path_role)
        except ServiceError as exc:
            await _deny(websocket, exc.status, exc.code, exc.message)
            return
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered_subprotocols(headers) else None)
    hub.opened()
    try:
        await ChatConnection(websocket, context, hub, path_role).run()
    finally:
        hub.closed()


class ChatConnection:
    """One accepted socket: reads frames, runs one turn at a time, writes through a bounded queue."""

    def __init__(
        self, websocket: WebSocket, context: ServiceContext, hub: OpenWebSockets, path_role: str | None
    ) -> None:
        self.websocket = websocket
        self.context = context
        self.hub = hub
        self.policy = hub.policy
        self.path_role = path_role
        self.queue = SendQueue(websocket.send_text, self.policy.send_queue_chars)
        self.going_away = asyncio.Event()
        state = websocket.scope.get("state") or {}
        recorder = state.get(TURN_RECORDER_STATE_KEY)
        self.record: TurnRecorder | None = recorder if callable(recorder) else None
        self.owner = owner_from_scope(websocket.scope)
        self.client_id = header(websocket.scope.get("headers", []), b"x-client-id")
        # The upgrade's headers pin a version (`X-Role-Version`) and feed release rules, as on HTTP.
        self.headers = websocket.headers

    async def run(self) -> None:
        writer = asyncio.create_task(self.queue.run())
        unsubscribe = self.context.drain.subscribe(self.going_away.set)
        receiving: asyncio.Task[Any] | None = None
        turn: asyncio.Task[None] | None = None
        overflow = asyncio.create_task(self.queue.overflowed.wait())
        going_away = asyncio.create_task(self.going_away.wait())
        try:
            while True:
                if receiving is None:
                    receiving = asyncio.create_task(self.websocket.receive())
                waiting: set[asyncio.Future[Any]] = {receiving, writer, overflow}
                if turn is not None:
                    waiting.add(turn)
                elif not self.going_away.is_set():
                    waiting.add(going_away)
                timeout = None if turn is not None or self.going_away.is_set() else self.policy.idle_timeout_s
                done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
                if writer in done:
                    return  # the client left while a frame was on its way
                if overflow in done:
                    reason = "client reads too slowly; send queue full"
                    await self._close(CLOSE_TRY_AGAIN_LATER, reason, flush=False)
                    return
                if not done:
                    await self._close(CLOSE_NORMAL, f"idle for {self.policy.idle_timeout_s:g} s")
                    return
                if turn is not None and turn in done:
                    turn = None
                if self.going_away.is_set() and turn is None:
                    # The turn in flight (if any) has sent its terminal frame through drain_aware.
                    await self._close(CLOSE_GOING_AWAY, "the service is shutting down")
                    return
                if receiving in done:
                    message = receiving.result()
                    receiving = None
                    if message["type"] == "websocket.disconnect":
                        return
                    try:
                        started = self._frame(message, turn is not None)
                    except _Close as close:
                        await self._close(close.code, close.reason, flush=False)
                        return
                    if started is not None:
                        turn = started
        finally:
            unsubscribe()
            for task in (receiving, turn, overflow, going_away, writer):
                if task is not None and not task.done():
                    task.cancel()
            for task in (turn, writer):
                if task is not None:
                    with contextlib.suppress(BaseException):
                        await task

    def _frame(self, message: dict[str, Any], busy: bool) -> asyncio.Task[None] | None:
        """A client frame: a new turn, or an error frame (the connection stays open)."""
        text = message.get("text")
        if text is None:
            self._refuse(FrameError(400, "bad_request", "send each message as a JSON text frame"))
            return None
        if len(text.encode("utf-8")) > self.policy.max_frame_bytes:
            # The server's own ws_max_size closes such frames first; this is for servers set otherwise.
            raise _Close(CLOSE_TOO_BIG, f"frame larger than {self.policy.max_frame_bytes} bytes")
        if busy:
            busy_message = "a reply is still streaming; send the next message after its final frame"
            self._refuse(FrameError(409, TURN_IN_PROGRESS, busy_message))
            return None
        parsed = parse_turn(text)
        if isinstance(parsed, FrameError):
            self._refuse(parsed)
            return None
        command = ChatCommand(
            message=parsed.message,
            role=parsed.role or self.path_role,
            session_id=parsed.session_id,
            owner=self.owner,
            client_id=self.client_id,
            stream=True,
            idempotency_key=parsed.idempotency_key,
            headers=self.headers,
        )
        return asyncio.create_task(self._turn(command))

    def _refuse(self, error: FrameError) -> None:
        """A frame that starts no turn still counts, as a refused HTTP request does."""
        self.queue.put(error_frame(error.status, error.code, error.message))
        if self.record is not None:
            self.record(None, error.status, 0.0)

    async def _turn(self, command: ChatCommand) -> None:
        service = self.context.chat_service
        started = time.perf_counter()
        role: str | None = None
        status = 499  # the client left before the terminal frame
        admission = self.hub.admission
        if admission is not None and not admission.try_acquire():
            status = 503
            overloaded = f"the service is at its limit of {admission.limit} chats in flight; retry in 1 s"
            self.queue.put(error_frame(status, "overloaded", overloaded))
            if self.hub.on_reject is not None:
                with contextlib.suppress(Exception):
                    self.hub.on_reject(REASON_OVERLOAD)
            if self.record is not None:
                self.record(None, status, time.perf_counter() - started)
            return
        # One SERVER span per turn, current for the turn's task, so its chat span is a child of it
        # as on HTTP; the connection itself gets none (it may stay open for hours).
        route = getattr(self.websocket.scope.get("route"), "path", None) or self.websocket.scope["path"]
        span = tracer.start_span(
            f"WS {route}",
            kind=SpanKind.SERVER,
            attributes={"http.route": route, "url.path": self.websocket.scope["path"],
                        "network.protocol.name": "websocket"},
        )
        span_token = otel_context.attach(trace.set_span_in_context(span))
        try:
            prepared = await service.prepare(command, span)
            role = prepared.role.name
            async for event in drain_aware(service.stream(prepared), self.context.drain, _farewell):
                if isinstance(event, TokenEvent):
                    self.queue.put(token_frame(event.text, event.index))
                elif isinstance(event, DoneEvent):
                    status = 200
                    self.queue.put(final_frame(event.reply.as_dict()))
                elif isinstance(event, ErrorEvent):
                    status = event.error.status
                    self.queue.put(error_frame(status, event.error.code, event.error.message))
        except ServiceError as exc:
            status = exc.status
            self.queue.put(error_frame(exc.status, exc.code, exc.message))
        except Exception:
            logger.exception("WebSocket turn failed")
            status = 500
            failed = "the service failed to answer; see the service log"
            self.queue.put(error_frame(500, "internal_error", failed))
        finally:
            span.set_attribute("http.response.status_code", status)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
            otel_context.detach(span_token)
            span.end()
            if admission is not None:
                admission.release()
            if self.record is not None:
                self.record(role, status, time.perf_counter() - started)

    async def _close(self, code: int, reason: str, *, flush: bool = True) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(CLOSE_WAIT_S):
                if flush:
                    await self.queue.drained()
                await self.websocket.close(code, reason)
