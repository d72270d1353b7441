"""Attacks on the random-walk recommender (``rwr``): Fang et al. 2018 (``graph``) and S-Graph (``s-graph``).

``graph``: Fang, Yang, Gong, Liu, "Poisoning attacks to graph-based recommender systems", ACSAC
2018, as seed 001 §7 and REFERENCES.md §6.1 outline it (no public code). ``s-graph``: seed 001 §7.1
(eqs. (22)-(29)), the same optimisation over the ``Delta`` most influential users only. Seed 003
uses ``graph`` on binary edges as its SRWA baseline (implicit data: every weight is 1).

The victim (``victims/rwr.py``): the stationary distribution ``p_u`` of a random walk with restart
at user ``u`` on the user-item graph weighted by the ratings, ``p_u = (1 - alpha) Q p_u + alpha e_u``
(eq. (22)), ``Q`` propagating mass along the transitions ``q_xy = w_xy / sum_z w_xz`` (eq. (23));
items are ranked by ``p_u``. A walker on a node without edges restarts at ``u``.

Fake users are made one at a time, each inserted before the next is optimised. For fake user ``v``
the weights ``w in [0, r_max]^{n_items}`` of its edges are relaxed to real values, ``w_t = r_max``
fixed, and::

    min_w  sum_{u in S} sum_{i in L_u} g(p_ui - p_ut) + eta ||w||_1,    g(x) = 1 / (1 + exp(-x / b))

with ``L_u`` the top-N of ``u`` before ``v`` is optimised, ``S`` all normal users (``graph``) or the
influential set (``s-graph``). The gradient goes through the walk's fixed point by the adjoint
method: with ``A_u = (1 - alpha)(Q + e_u d^T)`` (``d`` marks the nodes without edges, whose mass
restarts at ``u``), ``p_u = (I - A_u)^{-1} alpha e_u``, so for ``lambda_u = (I - A_u)^{-T} dL/dp_u``
(solved by the same contraction, rate ``1 - alpha``)::

    dL/dw_j = (1 - alpha) sum_u lambda_u^T (dQ/dw_j) p_u
            = (1 - alpha) sum_u [ p_u[v] (lambda_u[j] - sum_i lambda_u[i] w_i / W_v) / W_v
                                + p_u[j] (lambda_u[v] - (Q^T lambda_u)[j]) / D_j ]

(``W_v = sum_i w_i``, ``D_j`` item ``j``'s weighted degree with ``w_j`` included: ``w_j`` enters the
transitions out of ``v`` and out of item ``j``). A test checks it against finite differences of
the loss computed by power iteration. Fillers = the ``n`` largest ``w_j``.

S-Graph's influential users (eqs. (24)-(29), Algorithm 1 of seed 001): removing edge ``(k, j)``
changes ``p_ut`` by ``delta = (1 - alpha) p_uk M(t, j)`` with ``M = (I - (1 - alpha) Q)^{-1}``,
approximated by ``I + sum_{i=1}^{T} (1 - alpha)^i Q^i`` (``taylor`` = T, seed 001's example T = 1);
``phi((k, j), t) = sum_u delta``, ``pi(k, t) = sum_{j in Omega_k} phi``, and the ``Delta`` users with the
largest ``pi`` (greedy selection on the additive set influence). Seed 001 writes eq. (28) as
``(1 - alpha) p_uj M(t, k)``: that is the derivative for ``Q`` read literally as ``(Q)_kj = q_kj``;
with ``Q`` propagating mass (the reading under which ``p_u`` is a distribution, the one ``rwr``
implements) the same derivation gives ``p_uk M(t, j)``, used here. With T = 1 only users who rated
``t`` get a non-zero influence (``M(t, j) = 1`` for ``j = t`` and 0 for the other items, the graph
being bipartite); T = 2 adds users who rated items co-rated with ``t``.

Departures and choices (no public code; each a parameter):

* Objective: Fang et al. 2018 penalise ``||w||_2^2`` with a weight we could not establish; we use
  seed 001's form of the same problem (eq. (6): ``eta ||w||_1``, ``eta = 0.01``, ``b = 0.01``) and
  the S-attacks' optimiser: ``steps`` projected subgradient steps ``w <- clip(w - a_k G / max|G|)``,
  ``a_k = step * r_max / sqrt(k)``, from ``w = r_max`` on the targets and 0 elsewhere.
* ``L_u`` and ``S`` are fixed while one fake user is optimised (recomputed before each fake user).
  Each step's walk and adjoint iterations start from the previous step's solutions (the fixed points
  do not depend on the start; a test checks the gradient against cold starts).
* Filler ratings: ``filler_ratings="weights"`` (default) rates each filler with its weight rounded
  to the scale (REFERENCES.md §6.1: Fang et al. 2018's choice, unverified), ``"disguise"`` draws
  ``N(mu_i, sigma_i^2)`` (seed 001 Algorithm 2).
* The walk's restart probability ``alpha`` should equal the victim's (0.3, ``rwr``'s default);
  ``weights="rating"`` or ``"binary"`` likewise. Several targets: the losses are summed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import scipy.sparse as sp

from ..config import check
from ..victims.base import topk_indices
from ..victims.rwr import rwr_power, transitions
from ._influence import additive_set_influence, delta_count, delta_valid, greedy_select
from ._sattack import _sigmoid, _sigmoid_prime
from .base import ATTACKS, Attack, non_targets


@dataclass(frozen=True)
class GraphConfig:
    alpha: float = 0.3
    weights: Literal["rating", "binary"] = "rating"
    b: float = 0.01
    eta: float = 0.01
    top_n: int | None = None
    steps: int = 20
    step: float = 0.2
    tol: float = 1e-6
    max_iter: int = 200
    filler_ratings: Literal["weights", "disguise"] = "weights"
    #: s-graph: |S| (a count, or a fraction of the normal users in (0, 1)) and the Taylor order T
    delta: float = 400
    taylor: int = 1

    def __post_init__(self) -> None:
        check(0 < self.alpha < 1, f"alpha={self.alpha} must be in (0, 1) (the restart probability)")
        check(self.weights in ("rating", "binary"), f"weights={self.weights!r}: use 'rating' or 'binary'")
        check(self.b > 0, f"b={self.b} must be positive (width of the WMW loss)")
        check(self.eta >= 0, f"eta={self.eta} must be >= 0")
        check(self.top_n is None or self.top_n >= 1, f"top_n={self.top_n} must be at least 1 (or unset: the cell's K)")
        check(self.steps >= 0, f"steps={self.steps} must be >= 0")
        check(self.step > 0, f"step={self.step} must be positive")
        check(self.tol > 0 and self.max_iter >= 1, "tol must be positive and max_iter at least 1")
        check(self.filler_ratings in ("weights", "disguise"), f"filler_ratings={self.filler_ratings!r}: use 'weights' or 'disguise'")
        check(delta_valid(self.delta), f"delta={self.delta} must be a whole count >= 1 or a fraction of the users in (0, 1)")
        check(self.taylor >= 1, f"taylor={self.taylor} must be at least 1")


class WalkProblem:
    """The loss of one fake user's weights ``w`` (appended as the last user of ``W``) and its gradient."""

    def __init__(self, W: sp.csr_matrix, S: np.ndarray, h: np.ndarray, targets: np.ndarray,
                 lists: np.ndarray, c: GraphConfig) -> None:
        self.W = sp.csr_matrix(W, dtype=np.float64)
        self.n_users, self.n_items = self.W.shape[0] + 1, self.W.shape[1]
        self.S, self.h, self.targets, self.c = np.asarray(S), np.asarray(h, dtype=np.float64), np.asarray(targets), c
        self.lists = lists  # (|S|, N) items, -1 where the list is short
        self.valid = lists >= 0
        # the last step's walk and adjoint: the next step (a nearby w) starts from them
        self._walk_state: tuple[np.ndarray, np.ndarray] | None = None
        self._adjoint_state: tuple[np.ndarray, np.ndarray] | None = None

    def _graph(self, w: np.ndarray):
        W = sp.vstack([self.W, sp.csr_matrix(w[None, :])], format="csr")
        W.eliminate_zeros()
        return W, transitions(W)

    def _walk(self, T, users, warm: bool = False):
        c = self.c
        out = rwr_power(*T, users, c.alpha, c.tol, c.max_iter, init=self._walk_state if warm else None)[:2]
        if warm:
            self._walk_state = out
        return out

    def loss(self, w: np.ndarray) -> float:
        _, T = self._graph(w)
        _, Pi = self._walk(T, self.S)
        return self._loss_from(Pi.T, w)[0]

    def _loss_from(self, P: np.ndarray, w: np.ndarray):
        """(loss, dL/dp over the items) from the items' probabilities P (|S| x n_items)."""
        gam = np.where(self.valid, self.lists, 0)
        rows = np.arange(len(self.S))[:, None]
        p_ui = P[rows, gam]  # (|S|, N)
        p_ut = P[:, self.targets]  # (|S|, T)
        x = (p_ui[:, :, None] - p_ut[:, None, :]) / self.c.b
        wgt = (self.h[:, None] * self.valid)[:, :, None]
        loss = float((wgt * _sigmoid(x)).sum() + self.c.eta * np.abs(w).sum())
        dg = wgt * _sigmoid_prime(x) / self.c.b  # (|S|, N, T)
        G = np.zeros_like(P)
        np.add.at(G, (np.broadcast_to(rows, gam.shape), gam), dg.sum(axis=2))
        G[:, self.targets] -= dg.sum(axis=1)
        return loss, G

    def loss_and_grad(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        c = self.c
        a = 1.0 - c.alpha
        W, (Tu_T, Ti_T) = self._graph(w)
        Pu, Pi = self._walk((Tu_T, Ti_T), self.S, warm=True)
        loss, G = self._loss_from(Pi.T, w)
        # adjoint: lambda = g + (1 - alpha) (Q^T lambda + d lambda[u]), Q^T in blocks: users <- Tu,
        # items <- Ti (transposes of the propagation blocks); d marks the nodes without edges
        du = np.asarray(W.sum(axis=1)).ravel()
        di = np.asarray(W.sum(axis=0)).ravel()
        dead_u, dead_i = du == 0, di == 0
        B = len(self.S)
        cols = np.arange(B)
        Tu, Ti = Tu_T.T.tocsr(), Ti_T.T.tocsr()
        gu, gi = np.zeros((self.n_users, B)), G.T
        lu, li = (a_.copy() for a_ in self._adjoint_state) if self._adjoint_state is not None else (gu.copy(), gi.copy())
        for _ in range(c.max_iter):
            restart = lu[self.S, cols]  # lambda_u[u] per column
            lu_new = gu + a * (Tu @ li + np.outer(dead_u, restart))
            li_new = gi + a * (Ti @ lu + np.outer(dead_i, restart))
            change = np.abs(lu_new - lu).max() + np.abs(li_new - li).max()
            lu, li = lu_new, li_new
            if change < c.tol * max(1.0, np.abs(gi).max()):
                break
        self._adjoint_state = (lu, li)
        v = self.n_users - 1
        Wv = w.sum()
        QT_items = Ti @ lu  # (Q^T lambda) at the item nodes
        grad = a * (Pu[v] @ ((li - (w @ li) / Wv) / Wv).T)
        with np.errstate(divide="ignore", invalid="ignore"):
            second = (Pi * (lu[v][None, :] - QT_items)).sum(axis=1) / di
        grad += a * np.where(di > 0, second, 0.0)
        grad += c.eta * (w > 0)
        return loss, grad


class GraphAttack(Attack):
    """Fang et al. 2018's optimisation, one fake user at a time, over the users ``S`` of ``users``."""

    Config = GraphConfig
    k_param = "top_n"
    prefix_stable = True  # one fake user after the other, randomness drawn per user
    #: "all" (Fang et al. 2018) or "influence" (S-Graph)
    users: ClassVar[str] = "all"

    def _weights(self, data) -> sp.csr_matrix:
        return data.binary() if (self.config.weights == "binary" or data.implicit) else data.matrix

    def _generate(self, view, targets, n_fake, n_filler, rng):
        c = self.config
        lo, hi = view.rating_scale
        r_max = 1.0 if view.implicit else hi
        W = sp.csr_matrix(self._weights(view), dtype=np.float64)
        n_normal = view.n_normal
        candidates = non_targets(view, targets)
        mean, std = view.item_stats()
        rows = []
        for _ in range(n_fake):
            T = transitions(W)
            S, h = self.influential_users(T, W, n_normal, targets, rng)
            _, Pi, _ = rwr_power(*T, S, c.alpha, c.tol, c.max_iter)
            P = Pi.T
            P[W[S].toarray() != 0] = -np.inf  # the top-N among unrated items
            P[:, targets] = -np.inf
            lists = topk_indices(P, self.list_length())
            lists = np.where(np.isfinite(np.take_along_axis(P, lists, axis=1)), lists, -1)
            problem = WalkProblem(W, S, h, targets, lists, c)
            w = self.solve_w(problem, targets, r_max)
            key = np.lexsort((rng.random(len(candidates)), -w[candidates]))
            fillers = np.sort(candidates[key[:n_filler]])
            r = np.zeros(view.n_items)
            if c.filler_ratings == "weights" and not view.implicit:
                r[fillers] = np.maximum(w[fillers], lo)
            else:
                r[fillers] = rng.normal(mean[fillers], std[fillers])
            r[fillers] = view.to_scale(r[fillers]) if not view.implicit else 1.0
            r[targets] = r_max
            row = sp.csr_matrix(r[None, :])
            rows.append(row)
            W = sp.vstack([W, row if c.weights == "rating" and not view.implicit else (row != 0).astype(np.float64)], format="csr")
        return sp.vstack(rows, format="csr")

    def solve_w(self, problem: WalkProblem, targets: np.ndarray, r_max: float) -> np.ndarray:
        c = self.config
        w = np.zeros(problem.n_items)
        w[targets] = r_max
        free = np.ones(problem.n_items, dtype=bool)
        free[targets] = False
        for k in range(1, c.steps + 1):
            _, G = problem.loss_and_grad(w)
            D = np.where(free & ~((w <= 0) & (G > 0)) & ~((w >= r_max) & (G < 0)), G, 0.0)
            scale = np.abs(D).max()
            if scale == 0:
                break
            w = np.clip(w - c.step * r_max / np.sqrt(k) * D / scale, 0.0, r_max)
        return w

    def influential_users(self, T, W, n_normal: int, targets, rng) -> tuple[np.ndarray, np.ndarray]:
        if self.users == "all":
            return np.arange(n_normal), np.ones(n_normal)
        pi = self.user_influence(T, W, n_normal, targets)
        S = greedy_select(additive_set_influence(pi), n_normal, delta_count(self.config.delta, n_normal), rng)
        return np.sort(S), np.ones(len(S))

    def user_influence(self, T, W, n_normal: int, targets) -> np.ndarray:
        """``pi(k, t)`` summed over the targets (eqs. (24)-(29), propagation reading, see module)."""
        c = self.config
        a = 1.0 - c.alpha
        Tu_T, Ti_T = T
        Pu, _, _ = rwr_power(Tu_T, Ti_T, np.arange(n_normal), c.alpha, c.tol, c.max_iter)
        visits = Pu[:n_normal].sum(axis=1)  # sum_u p_uk for the normal users k
        # row t of M ~ sum_{i<=T} ((1 - alpha) Q)^i over the item nodes: r <- (1 - alpha) Q^T r
        Tu, Ti = Tu_T.T.tocsr(), Ti_T.T.tocsr()
        rated = W[:n_normal].astype(bool).astype(np.float64)
        pi = np.zeros(n_normal)
        for t in np.atleast_1d(targets):
            ri = np.zeros(W.shape[1])
            ri[t] = 1.0
            ru = np.zeros(W.shape[0])
            m_items = ri.copy()
            for _ in range(c.taylor):
                ri, ru = a * (Ti @ ru), a * (Tu @ ri)
                m_items += ri
            pi += a * visits * np.asarray(rated @ m_items).ravel()
        return pi


@ATTACKS.register(
    "graph",
    paper="Fang, Yang, Gong, Liu, ACSAC 2018 (seed 001 §7; seed 003's SRWA)",
    summary="fake users' edge weights optimised through the random walk's fixed point (rwr victim)",
)
class FangGraphAttack(GraphAttack):
    users = "all"


@ATTACKS.register(
    "s-graph",
    paper="Fang, Gong, Liu, WWW 2020 §7.1 eqs. (22)-(29) (seed 001)",
    summary="the graph attack over the Delta users most influential on the targets' walk scores",
)
class SGraphAttack(GraphAttack):
    users = "influence"
