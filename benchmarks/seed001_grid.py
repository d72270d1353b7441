"""Time seed 001's whole Table-1 grid in its own protocol (each target attacked alone) on ML-100K.

Usage: python benchmarks/seed001_grid.py [--workers 2] [--n-targets 10] [--sizes 0.005,0.01,0.03,0.05]
                                         [--attacks none,random,...] [--keep DIR]

Runs ``examples/seed001_table1_each.yaml`` (10 attacks x 4 sizes x 10 targets, MF victim) as a sweep
into a fresh folder (a temporary one unless ``--keep``), with ``--workers`` processes of one thread
each, and prints the wall time of the whole sweep and the attack-stage seconds summed per attack
(from the results store). Options reduce the grid for a quick check; the issue-9 goal is the full
grid under 30 minutes on the 2-core machine. Prints the load average: timings on a loaded machine
are not goals.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from recpoison.experiments.executors import make_executor
from recpoison.experiments.runner import run_sweep
from recpoison.experiments.spec import parse_spec, read_yaml

SPEC = Path(__file__).resolve().parent.parent / "examples" / "seed001_table1_each.yaml"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--n-targets", type=int, default=None)
    ap.add_argument("--sizes", default=None)
    ap.add_argument("--attacks", default=None)
    ap.add_argument("--keep", default=None, help="run folder to keep (default: a temporary one)")
    args = ap.parse_args()
    raw = read_yaml(SPEC)
    if args.n_targets:
        raw["axes"]["n_targets"] = args.n_targets
    if args.sizes:
        raw["axes"]["attack_size"] = [float(s) for s in args.sizes.split(",")]
    if args.attacks:
        raw["axes"]["attack"] = args.attacks.split(",")
        raw["per_attack"] = {a: p for a, p in raw.get("per_attack", {}).items() if a in raw["axes"]["attack"]}
    spec = parse_spec(raw, source=SPEC.name)
    print(f"load average before: {os.getloadavg()[0]:.2f}; {len(spec.cells)} cells, {args.workers} workers")
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(args.keep) if args.keep else Path(tmp) / "run"
        t0 = time.perf_counter()
        summary = run_sweep(spec, run_dir, make_executor("processes" if args.workers > 1 else "inline", args.workers), progress=False)
        wall = time.perf_counter() - t0
        con = sqlite3.connect(run_dir / "results.sqlite")
        per: dict[str, float] = {}
        for params, seconds in con.execute("select params, seconds from cells where status = 'done'"):
            attack = json.loads(params)["attack"]
            per[attack] = per.get(attack, 0.0) + json.loads(seconds).get("attack", 0.0)
        con.close()
    print(f"grid wall time: {wall:.1f} s ({summary.done} cells done, {len(summary.failed)} failed)")
    print("| attack | attack stage, s (summed over cells) |\n| --- | ---: |")
    for a, s in per.items():
        print(f"| {a} | {s:.1f} |")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
