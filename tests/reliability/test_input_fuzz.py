"""Hypothesis on the files rolescope reads: role YAML, shadow-traffic JSONL and the SLO spec.

Whatever the bytes, loading ends in a parsed object or a ConfigError naming the file — never
another exception — and nothing is written anywhere (checked on the working directory and the
folder holding the input).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rolescope.alerts.spec import load_slo_spec
from rolescope.errors import ConfigError
from rolescope.loadtests.traffic_format import read_traffic
from rolescope.roles import load_role_file
from rolescope.settings import bundled_roles_path

EXAMPLES = 100
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
Mutation = tuple[list[int], Any, bool]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=True),
    st.text(max_size=40), st.sampled_from(["", "-1", "1e309", "NaN", "../../etc/passwd", "\x00", "*" * 200]),
)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=12), inner, max_size=5)), max_leaves=20)
yaml_noise = st.one_of(
    st.text(max_size=400),
    st.sampled_from([
        "!!python/object/apply:os.system ['touch pwned']", "a: &a [*a]", "? [a, b]\n: c", "%YAML 9.9\n---\n",
        "key: !!binary AAAA", "---\n...\n---", "{{{{", "\t- tab", "name: [unterminated",
    ]),
)


def mutate(document: Any, path: list[Any], value: Any, delete: bool) -> Any:
    """The document with the node at `path` (as far as it exists) replaced by `value`, or deleted."""
    if not path or not isinstance(document, dict | list) or not document:
        return value
    key = path[0]
    if isinstance(document, dict):
        chosen = list(document)[key % len(document)]
        copy = dict(document)
        if delete and len(path) == 1:
            del copy[chosen]
        else:
            copy[chosen] = mutate(document[chosen], path[1:], value, delete)
        return copy
    index = key % len(document)
    items = list(document)
    items[index] = mutate(items[index], path[1:], value, delete)
    return items


mutations = st.tuples(st.lists(st.integers(0, 50), min_size=1, max_size=4), values, st.booleans())


def tree(*folders: Path) -> set[str]:
    return {str(p) for folder in folders for p in folder.rglob("*")}


def load_cleanly(load: Callable[[Path], Any], path: Path, workdir: Path) -> None:
    before = tree(workdir, path.parent)
    try:
        load(path)
    except ConfigError as exc:
        assert str(exc), "a ConfigError must say what is wrong"
    assert tree(workdir, path.parent) == before, "loading wrote something"
    assert not Path("pwned").exists()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    previous = Path.cwd()
    os.chdir(cwd)
    yield cwd  # type: ignore[misc]
    os.chdir(previous)


SHERLOCK = yaml.safe_load((bundled_roles_path() / "sherlock.yaml").read_text())


@FUZZ
@given(mutation=mutations)
def test_mutated_role_files_load_or_fail_cleanly(mutation: Mutation, workdir: Path) -> None:
    path = workdir.parent / "roles" / "role.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(mutate(SHERLOCK, *mutation), allow_unicode=True))
    load_cleanly(lambda p: load_role_file(p, root=p.parent), path, workdir)


@FUZZ
@given(text=yaml_noise)
def test_arbitrary_role_text_loads_or_fails_cleanly(text: str, workdir: Path) -> None:
    path = workdir.parent / "roles" / "role.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    load_cleanly(lambda p: load_role_file(p, root=p.parent), path, workdir)


@FUZZ
@given(lines=st.lists(st.one_of(st.text(max_size=200), values.map(json.dumps)), max_size=6))
def test_arbitrary_traffic_files_read_or_fail_cleanly(lines: list[str], workdir: Path) -> None:
    path = workdir.parent / "traffic" / "shadow.jsonl"
    path.parent.mkdir(exist_ok=True)
    path.write_text("\n".join(line.replace("\n", " ") for line in lines))
    load_cleanly(read_traffic, path, workdir)


@FUZZ
@given(mutation=mutations)
def test_mutated_traffic_records_read_or_fail_cleanly(mutation: Mutation, workdir: Path) -> None:
    valid = json.loads(read_traffic()[0].model_dump_json())
    path = workdir.parent / "traffic" / "shadow.jsonl"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(mutate(valid, *mutation), default=str) + "\n")
    load_cleanly(read_traffic, path, workdir)


@FUZZ
@given(mutation=mutations)
def test_mutated_slo_specs_load_or_fail_cleanly(mutation: Mutation, workdir: Path) -> None:
    spec = yaml.safe_load(Path(str(bundled_slo_path())).read_text())
    path = workdir.parent / "slo" / "slo.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(mutate(spec, *mutation), allow_unicode=True))
    load_cleanly(load_slo_spec, path, workdir)


@FUZZ
@given(text=yaml_noise)
def test_arbitrary_slo_text_loads_or_fails_cleanly(text: str, workdir: Path) -> None:
    path = workdir.parent / "slo" / "slo.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    load_cleanly(load_slo_spec, path, workdir)


def bundled_slo_path() -> Path:
    from importlib import resources

    return Path(str(resources.files("rolescope.alerts").joinpath("slo.yaml")))
