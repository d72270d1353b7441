"""Train / test splits.

:func:`leave_one_out` holds out each user's latest rating (seed 004 §"Metrics": "We split the
dataset using the leave-one-out method"; seed 002 and NCF use the latest interaction). Ties in time,
and data without timestamps, are broken at random with the given generator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .interactions import Interactions


@dataclass(frozen=True, eq=False)
class Split:
    """``train`` plus one held-out item per user (``test_items[u] == -1``: none held out)."""

    train: Interactions
    test_items: np.ndarray
    test_ratings: np.ndarray

    @property
    def test_users(self) -> np.ndarray:
        return np.flatnonzero(self.test_items >= 0)


def leave_one_out(data: Interactions, rng: np.random.Generator, min_ratings: int = 2) -> Split:
    """Hold out the latest rating of every user with at least ``min_ratings`` ratings."""
    m = data.matrix
    counts = np.diff(m.indptr)
    rows = np.repeat(np.arange(data.n_users), counts)
    tie = rng.random(m.nnz)
    when = data.timestamps.data if data.timestamps is not None else np.zeros(m.nnz)
    order = np.lexsort((tie, when, rows))  # grouped by row, latest last
    last = order[m.indptr[1:] - 1]  # position (in csr order) of each row's latest entry
    users = np.flatnonzero(counts >= min_ratings)
    held = last[users]
    test_items = np.full(data.n_users, -1, dtype=np.int64)
    test_ratings = np.full(data.n_users, np.nan)
    test_items[users] = m.indices[held]
    test_ratings[users] = m.data[held]
    keep = np.ones(m.nnz, dtype=bool)
    keep[held] = False
    train_m = _mask_entries(m, keep)
    ts = None
    if data.timestamps is not None:
        t = data.timestamps
        ts = _mask_entries(t, keep, offset=1.0)
    return Split(data.with_matrix(train_m, timestamps=ts), test_items, test_ratings)


def _mask_entries(m: sp.csr_matrix, keep: np.ndarray, offset: float = 0.0) -> sp.csr_matrix:
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))[keep]
    out = sp.csr_matrix((m.data[keep] + offset, (rows, m.indices[keep])), shape=m.shape)
    out.sort_indices()
    if offset:
        out.data -= offset
    return out
