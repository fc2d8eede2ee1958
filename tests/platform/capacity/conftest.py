"""Shared by the capacity tests: one short, cheap search of a single step."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from rolescope.capacity.options import CapacityOptions
from rolescope.capacity.outputs import schema
from rolescope.capacity.run import CapacityOutcome, run_capacity

OneStep = Callable[..., CapacityOutcome]


@pytest.fixture
def one_step_capacity() -> OneStep:
    """Runs `capacity` for one probe step of streamed requests (and no more); validates capacity.json."""

    def run(out: Path, start_rate: float = 5.0, **options: Any) -> CapacityOutcome:
        settings: dict[str, Any] = {
            "user": "stream",
            "time_budget_s": 20.0,
            "max_step_s": 8.0,
            "precision": 0.9,
        }
        outcome = run_capacity(
            CapacityOptions(out=out, start_rate=start_rate, **{**settings, **options}), lambda _: None
        )
        jsonschema.validate(outcome.document, schema())
        return outcome

    return run
