"""The no-detector baseline and the two oracles every detection table carries (DESIGN.md, "Testing
shape"): ``perfect`` drops exactly the injected users, ``random`` drops as many users, chosen
uniformly at random among all users. They bound what a real detector can do: a detector worse than
``random`` at the same number of flags has learnt nothing.

Both oracles read the injected rows from the data (``Interactions.n_normal``), which only an
experiment knows; on a ratings file, ``recpoison detect`` places the users labelled fake last so
that the oracles see them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import check
from .base import DETECTORS, Detector


@dataclass(frozen=True)
class NoneConfig:
    pass


@DETECTORS.register("none", paper="(baseline)", summary="no detection stage: nobody is flagged or removed")
class NoDetector(Detector):
    Config = NoneConfig
    active = False

    def _flag(self, data, among):
        return np.zeros(data.n_users, dtype=bool)


@dataclass(frozen=True)
class PerfectConfig:
    pass


@DETECTORS.register("perfect", paper="(oracle, DESIGN.md)", summary="flags exactly the injected users (FPR = FNR = 0)")
class PerfectDetector(Detector):
    Config = PerfectConfig

    def _flag(self, data, among):
        return data.is_fake.copy()

    def score(self, data):
        return data.is_fake.astype(np.float64)


@dataclass(frozen=True)
class RandomConfig:
    seed: int = 0

    def __post_init__(self):
        check(self.seed >= 0, f"seed={self.seed} must be >= 0")


@DETECTORS.register(
    "random", paper="(oracle, DESIGN.md)", summary="flags as many users as were injected, uniformly at random"
)
class RandomDetector(Detector):
    Config = RandomConfig

    def _flag(self, data, among):
        rng = np.random.default_rng(self.config.seed)
        mask = np.zeros(data.n_users, dtype=bool)
        mask[rng.choice(data.n_users, size=data.n_fake, replace=False)] = True
        return mask
