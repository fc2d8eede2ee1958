"""Grafana unit ids as a person reads them: 1 percentunit → "100%", 0.25 s → "250 ms", 4 short → "4".

The preview draws panels without Grafana, so it formats values the way
Grafana's value formats do (the same scaled steps and suffixes), and never
prints a unit id. Pure functions.
"""

from __future__ import annotations

import math

# Grafana's "short": thousands steps with its own suffixes.
_SHORT_STEPS = ("", " K", " Mil", " Bil", " Tri", " Quadr")
_IEC_STEPS = (" B", " KiB", " MiB", " GiB", " TiB", " PiB")
_SI_BYTE_STEPS = (" B", " kB", " MB", " GB", " TB", " PB")
_FIXED_SUFFIX = {
    "reqps": " req/s",
    "rps": " req/s",
    "ops": " ops/s",
    "wps": " wr/s",
    "rpm": " rpm",
    "x": "×",  # rolescope's burn-rate panels: a multiple of the sustainable rate
    "none": "",
    "": "",
}
# Seconds and upwards, as Grafana's "s" unit scales a duration.
_DURATION_STEPS = (
    (86400 * 365, " year"),
    (86400 * 7, " week"),
    (86400, " day"),
    (3600, " hour"),
    (60, " min"),
)


def number(value: float, significant: int = 3) -> str:
    """`significant` digits, whole numbers kept whole, no trailing zeros: 13.333 → "13.3", 1234 → "1234"."""
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, min(6, significant - 1 - magnitude))
    text = f"{value:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text


def _scaled(value: float, base: float, steps: tuple[str, ...], digits: int) -> str:
    index = 0
    while abs(value) >= base and index < len(steps) - 1:
        value /= base
        index += 1
    return number(value, digits) + steps[index]


def _duration(seconds: float, digits: int) -> str:
    size = abs(seconds)
    if size == 0:
        return "0 s"
    if size < 1e-3:
        return number(seconds * 1e6, digits) + " µs"
    if size < 1:
        return number(seconds * 1e3, digits) + " ms"
    for step, suffix in _DURATION_STEPS:
        if size >= step:
            return number(seconds / step, digits) + suffix
    return number(seconds, digits) + " s"


def format_value(value: float, unit: str, significant: int = 3) -> str:
    """One value in a Grafana unit, as the panel would show it."""
    if math.isnan(value):
        return "no value"
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    digits = significant
    if unit == "percentunit":
        # At least four digits: an SLO of 99.95 % must not read as 100 %.
        return number(value * 100, max(4, digits)) + "%"
    if unit == "percent":
        return number(value, max(4, digits)) + "%"
    if unit in {"s", "ms"}:
        return _duration(value if unit == "s" else value / 1000, digits)
    if unit == "short":
        return _scaled(value, 1000, _SHORT_STEPS, digits)
    if unit == "bytes":
        return _scaled(value, 1024, _IEC_STEPS, digits)
    if unit == "decbytes":
        return _scaled(value, 1000, _SI_BYTE_STEPS, digits)
    if unit.startswith("suffix:"):
        return number(value, digits) + unit.removeprefix("suffix:")
    if unit in _FIXED_SUFFIX:
        return number(value, digits) + _FIXED_SUFFIX[unit]
    # Grafana shows an unknown unit id as a custom suffix after the number.
    return f"{number(value, digits)} {unit}"


def tick_labels(values: list[float], unit: str) -> list[str]:
    """Axis labels in the unit, with just enough digits that neighbouring ticks read differently."""
    labels = [format_value(v, unit) for v in values]
    for digits in range(4, 8):
        if len(set(labels)) == len(labels):
            break
        labels = [format_value(v, unit, digits) for v in values]
    return labels
