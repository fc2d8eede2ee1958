"""Collapsed stacks, the function table, speedscope, flame graphs and the profile comparison (pure)."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET

import pytest

from rolescope.profiling.collapsed import (
    Profile,
    format_collapsed,
    function_table,
    merge,
    parse_collapsed,
)
from rolescope.profiling.compare import benjamini_hochberg, compare_profiles
from rolescope.profiling.flamegraph import render_diff_svg, render_svg
from rolescope.profiling.speedscope import to_speedscope

SVG = "{http://www.w3.org/2000/svg}"


def test_parse_joins_a_process_frame_split_by_a_newline_and_drops_its_pid() -> None:
    text = (
        'process 9218:"python -c \nimport x";<module> (<string>:1);run (subprocess.py:506) 3\n'
        'process 9218:"python -c \nimport x";process 9223:"python spin.py";leaf (spin.py:2) 170\n'
    )
    profile = parse_collapsed(text)
    assert profile.total == 173
    assert ('process:"python -c import x"', 'process:"python spin.py"', "leaf (spin.py:2)") in profile.stacks


def test_format_round_trips() -> None:
    profile = Profile({("a (m.py:1)", "b (m.py:5)"): 4, ("a (m.py:1)",): 2})
    assert parse_collapsed(format_collapsed(profile)).stacks == profile.stacks


def test_function_table_counts_self_and_total_once_per_stack_even_when_recursive() -> None:
    profile = Profile({("main", "walk", "walk", "leaf"): 6, ("main", "walk"): 2, ("main",): 2})
    rows = {r.function: r for r in function_table(profile)}
    assert rows["walk"].total_samples == 8  # not 14: recursion counts a stack once
    assert rows["walk"].self_share == pytest.approx(0.2)
    assert rows["leaf"].self_share == pytest.approx(0.6)
    assert rows["main"].total_share == pytest.approx(1.0)
    assert function_table(profile)[0].function == "leaf"


def test_speedscope_document_weights_every_stack() -> None:
    profile = Profile({("main (app.py:1)", "work (app.py:9)"): 5, ("main (app.py:1)",): 1})
    doc = json.loads(json.dumps(to_speedscope(profile)))
    frames = doc["shared"]["frames"]
    sampled = doc["profiles"][0]
    assert sampled["type"] == "sampled" and sampled["endValue"] == 6
    assert sorted(sampled["weights"]) == [1, 5]
    names = [[frames[i]["name"] for i in stack] for stack in sampled["samples"]]
    assert ["main", "work"] in names
    assert {"name": "work", "file": "app.py", "line": 9} in frames


def test_flame_graph_is_valid_svg_with_one_box_per_frame_path() -> None:
    profile = Profile({("main", "a", "x"): 3, ("main", "b"): 1})
    root = ET.fromstring(render_svg(profile, title="t"))
    titles = [t.text or "" for t in root.iter(f"{SVG}title")]
    assert len(titles) == 5  # all, main, a, x, b
    assert any(t.startswith("x — 3 samples, 75.00 %") for t in titles)


def test_differential_flame_graph_colours_growth_red_and_shrinkage_blue() -> None:
    before = Profile({("main", "grows"): 1, ("main", "shrinks"): 9})
    after = Profile({("main", "grows"): 9, ("main", "shrinks"): 1})
    root = ET.fromstring(render_diff_svg(before, after))
    fills = {}
    for group in root.iter(f"{SVG}g"):
        name = (group.find(f"{SVG}title").text or "").split(" — ")[0]  # type: ignore[union-attr]
        fills[name] = group.find(f"{SVG}rect").get("fill")  # type: ignore[union-attr]
    assert fills["grows"].startswith("rgb(255,")
    assert fills["shrinks"].endswith(",255)")


def _runs(hot_share: float, n: int, seed: int, samples: int = 400) -> list[Profile]:
    """Runs of a made-up service: a hot function at `hot_share`, the rest spread over six others."""
    rng = random.Random(seed)
    others = [f"f{i}" for i in range(6)]
    runs = []
    for _ in range(n):
        counts: dict[tuple[str, ...], int] = {}
        for _ in range(samples):
            leaf = "hot" if rng.random() < hot_share else rng.choice(others)
            key = ("main", "handle", leaf)
            counts[key] = counts.get(key, 0) + 1
        counts[("main", "rare")] = rng.randint(0, 2)  # below min_share: must never rank
        runs.append(Profile({k: v for k, v in counts.items() if v}))
    return runs


def test_compare_ranks_the_function_that_grew_first_and_ignores_noise() -> None:
    diff = compare_profiles(_runs(0.05, 6, seed=1), _runs(0.40, 6, seed=2))
    first = diff.changes[0]
    assert first.function == "hot" and first.significant and first.direction == "grew"
    assert first.q_value is not None and first.q_value < 0.05
    assert all(c.function != "rare" for c in diff.changes)
    # The others each lost share; nothing else may be reported as grown.
    assert [c.function for c in diff.grew] == ["hot"]


def test_compare_finds_nothing_between_runs_of_the_same_service() -> None:
    diff = compare_profiles(_runs(0.2, 6, seed=3), _runs(0.2, 6, seed=4))
    assert diff.grew == [] and diff.shrank == []


def test_compare_with_one_run_a_side_ranks_by_size_without_claiming_significance() -> None:
    diff = compare_profiles(_runs(0.05, 1, seed=5), _runs(0.5, 1, seed=6))
    assert diff.changes[0].function == "hot"
    assert not any(c.significant for c in diff.changes) and diff.note
    assert json.loads(json.dumps(diff.to_dict()))["changes"][0]["p_value"] is None


def test_compare_refuses_empty_sides() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        compare_profiles([Profile({})], _runs(0.1, 2, seed=7))


def test_benjamini_hochberg_matches_the_textbook_step_up() -> None:
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.0533333, 0.0533333, 0.5])


def test_merge_adds_counts() -> None:
    merged = merge([Profile({("a",): 1}), Profile({("a",): 2, ("b",): 1})])
    assert merged.stacks == {("a",): 3, ("b",): 1}
