"""MixInf ("Infmix"): Usermix candidates selected by an influence-based threat estimate (Wu, Lian,
Ge, Zhu, Chen, "Influence-Driven Data Poisoning for Robust Recommender Systems", IEEE TPAMI 2023;
seed 004 App. B item 4: "an influence-based threat estimator and a generator, Usermix ... integrates
them to create malicious but non-notable users"; REFERENCES.md §5.6 "MixInf as coded", from
Daftstone/Inf_recommender ``mixattack.py``).

As coded by Wu et al. (``mixattack.py``), reproduced here step by step:

1. Probe: one Usermix user (:func:`.mixrand.usermix`, ``n_filler`` kept entries) with every target
   at ``r_max``.
2. Influence vector: the derivative of the attack objective w.r.t. the probe's rating of each item,
   computed ``repeat`` (= 3, Wu's default; 5 on FilmTrust) times; each vector is divided by its
   largest absolute value and the vectors are summed; entries equal to 0 are then replaced by the
   minimum of the sum (Wu's ``influence[influence == 0] = np.min(influence)``; here that concerns the
   target columns, whose derivative is 0 by construction, and which no candidate rates).
3. For each of the ``n_fake`` fake users: ``n_candidates`` (= 100) fresh Usermix candidates, each
   scored ``sum_j x_j influence_j`` over its kept (non-target) entries ``x_j`` on the rating scale;
   the arg-max candidate (first one on ties) is the fake user.
4. Every target at ``r_max``.

Departures and choices:

* Local model and influence estimate. Wu's local model is PMF (``local_rs='pmf'``) with an
  influence-function estimate (``RS.influence_user``) that is not in the repository. We use the
  project's MF surrogate, :class:`._li2016.Surrogate` (the attacker's MF of seed 001 eq. (1), fitted
  by exact ALS), and its implicit gradient :meth:`~._li2016.Surrogate.gradient`: ``dR/dM``, the
  derivative of ``R`` = the targets' predicted scores summed over the eligible normal users (those
  who have not rated the target), w.r.t. each rating of the fake row, by the implicit function
  theorem at the ALS stationary point. That is the same quantity (how each rating of the probe
  changes the targets' predicted scores) without the influence-function approximation of Wu's PMF.
* The probe rates every item in the surrogate (``support`` = all items), so that the derivative
  exists for every item: on the items the probe does not rate, its entries are imputed with the
  surrogate's own prediction, re-imputed after every ALS sweep (initially the item means of the
  normal users). At convergence those entries have zero residual, so the fitted factors are those
  of the sparse probe (the Usermix user as injected); the derivative is taken with the other entries
  held at their values. For an unrated item ``j`` the entry ``G_j`` is also the first-order effect
  of adding a rating ``m`` there divided by ``m - prediction`` (the up-weighting influence of Koh &
  Liang on that rating).
* Repeats. Wu's code trains the local model once and calls its (presumably stochastic) influence
  estimator ``repeat`` times; our gradient is deterministic given the fit, so each repeat re-fits
  the surrogate from another random initialisation (retraining noise, as REFERENCES §5.6 reads it).
* Normalisation: Wu's ``norm`` divides by ``np.max(v)`` (signed); we divide by ``max |v|``, which
  keeps each vector's signs when its largest entry is negative and bounds every entry by 1.
* Scores use the ratings on the view's scale; Wu's are on the scale divided by the maximum rating,
  a positive factor that changes no arg-max.
* Surrogate hyper-parameters: ``d``, ``reg``, ``fit_sweeps``, ``cg_iters``, ``cg_tol`` and
  ``dtype`` default to those of PGA/SGLD, read from :class:`._li2016.Li2016Config` (d = 64,
  reg = 7, 15 ALS sweeps, 30 CG iterations to relative tolerance 1e-4, float32); Wu et al. do not
  give theirs for this purpose.
* Explicit ratings only (the influence is a derivative w.r.t. rating values), as PGA/SGLD.

Randomness (``prefix_stable``): from ``rng``, in this order, the probe (one Usermix row), the
``repeat`` surrogate seeds (``rng.integers(2**31 - 1, size=repeat)``), then the candidates of each
fake user in turn, ``n_candidates`` Usermix rows per user. Nothing drawn depends on ``n_fake``, so
the first m fake users of a run of n are a run of m; with ``n_candidates = 1`` the fake users are
exactly the Usermix users :class:`.mixrand.MixRandAttack` draws from the same stream after the
probe and the seeds. Recorded on the attack after ``generate``: ``probe_`` (1 x n_items csr),
``influence_`` (n_items), ``scores_`` (n_fake x n_candidates), ``chosen_`` (the arg-max per fake
user), and the chosen candidates' ``pairs_`` and ``lambdas_``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from ..config import check
from ..errors import ConfigError
from ._li2016 import Li2016Config, Surrogate
from .base import ATTACKS, Attack
from .mixrand import Missing, Mix, _check_mix, usermix, with_targets


@dataclass(frozen=True)
class MixInfConfig:
    #: Usermix candidates per fake user (Wu's code: 100)
    n_candidates: int = 100
    #: influence vectors summed (Wu's code: 3; 5 on FilmTrust)
    repeat: int = 3
    mix: Mix = "uniform"
    alpha: float = 0.2
    missing: Missing = "other"
    # the surrogate MF: PGA/SGLD's defaults (Li2016Config)
    d: int = Li2016Config.d
    reg: float = Li2016Config.reg
    fit_sweeps: int = Li2016Config.fit_sweeps
    cg_iters: int = Li2016Config.cg_iters
    cg_tol: float = Li2016Config.cg_tol
    dtype: Literal["float32", "float64"] = Li2016Config.dtype

    def __post_init__(self) -> None:
        _check_mix("mixinf", self.mix, self.alpha, self.missing)
        check(1 <= self.n_candidates <= 100_000, f"mixinf: n_candidates={self.n_candidates} must be in [1, 100000]")
        check(1 <= self.repeat <= 1_000, f"mixinf: repeat={self.repeat} must be in [1, 1000]")
        check(self.d >= 1, f"mixinf: d={self.d} must be at least 1")
        check(self.reg > 0, f"mixinf: reg={self.reg} must be positive")
        check(self.fit_sweeps >= 1, f"mixinf: fit_sweeps={self.fit_sweeps} must be at least 1")
        check(self.cg_iters >= 1, f"mixinf: cg_iters={self.cg_iters} must be at least 1")
        check(self.cg_tol > 0, f"mixinf: cg_tol={self.cg_tol} must be positive")


@ATTACKS.register(
    "mixinf",
    paper="Wu, Lian, Ge, Zhu, Chen, IEEE TPAMI 2023 (seed 004 App. B)",
    summary="Usermix candidates, the one with the largest influence on the targets (MF surrogate) kept; targets at r_max",
)
class MixInfAttack(Attack):
    Config = MixInfConfig
    prefix_stable = True  # probe and seeds first, then n_candidates Usermix rows per fake user in order

    def _generate(self, view, targets, n_fake, n_filler, rng):
        c = self.config
        lo, hi = view.rating_scale
        if view.implicit or hi <= lo:
            raise ConfigError(f"{self.name}: needs explicit ratings on a scale with r_min < r_max (the influence is a derivative w.r.t. rating values)")
        probe = with_targets(view, usermix(view, targets, 1, n_filler, rng, c.mix, c.alpha, c.missing).fillers, targets)
        seeds = rng.integers(2**31 - 1, size=c.repeat)
        total = np.zeros(view.n_items)
        for seed in seeds:
            g = self._probe_gradient(view, targets, probe, int(seed))
            scale = float(np.abs(g).max())
            if scale > 0:
                total += g / scale
        total[total == 0] = total.min()
        cand = usermix(view, targets, n_fake * c.n_candidates, n_filler, rng, c.mix, c.alpha, c.missing)
        scores = np.asarray(cand.fillers @ total).reshape(n_fake, c.n_candidates)
        chosen = np.argmax(scores, axis=1) if n_fake else np.zeros(0, dtype=np.int64)
        rows = np.arange(n_fake) * c.n_candidates + chosen
        self.probe_, self.influence_, self.scores_, self.chosen_ = probe, total, scores, chosen
        self.pairs_, self.lambdas_ = cand.pairs[rows], cand.lambdas[rows]
        return with_targets(view, cand.fillers[rows], targets)

    def _probe_gradient(self, view, targets, probe, seed: int) -> np.ndarray:
        """dR/dM of the probe's ratings (n_items), the surrogate fitted with the probe rating every
        item: its own ratings where it has them, the surrogate's prediction elsewhere."""
        c = self.config
        rated = probe.toarray().ravel() != 0
        M = np.where(rated, probe.toarray().ravel(), view.item_stats()[0])[None, :]
        sur = Surrogate(view, targets, 1, c.d, c.reg, c.dtype, seed)
        for _ in range(c.fit_sweeps):
            sur.set_fake(M)
            sur.fit(1)
            pred = (sur.X[sur.n_real:] @ sur.Y.T).double().numpy()
            M = np.where(rated[None, :], M, pred)
        return sur.gradient(c.cg_iters, c.cg_tol)[0]
