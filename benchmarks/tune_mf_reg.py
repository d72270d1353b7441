"""Choose the default L2 weight (lambda of seed 001 eq. 1) of the `mf` victim on ML-100K.

Seed 001 §5.1.4 gives d = 64 but no lambda. We pick lambda by RMSE on a *validation* split carved
from the training part (each user's second-latest rating), never on the test items or on attack
results. Usage: python benchmarks/tune_mf_reg.py [--regs 1,5,10,20]
"""

from __future__ import annotations

import argparse

import numpy as np

from recpoison import datasets
from recpoison.splits import leave_one_out
from recpoison.victims import make


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--regs", default="1,2,5,7,10,15,20,50")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = datasets.load("ml-100k")
    outer = leave_one_out(data, np.random.default_rng(args.seed))  # test part: untouched here
    inner = leave_one_out(outer.train, np.random.default_rng(args.seed + 1))
    users = inner.test_users
    print("| lambda | validation RMSE |")
    print("| ---: | ---: |")
    for reg in (float(r) for r in args.regs.split(",")):
        m = make("mf", reg=reg, seed=args.seed).fit(inner.train)
        pred = np.einsum("ud,ud->u", m.user_factors_[users], m.item_factors_[inner.test_items[users]])
        rmse = float(np.sqrt(np.mean((pred - inner.test_ratings[users]) ** 2)))
        print(f"| {reg:g} | {rmse:.4f} |")


if __name__ == "__main__":
    main()
