"""Where a profile's samples went, by layer of the service, before by function.

A flat function table is led by event-loop and server frames (`Runner.run`,
`RequestResponseCycle.send`) that tell nobody what to change. Here every
sample's self time goes to one layer — framework/server, business, inference,
storage, telemetry, capture — decided by the module of its leaf frame. When
the leaf is in a library no layer owns (the standard library's json, pydantic,
typing), the nearest caller that belongs to a layer decides, so a JSON encoder
called by Starlette counts as framework time and one called by the chat
service as business time. Samples that end in the event loop itself are their
own line, named as such; threads waiting for work are another, since they are
not CPU spent on requests.

py-spy shortens a file to its path from the top-most package folder: rolescope
is a namespace package, so its frames read `service/chat.py (…)`,
`inference/simulator.py`, `exporters/metrics.py`; full paths
(`…/rolescope/service/chat.py`, `…/site-packages/uvicorn/…`) are understood
too. Pure functions over `collapsed.Profile`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from rolescope.profiling.collapsed import Profile, Stack, split_frame

FRAMEWORK = "framework/server"
EVENT_LOOP = "event loop"
BUSINESS = "business"
INFERENCE = "inference"
STORAGE = "storage"
TELEMETRY = "telemetry"
CAPTURE = "capture"
WAITING = "waiting threads"
OTHER = "other"
LAYERS = (FRAMEWORK, EVENT_LOOP, BUSINESS, INFERENCE, STORAGE, TELEMETRY, CAPTURE, WAITING, OTHER)

# Frames where a thread waits rather than works (an idle thread-pool worker, a condition wait):
# py-spy samples them, but they are not CPU spent on requests.
IDLE_FRAMES = re.compile(
    r"^(EpollSelector\.select|_worker \(concurrent/futures|Condition\.wait|Event\.wait|"
    r"select \(|poll \(|_wait_for_tstate_lock|SimpleQueue\.get)"
)

# Module path prefixes (as py-spy shortens them) per layer; the first match wins, so the
# event loop's own modules come before the rest of asyncio, and rolescope's server
# start-up before its business layer.
_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        EVENT_LOOP,
        (
            "asyncio/base_events.py",
            "asyncio/runners.py",
            "asyncio/events.py",
            "asyncio/selector_events.py",
            "asyncio/unix_events.py",
            "selectors.py",
            "uvloop/",
        ),
    ),
    (
        FRAMEWORK,
        (
            "uvicorn/",
            "starlette/",
            "fastapi/",
            "asyncio/",
            "h11/",
            "httptools/",
            "anyio/",
            "sse_starlette/",
            "service/sse_response.py",
            "service/server.py",
            "service/launcher.py",
            "serving/",
        ),
    ),
    (BUSINESS, ("service/",)),
    (INFERENCE, ("inference/",)),
    (STORAGE, ("storage/", "sqlite3/", "redis/")),
    (
        TELEMETRY,
        (
            "exporters/",
            "prometheus_client/",
            "opentelemetry/",
            # opentelemetry is a namespace package too: py-spy shows its subpackages bare.
            "context/",
            "trace/",
            "metrics/",
            "sdk/",
            "exporter/",
            "propagate/",
            "propagators/",
            "baggage/",
            "attributes/",
            "semconv/",
            "instrumentation/",
        ),
    ),
    (CAPTURE, ("capture/",)),
)
_INSTALL_ROOT = re.compile(r"^.*/(?:site-packages|dist-packages|lib/python3\.\d+)/")
_OWN_ROOT = re.compile(r"^(?:.*/)?(?:rolescope|platform)/")


def module_path(file: str) -> str:
    """A frame's file as a path from its package: `…/site-packages/uvicorn/x.py` → `uvicorn/x.py`."""
    path = file.replace("\\", "/")
    if path.startswith("/") or ":/" in path:
        path = _INSTALL_ROOT.sub("", path)
        path = _OWN_ROOT.sub("", path)
    return path


def frame_layer(frame: str) -> str | None:
    """The layer a frame's module belongs to, or None for code no layer owns (stdlib, pydantic, CLI)."""
    _name, file, _line = split_frame(frame)
    if not file:
        return None
    path = module_path(file)
    for layer, prefixes in _RULES:
        if path.startswith(prefixes):
            return layer
    return None


def attribute(stack: Stack) -> tuple[str, str]:
    """(layer, the frame that decided it) for one sample: its leaf, or the nearest caller with a layer."""
    leaf = stack[-1]
    if IDLE_FRAMES.match(leaf):
        return WAITING, leaf
    for frame in reversed(stack):
        layer = frame_layer(frame)
        if layer is not None:
            return layer, frame
    return OTHER, leaf


@dataclass(frozen=True)
class LayerShare:
    """One layer's samples, and the functions within it that took the most."""

    layer: str
    samples: int
    share: float  # of all samples in the profile
    top_functions: tuple[tuple[str, float], ...]  # (frame, share of all samples), largest first

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["top_functions"] = [{"function": f, "share": s} for f, s in self.top_functions]
        return data


def layer_counts(profile: Profile) -> tuple[Counter[str], Counter[tuple[str, str]]]:
    """Samples per layer, and per (layer, deciding frame)."""
    layers: Counter[str] = Counter()
    functions: Counter[tuple[str, str]] = Counter()
    for stack, count in profile.stacks.items():
        layer, frame = attribute(stack)
        layers[layer] += count
        functions[(layer, frame)] += count
    return layers, functions


def layer_table(profile: Profile, top: int = 3) -> list[LayerShare]:
    """Every layer with samples, largest first, each with its `top` functions."""
    total = profile.total
    if not total:
        return []
    layers, functions = layer_counts(profile)
    rows = []
    for layer, samples in layers.items():
        mine = sorted(
            ((f, n) for (lay, f), n in functions.items() if lay == layer), key=lambda x: (-x[1], x[0])
        )
        rows.append(LayerShare(layer, samples, samples / total, tuple((f, n / total) for f, n in mine[:top])))
    return sorted(rows, key=lambda row: (-row.samples, LAYERS.index(row.layer)))


def layer_shares(profile: Profile) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """Shares of all samples per layer and per (layer, frame): one observation for a comparison."""
    total = profile.total
    if not total:
        return {}, {}
    layers, functions = layer_counts(profile)
    return {k: v / total for k, v in layers.items()}, {k: v / total for k, v in functions.items()}


def short_function(frame: str) -> str:
    """A frame without its file: `RequestResponseCycle.send (uvicorn/…:463)` → `RequestResponseCycle.send`."""
    return split_frame(frame)[0]


def describe(rows: Iterable[LayerShare]) -> list[str]:
    """One plain line per layer, for consoles and notes: `business 31.2 % — ChatService.prepare 12.0 %, …`."""
    lines = []
    for row in rows:
        tops = ", ".join(f"{short_function(f)} {100 * s:.1f} %" for f, s in row.top_functions)
        lines.append(f"{row.layer} {100 * row.share:.1f} %" + (f" — {tops}" if tops else ""))
    return lines
