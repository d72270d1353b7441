"""Generalized Matrix Factorization (GMF), the linear instance of Neural Collaborative Filtering.

He, Liao, Zhang, Nie, Hu, Chua, "Neural Collaborative Filtering", WWW 2017 (NCF), §3.2, eq. (9)::

    y_hat_ui = a_out( h^T (p_u ⊙ q_i) )            a_out = sigmoid

trained on implicit feedback with the binary cross-entropy of eq. (7), every observed interaction
a positive and ``n_neg`` (paper: 4) items sampled uniformly among the user's non-interacted items
per positive and per epoch as negatives, optimised with Adam (§4.1). Seed 003 (Table 4 / App. A.7)
uses this model as its "NCF" victim; its MovieLens-100K setting gives the defaults: latent dimension
64, learning rate 1e-2, L2 coefficient 1e-5, 100 training epochs. Scores are the logits
``h^T (p_u ⊙ q_i)`` (a monotone transform of eq. (9); rankings are unchanged). The output layer also
carries a bias ``b`` (the NCF reference code's ``Dense`` layer; the paper's eq. (9) omits it).

Departures and choices where the papers are silent:

* L2 form. Seed 003 gives the coefficient (1e-5), not the form. It is applied as ``reg / 2 *
  ||theta||^2`` over all parameters every step (Adam's coupled ``weight_decay``, the usual reading
  for a torch model). The alternative form, ``reg * 0.5 * (||p_u||^2 + ||q_i||^2) / batch`` on the
  batch's embeddings only, lets GMF overfit with lr 1e-2 for 100 epochs on ML-100K: leave-one-out
  HR@10 falls to 0.088 at epoch 100, from 0.107 at epoch 5. The weight-decay form reaches 0.108.
  Both were measured on the leave-one-out split of ML-100K with seed 0.
* Batch size. Seed 003 does not give it. NCF's grid is {128, 256, 512, 1024}; the default here is
  4096, so that 100 epochs on ML-100K take about 30 s on a loaded two-core machine. With 1024 they
  take about 67 s and reach HR@10 0.119.
* Initialisation. Embeddings start from N(0, 0.01^2), as in NCF §4.1. ``h`` is Glorot-uniform and
  ``b = 0``.

``user_embeddings()`` returns ``p_u``. ``finetune`` (RVD) keeps the weight decay, so with
``reg > 0`` it also shrinks the parameters of users outside the fine-tuning set a little.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import check
from . import _kernels
from ._neural import NeuralVictim, normal_, xavier_uniform_
from .base import VICTIMS


@dataclass(frozen=True)
class GMFConfig:
    """Hyper-parameters of :class:`GMF` (defaults: seed 003 Table 4, MovieLens; NCF §4.1)."""

    d: int = 64
    epochs: int = 100
    batch_size: int = 4096
    lr: float = 1e-2
    reg: float = 1e-5
    n_neg: int = 4
    init_std: float = 0.01
    seed: int = 0
    device: str = "cpu"
    #: explicit ratings >= threshold become interactions; None: every rating (seed 003 App. A.5)
    threshold: float | None = None

    def __post_init__(self) -> None:
        check(self.d >= 1, f"gmf: d={self.d} must be at least 1")
        check(self.epochs >= 0, f"gmf: epochs={self.epochs} must be >= 0")
        check(self.batch_size >= 1, f"gmf: batch_size={self.batch_size} must be at least 1")
        check(self.lr > 0, f"gmf: lr={self.lr} must be positive")
        check(self.reg >= 0, f"gmf: reg={self.reg} must be >= 0")
        check(self.n_neg >= 1, f"gmf: n_neg={self.n_neg} must be at least 1")
        check(self.init_std > 0, f"gmf: init_std={self.init_std} must be positive")
        check(self.device in ("cpu", "cuda"), f"gmf: device={self.device!r} must be 'cpu' or 'cuda'")


class _GMFModule(torch.nn.Module):
    def __init__(self, n_users: int, n_items: int, d: int, std: float, gen: torch.Generator) -> None:
        super().__init__()
        self.P = torch.nn.Parameter(normal_(torch.empty(n_users, d), std, gen))
        self.Q = torch.nn.Parameter(normal_(torch.empty(n_items, d), std, gen))
        self.h = torch.nn.Parameter(xavier_uniform_(torch.empty(1, d), gen)[0].clone())
        self.b = torch.nn.Parameter(torch.zeros(()))


@VICTIMS.register(
    "gmf",
    paper="He et al., WWW 2017 (NCF), §3.2 eq. (9) with the log loss eq. (7); settings of seed 003 Table 4",
    summary="generalized matrix factorization on implicit feedback, BCE with sampled negatives, Adam",
)
class GMF(NeuralVictim):
    """NCF's GMF. Learned: ``module_.P`` (users x d), ``module_.Q`` (items x d), ``h``, ``b``."""

    Config = GMFConfig
    loss_kind = "bce"
    reg_form = "all"
    single_thread = True

    def _build(self, n_users, n_items, gen):
        return _GMFModule(n_users, n_items, self.config.d, self.config.init_std, gen)

    def _pair_logits(self, u, items):
        m = self.module_
        pu = m.P.index_select(0, u)
        qi = m.Q.index_select(0, items.reshape(-1)).view(*items.shape, -1)
        logits = (pu.unsqueeze(1) * qi) @ m.h + m.b
        return logits, [pu, qi]

    @torch.no_grad()
    def _train_step(self, u, items, y, opt):
        """One BCE step (eq. (7)) with the gradient written out (no autograd graph; the tests
        compare it with autograd on ``_pair_logits``). ``logit = (p_u * q_i) . h + b``,
        ``dL/dlogit = (sigmoid(logit) - y) / N``; the weight decay is Adam's. On the CPU the
        gradient comes from one compiled loop over the instances (``_kernels.gmf_bce_step``: 0.5 ms
        against 2.8 ms a step for the torch ops of :meth:`_train_step_torch`, which stay the GPU path)."""
        m = self.module_
        step = _kernels.gmf_bce_step() if m.P.device.type == "cpu" else None
        if step is None:
            return self._train_step_torch(u, items, y, opt)
        grads = self._grad_buffers()
        loss, gb = step(
            m.P.detach().numpy(), m.Q.detach().numpy(), m.h.detach().numpy(), float(m.b),
            u.numpy(), items.reshape(-1).numpy(), y.reshape(-1).numpy(),
            *(g.numpy() for g in grads),
        )  # fmt: skip
        m.P.grad, m.Q.grad, m.h.grad = grads
        m.b.grad = torch.tensor(gb, dtype=m.b.dtype)
        opt.step()
        return torch.tensor(loss)

    def _grad_buffers(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        m = self.module_
        bufs = getattr(self, "_grads", None)
        if bufs is None or bufs[0].shape != m.P.shape or bufs[1].shape != m.Q.shape:
            bufs = self._grads = (torch.empty_like(m.P), torch.empty_like(m.Q), torch.empty_like(m.h))
        return bufs

    @torch.no_grad()
    def _train_step_torch(self, u, items, y, opt):
        """:meth:`_train_step` as torch ops (any device)."""
        m = self.module_
        flat = items.reshape(-1)
        pu = m.P.index_select(0, u)
        qi = m.Q.index_select(0, flat)
        pq = pu * qi
        logit = pq @ m.h + m.b
        yy = y.reshape(-1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, yy)
        g = (torch.sigmoid(logit) - yy) * (1.0 / u.shape[0])
        gh = g.unsqueeze(1) * m.h
        m.P.grad = torch.zeros_like(m.P).index_add_(0, u, gh * qi)
        m.Q.grad = torch.zeros_like(m.Q).index_add_(0, flat, gh * pu)
        m.h.grad = pq.T @ g
        m.b.grad = g.sum()
        opt.step()
        return loss

    def _score_block(self, users):
        m = self.module_
        return (m.P.index_select(0, users) * m.h) @ m.Q.T + m.b

    def _user_embeddings(self):
        return self.module_.P
