"""Popular attack (seed 003 §5.1.2, following Fang et al. 2018 and Yang et al. 2017).

"Each controlled user selects 10% popular items and 90% other random items as the proxy items."
Popular items are drawn per fake user from the ``popular_pool`` most-rated items (default: the top
10% of items by count, the pool seed 003 §4.2 uses for RAPU-R's proxy items).

On implicit data every chosen item is an interaction. On explicit data (seed 003 is click-only, so
this is our extension) filler ratings follow the average attack, N(item mean, item std), and targets
get the maximum rating.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import check
from .bandwagon import split_fillers
from .base import ATTACKS, Attack, assemble


@dataclass(frozen=True)
class PopularConfig:
    popular_fraction: float = 0.1
    pool_fraction: float = 0.1

    def __post_init__(self) -> None:
        check(0 <= self.popular_fraction <= 1, f"popular: popular_fraction={self.popular_fraction} must be in [0, 1]")
        check(0 < self.pool_fraction <= 1, f"popular: pool_fraction={self.pool_fraction} must be in (0, 1]")


@ATTACKS.register(
    "popular",
    paper="Zhang et al., KDD 2021 (seed 003 §5.1.2)",
    summary="10% fillers from the most popular items, 90% random",
)
class PopularAttack(Attack):
    Config = PopularConfig

    def _generate(self, view, targets, n_fake, n_filler, rng):
        c = self.config
        pool = max(1, int(round(c.pool_fraction * view.n_items)))
        sel, rest = split_fillers(view, targets, n_fake, n_filler, rng, c.popular_fraction, pool)
        items = np.concatenate([sel, rest], axis=1)
        mean, std = view.item_stats()
        ratings = rng.normal(mean[items], std[items])
        return assemble(view, items, ratings, targets)
