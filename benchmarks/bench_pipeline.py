"""Benchmark: the notebook pipeline cold, warm (nothing changed) and after changing one notebook.

Targets (issue 20, on a quiet 2-core machine): a cold full run ≤ 3 min, an unchanged re-run
≤ 10 s, and a run after changing one notebook about that notebook's own time. The three runs
share one output directory and a copy of ``notebooks/`` (the change, a comment appended to one
code cell, is made in the copy), and are printed side by side, notebook by notebook.

    python benchmarks/bench_pipeline.py [--smoke] [--jobs N] [--change 02]
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import nbformat

from ojpanel.pipeline import PipelineResult, default_jobs, discover, run_pipeline
from ojpanel.pipeline.runner import default_notebooks_dir

TARGETS = {"full": {"cold": 180.0, "warm": 10.0}, "smoke": {"cold": 180.0, "warm": 10.0}}
#: The one-changed run may exceed the changed notebook's cold time by this factor (scheduling,
#: checking the other notebooks' entries, starting a kernel again).
CHANGED_SLACK = 1.25


def _timed(**kw) -> tuple[PipelineResult, float]:
    t0 = time.perf_counter()
    res = run_pipeline(progress=False, **kw)
    return res, time.perf_counter() - t0


def _touch(nb_path: Path) -> None:
    """Change one notebook without changing what it computes: a comment in its last code cell."""
    nb = nbformat.read(str(nb_path), as_version=4)
    cell = [c for c in nb.cells if c.cell_type == "code"][-1]
    cell.source += "\n# benchmark: this notebook was edited"
    nbformat.write(nb, str(nb_path))


def _cell(res: PipelineResult, name: str) -> str:
    run = next((r for r in res.runs if r.name == name), None)
    if run is None:
        return "-"
    return "cached" if run.cached else f"{run.seconds:.1f} s"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="smoke-size notebooks (as in CI)")
    ap.add_argument("--jobs", type=int, default=None, help=f"workers (default: {default_jobs()})")
    ap.add_argument("--change", default="02", help="the notebook to change for the third run (stem or number)")
    args = ap.parse_args()
    size = "smoke" if args.smoke else "full"
    with tempfile.TemporaryDirectory() as d:
        nbs = Path(d) / "notebooks"
        shutil.copytree(default_notebooks_dir(), nbs)
        changed = discover(nbs, select=[args.change])[0]
        common = {"notebooks_dir": nbs, "out_dir": Path(d) / "out", "smoke": args.smoke, "jobs": args.jobs}
        cold, t_cold = _timed(force=True, **common)
        warm, t_warm = _timed(**common)
        _touch(changed)
        one, t_one = _timed(**common)

    names = [r.name for r in cold.runs]
    width = max(map(len, names)) + 2
    print(f"notebook pipeline ({size}, {cold.jobs} worker(s)); one changed: {changed.stem}")
    print(f"  {'notebook':<{width}}{'cold':>10}{'warm':>10}{'one changed':>14}")
    for n in names:
        print(f"  {n:<{width}}{_cell(cold, n):>10}{_cell(warm, n):>10}{_cell(one, n):>14}")
    serial = sum(cold.timings().values())
    print(f"  {'wall time':<{width}}{t_cold:>8.1f} s{t_warm:>8.1f} s{t_one:>12.1f} s")
    print(f"  (cold: the notebooks' own times add up to {serial:.1f} s; parallel speed-up {serial / t_cold:.2f}x)")

    own = cold.timings()[changed.stem]
    checks = [
        ("cold run", t_cold, TARGETS[size]["cold"]),
        ("unchanged re-run", t_warm, TARGETS[size]["warm"]),
        (f"after changing {changed.stem} (its cold time {own:.1f} s)", t_one, CHANGED_SLACK * own + t_warm),
    ]
    ok = True
    for label, measured, target in checks:
        print(f"  {label}: {measured:.1f} s, target {target:.1f} s, ratio target/measured {target / measured:.2f}x")
        ok = ok and measured <= target
    if not (warm.cached == names and one.cached == [n for n in names if n != changed.stem]):
        print("  the warm run did not take every notebook from the cache, or the one-changed run re-ran others")
        ok = False
    print("PASS" if ok else "MISS")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
