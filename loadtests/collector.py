"""Gathers the per-request samples of one load run, whatever the Locust topology.

Users attach their `RequestSample` to the context of Locust's `request`
event. A local runner keeps them itself; a worker ships them to the master in
its periodic stats report (and in the final report sent when it stops); the
master writes them to `samples.jsonl` and feeds the exporter. Events in, data
out: the users never know where their samples go. No Locust import here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from rolescope.exporters.locust_exporter import LoadMetrics
from rolescope.rundir import RequestSample, sample_line

SAMPLE_CONTEXT_KEY = "rolescope_sample"
REPORT_KEY = "rolescope_samples"
Role = Literal["local", "master", "worker"]
FLUSH_EVERY = 256


class SampleCollector:
    def __init__(self, samples_path: Path | None, metrics: LoadMetrics | None = None) -> None:
        self.samples_path = samples_path
        self.metrics = metrics
        self.count = 0
        self._pending_lines: list[str] = []
        self._outbox: list[dict[str, Any]] = []
        self._role: Role = "local"

    def attach(self, events: Any, role: Role) -> None:
        """Subscribe to a Locust environment's events (`environment.events`)."""
        self._role = role
        if role in ("local", "worker"):
            events.request.add_listener(self._on_request)
        if role == "worker":
            events.report_to_master.add_listener(self._on_report_to_master)
        if role == "master":
            events.worker_report.add_listener(self._on_worker_report)
        events.test_stop.add_listener(self._on_stop)
        events.quitting.add_listener(self._on_stop)

    def add(self, sample: RequestSample) -> None:
        self.count += 1
        if self.metrics is not None:
            self.metrics.observe(sample)
        if self.samples_path is not None:
            self._pending_lines.append(sample_line(sample))
            if len(self._pending_lines) >= FLUSH_EVERY:
                self.flush()

    def flush(self) -> None:
        if self.samples_path is None or not self._pending_lines:
            return
        lines, self._pending_lines = self._pending_lines, []
        with self.samples_path.open("a", encoding="utf-8") as out:
            out.write("\n".join(lines) + "\n")

    def _on_request(self, context: dict[str, Any] | None = None, **_: Any) -> None:
        sample = (context or {}).get(SAMPLE_CONTEXT_KEY)
        if not isinstance(sample, RequestSample):
            return
        if self._role == "worker":
            self._outbox.append(sample.to_dict())
        else:
            self.add(sample)

    def _on_report_to_master(self, client_id: str, data: dict[str, Any]) -> None:
        data[REPORT_KEY], self._outbox = self._outbox, []

    def _on_worker_report(self, client_id: str, data: dict[str, Any]) -> None:
        for raw in data.get(REPORT_KEY) or ():
            self.add(RequestSample.from_dict(raw))
        self.flush()

    def _on_stop(self, **_: Any) -> None:
        self.flush()
