"""Wu et al.'s matrix factorisation, the MF base model of seed 004 (RVD).

Seed 004 (RVD) takes its MF, data and attacks from Chenwang Wu's code base (Wu, Lian, Yu, Chen,
Wang, "Influence-driven data poisoning for robust recommender systems", TPAMI 2023; code
Daftstone/APT and Daftstone/Inf_recommender, ``models/pure_SVD.py``; REFERENCES.md §5.1). That
model is::

    r_hat_ui = p_u . q_i                       (no biases, no global mean)

trained on the observed ratings only, each divided by the data set's maximum rating ``r_max``
(Wu's ``reg_data``: 5, or 8 for FilmTrust), with the mini-batch loss::

    L_B = mean_{(u,i,r) in B} (r / r_max - p_u . q_i)^2 + reg * (mean(p_B^2) + mean(q_B^2))

(``mean(p_B^2)`` is the mean over the batch's user-embedding entries, as ``tf.reduce_mean(p_u * p_u)``
in Wu's code), ``reg = 1e-12``, Xavier (Glorot-uniform) initialisation of ``P`` (users x d) and
``Q`` (items x d), ``d = 64``, Adagrad with learning rate 10 (15 on Yelp: pass ``lr=15``), batches
of 4096 ratings shuffled every epoch, 25 epochs. ``score`` returns ``r_max * p_u . q_i``, on the
rating scale (``predicts_ratings = True``).

Details taken from the code, beyond REFERENCES.md's summary:

* Adagrad is TensorFlow 1's ``AdagradOptimizer``: the squared-gradient accumulator starts at 0.1
  (``initial_accumulator_value``) and the step is ``lr * g / sqrt(acc)`` with no epsilon. Torch's
  Adagrad starts the accumulator at 0, which makes the first step ``lr * sign(g)`` (10 per
  coordinate here) and the fit diverge; ``init_accumulator`` (default 0.1) keeps TF's value.
* Xavier bounds are TF's for an embedding matrix: ``sqrt(6 / (rows + d))``.
* The regulariser is the code's ``reg * (mean(p_u^2) + mean(q_i^2))`` over the batch (the
  ``slim.l2_regularizer`` attached to the variables is never added to the loss there).

Departures and our choices:

* Randomness: initialisation and the per-epoch shuffles come from one ``torch.Generator`` seeded
  with ``seed`` (Wu's code uses the global NumPy/TF generators). Deterministic on the CPU for a
  fixed seed; training runs on one intra-op thread (as the other torch victims,
  :func:`~recpoison.victims._neural.training_threads`), so results do not depend on the thread count.
* The last batch of an epoch holds the remainder (as Wu's ``get_batchs``).
* Gradients are written out (no autograd) and applied as dense ``(rows, d)`` tensors, where TF
  applies sparse row updates; rows outside the batch get a zero gradient, and with Adagrad a zero
  gradient leaves both the row and its accumulator unchanged, so the updates are the same.

For RVD (seed 004, Algorithm 1): ``user_embeddings()`` is ``P``; ``finetune(data, users, steps)``
continues from the current factors with a *fresh* Adagrad on the ratings of ``users`` only, for
``steps`` epochs over those ratings in mini-batches of ``batch_size``, shuffled by a generator
seeded from ``(seed, users)`` (so a fine-tune does not depend on earlier ones); only the factors of
those users and of the items they rated change. ``snapshot()`` / ``restore(state)`` save and put
back the factors.

The training pieces (:meth:`MFWu.init_factors`, :meth:`MFWu.run_epoch`, :meth:`MFWu.optimizer`,
:meth:`MFWu.set_factors`, :func:`wu_loss`) are public so that the training defenses of seed 004
(LTSMF, RMF, APR: :mod:`recpoison.defenses`) train this model with their own objectives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

import numpy as np
import torch

from ..config import check
from ..errors import ConfigError, NotFittedError
from ..interactions import Interactions
from . import _optim
from ._autoenc import _check_finetune, observed_dot
from ._neural import training_threads, xavier_uniform_
from .base import VICTIMS, Recommender, resolve_device


@dataclass(frozen=True)
class MFWuConfig:
    """Hyper-parameters of :class:`MFWu` (defaults: Wu et al.'s ``pure_SVD.py``, REFERENCES §5.1)."""

    d: int = 64
    #: Adagrad step size (Wu: 10; 15 on Yelp)
    lr: float = 10.0
    reg: float = 1e-12
    epochs: int = 25
    batch_size: int = 4096
    #: Adagrad's initial squared-gradient accumulator (TensorFlow 1's default, which Wu's code uses)
    init_accumulator: float = 0.1
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        check(self.d >= 1, f"mf-wu: d={self.d} must be at least 1")
        check(self.lr > 0, f"mf-wu: lr={self.lr} must be positive")
        check(self.reg >= 0, f"mf-wu: reg={self.reg} must be non-negative")
        check(self.epochs >= 1, f"mf-wu: epochs={self.epochs} must be at least 1")
        check(self.batch_size >= 1, f"mf-wu: batch_size={self.batch_size} must be at least 1")
        check(self.init_accumulator > 0, f"mf-wu: init_accumulator={self.init_accumulator} must be positive (Adagrad divides by its root)")


class TFAdagrad(_optim.Adagrad):
    """TensorFlow 1's Adagrad: ``acc = init + sum g^2``, ``p -= lr g / sqrt(acc)`` (no epsilon);
    torch.optim.Adagrad's arithmetic with ``initial_accumulator_value=init`` and ``eps=0``."""

    def __init__(self, params, lr: float, init: float = 0.1):
        super().__init__(params, lr=lr, eps=0.0, initial_accumulator_value=init)


def wu_loss(pu: torch.Tensor, qi: torch.Tensor, t: torch.Tensor, reg: float) -> torch.Tensor:
    """Wu's batch loss: ``mean((t - p_u . q_i)^2) + reg (mean(p_u^2) + mean(q_i^2))`` (``t`` the
    normalised ratings ``r / r_max``; ``pu``, ``qi`` the gathered (B, d) rows)."""
    err = t - (pu * qi).sum(1)
    return (err * err).mean() + reg * ((pu * pu).mean() + (qi * qi).mean())


def apply_row_gradients(P, Q, u, i, gp, gq, opt) -> None:
    """One optimiser step with the gradients ``gp`` of the rows ``P[u]`` and ``gq`` of ``Q[i]``
    (a row met twice in the batch sums its gradients; rows outside it get 0, which leaves them and
    their Adagrad accumulators unchanged)."""
    P.grad = torch.zeros_like(P).index_add_(0, u, gp)
    Q.grad = torch.zeros_like(Q).index_add_(0, i, gq)
    opt.step()
    opt.zero_grad()


#: one mini-batch step: (P, Q, users, items, targets, optimiser) -> batch loss
Step = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, _optim.Optimizer], torch.Tensor]


@VICTIMS.register(
    "mf-wu",
    paper="Wu et al., TPAMI 2023 (Daftstone/APT models/pure_SVD.py); the MF base model of seed 004 (RVD)",
    summary="MF p_u.q_i on ratings / r_max, Xavier init, MSE, Adagrad lr 10, batch 4096, 25 epochs",
)
class MFWu(Recommender):
    """Wu et al.'s MF. Learned: ``user_factors_`` (P, n_users x d), ``item_factors_`` (Q), ``r_max_``
    (the normaliser); ``loss_history_`` (mean batch loss per epoch)."""

    Config = MFWuConfig
    feedback = "explicit"
    predicts_ratings: ClassVar[bool] = True

    # ------------------------------------------------------------------ training pieces
    def init_factors(self, data: Interactions) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Generator]:
        """Xavier-initialised ``P``, ``Q``, the ratings ``(u, i, r)`` of ``data`` (csr
        order; ``r`` on the rating scale) and the generator that then shuffles the epochs."""
        c = self.config
        self.device_ = resolve_device(c.device)
        self.r_max_ = float(data.r_max)
        if not self.r_max_ > 0:
            raise ConfigError(f"mf-wu: the ratings' maximum {self.r_max_:g} must be positive (ratings are divided by it)")
        gen = torch.Generator().manual_seed(c.seed)
        P = xavier_uniform_(torch.empty(data.n_users, c.d), gen)
        Q = xavier_uniform_(torch.empty(data.n_items, c.d), gen)
        u, i, r = self.ratings(data)
        return P.to(self.device_), Q.to(self.device_), (u, i, r), gen

    def ratings(self, data: Interactions, users: np.ndarray | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(users, items, ratings) of the stored entries of ``data`` (of rows ``users`` if given), csr order."""
        m = data.matrix if users is None else data.matrix[users]
        rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
        if users is not None:
            rows = np.asarray(users, dtype=np.int64)[rows]
        dev = self.device_
        return (
            torch.from_numpy(rows).to(dev),
            torch.from_numpy(m.indices.astype(np.int64)).to(dev),
            torch.from_numpy(m.data.astype(np.float32)).to(dev),
        )

    def targets(self, r: torch.Tensor) -> torch.Tensor:
        """The training targets: ratings divided by ``r_max`` (float32)."""
        return r.to(torch.float32) / self.r_max_

    def predict(self, P: torch.Tensor, Q: torch.Tensor, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """``r_max * p_u . q_i`` at the entries ``(u, i)`` (rating scale, no gradient)."""
        with torch.no_grad():
            return observed_dot(P.detach(), Q.detach(), u, i) * self.r_max_

    def optimizer(self, params: list[torch.Tensor]) -> TFAdagrad:
        """A fresh Adagrad (TF 1 arithmetic) with the configured step size."""
        return TFAdagrad(params, lr=self.config.lr, init=self.config.init_accumulator)

    def train_step(self, P, Q, u, i, t, opt) -> torch.Tensor:
        """One Adagrad step on Wu's loss (:func:`wu_loss`) of the batch ``(u, i, t)``, with its
        gradient written out: with ``e = t - p_u . q_i`` over a batch of B ratings,
        ``dL/dp_u = sum over the batch's rows of u of (-2 e q_i + 2 reg p_u / d) / B`` (and likewise
        for ``q_i``): faster than autograd through the row gathers, the same numbers up to rounding."""
        pu, qi = P[u], Q[i]
        err = t - (pu * qi).sum(1)
        B, d = pu.shape
        coef = (-2.0 / B) * err[:, None]
        r = 2.0 * self.config.reg / (B * d)
        apply_row_gradients(P, Q, u, i, coef * qi + r * pu, coef * pu + r * qi, opt)
        return (err * err).mean() + self.config.reg * ((pu * pu).mean() + (qi * qi).mean())

    def run_epoch(self, P, Q, u, i, t, opt, gen: torch.Generator, step: Step | None = None) -> float:
        """One epoch over the entries ``(u, i)`` with targets ``t``: a permutation drawn from ``gen``,
        then one ``step`` (default :meth:`train_step`) per mini-batch of ``batch_size``. Returns the
        mean batch loss (nan for no entries)."""
        n = int(u.shape[0])
        if n == 0:
            return float("nan")
        step = step or self.train_step
        order = torch.randperm(n, generator=gen).to(u.device)
        u, i, t = u[order], i[order], t[order]
        b = self.config.batch_size
        losses = [step(P, Q, u[s : s + b], i[s : s + b], t[s : s + b], opt) for s in range(0, n, b)]
        return float(torch.stack(losses).mean())

    def set_factors(self, data: Interactions, P: torch.Tensor, Q: torch.Tensor) -> None:
        """Make ``P``, ``Q`` (trained on ``data``) the model's factors."""
        self.train_ = data
        self.user_factors_ = P.detach().cpu().numpy().astype(np.float32, copy=True)
        self.item_factors_ = Q.detach().cpu().numpy().astype(np.float32, copy=True)

    def factor_copies(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Copies of the current factors as tensors (for fine-tuning)."""
        self._check_fitted()
        dev = getattr(self, "device_", None) or resolve_device(self.config.device)
        self.device_ = dev
        return (
            torch.tensor(self.user_factors_, device=dev),
            torch.tensor(self.item_factors_, device=dev),
        )

    def finetune_generator(self, users: np.ndarray) -> torch.Generator:
        """The shuffling generator of a fine-tune on ``users``: seeded from ``(seed, users)`` only."""
        ss = np.random.SeedSequence([int(self.config.seed), 1, users.size, *users.tolist()])
        return torch.Generator().manual_seed(int(ss.generate_state(1, dtype=np.uint64)[0] >> 1))

    def check_finetune(self, data: Interactions, users, steps: int) -> np.ndarray:
        """Validate ``finetune``'s arguments; the sorted unique users."""
        self._check_fitted()
        return _check_finetune(self, data, users, steps)

    # ------------------------------------------------------------------ Recommender
    def _fit(self, data: Interactions) -> None:
        P, Q, (u, i, r), gen = self.init_factors(data)
        t = self.targets(r)
        opt = self.optimizer([P, Q])
        self.loss_history_: list[float] = []
        with training_threads(True):
            for _ in range(self.config.epochs):
                self.loss_history_.append(self.run_epoch(P, Q, u, i, t, opt, gen))
        self.set_factors(data, P, Q)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return (self.user_factors_[users] @ self.item_factors_.T) * np.float32(self.r_max_)

    def _check_fitted(self) -> None:
        super()._check_fitted()
        if not hasattr(self, "user_factors_"):
            raise NotFittedError(f"{self.name}: call fit() first")

    # ------------------------------------------------------------------ for RVD (seed 004)
    def finetune(self, data: Interactions, users: np.ndarray, steps: int) -> "MFWu":
        """Continue from the current factors on the ratings of ``users`` only: ``steps`` epochs over
        them with a fresh Adagrad (Wu's loss, mini-batches of ``batch_size``, shuffled by a generator
        seeded from ``(seed, users)``). Only those users' factors and the factors of the items they
        rated change. ``data`` must have the training data's shape; :meth:`snapshot` /
        :meth:`restore` go back."""
        users = self.check_finetune(data, users, steps)
        P, Q = self.factor_copies()
        u, i, r = self.ratings(data, users)
        t = self.targets(r)
        opt = self.optimizer([P, Q])
        gen = self.finetune_generator(users)
        self.finetune_history_: list[float] = []
        with training_threads(True):
            for _ in range(steps):
                self.finetune_history_.append(self.run_epoch(P, Q, u, i, t, opt, gen))
        self.set_factors(self.train_, P, Q)
        return self

    def snapshot(self) -> dict[str, np.ndarray]:
        """A copy of the learned factors (put back with :meth:`restore`)."""
        self._check_fitted()
        return {"user_factors": self.user_factors_.copy(), "item_factors": self.item_factors_.copy()}

    def restore(self, state: dict[str, np.ndarray]) -> "MFWu":
        self._check_fitted()
        if (
            not isinstance(state, dict)
            or set(state) != {"user_factors", "item_factors"}
            or np.shape(state["user_factors"]) != self.user_factors_.shape
            or np.shape(state["item_factors"]) != self.item_factors_.shape
        ):
            raise ConfigError("mf-wu: restore needs the dict returned by snapshot() of this model")
        self.user_factors_ = np.array(state["user_factors"], dtype=np.float32, copy=True)
        self.item_factors_ = np.array(state["item_factors"], dtype=np.float32, copy=True)
        return self

    def user_embeddings(self) -> np.ndarray:
        self._check_fitted()
        return self.user_factors_

    def loss(self, data: Interactions | None = None) -> float:
        """Wu's loss over all ratings of ``data`` (default: the training data) as one batch."""
        self._check_fitted()
        data = self.train_ if data is None else data
        u, i, r = self.ratings(data)
        P, Q = torch.from_numpy(self.user_factors_), torch.from_numpy(self.item_factors_)
        with torch.no_grad():
            return float(wu_loss(P[u.cpu()], Q[i.cpu()], self.targets(r.cpu()), self.config.reg))
