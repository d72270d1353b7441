"""Bandwagon attack (Burke, Mobasher et al. 2005; seed 002 §2).

"Besides giving high ratings to the target item, [a profile] also contains only high values for
selected popular [items] and random values to some filler items" (seed 002 §2). Each fake user
rates every target and ``n_selected`` popular items with the maximum rating, and the remaining
``n_filler - n_selected`` fillers, drawn uniformly from the other items, from N(global mean, global
std) as the random attack does.

Choices where the seeds are silent: the selected items are drawn per fake user from the
``popular_pool`` most-rated items among normal users (default 50), and ``n_selected`` defaults to
10% of the filler budget (at least 1), the fraction seed 003 uses for popular items.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import check
from .base import ATTACKS, Attack, assemble, sample_items


@dataclass(frozen=True)
class BandwagonConfig:
    popular_fraction: float = 0.1
    popular_pool: int = 50

    def __post_init__(self) -> None:
        check(0 <= self.popular_fraction <= 1, f"bandwagon: popular_fraction={self.popular_fraction} must be in [0, 1]")
        check(self.popular_pool >= 1, f"bandwagon: popular_pool={self.popular_pool} must be >= 1")


def popular_items(view, targets: np.ndarray, pool: int) -> np.ndarray:
    """The ``pool`` items most rated by normal users, targets excluded (ties: lower index)."""
    counts = view.item_counts().astype(np.float64)
    counts[targets] = -1
    order = np.lexsort((np.arange(len(counts)), -counts))
    return order[: min(pool, view.n_items - len(targets))]


def split_fillers(view, targets, n_fake, n_filler, rng, fraction, pool):
    """Per fake user: ``round(fraction * n_filler)`` (>= 1 if any) popular items + random others."""
    n_sel = min(n_filler, int(round(fraction * n_filler)))
    if fraction > 0 and n_filler > 0:
        n_sel = max(1, n_sel)
    pop = popular_items(view, targets, pool)
    sel = sample_items(rng, n_fake, pop, n_sel)
    # random fillers from the items that are neither targets nor this row's selected items
    keys = rng.random((n_fake, view.n_items))
    keys[:, targets] = -1.0
    np.put_along_axis(keys, sel, -1.0, axis=1)
    n_rest = min(n_filler - sel.shape[1], view.n_items - len(targets) - sel.shape[1])
    rest = np.argpartition(-keys, max(n_rest - 1, 0), axis=1)[:, :n_rest] if n_rest > 0 else np.zeros((n_fake, 0), dtype=np.int64)
    return sel, rest


@ATTACKS.register(
    "bandwagon",
    paper="Burke et al. 2005 (seed 002 §2)",
    summary="popular items and targets at r_max, random fillers ~ N(global mean, std)",
)
class BandwagonAttack(Attack):
    Config = BandwagonConfig

    def _generate(self, view, targets, n_fake, n_filler, rng):
        c = self.config
        sel, rest = split_fillers(view, targets, n_fake, n_filler, rng, c.popular_fraction, c.popular_pool)
        mu, sd = view.global_stats()
        items = np.concatenate([sel, rest], axis=1)
        ratings = np.concatenate(
            [np.full(sel.shape, view.r_max), rng.normal(mu, sd, size=rest.shape)], axis=1
        )
        return assemble(view, items, ratings, targets)
