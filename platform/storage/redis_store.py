"""Session memory in Redis, for several service replicas sharing one store.

Each session lives under one hash tag (`rolescope:{<id>}:…`) as a hash of
metadata plus a list of turns. An exchange is written by one Lua script, which
Redis runs atomically: the session is created if new, both turns are appended,
the list is trimmed to the role's `memory_policy`, the expiry is refreshed and
the idempotency record is stored — or, if that record already exists, nothing
is written at all, so two concurrent replays of one `Idempotency-Key` can never
store two turns.

Expiry is enforced twice: Redis drops the keys `ttl_seconds` after the last
exchange, and reads re-check `updated_at` against the policy they are given,
so a role whose policy was shortened does not serve stale memory.

A standalone Redis (or a Sentinel-managed primary) is expected: the
idempotency record and the session keys live in different hash slots, which a
Redis Cluster would refuse in one script.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit, urlunsplit

from rolescope.errors import ConfigError
from rolescope.storage.base import (
    ExchangeRecord,
    IdempotencyKeyTaken,
    IdempotencyRecord,
    MemoryPolicyView,
    SessionOwnedElsewhere,
    SessionRecord,
    StoreError,
    Turn,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

DEFAULT_KEY_PREFIX: Final = "rolescope"
# Long enough for any client retry window, short enough that abandoned keys go away.
DEFAULT_IDEMPOTENCY_TTL_S: Final = 24 * 3600.0

# KEYS: 1 session hash, 2 turns list, 3 idempotency record (may be unused)
# ARGV: 1 role, 2 owner ("" for none), 3 updated_at, 4 user turn JSON ("" for none: a greeting),
#       5 assistant turn JSON, 6 max turns, 7 ttl ms (0 = never expires),
#       8 idempotency JSON ("" for none), 9 idempotency ttl ms, 10 created_at,
#       11 role version to remember ("" keeps the stored one)
_SAVE_EXCHANGE_LUA: Final = """
if ARGV[8] ~= '' and redis.call('EXISTS', KEYS[3]) == 1 then
  return 0
end
local owner = redis.call('HGET', KEYS[1], 'owner')
if owner and owner ~= ARGV[2] then
  return -1
end
redis.call('HSETNX', KEYS[1], 'created_at', ARGV[10])
redis.call('HSETNX', KEYS[1], 'role', ARGV[1])
redis.call('HSETNX', KEYS[1], 'owner', ARGV[2])
redis.call('HSET', KEYS[1], 'updated_at', ARGV[3])
if ARGV[11] ~= '' then
  redis.call('HSET', KEYS[1], 'role_version', ARGV[11])
end
if ARGV[4] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[4], ARGV[5])
else
  redis.call('RPUSH', KEYS[2], ARGV[5])
end
local keep = tonumber(ARGV[6])
if keep > 0 then
  redis.call('LTRIM', KEYS[2], -keep, -1)
else
  redis.call('DEL', KEYS[2])
end
local ttl = tonumber(ARGV[7])
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
else
  redis.call('PERSIST', KEYS[1])
  redis.call('PERSIST', KEYS[2])
end
if ARGV[8] ~= '' then
  redis.call('SET', KEYS[3], ARGV[8], 'PX', tonumber(ARGV[9]))
end
return 1
"""


def redact_url(url: str) -> str:
    """The URL without its password, fit for a banner or a log line."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port is not None else ""
    netloc = f"{user}:***@{host}{port}" if user else f":***@{host}{port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _turn_json(turn: Turn) -> str:
    return json.dumps({"s": turn.speaker, "c": turn.content, "t": turn.timestamp}, separators=(",", ":"))


def _turn_from_json(raw: str) -> Turn:
    data = json.loads(raw)
    return Turn(speaker=data["s"], content=data["c"], timestamp=float(data["t"]))


def _owner_field(owner: str | None) -> str:
    return "" if owner is None else owner


class RedisSessionStore:
    """`SessionStore` over redis-py's asyncio client (one connection pool per store)."""

    backend_name = "Redis"

    def __init__(
        self,
        url: str,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        idempotency_ttl_s: float = DEFAULT_IDEMPOTENCY_TTL_S,
        socket_timeout_s: float = 2.0,
    ) -> None:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ConfigError(
                f"redis_url (ROLESCOPE_REDIS_URL) must start with redis://, rediss:// or unix://, "
                f"got {redact_url(url)!r}"
            )
        self._url = url
        self._prefix = key_prefix
        self._idempotency_ttl_ms = int(idempotency_ttl_s * 1000)
        self._socket_timeout_s = socket_timeout_s
        self._client: Redis | None = None
        self._save_script: AsyncScript | None = None

    @property
    def location(self) -> str:
        return redact_url(self._url)

    # keys ------------------------------------------------------------------
    def _session_key(self, session_id: str) -> str:
        return f"{self._prefix}:{{{session_id}}}:session"

    def _turns_key(self, session_id: str) -> str:
        return f"{self._prefix}:{{{session_id}}}:turns"

    def _idempotency_key(self, owner: str | None, key: str) -> str:
        # The owner is part of the key: one client can never see another's stored answer.
        return f"{self._prefix}:idem:{len(_owner_field(owner))}:{_owner_field(owner)}:{key}"

    # lifecycle -------------------------------------------------------------
    async def open(self) -> None:
        if self._client is not None:
            return
        from redis.asyncio import Redis

        self._client = Redis.from_url(
            self._url,
            decode_responses=True,
            socket_timeout=self._socket_timeout_s,
            socket_connect_timeout=self._socket_timeout_s,
        )
        self._save_script = self._client.register_script(_SAVE_EXCHANGE_LUA)

    async def close(self) -> None:
        client, self._client, self._save_script = self._client, None, None
        if client is not None:
            # aclose() is redis-py >= 5; the types-redis stubs predate it.
            await client.aclose()  # type: ignore[attr-defined]

    def _require_client(self) -> Redis:
        if self._client is None:
            raise StoreError("the Redis session store is not open; call open() first")
        return self._client

    async def ping(self) -> bool:
        from redis.exceptions import RedisError

        try:
            return bool(await self._require_client().ping())
        except (RedisError, OSError, StoreError):
            return False

    # reads -----------------------------------------------------------------
    async def get_session(self, session_id: str, policy: MemoryPolicyView) -> SessionRecord | None:
        from redis.exceptions import RedisError

        client = self._require_client()
        try:
            async with client.pipeline(transaction=True) as pipe:
                pipe.hgetall(self._session_key(session_id))
                # LRANGE from 0 when nothing is kept; the turns are dropped below.
                pipe.lrange(self._turns_key(session_id), -policy.max_turns if policy.max_turns > 0 else 0, -1)
                replies: list[Any] = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise StoreError(f"Redis read of a session failed: {exc}") from exc
        meta: dict[str, str] = replies[0]
        if not meta:
            return None
        updated_at = float(meta["updated_at"])
        if policy.ttl_seconds is not None and time.time() - updated_at > policy.ttl_seconds:
            return None
        turns = [_turn_from_json(raw) for raw in replies[1]] if policy.max_turns > 0 else []
        return SessionRecord(
            session_id=session_id,
            role_name=meta["role"],
            owner=meta["owner"] or None,
            created_at=float(meta["created_at"]),
            updated_at=updated_at,
            turns=turns,
            role_version=meta.get("role_version") or None,
        )

    async def find_idempotent(self, owner: str | None, key: str) -> IdempotencyRecord | None:
        from redis.exceptions import RedisError

        try:
            raw = await self._require_client().get(self._idempotency_key(owner, key))
        except (RedisError, OSError) as exc:
            raise StoreError(f"Redis read of an idempotency record failed: {exc}") from exc
        if raw is None:
            return None
        data = json.loads(raw)
        return IdempotencyRecord(
            owner=owner,
            key=key,
            body_digest=data["body_digest"],
            response_json=data["response_json"],
            created_at=float(data["created_at"]),
        )

    # writes ----------------------------------------------------------------
    async def save_exchange(self, exchange: ExchangeRecord, policy: MemoryPolicyView) -> None:
        from redis.exceptions import RedisError

        self._require_client()
        assert self._save_script is not None
        idem = exchange.idempotency
        idem_json = ""
        if idem is not None:
            idem_json = json.dumps(
                {
                    "body_digest": idem.body_digest,
                    "response_json": idem.response_json,
                    "created_at": idem.created_at,
                },
                separators=(",", ":"),
            )
        ttl_ms = 0 if policy.ttl_seconds is None else max(1, int(policy.ttl_seconds * 1000))
        keys = [
            self._session_key(exchange.session_id),
            self._turns_key(exchange.session_id),
            self._idempotency_key(idem.owner if idem else exchange.owner, idem.key if idem else ""),
        ]
        args: list[str | int | float] = [
            exchange.role_name,
            _owner_field(exchange.owner),
            repr(exchange.assistant_turn.timestamp),
            _turn_json(exchange.user_turn) if exchange.user_turn is not None else "",
            _turn_json(exchange.assistant_turn),
            max(0, policy.max_turns),
            ttl_ms,
            idem_json,
            self._idempotency_ttl_ms,
            repr(exchange.started_at),
            exchange.role_version or "",
        ]
        try:
            written = await self._save_script(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise StoreError(f"Redis write of an exchange failed: {exc}") from exc
        if written == -1:
            raise SessionOwnedElsewhere(
                f"session {exchange.session_id!r} belongs to another owner; the exchange was not written"
            )
        if written == 0:
            taken = idem.key if idem else ""
            raise IdempotencyKeyTaken(
                f"idempotency key {taken!r} is already stored; the exchange was not written"
            )
