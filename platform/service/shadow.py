"""An answer from a role version that touches no session: what a shadow mirror asks a candidate.

The candidate sees the message and the history the primary's prompt carried, so
the two answers are comparable; nothing is stored and no observer hears of it,
so the user's session and the service's own figures stay the primary's alone.
"""

from __future__ import annotations

from rolescope.inference.base import ChatMessage, InferenceResult
from rolescope.roles import Role
from rolescope.service.chat import ChatService


async def answer_without_session(
    service: ChatService, reference: str, message: str, history: tuple[ChatMessage, ...]
) -> tuple[Role, InferenceResult]:
    """Resolve `reference` (e.g. `sherlock@1.3`) and run its inference; raises `UnknownRole` and
    the backend's `InferenceError`s."""
    role = service.role(reference)
    inputs = service.inference_input(role, history, message, max_tokens=service.limits.max_output_tokens)
    result = await service.backend(role).infer(role.inference.model, inputs, role.inference.timeout_ms)
    return role, result
