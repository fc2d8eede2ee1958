"""The conversations a load process is carrying for stateless targets, and their `messages` form.

A stateless target (an OpenAI-compatible server, a template with `{history}`)
remembers nothing, so a real client resends the conversation with every turn:
its persona, then every earlier user turn with the reply the target really
gave. A turn that failed got no reply and is left out, as a client would have
nothing to show for it. Pure and single-threaded (one per load process; gevent
greenlets do not preempt).
"""

from __future__ import annotations

from pathlib import Path

from rolescope.loadtests.targets.base import Exchange, TurnCall


class ConversationBook:
    """Exchanges per session id, in turn order; a session's turn 0 starts it afresh."""

    __slots__ = ("_sessions", "limit")

    def __init__(self, limit: int | None = None) -> None:
        self.limit = limit  # how many earlier exchanges a call carries (None: all)
        self._sessions: dict[str, dict[int, Exchange]] = {}

    def history(self, session_id: str, turn: int) -> tuple[Exchange, ...]:
        """The exchanges before `turn` that have an answer, oldest first, at most `limit` of them."""
        if turn == 0:
            self._sessions.pop(session_id, None)
            return ()
        known = self._sessions.get(session_id, {})
        earlier = [known[index] for index in sorted(known) if index < turn]
        if self.limit is not None:
            earlier = earlier[len(earlier) - self.limit :] if self.limit else []
        return tuple(earlier)

    def record(self, session_id: str, turn: int, message: str, reply: str) -> None:
        self._sessions.setdefault(session_id, {})[turn] = Exchange(message, reply)

    def forget(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._sessions)


def chat_messages(call: TurnCall) -> list[dict[str, str]]:
    """The call as OpenAI-style `messages`: persona as system message, history, then this turn."""
    messages: list[dict[str, str]] = []
    if call.persona:
        messages.append({"role": "system", "content": call.persona})
    for exchange in call.history:
        messages.append({"role": "user", "content": exchange.message})
        messages.append({"role": "assistant", "content": exchange.reply})
    messages.append({"role": "user", "content": call.message})
    return messages


def load_personas(path: Path | None) -> dict[str, str]:
    """System prompts by role name from a role file or folder (none when `path` is None)."""
    if path is None:
        return {}
    from rolescope.roles import load_roles

    return {name: role.system_prompt() for name, role in load_roles(path).items()}
