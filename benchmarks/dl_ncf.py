"""Time the dl-ncf attack (Huang et al. NDSS 2021) on ML-100K: one cell's attack stage.

Usage: OMP_NUM_THREADS=1 python benchmarks/dl_ncf.py [--sizes 0.01,0.05] [--user-batch 32]
       OMP_NUM_THREADS=1 python benchmarks/dl_ncf.py --overlap   # batched vs per-user fillers (planted data)

Generates the fake users of one target with the default settings (NeuMF surrogate, 20
pre-training epochs with validation-based epoch selection, 2 warm epochs per further fake user, 5
poison rounds) and prints, for each attack size, the wall time at which its last fake user was
finished (the attack is prefix-stable: one run of the largest size holds every smaller size's run),
the time per fake user and the surrogate's target HR@10 after that user's poison training. Goals (issue 11): 1% (9 fake users) under 10 minutes, 5% (47) under 30
minutes on the 2-core machine. Prints the load average: timings on a loaded machine are not goals.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from recpoison import attacks, datasets
from recpoison.seeding import derive_rng
from recpoison.splits import leave_one_out


def overlap() -> None:
    """Shared fillers of the batched and the per-user (reference) poison steps, against the shared
    fillers of two runs that differ only in the seed (docs/seed000_002.md)."""
    from recpoison.testing import planted_blocks

    view = planted_blocks(seed=5)
    t = np.argsort(view.item_counts(), kind="stable")[:1]
    params = {"pretrain_epochs": 10, "warm_epochs": 2, "rounds": 5, "batch_size": 256}
    runs = {}
    for ub, seed in [(1, 0), (1, 1), (256, 0), (256, 1), (32, 0)]:
        a = attacks.make("dl-ncf", **params, user_batch=ub)
        t0 = time.perf_counter()
        runs[(ub, seed)] = a.generate(view, t, 6, 10, np.random.default_rng(seed)).matrix
        print(f"user_batch {ub}, seed {seed}: {time.perf_counter() - t0:.1f} s", flush=True)

    def shared(a, b):
        return np.mean([len(set(a[i].indices) & set(b[i].indices) - set(t)) / 10 for i in range(a.shape[0])])

    print("| pair | shared fillers |\n| --- | ---: |")
    for name, x, y in [("batched (256) vs per-user, seed 0", (256, 0), (1, 0)), ("batched (256) vs per-user, seed 1", (256, 1), (1, 1)),
                       ("batched (32) vs per-user, seed 0", (32, 0), (1, 0)), ("per-user seed 0 vs per-user seed 1", (1, 0), (1, 1)),
                       ("batched seed 0 vs batched seed 1", (256, 0), (256, 1))]:
        print(f"| {name} | {shared(runs[x], runs[y]):.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="0.01,0.05")
    ap.add_argument("--user-batch", type=int, default=None)
    ap.add_argument("--n-filler", type=int, default=30)
    ap.add_argument("--overlap", action="store_true")
    args = ap.parse_args()
    if args.overlap:
        overlap()
        return
    train = leave_one_out(datasets.load("ml-100k"), derive_rng(0, "split")).train
    target = np.array([int(derive_rng(0, "bench").integers(train.n_items))])
    params = {} if args.user_batch is None else {"user_batch": args.user_batch}
    print(f"load average before: {os.getloadavg()[0]:.2f}; target item index {target[0]}")
    # dl-ncf is prefix-stable (a run of n fake users starts with the run of m < n): one run of the
    # largest size gives every size's time, as the time at which its last fake user was finished
    sizes = sorted(float(s) for s in args.sizes.split(","))
    counts = [max(1, round(size * train.n_normal)) for size in sizes]
    a = attacks.make("dl-ncf", **params)
    cpu = time.process_time()
    a.generate(train, target, counts[-1], args.n_filler, np.random.default_rng(0))
    cpu = time.process_time() - cpu
    print("| attack size | fake users | wall time (s) | s per fake user | surrogate target HR@10 (last user) |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for size, n_fake in zip(sizes, counts):
        el = a.seconds_[n_fake - 1]
        print(f"| {size:.1%} | {n_fake} | {el:.1f} | {el / n_fake:.1f} | {a.target_hr_[n_fake - 1]:.3f} |", flush=True)
    print(f"CPU time of the whole run ({counts[-1]} fake users): {cpu:.1f} s (on a loaded machine the wall times above exceed it)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
