"""Graph-based recommender: random walk with restart on the user-item bipartite graph.

Seed 001 (Fang, Gong, Liu, WWW 2020) §7.1, eqs. (22)-(23), the recommender attacked by Fang, Yang,
Gong, Liu, "Poisoning attacks to graph-based recommender systems", ACSAC 2018 (after Pirotte et
al.'s random-walk recommenders). Users and items are the nodes of a bipartite graph; user ``u``
and item ``i`` are joined by an edge of weight ``r_ui`` when ``u`` rated ``i``. The walk moves
from a node to a neighbour with probability proportional to the edge weight (eq. (23))::

    q_xy = w_xy / sum_z w_xz        (0 when x and y are not adjacent)

and restarts at the user ``u`` it serves with probability ``alpha``. Its stationary distribution
``p_u`` solves eq. (22)::

    p_u = (1 - alpha) Q p_u + alpha e_u

and the ``N`` unrated items with the largest ``p_u`` entries are recommended: ``score(u, i)`` is
the stationary probability of item node ``i``.

Reading of eq. (22): for ``p_u`` to stay a probability vector, ``Q`` in eq. (22) must propagate
mass along the walk, i.e. ``(Q)_yx = q_xy`` (the transpose of the matrix whose entries eq. (23)
defines); this is the form we implement. A node without edges (a user with no ratings in the
training data, an item nobody rated) has nowhere to go: its walker restarts at ``u`` (the mass is
sent back to ``e_u``), so ``p_u`` sums to 1 exactly.

Computation: power iteration for a block of users at once, ``P`` (nodes x batch) with column ``b``
the distribution of user ``batch[b]``; the graph being bipartite, one step is two sparse x dense
products, ``P_items <- (1 - alpha) T_u^T P_users`` and ``P_users <- (1 - alpha) T_i^T P_items +
restart`` (``T_u``, ``T_i`` the row-normalised user->item and item->user transitions). Starting
from ``e_u``, the error contracts by ``(1 - alpha)`` per step in L1; iteration stops when the
largest L1 change of a column falls below ``tol`` or after ``max_iter`` steps. All users' item
probabilities are computed in ``fit`` (batches of ``batch_size`` users) and stored in
``item_probs_`` (n_users x n_items, float32).

Defaults and departures: ``alpha = 0.3``. Seed 001 does not state alpha; 0.3 is the restart
probability we recall Fang et al. (ACSAC 2018) using, which could not be checked against the paper
here (treat it as our choice). Edge weights are the ratings (``weights="rating"``, seed 001);
``weights="binary"`` uses 1 per interaction. No randomness is involved; ``seed`` exists only to
follow the common victim protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp

from ..config import check
from ..interactions import Interactions
from .base import VICTIMS, Recommender


@dataclass(frozen=True)
class RWRConfig:
    """Hyper-parameters of :class:`RWR` (see the module docstring for their sources)."""

    alpha: float = 0.3
    weights: Literal["rating", "binary"] = "rating"
    tol: float = 1e-6
    max_iter: int = 200
    batch_size: int = 1024
    seed: int = 0

    def __post_init__(self) -> None:
        check(0 < self.alpha <= 1, f"rwr: alpha={self.alpha} must be in (0, 1] (the restart probability)")
        check(self.tol > 0, f"rwr: tol={self.tol} must be positive")
        check(self.max_iter >= 1, f"rwr: max_iter={self.max_iter} must be at least 1")
        check(self.batch_size >= 1, f"rwr: batch_size={self.batch_size} must be at least 1")
        check(self.seed >= 0, f"rwr: seed={self.seed} must be >= 0")


def transitions(W: sp.csr_matrix) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Row-normalised transitions of the bipartite graph with users x items weights ``W`` (eq. 23).

    Returns ``(Tu_T, Ti_T)``: ``Tu_T`` (items x users) with ``(Tu_T)_iu = w_ui / sum_j w_uj`` and
    ``Ti_T`` (users x items) with ``(Ti_T)_ui = w_ui / sum_v w_vi``; rows of nodes without edges are 0.
    """
    W = sp.csr_matrix(W, dtype=np.float64)
    du = np.asarray(W.sum(axis=1)).ravel()
    di = np.asarray(W.sum(axis=0)).ravel()
    inv_u = np.divide(1.0, du, out=np.zeros_like(du), where=du > 0)
    inv_i = np.divide(1.0, di, out=np.zeros_like(di), where=di > 0)
    Tu = sp.diags(inv_u) @ W  # users -> items
    Ti = W @ sp.diags(inv_i)  # (items -> users)^T: column i of W scaled by 1 / d_i
    return Tu.T.tocsr(), Ti.tocsr()


def rwr_power(
    Tu_T: sp.csr_matrix,
    Ti_T: sp.csr_matrix,
    users: np.ndarray,
    alpha: float,
    tol: float,
    max_iter: int,
    init: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Stationary distributions of walks restarting at each of ``users``, by power iteration.

    Returns ``(P_users, P_items, steps)``: (n_users x B) and (n_items x B) blocks of the
    distributions (column b for ``users[b]``) and the number of steps taken. ``init``: starting
    blocks (e.g. the distributions of a nearby graph; the fixed point is the same, only the number
    of steps changes); default ``e_u``.
    """
    n_users = Ti_T.shape[0]
    B = len(users)
    cols = np.arange(B)
    if init is not None:
        Pu, Pi = init[0].copy(), init[1].copy()
    else:
        Pu = np.zeros((n_users, B))
        Pu[users, cols] = 1.0
        Pi = np.zeros((Tu_T.shape[0], B))
    steps = 0
    for steps in range(1, max_iter + 1):
        Pi_new = (1.0 - alpha) * (Tu_T @ Pu)
        Pu_new = (1.0 - alpha) * (Ti_T @ Pi)
        # restart mass (alpha) plus whatever left through nodes without edges
        Pu_new[users, cols] += 1.0 - Pu_new.sum(axis=0) - Pi_new.sum(axis=0)
        delta = np.abs(Pu_new - Pu).sum(axis=0) + np.abs(Pi_new - Pi).sum(axis=0)
        Pu, Pi = Pu_new, Pi_new
        if delta.max() < tol:
            break
    return Pu, Pi, steps


@VICTIMS.register(
    "rwr",
    paper="Seed 001 §7.1 eqs. (22)-(23); Fang, Yang, Gong, Liu, ACSAC 2018",
    summary="random walk with restart on the rating-weighted user-item graph, score = stationary prob.",
)
class RWR(Recommender):
    """Random walk with restart. Learned: ``item_probs_`` (n_users x n_items), ``steps_``."""

    Config = RWRConfig
    feedback = "explicit"

    def _fit(self, data: Interactions) -> None:
        c = self.config
        W = data.binary() if c.weights == "binary" else data.matrix
        self._T = transitions(W)
        out = np.empty((data.n_users, data.n_items), dtype=np.float32)
        self.steps_ = 0
        for s in range(0, data.n_users, c.batch_size):
            users = np.arange(s, min(s + c.batch_size, data.n_users))
            _, Pi, steps = rwr_power(*self._T, users, c.alpha, c.tol, c.max_iter)
            out[users] = Pi.T
            self.steps_ = max(self.steps_, steps)
        self.item_probs_ = out

    def stationary(self, users: np.ndarray) -> np.ndarray:
        """Full stationary vectors (users' nodes then items' nodes), shape (len(users), n_users + n_items)."""
        self._check_fitted()
        c = self.config
        users = self._users(users)
        Pu, Pi, _ = rwr_power(*self._T, users, c.alpha, c.tol, c.max_iter)
        return np.concatenate([Pu, Pi]).T

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.item_probs_[users]
