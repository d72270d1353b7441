"""Average attack (Lam & Riedl, WWW 2004, "AverageBot").

Each fake user rates every target with the maximum rating and ``n_filler`` random filler items,
each rated from N(mu_i, sigma_i) — the mean and standard deviation of that item's ratings by normal
users — clipped and rounded to the scale.

Departure / ambiguity: seed 004 App. B describes AVERAGE as rating fillers with "completely random
ratings", which reads like the opposite of its description of RANDOM. We follow the cited original
(Lam & Riedl 2004, and Mobasher et al. 2007), where the average attack uses each item's mean rating;
that is also how seed 001 Algorithm 2 (line 7) disguises its fillers.
"""

from __future__ import annotations

from dataclasses import dataclass

from .base import ATTACKS, Attack, assemble, non_targets, sample_items


@dataclass(frozen=True)
class AverageConfig:
    pass


@ATTACKS.register(
    "average",
    paper="Lam & Riedl, WWW 2004 (seed 004 App. B)",
    summary="random fillers rated ~ N(item mean, item std); targets at r_max",
)
class AverageAttack(Attack):
    Config = AverageConfig

    def _generate(self, view, targets, n_fake, n_filler, rng):
        items = sample_items(rng, n_fake, non_targets(view, targets), n_filler)
        mean, std = view.item_stats()
        ratings = rng.normal(mean[items], std[items])
        return assemble(view, items, ratings, targets)
