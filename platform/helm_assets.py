"""Keeps the Helm chart's copies of generated assets and its golden rendered output up to date.

Helm can only read files inside the chart, so the generated Grafana dashboards,
the generated Prometheus rules and the example roles are copied under
`helm/rolescope/files/`. The golden output under `tests/helm/golden/` is the
chart rendered with its default values and with each `ci/*-values.yaml`, with
the chart version normalised so a version bump alone does not churn it.

    python -m rolescope.helm_assets            # copy assets, rewrite golden files
    python -m rolescope.helm_assets --check    # exit 1 if anything is out of date

`make golden` runs the first form after regenerating rules and dashboards.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHART = Path("helm/rolescope")
GOLDEN = Path("tests/helm/golden")
RELEASE_NAME = "demo"
RELEASE_NAMESPACE = "rolescope"
VERSION_PLACEHOLDER = "CHART_VERSION"


@dataclass(frozen=True, slots=True)
class AssetSet:
    """One folder of source files mirrored into the chart."""

    source_dir: Path
    pattern: str
    chart_dir: Path


ASSET_SETS: tuple[AssetSet, ...] = (
    AssetSet(Path("dashboards"), "*.json", CHART / "files/dashboards"),
    AssetSet(Path("alerts/generated"), "*.yaml", CHART / "files/rules"),
    AssetSet(Path("examples"), "*.yaml", CHART / "files/roles"),
)


def expected_assets(root: Path) -> dict[Path, bytes]:
    """Every chart copy (relative to root) with the bytes it must hold."""
    wanted: dict[Path, bytes] = {}
    for asset in ASSET_SETS:
        for source in sorted((root / asset.source_dir).glob(asset.pattern)):
            wanted[asset.chart_dir / source.name] = source.read_bytes()
    return wanted


def stale_assets(root: Path) -> list[str]:
    """What differs between the sources and the chart's copies (empty when in step)."""
    wanted = expected_assets(root)
    problems: list[str] = []
    for asset in ASSET_SETS:
        present = {p.relative_to(root) for p in (root / asset.chart_dir).glob(asset.pattern)}
        expected_here = {p for p in wanted if p.parent == asset.chart_dir}
        problems += [f"{p} has no source in {asset.source_dir}" for p in sorted(present - expected_here)]
        problems += [f"{p} is missing" for p in sorted(expected_here - present)]
    problems += [
        f"{p} differs from its source"
        for p, data in wanted.items()
        if (root / p).exists() and (root / p).read_bytes() != data
    ]
    return problems


def sync_assets(root: Path) -> list[str]:
    """Copy the sources into the chart and delete copies whose source is gone; returns the changes."""
    changes = stale_assets(root)
    wanted = expected_assets(root)
    for asset in ASSET_SETS:
        (root / asset.chart_dir).mkdir(parents=True, exist_ok=True)
        for copy in (root / asset.chart_dir).glob(asset.pattern):
            if copy.relative_to(root) not in wanted:
                copy.unlink()
    for relative, data in wanted.items():
        target = root / relative
        if not target.exists() or target.read_bytes() != data:
            target.write_bytes(data)
    return changes


# --- rendering -------------------------------------------------------------------------------------


def values_files(root: Path) -> dict[str, Path | None]:
    """The golden cases: default values, then every ci/*-values.yaml, by name."""
    cases: dict[str, Path | None] = {"default": None}
    for path in sorted((root / CHART / "ci").glob("*-values.yaml")):
        cases[path.name.removesuffix("-values.yaml")] = path
    return cases


def load_values(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    return dict(loaded or {})


def render(root: Path, values: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Render the chart offline: template path -> manifest text (empty templates dropped)."""
    import helm_python

    with helm_python.Chart.load(root / CHART) as chart:
        rendered = chart.render(dict(values or {}), name=RELEASE_NAME, namespace=RELEASE_NAMESPACE)
    return {path: text for path, text in sorted(rendered.items()) if text.strip()}


def render_documents(root: Path, values: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every Kubernetes object the chart renders (NOTES.txt excluded)."""
    documents: list[dict[str, Any]] = []
    for path, text in render(root, values).items():
        if path.endswith("NOTES.txt"):
            continue
        documents += [doc for doc in yaml.safe_load_all(text) if doc]
    return documents


def chart_version(root: Path) -> str:
    metadata = yaml.safe_load((root / CHART / "Chart.yaml").read_text(encoding="utf-8"))
    return str(metadata["version"])


def normalise(text: str, version: str) -> str:
    """Replace the chart version (the `helm.sh/chart` label) with a placeholder."""
    return re.sub(rf"\brolescope-{re.escape(version)}\b", f"rolescope-{VERSION_PLACEHOLDER}", text)


_GENERATED_MARK = 'rolescope.dev/generated-api-key: "true"'
_SECRET_VALUE = re.compile(r'^(  (?:load-)?api-keys?: )"[^"]*"$', re.MULTILINE)


def golden_text(root: Path, values_path: Path | None) -> str:
    """The golden file for one case: every rendered template, in path order, normalised."""
    version = chart_version(root)
    parts = []
    for path, text in render(root, load_values(values_path)).items():
        body = normalise(text.strip("\n"), version)
        # A generated API key is random on every render; its shape is what is pinned.
        if _GENERATED_MARK in body:
            body = _SECRET_VALUE.sub(r'\1"<generated>"', body)
        parts.append(f"# Source: {path}\n{body}\n")
    header = "# DO NOT EDIT: rendered by `make golden` (python -m rolescope.helm_assets).\n"
    return header + "---\n".join(parts)


def golden_path(root: Path, case: str) -> Path:
    return root / GOLDEN / f"{case}.yaml"


def write_golden(root: Path) -> list[str]:
    """Rewrite every golden file and remove those of deleted ci values; returns the changed names."""
    cases = values_files(root)
    (root / GOLDEN).mkdir(parents=True, exist_ok=True)
    changed: list[str] = []
    for stale in (root / GOLDEN).glob("*.yaml"):
        if stale.stem not in cases:
            stale.unlink()
            changed.append(stale.name)
    for case, values_path in cases.items():
        target = golden_path(root, case)
        text = golden_text(root, values_path)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.write_text(text, encoding="utf-8")
            changed.append(target.name)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rolescope.helm_assets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root (default: .)")
    parser.add_argument("--check", action="store_true", help="report what is out of date, change nothing")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    if not (root / CHART / "Chart.yaml").is_file():
        print(f"error: {root / CHART / 'Chart.yaml'} not found; run from the repository root or pass --root",
              file=sys.stderr)
        return 2
    if args.check:
        problems = stale_assets(root)
        problems += [
            f"{golden_path(root, case).relative_to(root)} is out of date"
            for case, path in values_files(root).items()
            if not golden_path(root, case).exists()
            or golden_path(root, case).read_text(encoding="utf-8") != golden_text(root, path)
        ]
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    for change in sync_assets(root):
        print(f"chart asset: {change}")
    for name in write_golden(root):
        print(f"golden: {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
