"""RAPU-G (Zhang, Tian, Li, Zhang, Zhang, Wang, "Data Poisoning Attack against Recommender System
Using Incomplete and Perturbed Data", KDD 2021; seed 003 §3, Algorithms 1-2, eqs. (1)-(4),
(8)-(10), App. A.1, A.3, A.4, A.7, §5.1.5): the controlled users' clicks learned by bi-level
optimisation through a WRMF surrogate whose loss on the attacker's (incomplete, perturbed) data is
the negative log-likelihood of a probabilistic generative model (PGM) fitted by EM.

Algorithm 2 on the attacker's ``view`` (normal rows ``R``, 0/1), fake block ``R*`` (n_fake x items):

* **Upper level** (eq. (1)): ``L = -sum_{t in T} sum_{u in U} sum_{v in I_u*} g(r_ut - r_uv)`` with
  ``g(x) = 1 / (1 + exp(-x / b))`` (the Wilcoxon-Mann-Whitney loss, width ``b`` = 0.1), ``U`` every
  normal user of the view, ``I_u*`` the user's top-``k`` (50) recommended items. The top-``k``
  selection is made on the detached scores (a discrete choice); the gradient flows through the
  scores ``r_ut`` and ``r_uv``. ``topk_unseen=True`` (default, the paper's "recommended" items)
  excludes the items the user clicked in the view; ``False`` ranks the raw scores of all items, as
  the code does (REFERENCES.md §2.6 step 4). A target inside ``I_u*`` adds the constant g(0).
* **Lower level** (eq. (2)): ``theta* = argmin L_pgm(R, R_theta) + L_train(R*, R*_theta)``, the
  surrogate WRMF of App. A.4 eq. (10) (``_unrolled``: dense, d = 64, w+ = 20, Adam lr 1e-2 -- the
  code's optimiser; Algorithm 2 and eq. (9) write plain gradient steps --, weight decay 1e-5, init N(0, 0.1^2), one full-batch step per epoch, ``epochs`` = 200, App. A.7 Table 4),
  trained from the same seed in every outer iteration; the fake rows use eq. (10); the last
  ``unroll`` (20, the code's value) steps are written as differentiable expressions, so that the
  hyper-gradient of eqs. (8)-(9) is one reverse pass truncated to those steps (App. A.1's
  "unrolling tau steps", as [22] = RevAdv). The direct term dL/dR* of eq. (8) is zero (L reads the
  normal users' scores only). The fake rows' instance weights (w+ on a click, 1 elsewhere) are a
  step function of ``R*`` and carry no gradient: the hyper-gradient flows through ``R*`` in the
  residuals only (as ``_unrolled`` and the code).
* **PGM / EM** (Algorithm 1, §3.2-§3.3). For every pair (u, i) of the view: keeping indicator
  ``delta1 ~ Bernoulli(K_ui)``, ``K_ui = (kappa_u + kappa_i) / 2``; if kept, decent indicator
  ``delta2 ~ Bernoulli(G_ui)``, ``G_ui = (gamma_u + gamma_i) / 2``; a decent observation is drawn
  from ``N(r_hat_ui, sigma_r^2)``, a perturbed one from ``N(r_bar, sigma_r^2)``; not kept -> 0.
  Before **every** inner step (Algorithm 2 lines 3-5) the EM runs on the current (detached)
  predictions of the normal rows:

  - E-step, eq. (3): ``E1 = 1`` where ``r_ui = 1``; where ``r_ui = 0``,
    ``E1 = K (G N(0|r_hat) + (1-G) N(0|r_bar)) / (K (G N(0|r_hat) + (1-G) N(0|r_bar)) + 1 - K)``;
    ``E2 = G N(r|r_hat) / (G N(r|r_hat) + (1-G) N(r|r_bar))`` for a kept pair (r = r_ui), with the
    full Gaussian densities (the 1/(sigma sqrt(2 pi)) matters in E1);
  - M-step, eq. (4): ``kappa_u`` = mean over items of E1, ``kappa_i`` = mean over normal users of
    E1, ``gamma_u = sum_i E1 E2 / sum_i E1`` and ``gamma_i`` likewise over users (eq. (4) writes
    the indicator I(delta1); with soft expectations its expectation E1 is the exact M-step; with
    ``hard_em`` E1 *is* the indicator);
  - iterated until all four parameter vectors are ``allclose`` (rtol 1e-5, atol 1e-8, the code's
    test) or ``em_iters`` iterations per inner step. Initial ``kappa = gamma = 0.8`` (§5.1.5), set
    once per surrogate training; each inner step's EM starts from the previous step's parameters
    (``em_warm_start``). ``em_iters`` = 1 (default, ours: the paper leaves E, Table 1, open) makes
    this an incremental EM that follows the fixed point as the predictions move over the 200 inner
    steps (from 0.8 the EM needs about 25-75 iterations at fixed predictions, more than the
    inner steps can afford: one iteration costs about one WRMF step on ML-100K); raise it to run
    each step's EM closer to convergence. ``sigma_r`` 0.3; ``r_bar`` (``None``, default) = the
    paper's "averaged interaction", read as the mean of the view's 0/1 matrix over all pairs.
    Measured consequence (stated, not a bug of ours): with r_bar near 0 the E-step explains zeros
    as well by the perturbation Gaussian as by the model, so at the fixed point kappa -> 1 (no
    removals) and gamma drops (about 0.16 on a trained surrogate of the synthetic clicks): the
    zeros' weights shrink to about 0.1 while clicks keep about 1. With the code's ``r_bar`` = 0.5,
    gamma -> 1 and kappa -> about 0.4 (missing pairs the model scores high count as removed).

  Only the Gaussian term ``-delta1 delta2 log N(r | r_hat, sigma_r^2)`` of L_pgm depends on theta
  (the Bernoulli terms and the perturbed term do not), so the theta-step of eq. (2) minimises
  ``sum E[delta1 delta2] c_ui (r_ui - r_hat_ui)^2`` with ``E[delta1 delta2] = E1 E2`` held fixed
  (the usual EM split: the expectations are constants in the M-step for theta, also in the
  unrolled steps, as the code detaches them). ``pgm_loss`` chooses ``c_ui``:
  ``"weighted"`` (default): ``c_ui = w_ui`` (20 on clicks, 1 elsewhere): the WRMF instance weights
  of eq. (10) read as per-pair precisions, so that with every delta = 1 the PGM loss is exactly
  L_train of eq. (10) and eq. (2) reduces to eq. (1) (the constant 1/(2 sigma_r^2) dropped, which
  keeps the relative scale of the normal and fake parts of eq. (2)); this is also what the code
  computes. ``"gaussian"``: ``c_ui = 1 / (2 sigma_r^2)``, the Gaussian term taken literally
  (unweighted: the normal rows then train a plain MF while the fake rows keep w+).
* **Outer step** (Algorithm 2 lines 9-10; the paper: "identical to [22]"): the hyper-gradient is
  zeroed on the target columns, each row normalised to unit L2 norm, one SGD-with-momentum step
  (``adv_lr`` 1.0, ``adv_momentum`` 0.95, torch's ``b = mu b + g``, ``R* -= lr b``: the code's
  settings and RevAdv's), then ``R* <- Project(R~ + beta R_p)`` with ``R_p[u, i] = c_i / c_max``
  (item click counts of the view, ``beta`` = 1): each row keeps its ``n_filler`` largest non-target
  entries as 1, everything else 0, and every target is set to 1. The paper's budget is 100 proxies
  (ML-100K) per controlled user; here it is the ``n_filler`` the pipeline passes. ``R*`` is
  *replaced* by the projection (the momentum buffer carries the real values, as the code).
* ``adv_epochs`` (30, the code) outer iterations; the surrogate's TargetHR@``k`` (any target among
  a normal user's top-``k`` unclicked items) of every evaluated ``R*`` -- with the surrogate trained
  on that same ``R*`` -- selects the returned block; the last projected iterate is not evaluated.

Options reproducing the authors' code (``BlackBoxAdvTrainer`` + ``WMFTrainer.fit_adv_EM`` +
``losses.EM_opt``; REFERENCES.md §2.6), each a departure from the paper kept for comparison:

* ``em_last`` = 3: the PGM loss only in the last 3 inner steps (plain eq. (10) before them); the
  paper (default ``None``) uses it in every inner step.
* ``hard_em`` = True: E1 thresholded at 0.5 inside every EM iteration and E2 at 0.5 after
  convergence (hard EM) instead of the paper's expectations.
* ``em_warm_start`` = False: the EM restarts from 0.8 at every inner step, as the code's
  ``EM_opt`` does on each call (with the code's run-to-convergence, set ``em_iters`` large too).
  Default True (ours, above; the paper does not say where each step's EM starts).
* ``r_bar`` = 0.5: the code's hard-coded value (it ignores its argument).
* ``pgm_normalise`` = True: the normal rows' loss divided by the mean of E1 E2 over the pairs (the
  code divides by the share of pairs with delta1 delta2 = 1).
* ``topk_unseen`` = False: the WMW top-k over raw scores of all items (above).
* ``init="first"``: initial fake rows = the first n_fake users with at most ``init_max_clicks``
  (100) clicks in id order (the code computes a shuffle and does not use it); default ``"random"``
  draws them at random, as ``revadv``.

Other departures and choices (ours, stated):

* **Budget.** The code keeps the top ``item + |T|`` = 105 entries over all columns and then forces
  the targets (105-110 clicks); here exactly ``n_filler`` non-target proxies + every target. The initial
  rows are projected by the same popularity-smoothed projection (the code trains its first
  surrogate on the unprojected real rows), so every evaluated block is feasible.
* **Selection.** The code's selection is off by one (it scores the surrogate trained on the
  previous block but saves the new one, REFERENCES.md §2.6 step 7); here each block is scored by the
  surrogate trained on it, as in ``revadv``.
* Full-batch surrogate on all of the view (the code's batches of 2,048 users are full batch on
  ML-100K; it trains 201 epochs on an 80/10/10 split). ``unroll`` 20 and ``adv_epochs`` 30 are the
  code's values; the paper gives neither.
* On explicit data (RAPU-G is click-only) the targets get ``r_max`` and the proxies ratings from
  N(item mean, item std), rounded and clipped, as ``revadv``.

Cost: ``adv_epochs x epochs`` full-batch WRMF steps (``unroll`` of them with a backward pass) and
before each PGM step a vectorised EM over the users x items matrix (App. A.1:
O(T (tau |theta| + E |U||I|))): 6,000 steps with the defaults. One ``generate`` on ML-100K at 3 %
(28 fake users, 5 targets, 50 proxies, one thread, loaded 2-core machine): 540 s wall, 462 s CPU
(``benchmarks/seed003_attacks.py --attacks rapu-g --n-filler 50``); the EM costs about as much as the WRMF step. ``history_``: per outer iteration (WMW loss, surrogate TargetHR,
mean EM iterations per inner step); ``pgm_`` the last EM state (kappa/gamma vectors).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import torch

from ..config import check
from ..victims._neural import training_threads
from ..victims._optim import Adam
from ._unrolled import UnrolledWRMF, WRMFSettings, adam_update, dense_binary
from .base import ATTACKS, Attack
from .revadv import _assemble_ragged, init_rows, target_hit_ratio


@dataclass(frozen=True)
class RapuGConfig:
    adv_epochs: int = 30
    adv_lr: float = 1.0
    adv_momentum: float = 0.95
    epochs: int = 200
    unroll: int = 20
    d: int = 64
    lr: float = 1e-2
    weight_decay: float = 1e-5
    pos_weight: float = 20.0
    init_std: float = 0.1
    b: float = 0.1
    k: int = 50
    topk_unseen: bool = True
    beta: float = 1.0
    sigma: float = 0.3
    r_bar: float | None = None
    init_ratio: float = 0.8
    em_iters: int = 1
    em_last: int | None = None
    em_warm_start: bool = True
    hard_em: bool = False
    pgm_loss: Literal["weighted", "gaussian"] = "weighted"
    pgm_normalise: bool = False
    init: Literal["random", "first"] = "random"
    init_max_clicks: int = 100

    def __post_init__(self) -> None:
        for name in ("adv_epochs", "epochs", "d", "k", "em_iters", "init_max_clicks"):
            v = getattr(self, name)
            check(isinstance(v, int) and v >= 1, f"rapu-g: {name}={v} must be an integer >= 1")
        check(isinstance(self.unroll, int) and 1 <= self.unroll <= self.epochs,
              f"rapu-g: unroll={self.unroll} must be an integer in [1, epochs={self.epochs}]")
        check(self.em_last is None or (isinstance(self.em_last, int) and 0 <= self.em_last <= self.epochs),
              f"rapu-g: em_last={self.em_last} must be None or an integer in [0, epochs={self.epochs}]")
        check(self.adv_lr > 0 and 0 <= self.adv_momentum < 1, "rapu-g: adv_lr must be > 0 and adv_momentum in [0, 1)")
        check(self.b > 0 and self.sigma > 0 and self.beta >= 0, "rapu-g: b and sigma must be > 0, beta >= 0")
        check(0 < self.init_ratio < 1, f"rapu-g: init_ratio={self.init_ratio} must be in (0, 1)")
        check(self.r_bar is None or math.isfinite(self.r_bar), f"rapu-g: r_bar={self.r_bar} must be None or a number")
        check(self.pgm_loss in ("weighted", "gaussian"), f"rapu-g: pgm_loss={self.pgm_loss!r}: use 'weighted' or 'gaussian'")
        check(self.init in ("random", "first"), f"rapu-g: init={self.init!r}: use 'random' or 'first'")
        self.surrogate()

    def surrogate(self) -> WRMFSettings:
        return WRMFSettings(d=self.d, lr=self.lr, weight_decay=self.weight_decay, pos_weight=self.pos_weight,
                            init_std=self.init_std)


# --------------------------------------------------------------------------------------------- PGM


class PGMState(NamedTuple):
    """EM output: expectations E1 = E[delta1], E2 = E[delta2 | delta1 = 1] (users x items), the
    parameters (kappa_u, kappa_i, gamma_u, gamma_i) and the number of EM iterations run."""

    e1: torch.Tensor
    e2: torch.Tensor
    kappa_u: torch.Tensor
    kappa_i: torch.Tensor
    gamma_u: torch.Tensor
    gamma_i: torch.Tensor
    iters: int


def normal_pdf(x: torch.Tensor | float, mean: torch.Tensor | float, sigma: float):
    """N(x | mean, sigma^2), the full density."""
    if not isinstance(x, torch.Tensor) and not isinstance(mean, torch.Tensor):
        return math.exp(-0.5 * ((x - mean) / sigma) ** 2) / (sigma * math.sqrt(2.0 * math.pi))
    z = (x - mean) / sigma
    return torch.exp(-0.5 * z * z) / (sigma * math.sqrt(2.0 * math.pi))


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(torch.allclose(a, b, rtol=1e-5, atol=1e-8))


def pgm_em(R: torch.Tensor, S: torch.Tensor, params: tuple[torch.Tensor, ...], sigma: float, r_bar: float,
           max_iter: int, hard: bool = False) -> PGMState:
    """EM of seed 003 §3.3 for the 0/1 matrix ``R`` given predictions ``S`` (same shape, no grad):
    E-step eq. (3), M-step eq. (4), from ``params`` = (kappa_u, kappa_i, gamma_u, gamma_i), until
    the parameters stop moving (``allclose``) or ``max_iter`` iterations. ``hard``: the code's hard
    EM (E1 and, at the end, E2 thresholded at 0.5). Vectorised over all pairs."""
    tiny = torch.finfo(S.dtype).tiny
    pos = R > 0
    c, h = 1.0 / (sigma * math.sqrt(2.0 * math.pi)), -0.5 / sigma**2
    n_bar1, n_bar0 = float(normal_pdf(1.0, r_bar, sigma)), float(normal_pdf(0.0, r_bar, sigma))
    n_bar = torch.full_like(S, n_bar0).masked_fill_(pos, n_bar1)         # N(r_ui | r_bar, sigma^2)
    d0 = torch.exp(S.square().mul_(h)).mul_(c).sub_(n_bar0)              # N(0 | r_hat) - N(0 | r_bar)
    n_hat = torch.exp((R - S).square_().mul_(h)).mul_(c)                 # N(r_ui | r_hat_ui, sigma^2)
    dh = n_hat - n_bar
    ku, ki, gu, gi = (p.to(S.dtype) for p in params)
    it = 0
    while True:
        it += 1
        K = 0.5 * (ku[:, None] + ki[None, :])
        G = 0.5 * (gu[:, None] + gi[None, :])
        # E-step, eq. (3): E1 = K mix0 / (K mix0 + 1 - K), mix0 = G N(0|r_hat) + (1 - G) N(0|r_bar)
        kept0 = torch.addcmul(torch.full_like(S, n_bar0), G, d0).mul_(K)
        e1 = kept0.div_(torch.sub(kept0, K).add_(1.0).clamp_min_(tiny)).masked_fill_(pos, 1.0)
        if hard:
            e1 = (e1 >= 0.5).to(S.dtype)
        # E2 = G N(r|r_hat) / (G N(r|r_hat) + (1 - G) N(r|r_bar))
        e2 = (G * n_hat).div_(torch.addcmul(n_bar, G, dh).clamp_min_(tiny))
        e12 = e1 * e2
        # M-step, eq. (4)
        s1u, s1i = e1.sum(1), e1.sum(0)
        new = (s1u / R.shape[1], s1i / R.shape[0],
               torch.where(s1u > 0, e12.sum(1) / s1u.clamp_min(tiny), gu),
               torch.where(s1i > 0, e12.sum(0) / s1i.clamp_min(tiny), gi))
        done = all(_close(a, b) for a, b in zip(new, (ku, ki, gu, gi)))
        ku, ki, gu, gi = new
        if done or it >= max_iter:
            break
    if hard:
        e2 = (e2 >= 0.5).to(S.dtype)
    return PGMState(e1, e2, ku, ki, gu, gi, it)


# ------------------------------------------------------------------------------------- surrogate


class PGMSurrogate:
    """The lower level of eq. (2): dense WRMF on ``[R; R*]`` whose normal rows are trained with the
    PGM loss (EM before every step that uses it), the last ``unroll`` steps differentiable in ``R*``
    (the same expressions as ``_unrolled.UnrolledWRMF``). ``record`` keeps the normal rows' weights
    of every step and ``replay`` reuses them instead of running EM (for finite-difference checks)."""

    def __init__(self, c: RapuGConfig, r_bar: float, dtype: torch.dtype = torch.float32) -> None:
        self.c = c
        self.s = c.surrogate()
        self.base = UnrolledWRMF(self.s, dtype)
        self.r_bar = r_bar
        self.dtype = dtype

    def _init_params(self, n: int, m: int) -> tuple[torch.Tensor, ...]:
        v = self.c.init_ratio
        return (torch.full((n,), v, dtype=self.dtype), torch.full((m,), v, dtype=self.dtype),
                torch.full((n,), v, dtype=self.dtype), torch.full((m,), v, dtype=self.dtype))

    def normal_weights(self, R: torch.Tensor, S: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
        """The weights c_ui E1 E2 of the normal rows' PGM loss at predictions ``S`` (runs the EM)."""
        c = self.c
        params = self.params if c.em_warm_start and self.params is not None else self._init_params(*R.shape)
        st = pgm_em(R, S, params, c.sigma, self.r_bar, c.em_iters, c.hard_em)
        self.params = (st.kappa_u, st.kappa_i, st.gamma_u, st.gamma_i)
        self.state, self.em_iters_ = st, self.em_iters_ + [st.iters]
        e12 = st.e1 * st.e2
        if c.pgm_normalise:
            e12 = e12 / e12.mean().clamp_min(torch.finfo(S.dtype).tiny)
        return e12 * (W if c.pgm_loss == "weighted" else 1.0 / (2.0 * c.sigma**2))

    def train(self, R_real: torch.Tensor, X_fake: torch.Tensor, gen: torch.Generator, record: bool = False,
              replay: list[torch.Tensor] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        c, s = self.c, self.s
        epochs, unroll = c.epochs, c.unroll
        first_pgm = 0 if c.em_last is None else epochs - c.em_last
        n = R_real.shape[0]
        P, Q = self.base.init(n + X_fake.shape[0], R_real.shape[1], gen)
        R_real = R_real.to(self.dtype)
        W_real = self.base.weights(R_real)
        self.params, self.state, self.em_iters_ = None, None, []
        self.recorded_: list[torch.Tensor] = []

        def weights(step: int, S: torch.Tensor) -> torch.Tensor:
            if replay is not None:
                return replay[step]
            w = self.normal_weights(R_real, S[:n], W_real) if step >= first_pgm else W_real
            if record:
                self.recorded_.append(w)
            return w

        R_fixed = torch.cat([R_real, X_fake.detach().to(self.dtype)])
        W_fake = self.base.weights(R_fixed[n:])
        opt = Adam([P, Q], lr=s.lr, betas=s.betas, eps=s.eps, weight_decay=s.weight_decay,
                   fused=self.dtype == torch.float32)
        with torch.no_grad():
            for step in range(epochs - unroll):
                S = P @ Q.T
                W = torch.cat([weights(step, S), W_fake])
                E = W.mul_(S.sub_(R_fixed)).mul_(2.0)
                P.grad, Q.grad = E @ Q, E.T @ P
                opt.step()
            P.grad = Q.grad = None
        step_t = 0
        moments = []
        for st, p in zip(opt.state, (P, Q)):
            if st:
                step_t = int(st["step_t"]) if "step_t" in st else int(st["step"])
                moments.append((st["exp_avg"].clone(), st["exp_avg_sq"].clone()))
            else:
                moments.append((torch.zeros_like(p), torch.zeros_like(p)))
        (mP, vP), (mQ, vQ) = moments
        R = torch.cat([R_real, X_fake.to(self.dtype)])
        W_fake = self.base.weights(R[n:])
        for step in range(epochs - unroll, epochs):
            step_t += 1
            S = P @ Q.T
            W = torch.cat([weights(step, S.detach()), W_fake])
            E = 2.0 * W * (S - R)
            gP, gQ = E @ Q, E.T @ P
            P_new, mP, vP = adam_update(P, gP, mP, vP, step_t, s)
            Q, mQ, vQ = adam_update(Q, gQ, mQ, vQ, step_t, s)
            P = P_new
        return P, Q


def wmw_loss(scores: torch.Tensor, targets: np.ndarray, k: int, b: float, seen: torch.Tensor | None = None
             ) -> torch.Tensor:
    """Eq. (1)'s attack objective ``-sum_t sum_u sum_{v in top-k(u)} g(r_ut - r_uv)``,
    ``g(x) = sigmoid(x / b)``; the top-k of each row chosen on the detached scores, among the unseen
    items when ``seen`` is given."""
    sel = scores.detach()
    if seen is not None:
        sel = sel.masked_fill(seen > 0, -np.inf)
    kk = min(k, scores.shape[1])
    val, top = torch.topk(sel, kk, dim=1)
    valid = torch.isfinite(val).to(scores.dtype)
    s_top = scores.gather(1, top)
    s_t = scores[:, torch.as_tensor(targets)]
    g = torch.sigmoid((s_t[:, :, None] - s_top[:, None, :]) / b)
    return -(g * valid[:, None, :]).sum()


def project_popularity(X: torch.Tensor, popularity: torch.Tensor, beta: float, targets: np.ndarray,
                       n_filler: int) -> torch.Tensor:
    """Algorithm 2 line 10: ``Project(X + beta R_p)``, ``R_p[u, i] = c_i / c_max``: each row's
    ``n_filler`` largest non-target entries -> 1, the rest 0, every target 1."""
    pop = popularity.to(X.dtype)
    Z = X.detach() + beta * pop / pop.max().clamp_min(1.0)
    Z[:, torch.as_tensor(targets)] = -np.inf
    out = torch.zeros_like(Z)
    k = min(n_filler, Z.shape[1] - len(targets))
    if k > 0:
        out.scatter_(1, torch.topk(Z, k, dim=1).indices, 1.0)
    out[:, torch.as_tensor(targets)] = 1.0
    return out


@ATTACKS.register(
    "rapu-g",
    paper="Zhang et al., KDD 2021 (seed 003 §3, Algorithm 2)",
    summary="fake clicks by bi-level optimisation through an unrolled WRMF surrogate trained with the PGM/EM loss",
)
class RapuGAttack(Attack):
    Config = RapuGConfig

    def memory_bytes(self, n_users: int, n_items: int) -> int:
        """The dense surrogate and EM buffers (about 12 users x items float32 tensors), about four
        such tensors kept per unrolled step for the backward pass, plus the factors and Adam
        moments of each unrolled step."""
        c = self.config
        return 4 * ((12 + 4 * c.unroll) * n_users * n_items + 8 * (c.unroll + 1) * (n_users + n_items) * c.d)

    def _init_rows(self, view, n_fake: int, rng: np.random.Generator) -> torch.Tensor:
        return init_rows(view, n_fake, self.config.init, self.config.init_max_clicks, rng)

    def _generate(self, view, targets, n_fake, n_filler, rng):
        c = self.config
        t0 = time.perf_counter()
        seed = int(rng.integers(2**31))
        self.history_: list[tuple[float, float, float]] = []
        n_normal = view.n_normal
        R = dense_binary(view.binary()[:n_normal])
        r_bar = float(R.mean()) if c.r_bar is None else float(c.r_bar)
        popularity = R.sum(0)
        tt = torch.as_tensor(targets)
        X = project_popularity(self._init_rows(view, n_fake, rng), popularity, c.beta, targets, n_filler)
        buf = torch.zeros_like(X)
        model = PGMSurrogate(c, r_bar)
        best_hr, best = -1.0, X
        with training_threads(True):
            for _ in range(c.adv_epochs):
                Xv = X.clone().requires_grad_(True)
                P, Q = model.train(R, Xv, torch.Generator().manual_seed(seed))
                scores = P[:n_normal] @ Q.T
                loss = wmw_loss(scores, targets, c.k, c.b, R if c.topk_unseen else None)
                hr = target_hit_ratio(scores.detach(), R, targets, c.k)
                iters = float(np.mean(model.em_iters_)) if model.em_iters_ else 0.0
                self.history_.append((float(loss.detach()), hr, iters))
                if hr > best_hr:
                    best_hr, best = hr, X
                (g,) = torch.autograd.grad(loss, Xv)
                g[:, tt] = 0.0
                g = g / g.norm(dim=1, keepdim=True).clamp_min(1e-12)
                buf = c.adv_momentum * buf + g
                X = project_popularity(X - c.adv_lr * buf, popularity, c.beta, targets, n_filler)
        self.best_hr_ = best_hr
        self.pgm_ = model.state
        Xb = best.numpy().copy()
        Xb[:, targets] = 0.0
        items = [np.flatnonzero(r) for r in Xb]
        rows = np.repeat(np.arange(n_fake), [len(i) for i in items])
        cols = np.concatenate(items).astype(np.int64)
        mean, std = view.item_stats()
        ratings = rng.normal(mean[cols], std[cols])
        self.seconds_ = time.perf_counter() - t0
        return _assemble_ragged(view, rows, cols, ratings, targets, n_fake)
