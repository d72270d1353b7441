"""The ``Attack`` protocol (DESIGN.md, "Core types").

``generate(view, targets, n_fake, n_filler, rng) -> Interactions`` holding only the fake rows. The
public method checks the inputs, calls the subclass's ``_generate`` and then enforces the budget at
the boundary, so no attack can silently exceed it: exactly ``n_fake`` rows (0 for ``none``), at most
``n_filler + len(targets)`` ratings per fake user, every rating on the view's scale. An attack only
reads the ``view`` it is given (knowledge settings depend on it).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ..config import check_memory_need
from ..errors import ConfigError
from ..interactions import Interactions
from ..registry import Component, Registry

ATTACKS: Registry["Attack"] = Registry("attack")


class Attack(Component):
    """Base class of attacks. Subclasses implement ``_generate`` returning a csr of fake rows."""

    #: False only for the no-attack baseline, which injects nobody.
    injects: ClassVar[bool] = True
    #: True when the attack makes its fake users one after the other and draws its randomness per
    #: user, so that, from the same ``rng``, the first m fake users of a run of n >= m are exactly a
    #: run of m. The pipeline then derives the attack's random stream without the attack size and
    #: serves every smaller size of a cell group from the largest run (tested per attack).
    prefix_stable: ClassVar[bool] = False
    #: the config field of an attack that optimises a top-K list (``top_n`` for the S-attacks, ``k``
    #: for dl-ncf): left at None, it is the K the cell measures (``generate(..., k=K)``; 10 when no K
    #: is given), and K is then part of the fake-profile cache key; set, it pins the list length.
    k_param: ClassVar[str | None] = None
    #: the list length used when neither the config nor the caller gives one
    DEFAULT_K: ClassVar[int] = 10

    def uses_cell_k(self) -> bool:
        """True when the fake profiles depend on the K given to ``generate``."""
        return self.k_param is not None and getattr(self.config, self.k_param) is None

    def list_length(self) -> int:
        """The top-K list length this attack optimises (see ``k_param``)."""
        configured = getattr(self.config, self.k_param) if self.k_param else None
        if configured is not None:
            return int(configured)
        return int(getattr(self, "k_", None) or self.DEFAULT_K)

    def memory_bytes(self, n_users: int, n_items: int) -> int:
        """Rough memory estimate of an attack that trains a surrogate MF of width ``d`` by batched
        ALS (a d x d system per row, factors); attacks without ``d`` are not estimated."""
        d = int(getattr(self.config, "d", 0) or 0)
        size = 8 if getattr(self.config, "dtype", "float32") == "float64" else 4
        return size * (3 * max(n_users, n_items) * d * d + 4 * (n_users + n_items) * d)

    def generate(
        self,
        view: Interactions,
        targets: np.ndarray,
        n_fake: int,
        n_filler: int,
        rng: np.random.Generator,
        k: int | None = None,
    ) -> Interactions:
        """``n_fake`` fake users promoting ``targets`` with ``n_filler`` fillers each, drawn from
        ``rng``; ``k``: the top-K length the cell measures (used by attacks with ``k_param``)."""
        if k is not None and (not isinstance(k, (int, np.integer)) or k < 1):
            raise ConfigError(f"{self.name}: k={k!r} must be a whole number >= 1")
        self.k_ = None if k is None else int(k)
        targets = np.unique(np.atleast_1d(np.asarray(targets, dtype=np.int64)))
        if targets.size == 0:
            raise ConfigError(f"{self.name}: at least one target item is needed")
        if targets.min() < 0 or targets.max() >= view.n_items:
            raise ConfigError(f"{self.name}: target index outside [0, {view.n_items})")
        if n_fake < 0:
            raise ConfigError(f"{self.name}: n_fake={n_fake} must be >= 0")
        if n_filler < 0:
            raise ConfigError(f"{self.name}: n_filler={n_filler} must be >= 0")
        n_filler = min(n_filler, view.n_items - len(targets))
        if not isinstance(rng, np.random.Generator):
            raise TypeError("rng must be a numpy.random.Generator")
        if not self.injects or n_fake == 0:
            fake = sp.csr_matrix((0, view.n_items), dtype=np.float32)
        else:
            d = getattr(self.config, "d", None)
            if isinstance(d, int):  # attacks that train a surrogate MF: check its memory before allocating
                check_memory_need(f"attack {self.name}", self.memory_bytes(view.n_users + n_fake, view.n_items),
                                  f"d={d}", view.n_users + n_fake, view.n_items)
            fake = sp.csr_matrix(self._generate(view, targets, n_fake, n_filler, rng))
        self._check_budget(view, fake, targets, n_fake if self.injects else 0, n_filler)
        return fake_profiles(view, fake, f"{view.name}+{self.name}")

    def _generate(
        self,
        view: Interactions,
        targets: np.ndarray,
        n_fake: int,
        n_filler: int,
        rng: np.random.Generator,
    ) -> sp.csr_matrix:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_budget(
        self, view: Interactions, fake: sp.csr_matrix, targets, n_fake: int, n_filler: int
    ) -> None:
        fake.eliminate_zeros()
        if fake.shape != (n_fake, view.n_items):
            raise AssertionError(f"{self.name}: produced {fake.shape}, expected ({n_fake}, {view.n_items})")
        per_user = np.diff(fake.indptr)
        if per_user.size and per_user.max() > n_filler + len(targets):
            raise AssertionError(f"{self.name}: a fake user rates {per_user.max()} items > budget")
        lo, hi = view.rating_scale
        if fake.nnz and (fake.data.min() < lo - 1e-6 or fake.data.max() > hi + 1e-6):
            raise AssertionError(f"{self.name}: ratings outside the scale {view.rating_scale}")


def sample_items(
    rng: np.random.Generator, n_rows: int, candidates: np.ndarray, n: int, weights=None
) -> np.ndarray:
    """``n`` distinct items per row drawn from ``candidates`` (uniform, or ∝ ``weights``).

    Vectorised: Efraimidis–Spirakis keys ``u^(1/w)`` ranked per row, which samples without
    replacement with probabilities proportional to ``weights``.
    """
    candidates = np.asarray(candidates, dtype=np.int64)
    n = min(n, len(candidates))
    if n == 0 or n_rows == 0:
        return np.zeros((n_rows, 0), dtype=np.int64)
    keys = rng.random((n_rows, len(candidates)))
    if weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        with np.errstate(divide="ignore"):
            keys = np.log(keys) / np.where(w > 0, w, np.nan)
        keys = np.nan_to_num(keys, nan=-np.inf)
    pick = np.argpartition(-keys, n - 1, axis=1)[:, :n]
    return candidates[pick]


def assemble(
    view: Interactions,
    items: np.ndarray,
    ratings: np.ndarray,
    targets: np.ndarray,
    target_rating: float | None = None,
) -> sp.csr_matrix:
    """Fake rows from per-row filler ``items`` / ``ratings`` (n_fake x n) plus every target.

    Ratings are clipped and rounded to the view's scale; targets get ``target_rating``
    (default: the maximum rating, as every attack in the seeds does).
    """
    n_fake = items.shape[0]
    r_t = view.r_max if target_rating is None else target_rating
    rows = np.concatenate([np.repeat(np.arange(n_fake), items.shape[1]), np.repeat(np.arange(n_fake), len(targets))])
    cols = np.concatenate([items.ravel(), np.tile(targets, n_fake)])
    vals = np.concatenate([view.to_scale(ratings).ravel(), np.full(n_fake * len(targets), r_t)])
    if view.implicit:
        vals = np.ones_like(vals)
    m = sp.csr_matrix((vals.astype(np.float32), (rows, cols)), shape=(n_fake, view.n_items))
    m.sum_duplicates()
    return m


def fake_profiles(view: Interactions, matrix: sp.csr_matrix, name: str) -> Interactions:
    """Fake users' rows as ``generate`` returns them: no normal users, ``view``'s items and scale."""
    return Interactions(matrix, rating_scale=view.rating_scale, rating_step=view.rating_step, implicit=view.implicit,
                        n_normal=0, item_ids=view.item_ids, name=name)


def non_targets(view: Interactions, targets: np.ndarray) -> np.ndarray:
    mask = np.ones(view.n_items, dtype=bool)
    mask[targets] = False
    return np.flatnonzero(mask)
