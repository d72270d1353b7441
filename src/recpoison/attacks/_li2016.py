"""Shared machinery of the PGA and SGLD attacks of Li, Wang, Singh, Vorobeychik, "Data poisoning
attacks on factorization-based collaborative filtering", NeurIPS 2016 (seed 001 ref. [19]).

Model (seed 001 eq. (1), the victim :class:`recpoison.victims.mf.MF`; Li et al.'s alternating
minimisation formulation, their eq. (2)): on the data set extended by ``n_fake`` malicious rows ``M~``

    L(X, X~, Y; M~) = sum_{(u,i) in Omega} (r_ui - x_u.y_i)^2 + sum_{u~, i} (M~_u~i - x~_u~.y_i)^2
                      + lambda (||X||^2 + ||X~||^2 + ||Y||^2),

trained by exact ALS (``RowBlocks`` / ``ridge_solve`` of the victim). During the optimisation every
fake user rates every item with a continuous rating in ``[r_min, r_max]`` (Li et al.'s relaxation of
the malicious rating matrix); the targets are fixed at ``r_max``.

Utility (Li et al. §3, the integrity attack ``R^in = sum_i sum_{j in J0} w(j) M^_ij`` with
``w = 1`` on the targets, the target-promotion version seed 001 §5.1.3 describes): the sum over the
normal users who have not rated a target (those whose top-N lists count in HR@N) of the predicted
rating ``x_u.y_t`` of each target ``t``.

Gradient of the utility w.r.t. the fake ratings (Li et al. §4, "computing the gradient through the
first-order KKT conditions"): at the ALS solution ``theta = (X, X~, Y)`` the stationary condition
``F(theta, M~) = grad_theta L = 0`` holds, so by the implicit function theorem
``d theta / d M~ = -H^{-1} dF/dM~`` with ``H`` the Hessian of ``L`` in ``theta``, and

    dR/dM~_ui = -(dF/dM~_ui)^T z = 2 (z_x~u . y_i + x~_u . z_yi),      z = H^{-1} grad_theta R,

because ``dF/dM~_ui`` is ``-2 y_i`` in the block of ``x~_u``, ``-2 x~_u`` in the block of ``y_i``, 0
elsewhere. ``z`` is one linear solve per gradient, done by conjugate gradient (``_cg``) with exact
Hessian-vector products (no Hessian is formed); all fake users are handled jointly. ``L`` is eq. (1)
on the extended matrix, so the products are those of :class:`._mfhessian.MFHessian` (the one
definition of eq. (1)'s Hessian, shared with the exact influence of the S-attacks), built per
gradient from the surrogate's factors, its fixed real + fake rating pattern and current values, in
the surrogate's dtype; on single ``(n, d)`` vectors it uses sparse products at the rating pattern
(``sampled_addmm`` for ``de_ui = a_u.y_i + x_u.b_i``, CSR x dense products for the sums). What we
implement departs from Li et al. in one respect, deliberately: Li et al. approximate the derivative by
differentiating each factor's own stationary condition with the others held fixed
(``d u_i / d M~ = 0``, ``d v_j / d M~_ij = (lambda I + sum u u^T)^{-1} u~_i``). For the integrity
utility, which depends only on the target items' factors, that approximation gives a zero gradient
on every non-target rating, i.e. it cannot choose fillers at all; we therefore solve the complete
first-order system (the exact implicit gradient at the ALS stationary point, which the finite-
difference test in ``tests/test_attacks_li2016.py`` checks against retraining to convergence).

Between updates the surrogate is re-trained by ``inner_sweeps`` warm-started ALS sweeps (the
attacker's model follows the fake ratings; Li et al. re-solve the inner problem each step).

Budget and final profiles (seed 001 §5.1.3 for SGLD, used for both as the task asks): the ``n``
non-target items with the largest absolute fake ratings are the fillers, with their ratings rounded
to the scale; the targets get ``r_max``. This selection is applied after a first phase on dense
ratings; a second phase then optimises the kept ratings on the sparse profiles the victim will see
(:class:`Li2016Attack`), because on ML-100K 20 fillers of 1682 items keep little of what a dense
profile achieved. "Absolute" is read on Li et al.'s centred scale: ratings are
centred at the middle of the rating scale, so an item pushed to ``r_min`` counts as much as one
pushed to ``r_max``; ties (saturated ratings) are broken by the size of the last gradient.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from ..config import check
from ..errors import ConfigError
from ..interactions import Interactions
from ..victims.base import topk_indices
from ..victims.mf import RowBlocks, ridge_solve
from ._mfhessian import MFHessian, RatingPattern
from .base import Attack, assemble, non_targets


@dataclass(frozen=True)
class Li2016Config:
    """Hyper-parameters shared by PGA and SGLD.

    ``d`` and ``reg`` are the surrogate MF's (seed 001 §5.1.4: d = 64; ``reg`` = the victim MF's
    default); the optimisation settings are ours (Li et al. do not report them), see each attack.
    """

    d: int = 64
    reg: float = 7.0
    fit_sweeps: int = 15
    inner_sweeps: int = 3
    iters: int = 10
    refine_iters: int = 10
    step: float = 0.5
    cg_iters: int = 30
    cg_tol: float = 1e-4
    dtype: Literal["float32", "float64"] = "float32"
    #: "optimised": Li et al.'s budget projection (the n largest absolute ratings after the dense
    #: phase); "random": each fake user's fillers drawn uniformly among the non-targets first and
    #: only their ratings optimised (seed 001 §5.1.3's PGA baseline: "generates filler items randomly")
    fillers: Literal["optimised", "random"] = "optimised"

    def __post_init__(self) -> None:
        name = type(self).__name__.replace("Config", "").lower()
        check(self.fillers in ("optimised", "random"), f"{name}: fillers={self.fillers!r} must be 'optimised' (Li et al.) or 'random' (seed 001's PGA)")
        check(self.d >= 1, f"{name}: d={self.d} must be at least 1")
        check(self.reg > 0, f"{name}: reg={self.reg} must be positive")
        check(self.fit_sweeps >= 1, f"{name}: fit_sweeps={self.fit_sweeps} must be at least 1")
        check(self.inner_sweeps >= 1, f"{name}: inner_sweeps={self.inner_sweeps} must be at least 1")
        check(self.iters >= 0, f"{name}: iters={self.iters} must be >= 0")
        check(self.refine_iters >= 0, f"{name}: refine_iters={self.refine_iters} must be >= 0")
        check(self.step > 0, f"{name}: step={self.step} must be positive")
        check(self.cg_iters >= 1, f"{name}: cg_iters={self.cg_iters} must be at least 1")
        check(self.cg_tol > 0, f"{name}: cg_tol={self.cg_tol} must be positive")


class Surrogate:
    """The attacker's MF on ``view`` plus continuous fake rows ``M`` (all fake users at once), each
    fake user rating the items of its row of ``support`` (default: every item).

    ``set_fake(M)`` replaces the fake ratings (``M`` is n_fake x n_items; entries off the support are
    ignored); ``fit(sweeps)`` runs warm-started ALS; ``utility()``
    and ``gradient()`` give R and dR/dM (see the module docstring).
    """

    def __init__(self, view: Interactions, targets: np.ndarray, n_fake: int, d: int, reg: float,
                 dtype: str, seed: int, support: np.ndarray | None = None) -> None:
        self.view = view
        self.targets = np.asarray(targets, dtype=np.int64)
        self.n_fake = n_fake
        self.reg = float(reg)
        self.dt = torch.float64 if dtype == "float64" else torch.float32
        self.n_real, self.n_items = view.shape
        real = view.matrix.tocoo()
        self._real = (real.row.astype(np.int64), real.col.astype(np.int64), real.data.astype(np.float64))
        # users whose HR counts: normal users who have not rated the target
        rated = (view.matrix[: view.n_normal][:, self.targets] != 0).toarray()
        self.elig = torch.as_tensor(~rated, dtype=self.dt)
        gen = torch.Generator().manual_seed(int(seed))
        self.Y = (torch.randn(self.n_items, d, generator=gen, dtype=torch.float64) * 0.1).to(self.dt)
        self.X = torch.zeros(self.n_real + n_fake, d, dtype=self.dt)
        # fixed sparsity pattern: the real ratings plus the fake users' (user, item) pairs of `support`;
        # `_csr[2]` / `_csrT[2]` map the concatenated (real, fake) values to the csr order of the
        # matrix / of its transpose
        self.support = np.ones((n_fake, self.n_items), dtype=bool) if support is None else np.asarray(support, dtype=bool)
        fr, fc = np.nonzero(self.support)
        self._fake_pos = (fr, fc)
        fr = fr + self.n_real
        rows = np.concatenate([self._real[0], fr])
        cols = np.concatenate([self._real[1], fc])
        shape = (self.n_real + n_fake, self.n_items)
        C = sp.csr_matrix((np.arange(1, rows.size + 1, dtype=np.float64), (rows, cols)), shape=shape)
        C.sort_indices()
        CT = C.T.tocsr()
        CT.sort_indices()
        self._csr = (C.indptr.copy(), C.indices.copy(), (C.data - 1).astype(np.int64))
        self._csrT = (CT.indptr.copy(), CT.indices.copy(), (CT.data - 1).astype(np.int64))
        self._shape = shape
        # the pattern of the Hessian-vector products (fixed for this surrogate; values and factors change)
        self._pattern = RatingPattern(C.indptr, C.indices, shape)

    # ------------------------------------------------------------------ data and training
    def set_fake(self, M: np.ndarray) -> None:
        self.M = np.asarray(M, dtype=np.float64)
        vals = np.concatenate([self._real[2], self.M[self._fake_pos]])
        ip, ix, order = self._csr
        ipT, ixT, orderT = self._csrT
        self._by_user = RowBlocks(sp.csr_matrix((vals[order], ix, ip), shape=self._shape), self.dt, torch.device("cpu"))
        self._by_item = RowBlocks(sp.csr_matrix((vals[orderT], ixT, ipT), shape=self._shape[::-1]), self.dt, torch.device("cpu"))
        self._v = torch.as_tensor(vals[order], dtype=self.dt)

    def fit(self, sweeps: int) -> None:
        for _ in range(sweeps):
            self.X = ridge_solve(self._by_user, self.Y, self.reg)
            self.Y = ridge_solve(self._by_item, self.X, self.reg)

    # ------------------------------------------------------------------ utility and its gradient
    def utility(self) -> float:
        t = self.targets
        S = self.X[: self.view.n_normal] @ self.Y[t].T
        return float((S * self.elig).sum())

    def _utility_grad(self) -> tuple[torch.Tensor, torch.Tensor]:
        t = self.targets
        gX = torch.zeros_like(self.X)
        gY = torch.zeros_like(self.Y)
        gX[: self.view.n_normal] = self.elig @ self.Y[t]
        gY[t] = self.elig.T @ self.X[: self.view.n_normal]
        return gX, gY

    def gradient(self, cg_iters: int, cg_tol: float) -> np.ndarray:
        """dR/dM~ (n_fake x n_items) by the implicit function theorem; 0 on the target columns."""
        H = MFHessian(self.X, self.Y, self._pattern, self.reg, values=self._v)  # exact Hessian of L, surrogate's dtype
        gX, gY = self._utility_grad()
        zX, zY = _cg(H.matvec, gX, gY, cg_iters, cg_tol)
        f = slice(self.n_real, self.n_real + self.n_fake)
        G = 2 * (zX[f] @ self.Y.T + self.X[f] @ zY.T)
        G = G.double().numpy()
        G[:, self.targets] = 0.0
        G[~self.support] = 0.0
        return G


def _cg(hvp, bX, bY, iters: int, tol: float):
    """Conjugate gradient for H z = b over the pair of blocks (X, Y); stops at ``tol`` relative
    residual or on non-positive curvature (H is PSD at an ALS minimum up to the rotation
    symmetry of MF, which the utility's gradient is orthogonal to)."""
    zX, zY = torch.zeros_like(bX), torch.zeros_like(bY)
    rX, rY = bX.clone(), bY.clone()
    pX, pY = rX.clone(), rY.clone()
    rr = float((rX * rX).sum() + (rY * rY).sum())
    b_norm = rr**0.5
    if b_norm == 0:
        return zX, zY
    for _ in range(iters):
        hX, hY = hvp(pX, pY)
        curv = float((pX * hX).sum() + (pY * hY).sum())
        if curv <= 0:
            break
        alpha = rr / curv
        zX += alpha * pX
        zY += alpha * pY
        rX -= alpha * hX
        rY -= alpha * hY
        rr_new = float((rX * rX).sum() + (rY * rY).sum())
        if rr_new**0.5 <= tol * b_norm:
            break
        beta = rr_new / rr
        pX = rX + beta * pX
        pY = rY + beta * pY
        rr = rr_new
    return zX, zY


class Li2016Attack(Attack):
    """Common driver. Phase 1: ``_optimise`` on dense fake ratings (every fake user rates every
    item). Projection on the budget: each fake user keeps the ``n`` non-target items with the
    largest absolute (centred) ratings. Phase 2: ``_optimise`` again on the kept ratings only
    (``refine_iters`` steps; the surrogate, re-fitted on the sparse profiles by ``fit_sweeps // 3``
    ALS sweeps warm-started from phase 1's item factors). Subclasses define
    ``_optimise``."""

    def _generate(self, view, targets, n_fake, n_filler, rng):
        c = self.config
        lo, hi = view.rating_scale
        if view.implicit or hi <= lo:
            raise ConfigError(f"{self.name}: needs explicit ratings on a scale with r_min < r_max (Li et al. 2016 optimise rating values)")
        mean, std = view.item_stats()
        M = np.clip(rng.normal(mean, np.maximum(std, 1e-3), size=(n_fake, view.n_items)), lo, hi)
        M[:, targets] = hi
        seed = int(rng.integers(2**31 - 1))
        if c.fillers == "random":  # seed 001 §5.1.3: random fillers, their ratings optimised
            others = non_targets(view, targets)
            items = np.sort(others[topk_indices(rng.random((n_fake, len(others))), min(n_filler, len(others)))], axis=1)
            support = np.zeros(M.shape, dtype=bool)
            np.put_along_axis(support, items, True, axis=1)
            support[:, targets] = True
            sur = Surrogate(view, targets, n_fake, c.d, c.reg, c.dtype, seed, support=support)
            sur.set_fake(M)
            sur.fit(c.fit_sweeps)
            M, _ = self._optimise(sur, M, view, targets, rng, c.iters + c.refine_iters)
            return assemble(view, items, np.take_along_axis(M, items, axis=1), targets)
        sur = Surrogate(view, targets, n_fake, c.d, c.reg, c.dtype, seed)
        sur.set_fake(M)
        sur.fit(c.fit_sweeps)
        M, G = self._optimise(sur, M, view, targets, rng, c.iters)
        items = budget_projection(view, M, G, targets, n_filler)
        if c.refine_iters and n_filler:
            support = np.zeros(M.shape, dtype=bool)
            np.put_along_axis(support, items, True, axis=1)
            support[:, targets] = True
            Y = sur.Y
            sur = Surrogate(view, targets, n_fake, c.d, c.reg, c.dtype, seed, support=support)
            sur.Y = Y
            sur.set_fake(M)
            sur.fit(max(1, c.fit_sweeps // 3))  # warm start from phase 1's item factors
            M, _ = self._optimise(sur, M, view, targets, rng, c.refine_iters)
        return assemble(view, items, np.take_along_axis(M, items, axis=1), targets)

    def _optimise(self, sur: Surrogate, M, view, targets, rng, iters: int):  # pragma: no cover - abstract
        raise NotImplementedError


def budget_projection(view: Interactions, M: np.ndarray, G: np.ndarray | None, targets, n_filler: int) -> np.ndarray:
    """Filler items per fake user: the ``n_filler`` non-target items with the largest
    |M - middle of the scale| (ties broken by |G|) — seed 001 §5.1.3's "largest absolute ratings"."""
    lo, hi = view.rating_scale
    key = np.abs(M - (lo + hi) / 2.0)
    if G is not None and np.abs(G).max() > 0:
        g = np.abs(G)
        key = key + 1e-6 * (hi - lo) * g / float(g.max())
    key[:, targets] = -np.inf
    if n_filler == 0:
        return np.zeros((M.shape[0], 0), dtype=np.int64)
    return topk_indices(key, n_filler)

