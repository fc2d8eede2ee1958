"""The PromQL shapes an OpenSLO indicator carries, built from and read back into rolescope SLIs.

OpenSLO leaves a metric source's `spec` to each data source; for Prometheus the
convention (Sloth's, and rolescope's own spec) is a rate query over
`{{.window}}`, the placeholder the rule generator replaces by each window. A
latency SLI is a histogram: good events are the observations in the bucket at
the threshold, total events are all observations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rolescope.alerts.spec import HISTOGRAM_BUCKETS, WINDOW_PLACEHOLDER, LatencySli

_METRIC = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*')
_SELECTOR = re.compile(rf"^(?P<metric>{_METRIC})\s*(?:\{{(?P<matchers>[^{{}}]*)\}})?$")
_RATE = re.compile(
    rf"^sum\s*\(\s*rate\s*\(\s*(?P<metric>{_METRIC})\s*(?:\{{(?P<matchers>[^{{}}]*)\}})?\s*"
    r"\[\s*\{\{\.window\}\}\s*\]\s*\)\s*\)$"
)
# What the rule generator writes for a whole-number bound: "5" or "5.0" (see rules.le_matcher).
_WHOLE_LE = re.compile(r"^([0-9]+)\|\1\\\\?\.0$")


@dataclass(frozen=True, slots=True)
class Selector:
    """One metric with its label matchers, e.g. `x_bucket{role="a", le="0.5"}`."""

    metric: str
    matchers: tuple[tuple[str, str, str], ...]  # (label, operator, value as written)

    def without(self, label: str) -> tuple[tuple[str, str, str], ...]:
        return tuple(m for m in self.matchers if m[0] != label)


def _parse_matchers(text: str | None) -> tuple[tuple[str, str, str], ...] | None:
    if not text or not text.strip():
        return ()
    found: list[tuple[str, str, str]] = []
    for part in _split_top_level(text):
        match = _MATCHER.fullmatch(part)
        if match is None:
            return None
        found.append((match.group(1), match.group(2), match.group(3)))
    return tuple(found)


def _split_top_level(text: str) -> list[str]:
    # Commas inside quoted values (regexes such as "a|b,c") must not split a matcher.
    parts, current, quoted, escaped = [], "", False, False
    for char in text:
        if char == "," and not quoted:
            parts.append(current)
            current = ""
            continue
        current += char
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
    if current.strip():
        parts.append(current)
    return parts


def parse_rate_selector(query: str) -> Selector | None:
    """`sum(rate(metric{...}[{{.window}}]))` → its selector; None for any other shape."""
    match = _RATE.match(" ".join(query.split()))
    if match is None:
        return None
    matchers = _parse_matchers(match.group("matchers"))
    return None if matchers is None else Selector(match.group("metric"), matchers)


def parse_plain_selector(query: str) -> Selector | None:
    """A bare instant-vector selector `metric{...}`; None for anything with functions or operators."""
    match = _SELECTOR.match(" ".join(query.split()))
    if match is None:
        return None
    matchers = _parse_matchers(match.group("matchers"))
    return None if matchers is None else Selector(match.group("metric"), matchers)


def format_matchers(matchers: tuple[tuple[str, str, str], ...]) -> str:
    return ", ".join(f'{label}{op}"{value}"' for label, op, value in matchers)


def le_value(selector: Selector) -> float | None:
    """The bound an `le` matcher selects: `le="0.5"`, or the generator's `le=~"5|5\\.0"`."""
    for label, op, value in selector.matchers:
        if label != "le":
            continue
        if op == "=":
            try:
                return float(value)
            except ValueError:
                return None
        whole = _WHOLE_LE.match(value) if op == "=~" else None
        return float(whole.group(1)) if whole else None
    return None


def rate_query(metric: str, selector: str) -> str:
    inner = f"{{{selector}}}" if selector else ""
    return f"sum(rate({metric}{inner}[{WINDOW_PLACEHOLDER}]))"


def latency_good_query(latency: LatencySli, le_matcher: str) -> str:
    selector = ", ".join(part for part in (latency.selector, le_matcher) if part)
    return rate_query(f"{latency.histogram}_bucket", selector)


def latency_total_query(latency: LatencySli) -> str:
    return rate_query(f"{latency.histogram}_count", latency.selector)


@dataclass(frozen=True, slots=True)
class HistogramRatio:
    """A good/total pair that is exactly one rolescope histogram's bucket over its count."""

    histogram: str
    threshold: float | None  # None when the `le` matcher is missing or not a number
    selector: str


def histogram_ratio(good: Selector, total: Selector) -> HistogramRatio | None:
    """Recognise `H_bucket{sel, le=…}` over `H_count{sel}` for a histogram rolescope exposes."""
    if not (good.metric.endswith("_bucket") and total.metric.endswith("_count")):
        return None
    histogram = good.metric.removesuffix("_bucket")
    if histogram != total.metric.removesuffix("_count") or histogram not in HISTOGRAM_BUCKETS:
        return None
    rest = good.without("le")
    if rest != total.matchers:
        return None
    return HistogramRatio(histogram, le_value(good), format_matchers(rest))
