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
* Each step has its gradient written out (``_step``; ``_batch_objective`` is the autograd form
  the tests compare it with) and draws the drop-out only for the observed entries, the only ones
  it changes.
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

    def _draw(self, Y: sp.csr_matrix, users: np.ndarray, gen: torch.Generator):
        """The batch's inputs and random draws: ``y`` (0/1, batch x items); the corrupted input
        ``y~`` (eq. 5: each observed entry dropped with probability ``q``, the survivors scaled by
        ``1/(1-q)``; one draw per observed entry); the 0/1 mask of sampled negatives (each
        unobserved item with probability ``NS |O_u| / (I - |O_u|)``; one draw per entry)."""
        c, dev = self.config, self.device_
        # the batch's rows of the csr matrix, gathered by hand (scipy's Y[users] costs more than the step's GEMMs)
        start, count = Y.indptr[users], np.diff(Y.indptr)[users]
        nnz = int(count.sum())
        rows = np.repeat(np.arange(len(users)), count)
        cols = Y.indices[np.arange(nnz) - np.repeat(np.cumsum(count) - count - start, count)]
        shape = (len(users), Y.shape[1])
        y = np.zeros(shape, np.float32)
        y[rows, cols] = 1.0
        if c.corruption > 0:
            keep = torch.rand(nnz, generator=gen) >= c.corruption
            y_in = np.zeros(shape, np.float32)
            y_in[rows, cols] = keep.numpy() * np.float32(1.0 / (1.0 - c.corruption))
        else:
            y_in = y
        n_pos = torch.from_numpy(count.astype(np.float32)).unsqueeze(1)
        prob = torch.clamp(c.negatives * n_pos / torch.clamp(shape[1] - n_pos, min=1.0), max=1.0)
        r = torch.rand(shape, generator=gen)
        r.numpy()[rows, cols] = 2.0  # observed items are never negatives
        neg = (r < prob).to(torch.float32)
        return torch.from_numpy(y).to(dev), torch.from_numpy(y_in).to(dev), neg.to(dev)

    def _batch_objective(self, Y: sp.csr_matrix, users: np.ndarray, gen: torch.Generator) -> torch.Tensor:
        """The batch objective (eq. 8 on the batch) as a differentiable torch expression: the
        reference that :meth:`_step`'s hand-written gradient is tested against."""
        c, p = self.config, self.params_
        y, y_in, neg = self._draw(Y, users, gen)
        u = torch.from_numpy(users).to(self.device_)
        z = self._hidden(y_in, u)
        logits = z @ p["Wd"].T + p["bd"]
        # y * softplus(-l) + neg * softplus(l) with one softplus: softplus(-l) = softplus(l) - l
        # and the observed (y) and negative entries are disjoint
        per_entry = (y + neg) * F.softplus(logits) - y * logits
        data_term = per_entry.sum(1)
        user_reg = 0.5 * c.reg * p["V"][u].pow(2).sum(1)
        shared = 0.5 * c.reg * sum(p[k].pow(2).sum() for k in ("W", "Wd", "b", "bd"))
        return (data_term + user_reg).mean() + shared

    @torch.no_grad()
    def _step(self, Y: sp.csr_matrix, users: np.ndarray, opt, gen: torch.Generator) -> float:
        """One AdaGrad step on the batch objective of :meth:`_batch_objective`, with its gradient
        written out (no autograd graph; the same draws; the tests compare the two gradients).
        With ``G = ((y + neg) sigmoid(l) - y) / B`` the gradient at the logits ``l``:
        ``dW' = G^T z + lambda W'``, ``db' = sum G + lambda b'``, ``da = (G W') z (1 - z)`` at the
        hidden pre-activation, ``dW = y~^T da + lambda W``, ``db = sum da + lambda b`` and ``dV_u =
        da_u + lambda V_u / B`` for the batch's users (0 for the others)."""
        c, p = self.config, self.params_
        y, y_in, neg = self._draw(Y, users, gen)
        u = torch.from_numpy(users).to(self.device_)
        B = len(users)
        W, V, b, Wd, bd = p["W"], p["V"], p["b"], p["Wd"], p["bd"]
        Vu = V.index_select(0, u)
        z = torch.sigmoid(torch.addmm(Vu + b, y_in, W))
        logits = torch.addmm(bd, z, Wd.T)
        w = y + neg
        reg = c.reg
        # the objective, for the loss history: dot products, no temporaries
        def sq(t):
            return torch.dot(t.reshape(-1), t.reshape(-1))

        data = torch.dot(w.view(-1), F.softplus(logits).view(-1)) - torch.dot(y.view(-1), logits.view(-1))
        loss = (data + 0.5 * reg * sq(Vu)) / B + 0.5 * reg * (sq(W) + sq(Wd) + sq(b) + sq(bd))
        G = torch.sigmoid(logits).mul_(w).sub_(y).mul_(1.0 / B)
        Wd.grad = torch.addmm(Wd, G.T, z, beta=reg)
        bd.grad = torch.add(G.sum(0), bd, alpha=reg)
        da = (G @ Wd).mul_(z * (1.0 - z))
        W.grad = torch.addmm(W, y_in.T, da, beta=reg)
        b.grad = torch.add(da.sum(0), b, alpha=reg)
        V.grad = torch.zeros_like(V).index_add_(0, u, torch.add(da, Vu, alpha=reg / B))
        opt.step()
        return float(loss)

    def _epoch(self, data: Interactions, opt: torch.optim.Optimizer, gen: torch.Generator) -> float:
        c = self.config
        order = torch.randperm(data.n_users, generator=gen).numpy()
        total = 0.0
        for s in range(0, len(order), c.batch_size):
            batch = order[s : s + c.batch_size]
            total += self._step(self._Y, batch, opt, gen) * len(batch)
        return total / max(len(order), 1)

    def _finetune_step(self, data, users, opt, gen) -> float:  # type: ignore[override]
        return self._step(data.binary(), users, opt, gen)

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
