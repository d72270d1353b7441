"""RevAdv (Tang, Wen, Wang, "Revisiting Adversarially Learned Injection Attacks in Recommender
Systems", NeurIPS 2020; seed 003's state-of-the-art baseline; code graytowne/revisit_adv_rec,
REFERENCES.md §3): the fake users' click matrix learned by bi-level optimisation through a WRMF
surrogate whose last training steps are unrolled.

Algorithm (the code's default configuration ``attack_gen_args_wmf_sgd``, REFERENCES.md §3.2-§3.3):

* Fake block ``X`` (n_fake x items), initialised with the rows of normal users with at most
  ``init_max_clicks`` (100) clicks, then projected (below).
* ``adv_epochs`` (30) outer epochs; each trains a fresh surrogate (``_unrolled.UnrolledWRMF``: dense
  WRMF, d = 128, w+ = 20, Adam lr 1e-2, weight decay 1e-5, init N(0, 0.1^2), full batch; the same
  seed every epoch, as the code re-seeds) on ``[view; X]`` for ``epochs`` (50) steps, of which the
  last ``unroll`` (10) are differentiated with respect to ``X``.
* Outer loss = the multi-class cross-entropy of the code (``mult_ce_loss``): for each normal user
  ``u``, ``-(1/|T|) sum_{t in T} log softmax(P_u Q^T)_t`` (softmax over all items, training items
  not masked), summed over the normal users.
* Gradient with respect to ``X`` through the unrolled steps; zero on the target columns; each row
  normalised to unit L2 norm; one SGD step with momentum (``adv_lr`` 1.0, ``adv_momentum`` 0.95,
  torch's SGD: ``b = mu b + g``, ``X -= lr b``); then ``X`` is *replaced* by its projection (only
  the momentum buffer carries real values forward, as in the code).
* The surrogate's TargetHR@``hr_k`` (50) of each evaluated ``X`` (a normal user is a hit when any
  target is among its ``hr_k`` best items it has not clicked; the surrogate trained on that same
  ``X``) selects the returned block; the last projected iterate is never evaluated (as the code).

Departures (stated):

* **Projection with a budget.** The code keeps every entry above ``proj_threshold`` (0.05) and
  has no click budget. Here each fake row keeps its ``n_filler`` largest non-target entries that
  are above ``proj_threshold`` (so at most ``n_filler`` proxies), the project's budget and what
  seed 003's code does for RAPU-G (REFERENCES.md §2.6 step 6).
* **Targets always clicked.** The default code configuration has ``click_targets`` False (fake
  users need not click the targets); every fake profile here clicks every target, as in the rest of
  the project and seed 003's use of the attack; the gradient on target columns is zeroed as the code
  does when ``click_targets`` is set.
* **Initial rows** (``init``): ``"random"`` (default) draws the normal users with at most
  ``init_max_clicks`` clicks at random (the code computes a shuffle of them but then takes the
  first ``n_fake`` in id order, a pitfall); ``"first"`` reproduces the code's as-run behaviour.
* HR population: all normal users of the view (the code: users with a non-empty test set; the
  attacker here has no test split).
* Surrogate loss summed over all users and items, as the code; mask weights (``w = 20`` where
  ``x > 0``, no gradient through the weight; ``_unrolled``).
* On explicit data (RevAdv is click-only): targets get ``r_max`` and proxies N(item mean, item std)
  rounded and clipped, as the ``popular`` attack.

Cost: ``adv_epochs x epochs`` full-batch WRMF steps, ``unroll`` of them with a backward pass.
``history_``: per outer epoch, the outer loss and the surrogate's TargetHR.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from ..config import check
from ..victims._neural import training_threads
from ._unrolled import UnrolledWRMF, WRMFSettings, dense_binary
from .base import ATTACKS, Attack, assemble


@dataclass(frozen=True)
class RevAdvConfig:
    adv_epochs: int = 30
    adv_lr: float = 1.0
    adv_momentum: float = 0.95
    epochs: int = 50
    unroll: int = 10
    d: int = 128
    lr: float = 1e-2
    weight_decay: float = 1e-5
    pos_weight: float = 20.0
    init_std: float = 0.1
    proj_threshold: float = 0.05
    init: Literal["random", "first"] = "random"
    init_max_clicks: int = 100
    hr_k: int = 50

    def __post_init__(self) -> None:
        for name in ("adv_epochs", "epochs", "d", "init_max_clicks", "hr_k"):
            v = getattr(self, name)
            check(isinstance(v, int) and v >= 1, f"revadv: {name}={v} must be an integer >= 1")
        check(isinstance(self.unroll, int) and 1 <= self.unroll <= self.epochs,
              f"revadv: unroll={self.unroll} must be an integer in [1, epochs={self.epochs}]")
        check(self.adv_lr > 0 and 0 <= self.adv_momentum < 1, "revadv: adv_lr must be > 0 and adv_momentum in [0, 1)")
        check(self.init in ("random", "first"), f"revadv: init={self.init!r}: use 'random' or 'first'")
        self.surrogate()

    def surrogate(self) -> WRMFSettings:
        return WRMFSettings(d=self.d, lr=self.lr, weight_decay=self.weight_decay, pos_weight=self.pos_weight,
                            init_std=self.init_std)


def project(X: torch.Tensor, targets: np.ndarray, n_filler: int, threshold: float) -> torch.Tensor:
    """Binary rows: the ``n_filler`` largest non-target entries above ``threshold`` -> 1, targets 1."""
    Z = X.detach().clone()
    Z[:, targets] = -np.inf
    out = torch.zeros_like(Z)
    k = min(n_filler, Z.shape[1] - len(targets))
    if k > 0:
        val, idx = torch.topk(Z, k, dim=1)
        out.scatter_(1, idx, (val > threshold).to(out.dtype))
    out[:, targets] = 1.0
    return out


def target_hit_ratio(scores: torch.Tensor, seen: torch.Tensor, targets: np.ndarray, k: int) -> float:
    """Share of rows with any target among the ``k`` best unseen items."""
    s = scores.masked_fill(seen > 0, -np.inf)
    top = torch.topk(s, min(k, s.shape[1]), dim=1).indices
    hit = torch.isin(top, torch.as_tensor(targets)).any(dim=1)
    return float(hit.float().mean()) if len(hit) else 0.0


def init_rows(view, n_fake: int, init: str, max_clicks: int, rng: np.random.Generator) -> torch.Tensor:
    """Initial fake rows (dense 0/1): rows of real users with at most ``max_clicks`` clicks, drawn at
    random (``init="random"``) or the first ``n_fake`` of them in id order (``"first"``, the code's)."""
    B = view.binary()[: view.n_normal]
    light = np.flatnonzero(np.diff(B.indptr) <= max_clicks)
    if len(light) == 0:
        light = np.arange(view.n_normal)
    if init == "first":
        rows = light[np.arange(n_fake) % len(light)]
    else:
        rows = rng.choice(light, n_fake, replace=n_fake > len(light))
    return dense_binary(B[rows])


@ATTACKS.register(
    "revadv",
    paper="Tang, Wen, Wang, NeurIPS 2020 (seed 003 baseline; REFERENCES.md §3)",
    summary="fake clicks learned by gradient steps through an unrolled WRMF surrogate",
)
class RevAdvAttack(Attack):
    Config = RevAdvConfig

    def memory_bytes(self, n_users: int, n_items: int) -> int:
        """The dense unrolled surrogate: data, weights, and about three users x items float32
        tensors kept for the backward pass per unrolled step, plus the factors and Adam moments of
        each unrolled step."""
        c = self.config
        return 4 * ((4 + 3 * c.unroll) * n_users * n_items + 8 * (c.unroll + 1) * (n_users + n_items) * c.d)

    def _init_rows(self, view, n_fake: int, rng: np.random.Generator) -> torch.Tensor:
        return init_rows(view, n_fake, self.config.init, self.config.init_max_clicks, rng)

    def _generate(self, view, targets, n_fake, n_filler, rng):
        c = self.config
        t0 = time.perf_counter()
        seed = int(rng.integers(2**31))
        self.history_: list[tuple[float, float]] = []
        if n_fake == 0:
            return sp.csr_matrix((0, view.n_items), dtype=np.float32)
        R = dense_binary(view.binary())
        n_normal = view.n_normal
        seen = R[:n_normal]
        X = project(self._init_rows(view, n_fake, rng), targets, n_filler, c.proj_threshold)
        buf = torch.zeros_like(X)
        model = UnrolledWRMF(c.surrogate())
        best_hr, best = -1.0, X
        tt = torch.as_tensor(targets)
        with training_threads(True):
            for _ in range(c.adv_epochs):
                Xv = X.clone().requires_grad_(True)
                P, Q = model.train(R, Xv, c.epochs, c.unroll, torch.Generator().manual_seed(seed))
                scores = P[:n_normal] @ Q.T
                loss = -torch.log_softmax(scores, dim=1)[:, tt].mean(dim=1).sum()
                hr = target_hit_ratio(scores.detach(), seen, targets, c.hr_k)
                self.history_.append((float(loss.detach()), hr))
                if hr > best_hr:
                    best_hr, best = hr, X
                (g,) = torch.autograd.grad(loss, Xv)
                g[:, tt] = 0.0
                g = g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)
                buf = c.adv_momentum * buf + g
                X = project(X - c.adv_lr * buf, targets, n_filler, c.proj_threshold)
        self.best_hr_ = best_hr
        Xb = best.numpy().copy()
        Xb[:, targets] = 0.0
        items = [np.flatnonzero(r) for r in Xb]
        rows = np.repeat(np.arange(n_fake), [len(i) for i in items])
        cols = np.concatenate(items).astype(np.int64)
        mean, std = view.item_stats()
        ratings = rng.normal(mean[cols], std[cols])
        self.seconds_ = time.perf_counter() - t0
        return _assemble_ragged(view, rows, cols, ratings, targets, n_fake)


def _assemble_ragged(view, rows, cols, ratings, targets, n_fake) -> sp.csr_matrix:
    """``assemble`` for rows of different lengths: fillers (rows, cols, ratings) plus every target."""
    m = assemble(view, np.zeros((n_fake, 0), dtype=np.int64), np.zeros((n_fake, 0)), targets)
    vals = np.ones(len(cols)) if view.implicit else view.to_scale(ratings)
    f = sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(n_fake, view.n_items))
    return (m + f).tocsr()
