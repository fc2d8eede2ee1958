"""The indicator of one OpenSLO v1 SLO → a rolescope SLI (`events` or `latency`), with problems named.

A `ratioMetric` of good or bad over total becomes an events SLI — or a latency
SLI when it is exactly a rolescope histogram's bucket over its count; a
`thresholdMetric` on a rolescope latency histogram with `op: lte` becomes a
latency SLI. Queries must be Prometheus rate queries over `{{.window}}`, or
bare counter selectors with `counter: true`.
"""

from __future__ import annotations

from typing import Any

from rolescope.alerts.openslo import SOURCE_TYPE
from rolescope.alerts.openslo_queries import (
    format_matchers,
    histogram_ratio,
    parse_plain_selector,
    parse_rate_selector,
)
from rolescope.alerts.spec import HISTOGRAM_BUCKETS, WINDOW_PLACEHOLDER

Mapping = dict[str, Any]


def mapping(value: Any) -> Mapping:
    return value if isinstance(value, dict) else {}


class IndicatorReader:
    """Reads indicators against the file's DataSource and SLI documents, appending problems to `errors`."""

    def __init__(self, errors: list[str], data_sources: dict[str, Mapping], slis: dict[str, Mapping]) -> None:
        self.errors = errors
        self.data_sources = data_sources
        self.slis = slis

    def error(self, where: str, field: str, message: str) -> None:
        self.errors.append(f"{where}: {field}: {message}")

    # --- metric sources ---------------------------------------------------------------

    def query(self, metric: Any, where: str, field: str) -> str | None:
        source = mapping(mapping(metric).get("metricSource"))
        kind, ref = source.get("type"), source.get("metricSourceRef")
        if kind is None and isinstance(ref, str):
            kind = mapping(self.data_sources.get(ref, {}).get("spec")).get("type")
        if kind is not None and str(kind).lower() != SOURCE_TYPE.lower():
            self.error(
                where, f"{field}.metricSource.type", f"{kind!r}: rolescope writes Prometheus rules only"
            )
            return None
        query = mapping(source.get("spec")).get("query")
        if not isinstance(query, str) or not query.strip():
            self.error(where, f"{field}.metricSource.spec.query", "expected a PromQL query")
            return None
        return " ".join(query.split())

    def window_query(self, metric: Any, counter: bool, where: str, field: str) -> str | None:
        query = self.query(metric, where, field)
        if query is None or WINDOW_PLACEHOLDER in query:
            return query
        if counter and parse_plain_selector(query) is not None:
            # A bare counter selector: its rate over each window is what a burn-rate rule needs.
            return f"sum(rate({query}[{WINDOW_PLACEHOLDER}]))"
        self.error(
            where,
            f"{field}.metricSource.spec.query",
            f"{query!r} has no {WINDOW_PLACEHOLDER} placeholder and is not a bare counter selector with "
            f"counter: true; expected e.g. sum(rate(http_requests_total[{WINDOW_PLACEHOLDER}]))",
        )
        return None

    # --- indicators -------------------------------------------------------------------

    def ratio_sli(self, ratio: Mapping, where: str, field: str) -> Mapping | None:
        if "raw" in ratio or "rawType" in ratio:
            self.error(
                where, f"{field}.raw", "a precomputed ratio has no event counts; give good or bad, and total"
            )
            return None
        if ("good" in ratio) == ("bad" in ratio) or "total" not in ratio:
            self.error(where, field, "expected exactly one of good or bad, and total")
            return None
        counter = ratio.get("counter") is True
        numerator = "good" if "good" in ratio else "bad"
        top = self.window_query(ratio[numerator], counter, where, f"{field}.{numerator}")
        total = self.window_query(ratio["total"], counter, where, f"{field}.total")
        if top is None or total is None:
            return None
        if numerator == "bad":
            return {"events": {"error_query": top, "total_query": total}}
        good_selector, total_selector = parse_rate_selector(top), parse_rate_selector(total)
        histogram = (
            histogram_ratio(good_selector, total_selector) if good_selector and total_selector else None
        )
        if histogram is None:
            return {"events": {"error_query": f"({total}) - ({top})", "total_query": total}}
        if histogram.threshold is None:
            self.error(where, f"{field}.good", 'a histogram bucket query needs an le="<bound>" matcher')
            return None
        return {
            "latency": {
                "histogram": histogram.histogram,
                "threshold": histogram.threshold,
                "selector": histogram.selector,
            }
        }

    def threshold_sli(self, metric: Any, objective: Mapping, where: str, field: str) -> Mapping | None:
        query = self.query(metric, where, field)
        if query is None:
            return None
        selector = parse_plain_selector(query)
        if (
            selector is None
            or selector.metric not in HISTOGRAM_BUCKETS
            or selector.without("le") != selector.matchers
        ):
            self.error(
                where,
                f"{field}.metricSource.spec.query",
                f"{query!r}: a threshold SLO becomes a latency SLI only on a histogram rolescope exposes, "
                f"as its bare name with label matchers ({', '.join(sorted(HISTOGRAM_BUCKETS))})",
            )
            return None
        value = objective.get("value")
        if objective.get("op") != "lte" or isinstance(value, bool) or not isinstance(value, int | float):
            self.error(
                where,
                "spec.objectives[0]",
                f"op {objective.get('op')!r}, value {value!r}: a histogram counts observations at most "
                "a bound, so expected op: lte and a number of seconds",
            )
            return None
        matchers = format_matchers(selector.matchers)
        return {"latency": {"histogram": selector.metric, "threshold": float(value), "selector": matchers}}

    def indicator(self, body: Mapping, objective: Mapping, where: str) -> Mapping | None:
        if "indicator" in body:
            sli, field = mapping(mapping(body["indicator"]).get("spec")), "spec.indicator.spec"
        elif isinstance(body.get("indicatorRef"), str):
            ref = body["indicatorRef"]
            if ref not in self.slis:
                self.error(where, "spec.indicatorRef", f"{ref!r}: no SLI document of that name in this file")
                return None
            sli, field = mapping(self.slis[ref].get("spec")), f"SLI {ref} spec"
        else:
            self.error(where, "spec.indicator", "expected an inline indicator or an indicatorRef")
            return None
        if ("ratioMetric" in sli) == ("thresholdMetric" in sli):
            self.error(where, field, "expected exactly one of ratioMetric or thresholdMetric")
            return None
        if "thresholdMetric" in sli:
            return self.threshold_sli(sli["thresholdMetric"], objective, where, f"{field}.thresholdMetric")
        for key in ("op", "value"):
            if key in objective:
                self.error(
                    where, f"spec.objectives[0].{key}", "only a thresholdMetric compares against a value"
                )
        return self.ratio_sli(mapping(sli["ratioMetric"]), where, f"{field}.ratioMetric")
