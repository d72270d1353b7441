"""A small synthetic ratings data set with known low-rank structure, for tests and quick runs.

Generative model (every step vectorised with numpy, fully determined by ``seed``):

* **Popularity.** Items get a random popularity rank ``rho_j`` in ``1..n_items``; their base exposure
  is ``pop_j ∝ rho_j^-popularity_exponent`` (a Zipf / power-law long tail, as observed in MovieLens
  and most rating data; cf. Celma, *Music Recommendation and Discovery*, 2010, ch. 4).
* **Preferences.** Users and items get Gaussian latent factors ``p_u, q_j`` of dimension ``rank``
  (the probabilistic matrix factorisation model of Salakhutdinov & Mnih, *PMF*, NIPS 2007), scaled
  so the affinity ``s_uj = p_u . q_j`` has unit variance.
* **Who rates what.** User ``u`` rates ``n_u`` distinct items drawn without replacement with
  probability ``∝ pop_j * exp(AFFINITY * s_uj)`` (Gumbel top-k sampling; Kool et al., ICML 2019):
  ratings are missing not at random, so the items a user will rate next are predictable from the
  factors and a low-rank recommender beats both random and popularity ranking on held-out
  interactions. ``n_u`` is log-normal around ``density * n_items`` and never below 3.
* **Ratings.** ``lo + (hi - lo) * Phi(z_uj)`` rounded to integers, where ``z_uj`` is ``s_uj + noise``
  (``noise ~ N(0, 0.3^2)``) standardised over the observed pairs and shifted by 0.3, and ``Phi`` is
  the standard normal CDF: higher affinity gives higher stars; on 1..5 about 6/22/27/28/18 % of
  the ratings are 1..5 stars (mean about 3.3; MovieLens-100K: 6/11/27/34/21 %, mean 3.53).
* **Timestamps.** Each user is active over a random window within 2000-2003; each rating gets a
  uniformly drawn second in that window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.special import ndtr

from ..config import build_config, check
from ..interactions import Interactions
from ..seeding import derive_rng

#: Strength of the affinity in the choice of rated items (log-odds per unit of affinity).
AFFINITY = 2.5
#: Standard deviation of the rating noise, on the affinity scale.
NOISE = 0.3
#: Location of the standardised affinity before the normal CDF maps it onto the scale.
RATING_SHIFT = 0.3
#: Minimum number of ratings per user.
MIN_PER_USER = 3
_T0 = 946_684_800  # 2000-01-01T00:00:00Z
_SPAN = 3 * 365 * 86_400
_BLOCK = 1 << 22  # entries of the users x items key matrix built at once


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of :func:`make_synthetic` (validated by ``load("synthetic", ...)``)."""

    n_users: int = 200
    n_items: int = 300
    density: float = 0.05
    rank: int = 8
    rating_scale: tuple | list | str = (1, 5)
    implicit: bool = False
    popularity_exponent: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        check(self.n_users >= 1, f"synthetic: n_users={self.n_users} must be >= 1")
        check(
            self.n_items >= MIN_PER_USER,
            f"synthetic: n_items={self.n_items} must be >= {MIN_PER_USER} "
            f"(each user rates at least {MIN_PER_USER})",
        )
        check(0.0 < self.density <= 1.0, f"synthetic: density={self.density} must be in (0, 1]")
        check(self.rank >= 1, f"synthetic: rank={self.rank} must be >= 1")
        check(
            self.popularity_exponent >= 0.0,
            f"synthetic: popularity_exponent={self.popularity_exponent} must be >= 0",
        )
        scale = self.rating_scale
        if isinstance(scale, str):  # "1,5" from the command line
            scale = tuple(x for x in scale.replace(" ", "").strip("()[]").split(",") if x)
        try:
            lo, hi = (float(x) for x in scale)
        except (TypeError, ValueError):
            check(False, f"synthetic: rating_scale={self.rating_scale!r} must be a pair (min, max)")
        check(
            0 < lo < hi,
            f"synthetic: rating_scale={self.rating_scale!r} needs 0 < min < max (0 means 'not rated')",
        )
        check(
            lo == round(lo) and hi == round(hi),
            f"synthetic: rating_scale={self.rating_scale!r} must have integer bounds",
        )
        object.__setattr__(self, "rating_scale", (lo, hi))


def _sample_items(
    rng: np.random.Generator, p: np.ndarray, q: np.ndarray, log_pop: np.ndarray, n_per_user: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Gumbel top-k: for each user, ``n_u`` distinct items drawn ∝ exp(logit). Returns (rows, cols)."""
    n_users, n_items = p.shape[0], q.shape[0]
    rows_out, cols_out = [], []
    block = max(1, _BLOCK // n_items)
    for start in range(0, n_users, block):  # blocks of users bound the memory, not a per-user loop
        stop = min(n_users, start + block)
        keys = AFFINITY * (p[start:stop] @ q.T) + log_pop
        keys += rng.gumbel(size=keys.shape)
        kmax = int(n_per_user[start:stop].max())
        top = np.argpartition(-keys, kmax - 1, axis=1)[:, :kmax] if kmax < n_items else np.tile(
            np.arange(n_items), (stop - start, 1)
        )
        top_keys = np.take_along_axis(keys, top, axis=1)
        order = np.take_along_axis(top, np.argsort(-top_keys, axis=1, kind="stable"), axis=1)
        take = np.arange(kmax)[None, :] < n_per_user[start:stop, None]
        r, k = np.nonzero(take)
        rows_out.append(r + start)
        cols_out.append(order[r, k])
    return np.concatenate(rows_out), np.concatenate(cols_out)


def make_synthetic(
    n_users: int = 200,
    n_items: int = 300,
    density: float = 0.05,
    rank: int = 8,
    rating_scale: tuple[float, float] = (1, 5),
    implicit: bool = False,
    popularity_exponent: float = 1.0,
    seed: int = 0,
) -> Interactions:
    """A synthetic ``n_users x n_items`` data set (see the module docstring for the model).

    The result has exactly the requested shape, about ``density * n_users * n_items`` ratings, at
    least 3 per user, integer ratings on ``rating_scale`` (``rating_step`` 1.0) or implicit 1s, and
    synthetic Unix timestamps. The same arguments always give the same data.
    """
    cfg = SyntheticConfig(
        n_users=n_users, n_items=n_items, density=density, rank=rank, rating_scale=rating_scale,
        implicit=implicit, popularity_exponent=popularity_exponent, seed=seed,
    )
    lo, hi = cfg.rating_scale
    rng = derive_rng(cfg.seed, "synthetic")

    # popularity: power law over a random ranking of the items
    pop_rank = rng.permutation(cfg.n_items) + 1.0
    log_pop = -cfg.popularity_exponent * np.log(pop_rank)
    log_pop -= log_pop.max()

    # low-rank factors with unit-variance affinities p_u . q_j
    p = rng.standard_normal((cfg.n_users, cfg.rank)) / np.sqrt(cfg.rank)
    q = rng.standard_normal((cfg.n_items, cfg.rank))

    # ratings per user: log-normal around density * n_items, clipped to [3, n_items]
    target = cfg.density * cfg.n_items
    raw = np.exp(rng.normal(0.0, 0.6, size=cfg.n_users))
    n_per_user = np.clip(np.rint(raw / raw.mean() * target), MIN_PER_USER, cfg.n_items).astype(np.int64)

    rows, cols = _sample_items(rng, p, q, log_pop, n_per_user)
    affinity = np.einsum("nk,nk->n", p[rows], q[cols])
    noisy = affinity + NOISE * rng.standard_normal(affinity.shape)
    if cfg.implicit:
        values = np.ones(rows.shape, dtype=np.float32)
    else:
        # standardise over the observed pairs (their affinity is biased upwards by the selection),
        # then shift so the star distribution resembles MovieLens' (mean about 3.5 on 1..5)
        z = (noisy - noisy.mean()) / max(float(noisy.std()), 1e-12) + RATING_SHIFT
        values = np.clip(np.rint(lo + (hi - lo) * ndtr(z)), lo, hi).astype(np.float32)

    start = rng.uniform(0, _SPAN * 0.75, size=cfg.n_users)
    length = rng.uniform(0.02, 0.25, size=cfg.n_users) * _SPAN
    ts = np.floor(_T0 + start[rows] + rng.uniform(size=rows.shape) * length[rows])

    shape = (cfg.n_users, cfg.n_items)
    mat = sp.csr_matrix((values, (rows, cols)), shape=shape)
    tsm = sp.csr_matrix((ts, (rows, cols)), shape=shape)
    mat.sort_indices()
    tsm.sort_indices()
    return Interactions(
        mat,
        rating_scale=(1.0, 1.0) if cfg.implicit else (lo, hi),
        rating_step=None if cfg.implicit else 1.0,
        implicit=cfg.implicit,
        user_ids=np.arange(cfg.n_users),
        item_ids=np.arange(cfg.n_items),
        timestamps=tsm,
        name="synthetic",
    )


def load_synthetic(**params) -> Interactions:
    """Registry factory: validate ``params`` (unknown ones raise ``ConfigError``) and generate."""
    cfg = build_config(SyntheticConfig, params, owner="dataset 'synthetic'")
    return make_synthetic(**{f: getattr(cfg, f) for f in cfg.__dataclass_fields__})
