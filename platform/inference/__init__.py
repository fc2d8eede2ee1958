"""The inference layer: one contract, a deterministic simulator and an OpenAI-compatible HTTP backend.

It never touches storage, HTTP routes or the business layer.
"""

from rolescope.inference.base import (
    ChatMessage,
    InferenceBackend,
    InferenceError,
    InferenceInput,
    InferenceResult,
    InferenceTimeoutError,
    TokenChunk,
    Usage,
)

__all__ = [
    "ChatMessage",
    "InferenceBackend",
    "InferenceError",
    "InferenceInput",
    "InferenceResult",
    "InferenceTimeoutError",
    "TokenChunk",
    "Usage",
]
