"""Huang et al.'s poisoning attack on deep-learning recommenders (``dl-ncf``).

Huang, Mu, Gong, Li, Liu, Xu, "Data Poisoning Attacks to Deep Learning Based Recommender Systems",
NDSS 2021 (seed 000's source; restated by seed 002 §4, eqs. (1)-(6), Algorithm 1). Fake users are
made one at a time, each from a surrogate NeuMF that is *poison-trained* to rank the targets high:

1. fake user v starts with the targets only (seed 002 Alg. 1 line 3);
2. the surrogate is trained on the attacker's data with v (binary cross-entropy, sampled negatives);
3. ``rounds`` poison-training rounds, each (REFERENCES.md §1.4):
   a. a step on ``lambda * eta * sum_{u, t: u has not rated t} max(log s_K(u) - log s_t(u), -kappa)``
      (eq. (4)-(5): ``s_K`` the K-th largest predicted probability among u's unrated items, ``s_t``
      the target's; a hinge that stops pushing once t is safely inside the top-K);
   b. a step on ``lambda * ||y_hat_v||^2`` over v's non-target predictions (the ``||y_v||^2`` term
      of eq. (3): v's predicted interest is kept low, so only the most useful items survive);
   c. one epoch of the ordinary loss L;
   d. the target hit ratio of the surrogate; the round with the best one is kept (the code's rule);
4. fillers = the ``n`` largest entries of ``y_hat_v ⊙ P`` over non-target items, with the
   attenuation vector ``P`` (eq. (6)): each chosen item's ``P_i`` is multiplied by ``delta``, and P is
   reset to 1 when *all* its entries are below 1 (the reference's rule); v joins the data.

Defaults are the reference code's *intended* values (its README command; its argparse defaults turn
the attack off, REFERENCES.md §1.3): lambda = 1e-2, eta = 1e2, kappa = 1, delta = 0.9, 5 rounds,
K = 10 (``k``; unset, it is the K the cell measures, and 10 outside a cell), and its NeuMF (REFERENCES.md §1.2): 8 GMF factors, MLP 64-32-16-8 (32-wide user and
item MLP embeddings), ReLU, embeddings N(0, 0.01), Adam with learning rate 1e-3, batch 256, 20
pre-training epochs, 4 negatives per positive. The number of fillers ``n`` is the cell's
``n_filler`` (the reference's example: 30).

Departures, each for speed or soundness, each a parameter:

- **Batched poison steps** (``user_batch``, default 256): the reference takes one Adam step per user
  (|U| backward passes per round); we sum the per-user hinge losses of ``user_batch`` users per
  step. ``user_batch=1`` is the reference's per-user loop (with the users in a shuffled order).
- **Warm start** (``warm_epochs``, default 2): the reference trains a fresh surrogate from scratch
  (20 epochs) for every fake user. We pre-train once, keep the *pre-poison* state, and for each next
  fake user add its embedding row (fresh N(0, 0.01)) and continue ``warm_epochs`` epochs on the data
  that now holds the previous fake user's whole profile. ``warm_epochs=0`` with
  ``fresh_surrogate=true`` is the reference's behaviour.
- **No model selection on test items**: the reference keeps the pre-training epoch with the best
  leave-one-out HR@10 on the *test* items. We carve one validation interaction per user (who has at
  least two) out of the attacker's data, select the pre-training epoch on it, and train on the rest
  (``select_epoch``).
- **Negatives are resampled every epoch** (vanilla NCF), not drawn once as the reference does.
- **Several targets**: the reference promotes one target per run. With several targets (a cell's
  ``target_mode: together``), each fake user rates all of them and step (a) sums over (user, target)
  pairs.
- **Ratings** (explicit data only): the attack is implicit (every fake interaction is 1). On rating
  data the profiles need values: targets get r_max and fillers ``N(mu_i, sigma_i^2)`` rounded and
  clipped (seed 001 Algorithm 2's disguise; ``filler_ratings=disguise``), or r_max
  (``filler_ratings=max``). This is our assumption: Huang et al. assign no ratings.
- **Surrogate** (``surrogate``): ``ncf`` (NeuMF, the paper's) or ``gmf`` (its GMF branch alone), for
  transfer studies; the victim may be any model. ``wrmf``: a dense WRMF trained as seed 003's code
  trains its surrogate (REFERENCES.md §2.3: P, Q ~ N(0, 0.1^2), d = 64, scores P Q^T without biases,
  the weighted squared error over *all* (user, item) pairs with weight 20 on interactions and 1 on
  the rest, Adam with learning rate 1e-2 and weight decay 1e-5, one full-batch step per epoch,
  ``wrmf_epochs`` = 100 pre-training epochs, ``wrmf_warm_epochs`` = 10); step (c) is one such
  epoch. Huang et al.'s loss is written for predicted probabilities; WRMF predicts scores, so for
  this surrogate the score plays the logit's part (``log sigmoid(score)`` in the hinge,
  ``sigmoid(score)`` in ``||y_v||^2`` and for the fillers): our choice, the paper has no WRMF.

Implementation notes (no departure): step (a) finds each user's K-th item without gradients and
then differentiates only the scores of that item and of the targets; a top-k passes its gradient to
the selected entries alone, so this is the same value and gradient as differentiating all (user,
item) scores (a test checks it), at 2 pairs per user instead of n_items. The attack is
``prefix_stable``: nothing depends on how many fake users follow (the filler ratings come from a
stream of their own, drawn in user order), so a run of n fake users starts with the run of m < n,
and the pipeline serves the smaller attack sizes of a sweep from the largest run.

The surrogate reads only the attacker's ``view``, with ratings turned into interactions (any rating
is a positive, as the reference binarises).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
import torch

from ..config import check
from ..victims._neural import SeenPairs, bce_instances, positive_pairs, training_threads
from ..victims._optim import Adam
from ..victims.ncf import neumf_bce_step_grads
from .base import ATTACKS, Attack, non_targets


@dataclass(frozen=True)
class DLNCFConfig:
    lam: float = 1e-2
    eta: float = 1e2
    kappa: float = 1.0
    delta: float = 0.9
    rounds: int = 5
    k: int | None = None
    surrogate: Literal["ncf", "gmf", "wrmf"] = "ncf"
    factors: int = 8
    mlp: tuple[int, ...] = (64, 32, 16, 8)
    lr: float = 1e-3
    batch_size: int = 256
    n_neg: int = 4
    pretrain_epochs: int = 20
    warm_epochs: int = 2
    fresh_surrogate: bool = False
    select_epoch: bool = True
    user_batch: int = 256
    filler_ratings: Literal["disguise", "max"] = "disguise"
    init_std: float = 0.01
    seed: int = 0
    #: the WRMF surrogate (``surrogate=wrmf``): seed 003's code (REFERENCES.md §2.3)
    wrmf_d: int = 64
    wrmf_lr: float = 1e-2
    wrmf_weight_decay: float = 1e-5
    wrmf_pos_weight: float = 20.0
    wrmf_init_std: float = 0.1
    wrmf_epochs: int = 100
    wrmf_warm_epochs: int = 10

    def __post_init__(self) -> None:
        object.__setattr__(self, "mlp", tuple(int(x) for x in self.mlp))
        check(self.surrogate in ("ncf", "gmf", "wrmf"), f"dl-ncf: surrogate={self.surrogate!r} must be ncf, gmf or wrmf")
        for name in ("lam", "eta", "kappa", "lr", "init_std", "wrmf_lr", "wrmf_weight_decay", "wrmf_pos_weight", "wrmf_init_std"):
            check(getattr(self, name) >= 0 and np.isfinite(getattr(self, name)), f"dl-ncf: {name}={getattr(self, name)} must be a finite number >= 0")
        check(0 < self.delta <= 1, f"dl-ncf: delta={self.delta} must be in (0, 1]")
        check(self.rounds >= 0, f"dl-ncf: rounds={self.rounds} must be >= 0")
        check(self.k is None or self.k >= 1, f"dl-ncf: k={self.k} must be at least 1 (or unset: the cell's K)")
        check(self.factors >= 1, f"dl-ncf: factors={self.factors} must be at least 1")
        check(len(self.mlp) >= 2 and all(x >= 1 for x in self.mlp) and self.mlp[0] % 2 == 0,
              f"dl-ncf: mlp={self.mlp} needs >= 2 positive widths, the first even")
        for name in ("batch_size", "n_neg", "user_batch"):
            check(getattr(self, name) >= 1, f"dl-ncf: {name}={getattr(self, name)} must be at least 1")
        check(self.wrmf_d >= 1, f"dl-ncf: wrmf_d={self.wrmf_d} must be at least 1")
        for name in ("pretrain_epochs", "warm_epochs", "seed", "wrmf_epochs", "wrmf_warm_epochs"):
            check(getattr(self, name) >= 0, f"dl-ncf: {name}={getattr(self, name)} must be >= 0")


class _Surrogate(torch.nn.Module):
    """NeuMF (He et al. 2017 eqs. (11)-(12)) or its GMF branch, with rows addable for new users."""

    def __init__(self, n_users: int, n_items: int, c: DLNCFConfig, gen: torch.Generator) -> None:
        super().__init__()
        self.wrmf = c.surrogate == "wrmf"
        if self.wrmf:  # P Q^T, no biases (seed 003's code)
            self.std = c.wrmf_init_std
            self.with_mlp = False
            self.Pg = torch.nn.Parameter(self._normal(gen, n_users, c.wrmf_d))
            self.Qg = torch.nn.Parameter(self._normal(gen, n_items, c.wrmf_d))
            return
        self.std = c.init_std
        self.with_mlp = c.surrogate == "ncf"
        d, half = c.factors, c.mlp[0] // 2
        self.Pg = torch.nn.Parameter(self._normal(gen, n_users, d))
        self.Qg = torch.nn.Parameter(self._normal(gen, n_items, d))
        width = d
        if self.with_mlp:
            self.Pm = torch.nn.Parameter(self._normal(gen, n_users, half))
            self.Qm = torch.nn.Parameter(self._normal(gen, n_items, half))
            self.W = torch.nn.ParameterList()
            for i, o in zip(c.mlp[:-1], c.mlp[1:]):
                bound = float(np.sqrt(6.0 / (i + o)))  # Glorot uniform
                self.W.append(torch.nn.Parameter((torch.rand(o, i, generator=gen) * 2 - 1) * bound))
            self.B = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(o)) for o in c.mlp[1:]])
            width += c.mlp[-1]
        bound = float(np.sqrt(6.0 / (width + 1)))
        self.h = torch.nn.Parameter((torch.rand(width, generator=gen) * 2 - 1) * bound)
        self.b = torch.nn.Parameter(torch.zeros(()))

    def _normal(self, gen: torch.Generator, *shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen) * self.std

    def add_user(self, gen: torch.Generator) -> None:
        """Append one user row (the next fake user) to the user embeddings."""
        with torch.no_grad():
            self.Pg = torch.nn.Parameter(torch.cat([self.Pg, self._normal(gen, 1, self.Pg.shape[1])]))
            if self.with_mlp:
                self.Pm = torch.nn.Parameter(torch.cat([self.Pm, self._normal(gen, 1, self.Pm.shape[1])]))

    def _tower(self, z: torch.Tensor) -> torch.Tensor:
        x = torch.relu(z)
        for W, B in zip(list(self.W)[1:], list(self.B)[1:]):
            x = torch.relu(x @ W.T + B)
        return x

    def pair_logits(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        if self.wrmf:
            return (self.Pg[u] * self.Qg[i]).sum(dim=1)
        d = self.Pg.shape[1]
        out = (self.Pg[u] * self.Qg[i]) @ self.h[:d] + self.b
        if self.with_mlp:
            half = self.Pm.shape[1]
            W1 = self.W[0]
            z = self.Pm[u] @ W1[:, :half].T + self.Qm[i] @ W1[:, half:].T + self.B[0]
            out = out + self._tower(z) @ self.h[d:]
        return out

    def all_logits(self, users: torch.Tensor) -> torch.Tensor:
        """(len(users), n_items) logits, the MLP's first layer split into user and item halves."""
        if self.wrmf:
            return self.Pg[users] @ self.Qg.T
        d = self.Pg.shape[1]
        out = (self.Pg[users] * self.h[:d]) @ self.Qg.T + self.b
        if self.with_mlp:
            half = self.Pm.shape[1]
            W1 = self.W[0]
            zu = self.Pm[users] @ W1[:, :half].T + self.B[0]
            zi = self.Qm @ W1[:, half:].T
            out = out + self._tower(zu[:, None, :] + zi[None, :, :]) @ self.h[d:]
        return out

    def scores(self, users: np.ndarray, chunk: int = 128) -> torch.Tensor:
        """``all_logits`` without gradients, in blocks of users (bounded memory)."""
        with torch.no_grad():
            return torch.cat([self.all_logits(torch.from_numpy(users[s : s + chunk])) for s in range(0, len(users), chunk)])


@ATTACKS.register(
    "dl-ncf",
    paper="Huang et al., NDSS 2021 (seeds 000, 002 §4 eqs. (1)-(6), Algorithm 1)",
    summary="fillers from a NeuMF surrogate poison-trained to rank the targets in every user's top-K",
)
class DLNCFAttack(Attack):
    Config = DLNCFConfig
    prefix_stable = True  # one fake user after the other; nothing depends on how many follow
    k_param = "k"

    # ------------------------------------------------------------------ training pieces
    def _seen(self, m: sp.csr_matrix) -> torch.Tensor:
        """``m != 0`` as a dense bool tensor, kept while the same ``m`` is in use (one fake user's
        data serves many epochs, poison steps and evaluations)."""
        memo = getattr(self, "_seen_memo", None)
        if memo is None or memo[0] is not m:
            memo = (m, torch.from_numpy(m.toarray() != 0))
            self._seen_memo = memo
        return memo[1]

    def _epoch(self, model, opt, m: sp.csr_matrix, rng: np.random.Generator) -> float:
        """One epoch of the binary cross-entropy with ``n_neg`` fresh negatives per positive; for the
        WRMF surrogate, one full-batch step on the weighted squared error over all pairs."""
        c = self.config
        if model.wrmf:
            r = self._seen(m).to(torch.float32)
            w = 1.0 + (c.wrmf_pos_weight - 1.0) * r
            loss = (w * (r - model.Pg @ model.Qg.T) ** 2).sum() / m.shape[0]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            return float(loss.detach())
        u, i = positive_pairs(m)
        tu, ti, ty = (torch.from_numpy(a) for a in bce_instances(u, i, SeenPairs.of(m), m.shape[1], c.n_neg, rng))
        total = 0.0
        mlp = (model.Pm, model.Qm, list(model.W), list(model.B)) if model.with_mlp else (None, None, None, None)
        for s in range(0, tu.numel(), c.batch_size):
            sl = slice(s, s + c.batch_size)
            # the BCE of pair_logits with its gradient written out (victims.ncf; tested against autograd)
            loss = neumf_bce_step_grads(model.Pg, model.Qg, *mlp, model.h, model.b, tu[sl], ti[sl], ty[sl])
            opt.step()
            total += float(loss) * tu[sl].numel()
        return total / max(1, tu.numel())

    def _hit_ratio(self, model, m: sp.csr_matrix, n_normal: int, items: np.ndarray, k: int) -> float:
        """Mean over ``items`` of the share of normal users who have not rated the item and rank it in
        their top-k among their unrated items (the project's target HR definition)."""
        s = model.scores(np.arange(n_normal))
        seen = self._seen(m)[:n_normal]
        s = s.masked_fill(seen, -torch.inf)
        kth = torch.topk(s, min(k, s.shape[1]), dim=1).values[:, -1]
        hrs = []
        for t in items:
            eligible = ~seen[:, t]
            if eligible.any():
                hrs.append(float(((s[:, t] >= kth) & eligible).sum() / eligible.sum()))
        return float(np.mean(hrs)) if hrs else 0.0

    def poison_loss(self, model, m: sp.csr_matrix, users: np.ndarray, targets: np.ndarray) -> torch.Tensor:
        """``sum over (u, t), u has not rated t, of max(log s_K(u) - log s_t(u), -kappa)`` (eqs. (4)-(5))."""
        c = self.config
        tu = torch.from_numpy(users)
        tt = torch.from_numpy(targets)
        seen = self._seen(m)[torch.from_numpy(users)]
        # which item is each user's K-th among the unrated ones: found without gradients (logsigmoid
        # is monotone, so the K-th largest log-probability sits at the K-th largest logit). The
        # loss's gradient flows only through that item's and the targets' scores (a top-k passes
        # its gradient to the selected entries alone), so recomputing just those pairs with
        # gradients gives the same value and gradient as differentiating all (user, item) scores,
        # at 2 pairs per user instead of n_items
        with torch.no_grad():
            masked = model.all_logits(tu).masked_fill(seen, -torch.inf)
            kth = torch.topk(masked, min(self.list_length(), masked.shape[1]), dim=1).indices[:, -1]
        log_sk = torch.nn.functional.logsigmoid(model.pair_logits(tu, kth))
        pairs_u = tu.repeat_interleave(len(targets))
        pairs_t = tt.repeat(len(users))
        log_st = torch.nn.functional.logsigmoid(model.pair_logits(pairs_u, pairs_t)).view(len(users), len(targets))
        hinge = torch.clamp(log_sk[:, None] - log_st, min=-c.kappa)
        eligible = ~seen[:, tt]
        return (hinge * eligible).sum()

    def _poison_round(self, model, opt, m: sp.csr_matrix, n_normal: int, targets: np.ndarray, v: int,
                      others: np.ndarray, rng: np.random.Generator) -> float:
        c = self.config
        rated_all = np.asarray((m[:n_normal][:, targets] != 0).sum(axis=1)).ravel() == len(targets)
        users = rng.permutation(np.flatnonzero(~rated_all)).astype(np.int64)
        total = 0.0
        for s in range(0, users.size, c.user_batch):
            loss = c.lam * c.eta * self.poison_loss(model, m, users[s : s + c.user_batch], targets)
            total += float(loss.detach())
            if loss.requires_grad:
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        # ||y_hat_v||^2 over v's non-target items
        y_v = torch.sigmoid(model.all_logits(torch.tensor([v]))[0, torch.from_numpy(others)])
        reg = c.lam * (y_v**2).sum()
        opt.zero_grad(set_to_none=True)
        reg.backward()
        opt.step()
        return total

    # ------------------------------------------------------------------ the attack
    def _validation_split(self, m: sp.csr_matrix, rng: np.random.Generator) -> tuple[sp.csr_matrix, np.ndarray]:
        """One random interaction per user with at least two, held out for epoch selection."""
        counts = np.diff(m.indptr)
        val = np.full(m.shape[0], -1, dtype=np.int64)
        has = np.flatnonzero(counts >= 2)
        pick = m.indptr[has] + (rng.random(has.size) * counts[has]).astype(np.int64)
        val[has] = m.indices[pick]
        keep = np.ones(m.nnz, dtype=bool)
        keep[pick] = False
        coo = m.tocoo()
        train = sp.csr_matrix((coo.data[keep], (coo.row[keep], coo.col[keep])), shape=m.shape)
        return train, val

    @staticmethod
    def _val_hr(model, train: sp.csr_matrix, val: np.ndarray, k: int) -> float:
        users = np.flatnonzero(val >= 0)
        if users.size == 0:
            return 0.0
        s = model.scores(users)
        s = s.masked_fill(torch.from_numpy(train[users].toarray() != 0), -torch.inf)
        top = torch.topk(s, min(k, s.shape[1]), dim=1).indices.numpy()
        return float((top == val[users, None]).any(axis=1).mean())

    def _optimizer(self, model) -> Adam:
        c = self.config
        if model.wrmf:
            return Adam(model.parameters(), lr=c.wrmf_lr, weight_decay=c.wrmf_weight_decay)
        return Adam(model.parameters(), lr=c.lr)

    def _pretrain(self, model, m: sp.csr_matrix, n_normal: int, epochs: int, rng, select: bool):
        opt = self._optimizer(model)
        if not select or epochs == 0:
            for _ in range(epochs):
                self._epoch(model, opt, m, rng)
            return model
        train, val = self._validation_split(m, rng)
        val[n_normal:] = -1  # fake users are not validation users
        best, best_state = -1.0, None
        for _ in range(epochs):
            self._epoch(model, opt, train, rng)
            hr = self._val_hr(model, train, val, 10)
            if hr > best:
                best, best_state = hr, copy.deepcopy(model.state_dict())
        model.load_state_dict(best_state)
        return model

    @staticmethod
    def _rows(chosen_rows: list[np.ndarray], targets: np.ndarray, n_items: int) -> sp.csr_matrix:
        """The finished fake users as 0/1 rows: their fillers and the targets."""
        n = len(chosen_rows)
        if n == 0:
            return sp.csr_matrix((0, n_items), dtype=np.float32)
        cols = [np.concatenate([ch, targets]) for ch in chosen_rows]
        rows = np.repeat(np.arange(n), [len(x) for x in cols])
        return sp.csr_matrix((np.ones(rows.size, np.float32), (rows, np.concatenate(cols))), shape=(n, n_items))

    def _generate(self, view, targets, n_fake, n_filler, rng):
        c = self.config
        gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
        # the filler ratings come from their own stream, drawn user after user at the end: the first
        # m fake users of a run of n are then exactly a run of m (``prefix_stable``)
        rating_rng = np.random.default_rng(int(rng.integers(2**63)))
        base = view.matrix.copy()
        base.data = np.ones_like(base.data)
        n_normal, n_items = view.n_normal, view.n_items
        others = non_targets(view, targets)
        P = np.ones(n_items)
        chosen_rows: list[np.ndarray] = []
        self.poison_losses_: list[list[float]] = []
        self.target_hr_: list[float] = []
        pre = None  # the pre-poison surrogate state (warm starts)
        t0 = time.perf_counter()
        self.seconds_: list[float] = []  # wall time since the start when each fake user was finished
        with training_threads(True):
            for j in range(n_fake):
                # data: normal users, the finished fake users, and v = this fake user (targets only)
                fake_rows = self._rows(chosen_rows, targets, n_items)
                row_v = sp.csr_matrix((np.ones(len(targets), np.float32), (np.zeros(len(targets), int), targets)), shape=(1, n_items))
                m = sp.vstack([base, fake_rows, row_v], format="csr")
                v = m.shape[0] - 1
                if pre is None or c.fresh_surrogate:
                    model = _Surrogate(m.shape[0], n_items, c, gen)
                    model = self._pretrain(model, m, n_normal, c.wrmf_epochs if model.wrmf else c.pretrain_epochs, rng, c.select_epoch)
                else:
                    model = pre
                    model.add_user(gen)
                    self._pretrain(model, m, n_normal, c.wrmf_warm_epochs if model.wrmf else c.warm_epochs, rng, select=False)
                pre = copy.deepcopy(model)
                opt = self._optimizer(model)
                best_hr = self._hit_ratio(model, m, n_normal, targets, self.list_length())
                best_state = copy.deepcopy(model.state_dict())
                losses = []
                for _ in range(c.rounds):
                    losses.append(self._poison_round(model, opt, m, n_normal, targets, v, others, rng))
                    self._epoch(model, opt, m, rng)
                    hr = self._hit_ratio(model, m, n_normal, targets, self.list_length())
                    if hr > best_hr:
                        best_hr, best_state = hr, copy.deepcopy(model.state_dict())
                model.load_state_dict(best_state)
                self.poison_losses_.append(losses)
                self.target_hr_.append(best_hr)
                with torch.no_grad():
                    y_v = torch.sigmoid(model.all_logits(torch.tensor([v]))[0]).numpy().astype(np.float64)
                r = (y_v * P)[others]
                chosen = others[np.argsort(-r, kind="stable")[:n_filler]]
                P[chosen] *= c.delta
                if np.all(P[others] < 1):
                    P[:] = 1.0
                chosen_rows.append(chosen)
                self.seconds_.append(time.perf_counter() - t0)
        f_rows = np.repeat(np.arange(n_fake), [len(x) for x in chosen_rows])
        f_cols = np.concatenate(chosen_rows).astype(np.int64) if chosen_rows else np.zeros(0, np.int64)
        if view.implicit:
            vals = np.ones(f_cols.size)
        elif c.filler_ratings == "max":
            vals = np.full(f_cols.size, view.r_max)
        else:
            mean, std = view.item_stats()
            vals = view.to_scale(rating_rng.normal(mean[f_cols], std[f_cols]))
        rows = np.concatenate([f_rows, np.repeat(np.arange(n_fake), len(targets))])
        cols = np.concatenate([f_cols, np.tile(targets, n_fake)])
        data = np.concatenate([vals, np.full(n_fake * len(targets), 1.0 if view.implicit else view.r_max)])
        return sp.csr_matrix((data.astype(np.float32), (rows, cols)), shape=(n_fake, n_items))
