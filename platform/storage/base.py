"""The contract every session store keeps (SQLite by default, Redis for replicas).

A store keeps, per session, who owns it (an API-key identity, or None when
authentication is off), which role it talks to, which version of that role
answers it (the one that answered its first turn), and its turns. An exchange (the
user's message and the assistant's answer) is written in one atomic step
together with its idempotency record, so an acknowledged message is never half
stored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable


class StoreError(RuntimeError):
    """A storage failure the business layer reports as a 503, never a trace."""


class IdempotencyKeyTaken(StoreError):
    """The exchange carried an idempotency record whose key is already stored; nothing was written.

    Raised when two processes race with one `Idempotency-Key`: the in-process
    claim cannot see another worker's request, the store's record can.
    """


class SessionOwnedElsewhere(StoreError):
    """The session already exists under another owner; nothing was written.

    Raised when two callers pick the same new session id at the same moment:
    both saw no session, only the first write may create it.
    """


@dataclass(frozen=True, slots=True)
class Turn:
    speaker: Literal["user", "assistant"]
    content: str
    timestamp: float


@dataclass(frozen=True, slots=True)
class MemoryPolicyView:
    """What a store needs of a role's memory_policy (kept free of the role model)."""

    max_turns: int
    ttl_seconds: float | None


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """The stored answer to a request sent with an `Idempotency-Key` header."""

    owner: str | None
    key: str
    body_digest: str
    response_json: str
    created_at: float


@dataclass(frozen=True, slots=True)
class ExchangeRecord:
    """The turns one request adds. A session opened without a message starts with the role's
    greeting alone: an assistant turn and no user turn."""

    session_id: str
    role_name: str
    owner: str | None
    user_turn: Turn | None
    assistant_turn: Turn
    idempotency: IdempotencyRecord | None = None
    # The role version to remember for the session from now on; None keeps the stored one.
    role_version: str | None = None

    @property
    def turns(self) -> tuple[Turn, ...]:
        return (self.assistant_turn,) if self.user_turn is None else (self.user_turn, self.assistant_turn)

    @property
    def started_at(self) -> float:
        """When the exchange began: the user's message, or the greeting when there is none."""
        return self.turns[0].timestamp


@dataclass(slots=True)
class SessionRecord:
    session_id: str
    role_name: str
    owner: str | None
    created_at: float
    updated_at: float
    turns: list[Turn] = field(default_factory=list)
    # None for a session stored before versions were recorded.
    role_version: str | None = None


@runtime_checkable
class SessionStore(Protocol):
    """Session memory. Every method is safe to call concurrently from the event loop."""

    backend_name: str  # shown in the start-up banner: "SQLite", "Redis"

    @property
    def location(self) -> str:
        """Where the data lives, for the banner (a file path or a redacted URL)."""
        ...

    async def open(self) -> None:
        """Create schema / connect. Idempotent."""
        ...

    async def close(self) -> None: ...

    async def ping(self) -> bool:
        """True when the store can serve requests (used by /readyz)."""
        ...

    async def get_session(self, session_id: str, policy: MemoryPolicyView) -> SessionRecord | None:
        """The session with its turns after the policy (turns kept, expiry); None if unknown or expired."""
        ...

    async def save_exchange(self, exchange: ExchangeRecord, policy: MemoryPolicyView) -> None:
        """Atomically create the session if new, append both turns, trim to the policy, and store
        the idempotency record if one is given. Raises StoreError on failure."""
        ...

    async def find_idempotent(self, owner: str | None, key: str) -> IdempotencyRecord | None: ...
