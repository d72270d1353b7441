"""CDAE: Collaborative Denoising Auto-Encoder for top-N recommendation (Wu, DuBois, Zheng, Ester,
WSDM 2016).

One of the base models of seed 004 (RVD, Tables 4 and 8). Implicit feedback: a user ``u`` is the
0/1 vector ``y_u`` over the ``I`` items. The input is corrupted by drop-out (paper §4.2, eq. 5):
every observed entry is zeroed with probability ``q`` and the others are scaled by ``1/(1-q)``,
giving ``y~_u``. One hidden layer with a user-specific input node (paper eqs. 6-7)::

    z_u      = h(W^T y~_u + V_u + b)          W: I x K, V_u: K (the user node), b: K
    y_hat_ui = f(W'_i^T z_u + b'_i)           W': I x K, b': I

with ``h`` = sigmoid and ``f`` = identity, trained with the logistic loss (the paper's best
setting for ranking, and the default of the authors' released code, which applies the logistic
loss to the linear output). The objective (paper eq. 8) is::

    (1/|U|) sum_u [ sum_{i in O_u ∪ S_u} l(y_ui, y_hat_ui) ]
        + lambda/2 (||W||^2 + ||W'||^2 + ||V||^2 + ||b||^2 + ||b'||^2)

where ``O_u`` are the user's observed items and ``S_u`` negative items sampled afresh in every
epoch among the unobserved ones (paper §4.3: "negative sampling", NS = 5 negatives per positive).
Recommendations rank unseen items by ``y_hat_ui`` computed from the uncorrupted ``y_u``.

Defaults: K = 50, NS = 5, lambda = 0.01, AdaGrad (the paper's and released code's settings),
corruption ``q = 0.2`` (the paper sweeps q over [0, 1]; 0.2 and 0.5 gave the same validation HR@10
on ML-100K within noise). Step size 0.3 and 100 epochs: the released code takes AdaGrad steps of 0.1
after every single user; we average the gradient over 32 users per step, and 0.3 was the best of
{0.1, 0.3, 1.0} on a validation split carved from the ML-100K training data (HR@10 0.165 vs 0.144 and
0.155; per-user steps with 0.1 gave 0.149 in 10x the time). User embedding (``user_embeddings()``,
for RVD): the hidden layer ``z_u`` of the uncorrupted input.

Implementation choices and departures, all stated:

* Training is vectorised over mini-batches of users (``batch_size``), each a dense
  (batch x items) block; the paper updates after every user (SGD). The per-batch objective is the
  mean over its users of their loss plus their own ``lambda/2 ||V_u||^2``, plus the shared
  regulariser of ``W, W', b, b'``. The loss term is an unbiased estimate of eq. 8's; the user
  nodes' penalty is not: each ``V_u`` is penalised when its user is in the batch, as in the
  released code's per-user steps, which weighs ``lambda/2 ||V||^2`` ``1/|U|`` as much as the
  literal eq. 8 does. AdaGrad adds 1 to the root of its accumulator (the released code's
  ``--beta=1``).
* Negatives: sampled loss, not the full cross entropy over all items, to stay with the paper's
  objective (full BCE over 1682 items would be cheap on ML-100K, but it weights negatives about
  15:1 instead of 5:1 and changes the model). Each unobserved item of user ``u`` enters ``S_u``
  independently with probability ``min(1, NS * |O_u| / (I - |O_u|))``: ``NS * |O_u|`` negatives in
  expectation, drawn without replacement (the released code draws ``NS * |O_u|`` with replacement).
* The paper writes separate encoder and decoder matrices ``W`` and ``W'`` (eqs. 6-7) and we follow
  it; the released code's default ties them (``asymmetric=false``).
* Initialisation as the released code: uniform in ``±4 sqrt(6/(I+K))`` (times ``init_scale``,
  default 1), biases 0.
* ``finetune(data, users, steps)``: ``steps`` AdaGrad steps on the eq. 8 objective restricted to
  ``users`` (their mean loss: the per-user normalisation keeps the data/regulariser balance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from ..config import check
from ..interactions import Interactions
from ._autoenc import TorchVictim, init_uniform, leaf
from .base import VICTIMS


@dataclass(frozen=True)
class CDAEConfig:
    """Hyper-parameters of :class:`CDAE` (defaults: Wu et al. 2016 and their released code)."""

    factors: int = 50
    corruption: float = 0.2
    negatives: int = 5
    reg: float = 0.01
    epochs: int = 100
    lr: float = 0.3
    batch_size: int = 32
    optimizer: Literal["adagrad", "adam"] = "adagrad"
    init_scale: float = 1.0
    threshold: float | None = None
    seed: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        check(self.factors >= 1, f"cdae: factors={self.factors} must be at least 1")
        check(0.0 <= self.corruption < 1.0, f"cdae: corruption={self.corruption} must be in [0, 1)")
        check(self.negatives >= 0, f"cdae: negatives={self.negatives} must be non-negative")
        check(self.reg >= 0, f"cdae: reg={self.reg} must be non-negative")
        check(self.epochs >= 1, f"cdae: epochs={self.epochs} must be at least 1")
        check(self.lr > 0, f"cdae: lr={self.lr} must be positive")
        check(self.batch_size >= 1, f"cdae: batch_size={self.batch_size} must be at least 1")
        check(self.init_scale > 0, f"cdae: init_scale={self.init_scale} must be positive")


@VICTIMS.register(
    "cdae",
    paper="Wu, DuBois, Zheng, Ester, WSDM 2016 (CDAE), eqs. 5-8; base model of seed 004",
    summary="collaborative denoising autoencoder, implicit feedback, sampled logistic loss",
)
class CDAE(TorchVictim):
    """CDAE. Learned parameters in ``params_``: ``W`` (items x K, encoder), ``V`` (users x K, user
    nodes), ``b`` (K), ``Wd`` (items x K, the decoder ``W'``) and ``bd`` (items, ``b'``)."""

    Config = CDAEConfig
    feedback = "implicit"

    # ------------------------------------------------------------------ training
    def _init_params(self, data: Interactions, gen: torch.Generator) -> dict[str, torch.Tensor]:
        c, dev = self.config, self.device_
        n_users, n_items = data.shape
        bound = c.init_scale * 4.0 * np.sqrt(6.0 / (n_items + c.factors))
        self._Y = data.binary()
        return {
            "W": leaf(init_uniform(gen, (n_items, c.factors), bound), dev),
            "V": leaf(init_uniform(gen, (n_users, c.factors), bound), dev),
            "b": leaf(torch.zeros(c.factors), dev),
            "Wd": leaf(init_uniform(gen, (n_items, c.factors), bound), dev),
            "bd": leaf(torch.zeros(n_items), dev),
        }

    def _hidden(self, y: torch.Tensor, users: torch.Tensor) -> torch.Tensor:
        p = self.params_
        return torch.sigmoid(y @ p["W"] + p["V"][users] + p["b"])

    def _batch_objective(self, Y: sp.csr_matrix, users: np.ndarray, gen: torch.Generator) -> torch.Tensor:
        c, p, dev = self.config, self.params_, self.device_
        y = torch.from_numpy(Y[users].toarray()).to(dev)
        n_items = y.shape[1]
        # corruption (eq. 5): drop-out of observed entries, survivors scaled by 1/(1-q)
        if c.corruption > 0:
            keep = (torch.rand(y.shape, generator=gen) >= c.corruption).to(dev)
            y_in = y * keep / (1.0 - c.corruption)
        else:
            y_in = y
        u = torch.from_numpy(users).to(dev)
        z = self._hidden(y_in, u)
        logits = z @ p["Wd"].T + p["bd"]
        # negative sampling: each unobserved item with prob NS |O_u| / (I - |O_u|)
        n_pos = y.sum(1, keepdim=True)
        prob = torch.clamp(c.negatives * n_pos / torch.clamp(n_items - n_pos, min=1.0), max=1.0)
        neg = (torch.rand(y.shape, generator=gen).to(dev) < prob) & (y == 0)
        # y * softplus(-l) + neg * softplus(l) with one softplus: softplus(-l) = softplus(l) - l
        # and the observed (y) and negative entries are disjoint
        per_entry = (y + neg) * F.softplus(logits) - y * logits
        data_term = per_entry.sum(1)
        user_reg = 0.5 * c.reg * p["V"][u].pow(2).sum(1)
        shared = 0.5 * c.reg * sum(p[k].pow(2).sum() for k in ("W", "Wd", "b", "bd"))
        return (data_term + user_reg).mean() + shared

    def _epoch(self, data: Interactions, opt: torch.optim.Optimizer, gen: torch.Generator) -> float:
        c = self.config
        order = torch.randperm(data.n_users, generator=gen).numpy()
        total = 0.0
        for s in range(0, len(order), c.batch_size):
            batch = order[s : s + c.batch_size]
            opt.zero_grad()
            loss = self._batch_objective(self._Y, batch, gen)
            loss.backward()
            opt.step()
            total += loss.item() * len(batch)
        return total / max(len(order), 1)

    def _finetune_step(self, data, users, opt, gen) -> float:  # type: ignore[override]
        opt.zero_grad()
        loss = self._batch_objective(data.binary(), users, gen)
        loss.backward()
        opt.step()
        return loss.item()

    def _after_training(self, data: Interactions) -> None:
        self._Y = data.binary()
        p = self.params_
        out = []
        with torch.no_grad():
            for s in range(0, data.n_users, 4096):
                y = torch.from_numpy(self._Y[s : s + 4096].toarray()).to(self.device_)
                u = torch.arange(s, s + y.shape[0], device=self.device_)
                out.append(self._hidden(y, u).cpu().numpy())
            self.Wd_ = p["Wd"].detach().cpu().numpy()
            self.bd_ = p["bd"].detach().cpu().numpy()
        self.hidden_ = np.concatenate(out) if out else np.zeros((0, self.config.factors), np.float32)

    # ------------------------------------------------------------------ prediction
    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.hidden_[users] @ self.Wd_.T + self.bd_

    def user_embeddings(self) -> np.ndarray:
        """The hidden layer ``z_u`` of every user's uncorrupted input (n_users x K)."""
        self._check_fitted()
        return self.hidden_.copy()
