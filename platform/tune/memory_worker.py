"""Measure allocations and bytes per request in a separate process: `python -m rolescope.tune.memory_worker`.

memray counts every allocation of every thread in the process it runs in, so
the measurement runs in its own interpreter: the tuning loop's progress display
and load-generator bookkeeping must not be counted as the service's allocations.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# Faults that change timing or failures but not what a request allocates: left out so the
# measurement (which refuses failed requests) stays possible and quick.
_IRRELEVANT_FAULTS = ("error_rate", "added_latency_ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rolescope.tune.memory_worker")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--faults", default="{}", help="JSON object of fault knobs")
    parser.add_argument("--settings", default="{}", help="JSON object of service settings")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--traffic", type=Path, default=None)
    args = parser.parse_args(argv)

    from rolescope.errors import RolescopeError
    from rolescope.memory.baseline import record_baseline
    from rolescope.settings import FaultSettings, Settings

    faults = {k: v for k, v in json.loads(args.faults).items() if k not in _IRRELEVANT_FAULTS}
    try:
        settings = Settings(**json.loads(args.settings), faults=FaultSettings(**faults))
        baseline = record_baseline(
            args.traffic, repeats=args.repeats, warmup=args.warmup, limit=args.limit, settings=settings
        )
    except RolescopeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    baseline.dump(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
