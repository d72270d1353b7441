"""Train / test splits.

:func:`leave_one_out` holds out each user's latest rating (seed 004 §"Metrics": "We split the
dataset using the leave-one-out method"; seed 002 and NCF use the latest interaction). Ties in time,
and data without timestamps, are broken at random with the given generator.

:func:`split_out` holds out given (user, item) pairs instead: a data set that comes with its own
split (FilmTrust, :mod:`recpoison.datasets.filmtrust`) is split this way, the same for every seed.
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
    return _hold_out(data, users, last[users])


def split_out(data: Interactions, user_ids: np.ndarray, item_ids: np.ndarray) -> Split:
    """Hold out the given pairs of raw ids (at most one per user), e.g. a data set's own test file.

    Raises:
        DataError: a pair is not in ``data``, or a user appears twice.
    """
    from .errors import DataError

    m = data.matrix
    uid, iid = np.asarray(data.user_ids), np.asarray(data.item_ids)
    u_sorted, i_sorted = np.argsort(uid, kind="stable"), np.argsort(iid, kind="stable")
    rows = u_sorted[np.clip(np.searchsorted(uid, user_ids, sorter=u_sorted), 0, len(uid) - 1)]
    cols = i_sorted[np.clip(np.searchsorted(iid, item_ids, sorter=i_sorted), 0, len(iid) - 1)]
    found = (uid[rows] == user_ids) & (iid[cols] == item_ids)
    # csr position of each pair: entries keyed row-major (csr order, indices sorted within a row)
    keys = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr)) * m.shape[1] + m.indices
    want = rows.astype(np.int64) * m.shape[1] + cols
    j = np.clip(np.searchsorted(keys, want), 0, max(len(keys) - 1, 0))
    held = np.where(found & (len(keys) > 0) & (keys[j] == want), j, -1)
    if np.any(held < 0):
        k = int(np.flatnonzero(held < 0)[0])
        raise DataError(f"held-out pair (user {user_ids[k]}, item {item_ids[k]}) is not in the data set {data.name!r}")
    if len(np.unique(rows)) != len(rows):
        raise DataError(f"the given split of {data.name!r} holds out more than one rating of a user")
    return _hold_out(data, rows, held)


def _hold_out(data: Interactions, users: np.ndarray, held: np.ndarray) -> Split:
    """Split with the csr positions ``held`` (one per row in ``users``) held out."""
    m = data.matrix
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
