"""The Dockerfile the chart runs (no container engine here, so its promises are read, not built)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _stages() -> dict[str, str]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    parts = re.split(r"^FROM .* AS (\w+)$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_the_image_is_multi_stage_with_no_build_tools_in_the_runtime_stage() -> None:
    stages = _stages()
    assert list(stages) == ["build", "runtime"]
    assert "build-essential" in stages["build"]
    for tool in ("build-essential", "gcc", "pip install", "git"):
        assert tool not in stages["runtime"], tool
    assert "COPY --from=build /opt/venv /opt/venv" in stages["runtime"]


def test_the_runtime_runs_as_the_non_root_uid_the_chart_expects() -> None:
    runtime = _stages()["runtime"]
    users = re.findall(r"^USER (\S+)$", runtime, flags=re.MULTILINE)
    assert users == ["10001:10001"]
    values = (ROOT / "helm/rolescope/values.yaml").read_text(encoding="utf-8")
    assert "runAsUser: 10001" in values


def test_the_image_holds_what_the_chart_runs() -> None:
    runtime = _stages()["runtime"]
    assert 'ENTRYPOINT ["rolescope"]' in runtime  # the chart's server args start with `serve`
    assert "/app/loadtests/locustfile.py" in runtime  # the Locust master and workers run it
    assert (ROOT / "loadtests/locustfile.py").is_file()
    assert "PYTHONDONTWRITEBYTECODE=1" in runtime  # read-only root filesystem


def test_the_build_context_keeps_what_pip_install_needs() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for needed in ("pyproject.toml", "setup.py", "README.md", "platform", "loadtests", "examples"):
        assert needed not in ignored
    assert {".git", "tests", "runs"} <= ignored
