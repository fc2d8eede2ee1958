"""What `pip install rolescope` brings, and what the repository keeps out of git.

The install is resolved for real: a wheel of this checkout goes into a fresh virtual environment
(no system site packages) with `pip install --dry-run --report`, which resolves every dependency
from the package index and installs nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# niquests brings urllib3-future, which takes over the `urllib3` import for every package.
HTTP_STACK_REPLACERS = {"urllib3-future", "niquests"}
TOOL_CACHES = {".schemathesis", ".hypothesis", ".pytest_cache", ".mypy_cache", ".ruff_cache", "__pycache__",
               ".benchmarks", ".import_linter_cache", "htmlcov"}


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _run(command: list[str], timeout: float) -> None:
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stderr[-3000:]}"


@pytest.mark.slow
def test_a_plain_install_leaves_urllib3_alone_and_the_grafana_extra_brings_grafana_client(
    tmp_path: Path,
) -> None:
    wheel_dir = str(tmp_path)
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", wheel_dir, str(REPO)],
         timeout=600)
    wheel = next(tmp_path.glob("rolescope-*.whl"))
    _run([sys.executable, "-m", "venv", str(tmp_path / "venv")], timeout=120)
    report = tmp_path / "report.json"
    _run([str(tmp_path / "venv" / "bin" / "python"), "-m", "pip", "install", "--quiet", "--dry-run",
          "--ignore-installed", "--report", str(report), str(wheel)], timeout=900)
    resolved = {_canonical(item["metadata"]["name"]) for item in json.loads(report.read_text())["install"]}
    assert "rolescope" in resolved and "fastapi" in resolved, sorted(resolved)
    assert resolved.isdisjoint(HTTP_STACK_REPLACERS | {"grafana-client"}), sorted(resolved)

    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(metadata).decode().splitlines()
    requires = [line.removeprefix("Requires-Dist: ") for line in lines if line.startswith("Requires-Dist: ")]
    assert "Provides-Extra: grafana" in lines
    assert any(r.startswith("grafana-client") and 'extra == "grafana"' in r for r in requires), requires
    assert not any(r.startswith("grafana-client") and "extra ==" not in r for r in requires), requires


def test_no_tool_cache_is_tracked_by_git() -> None:
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=False)
    if listed.returncode != 0:
        pytest.skip("not a git checkout")
    tracked = [path for path in listed.stdout.splitlines() if TOOL_CACHES & set(Path(path).parts)]
    assert tracked == [], f"tool caches in git (`git rm --cached` them; .gitignore lists them): {tracked}"
