"""What the S-attacks' optimisation of eq. (6) does on ML-100K (seed 001 §4.4).

For each variant and width ``b``: how many pairs (u, i in Gamma_u) have a non-negligible WMW
derivative g'(delta) > 1e-6 at the start, and how many non-target items end with w_vi > 0 after
the projected subgradient descent for the first fake user (the rest of the 20 fillers are drawn at
random among tied zeros). Same split and 10 targets as examples/seed001_table1_ml100k.yaml.

    python benchmarks/sattack_diag.py
"""

from __future__ import annotations

import numpy as np

from recpoison import datasets
from recpoison.attacks import ATTACKS
from recpoison.attacks._sattack import FakeUserProblem, _sigmoid
from recpoison.pipeline import choose_targets
from recpoison.seeding import derive_rng
from recpoison.splits import leave_one_out
from recpoison.victims.mf import MF


def main() -> None:
    train = leave_one_out(datasets.load("ml-100k"), derive_rng(0, "split")).train
    targets = choose_targets(train, 10, derive_rng(0, "targets"))
    sur = MF(d=64, reg=7.0, sweeps=15, seed=0).fit(train)
    print("| variant | b | pairs with g' > 1e-6 | items with w > 0 after descent |")
    print("| --- | ---: | ---: | ---: |")
    for name in ("u-tna", "s-tna-rand", "s-tna-inf", "weighting"):
        for b in (0.01, 0.1, 1.0):
            a = ATTACKS.make(name, b=b)
            S, h = a.influential_users(sur, train, targets, np.random.default_rng(0))
            prob = FakeUserProblem(sur, train, S, h, targets, 10, a.config.eta, b)
            w0 = np.zeros(train.n_items)
            w0[targets] = train.r_max
            Yw, _, _ = prob.item_factors(w0)
            r_ui = np.einsum("ud,und->un", prob.XS, Yw[prob.gamma])
            r_ut = prob.XS @ Yw[targets].T
            g = _sigmoid((r_ui[:, :, None] - r_ut[:, None, :]) / b)
            active = int(((g * (1 - g) / b) > 1e-6).sum())
            w = a.solve_w(sur, train, S, h, targets)
            w[targets] = 0
            print(f"| {name} | {b} | {active} of {g.size} | {int((w > 0).sum())} |")


if __name__ == "__main__":
    main()
