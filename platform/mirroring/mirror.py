"""The mirror: a `ChatObserver` that sends a sampled share of finished exchanges to a candidate.

The primary's answer has already gone (or is going) to the client when
`exchange_completed` runs; the mirror only schedules a background task, so the
client gets the primary's answer unchanged and at the primary's speed. Each
task runs under the policy's timeout; past `max_concurrency` running mirrors of
one role version, more are shed (not sent) and counted. Failures are counted
and logged at debug level, never raised. The candidate is another loaded
version (answered in-process through the chat service, touching no session) or
another service's `POST /v1/chat` (in a session of its own there). With a pairs
file, each mirrored exchange is written as a redacted pair for `rolescope diff`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from rolescope.capture.sink import CaptureSink
from rolescope.exporters import names
from rolescope.inference.base import InferenceError, InferenceTimeoutError
from rolescope.loadtests.redaction import Redactor
from rolescope.mirror_policy import MirrorPolicy
from rolescope.mirroring.http_client import MirrorHttpClient, MirrorTransportError
from rolescope.mirroring.pairs import Answer, MirrorPair, dump_pair
from rolescope.service.chat import ChatService
from rolescope.service.errors import ServiceError
from rolescope.service.observer import ExchangeSummary, NullObserver
from rolescope.service.role_catalog import RoleCatalog
from rolescope.service.shadow import answer_without_session

logger = logging.getLogger("rolescope.mirror")

CountMirror = Callable[[str, float | None], None]  # (outcome, seconds or None when shed)


@dataclass(frozen=True, slots=True)
class _Mirrored:
    summary: ExchangeSummary
    target: str
    outcome: str
    candidate: Answer


class Mirror(NullObserver):
    """Of the observer hooks only `exchange_completed` does anything."""

    def __init__(
        self,
        service: Callable[[], ChatService],
        count: CountMirror,
        *,
        pairs: Callable[[Callable[[object], str]], CaptureSink] | None = None,
        redactor: Redactor | None = None,
        sample: Callable[[], float] = random.random,
    ) -> None:
        self._service = service  # the chat service is built after its observers
        self._count = count
        self._sample = sample
        self._redactor = redactor
        self.sink = pairs(self._render) if pairs is not None else None
        self._running: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._policies: tuple[RoleCatalog | None, dict[str, dict[str, MirrorPolicy]]] = (None, {})
        self._clients: dict[str, MirrorHttpClient] = {}  # by target URL, each with its idle connections
        self._tls: ssl.SSLContext | None = None
        self._closed = False

    def start(self) -> None:
        # Made now, not on the first https mirror: building a TLS context blocks the loop for a while.
        self._tls = ssl.create_default_context()
        if self.sink is not None:
            self.sink.start()

    def _policy(self, role: str, version: str) -> MirrorPolicy | None:
        # Looked up without building anything: this runs after every exchange, mirrored or not.
        catalog = self._service().catalog
        seen, policies = self._policies
        if seen is not catalog:  # start-up or a reload: the mirror sections are read afresh
            policies = _mirror_sections(catalog)
            self._policies = (catalog, policies)
        versions = policies.get(role)
        return versions.get(version) if versions is not None else None

    def exchange_completed(self, summary: ExchangeSummary) -> None:
        if self._closed or summary.role_version is None:
            return
        policy = self._policy(summary.role, summary.role_version)
        if policy is None or policy.share <= 0 or self._sample() >= policy.share:
            return
        reference = f"{summary.role}@{summary.role_version}"
        if self._running.get(reference, 0) >= policy.max_concurrency:
            self._count(names.MIRROR_SHED, None)
            return
        self._running[reference] = self._running.get(reference, 0) + 1
        task = asyncio.get_running_loop().create_task(self._mirror(reference, policy, summary))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _mirror(self, reference: str, policy: MirrorPolicy, summary: ExchangeSummary) -> None:
        started = time.perf_counter()
        outcome, candidate = names.MIRROR_FAILED, Answer(None, 0, 0.0, None, 0, None, None)
        try:
            async with asyncio.timeout(policy.timeout_ms / 1000):
                candidate = await (self._over_http if policy.is_url else self._in_process)(policy, summary)
            outcome = names.MIRROR_OK if candidate.status == 200 else names.MIRROR_FAILED
        except (TimeoutError, InferenceTimeoutError):
            outcome = names.MIRROR_TIMEOUT
            candidate = Answer(None, 504, time.perf_counter() - started, None, 0, None, None)
        except (InferenceError, ServiceError, MirrorTransportError, ValueError) as exc:
            logger.debug("mirror to %s failed: %s", policy.to, exc)
            status = getattr(exc, "status", 0) if isinstance(exc, ServiceError) else 0
            candidate = Answer(None, status or 0, time.perf_counter() - started, None, 0, None, None)
        finally:
            self._running[reference] -= 1
        self._count(outcome, candidate.latency_s)
        if self.sink is not None:
            self.sink.offer(_Mirrored(summary, policy.to, outcome, candidate))

    async def _in_process(self, policy: MirrorPolicy, summary: ExchangeSummary) -> Answer:
        started = time.perf_counter()
        try:
            role, result = await answer_without_session(
                self._service(), policy.to, summary.message, summary.history
            )
        except InferenceTimeoutError:
            raise
        except InferenceError:
            return Answer(None, 500, time.perf_counter() - started, None, 0, None, None)
        return Answer(
            role.version, 200, time.perf_counter() - started, result.ttft_s,
            result.usage.output_tokens, result.confidence, result.text,
        )

    async def _over_http(self, policy: MirrorPolicy, summary: ExchangeSummary) -> Answer:
        if self._tls is None:
            raise ValueError("the mirror is not started")
        client = self._clients.get(policy.to)
        if client is None:
            client = self._clients[policy.to] = MirrorHttpClient(policy.to, tls=self._tls)
        started = time.perf_counter()
        # Not streamed: the whole reply in one read is all a diff needs, and cheaper to take.
        request = json.dumps({"message": summary.message, "role": summary.role}).encode()
        reply = await client.post_json("/v1/chat", request)
        latency = time.perf_counter() - started
        if reply.status != 200:
            return Answer(None, reply.status, latency, None, 0, None, None)
        if self.sink is None:  # nothing keeps the candidate's text: leave the reply unparsed
            return Answer(None, 200, latency, None, 0, None, None)
        body = json.loads(reply.body)
        return Answer(
            body.get("role_version") or None, 200, latency, None,
            int(body.get("usage", {}).get("output_tokens", 0)), body.get("confidence_score"),
            body.get("content"),
        )

    def _render(self, item: object) -> str:
        assert isinstance(item, _Mirrored) and self._redactor is not None
        summary, redactor = item.summary, self._redactor
        session = redactor.pseudonym(summary.session_id, "s")

        def redacted(text: str | None) -> str | None:
            return None if text is None else redactor.redact_message(session, text)

        primary = Answer(
            summary.role_version, summary.status, round(summary.latency_s, 6), summary.ttft_s,
            summary.output_tokens, summary.confidence, redacted(summary.content),
        )
        candidate = item.candidate
        return dump_pair(
            MirrorPair(
                arrival=round(summary.arrival_unix, 6),
                session=session,
                role=summary.role,
                message=redactor.redact_message(session, summary.message),
                target=item.target,
                outcome=item.outcome,
                primary=primary,
                candidate=Answer(
                    candidate.version, candidate.status, round(candidate.latency_s, 6), candidate.ttft_s,
                    candidate.output_tokens, candidate.confidence, redacted(candidate.content),
                ),
            )
        )

    async def aclose(self) -> None:
        """Cancel the mirrors still running (shutdown), close the HTTP client, write what is queued."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()
        if self.sink is not None:
            await asyncio.to_thread(self.sink.close)


def _mirror_sections(catalog: RoleCatalog) -> dict[str, dict[str, MirrorPolicy]]:
    """name → version → mirror policy, for the role versions that have one."""
    sections: dict[str, dict[str, MirrorPolicy]] = {}
    for role in catalog.registry.all_versions():
        if role.mirror is not None:
            sections.setdefault(role.name, {})[role.version] = role.mirror
    return sections
