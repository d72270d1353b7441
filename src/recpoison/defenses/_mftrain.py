"""Shared training machinery of the MF training defenses (``ltsmf``, ``rmf``, ``apr``).

:class:`MFTrainingDefense`: wrap checks (a plain ``mf`` or ``mf-wu``, not another defense) and
delegation of ``snapshot`` / ``restore`` / ``user_embeddings`` to the wrapped victim, whose factors
the defense trains. :class:`ResidualMFDefense`: train ``mf`` (ALS sweeps) or ``mf-wu`` (Adagrad
epochs) on ratings re-weighted by a rule of the current residuals, recomputed before each sweep /
epoch, and fine-tune the same way (RVD on top). Each defense module states its own rule and choices.
"""


from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from ..errors import ConfigError
from ..interactions import Interactions
from ..victims._neural import training_threads
from ..victims._autoenc import _check_finetune, observed_dot
from ..victims.base import Recommender, check_memory, resolve_device
from .base import Defense


class MFTrainingDefense(Defense):
    """Base of the training defenses of ``mf`` / ``mf-wu``: they train the wrapped victim (which
    must be the victim itself, not another defense) and write its factors, whose ``snapshot`` /
    ``restore`` / ``user_embeddings`` they share."""

    kind = "training"
    defends: tuple[str, ...] = ("mf", "mf-wu")

    def wrap(self, inner: Recommender) -> "MFTrainingDefense":
        if isinstance(inner, Defense):
            raise ConfigError(f"defense {self.name} changes training: it must wrap the victim itself (put it last, e.g. rvd+{self.name})")
        super().wrap(inner)
        return self

    def _fit_inner(self, data: Interactions) -> None:
        inner = self.inner
        check_memory(inner, data.n_users, data.n_items)
        data = inner._prepare(data)
        if inner.name == "mf":
            self._fit_als(data)
        else:
            self._fit_wu(data)

    def _fit_als(self, data: Interactions) -> None:  # pragma: no cover - abstract
        raise ConfigError(f"defense {self.name} does not train mf")

    def _fit_wu(self, data: Interactions) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_finetune(self, data: Interactions, users, steps: int) -> np.ndarray:
        """The sorted unique ``users`` after the checks of the victims' ``finetune``."""
        self._check_fitted()
        users = _check_finetune(self, data, users, steps)  # the torch victims' checks
        if steps < 1:
            raise ConfigError(f"{self.name}: steps={steps!r} must be an integer >= 1")
        return users

    def snapshot(self) -> dict[str, np.ndarray]:
        """The wrapped model's factors (the whole learned state of the defended model)."""
        self._check_fitted()
        return self.inner.snapshot()

    def restore(self, state: dict[str, np.ndarray]) -> "MFTrainingDefense":
        self._check_fitted()
        self.inner.restore(state)
        return self


def csr_from(rows: np.ndarray, cols: np.ndarray, vals: np.ndarray, shape: tuple[int, int]) -> sp.csr_matrix:
    """A canonical csr matrix (sorted indices) holding exactly these entries, zeros included
    (scipy's constructors may drop or merge entries; ALS must see every kept rating)."""
    order = np.lexsort((cols, rows))
    indptr = np.zeros(shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=shape[0]), out=indptr[1:])
    return sp.csr_matrix((vals[order], cols[order], indptr), shape=shape)


class ResidualMFDefense(MFTrainingDefense):
    """Train ``mf`` / ``mf-wu`` while, before each sweep / epoch after the first, a rule of the
    current residuals (:meth:`_adjust`) decides which ratings the factors are fitted to and with
    which values (LTSMF: drop the worst-fitted; RMF: subtract a sparse outlier term)."""

    def _adjust(self, r: np.ndarray, e: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        """``(keep, values)`` for ratings ``r`` with residuals ``e = r - r_hat`` (rating scale,
        float64): the ratings to fit (boolean mask, None: all) and the values to fit them to."""
        raise NotImplementedError  # pragma: no cover

    def _record(self, keep: np.ndarray | None, r: np.ndarray, values: np.ndarray) -> None:
        """Hook: per-sweep diagnostics."""

    # ------------------------------------------------------------------ ALS (mf)
    def _fit_als(self, data: Interactions) -> None:
        from ..victims.mf import RowBlocks, ridge_solve

        mf = self.inner
        c = mf.config
        dev = resolve_device(c.device)
        dt = torch.float64 if c.dtype == "float64" else torch.float32
        n_users, n_items = data.shape
        # the plain MF's initialisation (victims/mf.py), so that an inactive rule gives its fit
        gen = torch.Generator().manual_seed(c.seed)
        Y = (torch.randn(n_items, c.d, generator=gen, dtype=torch.float64) * c.init_std).to(dt).to(dev)
        m = data.matrix
        rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(m.indptr))
        cols = m.indices.astype(np.int64)
        r = m.data.astype(np.float64)
        rt, ct = torch.from_numpy(rows).to(dev), torch.from_numpy(cols).to(dev)
        full = (RowBlocks(m, dt, dev), RowBlocks(m.T.tocsr(), dt, dev))
        X = torch.zeros(n_users, c.d, dtype=dt, device=dev)
        self.history_: list[int] = []
        n_threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as MF's fit: one intra-op thread
        try:
            for sweep in range(c.sweeps):
                keep, vals = (None, r) if sweep == 0 else self._adjust(r, r - _dot(X, Y, rt, ct))
                self._record(keep, r, vals)
                if keep is None and vals is r:
                    by_user, by_item = full
                else:
                    k = slice(None) if keep is None else keep
                    by_user = RowBlocks(csr_from(rows[k], cols[k], vals[k], (n_users, n_items)), dt, dev)
                    by_item = RowBlocks(csr_from(cols[k], rows[k], vals[k], (n_items, n_users)), dt, dev)
                X = ridge_solve(by_user, Y, c.reg)
                Y = ridge_solve(by_item, X, c.reg)
        finally:
            torch.set_num_threads(n_threads)
        mf.train_ = data
        mf.user_factors_ = X.cpu().numpy()
        mf.item_factors_ = Y.cpu().numpy()

    def _finetune_als(self, data: Interactions, users: np.ndarray, steps: int) -> None:
        from ..victims.mf import RowBlocks, ridge_solve

        mf = self.inner
        c = mf.config
        dt = torch.float64 if c.dtype == "float64" else torch.float32
        cpu = torch.device("cpu")
        sub = data.matrix[users]
        rows = np.repeat(np.arange(users.size, dtype=np.int64), np.diff(sub.indptr))  # local user index
        cols = sub.indices.astype(np.int64)
        r = sub.data.astype(np.float64)
        rt, ct = torch.from_numpy(users[rows]), torch.from_numpy(cols)
        X = torch.as_tensor(mf.user_factors_, dtype=dt).clone()
        Y = torch.as_tensor(mf.item_factors_, dtype=dt).clone()
        ut = torch.from_numpy(users)
        self.history_ = []
        for _ in range(steps):
            keep, vals = self._adjust(r, r - _dot(X, Y, rt, ct))
            self._record(keep, r, vals)
            k = slice(None) if keep is None else keep
            kr, kc, kv = rows[k], cols[k], vals[k]
            X[ut] = ridge_solve(RowBlocks(csr_from(kr, kc, kv, (users.size, data.n_items)), dt, cpu), Y, c.reg)
            items = np.unique(kc)
            if items.size:
                local = np.searchsorted(items, kc)
                by_item = RowBlocks(csr_from(local, kr, kv, (items.size, users.size)), dt, cpu)
                Y[torch.from_numpy(items)] = ridge_solve(by_item, X[ut], c.reg)
        mf.user_factors_, mf.item_factors_ = X.numpy(), Y.numpy()

    # ------------------------------------------------------------------ Adagrad epochs (mf-wu)
    def _fit_wu(self, data: Interactions) -> None:
        mw = self.inner
        P, Q, (u, i, r), gen = mw.init_factors(data)
        r64 = r.cpu().numpy().astype(np.float64)
        t_all = mw.targets(r)
        opt = mw.optimizer([P, Q])
        self.history_ = []
        with training_threads(True):
            for epoch in range(mw.config.epochs):
                if epoch == 0:
                    keep, vals = None, r64
                else:
                    keep, vals = self._adjust(r64, r64 - mw.predict(P, Q, u, i).cpu().numpy().astype(np.float64))
                self._record(keep, r64, vals)
                self._wu_epoch(mw, P, Q, u, i, r64, t_all, keep, vals, opt, gen)
        mw.set_factors(data, P, Q)

    def _finetune_wu(self, data: Interactions, users: np.ndarray, steps: int) -> None:
        mw = self.inner
        P, Q = mw.factor_copies()
        u, i, r = mw.ratings(data, users)
        r64 = r.cpu().numpy().astype(np.float64)
        opt = mw.optimizer([P, Q])
        gen = mw.finetune_generator(users)
        self.history_ = []
        with training_threads(True):
            for _ in range(steps):
                keep, vals = self._adjust(r64, r64 - mw.predict(P, Q, u, i).cpu().numpy().astype(np.float64))
                self._record(keep, r64, vals)
                self._wu_epoch(mw, P, Q, u, i, r64, None, keep, vals, opt, gen)
        mw.set_factors(mw.train_, P, Q)

    @staticmethod
    def _wu_epoch(mw, P, Q, u, i, r64, t_all, keep, vals, opt, gen) -> None:
        if keep is None and vals is r64 and t_all is not None:
            t = t_all  # the plain model's targets
        else:
            t = mw.targets(torch.from_numpy(vals).to(u.device))
        if keep is not None:
            k = torch.from_numpy(keep).to(u.device)
            u, i, t = u[k], i[k], t[k]
        mw.run_epoch(P, Q, u, i, t, opt, gen)

    # ------------------------------------------------------------------ RVD support
    def finetune(self, data: Interactions, users: np.ndarray, steps: int) -> "ResidualMFDefense":
        """Continue from the current factors on the ratings of ``users`` only, with this defense's
        objective (see the module docstring); other users' and unrated items' factors stay."""
        users = self._check_finetune(data, users, steps)
        if self.inner.name == "mf":
            self._finetune_als(data, users, steps)
        else:
            self._finetune_wu(data, users, steps)
        return self


def _dot(X: torch.Tensor, Y: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> np.ndarray:
    """``X[rows] . Y[cols]`` as float64 numpy (the model at the observed entries)."""
    with torch.no_grad():
        return observed_dot(X, Y, rows, cols).cpu().numpy().astype(np.float64)
