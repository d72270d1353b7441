"""APR: adversarial training of the embeddings (He, He, Du, Chua, "Adversarial Personalized
Ranking for Recommendation", SIGIR 2018), a training defense of seed 004 (RVD) for ``mf-wu``.

He et al. eq. (6)-(8) (REFERENCES.md §5.3), with the model's own loss ``L`` in place of BPR as
seed 004 App. C applies APR to rating MF::

    L_APR(theta) = L(theta) + reg_adv * L(theta + Delta_adv),
    Delta_adv    = argmax_{||Delta|| <= eps} L(theta_hat + Delta)  ~  eps * Gamma / ||Gamma||,
    Gamma        = dL(theta_hat + Delta) / dDelta  at Delta = 0

where ``Delta`` perturbs the user and item embeddings (``P``, ``Q``). Each mini-batch: ``Gamma``
is the gradient of the batch's clean loss w.r.t. ``P`` and ``Q`` (rows outside the batch are 0,
a user or item seen twice in the batch sums its contributions), ``Delta_adv`` is computed and held
fixed (no gradient flows through it: the "train Delta to increase the loss" half of seed 004's
minimax game, in closed form), and one optimiser step is taken on ``L_APR``.

Following the official code (hexiangnan/adversarial_personalized_ranking, ``AMF.py``) rather than
the paper's formula, ``Gamma`` is L2-normalised **row-wise**, per user / per item embedding
(``tf.nn.l2_normalize(grad, 1)``: ``g / sqrt(max(||g||^2, 1e-12))``), not over the whole parameter
vector; ``Gamma`` is the gradient of the data term only (the code's ``self.loss``, without the L2
term, which here is Wu's negligible ``1e-12``); the adversarial term carries no L2.

Training (``mf-wu``, Wu et al.'s MF: ``L`` = Wu's mean squared error on ``r / r_max`` plus his L2):
plain MF pre-training for ``adv_epoch`` epochs (default: the wrapped model's ``epochs``, i.e. its
normal fit, 25), then ``adv_epochs`` epochs of APR (default 25) with a *fresh* Adagrad (the official
code restores only the embeddings of the pre-trained MF) continuing the same shuffle generator.
Wu's ``d``, ``lr``, ``reg``, ``batch_size``, ``seed`` apply to both phases. The official README runs
1000 + 1000 epochs of BPR-MF / APR (Adagrad lr 0.05, batch 512); 25 + 25 is our choice, matching the
wrapped model's epoch count. ``eps = 0.5``, ``reg_adv = 1`` are the official defaults, set there for
BPR-MF and kept here untuned (on ML-100K the trained mf-wu's median embedding norms are 1.02 for
users and 0.77 for items, so ``eps = 0.5`` is a large perturbation). With ``adv_epochs = 0`` the fit
is the plain ``mf-wu`` fit.

``finetune(data, users, steps)`` (RVD on top: ``rvd+apr``) runs ``steps`` APR epochs on the
ratings of ``users`` with a fresh Adagrad shuffled from ``(seed, users)``; only those users' and
their items' factors change. ``snapshot`` / ``restore`` / ``user_embeddings`` are the wrapped
model's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..config import MAX_ITERATIONS, check
from ..interactions import Interactions
from ..victims._neural import training_threads
from ..victims.mf_wu import apply_row_gradients
from .base import DEFENSES
from ._mftrain import MFTrainingDefense


@dataclass(frozen=True)
class APRConfig:
    """Hyper-parameters of :class:`APR` (eps, reg_adv: the official defaults; epochs: ours)."""

    eps: float = 0.5
    reg_adv: float = 1.0
    #: plain-MF pre-training epochs; unset: the wrapped model's ``epochs``
    adv_epoch: int | None = None
    #: APR epochs after pre-training
    adv_epochs: int = 25

    def __post_init__(self) -> None:
        check(self.eps >= 0, f"apr: eps={self.eps} must be non-negative")
        check(self.reg_adv >= 0, f"apr: reg_adv={self.reg_adv} must be non-negative")
        check(
            self.adv_epoch is None or 0 <= self.adv_epoch <= MAX_ITERATIONS,
            f"apr: adv_epoch={self.adv_epoch} must be in [0, {MAX_ITERATIONS}] (or unset: the model's epochs)",
        )
        check(0 <= self.adv_epochs <= MAX_ITERATIONS, f"apr: adv_epochs={self.adv_epochs} must be in [0, {MAX_ITERATIONS}]")


@DEFENSES.register(
    "apr",
    paper="He et al., SIGIR 2018 (APR, hexiangnan/adversarial_personalized_ranking); seed 004 App. C",
    summary="adversarial training: loss + reg_adv * loss at eps-perturbed embeddings (row-normalised gradient)",
)
class APR(MFTrainingDefense):
    """APR on ``mf-wu``. ``adv_epoch_``: the pre-training epochs used; ``apr_history_``: mean
    batch APR loss per APR epoch."""

    Config = APRConfig
    defends = ("mf-wu",)

    def _fit_wu(self, data: Interactions) -> None:
        mw = self.inner
        c = self.config
        P, Q, (u, i, r), gen = mw.init_factors(data)
        t = mw.targets(r)
        self.adv_epoch_ = mw.config.epochs if c.adv_epoch is None else c.adv_epoch
        with training_threads(True):
            opt = mw.optimizer([P, Q])
            for _ in range(self.adv_epoch_):
                mw.run_epoch(P, Q, u, i, t, opt, gen)
            opt = mw.optimizer([P, Q])  # fresh, as the official code's APR phase
            self.apr_history_ = [mw.run_epoch(P, Q, u, i, t, opt, gen, step=self._apr_step) for _ in range(c.adv_epochs)]
        mw.set_factors(data, P, Q)

    def _apr_step(self, P, Q, u, i, t, opt) -> torch.Tensor:
        """One Adagrad step on ``L(theta) + reg_adv L(theta + Delta_adv)`` for the batch, with
        ``Delta_adv`` held fixed and the gradient written out: for the adversarial term
        ``dL_adv/dp_u = sum of -2 e_adv (q_i + dq_i) / B`` with ``e_adv = t - (p_u + dp_u) . (q_i + dq_i)``
        (and likewise for ``q_i``), added to the clean term's gradient."""
        c = self.config
        reg = self.inner.config.reg
        pu, qi = P[u], Q[i]
        B, d = pu.shape
        err = t - (pu * qi).sum(1)
        coef = (-2.0 / B) * err[:, None]
        r = 2.0 * reg / (B * d)
        gp, gq = coef * qi + r * pu, coef * pu + r * qi
        loss = (err * err).mean() + reg * ((pu * pu).mean() + (qi * qi).mean())
        if c.reg_adv:
            dP, dQ = self._delta(P, Q, u, i, coef * qi, coef * pu)
            pa, qa = pu + dP, qi + dQ
            err_a = t - (pa * qa).sum(1)
            coef_a = (-2.0 * c.reg_adv / B) * err_a[:, None]
            gp, gq = gp + coef_a * qa, gq + coef_a * pa
            loss = loss + c.reg_adv * (err_a * err_a).mean()
        apply_row_gradients(P, Q, u, i, gp, gq, opt)
        return loss

    def perturbation(self, P, Q, u, i, t) -> tuple[torch.Tensor, torch.Tensor]:
        """``Delta_adv`` at the batch's rows ``(P[u], Q[i])``: ``eps`` times the row-normalised
        gradient of the batch's mean squared error w.r.t. ``P`` and ``Q``."""
        pu, qi = P[u], Q[i]
        coef = (-2.0 / u.shape[0]) * (t - (pu * qi).sum(1))[:, None]  # d mean(e^2) / d(p_u . q_i)
        return self._delta(P, Q, u, i, coef * qi, coef * pu)

    def _delta(self, P, Q, u, i, gpu, gqi) -> tuple[torch.Tensor, torch.Tensor]:
        """Row-normalise the per-entry gradients summed per user / item row, times ``eps``."""
        gP = torch.zeros_like(P).index_add_(0, u, gpu)[u]
        gQ = torch.zeros_like(Q).index_add_(0, i, gqi)[i]
        eps = self.config.eps
        dP = eps * gP * torch.rsqrt(torch.clamp((gP * gP).sum(1, keepdim=True), min=1e-12))
        dQ = eps * gQ * torch.rsqrt(torch.clamp((gQ * gQ).sum(1, keepdim=True), min=1e-12))
        return dP, dQ

    # ------------------------------------------------------------------ RVD support
    def finetune(self, data: Interactions, users: np.ndarray, steps: int) -> "APR":
        """``steps`` APR epochs on the ratings of ``users`` only, fresh Adagrad, shuffled from
        ``(seed, users)``; other users' and unrated items' factors stay."""
        users = self._check_finetune(data, users, steps)
        mw = self.inner
        P, Q = mw.factor_copies()
        u, i, r = mw.ratings(data, users)
        t = mw.targets(r)
        opt = mw.optimizer([P, Q])
        gen = mw.finetune_generator(users)
        with training_threads(True):
            self.finetune_history_ = [mw.run_epoch(P, Q, u, i, t, opt, gen, step=self._apr_step) for _ in range(steps)]
        mw.set_factors(mw.train_, P, Q)
        return self
