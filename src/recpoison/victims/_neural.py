"""Shared torch training machinery of the neural implicit-feedback victims (GMF, NeuMF, LightGCN).

* :func:`sample_negatives`: uniform negative items for a batch of (user, positive) pairs, drawn
  with a ``numpy.random.Generator``; items the user interacted with are rejected through a binary
  search in the sorted ``user * n_items + item`` keys of the training matrix and re-drawn (a few
  vectorised rounds, no Python loop over users).
* :class:`NeuralVictim`: a :class:`~recpoison.victims.base.Recommender` holding a
  ``torch.nn.Module`` in ``self.module_``; it runs the mini-batch training loop for the two losses
  these models use:

  - ``"bce"`` (NCF, He et al. WWW 2017, eq. (7)): every epoch each positive ``(u, i)`` is joined by
    ``n_neg`` freshly sampled negatives ``(u, j)`` with label 0, the instances are shuffled and
    the mean binary cross-entropy of ``sigmoid(logit)`` is minimised;
  - ``"bpr"`` (LightGCN, He et al. SIGIR 2020, eq. (15)): every epoch each positive ``(u, i)`` is
    paired with one sampled negative ``j`` and ``-ln sigmoid(y_ui - y_uj)`` is minimised.

  The optimiser is Adam (:mod:`._optim`: the arithmetic of ``torch.optim.Adam``). L2
  regularisation comes in two forms (class attribute ``reg_form``):
  ``"ego"`` adds ``reg * 0.5 * (||e_u||^2 + ||e_i||^2 [+ ||e_j||^2]) / batch`` on the *ego*
  (layer-0) embeddings of the batch, as the LightGCN reference code does (LightGCN); ``"all"``
  penalises ``reg / 2 * ||theta||^2`` over all parameters, i.e. Adam's coupled ``weight_decay``
  (GMF, NeuMF: the usual reading of an "L2 regularization coefficient" for a torch model).

  Each mini-batch is one ``_train_step`` (autograd on ``_pair_logits`` by default; LightGCN and
  GMF override it with their gradient written out). The epoch's shuffled index columns become
  torch tensors once per epoch, and the batches are slices of them.

  ``finetune(data, users, steps)`` continues training from the current parameters on the
  interactions of ``users`` only (RVD, seed 004, Algorithm 1 line 12) and ``snapshot`` /
  ``restore`` give the parameters back (Algorithm 1 lines 5 and 14).

Determinism: parameters are initialised from a ``torch.Generator`` seeded with the config's
``seed``; shuffling and negatives come from ``numpy.random.default_rng(seed)`` (in ``finetune``, from
the seed and the fine-tuned users). No global RNG is used. Results are bitwise reproducible for a
fixed torch thread count. GMF and NeuMF train single-threaded (:func:`training_threads`), so theirs
do not depend on the thread count.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Literal

import numpy as np
import scipy.sparse as sp
import torch

from ..errors import ConfigError
from ..interactions import Interactions
from ..threads import training_thread_count
from . import _kernels, _optim
from .base import Recommender, resolve_device

LossKind = Literal["bce", "bpr"]


def positive_pairs(m: sp.csr_matrix, users: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) index arrays of the stored entries of ``m`` (optionally of rows ``users``)."""
    counts = np.diff(m.indptr)
    u = np.repeat(np.arange(m.shape[0], dtype=np.int64), counts)
    i = m.indices.astype(np.int64)
    if users is not None:
        keep = np.zeros(m.shape[0], dtype=bool)
        keep[users] = True
        sel = keep[u]
        u, i = u[sel], i[sel]
    return u, i


def positive_keys(m: sp.csr_matrix) -> np.ndarray:
    """Sorted ``user * n_items + item`` keys of the entries of a canonical csr matrix."""
    u, i = positive_pairs(m)
    keys = u * m.shape[1] + i
    return keys  # csr with sorted indices: already sorted by (row, col)


#: the largest ``n_users * n_items`` for which :class:`SeenPairs` keeps a bitmap (one byte per pair)
BITMAP_MAX = 1 << 25


class SeenPairs:
    """The (user, item) pairs of a csr matrix, for testing many ``user * n_items + item`` keys at
    once: a gather from a bitmap of all pairs where it fits in :data:`BITMAP_MAX` bytes (ML-100K: 1.6
    MB; 0.5 ms for an epoch's 396,000 negatives of GMF against 21 ms of binary search), else a binary
    search in the sorted keys (:func:`positive_keys`). Both give the same answers."""

    def __init__(self, keys: np.ndarray, n_pairs: int | None = None) -> None:
        """``keys``: sorted keys; ``n_pairs``: ``n_users * n_items`` (None: no bitmap)."""
        self.keys = keys
        self.bitmap = None
        if n_pairs is not None and n_pairs <= BITMAP_MAX:
            self.bitmap = np.zeros(n_pairs, dtype=bool)
            self.bitmap[keys] = True

    @classmethod
    def of(cls, m: sp.csr_matrix) -> "SeenPairs":
        return cls(positive_keys(m), m.shape[0] * m.shape[1])

    @property
    def size(self) -> int:
        return int(self.keys.size)

    def contains(self, k: np.ndarray) -> np.ndarray:
        if self.bitmap is not None:
            return self.bitmap[k]
        pos = np.searchsorted(self.keys, k)
        return self.keys[np.minimum(pos, self.keys.size - 1)] == k


def sample_negatives(
    keys: "SeenPairs | np.ndarray",
    n_items: int,
    users: np.ndarray,
    rng: np.random.Generator,
    max_rounds: int = 50,
) -> np.ndarray:
    """One uniformly drawn non-interacted item per entry of ``users``.

    ``keys``: the interactions, as :class:`SeenPairs` or as the sorted ``user * n_items + item``
    keys (from :func:`positive_keys`). Draws all items at once, then re-draws only the ones that hit
    an interaction, for at most ``max_rounds`` rounds (a user who interacted with almost every item
    could otherwise loop for long; after that the remaining draws are kept as they are).
    """
    users = np.asarray(users, dtype=np.int64)
    items = rng.integers(0, n_items, size=users.shape[0], dtype=np.int64)
    if keys.size == 0:
        return items
    if not isinstance(keys, SeenPairs):
        keys = SeenPairs(keys)
    todo = np.arange(users.shape[0])
    hits = _kernels.seen_hits() if keys.bitmap is not None else None
    buf = np.empty_like(todo) if hits is not None else None
    for _ in range(max_rounds):
        if hits is not None:  # the same test in one compiled pass (half the time, in a GMF fit)
            todo = buf[: hits(users, items, todo, n_items, keys.bitmap, buf)].copy()
        else:
            todo = todo[keys.contains(users[todo] * n_items + items[todo])]
        if todo.size == 0:
            break
        items[todo] = rng.integers(0, n_items, size=todo.size, dtype=np.int64)
    return items


def bce_instances(
    u: np.ndarray, i: np.ndarray, seen: "SeenPairs | np.ndarray", n_items: int, n_neg: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One epoch of NCF's BCE training instances (He et al. 2017, §3.1.1), shuffled: every positive
    ``(u, i)`` and ``n_neg`` negatives per positive drawn by :func:`sample_negatives`, as (users,
    items, float32 labels). The randomness: the negatives first, then one permutation."""
    negatives = sample_negatives(seen, n_items, np.repeat(u, n_neg), rng)
    assemble = _kernels.bce_assemble()
    small = max(u.size * (n_neg + 1), n_items, int(u.max(initial=0)) + 1) < np.iinfo(np.int32).max
    if assemble is not None and small:
        # the same instances in one compiled pass. The permutation is the one rng.permutation
        # draws (it shuffles an arange the same way), and the random gathers read int32 copies:
        # half the memory, fewer cache misses (in a GMF fit on ML-100K: 30 against 47 ms)
        order = np.arange(u.size * (n_neg + 1), dtype=np.int32)
        rng.shuffle(order)
        out = np.empty(order.size, np.int64), np.empty(order.size, np.int64), np.empty(order.size, np.float32)
        ii = np.concatenate([i, negatives], dtype=np.int32)
        assemble(order, u.astype(np.int32), ii, n_neg, *out)
        return out
    ii = np.concatenate([i, negatives])
    order = rng.permutation(ii.size)
    # instance n is positive n for n < |u|, else a negative of positive (n - |u|) // n_neg
    pos = order < u.size
    src = np.where(pos, order, (order - u.size) // n_neg)
    return np.take(u, src), np.take(ii, order), pos.astype(np.float32)


@contextmanager
def training_threads(single: bool) -> Iterator[None]:
    """Flush denormal floats to zero while training, on one intra-op thread when ``single`` (or
    on :func:`recpoison.threads.training_thread_count` threads, when a run asked for more).

    Long BCE/Adam runs produce denormal gradients and moment estimates (confidently classified
    negatives). They made GMF epochs on ML-100K 2.5x slower by epoch 10. The flush flag is set
    per CPU thread, so torch's existing worker threads keep computing with denormals. Models whose
    mini-batch ops are too small to gain from threads (GMF, NeuMF) therefore train on the calling
    thread only. That also makes their results independent of the machine's thread count.
    Afterwards the thread count is restored. The flush flag goes back to PyTorch's default (off),
    because PyTorch has no getter for it.
    """
    n = torch.get_num_threads()
    torch.set_flush_denormal(True)
    if single:
        torch.set_num_threads(training_thread_count())
    try:
        yield
    finally:
        torch.set_flush_denormal(False)
        if single:
            torch.set_num_threads(n)


class NeuralVictim(Recommender):
    """Base of the torch implicit-feedback victims.

    Subclasses set ``loss_kind`` and implement:

    * ``_build(n_users, n_items, gen) -> torch.nn.Module``;
    * ``_prepare_graph(data)`` (optional, LightGCN keeps its adjacency here);
    * ``_pair_logits(u, items) -> (logits, ego)``: logits of users ``u`` (B,) for ``items`` (B, k)
      as (B, k) and the list of ego-embedding tensors to regularise;
    * ``_score_block(users) -> (len(users), n_items)`` tensor, under ``torch.no_grad``;
    * ``_user_embeddings() -> tensor``.

    The config must have ``epochs, batch_size, lr, reg, seed, device`` and, for ``"bce"``,
    ``n_neg``.
    """

    feedback = "implicit"
    loss_kind: LossKind = "bce"
    #: ``"ego"``: L2 on the batch's ego embeddings; ``"all"``: L2 ``reg/2 ||theta||^2`` on every
    #: parameter, applied as Adam's (coupled) ``weight_decay``
    reg_form: Literal["ego", "all"] = "ego"
    #: train on one intra-op thread (see :func:`training_threads`)
    single_thread: bool = False

    # ------------------------------------------------------------------ fit
    def _fit(self, data: Interactions) -> None:
        c = self.config
        self.device_ = resolve_device(c.device)
        gen = torch.Generator().manual_seed(c.seed)
        self.module_ = self._build(data.n_users, data.n_items, gen).to(self.device_)
        self._set_data(data)
        rng = np.random.default_rng(c.seed)
        opt = self._optimizer(c.lr)
        u, i = positive_pairs(data.matrix)
        self.loss_history_: list[float] = []
        with training_threads(self.single_thread):
            for _ in range(c.epochs):
                losses = [float(x) for x in self._run_epoch(u, i, opt, rng, max_steps=None)]
                self.loss_history_.append(float(np.mean(losses)) if losses else float("nan"))
        self._after_training()

    def _optimizer(self, lr: float) -> _optim.Adam:
        wd = self.config.reg if self.reg_form == "all" else 0.0
        return _optim.Adam(self.module_.parameters(), lr=lr, weight_decay=wd)

    def _set_data(self, data: Interactions) -> None:
        self.keys_ = SeenPairs.of(data.matrix)
        self.n_items_ = data.n_items
        self._prepare_graph(data)

    def _prepare_graph(self, data: Interactions) -> None:
        """Hook for models that need the interaction graph (LightGCN)."""

    def _after_training(self) -> None:
        """Hook: cache what scoring needs (after fit, finetune and restore)."""

    # ------------------------------------------------------------------ one pass over positives
    def _run_epoch(self, u: np.ndarray, i: np.ndarray, opt, rng: np.random.Generator, max_steps: int | None):
        """Yield the loss of each mini-batch of one epoch over the positives ``(u, i)``."""
        c = self.config
        self.module_.train()
        if self.loss_kind == "bce":
            n_neg = c.n_neg
            cu, ci, cy = bce_instances(u, i, self.keys_, self.n_items_, n_neg, rng)
            cols = (cu, ci[:, None], cy[:, None])
        else:
            j = sample_negatives(self.keys_, self.n_items_, u, rng)
            order = rng.permutation(u.size)
            cols = (u[order], np.stack([i[order], j[order]], axis=1), None)
        n = cols[0].size
        dev = self.device_
        # one host->device conversion per epoch; the batches are views (slices) of these tensors
        tu = torch.from_numpy(cols[0]).to(dev)
        ti = torch.from_numpy(np.ascontiguousarray(cols[1])).to(dev)
        ty = torch.from_numpy(cols[2]).to(dev) if cols[2] is not None else None
        steps = 0
        for start in range(0, n, c.batch_size):
            if max_steps is not None and steps >= max_steps:
                break
            end = start + c.batch_size
            y = ty[start:end] if ty is not None else None
            loss = self._train_step(tu[start:end], ti[start:end], y, opt)
            steps += 1
            yield loss.detach()

    def _train_step(self, u: torch.Tensor, items: torch.Tensor, y: torch.Tensor | None, opt) -> torch.Tensor:
        """One optimiser step on a mini-batch: users ``u`` (B,), ``items`` (B, k); ``y`` (B, 1)
        labels for ``"bce"``, None for ``"bpr"`` (``items[:, 0]`` positive, ``items[:, 1]``
        negative). Returns the batch loss. Subclasses may override it with a hand-written
        gradient of the same loss."""
        c = self.config
        logits, ego = self._pair_logits(u, items)
        if self.loss_kind == "bce":
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        else:
            loss = -torch.nn.functional.logsigmoid(logits[:, 0] - logits[:, 1]).mean()
        if c.reg > 0 and self.reg_form == "ego":
            loss = loss + c.reg * 0.5 * sum((e**2).sum() for e in ego) / u.shape[0]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    # ------------------------------------------------------------------ scoring
    def _score(self, users: np.ndarray) -> np.ndarray:
        self.module_.eval()
        with torch.no_grad():
            s = self._score_block(torch.from_numpy(users).to(self.device_))
        return s.float().cpu().numpy()

    def user_embeddings(self) -> np.ndarray:
        """The users' learned representations (rows = users), as RVD (seed 004) uses them."""
        self._check_fitted()
        with torch.no_grad():
            return self._user_embeddings().float().cpu().numpy().copy()

    # ------------------------------------------------------------------ RVD support
    def finetune(
        self, data: Interactions, users: np.ndarray, steps: int, lr: float | None = None
    ) -> "NeuralVictim":
        """Continue training from the current parameters on the interactions of ``users`` only.

        ``data`` must have the shape of the training data (it is normally the training data
        itself; LightGCN propagates over its graph). ``steps`` mini-batch Adam steps (fresh
        optimiser, step size ``lr``, default the config's ``lr``) are taken on the model's loss
        restricted to the positives of rows ``users`` (with freshly sampled negatives), cycling
        over those positives as often as needed. Use :meth:`snapshot` / :meth:`restore` to go
        back to the base model.
        """
        self._check_fitted()
        if not isinstance(data, Interactions):
            raise TypeError("finetune expects an Interactions (users x items)")
        if data.shape != self.train_.shape:
            raise ConfigError(
                f"{self.name}: finetune data has shape {data.shape}, the model was fitted on {self.train_.shape}"
            )
        users = np.unique(np.atleast_1d(np.asarray(users, dtype=np.int64)))
        if users.size == 0 or users.min() < 0 or users.max() >= data.n_users:
            raise ConfigError(f"{self.name}: finetune users must be non-empty indices in [0, {data.n_users})")
        if steps < 0:
            raise ConfigError(f"{self.name}: steps={steps} must be >= 0")
        data = self._prepare(data)
        self._set_data(data)
        # negatives/shuffling depend on (seed, users) only: the same call gives the same result
        # whatever was fine-tuned before (RVD restores and fine-tunes once per target user)
        rng = np.random.default_rng([self.config.seed, 1, users.size, *users.tolist()])
        opt = self._optimizer(self.config.lr if lr is None else lr)
        u, i = positive_pairs(data.matrix, users)
        self.finetune_history_: list[float] = []
        with training_threads(self.single_thread):
            while u.size and len(self.finetune_history_) < steps:
                left = steps - len(self.finetune_history_)
                self.finetune_history_ += [float(x) for x in self._run_epoch(u, i, opt, rng, max_steps=left)]
        self._after_training()
        return self

    def snapshot(self) -> dict[str, np.ndarray]:
        """A copy of the learned parameters (put back with :meth:`restore`)."""
        self._check_fitted()
        return {k: v.detach().cpu().numpy().copy() for k, v in self.module_.state_dict().items()}

    def restore(self, state: dict[str, np.ndarray]) -> "NeuralVictim":
        """Put back parameters taken by :meth:`snapshot` (and the training data's graph)."""
        self._check_fitted()
        own = self.module_.state_dict()
        if set(state) != set(own):
            raise ConfigError(f"{self.name}: state has keys {sorted(state)}, expected {sorted(own)}")
        for k, v in own.items():
            if tuple(np.shape(state[k])) != tuple(v.shape):
                raise ConfigError(f"{self.name}: state[{k!r}] has shape {np.shape(state[k])}, expected {tuple(v.shape)}")
        self.module_.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in state.items()})
        self._set_data(self._prepare(self.train_))
        self._after_training()
        return self

    # ------------------------------------------------------------------ for subclasses
    def _build(self, n_users: int, n_items: int, gen: torch.Generator) -> torch.nn.Module:  # pragma: no cover
        raise NotImplementedError

    def _pair_logits(self, u: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, list[Any]]:  # pragma: no cover
        raise NotImplementedError

    def _score_block(self, users: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def _user_embeddings(self) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError


def normal_(t: torch.Tensor, std: float, gen: torch.Generator) -> torch.Tensor:
    """In-place N(0, std^2) initialisation drawn from ``gen`` (CPU generator; copied to t's device)."""
    with torch.no_grad():
        t.copy_(torch.randn(t.shape, generator=gen, dtype=t.dtype) * std)
    return t


def xavier_uniform_(t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Glorot-uniform initialisation of a (fan_out, fan_in) weight drawn from ``gen``."""
    fan_out, fan_in = t.shape
    a = float(np.sqrt(6.0 / (fan_in + fan_out)))
    with torch.no_grad():
        t.copy_((torch.rand(t.shape, generator=gen, dtype=t.dtype) * 2 - 1) * a)
    return t
