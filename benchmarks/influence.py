"""Cost and agreement of the two influence computations of seed 001 eqs. (12)-(13) on ML-100K.

``hessian="block"`` (default of the S-attacks) gives pi(k, t) for every user in one pass;
``hessian="exact"`` solves one conjugate-gradient system of size (n_users + n_items) d per normal
user o. This script times the block version for one target, times the exact version on a batch
of ``--users`` right-hand sides and extrapolates to all normal users, and reports how the block
ranking of users agrees with the exact one on a smaller problem where both are affordable.

    python benchmarks/influence.py [--users 4] [--target 100]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from recpoison import datasets
from recpoison.attacks._influence import user_influence
from recpoison.seeding import derive_rng
from recpoison.splits import leave_one_out
from recpoison.victims.mf import MF


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=4)
    ap.add_argument("--target", type=int, default=100)
    args = ap.parse_args()
    train = leave_one_out(datasets.load("ml-100k"), derive_rng(0, "split")).train
    m = MF(d=64, reg=7.0, sweeps=15, seed=0).fit(train)
    X, Y = m.user_factors_.astype(np.float64), m.item_factors_.astype(np.float64)
    R = train.matrix
    t0 = time.perf_counter()
    pi_block = user_influence(X, Y, R, 7.0, [args.target])[:, 0]
    tb = time.perf_counter() - t0
    print(f"ML-100K, d=64, target {args.target}: block pi for all {train.n_users} users: {tb:.2f} s", flush=True)
    import torch

    from recpoison.attacks._influence import MFHessian

    H = MFHessian(X, Y, R, 7.0)
    us = np.arange(args.users)
    Bx = torch.zeros(X.shape[0], X.shape[1], len(us), dtype=torch.float64)
    By = torch.zeros(Y.shape[0], Y.shape[1], len(us), dtype=torch.float64)
    Bx[torch.as_tensor(us), :, torch.arange(len(us))] = H.Y[args.target].expand(len(us), -1)
    By[args.target] = H.X[torch.as_tensor(us)].T
    t0 = time.perf_counter()
    H.matvec(Bx, By)
    thvp = time.perf_counter() - t0
    for iters in (50, 200):
        Vx, Vy = H.solve(Bx, By, tol=1e-12, max_iter=iters)
        Rx, Ry = H.matvec(Vx, Vy)
        rel = float(torch.sqrt(((Rx - Bx) ** 2).sum() + ((Ry - By) ** 2).sum()) / torch.sqrt((Bx**2).sum() + (By**2).sum()))
        print(f"exact: CG with {iters} iterations on {args.users} right-hand sides: relative residual {rel:.1e}", flush=True)
    print(f"exact: one Hessian-vector product with {args.users} columns {thvp:.2f} s; all {train.n_normal} users "
          f"x 200 CG iterations ~{thvp / args.users * train.n_normal * 200 / 60:.0f} min per target", flush=True)
    # agreement where exact is affordable: the 150 most active users and 300 most rated items
    users = np.argsort(-np.diff(R.indptr))[:150]
    items = np.argsort(-train.item_counts())[:300]
    sub = R[np.sort(users)][:, np.sort(items)]
    ms = MF(d=16, reg=7.0, sweeps=100, seed=0, dtype="float64")
    from recpoison.interactions import Interactions
    ms.fit(Interactions(sub))
    Xs, Ys = ms.user_factors_, ms.item_factors_
    t = int(np.argsort(np.diff(sub.tocsc().indptr))[len(items) // 2])
    ex = user_influence(Xs, Ys, sub, 7.0, [t], hessian="exact")[:, 0]
    bl = user_influence(Xs, Ys, sub, 7.0, [t], hessian="block")[:, 0]
    rank = lambda a: np.argsort(np.argsort(a))
    rho = np.corrcoef(rank(ex), rank(bl))[0, 1]
    top = len(set(np.argsort(-ex)[:30]) & set(np.argsort(-bl)[:30]))
    print(f"agreement on a 150 x 300 ML-100K sub-matrix (d=16): Spearman {rho:.3f}, top-30 overlap {top}/30")


if __name__ == "__main__":
    main()
