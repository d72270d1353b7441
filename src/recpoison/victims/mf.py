"""Matrix factorisation for explicit ratings, trained by alternating least squares.

Implements seed 001 (Fang, Gong, Liu, WWW 2020) eq. (1)::

    argmin_{X,Y}  sum_{(u,i) in E} (r_ui - x_u^T y_i)^2 + lambda (sum_u ||x_u||^2 + sum_i ||y_i||^2)

with predicted score ``r_hat_ui = x_u^T y_i``; the N unseen items with the highest scores are
recommended. Only observed ratings enter the squared loss (no implicit zeros), exactly as eq. (1).

Solver: alternating least squares. With Y fixed, eq. (1) separates over users and
``x_u = (sum_{i in Omega_u} y_i y_i^T + lambda I)^{-1} sum_{i in Omega_u} r_ui y_i`` (and
symmetrically for items). The per-user Gram matrices are formed for all users at once by one sparse
product ``S @ (y_i (x) y_i)`` (``S`` the 0/1 rating pattern), then solved in one batched call: no Python loop over users or ratings. Each sweep solves X then Y
exactly, so the loss never increases. Departures from the paper: the paper does not name its
optimiser; ALS is the standard exact block-coordinate method for eq. (1). ``lambda`` is not given in
seed 001 §5.1.4; the default 7 minimises the RMSE on a validation split of ML-100K carved from the
training data (``benchmarks/tune_mf_reg.py``, table in docs/mf.md). Being a rating predictor trained
on observed ratings only, this model ranks unseen items poorly (docs/mf.md).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from ..config import check
from ..interactions import Interactions
from .base import VICTIMS, Recommender, resolve_device


@dataclass(frozen=True)
class MFConfig:
    """Hyper-parameters of :class:`MF` (defaults: seed 001 §5.1.4, d = 64)."""

    d: int = 64
    reg: float = 7.0
    sweeps: int = 15
    init_std: float = 0.1
    seed: int = 0
    device: str = "cpu"
    dtype: Literal["float32", "float64"] = "float32"

    def __post_init__(self) -> None:
        check(self.d >= 1, f"mf: d={self.d} must be at least 1")
        check(self.reg > 0, f"mf: reg={self.reg} must be positive (the ALS systems need it)")
        check(self.sweeps >= 1, f"mf: sweeps={self.sweeps} must be at least 1")
        check(self.init_std > 0, f"mf: init_std={self.init_std} must be positive")


def to_torch_csr(m: sp.csr_matrix, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A scipy csr as a torch sparse CSR tensor (copies; the input stays read-only)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return _csr(m, dtype, device)


def _csr(m: sp.csr_matrix, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.sparse_csr_tensor(
        torch.from_numpy(m.indptr.astype(np.int64)),
        torch.from_numpy(m.indices.astype(np.int64)),
        torch.from_numpy(np.asarray(m.data, dtype=np.float64)).to(dtype),
        size=m.shape,
        device=device,
    )


def ridge_solve(
    pattern: torch.Tensor, values: torch.Tensor, F: torch.Tensor, reg: float
) -> torch.Tensor:
    """Solve ``min_x sum_{j in row} (v_j - x^T f_j)^2 + reg ||x||^2`` for every row at once.

    ``pattern`` / ``values``: sparse CSR (rows x cols) of 0/1 and of targets; ``F``: (cols, d)
    fixed factors. The Gram matrices ``sum_j f_j f_j^T`` of all rows come from one sparse product
    with the flattened outer products ``f_j (x) f_j``; the d x d systems are solved in one batched
    call. Returns (rows, d).
    """
    n_cols, d = F.shape
    outer = (F.unsqueeze(2) * F.unsqueeze(1)).reshape(n_cols, d * d)
    G = torch.sparse.mm(pattern, outer).reshape(-1, d, d)
    G.diagonal(dim1=1, dim2=2).add_(reg)
    b = torch.sparse.mm(values, F)
    return torch.linalg.solve(G, b)


@VICTIMS.register(
    "mf",
    paper="Fang, Gong, Liu, WWW 2020 (seed 001), eq. (1)",
    summary="matrix factorisation on explicit ratings, batched ALS",
)
class MF(Recommender):
    """Seed 001 eq. (1) matrix factorisation, solved by batched exact ALS.

    Learned attributes: ``user_factors_`` (n_users x d), ``item_factors_`` (n_items x d).
    ``fit(data, warm_start=True)`` keeps the item factors of the previous fit (new items start
    random) and resumes from them, which attacks that retrain after each fake user may use.
    """

    Config = MFConfig
    feedback = "explicit"

    def fit(self, data: Interactions, warm_start: bool = False) -> "MF":  # type: ignore[override]
        self._warm = warm_start and hasattr(self, "item_factors_")
        return super().fit(data)  # type: ignore[return-value]

    def _fit(self, data: Interactions) -> None:
        c = self.config
        dev = resolve_device(c.device)
        dt = torch.float64 if c.dtype == "float64" else torch.float32
        n_users, n_items = data.shape
        gen = torch.Generator().manual_seed(c.seed)
        Y = torch.randn(n_items, c.d, generator=gen, dtype=torch.float64) * c.init_std
        if self._warm:
            old = torch.as_tensor(self.item_factors_, dtype=torch.float64)
            m = min(old.shape[0], n_items)
            if old.shape[1] == c.d:
                Y[:m] = old[:m]
        Y = Y.to(dt).to(dev)
        R = data.matrix
        Rt = R.T.tocsr()
        P_u = to_torch_csr(data.binary(), dt, dev)
        P_i = to_torch_csr(data.binary().T.tocsr(), dt, dev)
        V_u = to_torch_csr(R, dt, dev)
        V_i = to_torch_csr(Rt, dt, dev)
        X = torch.zeros(n_users, c.d, dtype=dt, device=dev)
        for _ in range(c.sweeps):
            X = ridge_solve(P_u, V_u, Y, c.reg)
            Y = ridge_solve(P_i, V_i, X, c.reg)
        self.user_factors_ = X.cpu().numpy()
        self.item_factors_ = Y.cpu().numpy()

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors_[users] @ self.item_factors_.T

    def user_embeddings(self) -> np.ndarray:
        return self.user_factors_

    def loss(self, data: Interactions | None = None) -> float:
        """The objective of eq. (1) at the learned factors (on ``data`` or the training data)."""
        data = self.train_ if data is None else data
        coo = data.matrix.tocoo()
        X, Y = self.user_factors_, self.item_factors_
        pred = np.einsum("nd,nd->n", X[coo.row], Y[coo.col])
        return float(
            np.sum((coo.data - pred) ** 2) + self.config.reg * (np.sum(X**2) + np.sum(Y**2))
        )
