"""Deterministic, order-independent random streams derived from one seed.

Every consumer asks for its own stream by name (``derive_rng(seed, "targets")``), so adding a new
consumer or running cells in another order never changes the numbers of the others.
"""

from __future__ import annotations

import zlib

import numpy as np


def _seq(seed: int, keys: tuple[str, ...]) -> np.random.SeedSequence:
    return np.random.SeedSequence(int(seed), spawn_key=tuple(zlib.crc32(k.encode()) for k in keys))


def derive_rng(seed: int, *keys: str) -> np.random.Generator:
    """A numpy Generator for the stream ``keys`` of ``seed``."""
    return np.random.default_rng(_seq(seed, keys))


def derive_seed(seed: int, *keys: str) -> int:
    """A 31-bit integer seed (for torch and component configs) for the stream ``keys``."""
    return int(_seq(seed, keys).generate_state(1)[0] & 0x7FFFFFFF)
