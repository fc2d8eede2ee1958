"""The SLO spec (`alerts/slo.yaml`): model, loader and the errors a person can act on.

One spec drives the recording rules and burn-rate alerts, the SLO dashboard and
the performance gate. Its layout follows Sloth's prometheus/v1 spec; a latency
SLI names a histogram and a threshold that must be one of its bucket bounds,
because a rule can only count requests "at most the threshold" at a bound.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from rolescope.alerts.burn_rate import DEFAULT_WINDOWS, WindowPair, parse_duration
from rolescope.errors import ConfigError
from rolescope.exporters import names
from rolescope.rundir import LatencyMetric

MAX_SPEC_BYTES = 1_000_000
WINDOW_PLACEHOLDER = "{{.window}}"
_SLUG = r"^[a-z0-9][a-z0-9-]*$"

# Which histogram has which bucket bounds; a latency threshold must be one of them.
HISTOGRAM_BUCKETS: dict[str, tuple[float, ...]] = {
    names.GENAI_TTFT: names.GENAI_TTFT_BUCKETS,
    names.GENAI_TPOT: names.GENAI_TPOT_BUCKETS,
    names.GENAI_REQUEST_DURATION: names.GENAI_DURATION_BUCKETS,
    names.HTTP_REQUEST_DURATION: names.HTTP_DURATION_BUCKETS,
}

# Which client-side latency of a request a histogram's SLO is judged on (load, gate, overload):
# the server's request duration is what the client sees as end-to-end time.
LATENCY_FIGURES: dict[str, LatencyMetric] = {
    names.GENAI_TTFT: "ttft",
    names.GENAI_TPOT: "tpot",
    names.GENAI_REQUEST_DURATION: "e2e",
    names.HTTP_REQUEST_DURATION: "e2e",
}


@dataclass(frozen=True, slots=True)
class LatencyObjective:
    """A latency SLO as the load side judges it: `objective` (a fraction) of requests within `threshold_s`."""

    name: str
    metric: LatencyMetric
    threshold_s: float
    objective: float


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_duration(value: str) -> str:
    parse_duration(value)
    return value


Duration = Annotated[str, AfterValidator(_check_duration)]


class EventsSli(_Strict):
    """An error ratio from two queries; `{{.window}}` stands for each rate window."""

    error_query: str = Field(min_length=1)
    total_query: str = Field(min_length=1)

    @field_validator("error_query", "total_query")
    @classmethod
    def _has_window(cls, value: str) -> str:
        if WINDOW_PLACEHOLDER not in value:
            raise ValueError(f"the query must contain {WINDOW_PLACEHOLDER} where the rate window goes")
        return " ".join(value.split())


class LatencySli(_Strict):
    """Bad events are those slower than `threshold` seconds, counted from a histogram."""

    histogram: str
    threshold: float = Field(gt=0)
    selector: str = ""

    @model_validator(mode="after")
    def _threshold_is_a_bucket(self) -> LatencySli:
        buckets = HISTOGRAM_BUCKETS.get(self.histogram)
        if buckets is None:
            raise ValueError(
                f"histogram {self.histogram!r} is not one rolescope exposes; expected one of "
                + ", ".join(sorted(HISTOGRAM_BUCKETS))
            )
        if not any(abs(bound - self.threshold) < 1e-12 for bound in buckets):
            bounds = ", ".join(f"{b:g}" for b in buckets)
            raise ValueError(
                f"threshold {self.threshold:g} s is not a bucket bound of {self.histogram} (bounds: {bounds})"
            )
        return self


class Sli(_Strict):
    events: EventsSli | None = None
    latency: LatencySli | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Sli:
        if (self.events is None) == (self.latency is None):
            raise ValueError("an sli has exactly one of `events` (error/total queries) or `latency`")
        return self


class AlertSpec(_Strict):
    disable: bool = False
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Alerting(_Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    page_alert: AlertSpec = Field(default_factory=AlertSpec)
    ticket_alert: AlertSpec = Field(default_factory=AlertSpec)


class Slo(_Strict):
    name: str = Field(pattern=_SLUG)
    objective: float = Field(gt=0, lt=100, description="percent of good events, e.g. 99.9")
    description: str = ""
    period: Duration = "30d"
    labels: dict[str, str] = Field(default_factory=dict)
    sli: Sli
    alerting: Alerting

    @property
    def period_s(self) -> int:
        return parse_duration(self.period)


class WindowSpec(_Strict):
    error_budget_percent: float = Field(gt=0, le=100)
    short_window: Duration
    long_window: Duration

    @model_validator(mode="after")
    def _short_is_shorter(self) -> WindowSpec:
        if parse_duration(self.short_window) >= parse_duration(self.long_window):
            raise ValueError(
                f"short_window {self.short_window} must be shorter than long_window {self.long_window}"
            )
        return self


class SeverityWindows(_Strict):
    quick: WindowSpec
    slow: WindowSpec


class AlertWindows(_Strict):
    """Sloth's AlertWindows: override the workbook table (tests shorten it to seconds)."""

    page: SeverityWindows
    ticket: SeverityWindows

    def pairs(self) -> tuple[WindowPair, ...]:
        out = []
        for severity, group in (("page", self.page), ("ticket", self.ticket)):
            for speed, w in (("quick", group.quick), ("slow", group.slow)):
                out.append(
                    WindowPair(
                        severity,
                        speed,
                        parse_duration(w.short_window),
                        parse_duration(w.long_window),
                        w.error_budget_percent,
                    )
                )
        return tuple(out)


class RelativeTolerance(_Strict):
    ttft_p95: float = Field(default=0.10, gt=0, lt=1)
    e2e_p95: float = Field(default=0.10, gt=0, lt=1)
    tpot_p95: float = Field(default=0.10, gt=0, lt=1)
    throughput: float = Field(default=0.10, gt=0, lt=1)


class MemoryTolerance(_Strict):
    allocations_per_request: float = Field(default=0.05, gt=0, lt=1)
    bytes_per_request: float = Field(default=0.04, gt=0, lt=1)


class Goodput(_Strict):
    objective: float = Field(default=0.95, gt=0, le=1)


class GateSpec(_Strict):
    alpha: float = Field(default=0.05, gt=0, lt=1)
    relative_tolerance: RelativeTolerance = Field(default_factory=RelativeTolerance)
    memory: MemoryTolerance = Field(default_factory=MemoryTolerance)
    goodput: Goodput = Field(default_factory=Goodput)
    # `rolescope diff`: the share of mirrored pairs a field may differ in beyond the noise.
    diff_tolerance: float = Field(default=0.05, gt=0, lt=1)
    # How far (percent) a candidate's capacity bracket may fall below the reference's.
    capacity_drop_pct: float = Field(default=10.0, gt=0, lt=100)


class OperationalSpec(_Strict):
    job_selector: str = 'job=~".*rolescope.*"'
    saturation_ratio: float = Field(default=0.9, gt=0, le=1)
    inference_timeout_ratio: float = Field(default=0.01, gt=0, lt=1)


class SloSpec(_Strict):
    version: Literal["rolescope/v1"]
    service: str = Field(pattern=_SLUG)
    labels: dict[str, str] = Field(default_factory=dict)
    slos: list[Slo] = Field(min_length=1)
    alert_windows: AlertWindows | None = None
    gate: GateSpec = Field(default_factory=GateSpec)
    operational: OperationalSpec = Field(default_factory=OperationalSpec)

    @field_validator("slos")
    @classmethod
    def _unique_names(cls, slos: list[Slo]) -> list[Slo]:
        seen: set[str] = set()
        for slo in slos:
            if slo.name in seen:
                raise ValueError(f"two SLOs are named {slo.name!r}; names must be unique")
            seen.add(slo.name)
        return slos

    def window_pairs(self) -> tuple[WindowPair, ...]:
        return DEFAULT_WINDOWS if self.alert_windows is None else self.alert_windows.pairs()

    def slo(self, name: str) -> Slo:
        for slo in self.slos:
            if slo.name == name:
                return slo
        raise KeyError(name)

    def latency_objectives(self) -> tuple[LatencyObjective, ...]:
        """Every latency SLO, in spec order, as the client-side figure it is judged on.

        Objectives are percentages in the spec (Sloth's convention) and fractions here.
        """
        found: list[LatencyObjective] = []
        for slo in self.slos:
            latency = slo.sli.latency
            if latency is not None:
                # A spec may name only HISTOGRAM_BUCKETS' histograms; LATENCY_FIGURES has the same keys.
                metric = LATENCY_FIGURES[latency.histogram]
                fraction = round(slo.objective / 100, 12)
                found.append(LatencyObjective(slo.name, metric, latency.threshold, fraction))
        return tuple(found)


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def _describe(path: str, exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        message = re.sub(r"^(Value|Assertion) error, ", "", error["msg"])
        value = error.get("input")
        shown = "" if isinstance(value, dict | list) else f" = {value!r}"
        problems.append(f"{_location(tuple(error['loc']))}{shown}: {message}")
    return f"{path}: " + "; ".join(problems)


def parse_slo_spec(data: Any, source: str = "<spec>") -> SloSpec:
    """Validate already-parsed YAML; errors name the source, the field and the value."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping with version, service and slos, got {type(data).__name__}"
        )
    try:
        return SloSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(source, exc)) from exc


def load_slo_spec(path: Path | None = None) -> SloSpec:
    """Load and validate a spec file; without a path, the bundled `alerts/slo.yaml`."""
    if path is None:
        resource = resources.files("rolescope.alerts").joinpath("slo.yaml")
        text, source = resource.read_text(encoding="utf-8"), "rolescope.alerts/slo.yaml"
    else:
        source = str(path)
        try:
            if path.stat().st_size > MAX_SPEC_BYTES:
                raise ConfigError(f"{source}: the SLO spec is larger than {MAX_SPEC_BYTES} bytes")
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError as exc:
            raise ConfigError(f"{source}: no such SLO spec file") from exc
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: cannot read the SLO spec ({exc})") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML ({exc})".replace("\n", " ")) from exc
    return parse_slo_spec(data, source)
