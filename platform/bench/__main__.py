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

from rolescope.errors import RolescopeError

BENCHMARKS: tuple[str, ...] = (
    "telemetry_cost",
    "load_generator",
    "profiler_overhead",
    "gate_accuracy",
    "session_store",
    "memory_baseline",
    "slo_rules",
    "admission",
    "capture_proxy",
    "capacity_accuracy",
    "peer_agreement",
    "service_overhead",
    "connections",
    "load_generator_ceiling",
    "mirroring",
)
# Run only when named: they install the peer tools (several GB) into their own environments once.
ON_REQUEST: frozenset[str] = frozenset({"peer_agreement", "load_generator_ceiling"})


def _default() -> tuple[str, ...]:
    return tuple(name for name in BENCHMARKS if name not in ON_REQUEST)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rolescope.bench", description=__doc__)
    parser.add_argument(
        "names",
        nargs="*",
        help=f"benchmarks to run (default: all of {', '.join(_default())}; "
        f"only when named: {', '.join(sorted(ON_REQUEST))})",
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke check")
    parser.add_argument("--out", type=Path, default=Path("runs"), help="where to write the JSON figures")
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the figures to this file", metavar="FILE"
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; expected one of {', '.join(BENCHMARKS)}")
    console = Console()
    figures: dict[str, dict[str, float]] = {}
    for name in args.names or _default():
        console.rule(f"[bold]{name}")
        module = importlib.import_module(f"rolescope.bench.{name}")
        try:
            figures[name] = module.run(quick=args.quick)
        except RolescopeError as exc:
            console.print(f"[red]error:[/] {name}: {exc}")
            return exc.exit_code
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
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        console.print(f"figures written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
