"""Time RVD (seed 004 Algorithm 1) over every ML-100K user, and the per-user inference time.

Usage: OMP_NUM_THREADS=1 python benchmarks/rvd.py [--victims mf,mf-wu,autorec,cdae,nsvd] [--loop-users 50]

For each victim (default settings, leave-one-out training part of ML-100K, seed 0): the fit time,
the top-10 lists of all 943 users plain and through RVD (k from seed 004 Table 2), and for MF the
per-user loop on ``--loop-users`` users beside the batched closed form (the same scores: tested in
tests/test_defenses_rvd.py). Issue 13's goal: RVD over all ML-100K users on MF in under 30 s on the
2-core machine. Prints the load average: timings on a loaded machine are not goals.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from recpoison import datasets, defenses, victims
from recpoison.seeding import derive_rng
from recpoison.splits import leave_one_out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--victims", default="mf")
    ap.add_argument("--loop-users", type=int, default=50)
    args = ap.parse_args()
    train = leave_one_out(datasets.load("ml-100k"), derive_rng(0, "split")).train
    users = np.arange(train.n_normal)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    print("| victim | fit (s) | k | method | top-10 plain, all users (s) | top-10 RVD, all users (s) | RVD ms per user | loop ms per user (users) |")
    print("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |")
    for name in args.victims.split(","):
        t = time.perf_counter()
        model = victims.make(name).fit(train)
        fit = time.perf_counter() - t
        t = time.perf_counter()
        model.recommend(users, 10)
        plain = time.perf_counter() - t
        rvd = defenses.make("rvd").attach(model)
        t = time.perf_counter()
        rvd.recommend(users, 10)
        defended = time.perf_counter() - t
        loop = ""
        if rvd.method_ == "batched" and args.loop_users:
            lp = defenses.make("rvd", method="loop").attach(model)
            t = time.perf_counter()
            lp.recommend(users[: args.loop_users], 10)
            loop = f"{1e3 * (time.perf_counter() - t) / args.loop_users:.1f} ({args.loop_users})"
        print(f"| {name} | {fit:.2f} | {rvd.k_} | {rvd.method_} | {plain:.3f} | {defended:.2f} | {1e3 * defended / len(users):.2f} | {loop} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
