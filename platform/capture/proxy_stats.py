"""The capturing proxy's counters and the progress line it prints."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

logger = logging.getLogger("rolescope.capture")


@dataclass(slots=True)
class ProxyStats:
    """Counts kept on the event loop, except `written` and `dropped`, which the sink owns."""

    requests: int = 0  # every request proxied, chat or not
    exchanges: int = 0  # chat exchanges seen (the candidates for capture)
    sampled: int = 0  # exchanges whose session was sampled and that were handed to the sink
    upstream_unreachable: int = 0  # answered 502 by the proxy
    upstream_timeouts: int = 0  # answered 504 by the proxy
    upstream_broken: int = 0  # the upstream broke off a reply already under way
    client_gone: int = 0  # the client left before the reply ended
    drop_reasons: dict[str, int] = field(default_factory=dict)

    def count_drop(self, signal: str, reason: str, amount: int) -> None:
        """The sink's drop counter: a slow or full sink drops records; said once per reason."""
        if reason not in self.drop_reasons:
            logger.warning(
                "capture is dropping records (%s): the writer cannot keep up or cannot write; "
                "clients are not delayed, the count is in the progress line",
                reason,
            )
        self.drop_reasons[reason] = self.drop_reasons.get(reason, 0) + amount

    def line(self, written: int, dropped: int) -> str:
        errors = self.upstream_unreachable + self.upstream_timeouts
        return (
            f"{self.requests} requests · {self.exchanges} chat exchanges · {self.sampled} sampled · "
            f"{written} written · {dropped} dropped · {errors} upstream errors (502/504) · "
            f"{self.upstream_broken} broken streams · {self.client_gone} clients gone"
        )


class Progress:
    """Says the counts every `every` chat exchanges (0: only at the end)."""

    def __init__(
        self, stats: ProxyStats, counts: Callable[[], tuple[int, int]], say: Callable[[str], None], every: int
    ) -> None:
        self._stats = stats
        self._counts = counts  # (written, dropped), read from the sink
        self._say = say
        self._every = every

    def exchange_done(self) -> None:
        if self._every > 0 and self._stats.exchanges % self._every == 0:
            self._say(self._stats.line(*self._counts()))

    def final(self) -> None:
        self._say(self._stats.line(*self._counts()))
