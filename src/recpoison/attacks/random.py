"""Random attack (Lam & Riedl, WWW 2004, "RandomBot"; seed 004 App. B item 6; seed 002 §2).

Each fake user rates every target with the maximum rating and ``n_filler`` filler items chosen
uniformly at random, each rated from N(global mean, global std) of the normal users' ratings,
clipped and rounded to the scale ("a distribution that mimics the rating distribution in the overall
dataset"). On implicit data fillers are plain interactions (seed 003 §5.1.2 "Random").
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import ATTACKS, Attack, assemble, non_targets, sample_items


@dataclass(frozen=True)
class RandomConfig:
    pass


@ATTACKS.register(
    "random",
    paper="Lam & Riedl, WWW 2004 (seed 004 App. B)",
    summary="random fillers rated ~ N(global mean, global std); targets at r_max",
)
class RandomAttack(Attack):
    Config = RandomConfig

    def _generate(self, view, targets, n_fake, n_filler, rng):
        items = sample_items(rng, n_fake, non_targets(view, targets), n_filler)
        mu, sd = view.global_stats()
        ratings = rng.normal(mu, sd, size=items.shape)
        return assemble(view, items, ratings, targets)
