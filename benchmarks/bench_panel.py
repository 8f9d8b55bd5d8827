"""Benchmark: build the panel from all embedded values (all KPIs, all years, ~1.4 M rows).

Target (issue: foundation): ≤ 10 s and ≤ 2 GB peak memory on a 2-core machine. The build runs in a
fresh subprocess so that the peak resident memory measured is the build's own.
"""

from __future__ import annotations

import json
import subprocess
import sys

TARGET_SECONDS = 10.0
TARGET_PEAK_MB = 2048.0

CHILD = r"""
import json, resource, time
t0 = time.perf_counter()
import ojpanel
from ojpanel.data.embedded import load_embedded_values
t_import = time.perf_counter() - t0
t1 = time.perf_counter()
frame = load_embedded_values()
ds = ojpanel.from_tidy(frame, source="embedded")
t_build = time.perf_counter() - t1
peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rows": len(frame), "dims": dict(ds.sizes), "seconds": t_build,
                  "import_seconds": t_import, "peak_mb": peak_mb}))
"""


def main() -> int:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"rows read: {r['rows']:,}; panel dims: {r['dims']}")
    print(f"build time: {r['seconds']:.2f} s (target {TARGET_SECONDS:.0f} s; ratio target/measured = "
          f"{TARGET_SECONDS / r['seconds']:.1f}x); import {r['import_seconds']:.2f} s")
    print(f"peak memory: {r['peak_mb']:.0f} MB (target {TARGET_PEAK_MB:.0f} MB; ratio = "
          f"{TARGET_PEAK_MB / r['peak_mb']:.1f}x)")
    ok = r["seconds"] <= TARGET_SECONDS and r["peak_mb"] <= TARGET_PEAK_MB
    print("PASS" if ok else "MISS")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
