"""Flame graphs as standalone SVG, drawn from collapsed stacks (no Perl, no browser needed).

Plain graphs use a warm palette hashed from the function name so a function keeps
its colour across graphs. Differential graphs are sized by the candidate and
coloured by how each frame's share of samples changed against the baseline:
red where it grew, blue where it shrank (as Brendan Gregg's difffolded graphs).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape

from rolescope.profiling.collapsed import Profile, Stack

WIDTH = 1200
ROW = 17
PAD = 10
TITLE_SPACE = 34
FONT_SIZE = 11
CHAR_WIDTH = FONT_SIZE * 0.59


@dataclass
class _Node:
    name: str
    samples: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def _tree(profile: Profile) -> _Node:
    root = _Node("all")
    for stack, count in profile.stacks.items():
        node = root
        node.samples += count
        for frame in stack:
            node = node.children.setdefault(frame, _Node(frame))
            node.samples += count
    return root


def _depth(node: _Node) -> int:
    return 1 + max((_depth(c) for c in node.children.values()), default=0)


def _warm(name: str) -> str:
    h = zlib.crc32(name.encode())
    return f"rgb({205 + h % 50},{(h >> 8) % 180 + 40},{(h >> 16) % 55})"


def _label(text: str, width: float) -> str:
    fits = int(width / CHAR_WIDTH)
    if fits < 3:
        return ""
    return text if len(text) <= fits else text[: fits - 2] + ".."


def render_svg(
    profile: Profile,
    title: str = "Flame graph",
    colour: Callable[[Stack, int], str] | None = None,
    describe: Callable[[Stack, int], str] | None = None,
) -> str:
    """Render the profile; `colour`/`describe` receive each frame's path and samples."""
    root = _tree(profile)
    depth = _depth(root)
    height = depth * ROW + TITLE_SPACE + PAD * 2
    total = max(root.samples, 1)
    scale = (WIDTH - 2 * PAD) / total
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="Verdana, sans-serif" font-size="{FONT_SIZE}">',
        f'<rect width="{WIDTH}" height="{height}" fill="#f8f8f8"/>',
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="16">{escape(title)}</text>',
    ]

    def draw(node: _Node, path: Stack, x: float, level: int) -> None:
        width = node.samples * scale
        if width < 0.1:
            return
        y = height - PAD - (level + 1) * ROW
        fill = colour(path, node.samples) if colour and path else _warm(node.name)
        share = 100.0 * node.samples / total
        tip = describe(path, node.samples) if describe and path else f"{node.samples} samples, {share:.2f} %"
        parts.append(
            f'<g><title>{escape(node.name)} — {escape(tip)}</title>'
            f'<rect x="{x:.2f}" y="{y}" width="{width:.2f}" height="{ROW - 1}" fill="{fill}" rx="2"/>'
            f'<text x="{x + 3:.2f}" y="{y + ROW - 5}">{escape(_label(node.name, width - 6))}</text></g>'
        )
        child_x = x
        for child in sorted(node.children.values(), key=lambda c: c.name):
            draw(child, (*path, child.name), child_x, level + 1)
            child_x += child.samples * scale

    draw(root, (), PAD, 0)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _path_shares(profile: Profile) -> dict[Stack, float]:
    """Share of samples under every stack prefix."""
    total = max(profile.total, 1)
    shares: dict[Stack, float] = {}
    for stack, count in profile.stacks.items():
        for i in range(1, len(stack) + 1):
            shares[stack[:i]] = shares.get(stack[:i], 0.0) + count / total
    return shares


def render_diff_svg(baseline: Profile, candidate: Profile, title: str = "Differential flame graph") -> str:
    """Sized by the candidate; red where a frame's share grew against the baseline, blue where it shrank."""
    before = _path_shares(baseline)
    after = _path_shares(candidate)
    deltas = {path: after.get(path, 0.0) - before.get(path, 0.0) for path in after}
    largest = max((abs(d) for d in deltas.values()), default=0.0) or 1.0

    def colour(path: Stack, _samples: int) -> str:
        delta = deltas.get(path, 0.0)
        strength = min(abs(delta) / largest, 1.0)
        fade = int(230 - 200 * strength)
        if abs(delta) < 1e-9:
            return "rgb(230,230,230)"
        return f"rgb(255,{fade},{fade})" if delta > 0 else f"rgb({fade},{fade},255)"

    def describe(path: Stack, samples: int) -> str:
        was, now = before.get(path, 0.0) * 100, after.get(path, 0.0) * 100
        return f"{samples} samples, share {was:.2f} % → {now:.2f} % ({now - was:+.2f} points)"

    return render_svg(candidate, title=title, colour=colour, describe=describe)
