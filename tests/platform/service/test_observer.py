"""The observer hooks: written once in the protocol, no-ops in NullObserver, fanned out by the composite."""

from __future__ import annotations

import functools
import logging

import pytest
from prometheus_client import CollectorRegistry

from rolescope.exporters.metrics import ServiceMetrics
from rolescope.service.observer import (
    HOOKS,
    ChatObserver,
    CompositeObserver,
    ExchangeSummary,
    NullObserver,
)

SUMMARY = ExchangeSummary(
    arrival_unix=0.0, session_id="s", client_id=None, role="sherlock", message="hi", stream=False,
    status=200, latency_s=0.1, ttft_s=None, output_tokens=3,
)
# One call of every hook, with the arguments the chat service passes.
CALLS: dict[str, tuple[tuple[object, ...], dict[str, object]]] = {
    "first_token": (("sherlock", "sim", "simulator", 0.01, "ab" * 16), {"role_version": "1.2"}),
    "generation_done": (("sherlock", "sim", "simulator", 0.2, 0.01, 12, 30, None), {"role_version": "1.2"}),
    "inference_timeout": (("sherlock", "sim"), {"role_version": "1.2"}),
    "inference_error": (("sherlock", "sim"), {}),
    "store_operation": (("read", "sqlite", 0.001), {}),
    "exchange_completed": ((SUMMARY,), {}),
    "session_version_moved": (("sherlock", "1.3"), {"moved_from": "1.2"}),
}


class Recording:
    """Notes every hook call; its hooks are made from HOOKS, so it hears any hook the protocol gains."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, tuple[object, ...], dict[str, object]]] = []
        for hook in HOOKS:
            setattr(self, hook, functools.partial(self._note, hook))

    def _note(self, hook: str, *args: object, **keywords: object) -> None:
        self.seen.append((hook, args, keywords))


class Failing(NullObserver):
    def first_token(self, *args: object, **keywords: object) -> None:  # type: ignore[override]
        raise RuntimeError("broken exporter")


def test_the_hooks_are_read_off_the_protocol() -> None:
    assert set(HOOKS) == set(CALLS)
    # Every observer in the code base still satisfies the protocol as written.
    for observer in (NullObserver(), CompositeObserver(), ServiceMetrics(CollectorRegistry())):
        assert isinstance(observer, ChatObserver)


def test_null_observer_accepts_every_hook() -> None:
    null = NullObserver()
    for hook, (args, keywords) in CALLS.items():
        assert getattr(null, hook)(*args, **keywords) is None


def test_the_composite_passes_every_hook_on_as_given_in_order() -> None:
    first, second = Recording(), Recording()
    composite = CompositeObserver(first, second)  # type: ignore[arg-type]
    for hook, (args, keywords) in CALLS.items():
        getattr(composite, hook)(*args, **keywords)
    expected = [(hook, args, keywords) for hook, (args, keywords) in CALLS.items()]
    assert first.seen == expected and second.seen == expected
    assert composite.observers == (first, second)


def test_a_failing_observer_is_logged_once_and_the_others_still_hear(
    caplog: pytest.LogCaptureFixture,
) -> None:
    after = Recording()
    composite = CompositeObserver(Failing(), after)  # type: ignore[arg-type]
    args, keywords = CALLS["first_token"]
    with caplog.at_level(logging.ERROR, logger="rolescope.service.observer"):
        for _ in range(3):
            composite.first_token(*args, **keywords)  # type: ignore[arg-type]
    assert [hook for hook, _, _ in after.seen] == ["first_token"] * 3
    failures = [r for r in caplog.records if "failed in first_token" in r.getMessage()]
    assert len(failures) == 1 and "Failing" in failures[0].getMessage()
    assert failures[0].exc_info is not None
