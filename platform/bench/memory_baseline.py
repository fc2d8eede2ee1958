"""How long `baseline record` takes on the bundled traffic, and how reproducible its counts are.

Runs the committed baseline's recipe (`record_baseline()` defaults: the first
120 requests of the bundled traffic, 30 warm-up requests, 3 repeats) and
reports its wall time as a share of the 60 s budget, and the run-to-run spread
of allocations and bytes per request ((max - min) / median over the repeats).
Targets: time share < 1.0, allocation spread < 1 %.

    python -m rolescope.bench.memory_baseline [--quick]
"""

from __future__ import annotations

import sys
import time

BUDGET_S = 60.0


def run(quick: bool = False) -> dict[str, float]:
    from rolescope.memory.baseline import DEFAULT_LIMIT, record_baseline

    started = time.perf_counter()
    baseline = record_baseline(limit=60 if quick else DEFAULT_LIMIT, progress=print)
    elapsed = time.perf_counter() - started
    figures = {"baseline_record_budget_share": elapsed / BUDGET_S}
    for kind, fig in baseline.kinds.items():
        figures[f"{kind}_allocations_spread_pct"] = fig.allocations_spread_pct
        figures[f"{kind}_bytes_spread_pct"] = fig.bytes_spread_pct
    share = figures["baseline_record_budget_share"]
    print(f"baseline record: {elapsed:.1f} s = {share:.2f} of the 60 s budget")
    for kind, fig in baseline.kinds.items():
        print(f"{kind}: {fig.allocations_per_request:,.0f} allocs/request "
              f"(spread {fig.allocations_spread_pct:.3f} %), "
              f"{fig.bytes_per_request:,.0f} bytes/request (spread {fig.bytes_spread_pct:.3f} %)")
    return figures


if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
