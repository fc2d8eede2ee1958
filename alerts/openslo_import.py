"""OpenSLO v1 ratio and threshold SLOs → the rolescope SLO spec, with every problem named at once.

What rolescope's spec can hold: an occurrence ratio (good or bad events over
total, as Prometheus rate queries over `{{.window}}` or bare counters), a
threshold on one of rolescope's latency histograms (share of observations at
most a bucket bound), one objective, a rolling window. What it cannot — raw
precomputed ratios, time slices, calendar windows, several objectives, other
data sources — is an error naming the document and the field. Alert policies
are noted and left out: rolescope generates its own multi-window
multi-burn-rate alerts from each SLO.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rolescope.alerts.burn_rate import parse_duration
from rolescope.alerts.openslo import (
    ALERTING_ANNOTATION,
    API_VERSION,
    GATE_ANNOTATION,
    OPERATIONAL_ANNOTATION,
    WINDOWS_ANNOTATION,
)
from rolescope.alerts.openslo_indicators import IndicatorReader
from rolescope.alerts.spec import Slo, SloSpec
from rolescope.errors import ConfigError

MAX_FILE_BYTES = 1_000_000
_IGNORED_KINDS = {"AlertPolicy", "AlertCondition", "AlertNotificationTarget"}
_INDEXED_KINDS = {"SLI", "DataSource", "Service"}

Mapping = dict[str, Any]


@dataclass(frozen=True, slots=True)
class ImportResult:
    spec: SloSpec
    notes: tuple[str, ...]  # what was read but deliberately left out


def _mapping(value: Any) -> Mapping:
    return value if isinstance(value, dict) else {}


def _alert_name(service: str, slo_name: str) -> str:
    words = re.split(r"[^A-Za-z0-9]+", f"{service}-{slo_name}")
    return "".join(word[:1].upper() + word[1:] for word in words if word) + "BudgetBurn"


def _pydantic_problems(exc: ValidationError, where: str) -> list[str]:
    out = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        field = ".".join(str(part) for part in loc) or "(top level)"
        message = re.sub(r"^(Value|Assertion) error, ", "", error["msg"])
        out.append(f"{where}: as a rolescope spec, {field}: {message}")
    return out


class _Reader:
    """Sorts one file's documents by kind and turns each SLO into the fields of a rolescope SLO."""

    def __init__(self, documents: list[Any], source: str) -> None:
        self.source = source
        self.errors: list[str] = []
        self.notes: list[str] = []
        self.slos: list[tuple[str, Mapping]] = []
        self.indexed: dict[str, dict[str, Mapping]] = {kind: {} for kind in _INDEXED_KINDS}
        for index, doc in enumerate(documents):
            if doc is not None:
                self._sort(index, doc)
        self.indicators = IndicatorReader(self.errors, self.indexed["DataSource"], self.indexed["SLI"])

    def error(self, where: str, field: str, message: str) -> None:
        self.errors.append(f"{where}: {field}: {message}")

    def _sort(self, index: int, doc: Any) -> None:
        where = f"{self.source} document {index + 1}"
        if not isinstance(doc, dict):
            self.error(where, "(top level)", f"expected a mapping, got {type(doc).__name__}")
            return
        kind, name = doc.get("kind"), _mapping(doc.get("metadata")).get("name")
        where += f" ({kind} {name})" if isinstance(name, str) else f" ({kind})"
        if doc.get("apiVersion") != API_VERSION:
            self.error(where, "apiVersion", f"{doc.get('apiVersion')!r}: rolescope reads {API_VERSION} only")
        elif not isinstance(name, str) or not name:
            self.error(where, "metadata.name", "expected a name")
        elif kind == "SLO":
            self.slos.append((where, doc))
        elif kind in _INDEXED_KINDS:
            self.indexed[str(kind)][name] = doc
        elif kind in _IGNORED_KINDS:
            self.notes.append(f"{where}: not imported; rolescope generates its own burn-rate alerts")
        else:
            self.error(where, "kind", f"{kind!r} is not an OpenSLO v1 kind")

    # --- SLO documents ----------------------------------------------------------------

    def objective(self, body: Mapping, where: str) -> tuple[Mapping, float | None]:
        objectives = body.get("objectives")
        if not isinstance(objectives, list) or len(objectives) != 1 or not isinstance(objectives[0], dict):
            count = len(objectives) if isinstance(objectives, list) else 0
            self.error(where, "spec.objectives", f"{count} objectives: a rolescope SLO has exactly one")
            return {}, None
        objective: Mapping = objectives[0]
        for key in ("timeSliceTarget", "timeSliceWindow"):
            if key in objective:
                self.error(
                    where, f"spec.objectives[0].{key}", "time slices are not supported (Occurrences only)"
                )
        target, percent = objective.get("target"), objective.get("targetPercent")
        if (target is None) == (percent is None):
            self.error(where, "spec.objectives[0]", "expected exactly one of target or targetPercent")
            return objective, None
        if target is not None:
            if not isinstance(target, int | float) or not 0 < target < 1:
                self.error(where, "spec.objectives[0].target", f"{target!r}: expected a number in (0, 1)")
                return objective, None
            return objective, round(float(target) * 100.0, 10)
        if not isinstance(percent, int | float) or not 0 < percent < 100:
            self.error(
                where, "spec.objectives[0].targetPercent", f"{percent!r}: expected a number in (0, 100)"
            )
            return objective, None
        return objective, float(percent)

    def period(self, body: Mapping, where: str) -> str | None:
        if body.get("budgetingMethod") != "Occurrences":
            self.error(
                where,
                "spec.budgetingMethod",
                f"{body.get('budgetingMethod')!r}: rolescope counts events (Occurrences), not time slices",
            )
        windows = body.get("timeWindow")
        if windows is None:
            return "30d"
        window = _mapping(windows[0]) if isinstance(windows, list) and len(windows) == 1 else {}
        if not window:
            self.error(where, "spec.timeWindow", "expected a list of exactly one window")
            return None
        if "calendar" in window or window.get("isRolling") is False:
            self.error(
                where, "spec.timeWindow[0]", "calendar-aligned windows are not supported; use isRolling: true"
            )
            return None
        duration = str(window.get("duration"))
        try:
            parse_duration(duration)
        except ValueError:
            self.error(
                where, "spec.timeWindow[0].duration", f"{duration!r}: expected m, h, d or w, e.g. 28d or 4w"
            )
            return None
        return duration

    def labels(self, value: Any, where: str, field: str) -> dict[str, str]:
        labels: dict[str, str] = {}
        for key, item in _mapping(value).items():
            if isinstance(item, list):
                self.error(where, f"{field}.{key}", "a rolescope label holds one string, not a list")
            else:
                labels[str(key)] = str(item)
        return labels

    def annotation(self, metadata: Mapping, key: str, where: str) -> Any:
        text = _mapping(metadata.get("annotations")).get(key)
        if text is None:
            return None
        try:
            return json.loads(str(text))
        except json.JSONDecodeError:
            self.error(
                where, f"metadata.annotations.{key}", "expected JSON as `rolescope slo export` writes it"
            )
            return None

    def slo(self, where: str, doc: Mapping) -> tuple[str | None, Mapping | None]:
        metadata, body = _mapping(doc.get("metadata")), _mapping(doc.get("spec"))
        service = body.get("service")
        if not isinstance(service, str) or not service:
            self.error(where, "spec.service", "expected the name of the service this SLO belongs to")
            service = None
        if body.get("alertPolicies"):
            self.notes.append(
                f"{where}: spec.alertPolicies not imported; rolescope generates its own burn-rate alerts"
            )
        objective, target = self.objective(body, where)
        period = self.period(body, where)
        sli = self.indicators.indicator(body, objective, where) if objective else None
        alerting = self.annotation(metadata, ALERTING_ANNOTATION, where)
        if alerting is None:
            alerting = {
                "name": _alert_name(service or "slo", str(metadata["name"])),
                "page_alert": {"labels": {"severity": "page"}},
                "ticket_alert": {"labels": {"severity": "ticket"}},
            }
        if target is None or period is None or sli is None:
            return service, None
        slo = {
            "name": metadata["name"],
            "objective": target,
            "description": str(body.get("description", "")),
            "period": period,
            "labels": self.labels(metadata.get("labels"), where, "metadata.labels"),
            "sli": sli,
            "alerting": alerting,
        }
        try:
            Slo.model_validate(slo)
        except ValidationError as exc:
            self.errors += _pydantic_problems(exc, where)
            return service, None
        return service, slo


def import_openslo(documents: list[Any], source: str) -> ImportResult:
    """Every SLO document of one OpenSLO v1 file as one rolescope spec; ConfigError lists all problems."""
    reader = _Reader(documents, source)
    services: dict[str, str] = {}
    slos: list[Mapping] = []
    for where, doc in reader.slos:
        service, slo = reader.slo(where, doc)
        if service is not None:
            services.setdefault(service, where)
        if slo is not None:
            slos.append(slo)
    if not reader.slos and not reader.errors:
        reader.errors.append(f"{source}: no kind: SLO document with apiVersion {API_VERSION}")
    if len(services) > 1:
        reader.errors.append(
            f"{source}: spec.service: the SLOs name {len(services)} services ({', '.join(services)}); "
            "a rolescope spec describes one — import each service's SLOs separately"
        )
    if reader.errors:
        raise ConfigError(_report(source, reader.errors))
    service = next(iter(services))
    data: Mapping = {"version": "rolescope/v1", "service": service, "slos": slos}
    service_doc = reader.indexed["Service"].get(service)
    if service_doc is not None:
        metadata, where = _mapping(service_doc.get("metadata")), f"{source} (Service {service})"
        data["labels"] = reader.labels(metadata.get("labels"), where, "metadata.labels")
        for key, field in (
            (GATE_ANNOTATION, "gate"),
            (OPERATIONAL_ANNOTATION, "operational"),
            (WINDOWS_ANNOTATION, "alert_windows"),
        ):
            value = reader.annotation(metadata, key, where)
            if value is not None:
                data[field] = value
    try:
        spec = SloSpec.model_validate(data)
    except ValidationError as exc:
        reader.errors += _pydantic_problems(exc, source)
    if reader.errors:
        raise ConfigError(_report(source, reader.errors))
    return ImportResult(spec, tuple(reader.notes))


def _report(source: str, errors: list[str]) -> str:
    if len(errors) == 1:
        return errors[0]
    return f"{source}: {len(errors)} problems\n" + "\n".join(f"  - {error}" for error in errors)


def read_openslo_file(path: Path) -> list[Any]:
    """The YAML documents of one file; unreadable or invalid YAML is a ConfigError naming the file."""
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read it ({exc})") from exc
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})".replace("\n", " ")) from exc
