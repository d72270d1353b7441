"""I-AutoRec: item-based autoencoder for rating prediction (Sedhain, Menon, Sanner, Xie, WWW 2015).

One of the base models of seed 004 (RVD, Tables 4 and 8). Each item ``i`` is the partially
observed vector of its ratings by the ``m`` users, ``r^(i) in R^m`` (0 where unobserved); the model
reconstructs it through one hidden layer of ``k`` units (paper eq. 1 and §2)::

    h(r; theta) = f(W . g(V r + mu) + b),      V: k x m, mu: k, W: m x k, b: m

with ``g`` = sigmoid and ``f`` = identity (the best pair in the paper's activation comparison,
RMSE 0.831 on ML-1M), trained on the observed entries only (paper eq. 2)::

    min_theta  sum_i || r^(i) - h(r^(i); theta) ||^2_O  +  lambda/2 (||W||_F^2 + ||V||_F^2)

where ``||.||_O`` sums over the observed ratings. The prediction is ``r_hat_ui = h(r^(i))_u`` (paper
eq. 3), for every (u, i), rated or not: this class has ``predicts_ratings = True`` and
``score(u, i) = r_hat_ui``. Rankings come from predicted ratings, so, like every rating predictor
trained on observed ratings only, it ranks unseen items worse than implicit-feedback models.

Implementation: full-batch gradients over all items at once; the hidden codes are one sparse x
dense product ``R^T V^T``, and the outputs are computed only at the observed entries
(:func:`~recpoison.victims._autoenc.observed_dot`), so an epoch costs O(nnz * k), not
O(n_users * n_items * k). The optimiser is RProp, as in the paper ("resilient propagation"), full
batch; ``optimizer="adam"`` is offered too.

User embedding (``user_embeddings()``, used by RVD to find a user's neighbours): the user's row
``W_u`` of the decoder. I-AutoRec predicts ``r_hat_ui = W_u . g(V r^(i) + mu) + b_u``, so ``W_u``
plays the role of the user factor of matrix factorisation: users with close ``W_u`` get close
predictions on every item. (I-AutoRec has no hidden activation per user; seed 004 §"Visualising
attacks" extracts "hidden features of the model" without saying which.)

Departures and choices, all stated:

* ``k = 500`` hidden units as in the paper. ``lambda`` is not reported per data set in the paper
  (it is tuned over {0.001, 0.01, 0.1, 1, 100, 1000}); the default ``reg = 100`` had the lowest
  RMSE on a validation split carved from the ML-100K training data (the leave-one-out training
  part of seed 0, minus each user's latest remaining rating, which is the validation rating):
  1.108 for lambda = 1, 1.075 for 10, 0.989 for 100, 1.037 for 1000 (100 epochs; 200 epochs with
  lambda = 100: 0.994). Smaller lambdas were not tried (they only overfit more).
* 100 full-batch RProp epochs (the paper does not give the number of iterations).
* Initialisation (not given in the paper): weights uniform in ``±1/sqrt(fan_in)`` (the Torch7
  ``nn.Linear`` default the authors' Lua code used), ``mu = 0`` and ``b`` = the global mean rating
  (speeds up convergence; it only moves the starting point).
* Items nobody rated get ``h(0) = W g(mu) + b`` (the paper substitutes a default rating of 3 for
  unseen users/items in its test set; we let the model answer).
* ``finetune(data, users, steps)`` keeps the inputs (every item's full rating vector in ``data``)
  and restricts the squared error to the entries of ``users``, with the regulariser scaled by the
  share of entries kept, so the balance between fit and regularisation per rating stays that of
  the full objective.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
import torch

from ..config import check
from ..interactions import Interactions
from ._autoenc import TorchVictim, csr_to_torch, entries, init_uniform, leaf
from ._sparse import PairPattern, observed_dot, spmm
from .base import VICTIMS


@dataclass(frozen=True)
class AutoRecConfig:
    """Hyper-parameters of :class:`AutoRec` (defaults: Sedhain et al. 2015, k = 500, RProp)."""

    hidden: int = 500
    reg: float = 100.0
    epochs: int = 100
    lr: float = 0.01
    optimizer: Literal["rprop", "adam"] = "rprop"
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        check(self.hidden >= 1, f"autorec: hidden={self.hidden} must be at least 1")
        check(self.reg >= 0, f"autorec: reg={self.reg} must be non-negative")
        check(self.epochs >= 1, f"autorec: epochs={self.epochs} must be at least 1")
        check(self.lr > 0, f"autorec: lr={self.lr} must be positive")


@VICTIMS.register(
    "autorec",
    paper="Sedhain, Menon, Sanner, Xie, WWW 2015 (I-AutoRec), eqs. 1-3; base model of seed 004",
    summary="item-based autoencoder rating predictor (500 sigmoid units), RProp",
)
class AutoRec(TorchVictim):
    """I-AutoRec. Learned parameters in ``params_``: ``V`` (n_users x k, the encoder ``V^T``),
    ``mu`` (k), ``W`` (n_users x k) and ``b`` (n_users)."""

    Config = AutoRecConfig
    feedback = "explicit"
    predicts_ratings: ClassVar[bool] = True

    # ------------------------------------------------------------------ training
    def _init_params(self, data: Interactions, gen: torch.Generator) -> dict[str, torch.Tensor]:
        c, dev = self.config, self.device_
        m = data.n_users
        self._setup(data)
        gmean = float(data.matrix.data.mean()) if data.nnz else float(np.mean(data.rating_scale))
        return {
            "V": leaf(init_uniform(gen, (m, c.hidden), 1.0 / np.sqrt(max(m, 1))), dev),
            "mu": leaf(torch.zeros(c.hidden), dev),
            "W": leaf(init_uniform(gen, (m, c.hidden), 1.0 / np.sqrt(c.hidden)), dev),
            "b": leaf(torch.full((m,), gmean), dev),
        }

    def _setup(self, data: Interactions) -> None:
        rt = data.matrix.T.tocsr()  # items x users; entries sorted by (item, user)
        self._rt = csr_to_torch(rt, self.device_)
        self._rt_t = csr_to_torch(data.matrix, self.device_)  # its transpose, for the backward
        self._items, self._users_of, self._r = entries(rt, self.device_)
        self._pattern = PairPattern(self._items, self._users_of, data.n_items, data.n_users)

    def _hidden(self) -> torch.Tensor:
        p = self.params_
        return torch.sigmoid(spmm(self._rt, self._rt_t, p["V"]) + p["mu"])

    def _objective(self, keep: torch.Tensor | None, reg_scale: float) -> torch.Tensor:
        p = self.params_
        items, users, r, pattern = self._items, self._users_of, self._r, self._pattern
        if keep is not None:
            items, users, r = items[keep], users[keep], r[keep]
            pattern = self._pattern.select(keep)
        pred = observed_dot(self._hidden(), p["W"], pattern) + p["b"][users]
        sse = torch.sum((r - pred) ** 2)
        return sse + reg_scale * 0.5 * self.config.reg * (p["W"].pow(2).sum() + p["V"].pow(2).sum())

    def _epoch(self, data: Interactions, opt: torch.optim.Optimizer, gen: torch.Generator) -> float:
        opt.zero_grad()
        loss = self._objective(None, 1.0)
        loss.backward()
        opt.step()
        return loss.item()

    def _finetune_step(self, data, users, opt, gen) -> float:  # type: ignore[override]
        if not hasattr(self, "_ft_key") or self._ft_key != (id(data), users.tobytes()):
            self._setup(data)
            sel = torch.from_numpy(np.isin(self._users_of.cpu().numpy(), users)).to(self.device_)
            share = float(sel.sum().item()) / max(int(sel.numel()), 1)
            self._ft = (sel, share)
            self._ft_key = (id(data), users.tobytes())
        sel, share = self._ft
        opt.zero_grad()
        loss = self._objective(sel, share)
        loss.backward()
        opt.step()
        return loss.item()

    def _after_training(self, data: Interactions) -> None:
        self._setup(data)
        self.__dict__.pop("_ft_key", None)
        with torch.no_grad():
            self.hidden_ = self._hidden().cpu().numpy()  # items x k
            self.W_ = self.params_["W"].detach().cpu().numpy()
            self.b_ = self.params_["b"].detach().cpu().numpy()

    # ------------------------------------------------------------------ prediction
    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.W_[users] @ self.hidden_.T + self.b_[users, None]

    def user_embeddings(self) -> np.ndarray:
        """The decoder rows ``W_u`` (n_users x k): see the module docstring."""
        self._check_fitted()
        return self.W_.copy()

    def loss(self) -> float:
        """The objective (paper eq. 2) at the current parameters on the training data."""
        self._check_fitted()
        with torch.no_grad():
            return float(self._objective(None, 1.0).item())
