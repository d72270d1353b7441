"""MostPop: recommend the most popular items to everybody.

A non-personalised reference point (used as a baseline throughout the recommender literature, e.g.
Rendle et al., "BPR", UAI 2009, §6.2 "most-popular"): the score of item ``i`` for every user is its
popularity, the number of training users (normal and injected alike) who interacted with it::

    score(u, i) = |{v : (v, i) in E}|

so fake users who interact with a target raise it for everybody. ``recommend`` excludes the user's
own items as for every victim; ties are broken by item index (``topk_indices``). Implicit feedback:
any rating counts as one interaction (or ratings >= ``threshold``). There is nothing to learn
beyond the counts; ``seed`` exists only so that the model follows the common victim protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import check
from ..interactions import Interactions
from .base import VICTIMS, Recommender


@dataclass(frozen=True)
class MostPopConfig:
    """Hyper-parameters of :class:`MostPop` (none that change the model)."""

    seed: int = 0
    #: explicit ratings >= threshold become interactions; None: every rating (seed 003 App. A.5)
    threshold: float | None = None

    def __post_init__(self) -> None:
        check(self.seed >= 0, f"mostpop: seed={self.seed} must be >= 0")


@VICTIMS.register(
    "mostpop",
    paper="popularity baseline (e.g. Rendle et al., UAI 2009, §6.2)",
    summary="item popularity (interaction count, fake users included), same list for every user",
)
class MostPop(Recommender):
    """MostPop. Learned: ``popularity_`` (n_items,), interaction counts in the training data."""

    Config = MostPopConfig
    feedback = "implicit"

    def _fit(self, data: Interactions) -> None:
        self.popularity_ = np.bincount(data.matrix.indices, minlength=data.n_items).astype(np.float32)

    def _score(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.popularity_, (len(users), self.popularity_.size))
