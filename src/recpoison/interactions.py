"""The one data type every component speaks: :class:`Interactions`.

A users x items ``scipy.sparse.csr_matrix`` of ratings (implicit feedback is stored as 1.0), the
rating scale, the raw ids of users and items, optional timestamps, and ``n_normal``: rows below it
are real users, rows from it on were injected. Orientation is always users x items and is asserted
at construction (DESIGN.md: one orientation, asserted at every public boundary).

Instances are immutable: the sparse arrays are made read-only, so a component that tries to modify
its input fails loudly instead of corrupting an experiment.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import scipy.sparse as sp

from .errors import ConfigError, DataError


def _freeze(m: sp.csr_matrix) -> sp.csr_matrix:
    for arr in (m.data, m.indices, m.indptr):
        arr.flags.writeable = False
    return m


def _canonical(m: sp.spmatrix, dtype: type = np.float32) -> sp.csr_matrix:
    m = sp.csr_matrix(m, dtype=dtype, copy=True)
    m.sum_duplicates()
    m.sort_indices()
    m.eliminate_zeros()
    return m


@dataclass(frozen=True, eq=False)
class Interactions:
    """Users x items ratings. Build with :meth:`from_arrays` or :meth:`from_matrix`.

    Attributes:
        matrix: ``csr_matrix`` (n_users x n_items, float32); a stored zero never means a rating.
        rating_scale: ``(min, max)`` of valid ratings; ``(1, 1)`` for implicit data.
        rating_step: ratings are multiples of this step above ``min`` (1.0 for 1..5 stars);
            ``None`` for continuous scales.
        implicit: True when every stored value is 1 (clicks, views).
        n_normal: rows ``< n_normal`` are real users, rows ``>= n_normal`` are injected.
        user_ids, item_ids: raw ids in the source data, one per row / column.
        timestamps: optional csr with the same sparsity pattern as ``matrix`` (seconds).
        name: the data set's name, for reports.
    """

    matrix: sp.csr_matrix
    rating_scale: tuple[float, float] = (1.0, 5.0)
    rating_step: float | None = 1.0
    implicit: bool = False
    n_normal: int = -1
    user_ids: np.ndarray = field(default=None)  # type: ignore[assignment]
    item_ids: np.ndarray = field(default=None)  # type: ignore[assignment]
    timestamps: sp.csr_matrix | None = None
    name: str = "data"

    def __post_init__(self) -> None:
        m = self.matrix
        if not sp.issparse(m):
            raise TypeError("Interactions.matrix must be a scipy.sparse matrix (users x items)")
        if not (isinstance(m, sp.csr_matrix) and m.dtype == np.float32 and m.has_canonical_format):
            m = _canonical(m)
        object.__setattr__(self, "matrix", _freeze(m))
        n_users, n_items = m.shape
        if self.n_normal < 0:
            object.__setattr__(self, "n_normal", n_users)
        if not 0 <= self.n_normal <= n_users:
            raise ValueError(f"n_normal={self.n_normal} outside [0, {n_users}]")
        lo, hi = (float(x) for x in self.rating_scale)
        if lo > hi:
            raise ValueError(f"rating_scale {self.rating_scale} has min > max")
        object.__setattr__(self, "rating_scale", (lo, hi))
        uid = np.arange(n_users) if self.user_ids is None else np.asarray(self.user_ids)
        iid = np.arange(n_items) if self.item_ids is None else np.asarray(self.item_ids)
        if uid.shape != (n_users,) or iid.shape != (n_items,):
            raise ValueError(
                f"id arrays of shape {uid.shape}, {iid.shape} do not match matrix {m.shape}"
            )
        uid.flags.writeable = False
        iid.flags.writeable = False
        object.__setattr__(self, "user_ids", uid)
        object.__setattr__(self, "item_ids", iid)
        if self.timestamps is not None:
            ts = sp.csr_matrix(self.timestamps, dtype=np.float64, copy=True)
            ts.sort_indices()
            if ts.shape != m.shape or ts.nnz != m.nnz or not np.array_equal(ts.indices, m.indices):
                raise ValueError("timestamps must have the sparsity pattern of the ratings")
            object.__setattr__(self, "timestamps", _freeze(ts))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_arrays(
        cls,
        users: Sequence,
        items: Sequence,
        ratings: Sequence[float] | None = None,
        *,
        timestamps: Sequence[float] | None = None,
        rating_scale: tuple[float, float] | None = None,
        rating_step: float | None = 1.0,
        implicit: bool = False,
        name: str = "data",
    ) -> "Interactions":
        """Build from parallel arrays of raw user ids, raw item ids and ratings.

        Raw ids are mapped to contiguous indices in sorted order; duplicate (user, item) pairs
        keep the latest rating (by timestamp when given, else the last occurrence).
        """
        users = np.asarray(users)
        items = np.asarray(items)
        if users.shape != items.shape or users.ndim != 1:
            raise DataError("users and items must be 1-d arrays of the same length")
        n = len(users)
        r = np.ones(n, dtype=np.float64) if ratings is None else np.asarray(ratings, dtype=np.float64)
        if r.shape != (n,):
            raise DataError("ratings must have one value per (user, item) pair")
        if n and not np.all(np.isfinite(r)):
            raise DataError("ratings contain NaN or infinite values")
        uid, u = np.unique(users, return_inverse=True)
        iid, i = np.unique(items, return_inverse=True)
        order = np.arange(n)
        ts = None if timestamps is None else np.asarray(timestamps, dtype=np.float64)
        if ts is not None:
            order = np.lexsort((order, ts))
        # keep the last (latest) occurrence of each pair
        key = u[order].astype(np.int64) * len(iid) + i[order]
        _, last = np.unique(key[::-1], return_index=True)
        keep = order[::-1][last]
        u, i, r = u[keep], i[keep], r[keep]
        if implicit:
            r = np.ones_like(r)
        if rating_scale is None:
            rating_scale = (1.0, 1.0) if implicit or n == 0 else (float(r.min()), float(r.max()))
        shape = (len(uid), len(iid))
        mat = sp.csr_matrix((r.astype(np.float32), (u, i)), shape=shape)
        tsm = None
        if ts is not None:
            # +1 keeps a timestamp of 0 from being dropped as a structural zero
            tsm = sp.csr_matrix((ts[keep] + 1.0, (u, i)), shape=shape)
            tsm.sort_indices()
            tsm.data -= 1.0
        return cls(
            mat,
            rating_scale=rating_scale,
            rating_step=None if implicit else rating_step,
            implicit=implicit,
            user_ids=uid,
            item_ids=iid,
            timestamps=tsm,
            name=name,
        )

    @classmethod
    def from_matrix(cls, matrix, **kwargs) -> "Interactions":
        """Build from a dense or sparse users x items matrix (zeros are 'not rated')."""
        m = sp.csr_matrix(matrix) if not sp.issparse(matrix) else matrix
        return cls(m, **kwargs)

    # ------------------------------------------------------------------ basic facts
    @property
    def shape(self) -> tuple[int, int]:
        return self.matrix.shape

    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    @property
    def nnz(self) -> int:
        return self.matrix.nnz

    @property
    def n_fake(self) -> int:
        return self.n_users - self.n_normal

    @property
    def is_fake(self) -> np.ndarray:
        """Boolean mask over rows: True for injected users."""
        return np.arange(self.n_users) >= self.n_normal

    @property
    def r_max(self) -> float:
        return self.rating_scale[1]

    @property
    def r_min(self) -> float:
        return self.rating_scale[0]

    def __repr__(self) -> str:
        kind = "implicit" if self.implicit else f"ratings {self.rating_scale}"
        return (
            f"Interactions({self.name!r}: {self.n_users} users ({self.n_fake} injected) x "
            f"{self.n_items} items, {self.nnz} entries, {kind})"
        )

    def binary(self) -> sp.csr_matrix:
        """The 0/1 pattern of the matrix (float32 csr)."""
        b = self.matrix.copy()
        b.data = np.ones_like(b.data)
        return b

    def normal(self) -> "Interactions":
        """The real users only (rows below ``n_normal``)."""
        return self.select_users(np.arange(self.n_normal))

    # ------------------------------------------------------------------ statistics of normal users
    def item_counts(self, normal_only: bool = True) -> np.ndarray:
        m = self.matrix[: self.n_normal] if normal_only else self.matrix
        return np.diff(m.tocsc().indptr).astype(np.int64)

    def item_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-item mean and standard deviation of ratings by normal users.

        Items nobody rated get the global mean and standard deviation.
        """
        m = self.matrix[: self.n_normal]
        cnt = np.diff(m.tocsc().indptr).astype(np.float64)
        s = np.asarray(m.sum(axis=0)).ravel().astype(np.float64)
        sq = np.asarray(m.multiply(m).sum(axis=0)).ravel().astype(np.float64)
        gmean, gstd = self.global_stats()
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(cnt > 0, s / np.maximum(cnt, 1), gmean)
            var = np.where(cnt > 1, sq / np.maximum(cnt, 1) - mean**2, gstd**2)
        return mean, np.sqrt(np.maximum(var, 0.0))

    def global_stats(self) -> tuple[float, float]:
        """Mean and standard deviation of all ratings by normal users."""
        d = self.matrix[: self.n_normal].data.astype(np.float64)
        if d.size == 0:
            return float(np.mean(self.rating_scale)), 0.0
        return float(d.mean()), float(d.std())

    # ------------------------------------------------------------------ ratings on the scale
    def to_scale(self, values: np.ndarray) -> np.ndarray:
        """Clip ``values`` to the rating scale and round them to its step."""
        lo, hi = self.rating_scale
        v = np.clip(np.asarray(values, dtype=np.float64), lo, hi)
        if self.rating_step:
            v = lo + np.round((v - lo) / self.rating_step) * self.rating_step
            v = np.clip(v, lo, hi)
        return v

    # ------------------------------------------------------------------ derived data sets
    def append_users(self, fakes: "Interactions | sp.spmatrix") -> "Interactions":
        """A new data set with ``fakes`` appended as injected rows (ids are never reused)."""
        fm = fakes.matrix if isinstance(fakes, Interactions) else sp.csr_matrix(fakes)
        if fm.shape[1] != self.n_items:
            raise ConfigError(
                f"fake profiles have {fm.shape[1]} items, the data set has {self.n_items}"
            )
        fm = _canonical(fm)
        if fm.nnz and (fm.data.min() < self.r_min - 1e-6 or fm.data.max() > self.r_max + 1e-6):
            raise ConfigError(
                f"fake ratings outside the rating scale {self.rating_scale}; use to_scale()"
            )
        mat = sp.vstack([self.matrix, fm], format="csr")
        start = (np.max(self.user_ids) + 1) if (self.n_users and self.user_ids.dtype.kind in "iu") else self.n_users
        fake_ids = np.arange(start, start + fm.shape[0])
        if self.user_ids.dtype.kind not in "iu":
            fake_ids = np.array([f"__fake{k}" for k in range(self.n_fake, self.n_fake + fm.shape[0])], dtype=object)
            uid = np.concatenate([self.user_ids.astype(object), fake_ids])
        else:
            uid = np.concatenate([self.user_ids, fake_ids])
        ts = None
        if self.timestamps is not None:
            tfake = fm.copy()
            tfake.data = np.full_like(tfake.data, np.max(self.timestamps.data, initial=0.0), dtype=np.float64)
            ts = sp.vstack([self.timestamps, tfake.astype(np.float64)], format="csr")
        return replace(self, matrix=mat, user_ids=uid, timestamps=ts)

    def select_users(self, rows: np.ndarray) -> "Interactions":
        """Keep only ``rows`` (sorted indices); ``n_normal`` is recounted."""
        rows = np.asarray(rows)
        if rows.dtype == bool:
            rows = np.flatnonzero(rows)
        rows = np.sort(rows)
        n_normal = int(np.searchsorted(rows, self.n_normal))
        ts = None if self.timestamps is None else self.timestamps[rows]
        return replace(
            self,
            matrix=self.matrix[rows],
            n_normal=n_normal,
            user_ids=self.user_ids[rows],
            timestamps=ts,
        )

    def drop_users(self, mask: np.ndarray) -> "Interactions":
        """Remove the users flagged in the boolean ``mask`` (e.g. a detector's output)."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (self.n_users,):
            raise ConfigError(f"mask has shape {mask.shape}, expected ({self.n_users},)")
        return self.select_users(np.flatnonzero(~mask))

    def with_matrix(self, matrix: sp.spmatrix, **changes) -> "Interactions":
        """Same data set description with another rating matrix of the same shape."""
        if matrix.shape != self.shape:
            raise ValueError(f"matrix shape {matrix.shape} != {self.shape}")
        changes.setdefault("timestamps", None)
        return replace(self, matrix=matrix, **changes)

    def to_implicit(self, threshold: float | None = None) -> "Interactions":
        """Implicit-feedback view: every rating (or every rating >= ``threshold``) becomes 1.

        Seed 003 App. A.5 converts any rating to an interaction (``threshold=None``).
        """
        m = self.matrix.copy()
        if threshold is not None:
            m.data = (m.data >= threshold).astype(np.float32)
            m.eliminate_zeros()
        else:
            m.data = np.ones_like(m.data)
        ts = None
        if self.timestamps is not None and threshold is None:
            ts = self.timestamps
        elif self.timestamps is not None:
            keep = self.matrix.data >= threshold
            t = self.timestamps.copy()
            t.data = np.where(keep, t.data + 1.0, 0.0)
            t.eliminate_zeros()
            t.data -= 1.0
            ts = t
        return replace(
            self, matrix=m, implicit=True, rating_scale=(1.0, 1.0), rating_step=None, timestamps=ts
        )


def empty_like(data: Interactions, n_rows: int) -> sp.csr_matrix:
    """An all-empty ``n_rows x n_items`` csr (helper for attacks)."""
    return sp.csr_matrix((n_rows, data.n_items), dtype=np.float32)
