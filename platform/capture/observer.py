"""The capture `ChatObserver`: samples whole sessions and hands their exchanges to the sink.

Sampling is decided per session from its keyed hash, so a session is either
captured entirely or not at all, and the same session is sampled the same way
by every replica that shares the key.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from pathlib import Path

from rolescope.capture.sink import CaptureSink, DropCounter
from rolescope.loadtests.redaction import Redactor
from rolescope.loadtests.traffic_format import OriginalAnswer, TrafficRecord, dump_record
from rolescope.service.observer import ExchangeSummary, NullObserver

MAX_TRACKED_SESSIONS = 100_000


class CaptureObserver(NullObserver):
    """A `ChatObserver` of which only `exchange_completed` does anything."""

    def __init__(
        self,
        path: Path,
        sample: float,
        key: bytes,
        count_dropped: DropCounter,
        max_queue: int = 10_000,
    ) -> None:
        if not 0 <= sample <= 1:
            raise ValueError(f"capture sample must be within [0, 1], got {sample}")
        self._sample = sample
        self._key = key
        self._redactor = Redactor(key)
        # Turn numbers are assigned on the writer thread, in the order exchanges completed.
        self._turns: OrderedDict[str, int] = OrderedDict()
        self.sink = CaptureSink(path, self._render, count_dropped, max_queue)

    def start(self) -> None:
        self.sink.start()

    def close(self) -> None:
        self.sink.close()

    def sampled(self, session_id: str) -> bool:
        digest = hmac.new(self._key, b"sample:" + session_id.encode(), hashlib.sha256).digest()
        return int.from_bytes(digest[:8], "big") / 2**64 < self._sample

    def exchange_completed(self, summary: ExchangeSummary) -> None:
        if self._sample > 0 and self.sampled(summary.session_id):
            self.sink.offer(summary)

    def _next_turn(self, session: str) -> int:
        turn = self._turns.get(session, -1) + 1
        self._turns[session] = turn
        self._turns.move_to_end(session)
        if len(self._turns) > MAX_TRACKED_SESSIONS:
            self._turns.popitem(last=False)
        return turn

    def _render(self, item: object) -> str:
        assert isinstance(item, ExchangeSummary)
        redactor = self._redactor
        session = redactor.pseudonym(item.session_id, "s")
        record = TrafficRecord(
            arrival=round(item.arrival_unix, 6),
            session=session,
            client=redactor.pseudonym(item.client_id, "c") if item.client_id else None,
            turn=self._next_turn(session),
            role=item.role,
            message=redactor.redact_message(session, item.message),
            stream=item.stream,
            max_tokens=item.max_tokens,
            original=OriginalAnswer(
                status=item.status,
                latency_s=round(max(item.latency_s, 0.0), 6),
                output_tokens=max(item.output_tokens, 0),
                role_version=item.role_version,
            ),
        )
        return dump_record(record)
