"""Leg-UP: GAN-generated fake profiles optimised through an unrolled surrogate WMF (``legup``).

Lin, Chen, Li, Pan, Ming, Liu, Yang, "Shilling Black-box Recommender Systems by Learning to Generate
Fake User Profiles", IEEE TNNLS 2022 (the successor of AUSH, the GAN attack of seed 004 App. B);
implemented after the authors' code, class ``AUSHplus`` of ``Leg-UP/models/attacker/aushplus.py``
with ``aushplus_helper.py`` (XMUDM/ShillingAttack), as REFERENCES.md §4.3 summarises it. Every
default below is the code's (its argparse defaults and hard-coded schedule).

**Templates.** ``n_fake`` normal users drawn uniformly *with* replacement (``np.random.choice`` in
``build_network``; no minimum profile length), each reduced to at most ``n_filler`` of its rated
non-target items, chosen uniformly. A fake user rates exactly its template's kept items (ratings
from G) and every target at r_max.

**Generator G** (``DiscretGenerator_AE_1``): the template row, L2-normalised, through
``Linear(|I|, g_hidden=125)`` ReLU ``Linear(125, |I|)`` tanh, scaled to a continuous value
``a = tanh(.) x h + c`` in ``(r_min - step, r_max)`` (the code's ``x 2.5 + 2.5``, i.e. (0, 5) on
1-5 stars). Weights ``N(0, 2 / (fan_in + fan_out))``, biases ``N(0, 0.001^2)`` (its
``init_weights``). **Discretisation** with learnable per-item boundaries over the view's L rating
levels ``v_0 < ... < v_{L-1}``: ``b_0`` (init ``v_0``) and ``b_k = b_{k-1} + relu(l_k) + 1e-4``
(lengths ``l_k`` init the level gaps, the code's 1), ``k = 1 .. L-2``; level ``c`` has probability
``prod_k H(s_ck (a - b_k))`` with ``s_ck = sign(c - k - 1/2)``, i.e. it is chosen when
``b_{c-1} < a < b_c``. ``H`` is "HeaviTanh": the hard Heaviside step forward (0 at x <= 0), the
derivative of ``tanh(x)`` backward (straight through). The output is ``sum_c v_c P_c`` (a level,
exactly) masked to the template's items.

**Discriminator D** (``Discriminator``): ``|I| -> 512 -> 128 -> 1``, ReLU, a sigmoid output
(BCE on logits here, the same loss); torch's default ``nn.Linear`` initialisation. D's real rows are
normal users' full rating rows, its fake rows G's output (no target columns: the code sets the
target to 5 only when writing the final profiles).

**Surrogate and attack loss** (``get_sur_predictions``, ``WMFTrainer.fit_adv``): a WMF
``r_hat = P Q^T`` (``s_dim`` = 64, entries ``N(0, 0.1^2)``, no biases) trained on
``[view rows; fake rows]`` by Adam (``s_lr`` 1e-2, coupled weight decay ``s_weight_decay`` 1e-5) on
shuffled mini-batches of ``s_batch`` = 64 rows, loss ``sum w (r - r_hat)^2`` with weight
``s_weight_pos`` = 1 on observed entries and ``s_weight_neg`` = 0 elsewhere (so it fits observed
ratings only, on the raw scale), ``s_epochs`` = 50 epochs of which the last ``unroll_steps`` = 1 are
unrolled differentiably w.r.t. the fake ratings (the code uses ``higher``; here each step is a
functional Adam step on the closed-form gradient ``dL/dP_b = 2 E Q``, ``dL/dQ = 2 E^T P_b``,
``E = w (P_b Q^T - R_b)``, so the step is an ordinary differentiable tensor expression; no new
dependency). Attack loss, per target ``t``: over the target users ``U_t`` = normal users who have not
rated ``t``, ``mean_u -log softmax(r_hat_u * m_u)_t / (1 + 0.1)`` with the mask
``m_uj = [r_hat_uj >= r_hat_ut]`` (items scored below the target get logit 0, as the code's
multiplicative mask; ``/ (1 + 0.1)`` is its ``instance_loss / (labels.sum + 0.1)``); several targets:
the mean over targets.

**Schedule** (``train``): pre-train G for ``pretrain_g_epochs`` = 15 epochs with the L-class
cross-entropy on normal users' observed ratings (logits = G's one-hot distribution, as coded; batches
of ``d_batch`` = 64 shuffled rows, the last partial batch dropped); pre-train D for
``pretrain_d_epochs`` = 5 epochs; then ``epochs`` = 3 rounds of: ``d_epochs`` = 5 D epochs,
``gan_steps`` = 1 G step with the GAN loss ``BCE(D(fake), 1)``, ``attack_steps`` = 50 G steps with
the attack loss. A D epoch: G's fake rows are computed once; each batch of 64 shuffled normal users
contributes its first ``n_fake`` rows as reals against all fake rows. G and D: Adam, lr 0.01.

Departures and choices, each stated:

- **Filler budget**: templates keep at most ``n_filler`` items (the pipeline's budget) where the code
  uses ``filler_num`` = 36 for every data set (its default, never overridden by ``run.sh``).
- **Targets excluded from templates**: a template's kept items are its rated *non-target* items (the
  code may keep a target that the template rated and let G rate it, then overwrites it with 5).
- **Targets in the surrogate** (``surrogate_targets``, default False = the code): the code trains
  its surrogate on G's output *without* the target (it sets the target to 5 only in
  ``generate_fakeMatrix``), so the attack loss optimises fillers of profiles that lack the target
  rating. ``surrogate_targets=True`` (our option) makes the surrogate's fake rows rate every target
  at r_max, i.e. the profiles as injected. Measured on ML-100K (28 fake users, 106 fillers, 5
  unpopular targets, seed 0, victim ``mf-wu``, HR@50 over the normal users; both with the
  persistent warm start described below): 0.981 with False, 0.972 with True (AUSH 0.986, random
  0.278 in the same setting), so the code's choice stays the default; the final defaults give
  0.980 there (``recpoison run --dataset ml-100k --victim mf-wu --attack legup --attack-size 0.03
  --filler 106 --targets 5 --target-strategy unpopular --k 50``; attack 117 s).
  With True and the from-scratch surrogate the attack loss *rose* over 15 attack steps on ML-100K
  (5.30 -> 6.78); with False it fell (7.657 -> 7.628).
- **Rating scale**: the code's 5 classes 1..5 and ``x 2.5 + 2.5`` are generalised to the view's grid
  (``r_min + k step``, e.g. FilmTrust's 1..8) and to ``a in (r_min - step, r_max)``, which is
  ``(0, r_max)``, i.e. ``tanh x r_max/2 + r_max/2``, whenever ``r_min = step`` (ML-100K 1-5,
  FilmTrust 1-8, the synthetic data). A view without a step uses its distinct observed ratings as
  the levels (at most 64). Implicit data is refused (the discretiser and the surrogate need rating
  values). Observed = stored non-zero (the code's ``> 0``).
- **Surrogate warm start** (``s_warm_epochs``, default 5): the code re-trains the surrogate from
  scratch at each of the 150 attack steps (its seed is reset to 1234 every time, so every step sees
  the same initialisation and batch order, and the loss is a deterministic function of the fake
  rows). ``s_warm_epochs = None`` does exactly that (one seed drawn from the ``rng``, re-used at every
  step). With ``s_warm_epochs = n`` each round's first attack step trains a base surrogate from
  scratch for ``s_epochs - unroll_steps - n`` epochs (44 by default) on the fake rows of that moment,
  and every attack step of the round continues a copy of that base (parameters, Adam state and
  batch-order stream) for ``n`` epochs on the current fake rows before the unrolled epoch(s): every
  step still sees ``s_epochs`` epochs in all, the same initialisation and batch order, but only the
  last ``n + unroll_steps`` see the current fake rows. (A persistent surrogate trained on by every
  step was tried first: its loss drifted upward with the ever longer training and was not
  comparable between steps.) Measured on ML-100K (943 x 1,682, 28 fake users, 90 fillers, 5
  unpopular targets, one thread, a 2-core machine shared with another job): the whole ``generate``
  takes 114 s with the default against 516 s from scratch; the final profiles rate the same items,
  88 % of their filler ratings are equal (mean absolute difference 0.25 stars); the attack loss over
  the last round ends at 7.649 (warm) against 7.624 (from scratch), from 7.657 at the first step; over
  one round of 15 steps it falls 7.6567 -> 7.6507 (warm) against 7.6567 -> 7.6277 (from scratch).
- ``s_batch = 0`` trains the surrogate full-batch (one Adam step per epoch), an option the code does
  not have.
- **Small data**: when there are fewer normal users than ``d_batch``, a G-pretraining / D epoch is one
  batch of all of them (the code's ``drop_last`` would give no batch at all).
- **What the attack steps do to the ratings** (an observation, not a departure): the attack loss's
  gradient w.r.t. the fake ratings is tiny (norm ~4e-4 on ML-100K) with a positive mean in the one
  case checked (to first order, lower ratings lower the loss), and Adam normalises it, so G's per-item output biases and
  boundaries keep moving by up to about ``g_lr`` a step; on ML-100K the 150 steps push most filler
  ratings to r_min (final fillers: about 90 % ones, mean 1.2 stars, against 2 % ones and mean 3.8
  after G's pre-training; real ratings: 6 % ones, mean 3.5). The code has the same optimiser and
  learning rate; whether its runs show the same drift was not checked.
- **Randomness**: one ``torch.Generator`` seeded from the ``rng`` for the networks' initialisation;
  templates, kept items and batch orders from the ``rng``; single-threaded training
  (``training_threads``), so a seed gives the same profiles run after run.

Recorded after ``generate``: ``templates_`` (the template user of each fake row), ``levels_`` (the
rating levels), ``boundaries_`` (learned, n_items x (L - 1)), ``target_users_`` (number per target),
``history_`` (``pretrain_g`` and ``pretrain_d`` per epoch; ``d``, ``g_gan`` and ``attack`` per
round: mean D loss over the round's D epochs, the GAN step's loss, the mean attack loss over the
round's attack steps; ``attack_steps``: every attack step's loss, measured before that step's update)
and ``train_seconds_`` (pre-training + rounds).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

from ..config import check
from ..errors import ConfigError
from ..victims._neural import training_threads
from ..victims._optim import Adam
from .base import ATTACKS, Attack

#: the code's ``epsilon`` added to every interval length
_MIN_GAP = 1e-4
#: most rating levels accepted from a view without a rating step
_MAX_LEVELS = 64


@dataclass(frozen=True)
class LegUPConfig:
    #: rounds of (D epochs, GAN steps, attack steps) (the code's ``--epoch``)
    epochs: int = 3
    pretrain_g_epochs: int = 15
    pretrain_d_epochs: int = 5
    d_epochs: int = 5
    gan_steps: int = 1
    attack_steps: int = 50
    g_hidden: int = 125
    d_hidden: tuple[int, ...] = (512, 128)
    #: batch of normal users for G pre-training and D (the code's ``batch_size_D``)
    d_batch: int = 64
    g_lr: float = 0.01
    d_lr: float = 0.01
    # the surrogate WMF
    s_dim: int = 64
    s_lr: float = 1e-2
    s_weight_decay: float = 1e-5
    #: surrogate mini-batch (rows); 0 = full batch
    s_batch: int = 64
    s_epochs: int = 50
    unroll_steps: int = 1
    s_weight_pos: float = 1.0
    s_weight_neg: float = 0.0
    #: None: re-train the surrogate from scratch at every attack step (the code); n: warm start
    s_warm_epochs: int | None = 5
    #: the surrogate's fake rows also rate the targets at r_max (the code's: False, they do not)
    surrogate_targets: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "d_hidden", tuple(int(x) for x in self.d_hidden))
        for name in ("epochs", "pretrain_g_epochs", "pretrain_d_epochs", "d_epochs", "gan_steps", "attack_steps"):
            v = getattr(self, name)
            check(0 <= v <= 100_000, f"legup: {name}={v} must be in [0, 100000]")
        check(self.g_hidden >= 1 and self.s_dim >= 1, "legup: g_hidden and s_dim must be >= 1")
        check(all(h >= 1 for h in self.d_hidden), "legup: d_hidden widths must be >= 1")
        check(self.d_batch >= 1, f"legup: d_batch={self.d_batch} must be >= 1")
        check(self.s_batch >= 0, f"legup: s_batch={self.s_batch} must be >= 0 (0 = full batch)")
        check(self.unroll_steps >= 1, f"legup: unroll_steps={self.unroll_steps} must be >= 1")
        check(self.s_epochs >= self.unroll_steps,
              f"legup: s_epochs={self.s_epochs} must be >= unroll_steps={self.unroll_steps}")
        check(self.s_warm_epochs is None or self.s_warm_epochs >= 0,
              f"legup: s_warm_epochs={self.s_warm_epochs} must be >= 0 or None (re-train from scratch)")
        for name in ("g_lr", "d_lr", "s_lr", "s_weight_decay", "s_weight_pos", "s_weight_neg"):
            v = getattr(self, name)
            check(np.isfinite(v) and v >= 0, f"legup: {name}={v} must be a finite number >= 0")


# ----------------------------------------------------------------------------------- generator G
class HeaviTanh(torch.autograd.Function):
    """Heaviside step forward (1 where x > 0, else 0); derivative of tanh(x) backward."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        return dy * (1 - torch.tanh(x) ** 2)


def rating_levels(view) -> np.ndarray:
    """The view's rating levels: its grid, or its distinct observed ratings when it has no step."""
    lo, hi = view.rating_scale
    if view.implicit or not hi > lo:
        raise ConfigError("legup: needs explicit ratings on a scale with r_min < r_max (it generates rating levels)")
    if view.rating_step:
        n = int(round((hi - lo) / view.rating_step))
        levels = lo + view.rating_step * np.arange(n + 1)
        return np.clip(levels, lo, hi)
    levels = np.unique(np.concatenate([view.matrix.data[view.matrix.data != 0], [lo, hi]]))
    if levels.size > _MAX_LEVELS:
        raise ConfigError(f"legup: the view has no rating step and {levels.size} distinct ratings (> {_MAX_LEVELS}); "
                          "its discretiser needs a rating grid")
    return levels.astype(np.float64)


class Generator(torch.nn.Module):
    """``DiscretGenerator_AE_1`` on the rating ``levels``: MLP auto-encoder + learnable discretiser."""

    def __init__(self, n_items: int, hidden: int, levels: np.ndarray, gen: torch.Generator) -> None:
        super().__init__()
        lv = np.asarray(levels, dtype=np.float64)
        L = len(lv)
        gap = float(lv[1] - lv[0])
        self.register_buffer("levels", torch.tensor(lv, dtype=torch.float32))
        self.centre = float((lv[0] - gap + lv[-1]) / 2)
        self.half = float((lv[-1] - lv[0] + gap) / 2)
        # sign s_ck = sign(c - k - 1/2), (L, L - 1)
        c, k = np.arange(L)[:, None], np.arange(L - 1)[None, :]
        self.register_buffer("sign", torch.tensor(np.where(c > k, 1.0, -1.0), dtype=torch.float32))

        def lin(i, o):
            W = torch.randn(o, i, generator=gen) * float(np.sqrt(2.0 / (i + o)))
            b = torch.randn(o, generator=gen) * 0.001
            return torch.nn.Parameter(W), torch.nn.Parameter(b)

        self.W1, self.b1 = lin(n_items, hidden)
        self.W2, self.b2 = lin(hidden, n_items)
        self.b0 = torch.nn.Parameter(torch.full((n_items,), float(lv[0])))
        gaps = np.diff(lv)[: L - 2]
        self.lengths = torch.nn.Parameter(torch.tensor(np.tile(gaps, (n_items, 1)), dtype=torch.float32))

    def boundaries(self) -> torch.Tensor:
        """(n_items, L - 1): ``b_0`` and ``b_k = b_{k-1} + relu(l_k) + 1e-4``."""
        inc = torch.relu(self.lengths) + _MIN_GAP
        return torch.cat([self.b0[:, None], self.b0[:, None] + torch.cumsum(inc, dim=1)], dim=1)

    def continuous(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.nn.functional.normalize(x, dim=1)
        h = torch.relu(h @ self.W1.T + self.b1)
        return torch.tanh(h @ self.W2.T + self.b2) * self.half + self.centre

    def distribution(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """One-hot level distribution (..., L) of continuous values ``a`` (...) with boundaries
        ``b`` (..., L - 1): the product over boundaries of HeaviTanh(s_ck (a - b_k))."""
        prob = torch.ones(*a.shape, self.sign.shape[0])
        for k in range(self.sign.shape[1]):
            prob = prob * HeaviTanh.apply(self.sign[:, k] * (a - b[..., k])[..., None])
        return prob

    def forward(self, x: torch.Tensor):
        """(distribution of the observed entries (nnz, L), their (rows, cols), dense output (n, I)
        = the levels on ``x``'s non-zero entries, 0 elsewhere)."""
        a = self.continuous(x)
        rows, cols = torch.nonzero(x, as_tuple=True)
        dist = self.distribution(a[rows, cols], self.boundaries()[cols])
        out = torch.zeros_like(x).index_put((rows, cols), dist @ self.levels)
        return dist, (rows, cols), out


class Discriminator(torch.nn.Module):
    """|I| -> d_hidden (ReLU) -> 1 logit; torch's default ``nn.Linear`` initialisation from ``gen``."""

    def __init__(self, widths: list[int], gen: torch.Generator) -> None:
        super().__init__()
        self.W = torch.nn.ParameterList()
        self.B = torch.nn.ParameterList()
        for i, o in zip(widths[:-1], widths[1:]):
            bound = 1.0 / float(np.sqrt(i))
            self.W.append(torch.nn.Parameter((torch.rand(o, i, generator=gen) * 2 - 1) * bound))
            self.B.append(torch.nn.Parameter((torch.rand(o, generator=gen) * 2 - 1) * bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = len(self.W)
        for k, (W, B) in enumerate(zip(self.W, self.B)):
            x = x @ W.T + B
            if k < n - 1:
                x = torch.relu(x)
        return x


# ----------------------------------------------------------------------------------- surrogate WMF
def wmf_grads(P, Q, X, W, idx):
    """Closed-form gradient of ``sum_{u in idx} sum_j W_uj (X_uj - P_u Q_j)^2`` w.r.t. (P, Q);
    differentiable in P, Q and X (``W`` is a constant weight matrix)."""
    Pb = P[idx]
    E = W[idx] * (Pb @ Q.T - X[idx])
    gP = torch.zeros_like(P).index_put((idx,), 2 * E @ Q)
    gQ = 2 * E.T @ Pb
    return gP, gQ


class SurrogateWMF:
    """The code's ``WMFTrainer`` with a functional Adam (torch's formula, coupled weight decay)."""

    b1, b2, eps = 0.9, 0.999, 1e-8

    def __init__(self, n_rows: int, n_items: int, c: LegUPConfig, seed: int) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.Q = torch.randn(n_items, c.s_dim, generator=gen) * 0.1
        self.P = torch.randn(n_rows, c.s_dim, generator=gen) * 0.1
        self.m = [torch.zeros_like(self.P), torch.zeros_like(self.Q)]
        self.v = [torch.zeros_like(self.P), torch.zeros_like(self.Q)]
        self.t = 0
        self.c = c
        self.order = np.random.default_rng(seed)

    def copy(self) -> "SurrogateWMF":
        """An independent copy: parameters, Adam state and batch-order stream."""
        other = copy.copy(self)
        other.m, other.v = list(self.m), list(self.v)
        other.order = copy.deepcopy(self.order)
        return other

    def _adam(self, params, grads, m, v, t):
        c = self.c
        out_p, out_m, out_v = [], [], []
        bc1, bc2 = 1 - self.b1 ** t, 1 - self.b2 ** t
        for p, g, mi, vi in zip(params, grads, m, v):
            if c.s_weight_decay:
                g = g + c.s_weight_decay * p
            mi = torch.lerp(mi, g, 1 - self.b1)
            vi = vi * self.b2 + (1 - self.b2) * g * g
            denom = vi.clamp_min(1e-30).sqrt() / bc2 ** 0.5 + self.eps
            out_p.append(p - (c.s_lr / bc1) * mi / denom)
            out_m.append(mi)
            out_v.append(vi)
        return out_p, out_m, out_v

    def _batches(self, n_rows: int):
        size = self.c.s_batch or n_rows
        perm = torch.from_numpy(self.order.permutation(n_rows))
        return [perm[s: s + size] for s in range(0, n_rows, size)]

    @torch.no_grad()
    def train(self, X: torch.Tensor, W: torch.Tensor, epochs: int) -> None:
        """``epochs`` plain epochs (no gradient w.r.t. ``X``); updates the state."""
        X = X.detach()
        for _ in range(epochs):
            for idx in self._batches(X.shape[0]):
                self.t += 1
                grads = wmf_grads(self.P, self.Q, X, W, idx)
                (self.P, self.Q), self.m, self.v = self._adam([self.P, self.Q], grads, self.m, self.v, self.t)

    def unrolled(self, X: torch.Tensor, W: torch.Tensor, epochs: int):
        """(P, Q) after ``epochs`` more epochs, differentiable w.r.t. ``X``; the state is unchanged
        except the batch-order stream."""
        params, m, v, t = [self.P, self.Q], list(self.m), list(self.v), self.t
        for _ in range(epochs):
            for idx in self._batches(X.shape[0]):
                t += 1
                grads = wmf_grads(params[0], params[1], X, W, idx)
                params, m, v = self._adam(params, grads, m, v, t)
        return params


def attack_loss(pred: torch.Tensor, targets: np.ndarray, users: list[torch.Tensor]) -> torch.Tensor:
    """Mean over targets (with target users) of the code's ``custimized_attack_loss``."""
    losses = []
    for t, u in zip(targets, users):
        if len(u) == 0:
            continue
        r = pred[u]
        mask = (r >= r[:, int(t): int(t) + 1]).to(r.dtype)
        losses.append((-torch.log_softmax(r * mask, dim=1)[:, int(t)] / (1 + 0.1)).mean())
    return torch.stack(losses).mean()


def _keep_items(R: np.ndarray, allowed: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of at most ``n`` rated, allowed items per row of dense ``R``, uniformly."""
    keys = rng.random(R.shape)
    keys[(R == 0) | ~allowed[None, :]] = -1.0
    keep = np.zeros(R.shape, dtype=bool)
    if n > 0:
        top = np.argpartition(-keys, min(n, R.shape[1]) - 1, axis=1)[:, :n]
        np.put_along_axis(keep, top, True, axis=1)
        keep &= keys >= 0
    return keep


@ATTACKS.register(
    "legup",
    paper="Lin et al., Shilling Black-box Recommender Systems by Learning to Generate Fake User Profiles (Leg-UP), "
          "IEEE TNNLS 2022 (authors' code AUSHplus, REFERENCES.md §4.3)",
    summary="real-user templates re-rated by a GAN generator with learnable discretisation, trained against an "
            "unrolled surrogate WMF to promote the targets; targets at r_max",
)
class LegUPAttack(Attack):
    Config = LegUPConfig

    def _generate(self, view, targets, n_fake, n_filler, rng):
        levels = rating_levels(view)
        self.levels_ = levels
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        n_items = view.n_items
        r_max = float(view.r_max)
        normal = view.matrix[: view.n_normal].toarray().astype(np.float32)
        allowed = np.ones(n_items, dtype=bool)
        allowed[targets] = False
        if view.n_normal == 0:
            templates = np.zeros(n_fake, np.int64)
            T = np.zeros((n_fake, n_items), np.float32)
        else:
            templates = rng.integers(view.n_normal, size=n_fake)
            T = normal[templates]
            T = np.where(_keep_items(T, allowed, n_filler, rng), T, 0).astype(np.float32)
        self.templates_ = templates
        s_seed = int(rng.integers(2**31))

        t0 = time.perf_counter()
        with training_threads(True):
            G = self._train(view, normal, T, targets, levels, r_max, rng, gen, s_seed)
            with torch.no_grad():
                _, _, out = G(torch.from_numpy(T))
                self.boundaries_ = G.boundaries().numpy().copy()
        self.train_seconds_ = time.perf_counter() - t0

        F = out.numpy().astype(np.float64)
        rows, cols = np.nonzero(T)
        vals = view.to_scale(F[rows, cols])
        rows = np.concatenate([rows, np.repeat(np.arange(n_fake), len(targets))])
        cols = np.concatenate([cols, np.tile(targets, n_fake)])
        vals = np.concatenate([vals, np.full(n_fake * len(targets), r_max)])
        m = sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(n_fake, n_items))
        m.sum_duplicates()
        return m

    def _train(self, view, normal, T, targets, levels, r_max, rng, gen, s_seed):
        c = self.config
        n_items = view.n_items
        n_fake = T.shape[0]
        hist = {k: [] for k in ("pretrain_g", "pretrain_d", "d", "g_gan", "attack", "attack_steps")}
        self.history_ = hist
        self.target_users_ = np.zeros(len(targets), np.int64)
        G = Generator(n_items, c.g_hidden, levels, gen)
        D = Discriminator([n_items, *c.d_hidden, 1], gen)
        opt_g = Adam(G.parameters(), lr=c.g_lr)
        opt_d = Adam(D.parameters(), lr=c.d_lr)
        n_normal = normal.shape[0]
        if n_normal == 0:
            return G
        Rn = torch.from_numpy(normal)
        Tt = torch.from_numpy(T)
        lv = np.asarray(levels)
        bce = torch.nn.functional.binary_cross_entropy_with_logits

        def batches():
            if n_normal < c.d_batch:
                return [torch.arange(n_normal)]
            perm = torch.from_numpy(rng.permutation(n_normal))
            return [perm[s: s + c.d_batch] for s in range(0, n_normal - c.d_batch + 1, c.d_batch)]

        def g_step(loss):
            opt_g.zero_grad()
            loss.backward()
            opt_g.step()

        def d_epoch():
            with torch.no_grad():
                fake = G(Tt)[2]
            losses = []
            for idx in batches():
                lr_, lf_ = D(Rn[idx[:n_fake]]), D(fake)
                loss = bce(lr_, torch.ones_like(lr_)) + bce(lf_, torch.zeros_like(lf_))
                opt_d.zero_grad()
                loss.backward()
                opt_d.step()
                losses.append(loss.item())
            return float(np.mean(losses))

        # pre-train G: L-class cross-entropy on the observed ratings (logits = the one-hot distribution)
        for _ in range(c.pretrain_g_epochs):
            losses = []
            for idx in batches():
                x = Rn[idx]
                dist, (r, k), _ = G(x)
                cls = np.abs(x[r, k].numpy()[:, None] - lv[None, :]).argmin(axis=1)
                loss = torch.nn.functional.cross_entropy(dist, torch.from_numpy(cls))
                g_step(loss)
                losses.append(loss.item())
            hist["pretrain_g"].append(float(np.mean(losses)))
        for _ in range(c.pretrain_d_epochs):
            hist["pretrain_d"].append(d_epoch())

        # the surrogate's data: [view rows; fake rows], observed weights
        X_real = torch.from_numpy(view.matrix.toarray().astype(np.float32))
        n_rows = X_real.shape[0] + n_fake
        fake_obs = Tt != 0
        if c.surrogate_targets:
            fake_obs[:, torch.from_numpy(targets)] = True
        obs = torch.cat([X_real != 0, fake_obs])
        Wt = torch.where(obs, torch.tensor(c.s_weight_pos), torch.tensor(c.s_weight_neg))
        tgt = torch.from_numpy(targets)
        users = []
        for j, t in enumerate(targets):
            u = torch.from_numpy(np.flatnonzero(normal[:, t] == 0))
            users.append(u)
            self.target_users_[j] = len(u)
        can_attack = any(len(u) for u in users)

        def fake_rows():
            out = G(Tt)[2]
            if c.surrogate_targets:
                out = _with_targets(out, tgt, r_max)
            return out

        for _ in range(c.epochs):
            hist["d"].append(float(np.mean([d_epoch() for _ in range(c.d_epochs)])) if c.d_epochs else float("nan"))
            gan = []
            for _ in range(c.gan_steps):
                out = G(Tt)[2]
                lf_ = D(out)
                loss = bce(lf_, torch.ones_like(lf_))
                g_step(loss)  # D's parameters get gradients too; each D step clears them first
                gan.append(loss.item())
            hist["g_gan"].append(float(np.mean(gan)) if gan else float("nan"))
            att, base = [], None
            for _ in range(c.attack_steps if can_attack else 0):
                X = torch.cat([X_real, fake_rows()])
                if c.s_warm_epochs is None:  # the code: from scratch, same seed, every step
                    sur = SurrogateWMF(n_rows, n_items, c, s_seed)
                    sur.train(X, Wt, c.s_epochs - c.unroll_steps)
                else:  # from scratch at the round's first attack step, then copies of that state
                    if base is None:
                        base = SurrogateWMF(n_rows, n_items, c, s_seed)
                        base.train(X, Wt, max(c.s_epochs - c.unroll_steps - c.s_warm_epochs, 0))
                    sur = base.copy()
                    sur.train(X, Wt, c.s_warm_epochs)
                P, Q = sur.unrolled(X, Wt, c.unroll_steps)
                pred = P[: n_normal] @ Q.T
                loss = attack_loss(pred, targets, users)
                g_step(loss)
                att.append(loss.item())
            hist["attack_steps"].extend(att)
            hist["attack"].append(float(np.mean(att)) if att else float("nan"))
        return G


def _with_targets(out: torch.Tensor, tgt: torch.Tensor, r_max: float) -> torch.Tensor:
    """``out`` with the target columns set to r_max (a constant, no gradient to G)."""
    keep = torch.ones(out.shape[1])
    keep[tgt] = 0
    add = torch.zeros(out.shape[1])
    add[tgt] = r_max
    return out * keep + add
