"""Benchmark: the notebook pipeline, smoke and full, with per-notebook times.

Targets (issue: notebooks as tested pipelines): smoke pipeline ≤ 3 min and full pipeline on the
embedded data ≤ 10 min on 2 cores. Pass ``--smoke-only`` to skip the full run.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from ojpanel.pipeline import run_pipeline

TARGETS = {"smoke": 180.0, "full": 600.0}


def _run(kind: str, out: Path) -> bool:
    t0 = time.perf_counter()
    res = run_pipeline(out_dir=out / kind, smoke=kind == "smoke", progress=False, html=True)
    total = time.perf_counter() - t0
    print(f"{kind} pipeline:")
    for name, secs in res.timings().items():
        print(f"  {name:<36s} {secs:7.1f} s")
    target = TARGETS[kind]
    print(f"  total {total:.1f} s (target {target:.0f} s; ratio target/measured = {target / total:.1f}x)")
    return total <= target


def main() -> int:
    with tempfile.TemporaryDirectory() as d:
        ok = _run("smoke", Path(d))
        if "--smoke-only" not in sys.argv:
            ok = _run("full", Path(d)) and ok
    print("PASS" if ok else "MISS")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
