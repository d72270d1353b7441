"""Wall time of the demo grid (examples/demo.yaml: MF on ML-100K, 10 cells) with --workers 1 and 2.

Runs `recpoison sweep` as a fresh process per setting, each into an empty run folder, checks that the
stored metrics agree, and prints a table with the speed-up. The machine's other load matters: run it
on an otherwise idle machine for clean numbers.

    python benchmarks/sweep_workers.py [--workers 1 2] [--spec examples/demo.yaml] [--keep DIR]
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--spec", default=str(ROOT / "examples" / "demo.yaml"))
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--keep", help="copy the run folder of each setting to DIR/workers-N")
    args = ap.parse_args()

    from recpoison.experiments.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    rows, metrics = [], {}
    try:
        for n in args.workers:
            run_dir = tmp / f"workers-{n}"
            cmd = [sys.executable, "-m", "recpoison.cli", "sweep", args.spec, "--run-dir", str(run_dir), "--workers", str(n), "--quiet"]
            t0 = time.perf_counter()
            r = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if r.returncode != 0:
                sys.exit(f"workers={n} failed:\n{r.stdout}\n{r.stderr}")
            with Store(run_dir, readonly=True) as st:
                metrics[n] = st.metrics()
                cells = list(st.cells())
            busy = sum(c["seconds"].get("total", 0.0) for c in cells)
            rows.append((n, wall, busy, len(cells)))
            if args.keep:
                dest = Path(args.keep) / f"workers-{n}"
                shutil.rmtree(dest, ignore_errors=True)
                shutil.copytree(run_dir, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def same(a, b):
        return a.keys() == b.keys() and all(
            a[k].keys() == b[k].keys() and all(math.isclose(a[k][m], b[k][m], rel_tol=0, abs_tol=0) or (math.isnan(a[k][m]) and math.isnan(b[k][m])) for m in a[k])
            for k in a
        )

    base = rows[0][1]
    print(f"spec {args.spec}; {os.cpu_count()} CPUs seen; load average {os.getloadavg()[0]:.2f} at the end")
    print(f"{'workers':>7} {'cells':>5} {'wall s':>8} {'cell-s':>8} {'speed-up':>8}")
    for n, wall, busy, cells in rows:
        print(f"{n:>7} {cells:>5} {wall:>8.1f} {busy:>8.1f} {base / wall:>8.2f}")
    first = args.workers[0]
    for n in args.workers[1:]:
        print(f"metrics of workers={n} identical to workers={first}: {same(metrics[first], metrics[n])}")


if __name__ == "__main__":
    main()
