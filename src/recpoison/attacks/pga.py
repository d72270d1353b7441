"""Projected gradient ascent (PGA) attack: Li, Wang, Singh, Vorobeychik, NeurIPS 2016, §4
(seed 001 §5.1.3 baseline "PGA"; seed 003 §5.1.2; seed 004 App. B item 2).

All ``n_fake`` fake users are optimised jointly. Their dense continuous ratings ``M~`` (targets fixed
at ``r_max``) ascend the integrity utility ``R`` (sum over normal users of the targets' predicted
ratings) of the attacker's MF surrogate (seed 001 eq. (1)):

    M~ <- Proj_[r_min, r_max]( M~ + s * G / max|G| ),     G = dR/dM~,

where ``G`` is the implicit gradient through the ALS stationary conditions and the surrogate is
re-fitted by warm-started ALS after each step (``recpoison.attacks._li2016`` has the derivation and
the one deliberate departure from Li et al.'s gradient approximation). Two phases: ``iters`` steps on
dense fake ratings (every fake user rates every item), then the projection on the budget — each
fake user keeps the ``n`` items with the largest absolute (centred) ratings, which is the Euclidean
projection on "at most n rated items" in Li et al.'s centred rating representation — then
``refine_iters`` steps on the kept ratings only (the surrogate re-fitted on the sparse profiles).
Final ratings are rounded to the scale; targets at ``r_max``.

Departures / choices where the papers are silent: Li et al. do not give their step sizes or
iteration counts; we use ``iters = refine_iters = 10`` steps of at most ``step = 0.5`` rating units
(the gradient is normalised by its largest entry, so ``step`` is the largest change of any rating in
one step) and ``inner_sweeps = 3`` warm-started ALS sweeps between steps. Initial fake ratings are
drawn from N(mu_i, sigma_i) of the normal users (clipped).

Fillers: ``fillers="optimised"`` (the default) is Li et al.'s method above, the budget projection
after the dense phase. Seed 001 §5.1.3 describes its PGA baseline otherwise: it "generates filler
items randomly" and optimises their ratings; that is ``fillers="random"`` (each fake user's fillers
drawn uniformly among the non-targets, then ``iters + refine_iters`` steps on their ratings only),
and it is what the seed-001 experiments use.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._li2016 import Li2016Attack, Li2016Config
from .base import ATTACKS


@dataclass(frozen=True)
class PGAConfig(Li2016Config):
    pass


@ATTACKS.register(
    "pga",
    paper="Li, Wang, Singh, Vorobeychik, NeurIPS 2016 (seed 001 §5.1.3)",
    summary="projected gradient ascent on fake ratings of an MF (implicit gradient via ALS optimality)",
)
class PGAAttack(Li2016Attack):
    Config = PGAConfig

    def _optimise(self, sur, M, view, targets, rng, iters):
        c = self.config
        lo, hi = view.rating_scale
        G = None
        for _ in range(iters):
            G = sur.gradient(c.cg_iters, c.cg_tol)
            scale = float(np.abs(G).max())
            if scale == 0.0:
                break
            M = np.clip(M + c.step * G / scale, lo, hi)
            M[:, targets] = hi
            sur.set_fake(M)
            sur.fit(c.inner_sweeps)
        return M, G
