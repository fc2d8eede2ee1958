"""The run directory's contract: every file name, and the one record `samples.jsonl` holds.

A load run, a tune run and a verdict directory are read and written by
different commands (`load`, `tune`, `gate`, `baseline`, `profile`) and by CI
scripts; they agree only if every name is spelled here once. This module is
at the bottom: it imports nothing else of rolescope, so anything may import it.

    load-N/            one load run: SETTINGS_FILE, ENVIRONMENT_FILE, SAMPLES_FILE,
                       SLIS_FILE, SERVICE_FILE, Locust's CSV/JSON/HTML and log
    profile/load-N/    py-spy per load run: PROFILE_COLLAPSED, PROFILE_SPEEDSCOPE, ...
    MEMORY_FILE        allocations and bytes per request (or MEMORY_ERROR_FILE)
    VERDICT_FILE, JUNIT_FILE, SUMMARY_FILE, REPORT_FILE
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

# One load run.
SAMPLES_FILE = "samples.jsonl"
SLIS_FILE = "slis.json"
SETTINGS_FILE = "settings.json"
ENVIRONMENT_FILE = "environment.json"
SERVICE_FILE = "service.json"  # the service's CPU seconds and peak memory during the run (tune)
LOCUST_LOG = "locust.log"
LOCUST_CSV_PREFIX = "locust"  # Locust appends _stats.csv, _failures.csv, ...
LOCUST_REPORT_FILE = "locust_report.html"
LOCUST_STATS_PREFIX = "locust_stats"  # Locust's --json-file appends .json
LOCUST_STATS_FILE = f"{LOCUST_STATS_PREFIX}.json"

# A tune run: load-1/ ... load-N/ beside these.
LOAD_DIR_PREFIX = "load-"
LOAD_DIR_PATTERN = re.compile(r"^load-(\d+)$")
PROFILE_DIR = "profile"
MEMORY_FILE = "memory.json"
MEMORY_ERROR_FILE = "memory-error.txt"
MEMORY_LOG = "memory.log"
SERVICE_LOG = "service.log"
# A sweep: trial-1/ ... trial-K/ (each a tune run) beside SWEEP_FILE.
SWEEP_FILE = "sweep.json"
TRIAL_DIR_PREFIX = "trial-"

# A verdict, wherever it is written.
VERDICT_FILE = "verdict.json"
JUNIT_FILE = "junit.xml"
SUMMARY_FILE = "summary.md"
REPORT_FILE = "report.html"
# What a tune run could and could not measure (profile, memory, server-side figures), and why.
MEASUREMENTS_FILE = "measurements.json"
# Shadow mirroring during a tune run (only when it ran): the mirrored pairs the service wrote, and
# the mirror's outcome counts with the diff of those pairs.
MIRROR_PAIRS_FILE = "mirror-pairs.jsonl"
MIRRORING_FILE = "mirroring.json"

# A profile directory (`rolescope profile`, and profile/load-N/ of a tune run).
PROFILE_COLLAPSED = "profile.txt"
PROFILE_SEGMENTS_DIR = "segments"
PROFILE_SPEEDSCOPE = "profile.speedscope.json"
PROFILE_META = "profile.json"
FLAMEGRAPH_FILE = "flamegraph.svg"
FUNCTIONS_FILE = "functions.json"
PROFILE_LAYERS_FILE = "layers.json"
# `rolescope profile compare`.
PROFILE_DIFF_FILE = "diff.json"
DIFF_FLAMEGRAPH_FILE = "diff_flamegraph.svg"

Kind = Literal["chat", "stream"]
# The client-side latencies of a request, named as the sample's `<metric>_s` fields.
LatencyMetric = Literal["ttft", "tpot", "itl", "e2e"]
STREAM_METRICS: frozenset[LatencyMetric] = frozenset({"ttft", "tpot", "itl"})


def load_dir_name(index: int) -> str:
    return f"{LOAD_DIR_PREFIX}{index}"


def trial_dir_name(index: int) -> str:
    return f"{TRIAL_DIR_PREFIX}{index}"


class SampleFileError(ValueError):
    """A line of `samples.jsonl` that is not a sample; the message names the file and line."""


@dataclass(slots=True)
class RequestSample:
    """One request as the load generator saw it: one line of `samples.jsonl`; times in seconds.

    `intended_start` is when the schedule meant to send it and `start` when it
    was sent; in the open model every latency counts from `intended_start`.
    `status` 0 means no HTTP answer at all. TTFT, TPOT and ITL exist only for
    streamed replies (`kind` "stream").
    """

    name: str
    kind: Kind
    intended_start: float
    start: float
    ok: bool
    status: int
    e2e_s: float
    ttft_s: float | None = None
    tpot_s: float | None = None
    itl_s: list[float] = field(default_factory=list)
    output_tokens: int = 0
    error: str | None = None
    session: str = ""
    turn: int = 0
    all_at_once: bool = False  # the whole stream arrived in one read: not really streamed
    process: int = 0  # index of the load process (worker) that sent it
    role_version: str | None = None  # the role version that answered, when the target says
    trace_id: str | None = None  # the answer's trace id, when the target returns one (rolescope does)
    input_tokens: int | None = None  # the prompt's tokens as the target reported them (None: it did not)

    @property
    def streamed(self) -> bool:
        return self.kind == "stream"

    def latencies(self, metric: LatencyMetric) -> list[float]:
        """This request's values of one latency: every gap for ITL, else zero or one value."""
        if metric == "itl":
            return list(self.itl_s)
        value = self.e2e_s if metric == "e2e" else self.ttft_s if metric == "ttft" else self.tpot_s
        return [] if value is None else [value]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RequestSample:
        """A sample from its JSON form; fields written by older versions take their defaults."""
        start = data.get("start", data.get("intended_start"))
        if start is None or "ok" not in data or data.get("e2e_s") is None:
            raise ValueError("a sample needs `start` (or `intended_start`), `ok` and `e2e_s`")
        kind = str(data.get("kind", "chat"))
        if kind not in ("chat", "stream"):
            raise ValueError(f"kind is {kind!r}, expected `chat` or `stream`")
        return cls(
            name=str(data.get("name") or kind),
            kind="stream" if kind == "stream" else "chat",
            intended_start=float(data.get("intended_start", start)),
            start=float(start),
            ok=bool(data["ok"]),
            status=int(data.get("status") or 0),
            e2e_s=float(data["e2e_s"]),
            ttft_s=_optional_float(data.get("ttft_s")),
            tpot_s=_optional_float(data.get("tpot_s")),
            itl_s=[float(gap) for gap in data.get("itl_s") or ()],
            output_tokens=int(data.get("output_tokens") or 0),
            error=None if data.get("error") is None else str(data["error"]),
            session=str(data.get("session", "")),
            turn=int(data.get("turn", 0)),
            all_at_once=bool(data.get("all_at_once", False)),
            process=int(data.get("process", 0)),
            role_version=None if data.get("role_version") is None else str(data["role_version"]),
            trace_id=None if data.get("trace_id") is None else str(data["trace_id"]),
            input_tokens=None if data.get("input_tokens") is None else int(data["input_tokens"]),
        )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def sample_line(sample: RequestSample) -> str:
    """The sample as one compact JSON line (without the newline)."""
    return json.dumps(sample.to_dict(), separators=(",", ":"))


def write_samples(samples: Iterable[RequestSample], path: Path) -> int:
    """Append samples to a `samples.jsonl`; returns how many were written."""
    count = 0
    with path.open("a", encoding="utf-8") as out:
        for sample in samples:
            out.write(sample_line(sample) + "\n")
            count += 1
    return count


def read_samples(path: Path) -> list[RequestSample]:
    """Every sample of a `samples.jsonl`; a malformed line raises SampleFileError naming it."""
    samples: list[RequestSample] = []
    with path.open("r", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if not isinstance(record, dict):
                    raise ValueError(f"expected a JSON object, got {type(record).__name__}")
                samples.append(RequestSample.from_dict(record))
            except (json.JSONDecodeError, TypeError, ValueError) as exc:
                raise SampleFileError(f"{path}:{number}: not a valid sample line ({exc})") from exc
    return samples
