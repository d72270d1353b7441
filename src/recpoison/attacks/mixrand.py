"""MixRand: Usermix fake users with the targets at the maximum rating (Wu, Lian, Ge, Zhu, Chen,
"Influence-Driven Data Poisoning for Robust Recommender Systems", IEEE TPAMI 2023; seed 004 App. B
item 5: "a non-influential version of Infmix that uses Usermix to generate users and assigns the
maximum rating directly to target items"; REFERENCES.md §5.6).

Usermix (Wu et al.: "fusing users' interests through linear interpolation of two rating vectors").
Wu's repository (Daftstone/Inf_recommender) calls ``generate_mixfake`` / ``random_mask`` but does
not contain them, so the generator is rebuilt from the description. Each fake user:

1. two distinct real users ``a != b``, drawn uniformly among the view's normal users;
2. ``lambda ~ U(0, 1)`` (``mix="uniform"``, the default), or ``lambda ~ Beta(alpha, alpha)``
   (``mix="beta"``, the mixup-style alternative of Zhang et al. 2017; ``alpha`` default 0.2, inside
   the range [0.1, 0.4] mixup uses on ImageNet). REFERENCES §5.6 records both readings; the paper's
   distribution could not be checked here;
3. ``x = lambda r_a + (1 - lambda) r_b`` on the union of the two users' rated **non-target** items,
   rounded to the view's rating grid (``Interactions.to_scale``: clip into the scale, round to the
   step; numpy rounds halves to even);
4. keep ``n_filler`` of these entries chosen uniformly at random (all of them when the union is
   smaller; Wu's ``random_mask`` keeps ``filler_size`` = the mean number of ratings per user, which
   is what the pipeline passes as ``n_filler``);
5. every target at ``r_max`` (MixRand; Wu's ``poison_user[:, target_item] = 1.`` on the normalised
   scale).

The interpolation rule (``missing``), a choice the description leaves open. In a sparse rating
vector an unrated item is stored as 0, so the literal interpolation gives an item that only ``a``
rated the value ``lambda r_a``: on a 1-5 star grid that rounds to 1 (a dislike) or to 0 (no rating)
for most ``lambda``, which turns most of the mix into low ratings, because two users share few of
their items (ML-100K, random pairs: 19 common items in a union of 196 on average, 9 %). Measured on
ML-100K (28 fake users, 106 fillers): the kept fillers average 3.50 stars under ``"other"`` (real
ratings: 3.53) and 2.37 under ``"zero"``. Seed 004 itself warns that "items with a rating of 0 do
not necessarily denote a low rating" and that convex combinations of rating vectors break their
sparsity. Hence:

* ``missing="other"`` (default): an unrated entry is *unknown*, not 0. On the intersection of the
  two users' items ``x_j = lambda r_aj + (1 - lambda) r_bj``; an item only one of them rated keeps
  that user's rating (the missing side takes the other side's value, i.e. the interpolation of the
  two vectors after filling each one's gaps from the other). Every value is a convex combination of
  on-scale ratings, so it stays in the scale and only rounding to the grid is needed.
* ``missing="zero"``: the vectors as written, 0 for unrated (Wu's code on its normalised, unrounded
  scale presumably does this). An entry whose value rounds below ``r_min`` on the grid (or lies below
  ``r_min`` on a continuous scale) is dropped as unrated; the rest is rounded and clipped into the
  scale (so ``lambda r_a`` between half a step below ``r_min`` and ``r_min`` becomes ``r_min``).

On implicit data every rating is 1 and both rules give the union of the two users' items.

Randomness and ``prefix_stable``. Each fake user draws one block of ``3 + n_items`` uniforms from
``rng``, in the order of the users: the pair (``a = floor(u_0 n)``, ``b = floor(u_1 (n - 1))``,
``b += b >= a``), ``lambda`` (``u_2``, or its Beta inverse CDF) and one random key per item, the
kept entries being those of the union with the smallest keys (a uniform subset). The blocks are
drawn row after row (in chunks of bounded memory, which does not change the stream), so the first m
fake users of a run of n are exactly a run of m. The drawn pairs and lambdas are recorded on the
attack as ``pairs_`` (``n_fake x 2`` row indices into the view) and ``lambdas_``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import scipy.sparse as sp
from scipy.special import betaincinv

from ..config import check
from ..errors import ConfigError
from ..interactions import Interactions
from .base import ATTACKS, Attack

Mix = Literal["uniform", "beta"]
Missing = Literal["other", "zero"]

#: uniforms drawn per chunk of rows (bounds the memory of the per-user random blocks)
_CHUNK_ENTRIES = 1 << 22


@dataclass(frozen=True)
class UsermixSample:
    """Usermix rows: ``fillers`` (csr, ``n_rows x n_items``, non-target entries on the view's scale,
    targets not set), the real-user ``pairs`` (``n_rows x 2``) and ``lambdas`` (``n_rows``)."""

    fillers: sp.csr_matrix
    pairs: np.ndarray
    lambdas: np.ndarray


def _check_mix(owner: str, mix: str, alpha: float, missing: str) -> None:
    check(mix in ("uniform", "beta"), f"{owner}: mix={mix!r} must be 'uniform' (lambda ~ U(0, 1)) or 'beta' (Beta(alpha, alpha))")
    check(alpha > 0, f"{owner}: alpha={alpha} must be positive")
    check(missing in ("other", "zero"), f"{owner}: missing={missing!r} must be 'other' (an item one user rated keeps that rating) or 'zero' (unrated = 0)")


def _interpolate(A: sp.csr_matrix, B: sp.csr_matrix, lam: np.ndarray, missing: str) -> sp.csr_matrix:
    """Row-wise mix of ``A`` and ``B`` (csr, float64, positive values = ratings) by ``lam``."""
    Ia = A.copy()
    Ia.data = np.ones_like(Ia.data)
    Ib = B.copy()
    Ib.data = np.ones_like(Ib.data)
    A_both = sp.csr_matrix(A.multiply(Ib))  # a's ratings on the items both rated
    B_both = sp.csr_matrix(B.multiply(Ia))
    both = sp.diags(lam) @ A_both + sp.diags(1.0 - lam) @ B_both
    A_only, B_only = A - A_both, B - B_both  # exact: values cancel on the intersection
    if missing == "zero":
        only = sp.diags(lam) @ A_only + sp.diags(1.0 - lam) @ B_only
    else:
        only = A_only + B_only
    X = sp.csr_matrix(both + only)  # disjoint patterns: the sum only merges them
    X.eliminate_zeros()
    X.sort_indices()
    return X


def _on_grid(view: Interactions, X: sp.csr_matrix, missing: str) -> sp.csr_matrix:
    """Round ``X``'s values to the view's grid; with ``missing="zero"`` drop those below ``r_min``."""
    if view.implicit:
        X = X.copy()
        X.data = np.ones_like(X.data)
        return X
    if missing == "zero":
        lo = view.r_min
        v = X.data
        if view.rating_step:
            v = lo + np.round((v - lo) / view.rating_step) * view.rating_step
        X = X.copy()
        X.data = np.where(v >= lo - 1e-9, X.data, 0.0)
        X.eliminate_zeros()
    X = X.copy()
    X.data = view.to_scale(X.data)
    return X


def _keep_random(X: sp.csr_matrix, keys: np.ndarray, n_keep: int) -> sp.csr_matrix:
    """Per row of ``X``, the ``n_keep`` stored entries with the smallest ``keys[row, item]``."""
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    k = keys[rows, X.indices]
    order = np.lexsort((k, rows))
    rank = np.arange(X.nnz) - X.indptr[rows[order]]
    keep = np.zeros(X.nnz, dtype=bool)
    keep[order[rank < n_keep]] = True
    out = sp.csr_matrix((X.data[keep], (rows[keep], X.indices[keep])), shape=X.shape)
    out.sort_indices()
    return out


def usermix(
    view: Interactions,
    targets: np.ndarray,
    n_rows: int,
    n_filler: int,
    rng: np.random.Generator,
    mix: str = "uniform",
    alpha: float = 0.2,
    missing: str = "other",
) -> UsermixSample:
    """``n_rows`` Usermix users (see the module docstring), drawn row after row from ``rng``.

    Each row consumes ``3 + view.n_items`` uniforms, whatever ``n_rows``, so the first m rows of a
    call for n rows are a call for m rows (prefix stability) and a call for ``n_1`` rows followed by
    one for ``n_2`` gives the rows of one call for ``n_1 + n_2``.
    """
    n = int(view.n_normal)
    if n < 2:
        raise ConfigError(f"usermix: needs at least two real users to mix, the view has {n}")
    n_items = view.n_items
    targets = np.asarray(targets, dtype=np.int64)
    keep_cols = np.ones(n_items, dtype=np.float64)
    keep_cols[targets] = 0.0
    R = sp.csr_matrix(view.matrix[:n], dtype=np.float64) @ sp.diags(keep_cols)
    R = sp.csr_matrix(R)
    R.eliminate_zeros()
    width = 3 + n_items
    step = max(1, _CHUNK_ENTRIES // width)
    parts, pairs, lams = [], [], []
    for start in range(0, n_rows, step):
        m = min(step, n_rows - start)
        U = rng.random((m, width))
        a = np.minimum((U[:, 0] * n).astype(np.int64), n - 1)
        b = np.minimum((U[:, 1] * (n - 1)).astype(np.int64), n - 2)
        b = b + (b >= a)
        lam = U[:, 2] if mix == "uniform" else betaincinv(alpha, alpha, U[:, 2])
        X = _on_grid(view, _interpolate(R[a], R[b], lam, missing), missing)
        parts.append(_keep_random(X, U[:, 3:], n_filler))
        pairs.append(np.stack([a, b], axis=1))
        lams.append(np.asarray(lam, dtype=np.float64))
    if not parts:
        return UsermixSample(sp.csr_matrix((0, n_items), dtype=np.float64), np.zeros((0, 2), dtype=np.int64), np.zeros(0))
    return UsermixSample(sp.vstack(parts, format="csr"), np.concatenate(pairs), np.concatenate(lams))


def with_targets(view: Interactions, fillers: sp.csr_matrix, targets: np.ndarray) -> sp.csr_matrix:
    """Fake rows: ``fillers`` (no target entries) plus every target at ``r_max`` (1 if implicit)."""
    n_rows = fillers.shape[0]
    r_t = 1.0 if view.implicit else view.r_max
    T = sp.csr_matrix(
        (np.full(n_rows * len(targets), r_t), (np.repeat(np.arange(n_rows), len(targets)), np.tile(targets, n_rows))),
        shape=fillers.shape,
    )
    out = sp.csr_matrix(fillers + T, dtype=np.float32)
    out.sort_indices()
    return out


@dataclass(frozen=True)
class MixRandConfig:
    #: distribution of lambda: "uniform" (U(0, 1)) or "beta" (Beta(alpha, alpha), mixup-style)
    mix: Mix = "uniform"
    alpha: float = 0.2
    #: "other": an item only one of the two users rated keeps that rating; "zero": unrated = 0
    missing: Missing = "other"

    def __post_init__(self) -> None:
        _check_mix("mixrand", self.mix, self.alpha, self.missing)


@ATTACKS.register(
    "mixrand",
    paper="Wu, Lian, Ge, Zhu, Chen, IEEE TPAMI 2023 (seed 004 App. B)",
    summary="Usermix users (interpolated pairs of real users) with the targets at r_max",
)
class MixRandAttack(Attack):
    Config = MixRandConfig
    prefix_stable = True  # one block of uniforms per fake user, in order

    def _generate(self, view, targets, n_fake, n_filler, rng):
        c = self.config
        s = usermix(view, targets, n_fake, n_filler, rng, c.mix, c.alpha, c.missing)
        self.pairs_, self.lambdas_ = s.pairs, s.lambdas
        return with_targets(view, s.fillers, targets)
