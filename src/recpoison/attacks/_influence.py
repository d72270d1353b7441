"""Influence of training ratings on matrix-factorisation predictions (seed 001 §4.3).

Seed 001 (Fang, Gong, Liu, WWW 2020) measures how much removing one rating (an edge ``(k, j)`` of
the user-item bipartite graph) changes the predicted score ``r_hat_ot = x_o^T y_t`` of a target item
``t``, with the influence function of Koh & Liang (2017), eq. (12)::

    Phi((k, j), (o, t)) = r_hat_ot(theta*_{E \\ (k,j)}) - r_hat_ot(theta*)
                        ~ grad_theta r_hat_ot^T  H^{-1}  grad_theta l((k, j))

then eq. (13) ``phi((k, j), t) = sum_{o in U} |Phi((k, j), (o, t))|``, the influence of a user
eq. (8) ``pi(k, t) = sum_{j in Omega_k} phi((k, j), t)`` and of a set eq. (9) (additive).

Conventions. ``theta = (X, Y)`` and ``H`` is the Hessian of the objective of eq. (1)
``F = sum_E (r_ui - x_u^T y_i)^2 + lambda (||X||^2 + ||Y||^2)``; eq. (10) divides ``F`` by ``|E|``
and eq. (12) multiplies by ``1/|E|``, which cancel. ``l((k, j))`` is the squared error of the removed
rating (its regulariser stays: removing a rating from eq. (1) removes only its error term), so the
first-order prediction is exactly what brute-force retraining without the rating measures
(``tests/test_attacks_sattack.py`` checks this).

Two ways to apply ``H^{-1}`` (never a dense inverse of the full Hessian):

* ``hessian="exact"``: the full Hessian, by conjugate gradients on Hessian-vector products over
  the observed ratings, one right-hand side ``grad r_hat_ot`` per normal user ``o``, batched
  (:func:`prediction_influence`: :meth:`MFHessian.solve` on ``(n, d, m)`` blocks of ``m`` users).
  The products are those of :class:`._mfhessian.MFHessian` (re-exported here), the one definition
  of eq. (1)'s Hessian, which PGA/SGLD (:mod:`._li2016`) use too. Exact to the CG tolerance, but it
  costs ``|U|`` solves of size ``(n_users + n_items) d`` per target, which is minutes to hours on
  ML-100K (measured in docs/sattack.md, before the batched products of ``benchmarks/hvp.py``);
  meant for small problems and for validating the default.
* ``hessian="block"`` (default): the block-diagonal part of ``H``, one ``d x d`` block per user
  (``2 (sum_{j in Omega_k} y_j y_j^T + lambda I)``) and per item, ignoring the user-item cross
  blocks. This is the same approximation seed 001 makes for its attack gradient (eqs. 20-21:
  each factor's stationarity condition is differentiated with the other side held fixed). Under it
  removing ``(k, j)`` moves only ``x_k`` and ``y_j``, so ``Phi((k, j), (o, t))`` is non-zero only
  for ``o = k`` (through ``x_k``) or ``j = t`` (through ``y_t``, for every ``o``), and all ``pi``
  come in closed form from batched ``d x d`` solves. How well its ranking of users agrees with the
  exact one is measured in docs/sattack.md.
"""

from __future__ import annotations

from typing import Callable, Literal

import numpy as np
import scipy.sparse as sp
import torch

from ..victims.mf import RowBlocks, gram
from ._mfhessian import MFHessian  # noqa: F401  (the Hessian of eq. (1); imported from here by callers)


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float64)


def user_influence(
    X: np.ndarray,
    Y: np.ndarray,
    R: sp.csr_matrix,
    reg: float,
    targets: np.ndarray,
    n_normal: int | None = None,
    hessian: Literal["block", "exact"] = "block",
) -> np.ndarray:
    """``pi(k, t)`` of eq. (8) for every user ``k`` (rows of ``R``) and target ``t``.

    ``X`` (n_users x d), ``Y`` (n_items x d): MF factors fitted on ``R`` (users x items ratings)
    with L2 weight ``reg``. ``U`` of eq. (13), the users whose predictions are summed over, is the
    first ``n_normal`` rows (default: all). Returns ``(n_users, len(targets))``.
    """
    phi = edge_influence(X, Y, R, reg, targets, n_normal, hessian)
    R = sp.csr_matrix(R)
    rows = np.repeat(np.arange(R.shape[0]), np.diff(R.indptr))
    out = np.zeros((R.shape[0], phi.shape[1]))
    np.add.at(out, rows, phi)
    return out


def edge_influence(
    X: np.ndarray,
    Y: np.ndarray,
    R: sp.csr_matrix,
    reg: float,
    targets: np.ndarray,
    n_normal: int | None = None,
    hessian: Literal["block", "exact"] = "block",
) -> np.ndarray:
    """``phi((k, j), t)`` of eq. (13) for every stored rating of ``R`` (csr order) and target.

    Returns ``(R.nnz, len(targets))``.
    """
    R = sp.csr_matrix(R, dtype=np.float64)
    targets = np.atleast_1d(np.asarray(targets, dtype=np.int64))
    n_normal = R.shape[0] if n_normal is None else int(n_normal)
    if hessian == "block":
        return _phi_block(X, Y, R, reg, targets, n_normal)
    if hessian == "exact":
        return np.stack([np.abs(prediction_influence(X, Y, R, reg, t, np.arange(n_normal))).sum(axis=1) for t in targets], axis=1)
    raise ValueError(f"hessian={hessian!r}: use 'block' or 'exact'")


def _phi_block(X, Y, R: sp.csr_matrix, reg: float, targets: np.ndarray, n_normal: int) -> np.ndarray:
    Yt = _t(Y)
    rows = np.repeat(np.arange(R.shape[0]), np.diff(R.indptr))
    cols = R.indices
    res = R.data - np.einsum("nd,nd->n", X[rows], Y[cols])  # r_kj - x_k^T y_j
    # through x_k (o = k): Phi = y_t^T A_k^{-1} (-res_kj y_j), A_k = sum_j y_j y_j^T + reg I
    A, _ = gram(RowBlocks(R, torch.float64, torch.device("cpu")), Yt, reg)
    a = torch.linalg.solve(A, Yt[targets].T.unsqueeze(0).expand(A.shape[0], -1, -1))  # (users, d, T)
    a = a.numpy()
    phi_self = -res[:, None] * np.einsum("nd,ndt->nt", Y[cols], a[rows])  # (nnz, T)
    phi = np.abs(phi_self)
    # through y_t (j = t): Phi((k, t), (o, t)) = -res_kt x_o^T C_t^{-1} x_k for every o in U
    Rc = R.tocsc()
    Xn = X[:n_normal]
    for ti, t in enumerate(targets):
        raters = Rc.indices[Rc.indptr[t] : Rc.indptr[t + 1]]
        if raters.size == 0:
            continue
        Xr = X[raters]
        C = Xr.T @ Xr + reg * np.eye(X.shape[1])
        M = Xn @ np.linalg.solve(C, Xr.T)  # (n_normal, raters): x_o^T C^{-1} x_k
        edge = _edge_positions(R, raters, t)
        r_kt = res[edge]
        Phi_y = -M * r_kt[None, :]  # (o, k)
        total = np.abs(Phi_y).sum(axis=0)
        own = raters < n_normal
        # o = k: both paths act on the same prediction, add before the absolute value
        kk = raters[own]
        total[own] += np.abs(phi_self[edge[own], ti] + Phi_y[kk, np.flatnonzero(own)]) - np.abs(Phi_y[kk, np.flatnonzero(own)])
        total[~own] += np.abs(phi_self[edge[~own], ti])
        phi[edge, ti] = total
    return phi


def _edge_positions(R: sp.csr_matrix, users: np.ndarray, item: int) -> np.ndarray:
    """Positions in ``R.data`` of the ratings ``(u, item)`` for ``users`` (all must exist)."""
    starts, ends = R.indptr[users], R.indptr[users + 1]
    pos = np.empty(len(users), dtype=np.int64)
    # indices are sorted within each row (canonical csr): binary search row by row, vectorised
    lens = ends - starts
    flat = np.repeat(np.arange(len(users)), lens)
    offs = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
    hit = R.indices[np.repeat(starts, lens) + offs] == item
    pos[flat[hit]] = (np.repeat(starts, lens) + offs)[hit]
    return pos


# ------------------------------------------------------------------------------ exact Hessian
def prediction_influence(
    X: np.ndarray, Y: np.ndarray, R: sp.csr_matrix, reg: float, t: int, users: np.ndarray, batch: int = 256
) -> np.ndarray:
    """Eq. (12) with the full Hessian: ``Phi((k, j), (o, t))`` for every rating (csr order) and
    every ``o`` in ``users``. Returns ``(R.nnz, len(users))``. Costly: see the module docstring."""
    R = sp.csr_matrix(R, dtype=np.float64)
    H = MFHessian(X, Y, R, reg)
    n_users, n_items, d = X.shape[0], Y.shape[0], X.shape[1]
    out = np.zeros((R.nnz, len(users)))
    for s in range(0, len(users), batch):
        us = torch.as_tensor(np.asarray(users[s : s + batch], dtype=np.int64))
        m = len(us)
        Bx = torch.zeros(n_users, d, m, dtype=torch.float64)
        By = torch.zeros(n_items, d, m, dtype=torch.float64)
        Bx[us, :, torch.arange(m)] = H.Y[t].expand(m, d)  # d r_ot / d x_o = y_t
        By[t] = H.X[us].T  # d r_ot / d y_t = x_o
        Vx, Vy = H.solve(Bx, By)
        # grad l((k, j)) = -2 res_kj (y_j in x_k, x_k in y_j): its product with V is -2 res_kj times
        # the directional derivative y_j.v_xk + x_k.v_yj of the prediction at the rating
        g = H.directional(Vx, Vy)
        out[:, s : s + m] = (-2 * H.res.unsqueeze(-1) * g.reshape(R.nnz, m)).numpy()
    return out


# ------------------------------------------------------------------------------ Algorithm 1
def greedy_select(
    set_influence: Callable[[np.ndarray], np.ndarray],
    n_candidates: int,
    budget: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Algorithm 1 of seed 001: grow ``S`` one user at a time, each time adding the candidate with
    the largest marginal gain ``I(S + {k}) - I(S)`` (ties broken at random).

    ``set_influence(S_mask_batch)`` evaluates eq. (9) for a batch of candidate sets given as a
    boolean matrix (candidates x n_candidates) and returns one value per row. With the additive
    influence of eq. (9) the marginal gain of ``k`` is ``pi(k, t)`` whatever ``S`` is, so the result
    is the top-``budget`` users by ``pi`` (the tests check this); the loop is kept literal so that a
    non-additive set influence can be plugged in.
    """
    budget = min(int(budget), n_candidates)
    chosen = np.zeros(n_candidates, dtype=bool)
    order = []
    tie = rng.random(n_candidates)
    base = 0.0
    additive = getattr(set_influence, "pi", None)
    for _ in range(budget):
        cand = np.flatnonzero(~chosen)
        if additive is not None:  # eq. (9): the marginal gain of k is pi(k) (no need to evaluate sets)
            gains = additive[cand]
        else:
            masks = np.broadcast_to(chosen, (len(cand), n_candidates)).copy()
            masks[np.arange(len(cand)), cand] = True
            gains = set_influence(masks) - base
        best = np.lexsort((-tie[cand], -gains))[0]
        k = cand[best]
        chosen[k] = True
        order.append(k)
        base = base + gains[best]
    return np.asarray(order, dtype=np.int64)


def delta_valid(delta: float) -> bool:
    """``Delta`` (the size of the influential user set) is a whole count >= 1 or a fraction in (0, 1)."""
    return (0 < delta < 1) or (delta >= 1 and float(delta).is_integer())


def delta_count(delta: float, n_normal: int) -> int:
    """|S|: ``delta`` users, or ``round(delta * n_normal)`` (at least 1) for a fraction; at most all."""
    size = max(1, int(round(delta * n_normal))) if delta < 1 else int(delta)
    return min(size, n_normal)


def additive_set_influence(pi: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Eq. (9): the influence of a set is the sum of its users' influences."""

    def influence(masks: np.ndarray) -> np.ndarray:
        return masks @ pi

    influence.pi = np.asarray(pi, dtype=np.float64)  # type: ignore[attr-defined]
    return influence
