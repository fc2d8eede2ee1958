"""Run rolescope's benchmarks: `python -m rolescope.bench [NAME…] [--quick]`.

Each benchmark module exposes `run(quick: bool = False) -> dict[str, float]`,
prints its own figures as it goes, and returns them; this runner prints a
final table and writes `runs/bench-<timestamp>.json` so the README's figures
can be traced to a run.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

BENCHMARKS: tuple[str, ...] = (
    "telemetry_cost",
    "load_generator",
    "profiler_overhead",
    "gate_accuracy",
    "session_store",
    "memory_baseline",
    "slo_rules",
    "admission",
    "mirroring",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rolescope.bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})"
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="where to write the JSON figures")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; expected one of {', '.join(BENCHMARKS)}")
    console = Console()
    figures: dict[str, dict[str, float]] = {}
    for name in args.names or BENCHMARKS:
        console.rule(f"[bold]{name}")
        module = importlib.import_module(f"rolescope.bench.{name}")
        figures[name] = module.run(quick=args.quick)
    table = Table(title="rolescope benchmarks")
    table.add_column("benchmark")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, values in figures.items():
        for key, value in values.items():
            table.add_row(name, key, f"{value:.4g}")
    console.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(figures, indent=2) + "\n")
    console.print(f"figures written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
