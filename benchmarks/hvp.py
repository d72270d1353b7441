"""Time per Hessian-vector product of seed 001 eq. (1) on ML-100K (d = 64), for both uses of
:class:`recpoison.attacks._mfhessian.MFHessian`:

* exact influence (S-attacks, ``hessian="exact"``): float64, the training ratings, one vector
  ``(n, d)`` and ``m`` columns ``(n, d, m)`` (``prediction_influence`` solves 256 users at a time);
* PGA/SGLD (Li2016 surrogate): the real ratings plus 47 dense fake rows (5% of the users), one
  vector, in float32 (the default) and float64.

For comparison, the index_add formulation that ``_influence.MFHessian`` used before (gather the
factors per rating, ``index_add_`` back) is kept here as a reference only (:func:`old_matvec`). At
``m`` = 256 it needs several ``(nnz, d, m)`` float64 intermediates (13 GB each), so it is timed on
``--old-columns`` columns and scaled (chunks of that many columns).

    python benchmarks/hvp.py [--m 256] [--old-columns 16] [--repeat 5] [--skip-old]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import scipy.sparse as sp
import torch

from recpoison import datasets
from recpoison.attacks._li2016 import Surrogate
from recpoison.attacks._mfhessian import MFHessian
from recpoison.seeding import derive_rng
from recpoison.splits import leave_one_out
from recpoison.victims.mf import MF


def old_matvec(X, Y, R: sp.csr_matrix, reg: float):
    """The former ``_influence.MFHessian.matvec`` (reference only): ``(n, d, m)`` vectors."""
    rows = torch.as_tensor(np.repeat(np.arange(R.shape[0]), np.diff(R.indptr)))
    cols = torch.as_tensor(R.indices.astype(np.int64))
    Xr, Yc = X[rows], Y[cols]
    res = torch.as_tensor(R.data, dtype=X.dtype) - (Xr * Yc).sum(1)

    def matvec(Vx, Vy):
        xr, yc, r = Xr.unsqueeze(-1), Yc.unsqueeze(-1), res.view(-1, 1, 1)
        vx, vy = Vx[rows], Vy[cols]
        y_vx = (yc * vx).sum(1, keepdim=True)
        x_vy = (xr * vy).sum(1, keepdim=True)
        ex = yc * y_vx + yc * x_vy - r * vy
        ey = xr * x_vy + xr * y_vx - r * vx
        Hx = torch.zeros_like(Vx).index_add_(0, rows, ex)
        Hy = torch.zeros_like(Vy).index_add_(0, cols, ey)
        return 2 * (Hx + reg * Vx), 2 * (Hy + reg * Vy)

    return matvec


def best(f, repeat: int) -> float:
    f()  # warm-up (builds the padded blocks on first batched use)
    ts = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--m", type=int, default=256)
    ap.add_argument("--old-columns", type=int, default=16)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--skip-old", action="store_true")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()}, torch threads {torch.get_num_threads()}", flush=True)
    data = datasets.load("ml-100k")
    train = leave_one_out(data, derive_rng(0, "split")).train
    mf = MF(d=64, reg=7.0, sweeps=15, seed=0).fit(train)
    X, Y = mf.user_factors_.astype(np.float64), mf.item_factors_.astype(np.float64)
    R = sp.csr_matrix(train.matrix, dtype=np.float64)
    nu, ni, d = X.shape[0], Y.shape[0], X.shape[1]
    g = torch.Generator().manual_seed(0)

    # ---------------------------------------------------------------- exact influence, float64
    t0 = time.perf_counter()
    H = MFHessian(X, Y, R, 7.0)
    print(f"influence: ML-100K train {nu} x {ni}, {R.nnz} ratings, d={d}; MFHessian built in {time.perf_counter() - t0:.3f} s", flush=True)
    a = torch.randn(nu, d, generator=g, dtype=torch.float64)
    b = torch.randn(ni, d, generator=g, dtype=torch.float64)
    t1 = best(lambda: H.matvec(a, b), args.repeat)
    print(f"  new (n, d):        {t1 * 1e3:8.1f} ms per matvec", flush=True)
    A = torch.randn(nu, d, args.m, generator=g, dtype=torch.float64)
    B = torch.randn(ni, d, args.m, generator=g, dtype=torch.float64)
    tm = best(lambda: H.matvec(A, B), max(1, args.repeat // 2))
    print(f"  new (n, d, {args.m}):   {tm:8.2f} s per matvec ({tm / args.m * 1e3:.1f} ms per column)", flush=True)
    if not args.skip_old:
        old = old_matvec(H.X, H.Y, R, 7.0)
        o1 = best(lambda: old(a[..., None], b[..., None]), max(1, args.repeat // 2))
        hx, hy = H.matvec(a, b)
        ox, oy = old(a[..., None], b[..., None])
        print(f"  old index_add (n, d, 1): {o1 * 1e3:8.1f} ms per matvec (new/old max rel. difference "
              f"{max(rel(hx, ox[..., 0]), rel(hy, oy[..., 0])):.1e})", flush=True)
        c = min(args.old_columns, args.m)
        Ac, Bc = A[..., :c].contiguous(), B[..., :c].contiguous()
        t0 = time.perf_counter()
        ox, oy = old(Ac, Bc)
        oc = time.perf_counter() - t0
        hx, hy = H.matvec(A, B)
        print(f"  old index_add (n, d, {c}): {oc:8.2f} s per matvec -> (n, d, {args.m}) in chunks of {c}: "
              f"~{oc * args.m / c:.0f} s (new/old max rel. difference {max(rel(hx[..., :c], ox), rel(hy[..., :c], oy)):.1e})", flush=True)

    # ---------------------------------------------------------------- Li2016 surrogate, one vector
    targets = np.array([100, 200])
    rng = np.random.default_rng(0)
    n_fake = int(round(0.05 * train.n_users))
    mean, std = train.item_stats()
    lo, hi = train.rating_scale
    M = np.clip(rng.normal(mean, np.maximum(std, 1e-3), size=(n_fake, train.n_items)), lo, hi)
    M[:, targets] = hi
    for dtype in ("float32", "float64"):
        sur = Surrogate(train, targets, n_fake, 64, 7.0, dtype, seed=0)
        sur.set_fake(M)
        sur.fit(5)
        Hs = MFHessian(sur.X, sur.Y, sur._pattern, sur.reg, values=sur._v)
        a = torch.randn(sur.X.shape, generator=g, dtype=torch.float64).to(sur.dt)
        b = torch.randn(sur.Y.shape, generator=g, dtype=torch.float64).to(sur.dt)
        ts = best(lambda: Hs.matvec(a, b), args.repeat)
        tg = best(lambda: sur.gradient(30, 1e-4), 1)
        print(f"li2016 surrogate {dtype}: {sur.X.shape[0]} x {ni}, {sur._v.numel()} ratings; new (n, d): "
              f"{ts * 1e3:.1f} ms per matvec; Surrogate.gradient (30 CG iterations at most) {tg:.2f} s", flush=True)
    print(f"load average {os.getloadavg()}", flush=True)


if __name__ == "__main__":
    main()
