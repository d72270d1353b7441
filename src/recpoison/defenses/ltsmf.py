"""LTSMF: least trimmed squares matrix factorisation (Cheng and Hurley, ICTAI 2010), a training
defense of seed 004 (RVD) for ``mf`` (ALS) and ``mf-wu`` (Wu et al.'s Adagrad MF).

Seed 004 App. C (REFERENCES.md §5.4): the MF loss::

    sum_{(u,i) in Omega_h} (r_ui - p_u . q_i)^2 + lambda (||P||^2 + ||Q||^2)

where ``Omega_h`` drops from the observed pairs those whose squared residual ``(r_ui - p_u . q_i)^2``
lies in the top ``trim`` share of all pairs: ratings the model cannot explain (as fake profiles'
target ratings tend to be) stop pulling the factors. The trimmed set depends on the model, so it is
recomputed as training proceeds:

* ``mf`` (ALS, seed 001 eq. (1)): before every ALS sweep the residuals of all ratings under the
  current factors are computed, the top ``trim`` share of squared residuals dropped, and the sweep
  (the exact user half-step, then the item half-step, :func:`~recpoison.victims.mf.ridge_solve` on
  the remaining ratings) runs on the rest; the mf's ``d``, ``reg``, ``sweeps``, ``init_std``,
  ``seed``, ``dtype``, ``device`` apply unchanged.
* ``mf-wu``: before every epoch likewise, and the epoch runs Wu's mini-batch Adagrad over the
  remaining ratings (one optimiser for the whole fit, as the plain model; its ``d``, ``lr``,
  ``reg``, ``epochs``, ``batch_size``, ``seed`` apply unchanged).

Our choices (the seed and REFERENCES give none of them):

* ``trim`` defaults to 0.05 (5% of the ratings; REFERENCES suggests 5-10% or the expected share of
  fake ratings). ``floor(trim * n)`` ratings are trimmed; ties in the squared residual are broken
  in favour of trimming the earlier rating in row-major (user, item) order.
* The first sweep / epoch of a fit uses every rating: there is no fitted model yet whose residuals
  could rank them (ALS starts from ``X = 0``, Wu's MF from a Xavier draw: both predict ~0, so
  trimming would drop the highest ratings, not the unexplained ones). This is LTS's usual scheme
  (an initial fit on all data, then refits on the best-fitting subset, the "C-steps" of FAST-LTS).
  With ``trim = 0`` the fit is the wrapped victim's own fit, number for number.
* ``finetune(data, users, steps)`` (RVD on top: ``rvd+ltsmf``) trims among the ratings of
  ``users`` by the current model's residuals before *every* step (the model is fitted, so the first
  step is trimmed too); ``mf``: ALS sweeps restricted to those users and the items of their kept
  ratings (as ``MF.finetune``); ``mf-wu``: epochs over the kept ratings with a fresh Adagrad,
  shuffled from ``(seed, users)`` (as ``MFWu.finetune``).
* The learned factors are written into the wrapped model (its ``score``, ``user_embeddings``,
  ``snapshot``, ``restore`` work on them); ``trimmed_`` records how many ratings each sweep / epoch
  dropped.

This module also holds the base classes the other training defenses (``rmf``, ``apr``) share:
:class:`MFTrainingDefense` (wrap checks, delegation of ``snapshot`` / ``restore``) and
:class:`ResidualMFDefense` (train ``mf`` / ``mf-wu`` on ratings re-weighted by a rule of the
current residuals, before each sweep / epoch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from ..config import check
from ..errors import ConfigError
from ..interactions import Interactions
from ..victims._neural import training_threads
from ..victims._autoenc import observed_dot
from ..victims.base import Recommender, check_memory, resolve_device
from .base import DEFENSES, Defense


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
        if not isinstance(data, Interactions) or data.shape != self.train_.shape:
            raise ConfigError(f"{self.name}: finetune needs an Interactions of shape {self.train_.shape} (the training data)")
        users = np.unique(np.atleast_1d(np.asarray(users, dtype=np.int64)))
        if users.size == 0 or users.min() < 0 or users.max() >= data.n_users:
            raise ConfigError(f"{self.name}: finetune users must be a non-empty set of row indices in [0, {data.n_users})")
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
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


@dataclass(frozen=True)
class LTSMFConfig:
    """Hyper-parameters of :class:`LTSMF` (the wrapped victim keeps its own)."""

    #: share of the ratings (largest squared residuals) left out of the loss; our choice (see module)
    trim: float = 0.05

    def __post_init__(self) -> None:
        check(0 <= self.trim < 1, f"ltsmf: trim={self.trim} must be in [0, 1) (the share of ratings left out)")


@DEFENSES.register(
    "ltsmf",
    paper="Cheng and Hurley, ICTAI 2010 (least trimmed squares MF); seed 004 App. C",
    summary="MF fitted without the top trim share of squared residuals, re-trimmed every sweep/epoch",
)
class LTSMF(ResidualMFDefense):
    """Least trimmed squares MF on ``mf`` or ``mf-wu``. ``trimmed_``: ratings dropped per sweep / epoch."""

    Config = LTSMFConfig

    def _adjust(self, r: np.ndarray, e: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        n_trim = int(np.floor(self.config.trim * r.size))
        if n_trim == 0:
            return None, r
        worst = np.argsort(-(e * e), kind="stable")[:n_trim]
        keep = np.ones(r.size, dtype=bool)
        keep[worst] = False
        return keep, r

    def _record(self, keep, r, values) -> None:
        self.history_.append(0 if keep is None else int(keep.size - keep.sum()))

    @property
    def trimmed_(self) -> list[int]:
        return list(getattr(self, "history_", []))
