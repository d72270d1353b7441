"""AUSH: fake profiles from real templates plus GAN-generated ratings (``aush``).

Lin, Chen, Li, Zhang, Liu, Pan, Yang, "Attacking Recommender Systems with Augmented User Profiles",
CIKM 2020 (the attack of seed 004 App. B); implemented after the authors' TF1 code
(``gan_attack/trainer.py``, ``models.py``) as REFERENCES.md §4.1-4.2 summarises it. A fake user is

- a **template**: a real (normal) user having at least ``n_filler - n_selected`` rated items outside
  (selected items ∪ targets), sampled with the ``rng`` (without repetition while the pool lasts, then
  again from a fresh permutation); its **fillers** are ``n_filler - n_selected`` of those rated items,
  drawn uniformly, with the template's own ratings copied (the code's ``filler_method`` 0);
- the **selected items**, rated by a generator G;
- every **target** at r_max.

G: an MLP whose input is the template's rating vector masked to its fillers, hidden layers
``g_hidden`` (default 400 -> 133 -> 44, sigmoid), ``n_selected`` outputs, ``sigmoid x r_max``.
D: an MLP with ``d_hidden`` (default 3 x 150, sigmoid) and a logit output; its input is a rating
vector restricted to the filler + selected dimensions (every other column, the targets included,
is zero). Losses (weights 1, as the code's [1, 1, 1, 1]):

- D: binary cross-entropy, real = the template's real vector on its filler + selected dims (its own
  selected ratings, 0 where unrated), fake = the fillers with G's selected ratings; plus
  ``d_l2`` (1e-5) x L2 of D's weight matrices;
- G: the non-saturating GAN loss ``-log D(fake)`` + the shilling loss ``mean((G_out - r_max)^2)`` +
  the reconstruction loss ``sum_selected (G_out - real)^2 x mask`` (mean over the batch), mask = the
  selected items the template rated plus each unrated one kept with probability ``zr_ratio`` (0.5,
  "zero reconstruction": those are pulled towards 0); plus ``g_l2`` (1e-4) x L2 of G's weights.

Training (the code's): ``epochs`` = 150; each epoch one pass of D over the template pool (batch
``d_batch`` = 64, Adam with learning rate 1e-4) then one pass of G (batch ``g_batch`` = 256, Adam
1e-2). The pool is every eligible template user; each epoch draws fresh fillers for each of them.

Departures and choices, each stated:

- **Selected items**: the code searches combinations of ``n_selected`` items among the 20 most
  popular for one rated (>= a threshold) by >= 30 users who did not rate the target (those users are
  its "target users"). We take the ``n_selected`` (default 3) most rated non-target items among the
  normal users (ties: lower index), as the bandwagon attack ranks popularity. No target users are
  defined (the pipeline measures over all normal users).
- **Budget**: a fake user rates targets + selected + fillers, and its non-target count must stay
  within ``n_filler``, so it gets ``n_filler - n_selected`` template fillers (the code has
  ``filler_num`` fillers *and* the selected items). ``n_selected`` is cut to ``n_filler`` when the
  budget is smaller.
- **Ratings on the grid**: the code writes G's continuous outputs in (0, r_max) as floats. Our
  profiles must lie on the view's scale and step, so the selected ratings are clipped into the scale
  and rounded to its grid when the profile is assembled.
- **G's widths**: the code's width-halving loop yields |I| -> 133 -> 44 -> 14 -> 4 -> 1 -> 3 (a width-1
  bottleneck before the output, a quirk of its stopping rule); we use 400 -> 133 -> 44 (``g_hidden``).
- **Templates**: the code fixes the final templates and filler indicators beforehand
  (``*_attackSetting.npy``) to share them with its baselines; we draw them from the ``rng``. If no
  user has enough such items, the filler count drops to the largest count any user has (and the
  templates are the users having it).
- **L2**: ``lambda x 1/2 sum w^2`` over weight matrices (TF's ``l2_loss`` convention; biases not
  regularised), added to the loss.
- **Several targets**: each fake user rates all of them at r_max (the code promotes one per run).

Recorded after ``generate``: ``selected_`` (the selected items), ``templates_`` (the template user
of each fake row), ``fillers_`` (n_fake x n_fillers items), ``pool_size_`` (the eligible template
users), ``history_`` (per-epoch mean losses: ``d``, ``g``, ``g_gan``, ``g_shill``, ``g_recon``) and
``train_seconds_``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from ..config import check
from ..victims._neural import training_threads
from ..victims._optim import Adam
from .base import ATTACKS, Attack, assemble
from .bandwagon import popular_items


@dataclass(frozen=True)
class AUSHConfig:
    n_selected: int = 3
    epochs: int = 150
    g_hidden: tuple[int, ...] = (400, 133, 44)
    d_hidden: tuple[int, ...] = (150, 150, 150)
    d_batch: int = 64
    g_batch: int = 256
    d_lr: float = 1e-4
    g_lr: float = 1e-2
    d_l2: float = 1e-5
    g_l2: float = 1e-4
    zr_ratio: float = 0.5

    def __post_init__(self) -> None:
        object.__setattr__(self, "g_hidden", tuple(int(x) for x in self.g_hidden))
        object.__setattr__(self, "d_hidden", tuple(int(x) for x in self.d_hidden))
        check(self.n_selected >= 0, f"aush: n_selected={self.n_selected} must be >= 0")
        check(self.epochs >= 0, f"aush: epochs={self.epochs} must be >= 0")
        check(all(h >= 1 for h in self.g_hidden + self.d_hidden), "aush: hidden widths must be >= 1")
        check(self.d_batch >= 1 and self.g_batch >= 1, "aush: batch sizes must be >= 1")
        for name in ("d_lr", "g_lr", "d_l2", "g_l2"):
            v = getattr(self, name)
            check(np.isfinite(v) and v >= 0, f"aush: {name}={v} must be a finite number >= 0")
        check(0 <= self.zr_ratio <= 1, f"aush: zr_ratio={self.zr_ratio} must be in [0, 1]")


class _MLP(torch.nn.Module):
    """Sigmoid hidden layers, linear output; Glorot-uniform weights from ``gen``, zero biases."""

    def __init__(self, widths: list[int], gen: torch.Generator) -> None:
        super().__init__()
        self.W = torch.nn.ParameterList()
        self.B = torch.nn.ParameterList()
        for i, o in zip(widths[:-1], widths[1:]):
            bound = float(np.sqrt(6.0 / (i + o)))
            self.W.append(torch.nn.Parameter((torch.rand(o, i, generator=gen) * 2 - 1) * bound))
            self.B.append(torch.nn.Parameter(torch.zeros(o)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.W)
        for k, (W, B) in enumerate(zip(self.W, self.B)):
            x = x @ W.T + B
            if k < n - 1:
                x = torch.sigmoid(x)
        return x

    def l2(self) -> torch.Tensor:
        return sum(0.5 * (W * W).sum() for W in self.W)


def _draw_fillers(R: np.ndarray, allowed: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` distinct rated, allowed items per row of dense ``R``, uniformly (random keys)."""
    if n == 0:
        return np.zeros((R.shape[0], 0), dtype=np.int64)
    keys = rng.random(R.shape)
    keys[(R == 0) | ~allowed[None, :]] = -1.0
    return np.argpartition(-keys, n - 1, axis=1)[:, :n].astype(np.int64)


@ATTACKS.register(
    "aush",
    paper="Lin et al., Attacking Recommender Systems with Augmented User Profiles, CIKM 2020 (seed 004 App. B; "
          "authors' TF1 code, REFERENCES.md §4.2)",
    summary="real-user templates with their own filler ratings + GAN-generated ratings of popular selected items, targets at r_max",
)
class AUSHAttack(Attack):
    Config = AUSHConfig

    def _generate(self, view, targets, n_fake, n_filler, rng):
        c = self.config
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        n_items = view.n_items
        r_max = float(view.r_max)
        n_sel = min(c.n_selected, n_filler, n_items - len(targets))
        selected = np.sort(popular_items(view, targets, n_sel)) if n_sel else np.zeros(0, np.int64)
        allowed = np.ones(n_items, dtype=bool)
        allowed[targets] = False
        allowed[selected] = False

        m = sp.csr_matrix(view.matrix[: view.n_normal], dtype=np.float32)
        m.eliminate_zeros()
        outside = np.asarray(m[:, np.flatnonzero(allowed)].getnnz(axis=1)).ravel() if allowed.any() else np.zeros(m.shape[0], np.int64)
        n_fill = min(n_filler - n_sel, int(outside.max()) if outside.size else 0)
        pool = np.flatnonzero(outside >= n_fill)
        self.selected_ = selected
        self.pool_size_ = int(pool.size)
        if pool.size == 0:  # no normal users at all: targets only
            self.templates_ = np.zeros(n_fake, np.int64)
            self.fillers_ = np.zeros((n_fake, 0), np.int64)
            self.history_, self.train_seconds_ = {k: [] for k in ("d", "g", "g_gan", "g_shill", "g_recon")}, 0.0
            return assemble(view, np.zeros((n_fake, 0), np.int64), np.zeros((n_fake, 0)), targets)
        R = m[pool].toarray()  # the template pool, dense (n_pool x n_items)

        t0 = time.perf_counter()
        with training_threads(True):
            G, history = self._train(R, selected, allowed, n_fill, r_max, rng, gen)
        self.train_seconds_ = time.perf_counter() - t0
        self.history_ = history

        # the fake users: templates without repetition while the pool lasts
        reps = -(-n_fake // pool.size)
        order = np.concatenate([rng.permutation(pool.size) for _ in range(reps)])[:n_fake]
        T = R[order]
        fill = _draw_fillers(T, allowed, n_fill, rng)
        fill_r = np.take_along_axis(T, fill, axis=1)
        if n_sel:
            x = np.zeros_like(T)
            np.put_along_axis(x, fill, fill_r, axis=1)
            with torch.no_grad(), training_threads(True):
                sel_r = (torch.sigmoid(G(torch.from_numpy(x))) * r_max).numpy().astype(np.float64)
        else:
            sel_r = np.zeros((n_fake, 0))
        self.templates_ = pool[order]
        self.fillers_ = fill
        items = np.concatenate([fill, np.tile(selected, (n_fake, 1))], axis=1)
        ratings = np.concatenate([fill_r.astype(np.float64), sel_r], axis=1)
        return assemble(view, items, ratings, targets)

    def _train(self, R, selected, allowed, n_fill, r_max, rng, gen):
        c = self.config
        n_pool, n_items = R.shape
        n_sel = len(selected)
        hist = {k: [] for k in ("d", "g", "g_gan", "g_shill", "g_recon")}
        G = _MLP([n_items, *c.g_hidden, max(n_sel, 1)], gen)
        if n_sel == 0:
            return G, hist
        D = _MLP([n_items, *c.d_hidden, 1], gen)
        opt_d = Adam(D.parameters(), lr=c.d_lr)
        opt_g = Adam(G.parameters(), lr=c.g_lr)
        Rt = torch.from_numpy(R)
        sel_t = torch.from_numpy(selected)
        real_sel = Rt[:, sel_t]  # the templates' own selected ratings (0 = unrated)
        bce = torch.nn.functional.binary_cross_entropy_with_logits

        def profiles(idx, fill_mask):
            """(input of G = template on its fillers, real D input) for the rows ``idx``."""
            x = Rt[idx] * fill_mask[idx]
            real = x.clone()
            real[:, sel_t] = real_sel[idx]
            return x, real

        def fake_of(x, g_out):
            fake = x.clone()
            fake[:, sel_t] = g_out
            return fake

        for _ in range(c.epochs):
            fill = _draw_fillers(R, allowed, n_fill, rng)
            fill_mask = torch.zeros(n_pool, n_items)
            fill_mask.scatter_(1, torch.from_numpy(fill), 1.0)
            # D: one pass over the pool
            d_losses = []
            perm = torch.from_numpy(rng.permutation(n_pool))
            for s in range(0, n_pool, c.d_batch):
                idx = perm[s: s + c.d_batch]
                x, real = profiles(idx, fill_mask)
                with torch.no_grad():
                    g_out = torch.sigmoid(G(x)) * r_max
                lr_, lf_ = D(real), D(fake_of(x, g_out))
                loss = bce(lr_, torch.ones_like(lr_)) + bce(lf_, torch.zeros_like(lf_)) + c.d_l2 * D.l2()
                opt_d.zero_grad()
                loss.backward()
                opt_d.step()
                d_losses.append(loss.item())
            # G: one pass over the pool
            parts = []
            perm = torch.from_numpy(rng.permutation(n_pool))
            for s in range(0, n_pool, c.g_batch):
                idx = perm[s: s + c.g_batch]
                x, _ = profiles(idx, fill_mask)
                g_out = torch.sigmoid(G(x)) * r_max
                lf_ = D(fake_of(x, g_out))
                gan = bce(lf_, torch.ones_like(lf_))  # non-saturating: -log D(fake)
                shill = ((g_out - r_max) ** 2).mean()
                rs = real_sel[idx]
                keep = (rs > 0) | (torch.rand(rs.shape, generator=gen) < c.zr_ratio)
                recon = (((g_out - rs) ** 2) * keep).sum(dim=1).mean()
                loss = gan + shill + recon + c.g_l2 * G.l2()
                opt_g.zero_grad()
                loss.backward()
                opt_g.step()
                parts.append((loss.item(), gan.item(), shill.item(), recon.item()))
            hist["d"].append(float(np.mean(d_losses)))
            for k, v in zip(("g", "g_gan", "g_shill", "g_recon"), np.mean(parts, axis=0)):
                hist[k].append(float(v))
        return G, hist
