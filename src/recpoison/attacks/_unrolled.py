"""A dense WRMF surrogate whose last training steps can be differentiated with respect to the fake
users' rows: the inner problem of the bi-level attacks (RevAdv, Tang et al. 2020; RAPU-G, seed 003
§3 and App. A.3 eqs. (8)-(9)).

Model (seed 003 App. A.4 eq. (10), Table 4; REFERENCES.md §2.3 and §3.2 for what both reference
codes do): P (users x d) and Q (items x d) drawn from N(0, ``init_std``^2), scores ``P Q^T`` without
biases, loss ``sum_{u,i} w_ui (r_ui - p_u . q_i)^2`` over **all** pairs, ``w_ui = pos_weight`` (20)
on interactions and 1 elsewhere, L2 as Adam's coupled ``weight_decay`` (1e-5), Adam with learning
rate 1e-2, one full-batch step per epoch (both codes use batches of 2,048 users: full batch on
ML-100K). The loss is summed over users as the codes sum it (``mse_loss(...).sum()``; Adam is
invariant to the scale of the loss apart from ``eps`` and the relative weight of the decay).

Weights on relaxed data (``weight``): the codes compute ``w = pos_weight`` where ``r > 0`` and 1
elsewhere, a step function of the data with no gradient (``"mask"``, default). ``"linear"`` uses
``1 + (pos_weight - 1) r`` instead, equal on 0/1 data and differentiable in ``r`` (our option).

Unrolling: training runs ``epochs`` steps; the first ``epochs - unroll`` use the project's Adam
(``victims._optim.Adam``, no graph, fake rows detached); the last ``unroll`` steps are written as
tensor expressions (the analytic WRMF gradient and the Adam update, continuing the optimiser's
moment estimates and step count), so that the returned P and Q are functions of the fake block
with a graph through those steps, as the ``higher`` library gives the reference codes. The gradient
of an outer loss with respect to the fake rows is then one ``torch.autograd.grad``. The fake rows
are also in the data of the earlier, non-differentiated steps (as in the codes); their influence
through those steps is truncated (the usual truncated back-propagation of the references).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from ..config import check
from ..victims._optim import Adam


@dataclass(frozen=True)
class WRMFSettings:
    """Surrogate settings; defaults as seed 003's code (REFERENCES.md §2.3)."""

    d: int = 64
    lr: float = 1e-2
    weight_decay: float = 1e-5
    pos_weight: float = 20.0
    init_std: float = 0.1
    weight: Literal["mask", "linear"] = "mask"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8

    def __post_init__(self) -> None:
        check(isinstance(self.d, int) and self.d >= 1, f"wrmf surrogate: d={self.d} must be an integer >= 1")
        check(self.lr > 0 and self.weight_decay >= 0 and self.pos_weight > 0 and self.init_std > 0,
              "wrmf surrogate: lr, pos_weight and init_std must be > 0, weight_decay >= 0")
        check(self.weight in ("mask", "linear"), f"wrmf surrogate: weight={self.weight!r}: use 'mask' or 'linear'")


def dense_binary(m: sp.spmatrix, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The 0/1 interactions of a sparse matrix as a dense tensor (any stored rating is a 1)."""
    a = sp.csr_matrix(m)
    out = torch.zeros(a.shape, dtype=dtype)
    rows = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
    keep = a.data != 0
    out[torch.from_numpy(rows[keep]), torch.from_numpy(a.indices[keep].astype(np.int64))] = 1.0
    return out


def wrmf_grads(P: torch.Tensor, Q: torch.Tensor, R: torch.Tensor, W: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of ``sum W (P Q^T - R)^2`` with respect to P and Q (differentiable expressions)."""
    E = W * (P @ Q.T - R)
    return 2.0 * E @ Q, 2.0 * E.T @ P


def wrmf_loss(P: torch.Tensor, Q: torch.Tensor, R: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    return (W * (P @ Q.T - R) ** 2).sum()


def adam_update(p, g, m, v, step: int, s: WRMFSettings):
    """One Adam step (torch's formula with coupled weight decay) as a differentiable expression;
    returns the new (p, m, v)."""
    b1, b2 = s.betas
    if s.weight_decay:
        g = g + s.weight_decay * p
    m = b1 * m + (1.0 - b1) * g
    v = b2 * v + (1.0 - b2) * g * g
    bc1 = 1.0 - b1**step
    bc2 = 1.0 - b2**step
    denom = v.sqrt() / math.sqrt(bc2) + s.eps
    return p - (s.lr / bc1) * m / denom, m, v


class UnrolledWRMF:
    """Dense WRMF trained on ``[R_real; X_fake]`` with the last ``unroll`` steps differentiable in
    ``X_fake``. ``history_``: the training loss of every step."""

    def __init__(self, settings: WRMFSettings | None = None, dtype: torch.dtype = torch.float32) -> None:
        self.s = settings or WRMFSettings()
        self.dtype = dtype

    def weights(self, R: torch.Tensor) -> torch.Tensor:
        if self.s.weight == "linear":
            return 1.0 + (self.s.pos_weight - 1.0) * R
        return torch.where(R.detach() > 0, self.s.pos_weight, 1.0).to(R.dtype)

    def init(self, n_users: int, n_items: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        P = torch.randn(n_users, self.s.d, generator=gen, dtype=self.dtype) * self.s.init_std
        Q = torch.randn(n_items, self.s.d, generator=gen, dtype=self.dtype) * self.s.init_std
        return P, Q

    def train(self, R_real: torch.Tensor, X_fake: torch.Tensor | None, epochs: int, unroll: int = 0,
              gen: torch.Generator | None = None, init: tuple[torch.Tensor, torch.Tensor] | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Train from a fresh draw (``gen``) or from ``init`` = (P, Q) and return the final (P, Q);
        with ``unroll`` > 0 and ``X_fake`` requiring grad, P and Q carry a graph in ``X_fake``
        through the last ``unroll`` steps. Rows of P: the real users, then the fake ones."""
        check(0 <= unroll <= epochs, f"wrmf surrogate: unroll={unroll} must be in [0, epochs={epochs}]")
        n_fake = 0 if X_fake is None else X_fake.shape[0]
        n_users, n_items = R_real.shape[0] + n_fake, R_real.shape[1]
        if init is None:
            P, Q = self.init(n_users, n_items, gen if gen is not None else torch.Generator().manual_seed(0))
        else:
            P, Q = (t.detach().clone().to(self.dtype) for t in init)
        R_real = R_real.to(self.dtype)
        R_fixed = R_real if X_fake is None else torch.cat([R_real, X_fake.detach().to(self.dtype)])
        W_fixed = self.weights(R_fixed)
        self.history_: list[float] = []
        opt = Adam([P, Q], lr=self.s.lr, betas=self.s.betas, eps=self.s.eps, weight_decay=self.s.weight_decay,
                   fused=self.dtype == torch.float32)
        with torch.no_grad():
            for _ in range(epochs - unroll):
                P.grad, Q.grad = wrmf_grads(P, Q, R_fixed, W_fixed)
                opt.step()
            P.grad = Q.grad = None
        if unroll == 0:
            return P, Q
        step = 0
        moments = []
        for st, p in zip(opt.state, (P, Q)):
            if st:
                step = int(st["step_t"]) if "step_t" in st else int(st["step"])
                moments.append((st["exp_avg"].clone(), st["exp_avg_sq"].clone()))
            else:
                moments.append((torch.zeros_like(p), torch.zeros_like(p)))
        (mP, vP), (mQ, vQ) = moments
        R = R_real if X_fake is None else torch.cat([R_real, X_fake.to(self.dtype)])
        W = self.weights(R)
        for _ in range(unroll):
            step += 1
            gP, gQ = wrmf_grads(P, Q, R, W)
            P_new, mP, vP = adam_update(P, gP, mP, vP, step, self.s)
            Q, mQ, vQ = adam_update(Q, gQ, mQ, vQ, step, self.s)
            P = P_new
        return P, Q


def train_factors(m: sp.spmatrix, settings: WRMFSettings, epochs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Plain surrogate training on a sparse matrix (any rating is an interaction): (P, Q) as numpy."""
    P, Q = UnrolledWRMF(settings).train(dense_binary(m), None, epochs, 0, torch.Generator().manual_seed(int(seed)))
    return P.numpy().astype(np.float64), Q.numpy().astype(np.float64)
