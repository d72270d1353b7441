"""LightGCN: simplified graph convolution for collaborative filtering.

He, Deng, Wang, Li, Zhang, Wang, "LightGCN: Simplifying and Powering Graph Convolution Network for
Recommendation", SIGIR 2020, §3.1:

* light graph convolution, matrix form eq. (8)::

      A = [[0, R], [R^T, 0]]          A_tilde = D^{-1/2} A D^{-1/2}          E^(k+1) = A_tilde E^(k)

  with ``R`` the users x items 0/1 interaction matrix and ``D`` the degree matrix of ``A``
  (a node without interactions keeps degree 0 and an all-zero row);
* layer combination eq. (9)/(6): ``E = sum_k alpha_k E^(k)``, ``alpha_k = 1 / (K + 1)`` (the mean);
* prediction eq. (5): ``y_hat_ui = e_u^T e_i``;
* BPR loss eq. (15), one uniformly sampled non-interacted item per positive and per epoch, with
  L2 regularisation of the ego (layer-0) embeddings of the batch, ``reg * 0.5 * (||e_u^(0)||^2 +
  ||e_i^(0)||^2 + ||e_j^(0)||^2) / batch`` as in the paper's reference code; Adam.

``A_tilde`` is a torch sparse CSR tensor (int32 indices). As it is symmetric, the gradient of the
propagation is the same map applied to the gradient. Training takes its steps with that gradient
written out (``_train_step``: one propagation forward, the BPR gradient scattered at the batch's
rows, one propagation back, ``K`` fused ``X + A @ H`` products each way, no autograd graph); the
autograd form of the same loss (``propagate`` with a custom backward, ``_pair_logits``) is kept as
the reference the tests compare it with. Per mini-batch the ``2K`` sparse products are most of the
time (docs/victims.md).

Defaults: seed 003 Table 4 (App. A.7), MovieLens-100K: latent dimension 64, 3 layers, learning
rate 1e-2, L2 coefficient 1e-5, 100 epochs (the LightGCN paper's own defaults are lr 1e-3 and
L2 1e-4). The batch size (2048) and N(0, 0.1^2) initialisation follow the LightGCN reference code;
seed 003 does not give them.

``user_embeddings()`` returns the final (layer-combined) user embeddings ``e_u`` that scoring uses.
``finetune`` (RVD) propagates over the graph of the data it is given and takes BPR steps on the
positives of the chosen users only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from ..config import check
from ..interactions import Interactions
from ._neural import NeuralVictim, normal_
from ._sparse import by_column_blocks
from .base import VICTIMS


@dataclass(frozen=True)
class LightGCNConfig:
    """Hyper-parameters of :class:`LightGCN` (defaults: seed 003 Table 4, MovieLens)."""

    d: int = 64
    n_layers: int = 3
    epochs: int = 100
    batch_size: int = 2048
    lr: float = 1e-2
    reg: float = 1e-5
    init_std: float = 0.1
    seed: int = 0
    device: str = "cpu"
    #: explicit ratings >= threshold become interactions; None: every rating (seed 003 App. A.5)
    threshold: float | None = None

    def __post_init__(self) -> None:
        check(self.d >= 1, f"lightgcn: d={self.d} must be at least 1")
        check(self.n_layers >= 0, f"lightgcn: n_layers={self.n_layers} must be >= 0")
        check(self.epochs >= 0, f"lightgcn: epochs={self.epochs} must be >= 0")
        check(self.batch_size >= 1, f"lightgcn: batch_size={self.batch_size} must be at least 1")
        check(self.lr > 0, f"lightgcn: lr={self.lr} must be positive")
        check(self.reg >= 0, f"lightgcn: reg={self.reg} must be >= 0")
        check(self.init_std > 0, f"lightgcn: init_std={self.init_std} must be positive")
        check(self.device in ("cpu", "cuda"), f"lightgcn: device={self.device!r} must be 'cpu' or 'cuda'")


def normalized_adjacency(m: sp.csr_matrix) -> sp.csr_matrix:
    """``D^{-1/2} A D^{-1/2}`` of the bipartite graph ``A = [[0, R], [R^T, 0]]`` (eq. (8)), float64 csr."""
    R = sp.csr_matrix(m, dtype=np.float64, copy=True)
    R.data[:] = 1.0
    A = sp.bmat([[None, R], [R.T, None]], format="csr")
    deg = np.asarray(A.sum(axis=1)).ravel()
    with np.errstate(divide="ignore"):
        inv = np.where(deg > 0, 1.0 / np.sqrt(deg), 0.0)
    Dm = sp.diags(inv)
    out = (Dm @ A @ Dm).tocsr()
    out.sort_indices()
    return out


def to_torch_csr(m: sp.csr_matrix, device: torch.device) -> torch.Tensor:
    """``m`` as a float32 ``torch.sparse_csr_tensor`` on ``device``.

    Indices are int32 where they fit (MKL's CSR x dense product is about 8% faster with them on
    the CPU), int64 otherwise.
    """
    idx = np.int32 if max(m.nnz, max(m.shape, default=0)) < np.iinfo(np.int32).max else np.int64
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(idx)),
            torch.from_numpy(m.indices.astype(idx)),
            torch.from_numpy(m.data.astype(np.float32)),
            size=m.shape,
            check_invariants=False,  # built from a canonical scipy csr just above
        ).to(device)


class _SymmetricSpMM(torch.autograd.Function):
    """``A @ X`` for a constant symmetric sparse ``A``: the gradient is ``A^T G = A G``."""

    @staticmethod
    def forward(ctx, A, X):  # type: ignore[override]
        ctx.A = A
        return torch.sparse.mm(A, X)

    @staticmethod
    def backward(ctx, G):  # type: ignore[override]
        return None, torch.sparse.mm(ctx.A, G.contiguous())


def propagate(A: torch.Tensor, E0: torch.Tensor, n_layers: int) -> torch.Tensor:
    """Mean of ``E0, A E0, ..., A^K E0`` (eqs. (8)-(9) with alpha_k = 1/(K+1)); differentiable."""
    acc = E0
    E = E0
    for _ in range(n_layers):
        E = _SymmetricSpMM.apply(A, E)
        acc = acc + E
    return acc / (n_layers + 1)


#: on the CPU, :func:`propagate_nograd` works through the embedding columns in blocks of this
#: width (the propagation maps each column on its own): 32-column blocks made ML-100K's 2,625-node
#: products 20-25% faster than all 64 columns at once, bitwise the same (docs/victims.md)
COLUMN_BLOCK = 32


def propagate_nograd(A: torch.Tensor, X: torch.Tensor, n_layers: int) -> torch.Tensor:
    """``propagate`` without autograd: ``(X + A (X + A (X + ...))) / (K + 1)`` (Horner's rule, one
    fused ``X + A @ H`` product per layer), in column blocks on the CPU. As ``A`` is symmetric,
    the same map is also the gradient of ``propagate`` (``dL/dE0 = propagate(A, dL/dE, K)``)."""
    if not n_layers:
        return X.clone()
    return by_column_blocks(lambda B: _horner(A, B, n_layers), X, COLUMN_BLOCK)


def _horner(A: torch.Tensor, X: torch.Tensor, n_layers: int) -> torch.Tensor:
    H = X
    for _ in range(n_layers):
        H = torch.addmm(X, A, H)
    return H * (1.0 / (n_layers + 1))


class _LightGCNModule(torch.nn.Module):
    def __init__(self, n_users, n_items, d, std, gen) -> None:
        super().__init__()
        self.E0 = torch.nn.Parameter(normal_(torch.empty(n_users + n_items, d), std, gen))
        self.n_users = n_users


@VICTIMS.register(
    "lightgcn",
    paper="He et al., SIGIR 2020 (LightGCN), eqs. (5), (8), (9), (15); settings of seed 003 Table 4",
    summary="light graph convolution over the normalised user-item graph, mean layer combination, BPR",
)
class LightGCN(NeuralVictim):
    """LightGCN. Learned: ``module_.E0`` (ego embeddings of users then items); ``final_`` cached."""

    Config = LightGCNConfig
    loss_kind = "bpr"
    #: two intra-op threads were 4-8x slower on the shared two-core machine (docs/victims.md)
    single_thread = True

    def _build(self, n_users, n_items, gen):
        return _LightGCNModule(n_users, n_items, self.config.d, self.config.init_std, gen)

    def _prepare_graph(self, data: Interactions) -> None:
        self.adj_ = to_torch_csr(normalized_adjacency(data.matrix), self.device_)

    def _pair_logits(self, u, items):
        m = self.module_
        E = propagate(self.adj_, m.E0, self.config.n_layers)
        B, k = items.shape
        flat = items.reshape(-1) + m.n_users
        eu = E.index_select(0, u)
        ei = E.index_select(0, flat).view(B, k, -1)
        logits = (eu.unsqueeze(1) * ei).sum(-1)
        return logits, [m.E0.index_select(0, u), m.E0.index_select(0, flat)]

    @torch.no_grad()
    def _train_step(self, u, items, y, opt):
        """One BPR step with the gradient written out (no autograd graph; with the other changes of
        issue 15, 1.3x less CPU per default fit on ML-100K, docs/victims.md).

        Forward: ``E = propagate(E0)``; ``x = e_u . (e_i - e_j)``; loss ``mean softplus(-x)`` (=
        ``-ln sigmoid(x)``, eq. (15)) plus the ego L2 term. Backward: ``dL/dx = -sigmoid(-x) / B``
        scattered into ``G = dL/dE`` at the batch's rows, then ``dL/dE0 = propagate(G)`` (``A``
        is symmetric) plus ``reg / B`` times the batch's ego rows. ``_pair_logits`` is the
        autograd reference of the same loss (the tests compare the two gradients).
        """
        c, m = self.config, self.module_
        E0 = m.E0
        K = c.n_layers
        E = propagate_nograd(self.adj_, E0, K)
        B = u.shape[0]
        ii = items[:, 0] + m.n_users
        jj = items[:, 1] + m.n_users
        eu, ei, ej = E.index_select(0, u), E.index_select(0, ii), E.index_select(0, jj)
        diff = ei - ej
        x = (eu * diff).sum(1)
        loss = torch.nn.functional.softplus(-x).mean()
        g = (torch.sigmoid(-x) * (-1.0 / B)).unsqueeze(1)
        G = torch.zeros_like(E)
        G.index_add_(0, u, g * diff)
        geu = g * eu
        G.index_add_(0, ii, geu)
        G.index_add_(0, jj, -geu)
        grad = propagate_nograd(self.adj_, G, K)
        if c.reg > 0:
            w = c.reg / B
            e0u, e0i, e0j = E0.index_select(0, u), E0.index_select(0, ii), E0.index_select(0, jj)
            loss = loss + (0.5 * w) * ((e0u * e0u).sum() + (e0i * e0i).sum() + (e0j * e0j).sum())
            grad.index_add_(0, u, e0u, alpha=w)
            grad.index_add_(0, ii, e0i, alpha=w)
            grad.index_add_(0, jj, e0j, alpha=w)
        E0.grad = grad
        opt.step()
        return loss

    def _after_training(self) -> None:
        with torch.no_grad():
            self.final_ = propagate_nograd(self.adj_, self.module_.E0.detach(), self.config.n_layers)

    def _score_block(self, users):
        n = self.module_.n_users
        return self.final_.index_select(0, users) @ self.final_[n:].T

    def _user_embeddings(self):
        return self.final_[: self.module_.n_users]
