"""Shared machinery of the torch victims of seed 004 (AutoRec, CDAE, NSVD).

Not a victim itself (the leading underscore keeps the registry from importing it as one). It holds:

* :class:`TorchVictim`, a :class:`~recpoison.victims.base.Recommender` whose learned parameters
  are a dict of torch tensors ``self.params_``. It provides what RVD (seed 004, Algorithm 1) needs
  from a base model: ``finetune(data, users, steps)`` (continue training on the interactions of
  ``users`` only, from the current parameters), ``snapshot()`` / ``restore(state)`` (store the
  base model's parameters and recover them before the next user, Algorithm 1 lines 5 and 14), and
  ``loss_history_`` (the training objective after every epoch, for tests and diagnostics).
* helpers: csr -> torch sparse, the optimiser factory, the validation of ``finetune`` arguments.

Threads: training and fine-tuning run on one intra-op thread with denormals flushed to zero
(:func:`~recpoison.victims._neural.training_threads`, as GMF and NeuMF do). On the shared two-core
machine, two torch threads made CDAE's fit on ML-100K take 539 s instead of about 10 s (threads
waiting on each other while the other core was busy; denormal gradients on the second thread), and
AutoRec's 76 s instead of about 11 s. One thread also makes results independent of the machine's
thread count.

Determinism: every random draw comes from a ``torch.Generator`` seeded from the config's ``seed``
(and, for fine-tuning, from the seed and the fine-tuned users, so a fine-tune does not depend on
earlier ones), never from the global generators.
"""

from __future__ import annotations

import warnings
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
import torch

from ..errors import ConfigError, NotFittedError
from ..interactions import Interactions
from . import _optim, _sparse
from ._neural import training_threads
from .base import Recommender, check_memory, resolve_device

Optimizer = Literal["adam", "adagrad", "rprop", "sgd"]


def csr_to_torch(m: sp.csr_matrix, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A ``torch.sparse_csr_tensor`` with the entries of the csr matrix ``m`` (products with it
    are about 3x faster than with COO on a CPU, backward included)."""
    m = sp.csr_matrix(m)
    m.sort_indices()
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the ops used here are stable
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data.astype(np.float64)).to(dtype),
            size=m.shape,
            device=device,
        )


def make_optimizer(kind: str, params: list[torch.Tensor], lr: float) -> _optim.Optimizer:
    """The optimiser named ``kind`` over ``params`` with step size ``lr`` (from :mod:`._optim`:
    the arithmetic of ``torch.optim``'s, without its 2 s import of ``torch._dynamo``).

    ``adagrad`` adds 1 to the root of the squared-gradient accumulator (``eps=1``), as the released
    CDAE code does with ``--beta=1``; ``rprop`` uses ``lr`` as the initial step size.
    """
    if kind == "adam":
        return _optim.Adam(params, lr=lr)
    if kind == "adagrad":
        return _optim.Adagrad(params, lr=lr, eps=1.0)
    if kind == "rprop":
        return _optim.Rprop(params, lr=lr)
    if kind == "sgd":
        return _optim.SGD(params, lr=lr)
    raise ConfigError(f"optimizer={kind!r} is not allowed; use adam, adagrad, rprop or sgd")


class TorchVictim(Recommender):
    """Base of victims whose parameters are torch tensors in ``self.params_`` (name -> tensor).

    Subclasses implement ``_init_params(data, gen)``, ``_epoch(data, opt, gen)`` (one training epoch;
    returns the objective), ``_finetune_step(data, users, opt, gen)`` (one step on ``users`` only)
    and ``_score``.
    """

    # ------------------------------------------------------------------ fit
    def _fit(self, data: Interactions) -> None:
        c = self.config
        self.device_ = resolve_device(c.device)
        gen = torch.Generator().manual_seed(c.seed)
        self.params_ = self._init_params(data, gen)
        opt = make_optimizer(c.optimizer, list(self.params_.values()), c.lr)
        self.loss_history_ = []
        with training_threads(True):
            for _ in range(c.epochs):
                self.loss_history_.append(float(self._epoch(data, opt, gen)))
            self._after_training(data)

    def _after_training(self, data: Interactions) -> None:
        """Hook: cache what scoring needs (called after fit and after finetune)."""

    # ------------------------------------------------------------------ RVD support
    def finetune(
        self, data: Interactions, users: np.ndarray, steps: int, lr: float | None = None
    ) -> "TorchVictim":
        """Continue training from the current parameters on the interactions of ``users`` only.

        ``data`` must have the shape of the training data (same users and items; the usual case is
        the training data itself); ``steps`` full-batch gradient steps are taken on the objective
        restricted to the rows ``users`` with a fresh optimiser of the model's kind (step size
        ``lr``, default the config's ``lr``). Scores afterwards still read the inputs of the
        training data. Use :meth:`snapshot` / :meth:`restore` to go back to the base model.
        """
        self._check_fitted()
        users = _check_finetune(self, data, users, steps)
        data = self._prepare(data)
        # the draws depend on (seed, users) only: the same call gives the same result whatever was
        # fine-tuned before (RVD restores the base model and fine-tunes once per target user)
        ss = np.random.SeedSequence([int(self.config.seed), 1, users.size, *users.tolist()])
        gen = torch.Generator().manual_seed(int(ss.generate_state(1, dtype=np.uint64)[0] >> 1))
        opt = make_optimizer(
            self.config.optimizer, list(self.params_.values()), self.config.lr if lr is None else lr
        )
        self.finetune_history_ = []
        with training_threads(True):
            for _ in range(steps):
                self.finetune_history_.append(float(self._finetune_step(data, users, opt, gen)))
            self._after_training(self.train_prepared_)
        return self

    def snapshot(self) -> dict[str, np.ndarray]:
        """A copy of the learned parameters (restore with :meth:`restore`)."""
        self._check_fitted()
        return {k: v.detach().cpu().numpy().copy() for k, v in self.params_.items()}

    def restore(self, state: dict[str, np.ndarray]) -> "TorchVictim":
        """Put back parameters taken by :meth:`snapshot`."""
        self._check_fitted()
        if set(state) != set(self.params_):
            raise ConfigError(f"{self.name}: state has keys {sorted(state)}, expected {sorted(self.params_)}")
        with torch.no_grad():
            for k, v in self.params_.items():
                if tuple(state[k].shape) != tuple(v.shape):
                    raise ConfigError(f"{self.name}: state[{k!r}] has shape {state[k].shape}, expected {tuple(v.shape)}")
                v.copy_(torch.from_numpy(np.asarray(state[k])).to(v.dtype))
        self._after_training(self.train_prepared_)
        return self

    # ------------------------------------------------------------------ plumbing
    def fit(self, data: Interactions) -> "TorchVictim":  # type: ignore[override]
        if not isinstance(data, Interactions):
            raise TypeError("fit expects an Interactions (users x items)")
        check_memory(self, data.n_users, data.n_items)
        self.train_ = data
        self.train_prepared_ = self._prepare(data)
        self._fit(self.train_prepared_)
        return self

    def _check_fitted(self) -> None:
        super()._check_fitted()
        if not hasattr(self, "params_"):
            raise NotFittedError(f"{self.name}: call fit() first")

    def _init_params(self, data: Interactions, gen: torch.Generator) -> dict[str, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError

    def _epoch(self, data: Interactions, opt: torch.optim.Optimizer, gen: torch.Generator) -> float:  # pragma: no cover
        raise NotImplementedError

    def _finetune_step(
        self, data: Interactions, users: np.ndarray, opt: torch.optim.Optimizer, gen: torch.Generator
    ) -> float:  # pragma: no cover
        raise NotImplementedError


def _check_finetune(model: Recommender, data: Interactions, users: Any, steps: int) -> np.ndarray:
    if not isinstance(data, Interactions):
        raise TypeError("finetune expects an Interactions (users x items)")
    if data.shape != model.train_.shape:
        raise ConfigError(
            f"{model.name}: finetune data has shape {data.shape}, the model was trained on "
            f"{model.train_.shape}; pass the training data (or one with the same users and items)"
        )
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ConfigError(f"{model.name}: steps={steps!r} must be a non-negative integer")
    users = np.unique(np.atleast_1d(np.asarray(users, dtype=np.int64)))
    if users.size == 0:
        raise ConfigError(f"{model.name}: finetune needs at least one user")
    if users.min() < 0 or users.max() >= data.n_users:
        raise ConfigError(f"{model.name}: user index out of range [0, {data.n_users})")
    return users


def init_normal(gen: torch.Generator, shape: tuple[int, ...], std: float) -> torch.Tensor:
    """A float32 tensor of N(0, std^2) draws from ``gen`` (always drawn on the CPU: reproducible)."""
    return torch.randn(*shape, generator=gen, dtype=torch.float32) * std


def init_uniform(gen: torch.Generator, shape: tuple[int, ...], bound: float) -> torch.Tensor:
    """A float32 tensor of U(-bound, bound) draws from ``gen``."""
    return (torch.rand(*shape, generator=gen, dtype=torch.float32) * 2.0 - 1.0) * bound


def leaf(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` moved to ``device`` as a trainable leaf tensor."""
    return t.to(device).requires_grad_(True)


def observed_dot(A: torch.Tensor, B: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """Row-wise dot products ``A[rows] . B[cols]`` (the model evaluated at observed entries), in any
    order: a sampled product forward and two sparse x dense products backward
    (:func:`._sparse.observed_dot`), O(nnz * k) work and O(nnz + (rows + cols) * k) memory (on
    ML-100K the forward took 10 ms against 46 ms for the dense product ``A B^T`` and its gather).
    A model that evaluates the same entries every step builds their :class:`._sparse.PairPattern`
    once and calls :func:`._sparse.observed_dot` with it."""
    return _sparse.observed_dot(A, B, _sparse.PairPattern(rows, cols, A.shape[0], B.shape[0]))


def entries(m: sp.csr_matrix, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row indices, column indices and values of the stored entries of ``m`` (csr order)."""
    rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
    return (
        torch.from_numpy(rows).to(device),
        torch.from_numpy(m.indices.astype(np.int64)).to(device),
        torch.from_numpy(m.data.astype(np.float32)).to(device),
    )
