"""Storage layer: session memory behind the `SessionStore` interface.

Nothing here imports the business layer, the inference layer or FastAPI.
"""

from rolescope.storage.base import (
    ExchangeRecord,
    IdempotencyKeyTaken,
    IdempotencyRecord,
    MemoryPolicyView,
    SessionOwnedElsewhere,
    SessionRecord,
    SessionStore,
    StoreError,
    Turn,
)

__all__ = [
    "ExchangeRecord",
    "IdempotencyKeyTaken",
    "IdempotencyRecord",
    "MemoryPolicyView",
    "SessionOwnedElsewhere",
    "SessionRecord",
    "SessionStore",
    "StoreError",
    "Turn",
]
