"""`Idempotency-Key` on `POST /v1/chat`: a retried request stores one turn and gets the same answer.

The rules (the same ones payment APIs use):
- first request with a key: runs, and its answer is stored with the exchange in
  one atomic write (`ExchangeRecord.idempotency`), so there is never a stored
  turn without its record or the other way round;
- a later request with the same key and the same body: the stored answer, no
  new turn;
- the same key with a different body: 422 (the key was reused by mistake);
- the same key while the first request is still running: 409 with
  `Retry-After`; the client retries and then gets the stored answer.

Keys are scoped by owner (API-key identity), so two tenants can never see each
other's answers through a shared key. The in-flight set is per process; across
processes the store's unique (owner, key) record is what keeps one turn.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from rolescope.service.errors import ServiceError
from rolescope.storage.base import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
IN_PROGRESS_RETRY_AFTER_S = 1

FindRecord = Callable[[str | None, str], Awaitable[IdempotencyRecord | None]]


class IdempotencyError(ServiceError):
    """A request the idempotency rules refuse; answered with `status`, `code` and this message."""

    def __init__(self, status: int, code: str, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after_s)} if retry_after_s else None)
        self.status = status
        self.code = code
        self.retry_after_s = retry_after_s


def validate_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise IdempotencyError(
            422,
            "invalid_idempotency_key",
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters",
        )
    return key


def body_digest(payload: Mapping[str, Any]) -> str:
    """A digest of what the request asks for, independent of JSON key order and spacing."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _reused(key: str) -> IdempotencyError:
    return IdempotencyError(
        422,
        "idempotency_key_reused",
        f"{HEADER} {key!r} was already used with a different request body; use a new key",
    )


class IdempotencyGuard:
    """Tracks keys whose first request is still running in this process."""

    def __init__(self) -> None:
        self._running: dict[tuple[str | None, str], str] = {}

    @property
    def running(self) -> int:
        return len(self._running)

    async def begin(
        self, find: FindRecord, owner: str | None, key: str, digest: str
    ) -> IdempotencyRecord | None:
        """The stored record to replay, or None when this request should run.

        When None is returned the key is claimed and the caller must call `release`
        once the exchange is stored or has failed.
        """
        slot = (owner, validate_key(key))
        running_digest = self._running.get(slot)
        if running_digest is not None:
            if running_digest != digest:
                raise _reused(key)
            raise IdempotencyError(
                409,
                "idempotency_in_progress",
                f"a request with {HEADER} {key!r} is still running; retry shortly to get its answer",
                retry_after_s=IN_PROGRESS_RETRY_AFTER_S,
            )
        # Claim before the first await, so two concurrent requests cannot both pass the check.
        self._running[slot] = digest
        try:
            record = await find(owner, key)
        except BaseException:
            self.release(owner, key)
            raise
        if record is None:
            return None
        self.release(owner, key)
        if record.body_digest != digest:
            raise _reused(key)
        return record

    def release(self, owner: str | None, key: str) -> None:
        self._running.pop((owner, key), None)


def make_record(owner: str | None, key: str, digest: str, response: Mapping[str, Any]) -> IdempotencyRecord:
    """The record stored with the exchange; the replay returns `response` exactly."""
    return IdempotencyRecord(
        owner=owner,
        key=key,
        body_digest=digest,
        response_json=json.dumps(response, separators=(",", ":"), ensure_ascii=False),
        created_at=time.time(),
    )


class ChatIdempotency:
    """The chat layer's side of the rules: claim a key, build its record, release it."""

    def __init__(self, find: FindRecord) -> None:
        self.guard = IdempotencyGuard()
        self._find = find

    @staticmethod
    def digest(message: str, role: str | None, session_id: str | None) -> str:
        # The stream flag is left out on purpose: a streamed first answer may be replayed as JSON.
        return body_digest({"message": message, "role": role, "session_id": session_id})

    async def claim(
        self, owner: str | None, key: str | None, digest: str
    ) -> dict[str, Any] | None:
        """The stored response to replay, or None (the key, if any, is now claimed)."""
        if key is None:
            return None
        record = await self.guard.begin(self._find, owner, key, digest)
        if record is None:
            return None
        stored: dict[str, Any] = json.loads(record.response_json)
        return stored

    def record(
        self, owner: str | None, key: str | None, digest: str, response: Mapping[str, Any]
    ) -> IdempotencyRecord | None:
        return None if key is None else make_record(owner, key, digest, response)

    def release(self, owner: str | None, key: str | None) -> None:
        if key is not None:
            self.guard.release(owner, key)
