"""Co-visitation attack (Yang, Gong, Cai, "Fake Co-visitation Injection Attacks to Recommender
Systems", NDSS 2017), as seed 003 §5.1.2 uses it: a baseline profile generator ("the attacker finds
the proxy items to inject fake co-visitations by solving a standard linear programming problem").

The attacked system of Yang et al. is an item-to-item co-visitation recommender ("people who
viewed ``a`` also viewed ..."): item ``a``'s page lists the ``N`` items most often visited by the
same users as ``a``. A fake user who visits the target ``t`` and an anchor ``a`` adds one
co-visitation of ``(a, t)``. The attacker decides "1) which items ... to inject fake co-visitations
to, and 2) how many fake co-visitations ... to each item" by a constrained linear optimisation
(NDSS'17 abstract; REFERENCES.md §2.7, no public code). Our reading, on the attacker's view:

* co-visitation counts ``C[a, j]`` = the number of normal users who visited both ``a`` and ``j``
  (visits = the view's interactions, ratings ignored); ``s_a`` = the ``N``-th largest count of ``a``
  with a competitor (items other than ``a`` and the targets; ``N = list_length``);
* promoting ``t`` onto ``a``'s list needs ``c_at = max(0, s_a - C[a, t] + 1)`` fake co-visitations
  (then at most ``N - 1`` competitors count more than ``t``; several targets do not compete with
  each other for the ``N`` places in this count); pairs with ``c_at = 0`` are listed already
  (nothing to gain), pairs with ``c_at`` above the number of fake users cannot be promoted;
* value of promoting ``a``: ``w_a`` = ``a``'s number of visitors (``weight="popularity"``, default:
  the users who see ``a``'s page, i.e. the impressions of ``t``) or 1 (``weight="count"``: the
  number of promoted anchors); REFERENCES.md §2.7 allows both, which one Yang et al. use could not be
  checked; we take popularity because seed 003 applies the attack to reach users;
* the linear programme, over every target at once (each fake user visits all the targets, so an
  anchor visited by ``k_a`` fake users gains ``k_a`` co-visitations with each of them): with
  ``x_at`` in [0, 1] (target ``t`` promoted on ``a``'s list) and ``k_a`` in [0, m]::

      max  sum_{a,t} w_a x_at   s.t.  c_at x_at <= k_a  (each pair),   sum_a k_a <= m n,

  over the pairs with ``1 <= c_at <= m`` (``m`` fake users of ``n`` fillers each), solved by HiGHS's
  dual simplex (``scipy.optimize.linprog``; a vertex, deterministic). With one target it is the
  fractional knapsack (anchors in decreasing ``w_a / c_a``, the crossing one gets the remainder).
  Rounding: ``k_a`` down to a whole number of fake users. Ties between equally good plans are left
  to the solver (deterministic); the random stream only draws explicit ratings.

Fake profiles: every fake user visits every target and, as fillers, the anchors dealt to it.
Departures and choices (seed 003 is silent, each stated):

* An anchor's ``k_a <= m`` fake users are distinct users: the anchors' copies are laid out in
  decreasing ``w_a`` and dealt to the fake users in turn (copy ``p`` to user ``p mod m``, slot
  ``p // m``).
* The cost model counts only ``(a, t)`` co-visitations; a fake user who visits several anchors also
  co-visits them with each other, which can raise a competitor's count and keep ``t`` off a list the
  LP paid for (not modelled; with one filler per fake user, one fake co-visitation per target, the
  plan is exact, and a test checks it). On the planted test data this side effect undoes most of
  the plan once fake users hold several anchors.
* Filler slots left after the LP (its optimum can leave budget unused, and rounding frees some; the
  co-visitation objective has no use for them) top the non-target items up to ``m`` fake users
  each, in decreasing ``w_a``.
* Explicit data (our extension; seed 003 is click-only): targets get the maximum rating, anchors a
  rating from N(item mean, item std) as in the popular attack. On implicit data every visit is 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from ..config import check
from .base import ATTACKS, Attack

#: co-visitation rows computed at once (dense blocks of about this many counts)
_BLOCK = 2_000_000


@dataclass(frozen=True)
class CovisConfig:
    list_length: int = 10
    weight: Literal["popularity", "count"] = "popularity"

    def __post_init__(self) -> None:
        check(isinstance(self.list_length, int) and self.list_length >= 1,
              f"covis: list_length={self.list_length} must be an integer >= 1 (the length of an item's co-visitation list)")
        check(self.weight in ("popularity", "count"), f"covis: weight={self.weight!r}: use 'popularity' or 'count'")


def covisitation_needs(B: sp.csr_matrix, targets: np.ndarray, n_list: int) -> np.ndarray:
    """``c[a, k]``: fake co-visitations of ``(a, targets[k])`` that put ``targets[k]`` among the
    ``n_list`` items most co-visited with ``a`` (0: already there); targets' own rows are 0.

    ``B``: the 0/1 visits (users x items). Computed by dense blocks of rows of ``B^T B``."""
    B = sp.csr_matrix(B, dtype=np.float64)
    n_items = B.shape[1]
    Bt = B.T.tocsr()
    c_t = np.asarray((Bt @ B[:, targets]).todense())  # C[a, t]
    s = np.zeros(n_items)
    block = max(1, _BLOCK // max(n_items, 1))
    for start in range(0, n_items, block):
        rows = np.arange(start, min(n_items, start + block))
        C = np.asarray((Bt[rows] @ B).todense())
        C[np.arange(len(rows)), rows] = -1.0  # the item itself is no competitor
        C[:, targets] = -1.0
        kth = min(n_list, n_items) - 1
        s[rows] = np.maximum(-np.partition(-C, kth, axis=1)[:, kth], 0.0)
    need = np.maximum(s[:, None] - c_t + 1.0, 0.0)
    need[targets] = 0.0
    return need.astype(np.int64)


def covis_plan(need: np.ndarray, weight: np.ndarray, budget: int, cap: int) -> np.ndarray:
    """Fake users per item (whole numbers, at most ``cap``, summing to ``min(budget, cap * usable
    items)``): the LP of the module docstring on ``need`` (items x targets) and ``weight``, rounded
    down, then the budget left topping the items up to ``cap`` in decreasing ``weight`` (ties: lower
    index). Items with ``weight < 0`` (the targets) get nothing."""
    n_items = need.shape[0]
    k = np.zeros(n_items)
    feasible = (need >= 1) & (need <= cap) & (weight[:, None] > 0)
    a_idx, t_idx = np.nonzero(feasible)
    n_pairs = len(a_idx)
    if n_pairs and budget > 0:
        anchors, slot = np.unique(a_idx, return_inverse=True)
        n_k = len(anchors)
        cost = np.concatenate([-weight[a_idx], np.zeros(n_k)])
        rows = np.concatenate([np.arange(n_pairs), np.arange(n_pairs), np.full(n_k, n_pairs)])
        cols = np.concatenate([np.arange(n_pairs), n_pairs + slot, n_pairs + np.arange(n_k)])
        vals = np.concatenate([need[a_idx, t_idx].astype(np.float64), -np.ones(n_pairs), np.ones(n_k)])
        A = sp.csr_matrix((vals, (rows, cols)), shape=(n_pairs + 1, n_pairs + n_k))
        b = np.zeros(n_pairs + 1)
        b[-1] = budget
        bounds = np.concatenate([np.tile([0.0, 1.0], (n_pairs, 1)), np.tile([0.0, float(cap)], (n_k, 1))])
        res = linprog(cost, A_ub=A, b_ub=b, bounds=bounds, method="highs-ds")
        if res.status != 0:  # pragma: no cover - a bounded feasible LP always solves
            raise RuntimeError(f"covis: the linear programme failed ({res.message})")
        k[anchors] = res.x[n_pairs:]
    alloc = np.minimum(np.floor(k + 1e-7).astype(np.int64), cap)
    left = budget - int(alloc.sum())
    if left > 0:
        order = np.flatnonzero(weight >= 0)
        order = order[np.argsort(-weight[order], kind="stable")]
        room = cap - alloc[order]
        before = np.cumsum(room) - room
        alloc[order] += np.clip(left - before, 0, room)
    return alloc


def deal(alloc_order: np.ndarray, counts: np.ndarray, n_users: int, n_slots: int) -> np.ndarray:
    """(n_users, n_slots) items, -1 where empty: ``counts[k]`` copies of item ``alloc_order[k]`` laid
    out in order, copy ``p`` to user ``p mod n_users``, slot ``p // n_users`` (distinct users per item
    while ``counts <= n_users``)."""
    out = np.full((n_users, n_slots), -1, dtype=np.int64)
    copies = np.repeat(alloc_order, counts)[: n_users * n_slots]
    p = np.arange(len(copies))
    out[p % n_users, p // n_users] = copies
    return out


@ATTACKS.register(
    "covis",
    paper="Yang, Gong, Cai, NDSS 2017 (seed 003 §5.1.2 CoVis)",
    summary="fake co-visitations of the targets with anchors chosen by the LP (knapsack) of the co-visitation lists",
)
class CovisAttack(Attack):
    Config = CovisConfig

    def _generate(self, view, targets, n_fake, n_filler, rng):
        c = self.config
        B = view.binary()[: view.n_normal]
        need = covisitation_needs(B, targets, c.list_length)  # (n_items, |T|)
        visits = view.item_counts().astype(np.float64)
        weight = visits if c.weight == "popularity" else np.ones(view.n_items)
        weight = weight.copy()
        weight[targets] = -1.0  # never an anchor
        alloc = covis_plan(need, weight, n_fake * n_filler, n_fake)
        order = np.flatnonzero(alloc)
        order = order[np.argsort(-weight[order], kind="stable")]
        items = deal(order, alloc[order], n_fake, n_filler)
        self.allocation_ = items
        self.need_ = need
        filled = items >= 0
        rows = np.repeat(np.arange(n_fake), filled.sum(axis=1))
        cols = items[filled]
        mean, std = view.item_stats()
        vals = view.to_scale(rng.normal(mean[cols], std[cols])) if not view.implicit else np.ones(len(cols))
        t_rows = np.repeat(np.arange(n_fake), len(targets))
        t_cols = np.tile(targets, n_fake)
        t_vals = np.full(len(t_rows), 1.0 if view.implicit else view.r_max)
        m = sp.csr_matrix((np.concatenate([vals, t_vals]).astype(np.float32),
                           (np.concatenate([rows, t_rows]), np.concatenate([cols, t_cols]))), shape=(n_fake, view.n_items))
        m.sum_duplicates()
        return m
