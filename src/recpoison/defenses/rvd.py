"""RVD: Real-time Vicinal Defense (seed 004, Algorithm 1).

Before recommending to a user u, the trained model is fine-tuned on the data of u's k nearest
users, u's scores are read from the fine-tuned model, and the trained model is restored (seed 004
§4, Algorithm 1; REFERENCES.md §5.2):

1. the base model f_theta is trained as usual on the (poisoned) data D, theta_0 kept;
2. for a user u: the distance ``||e_u - e_v||`` (Euclidean) from u's latent representation
   (``user_embeddings()``: MF's user factor, AutoRec's / CDAE's hidden code, NSVD's implicit user
   vector, GMF / NCF / LightGCN user embeddings) to every user v of D, **fake users included** (the
   defender does not know them); D_u = the ratings of the k nearest users;
3. fine-tune f from theta_0 on D_u with the model's own loss and optimiser (``finetune``);
4. predict u's scores over all items with the fine-tuned model;
5. restore theta_0.

Defaults: ``k`` from seed 004 Table 2 (per data set and model: ML-100K MF 12, AutoRec 12, CDAE 12,
NSVD 25; ML-1M 12 / 12 / 12 / 70; FilmTrust 650 / 12 / 12 / 7; Yelp 100 / 100 / 200 / 900 for MF /
AutoRec / CDAE / NSVD; its MF row applies to both ``mf`` and ``mf-wu``); for a data set or model
not in the table, 12 (the most common entry; the
value used is ``k_``). What the paper leaves open, each a parameter with our choice:

- **whether u is among its neighbours** (``include_self``, default true: u's distance to itself is
  0, and without its own ratings MF's user factor would not move);
- **the length of the fine-tuning** (``steps``; unset: one pass over D_u as each model counts it:
  one ALS sweep for MF, one epoch of mini-batches over D_u's positives for GMF / NCF / LightGCN,
  one full-batch step for AutoRec / CDAE / NSVD);
- ties in distance are broken by the lower user index.

**Beyond the paper (speed):** the per-user fine-tunings are independent given theta_0, so many users
are served at once. For MF with one ALS sweep (``method=batched``, chosen by ``auto``) each user's
fine-tuning has a closed form. The sweep first solves the neighbours' factors with the items fixed,
``x_v = (Y_v^T Y_v + lambda I)^{-1} Y_v^T r_v``, which does not depend on u (one batched ALS
half-sweep for all users, done once), then re-solves each item i rated in D_u from the raters S of
i in D_u only: ``y_i = (X_S^T X_S + lambda I)^{-1} X_S^T r_S = X_S^T (X_S X_S^T + lambda I)^{-1} r_S``
(the push-through identity), so u's score ``x_u^T y_i = (X_S x_u)^T (G_S + lambda I)^{-1} r_S``
with ``G = X_N X_N^T`` the k x k Gram matrix of the neighbourhood: one k x k system per (user,
item), batched, where the loop solves a d x d system per item and user. Items nobody in D_u rated
keep their trained factor. Identical to the loop (``method=loop``: snapshot, ``finetune``, score,
restore, one user at a time) up to rounding (``tests/test_defenses_rvd.py``). Other models, other
step counts, and k >= d use the loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from ..config import check
from ..errors import ConfigError
from ..interactions import Interactions
from .base import DEFENSES, Defense

#: seed 004 Table 2: k per data set and model
K_TABLE: dict[tuple[str, str], int] = {
    ("ml-100k", "mf"): 12, ("ml-100k", "autorec"): 12, ("ml-100k", "cdae"): 12, ("ml-100k", "nsvd"): 25,
    ("ml-1m", "mf"): 12, ("ml-1m", "autorec"): 12, ("ml-1m", "cdae"): 12, ("ml-1m", "nsvd"): 70,
    ("filmtrust", "mf"): 650, ("filmtrust", "autorec"): 12, ("filmtrust", "cdae"): 12, ("filmtrust", "nsvd"): 7,
    ("yelp", "mf"): 100, ("yelp", "autorec"): 100, ("yelp", "cdae"): 200, ("yelp", "nsvd"): 900,
}
DEFAULT_K = 12


@dataclass(frozen=True)
class RVDConfig:
    """Hyper-parameters of :class:`RVD` (k: seed 004 Table 2; the rest: our choices, see the module)."""

    #: neighbours per user; unset: seed 004 Table 2 for the data set and model (else 12)
    k: int | None = None
    #: fine-tuning length in the model's own unit; unset: one pass over the neighbours' data
    steps: int | None = None
    include_self: bool = True
    #: ``auto``: the closed form where it applies (MF, one sweep, k < d), else the per-user loop
    method: Literal["auto", "batched", "loop"] = "auto"
    #: users served per batch by the batched path (memory: users x items x k^2 floats)
    batch_users: int = 64

    def __post_init__(self) -> None:
        check(self.k is None or (isinstance(self.k, int) and self.k >= 1), f"rvd: k={self.k} must be at least 1 (or unset)")
        check(self.steps is None or (isinstance(self.steps, int) and self.steps >= 0), f"rvd: steps={self.steps} must be >= 0 (or unset)")
        check(self.method in ("auto", "batched", "loop"), f"rvd: method={self.method!r} must be auto, batched or loop")
        check(self.batch_users >= 1, f"rvd: batch_users={self.batch_users} must be at least 1")


@DEFENSES.register(
    "rvd",
    paper="Seed 004 (RVD, real-time vicinal defense), Algorithm 1",
    summary="fine-tune on each user's k nearest users before recommending, then restore",
)
class RVD(Defense):
    """Real-time Vicinal Defense. ``k_`` and ``steps_`` hold the values used after ``fit``."""

    Config = RVDConfig
    kind = "inference"
    needs = ("user_embeddings", "finetune", "snapshot", "restore")

    # ------------------------------------------------------------------ set-up
    def _after_fit(self, data: Interactions) -> None:
        c = self.config
        base = self.victim_name
        model = "mf" if base in ("mf", "mf-wu") else base  # the table's MF: seed 004's (mf-wu) or ours
        self.k_ = min(c.k if c.k is not None else K_TABLE.get((data.name.lower(), model), DEFAULT_K), data.n_users)
        self.emb_ = np.asarray(self.inner.user_embeddings(), dtype=np.float64)
        if self.emb_.shape[0] != data.n_users:
            raise ConfigError(f"rvd: {base} returned {self.emb_.shape[0]} user embeddings for {data.n_users} users")
        self._sq = np.einsum("ud,ud->u", self.emb_, self.emb_)
        plain_mf = type(self.inner).__name__ == "MF"  # a plain MF (not one a training defense wraps)
        one_sweep = c.steps in (None, 1)
        self.method_ = c.method
        if c.method == "auto":
            self.method_ = "batched" if plain_mf and one_sweep and self.k_ < self.inner.config.d else "loop"
        elif c.method == "batched" and not (plain_mf and one_sweep):
            raise ConfigError("rvd: method=batched is the closed form of one ALS sweep of a plain mf; use method=loop or auto")
        self._x1 = None

    def neighbours(self, users: np.ndarray) -> np.ndarray:
        """(len(users), k) user indices: the k nearest users of each (Euclidean distance between
        ``user_embeddings``; the user itself first when ``include_self``; ties: lower index)."""
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        E = self.emb_
        d2 = self._sq[users, None] + self._sq[None, :] - 2.0 * (E[users] @ E.T)
        rows = np.arange(len(users))
        d2[rows, users] = -np.inf if self.config.include_self else np.inf
        order = np.argsort(d2, axis=1, kind="stable")
        k = self.k_ if self.config.include_self else min(self.k_, E.shape[0] - 1)
        return order[:, :k]

    def _steps_for(self, nb: np.ndarray) -> int:
        if self.config.steps is not None:
            return self.config.steps
        batch = getattr(self.inner.config, "batch_size", None)
        from ..victims._neural import NeuralVictim

        if isinstance(self.inner, NeuralVictim) and batch:  # one epoch of mini-batches over D_u's positives
            n_pos = int(np.diff(self.train_.matrix.indptr)[np.unique(nb)].sum())
            return max(1, math.ceil(n_pos / batch))
        return 1  # one ALS sweep (MF) / one full-batch step (AutoRec, CDAE, NSVD)

    # ------------------------------------------------------------------ scoring
    def _score(self, users: np.ndarray) -> np.ndarray:
        if self.config.steps == 0:  # nothing to fine-tune: the trained model's scores
            return self.inner.score(users)
        if self.method_ == "batched":
            return self._score_batched(users)
        return self._score_loop(users)

    def _score_loop(self, users: np.ndarray) -> np.ndarray:
        """Algorithm 1 as written: one user at a time (snapshot, fine-tune, score, restore)."""
        out = np.empty((len(users), self.train_.n_items), dtype=np.float32)
        state = self.inner.snapshot()
        try:
            for j, (u, nb) in enumerate(zip(users, self.neighbours(users))):
                self.inner.finetune(self.train_, nb, self._steps_for(nb))
                out[j] = self.inner.score(np.array([u]))[0]
                self.inner.restore(state)
        finally:
            self.inner.restore(state)
        return out

    def _score_batched(self, users: np.ndarray) -> np.ndarray:
        """One ALS sweep of MF on each user's neighbourhood, in closed form, many users at once."""
        from ..victims.mf import RowBlocks, ridge_solve

        mf = self.inner
        lam = float(mf.config.reg)
        dt = torch.float64
        Y0 = torch.as_tensor(mf.item_factors_, dtype=dt)
        R = self.train_.matrix
        if self._x1 is None:  # the user half-sweep with the trained items: the same for every user
            self._x1 = ridge_solve(RowBlocks(R, dt, torch.device("cpu")), Y0, lam)
        X1 = self._x1
        k, n_items = self.k_, R.shape[1]
        out = np.empty((len(users), n_items), dtype=np.float32)
        eye = torch.eye(k, dtype=dt)
        # users per chunk: the (user, item) systems of a chunk hold at most 2^25 floats
        step = max(1, min(self.config.batch_users, int(2**25 // max(1, n_items * k * k))))
        for s in range(0, len(users), step):
            u = users[s : s + step]
            nb = self.neighbours(u)  # (b, k)
            Xn = X1[torch.as_tensor(nb)]  # (b, k, d)
            G = Xn @ Xn.transpose(1, 2)  # (b, k, k)
            # u's own factor: re-solved in the sweep when u is its own neighbour, else the trained one
            xu = X1[torch.as_tensor(u)] if self.config.include_self else torch.as_tensor(mf.user_factors_[u], dtype=dt)
            g = torch.einsum("bkd,bd->bk", Xn, xu)  # X_N x_u
            Rn = torch.as_tensor(R[nb.ravel()].toarray(), dtype=dt).view(len(u), k, n_items).transpose(1, 2)  # (b, items, k)
            m = Rn != 0
            hit = m.any(-1)  # (b, items): items someone in D_u rated, the only ones whose factor moves
            bi, ii = torch.nonzero(hit, as_tuple=True)
            mp = m[bi, ii].to(dt)  # (P, k) raters among the neighbours, per (user, item) pair
            A = G[bi] * (mp[:, :, None] * mp[:, None, :]) + lam * eye  # masked Gram + lambda I
            z = _spd_solve(A, Rn[bi, ii])  # (P, k), 0 off the raters
            scores = xu @ Y0.T  # items nobody in D_u rated keep their trained factor
            scores[bi, ii] = (z * g[bi]).sum(-1)
            out[s : s + len(u)] = scores.numpy()
        return out


def _spd_solve(A: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Solve the symmetric positive definite systems ``A z = b`` (A: (P, k, k), b: (P, k)) by
    Gaussian elimination vectorised over P: k steps of tensor operations, where LAPACK's batched
    routines pay a fixed cost per (small) matrix. No pivoting is needed for SPD matrices."""
    A = A.clone()
    b = b.clone()
    k = A.shape[-1]
    for j in range(k - 1):
        f = A[:, j + 1 :, j] / A[:, j, j, None]  # (P, k-j-1)
        A[:, j + 1 :, j:] -= f[:, :, None] * A[:, None, j, j:]
        b[:, j + 1 :] -= f * b[:, j, None]
    z = torch.empty_like(b)
    for j in range(k - 1, -1, -1):
        z[:, j] = (b[:, j] - (A[:, j, j + 1 :] * z[:, j + 1 :]).sum(-1)) / A[:, j, j]
    return z
