"""The S-attack family of seed 001 (Fang, Gong, Liu, WWW 2020, §4 and §7.2).

Fake users are added one at a time (Algorithm 2). For each fake user ``v`` a relaxed rating vector
``w_v in [0, r_max]^{n_items}`` minimises eq. (6)::

    L_S(w_v) = sum_{u in S} h_u sum_{i in Gamma_u} g(r_hat_ui - r_hat_ut) + eta ||w_v||_1,
    g(x) = 1 / (1 + exp(-x / b))              (Wilcoxon-Mann-Whitney loss, width b)

where ``Gamma_u`` is ``u``'s current top-N list and ``S`` the users the loss is taken over:
all normal users (U-TNA), ``Delta`` random users (S-TNA-Rand), the ``Delta`` most influential users
by Algorithm 1 and the influence function of eqs. (8)-(13) (S-TNA-Inf); Weighting (§7.2, eq. 30)
takes every normal user with weight ``h_u = pi(u, t) / sum_u pi(u, t)`` (eq. 31); ``h_u = 1``
otherwise. The ``n`` items with the largest ``w_vi`` become fillers, rated from
``N(mu_i, sigma_i^2)`` (item mean and variance over normal users), the target gets ``r_max``
(Algorithm 2, lines 5-7), the fake user is appended and the surrogate MF retrained.

Gradient (eqs. 15-21). ``d g(delta)/d delta = g (1 - g) / b``, computed as
``exp(-|x|) / (1 + exp(-|x|))^2 / b`` with ``x = delta / b``: the product ``g (1 - g)`` rounds to
exactly 0 in float64 once ``x`` exceeds about 37 (``g`` rounds to 1), while the true value
``~exp(-x) / b`` is representable up to ``x`` of about 745; with ``b = 0.01`` the product form gave no
gradient for any score gap above 0.37, and ``solve_w`` stopped at its first step (issue 9); ``d r_hat_ui / d w_v`` from eq. (16)
with ``d x_u / d w_v = 0`` (eq. 20) and ``d y_i / d w_vi = (lambda I + sum_{u in Omega_i} x_u x_u^T
+ z z^T)^{-1} z`` (eq. 21), zero for ``j != i``. ``z``, the fake user's factor in eq. (14), is
``(lambda I + Y^T Y)^{-1} Y^T w_v`` (its stationarity condition eq. 19 with ``Y`` fixed) and held
fixed when differentiating, as eq. (21) does. The predicted scores inside the loss are those of the
model of eq. (14) after one exact item step with ``X`` and ``z`` fixed:
``y_i(w) = A_i^{-1} (sum_{u in Omega_i} r_ui x_u + w_vi z)``, computed for all items at once by
Sherman-Morrison from the cached ``(lambda I + sum x_u x_u^T)^{-1}``; eq. (21) is exactly its
derivative, and ``tests/test_attacks_sattack.py`` checks it against finite differences.

Multiple targets: the losses of all targets are summed (every fake user rates every target with
``r_max``); with one target this is the paper's problem. ``pi(k)`` sums over targets likewise.

Departures and choices the paper leaves open (each is a parameter):
* Optimiser: the paper says "projected subgradient method [3]" without a step rule. We take
  ``steps`` iterations of ``w <- clip(w - a_k G / max|G|, 0, r_max)`` with the diminishing,
  normalised step ``a_k = step * r_max / sqrt(k)`` (a standard rule for projected subgradient
  methods, Boyd's notes), where ``G`` is restricted to the coordinates the projection does not
  clip. We start from ``w_t = r_max`` for the targets and 0 elsewhere (the smallest profile that
  rates the targets) and keep ``w_t = r_max`` throughout, since line 6 of Algorithm 2 rates the
  targets ``r_max`` whatever (6) gives them: the fillers are chosen for that profile. The
  subgradient of ``|w_i|`` at 0 is taken as 0. With the paper's ``b = 0.01`` and MF scores on a
  1-5 scale, ``g'`` is tiny (not zero) for pairs whose score gap exceeds a few tenths; the step is
  normalised by the largest entry of the direction, so only the direction matters.
* ``Gamma_u`` is recomputed from the retrained surrogate before each fake user and held fixed while
  ``w_v`` is optimised.
* The surrogate is the attacker's MF (eq. 1) with the victim's ``d`` and ``lambda`` (full
  knowledge; both are parameters for partial knowledge). Retraining after each fake user warm-starts
  from the previous item factors with ``warm_sweeps`` ALS sweeps (allowed by the issue; the
  first fit runs the full ``sweeps``).
* The influence of eqs. (12)-(13) uses the block-diagonal Hessian by default
  (``hessian="block"``, see :mod:`._influence`); ``hessian="exact"`` uses conjugate gradients on
  the full Hessian.
* ``gradient="paper"`` (default) is eqs. (20)-(21) as written: ``z`` is held fixed when
  differentiating, although the loss is evaluated with ``z = z(w)`` recomputed. The derivative of
  that loss has a second path through ``z`` (``dz/dw = K Y^T``), which moves every item, including
  items outside all top-N lists that the paper's gradient leaves at 0; on U-TNA (ML-100K) the cosine
  between the two was -0.20 (issue 9). ``gradient="full"`` follows the loss including that path.
  Each is checked against finite differences of the loss it follows.
* Fillers whose ``w_vi`` tie (for example all zero) are chosen at random among the tied items.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import scipy.sparse as sp
import torch

from ..config import check
from ..interactions import Interactions
from ..victims.mf import MF, RowBlocks, gram
from ._influence import additive_set_influence, delta_count, delta_valid, greedy_select, user_influence
from .base import Attack, non_targets


@dataclass(frozen=True)
class SAttackConfig:
    """Defaults: seed 001 §5.1.4 (d=64, Delta=400, eta=0.01, b=0.01); ``top_n`` (N, the top-N list
    of eq. (6)) unset is the K the cell measures (seed 001 uses N = 10); ``seed`` unset draws the
    surrogate's initialisation from the cell's random stream; ``reg`` and ``sweeps`` are the MF
    victim's defaults (full knowledge); the optimiser settings are ours (see module)."""

    d: int = 64
    reg: float = 7.0
    sweeps: int = 15
    warm_sweeps: int = 3
    #: |S| for S-TNA-Rand / S-TNA-Inf: a count (>= 1; seed 001 uses 400) or a fraction of the normal
    #: users (in (0, 1); 400 is 4.5% of seed 001's Music users, 42% of ML-100K's)
    delta: float = 400
    eta: float = 0.01
    b: float = 0.01
    top_n: int | None = None
    steps: int = 50
    step: float = 0.2
    hessian: Literal["block", "exact"] = "block"
    seed: int | None = None
    gradient: Literal["paper", "full"] = "paper"

    def __post_init__(self) -> None:
        check(self.d >= 1, f"d={self.d} must be at least 1")
        check(self.reg > 0, f"reg={self.reg} must be positive")
        check(self.sweeps >= 1 and self.warm_sweeps >= 1, "sweeps and warm_sweeps must be at least 1")
        check(delta_valid(self.delta), f"delta={self.delta} must be a whole count >= 1 or a fraction of the users in (0, 1)")
        check(self.eta >= 0, f"eta={self.eta} must be >= 0")
        check(self.b > 0, f"b={self.b} must be positive (width of the WMW loss)")
        check(self.top_n is None or self.top_n >= 1, f"top_n={self.top_n} must be at least 1 (or unset: the cell's K)")
        check(self.steps >= 0, f"steps={self.steps} must be >= 0")
        check(self.step > 0, f"step={self.step} must be positive")
        check(self.hessian in ("block", "exact"), f"hessian={self.hessian!r}: use 'block' or 'exact'")
        check(self.gradient in ("paper", "full"), f"gradient={self.gradient!r}: use 'paper' (eq. 21, z held fixed) or 'full' (with dz/dw)")


class SAttack(Attack):
    """Algorithm 2 of seed 001 with a pluggable choice of users ``S`` and weights ``h``."""

    Config = SAttackConfig
    k_param = "top_n"
    # one fake user after the other; S and h are drawn before the first, the fillers' tie-breaks
    # and ratings per user, and nothing depends on how many follow
    prefix_stable = True
    #: "all" (U-TNA), "random" (S-TNA-Rand), "influence" (S-TNA-Inf), "weights" (Weighting)
    users: ClassVar[str] = "influence"

    # -------------------------------------------------------------------------------- Algorithm 2
    def _generate(self, view, targets, n_fake, n_filler, rng):
        c = self.config
        # the surrogate's initialisation comes from the cell's random stream unless ``seed`` pins it
        seed = c.seed if c.seed is not None else int(rng.integers(2**31 - 1))
        surrogate = MF(d=c.d, reg=c.reg, sweeps=c.sweeps, seed=seed)
        surrogate.fit(view)
        S, h = self.influential_users(surrogate, view, targets, rng)  # line 1
        mean, std = view.item_stats()
        candidates = non_targets(view, targets)
        data = view
        rows = []
        for _ in range(n_fake):  # line 3
            w = self.solve_w(surrogate, data, S, h, targets)  # line 4
            key = np.lexsort((rng.random(len(candidates)), -w[candidates]))
            fillers = np.sort(candidates[key[:n_filler]])  # line 5
            r = np.zeros(view.n_items)
            r[fillers] = view.to_scale(rng.normal(mean[fillers], std[fillers]))  # line 7
            r[targets] = view.r_max  # line 6
            row = sp.csr_matrix(r.astype(np.float32)[None, :])
            rows.append(row)
            data = data.append_users(row)  # line 8
            surrogate.fit(data, warm_start=True, sweeps=c.warm_sweeps)
        return sp.vstack(rows, format="csr")

    # -------------------------------------------------------------------------------- S and h
    def influential_users(self, model: MF, view: Interactions, targets, rng) -> tuple[np.ndarray, np.ndarray]:
        """The users ``S`` of eq. (6) and their weights ``h`` (1, or eq. 31 for Weighting)."""
        c = self.config
        n = view.n_normal
        if self.users == "all":
            return np.arange(n), np.ones(n)
        size = delta_count(c.delta, n)
        if self.users == "random":
            return np.sort(rng.choice(n, size=size, replace=False)), np.ones(size)
        pi = self.user_influence(model, view, targets)
        if self.users == "weights":
            total = pi.sum()
            return np.arange(n), (pi / total if total > 0 else np.full(n, 1.0 / n))
        S = greedy_select(additive_set_influence(pi), n, size, rng)
        return np.sort(S), np.ones(len(S))

    def user_influence(self, model: MF, view: Interactions, targets) -> np.ndarray:
        """``pi(k) = sum_t pi(k, t)`` (eq. 8) for the normal users."""
        R = view.matrix[: view.n_normal]
        pi = user_influence(
            model.user_factors_[: view.n_normal].astype(np.float64),
            model.item_factors_.astype(np.float64),
            R,
            self.config.reg,
            targets,
            hessian=self.config.hessian,
        )
        return pi.sum(axis=1)

    # -------------------------------------------------------------------------------- eq. (6)
    def solve_w(self, model: MF, data: Interactions, S: np.ndarray, h: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Projected subgradient descent on eq. (6) for one fake user; returns ``w_v``."""
        c = self.config
        problem = FakeUserProblem(model, data, S, h, targets, self.list_length(), c.eta, c.b, c.gradient)
        w = np.zeros(data.n_items)
        w[targets] = data.r_max
        free = np.ones(data.n_items, dtype=bool)
        free[targets] = False  # the targets are rated r_max (Algorithm 2, line 6)
        for k in range(1, c.steps + 1):
            _, G = problem.loss_and_grad(w)
            # projected direction: coordinates the box would clip do not count in the step size
            D = np.where(free & ~((w <= 0) & (G > 0)) & ~((w >= data.r_max) & (G < 0)), G, 0.0)
            scale = np.abs(D).max()
            if scale == 0:
                break  # projected stationary point
            w = np.clip(w - c.step * data.r_max / np.sqrt(k) * D / scale, 0.0, data.r_max)
        return w


class FakeUserProblem:
    """Eq. (6) for one fake user around the current surrogate, with its gradient eqs. (15)-(21).

    Caches what does not depend on ``w``: ``P_i = (lambda I + sum_{u in Omega_i} x_u x_u^T)^{-1}``
    for all items (batched), ``K = (lambda I + Y^T Y)^{-1}``, the top-N lists ``Gamma_u`` of the
    users in ``S`` and their factors.
    """

    def __init__(self, model: MF, data: Interactions, S, h, targets, top_n: int, eta: float, b: float,
                 gradient: str = "paper") -> None:
        reg = model.config.reg
        self.X = model.user_factors_.astype(np.float64)
        self.Y = model.item_factors_.astype(np.float64)
        d = self.Y.shape[1]
        Xt = torch.as_tensor(self.X)
        G, _ = gram(RowBlocks(data.matrix.T.tocsr(), torch.float64, torch.device("cpu")), Xt, reg)
        self.P = np.linalg.inv(G.numpy())  # (n_items, d, d); numpy: torch's batched inv is ~100x slower here
        self.K = np.linalg.inv(reg * np.eye(d) + self.Y.T @ self.Y)
        self.S = np.asarray(S)
        self.h = np.asarray(h, dtype=np.float64)
        self.XS = self.X[self.S]
        self.gamma = model.recommend(self.S, top_n)  # (|S|, N), -1 where nothing is left
        self.valid = self.gamma >= 0
        self.gamma = np.where(self.valid, self.gamma, 0)
        self.targets = np.asarray(targets)
        self.eta, self.b = eta, b
        self.gradient = gradient

    def fake_factor(self, w: np.ndarray) -> np.ndarray:
        """``z`` from eq. (19) with ``Y`` fixed: ``(lambda I + Y^T Y)^{-1} Y^T w``."""
        return self.K @ (self.Y.T @ w)

    def item_factors(self, w: np.ndarray, z: np.ndarray | None = None):
        """``y_i(w)`` for all items and ``s_i = d y_i / d w_vi`` (eq. 21) at ``z`` (default
        ``z(w)``)."""
        z = self.fake_factor(w) if z is None else z
        p = np.einsum("ijk,k->ij", self.P, z)  # (n_items, d): P_i z
        s = p / (1.0 + p @ z)[:, None]  # A_i^{-1} z by Sherman-Morrison
        Yw = self.Y + s * (w - self.Y @ z)[:, None]
        return Yw, s, z

    def loss_and_grad(self, w: np.ndarray, z: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """Eq. (6) at ``w`` and its subgradient: eq. (15) with ``z`` held fixed, as eq. (21) does
        (``gradient="paper"``), or the derivative of the loss with ``z = z(w)`` recomputed, i.e.
        plus ``(dz/dw)^T dL/dz`` with ``dz/dw = K Y^T`` (``gradient="full"``; then ``z`` must be None)."""
        if self.gradient == "full" and z is not None:
            raise ValueError("gradient='full' differentiates through z(w): do not pass z")
        Yw, s, z = self.item_factors(w, z)
        XS, gam, T = self.XS, self.gamma, self.targets
        r_ui = np.einsum("ud,und->un", XS, Yw[gam])  # (|S|, N)
        r_ut = XS @ Yw[T].T  # (|S|, T)
        delta = r_ui[:, :, None] - r_ut[:, None, :]  # (|S|, N, T)
        g = _sigmoid(delta / self.b)
        wgt = (self.h[:, None] * self.valid)[:, :, None]
        loss = float((wgt * g).sum() + self.eta * np.abs(w).sum())
        c = wgt * _sigmoid_prime(delta / self.b) / self.b  # dg/d delta, weighted
        e_ui = np.einsum("ud,und->un", XS, s[gam])  # d r_ui / d w_i
        e_ut = XS @ s[T].T  # d r_ut / d w_t
        grad = np.zeros_like(w)
        np.add.at(grad, gam.ravel(), (c.sum(axis=2) * e_ui).ravel())
        grad[T] -= np.einsum("unt,ut->t", c, e_ut)
        if self.gradient == "full":
            grad += self._z_path(w, z, Yw, c)
        grad += self.eta * (w > 0)
        return loss, grad

    def _z_path(self, w, z, Yw, c) -> np.ndarray:
        """``(dz/dw)^T dL/dz``. With ``A_i = P_i^{-1} + z z^T`` and ``y_i = A_i^{-1}(b_i + w_i z)``,
        ``grad_z (x . y_i) = (w_i - z . y_i) A_i^{-1} x - y_i (z . A_i^{-1} x)``; the users' factors
        are summed per item first (``a_i``, weighted by dL/dr), ``A_i^{-1} a_i`` by Sherman-Morrison."""
        XS, gam, T = self.XS, self.gamma, self.targets
        d = XS.shape[1]
        a = np.zeros_like(self.Y)
        np.add.at(a, gam.ravel(), (c.sum(axis=2)[:, :, None] * XS[:, None, :]).reshape(-1, d))
        a[T] -= np.einsum("unt,ud->td", c, XS)
        p = np.einsum("ijk,k->ij", self.P, z)
        Pa = np.einsum("ijk,ik->ij", self.P, a)
        Aa = Pa - p * ((p * a).sum(axis=1) / (1.0 + p @ z))[:, None]
        gz = ((w - Yw @ z)[:, None] * Aa - Yw * (Aa @ z)[:, None]).sum(axis=0)
        return self.Y @ (self.K @ gz)


def _sigmoid_prime(x: np.ndarray) -> np.ndarray:
    """``sigmoid'(x) = e / (1 + e)^2`` with ``e = exp(-|x|)``: no cancellation, > 0 wherever the
    true value is representable (``|x|`` below about 745)."""
    e = np.exp(-np.abs(x))
    return e / (1.0 + e) ** 2


def _sigmoid(x: np.ndarray) -> np.ndarray:
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1.0 / (1.0 + np.exp(-x[pos]))
    ex = np.exp(x[~pos])
    out[~pos] = ex / (1.0 + ex)
    return out
