"""Matrix factorisation for explicit ratings, trained by alternating least squares.

Implements seed 001 (Fang, Gong, Liu, WWW 2020) eq. (1)::

    argmin_{X,Y}  sum_{(u,i) in E} (r_ui - x_u^T y_i)^2 + lambda (sum_u ||x_u||^2 + sum_i ||y_i||^2)

with predicted score ``r_hat_ui = x_u^T y_i``; the N unseen items with the highest scores are
recommended. Only observed ratings enter the squared loss (no implicit zeros), exactly as eq. (1).

Solver: alternating least squares. With Y fixed, eq. (1) separates over users and
``x_u = (sum_{i in Omega_u} y_i y_i^T + lambda I)^{-1} sum_{i in Omega_u} r_ui y_i`` (and
symmetrically for items). Users are grouped by their number of ratings into padded blocks, the
Gram matrices of a block come from one batched GEMM and its systems are solved by one batched
Cholesky factorisation (rows shorter than d in the equivalent dual form, a smaller system per
row): no Python loop over users or ratings. Each sweep solves X then Y
exactly, so the loss never increases. Departures from the paper: the paper does not name its
optimiser; ALS is the standard exact block-coordinate method for eq. (1). ``lambda`` is not given in
seed 001 §5.1.4; the default 7 minimises the RMSE on a validation split of ML-100K carved from the
training data (``benchmarks/tune_mf_reg.py``, table in docs/mf.md). Being a rating predictor trained
on observed ratings only, this model ranks unseen items poorly (docs/mf.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import warnings

import numpy as np
import scipy.sparse as sp
import torch

from ..config import check
from ..errors import ConfigError
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


class RowBlocks:
    """The rows of a csr matrix grouped by length into padded dense blocks (for batched GEMMs).

    Rows with 1-8, 9-12, 13-18, ... entries (bounds growing by 1.5x) form one block each, padded
    to the longest row of the block (at most 1.5x wasted work). Each block is ``(rows, idx, val)``:
    ``idx`` holds the column indices, padded with ``n_cols`` (the index of an all-zero row that
    :func:`gram` appends to the factors, so padded slots contribute nothing without a mask), and
    ``val`` the values (0 where padded). ``matrix`` is the whole matrix as a torch CSR tensor (for
    the right-hand sides). Built once per fit, vectorised.
    """

    def __init__(self, m: sp.csr_matrix, dtype: torch.dtype, device: torch.device) -> None:
        m = sp.csr_matrix(m)
        counts = np.diff(m.indptr)
        self.n_rows, self.n_cols = m.shape
        self.blocks = []
        hi = 8
        lo = 0
        while lo < (counts.max() if counts.size else 0):
            rows = np.flatnonzero((counts > lo) & (counts <= hi))
            if rows.size:
                width = int(counts[rows].max())
                pos = m.indptr[rows][:, None] + np.arange(width)[None, :]
                mask = np.arange(width)[None, :] < counts[rows][:, None]
                pos = np.where(mask, pos, 0)
                idx = np.where(mask, m.indices[pos], self.n_cols)
                val = np.where(mask, m.data[pos], 0.0)
                self.blocks.append(
                    (
                        torch.from_numpy(rows).to(device),
                        torch.from_numpy(idx.astype(np.int64)).to(device),
                        torch.from_numpy(val.astype(np.float64)).to(dtype).to(device),
                    )
                )
            lo, hi = hi, int(hi * 1.5)
        with warnings.catch_warnings():  # "sparse CSR support is in beta": mm with it is stable
            warnings.simplefilter("ignore", UserWarning)
            self.matrix = torch.sparse_csr_tensor(
                torch.from_numpy(m.indptr.astype(np.int64)),
                torch.from_numpy(m.indices.astype(np.int64)),
                torch.from_numpy(m.data.astype(np.float64)).to(dtype),
                size=m.shape,
            ).to(device)

    def padded(self, F: torch.Tensor) -> torch.Tensor:
        """``F`` (n_cols, d) with one zero row appended (the target of padded indices)."""
        return torch.cat([F, F.new_zeros(1, F.shape[1])])


def gram(blocks: RowBlocks, F: torch.Tensor, reg: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row: ``G = sum_{j in row} f_j f_j^T + reg I`` and ``b = sum_{j in row} v_j f_j``.

    ``blocks``: the rows (their column indices ``j`` and values ``v_j``); ``F``: (cols, d) factors.
    For each block of rows of similar length ``G`` comes from one batched GEMM; ``b`` is one sparse
    x dense product. Returns ``G`` (rows, d, d) and ``b`` (rows, d); a row without entries gets
    ``reg I`` and 0.
    """
    d = F.shape[1]
    Fp = blocks.padded(F)
    G = torch.zeros(blocks.n_rows, d, d, dtype=F.dtype, device=F.device)
    for rows, idx, _ in blocks.blocks:
        Fg = gather_rows(Fp, idx)  # (rows, L, d), padded slots read the zero row
        G[rows] = torch.bmm(Fg.transpose(1, 2), Fg)
    G.diagonal(dim1=1, dim2=2).add_(reg)
    return G, torch.sparse.mm(blocks.matrix, F)


def gather_rows(Fp: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``Fp[idx]`` for a 2-D index: (rows, L) -> (rows, L, d), by one ``index_select`` (3-4x
    faster than advanced indexing on CPU, ``benchmarks/bench_mf.py``)."""
    return Fp.index_select(0, idx.reshape(-1)).view(*idx.shape, Fp.shape[1])


def ridge_solve(blocks: RowBlocks, F: torch.Tensor, reg: float) -> torch.Tensor:
    """Solve ``min_x sum_{j in row} (v_j - x^T f_j)^2 + reg ||x||^2`` for every row at once.

    Block by block (rows of similar length ``L``, padded to the block's width ``w``), exactly:

    * ``w >= d`` (primal form): the Gram matrices ``F_J^T F_J + reg I`` (d x d) from one batched
      GEMM, one batched Cholesky factorisation and solve with the right-hand sides ``sum v_j f_j``
      (one sparse x dense product for all rows);
    * ``w < d`` (dual form, the push-through identity
      ``(F^T F + reg I)^{-1} F^T v = F^T (F F^T + reg I)^{-1} v``): a w x w system per row, so a
      row with 8 ratings costs an 8 x 8 factorisation instead of a 64 x 64 one. Padded slots are
      zero rows of ``F_J`` with value 0, so their dual variable is exactly 0.

    Both systems are symmetric positive definite for ``reg > 0``; where a factorisation fails
    (``reg <= 0`` or overflow) the block falls back to an LU solve. The two forms agree to rounding
    (tested). Returns (rows, d); rows without entries get 0.
    """
    d = F.shape[1]
    Fp = blocks.padded(F)
    b = None
    X = torch.zeros(blocks.n_rows, d, dtype=F.dtype, device=F.device)
    for rows, idx, val in blocks.blocks:
        Fg = gather_rows(Fp, idx)  # (rows, w, d); padded slots read the zero row
        w = idx.shape[1]
        if w < d:
            eye = torch.eye(w, dtype=F.dtype, device=F.device)
            K = torch.baddbmm(eye, Fg, Fg.transpose(1, 2), alpha=1.0, beta=reg)
            X[rows] = torch.bmm(Fg.transpose(1, 2), _spd_solve(K, val.unsqueeze(-1))).squeeze(-1)
            continue
        if b is None:
            b = torch.sparse.mm(blocks.matrix, F)
        eye = torch.eye(d, dtype=F.dtype, device=F.device)
        G = torch.baddbmm(eye, Fg.transpose(1, 2), Fg, alpha=1.0, beta=reg)
        X[rows] = _spd_solve(G, b[rows].unsqueeze(-1)).squeeze(-1)
    return X


def _spd_solve(A: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """Batched ``A^{-1} rhs`` for symmetric positive definite ``A``: Cholesky, or an LU solve of the
    whole batch where a factorisation fails (not positive definite: reg <= 0 or overflow)."""
    L, info = torch.linalg.cholesky_ex(A)
    if bool(info.any()):
        return torch.linalg.solve(A, rhs)
    return torch.cholesky_solve(rhs, L)


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
    predicts_ratings: ClassVar[bool] = True

    def fit(self, data: Interactions, warm_start: bool = False, sweeps: int | None = None) -> "MF":  # type: ignore[override]
        """Fit on ``data``; ``warm_start`` resumes from the previous item factors and ``sweeps``
        overrides the configured number of ALS sweeps for this call (e.g. a few sweeps to
        re-converge after a small change of the data)."""
        self._warm = warm_start and hasattr(self, "item_factors_")
        self._sweeps = self.config.sweeps if sweeps is None else int(sweeps)
        return super().fit(data)  # type: ignore[return-value]

    def memory_bytes(self, n_users: int, n_items: int) -> int:
        """The batched ALS holds a d x d Gram matrix per row (users or items) and the solver's
        copy of it, besides the factors."""
        c = self.config
        size = 8 if c.dtype == "float64" else 4
        return size * (3 * max(n_users, n_items) * c.d * c.d + 4 * (n_users + n_items) * c.d)

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
        by_user = RowBlocks(data.matrix, dt, dev)
        by_item = RowBlocks(data.matrix.T.tocsr(), dt, dev)
        X = torch.zeros(n_users, c.d, dtype=dt, device=dev)
        # one intra-op thread: with two, the sweeps took 19 s instead of 4 s on the shared two-core
        # machine (docs/victims.md); it also makes the factors independent of the thread count
        n_threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for _ in range(self._sweeps):
                X = ridge_solve(by_user, Y, c.reg)
                Y = ridge_solve(by_item, X, c.reg)
        finally:
            torch.set_num_threads(n_threads)
        self.user_factors_ = X.cpu().numpy()
        self.item_factors_ = Y.cpu().numpy()

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.user_factors_[users] @ self.item_factors_.T

    # ------------------------------------------------------------------ for RVD (seed 004)
    def finetune(self, data: Interactions, users: np.ndarray, steps: int) -> "MF":
        """Continue from the current factors on the ratings of ``users`` only.

        Each of ``steps`` sweeps solves eq. (1) restricted to the rows ``users`` exactly, first for
        those users' factors (Y fixed), then for the factors of the items they rated (their X
        fixed): block coordinate descent on the restricted objective, whose value
        (``finetune_history_``) never increases. Other users' factors and unrated items' factors
        are untouched.
        ``data`` must have the training data's shape. :meth:`snapshot` / :meth:`restore` go back.
        """
        self._check_fitted()
        if not isinstance(data, Interactions) or data.shape != self.train_.shape:
            raise ConfigError(f"mf: finetune needs an Interactions of shape {self.train_.shape}")
        users = np.unique(np.atleast_1d(np.asarray(users, dtype=np.int64)))
        if users.size == 0 or users.min() < 0 or users.max() >= data.n_users:
            raise ConfigError(f"mf: finetune users must be row indices in [0, {data.n_users})")
        if steps < 1:
            raise ConfigError(f"mf: steps={steps} must be at least 1")
        c = self.config
        dt = torch.float64 if c.dtype == "float64" else torch.float32
        sub = data.matrix[users]
        items = np.unique(sub.indices)
        by_user = RowBlocks(sub, dt, torch.device("cpu"))
        by_item = RowBlocks(sub[:, items].T.tocsr(), dt, torch.device("cpu"))
        X = torch.as_tensor(self.user_factors_, dtype=dt).clone()
        Y = torch.as_tensor(self.item_factors_, dtype=dt).clone()
        history = []
        for _ in range(steps):
            X[users] = ridge_solve(by_user, Y, c.reg)
            if items.size:
                Y[items] = ridge_solve(by_item, X[users], c.reg)
            xs, ys = X[users].numpy(), Y.numpy()
            coo = sub.tocoo()
            err = coo.data - np.einsum("nd,nd->n", xs[coo.row], ys[coo.col])
            history.append(float(np.sum(err**2) + c.reg * (np.sum(xs**2) + np.sum(ys[items] ** 2))))
        self.user_factors_, self.item_factors_ = X.numpy(), Y.numpy()
        self.finetune_history_ = history
        return self

    def snapshot(self) -> dict[str, np.ndarray]:
        """A copy of the learned factors (put back with :meth:`restore`)."""
        self._check_fitted()
        return {"user_factors": self.user_factors_.copy(), "item_factors": self.item_factors_.copy()}

    def restore(self, state: dict[str, np.ndarray]) -> "MF":
        self._check_fitted()
        if set(state) != {"user_factors", "item_factors"} or state["user_factors"].shape != self.user_factors_.shape or state["item_factors"].shape != self.item_factors_.shape:
            raise ConfigError("mf: restore needs the dict returned by snapshot() of this model")
        self.user_factors_ = np.array(state["user_factors"], copy=True)
        self.item_factors_ = np.array(state["item_factors"], copy=True)
        return self

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
