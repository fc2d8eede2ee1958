"""The adapters against rolescope's own service, and the check before any load (real `rolescope serve`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from rolescope.loadtests.runner import LoadOptions, run_load
from rolescope.loadtests.targets.base import TargetOptions
from rolescope.loadtests.targets.preflight import judge_preflight
from rolescope.loadtests.targets.probe import check_target
from rolescope.rundir import RequestSample, read_samples
from rolescope.settings import bundled_roles_path

ServiceFactory = Callable[..., Any]


def _template(name: str) -> Path:
    return Path(str(resources.files("rolescope.loadtests.templates").joinpath(name)))


def _first_pass(run: Path) -> dict[tuple[str, int], RequestSample]:
    firsts: dict[tuple[str, int], RequestSample] = {}
    for sample in sorted(read_samples(run / "samples.jsonl"), key=lambda s: s.start):
        firsts.setdefault((sample.session, sample.turn), sample)
    return firsts


def _only(folder: Path, *names: str) -> Path:
    """A role folder holding only these bundled roles, with a quick simulator."""
    folder.mkdir()
    for name in names:
        role = yaml.safe_load((bundled_roles_path() / f"{name}.yaml").read_text(encoding="utf-8"))
        role["inference"]["simulator"].update({"ttft_ms": 20, "tokens_per_second": 400})
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(role), encoding="utf-8")
    return folder


def _load(url: str, out: Path, target: TargetOptions, traffic: Path) -> Path:
    options = LoadOptions(
        host=url, out=out, traffic=traffic, users=3, speed=100, duration_s=5, user="stream", target=target
    )
    return run_load(options)


def test_template_of_rolescope_reproduces_the_rolescope_protocols_figures(
    tmp_path: Path, service_factory: ServiceFactory, traffic_file: Callable[..., Path]
) -> None:
    svc = service_factory(roles_path=_only(tmp_path / "roles", "sherlock"))
    sessions = {f"s_same{i}": [f"Who rang the bell at {i}?", "And why twice?"] for i in range(3)}
    traffic = traffic_file(sessions)
    native = _first_pass(_load(svc.url, tmp_path / "native", TargetOptions(), traffic))
    template = _first_pass(
        _load(
            svc.url,
            tmp_path / "template",
            TargetOptions(api="template", template=_template("rolescope.yaml")),
            traffic,
        )
    )
    common = set(native) & set(template)
    assert len(common) >= 4
    assert all(native[key].ok and template[key].ok for key in common)
    # The simulator answers the same session history with the same tokens: the figures must agree.
    assert {k: native[k].output_tokens for k in common} == {k: template[k].output_tokens for k in common}
    assert {k: len(native[k].itl_s) for k in common} == {k: len(template[k].itl_s) for k in common}
    assert all(native[key].input_tokens for key in common), "the done event's usage.input_tokens"


def test_openai_adapter_drives_rolescopes_chat_completions(
    tmp_path: Path, service_factory: ServiceFactory, traffic_file: Callable[..., Path]
) -> None:
    svc = service_factory(roles_path=_only(tmp_path / "roles", "sherlock"))
    traffic = traffic_file({"s_oa0": ["Whose is the cane?", "And the dog?"], "s_oa1": ["Is it raining?"]})
    target = TargetOptions(api="openai", roles_path=bundled_roles_path(), history_turns=4)
    samples = list(_first_pass(_load(svc.url, tmp_path / "run", target, traffic)).values())
    assert len(samples) == 3 and all(s.ok for s in samples), [s.error for s in samples]
    assert all(s.output_tokens > 1 and s.ttft_s is not None and len(s.itl_s) >= 1 for s in samples)
    by_turn = {(s.session, s.turn): s.input_tokens or 0 for s in samples}
    # The second turn resends the first turn and its reply: the prompt grows.
    assert by_turn[("s_oa0", 1)] > by_turn[("s_oa0", 0)] > 0 and by_turn[("s_oa1", 0)] > 0
    slis = json.loads((tmp_path / "run" / "slis.json").read_text())
    assert min(by_turn.values()) <= slis["input_tokens_mean"] <= max(by_turn.values())


def test_check_before_load_names_every_role_the_service_does_not_serve(
    tmp_path: Path, service_factory: ServiceFactory
) -> None:
    svc = service_factory(roles_path=_only(tmp_path / "roles", "sherlock"))
    out = tmp_path / "run"
    command = [sys.executable, "-m", "rolescope", "load", "-H", svc.url, "-t", "2s", "--out", str(out)]
    env = {**os.environ, "COLUMNS": "200"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2, result.stderr
    screen = result.stdout + result.stderr
    assert "curie (292 of 873 requests, 33%)" in screen and "grimble (273 of 873 requests, 31%)" in screen
    assert "--roles sherlock" in screen and "nothing was sent" in screen
    assert "Traceback" not in screen and not (out / "samples.jsonl").exists()
    # The same, as the openai protocol sees it: models listed at /v1/models.
    plan, probe = check_target(svc.url, TargetOptions(api="openai"), None, "stream", 10)
    findings = judge_preflight(plan, probe)
    assert [f.severity for f in findings] == ["error"] and "models not served" in findings[0].text
    # Mapped to the one role served, nothing is left to complain about.
    mapped = TargetOptions(role_map={"sherlock": "sherlock", "curie": "sherlock", "grimble": "sherlock"})
    assert judge_preflight(*check_target(svc.url, mapped, None, "replay", 10)) == []


def test_check_before_load_says_the_key_was_refused_or_missing(
    tmp_path: Path, service_factory: ServiceFactory, monkeypatch: Any
) -> None:
    keys = tmp_path / "keys.txt"
    keys.write_text("right-key-0123456789\n")
    svc = service_factory(
        roles_path=_only(tmp_path / "roles", "sherlock"), extra_args=["--api-keys-file", str(keys)]
    )
    only_sherlock = TargetOptions(role_map={"sherlock": "sherlock"})
    monkeypatch.delenv("ROLESCOPE_LOAD_API_KEY", raising=False)
    missing = judge_preflight(*check_target(svc.url, only_sherlock, None, "stream", 10))
    assert [f.text for f in missing] == [
        "the target wants an API key (HTTP 401) and none was sent: put it in $ROLESCOPE_LOAD_API_KEY "
        "(or name another variable with --api-key-env)"
    ]
    monkeypatch.setenv("ROLESCOPE_LOAD_API_KEY", "wrong-key-0123456789")
    wrong = judge_preflight(*check_target(svc.url, only_sherlock, None, "stream", 10))
    assert [f.text for f in wrong] == [
        "the target refused the API key from $ROLESCOPE_LOAD_API_KEY (HTTP 401)"
    ]
    monkeypatch.setenv("ROLESCOPE_LOAD_API_KEY", "right-key-0123456789")
    assert judge_preflight(*check_target(svc.url, only_sherlock, None, "stream", 10)) == []
