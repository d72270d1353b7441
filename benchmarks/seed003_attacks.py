"""Time seed 003's optimised attacks (``rapu-r``, ``revadv``, ``rapu-g``) on ML-100K, implicit, at 3%
controlled users (28), the 5 fixed targets of seed 003's code, ``n_filler`` proxies, one thread.
Seed 003 claims RAPU-R is over 10x faster than RevAdv (§5.2.1). Prints wall and CPU time per attack
and the load average (timings on a loaded machine are not goals; CPU time is the fairer figure then).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/seed003_attacks.py [--attacks rapu-r,revadv,rapu-g]
        [--n-filler 100] [--size 0.03] [key=value ...]   # key=value: parameters of every attack timed
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from recpoison import attacks, datasets


def parse_value(v: str):
    low = v.lower()
    if low in ("true", "false", "none"):
        return {"true": True, "false": False, "none": None}[low]
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--attacks", default="rapu-r,revadv,rapu-g")
    ap.add_argument("--n-filler", type=int, default=100)
    ap.add_argument("--size", type=float, default=0.03)
    ap.add_argument("params", nargs="*", help="attack parameters key=value")
    args = ap.parse_args()
    params = dict(kv.split("=", 1) for kv in args.params)
    params = {k: parse_value(v) for k, v in params.items()}
    view = datasets.load("ml-100k").to_implicit()
    targets = np.array([1018, 946, 597, 575, 516])
    n_fake = int(round(args.size * view.n_users))
    print(f"load average before: {os.getloadavg()[0]:.2f}; {view.n_users} users, {view.n_items} items, {n_fake} fake users, "
          f"{args.n_filler} proxies")
    print("| attack | wall (s) | CPU (s) | clicks per fake user |\n| --- | ---: | ---: | --- |")
    for name in args.attacks.split(","):
        a = attacks.make(name, **params)
        w0, c0 = time.perf_counter(), time.process_time()
        fake = a.generate(view, targets, n_fake, args.n_filler, np.random.default_rng(0))
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        clicks = np.unique(np.diff(fake.matrix.indptr))
        print(f"| {name} | {wall:.1f} | {cpu:.1f} | {clicks.min()}-{clicks.max()} |", flush=True)
        if name == "rapu-g":
            print(f"  rapu-g: best surrogate TargetHR@{a.config.k} {a.best_hr_:.4f} over {len(a.history_)} outer iterations")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
