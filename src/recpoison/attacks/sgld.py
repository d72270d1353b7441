"""Stochastic gradient Langevin dynamics (SGLD) attack: Li, Wang, Singh, Vorobeychik, NeurIPS 2016,
§5 "mimicking normal user behaviours" (seed 001 §5.1.3 baseline "SGLD").

The fake ratings ``M~`` (all fake users jointly, dense and continuous, targets fixed at ``r_max``) are
sampled from the posterior

    q(M~) ∝ exp( beta * R(M~) ) * prod_{u~, i} N(M~_u~i ; mu_i, sigma_i^2),

which trades the attack utility ``R`` (integrity: the normal users' predicted ratings of the targets,
as in PGA) against the likelihood of the fake ratings under the normal users' rating distribution
(``mu_i``, ``sigma_i``: mean and standard deviation of item i's ratings by the normal users of the
view), by Langevin steps projected on the scale:

    M~ <- Proj_[r_min, r_max]( M~ + (s/2) (beta G + (mu - M~) / sigma^2) + sqrt(s) xi ),   xi ~ N(0, I)

with ``G = dR/dM~`` the implicit gradient through the ALS stationary conditions, taken as
the exact Ornstein-Uhlenbeck step below (``update="ou"``, the default)
(``recpoison.attacks._li2016``). Fillers = the ``n`` items with the largest absolute (centred) ratings
(seed 001 §5.1.3: "each fake user will select n items with the largest absolute ratings as filler
items"), rounded to the scale; targets at ``r_max``.

Like PGA it runs in two phases (``recpoison.attacks._li2016.Li2016Attack``): Langevin steps on
dense fake ratings, the projection on the budget (the ``n`` largest absolute ratings), then
``refine_iters`` Langevin steps on the kept ratings only, with the surrogate re-fitted on the sparse
profiles.

The update. The Euler step above multiplies the prior's pull ``(mu - M~) / sigma^2`` by ``s / 2``;
where ``sigma_i`` is small the factor ``s / (2 sigma_i^2)`` exceeds 2 (up to 5 with ``s = 0.1`` and
the 0.1 floor), the step overshoots ``mu_i`` by more than it started from, and the ratings of
low-variance items oscillate between the scale's bounds (issue 9 measured 26 such items on ML-100K
supplying 14% of the fillers against a 1.5% base rate). With ``G`` held fixed over one step, the
Langevin diffusion ``dM = (1/2)(beta G - (M - mu) / sigma^2) dt + dW`` is an Ornstein-Uhlenbeck
process, whose step of length ``s`` is exact:

    m* = mu + beta sigma^2 G,    a = 1 / (2 sigma^2),
    M~ <- Proj( m* + (M~ - m*) exp(-a s) + sqrt((1 - exp(-2 a s)) / (2 a)) xi )

It has the same stationary law ``exp(beta R) N(mu, sigma^2)`` (to first order in ``G``), agrees with
the Euler step when ``a s`` is small, and never overshoots (``exp(-a s)`` is in (0, 1)). It is an
exponential integrator (the standard remedy for stiff Langevin steps); ``update="euler"`` keeps the
Euler step above for comparison.

Departures / choices where the papers are silent: the prior is the per-item Gaussian of the normal
users' ratings (our reading of Li et al.'s model of normal user behaviour; sigma_i is floored at
0.1 so that an item every user rated alike does not give an infinite precision); Li et al. do not
give ``beta``, the step size or the number of iterations. Defaults: ``iters = refine_iters = 10``
steps of ``s = 0.1`` and ``beta = 1`` on the unnormalised utility (a sum over the eligible
(user, target) pairs, as Li et al.'s ``R^in``); on ML-100K its largest gradient entries are then
of the order of the prior's drift (~1 rating unit), so neither term swamps the other.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import check
from ._li2016 import Li2016Attack, Li2016Config
from .base import ATTACKS


@dataclass(frozen=True)
class SGLDConfig(Li2016Config):
    step: float = 0.1
    beta: float = 1.0
    update: str = "ou"

    def __post_init__(self) -> None:
        super().__post_init__()
        check(self.beta >= 0, f"sgld: beta={self.beta} must be >= 0")
        check(self.update in ("ou", "euler"), f"sgld: update={self.update!r} must be 'ou' (exact Ornstein-Uhlenbeck step) or 'euler'")


@ATTACKS.register(
    "sgld",
    paper="Li, Wang, Singh, Vorobeychik, NeurIPS 2016 (seed 001 §5.1.3)",
    summary="SGLD sampling of fake ratings: MF attack utility x normal users' rating likelihood",
)
class SGLDAttack(Li2016Attack):
    Config = SGLDConfig

    def _optimise(self, sur, M, view, targets, rng, iters):
        c = self.config
        lo, hi = view.rating_scale
        mu, sd = view.item_stats()
        prec = 1.0 / np.maximum(sd, 0.1) ** 2
        a = 0.5 * prec  # the OU rate of the prior's pull
        decay = np.exp(-a * c.step)
        noise_sd = np.sqrt(-np.expm1(-2.0 * a * c.step) / (2.0 * a))
        G = None
        for _ in range(iters):
            G = sur.gradient(c.cg_iters, c.cg_tol)
            xi = rng.standard_normal(M.shape)
            if c.update == "euler":
                drift = c.beta * G + (mu - M) * prec
                M = np.clip(M + 0.5 * c.step * drift + np.sqrt(c.step) * xi, lo, hi)
            else:
                m_star = mu + c.beta * G / prec
                M = np.clip(m_star + (M - m_star) * decay + noise_sd * xi, lo, hi)
            M[:, targets] = hi
            sur.set_fake(M)
            sur.fit(c.inner_sweeps)
        return M, G
