"""The ``Recommender`` protocol every victim follows (DESIGN.md, "Core types").

``fit(data) -> self``; ``score(users) -> (len(users), n_items) float32``; ``recommend(users, k,
exclude_seen=True) -> (len(users), k) int64`` item indices, best first. Subclasses implement
``_fit`` and ``_score``; the base class validates inputs, converts feedback, batches scoring and
masks seen items so every victim behaves the same at the boundary.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np

from ..config import check_memory_need
from ..errors import ConfigError, FitError, NotFittedError
from ..interactions import Interactions
from ..registry import Component, Registry

VICTIMS: Registry["Recommender"] = Registry("victim")


def resolve_device(device: str) -> "Any":
    """The torch device a victim computes on: ``"cpu"`` (the default everywhere) or ``"cuda"``.

    ``"cuda"`` must be present: asking for it on a machine without a usable GPU raises a
    :class:`~recpoison.errors.ConfigError` (a silent fall-back to the CPU would make a GPU run
    look like a slow one).
    """
    import torch

    if device not in ("cpu", "cuda"):
        raise ConfigError(f"device={device!r} is not allowed; use 'cpu' or 'cuda'")
    if device == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError("device='cuda' was asked for but no CUDA GPU is available to torch here; use device=cpu")
        return torch.device("cuda")
    return torch.device("cpu")


class Recommender(Component):
    """Base class of victims.

    Class attributes:
        feedback: ``"explicit"`` (consumes rating values) or ``"implicit"`` (consumes 0/1
            interactions; explicit data are converted as seed 003 App. A.5 does, any rating -> 1,
            or with the ``threshold`` parameter when the model's config has one).
        predicts_ratings: True when ``score`` returns predicted ratings on the data's scale
            (``mf``, ``autorec``, ``nsvd``): benchmarks report their RMSE on held-out ratings.
    """

    feedback: ClassVar[Literal["explicit", "implicit"]] = "explicit"
    #: True for rating predictors (scores are predicted ratings, so RMSE is meaningful)
    predicts_ratings: ClassVar[bool] = False

    # ------------------------------------------------------------------ public API
    def fit(self, data: Interactions) -> "Recommender":
        if not isinstance(data, Interactions):
            raise TypeError("fit expects an Interactions (users x items)")
        check_memory(self, data.n_users, data.n_items)
        self.train_ = data
        self._fit(self._prepare(data))
        return self

    def score(self, users: np.ndarray | None = None) -> np.ndarray:
        """Predicted scores of ``users`` (row indices) for every item, shape (len(users), n_items)."""
        self._check_fitted()
        users = self._users(users)
        out = np.asarray(self._score(users), dtype=np.float32)
        if out.shape != (len(users), self.train_.n_items):
            raise AssertionError(f"{self.name}: score returned shape {out.shape}")
        if not np.isfinite(out).all():
            raise FitError(
                f"victim {self.name}: the fit produced non-finite scores (it diverged); use smaller "
                "learning rates or initial scales, or check the ratings for extreme values"
            )
        return out

    def recommend(
        self,
        users: np.ndarray | None = None,
        k: int = 10,
        exclude_seen: bool = True,
        batch_size: int = 2048,
    ) -> np.ndarray:
        """Top-``k`` item indices per user, best first (deterministic tie-breaking).

        With ``exclude_seen`` the items a user has in the training data are never recommended;
        a slot with no eligible item left holds -1.
        """
        self._check_fitted()
        if k < 1:
            raise ConfigError(f"k={k} must be at least 1")
        users = self._users(users)
        n_items = self.train_.n_items
        k_eff = min(k, n_items)
        out = np.full((len(users), k), -1, dtype=np.int64)
        seen = self.train_.matrix
        for start in range(0, len(users), batch_size):
            batch = users[start : start + batch_size]
            s = self.score(batch).astype(np.float64)
            if exclude_seen:
                sub = seen[batch]
                rows = np.repeat(np.arange(len(batch)), np.diff(sub.indptr))
                s[rows, sub.indices] = -np.inf
            top = topk_indices(s, k_eff)
            valid = np.take_along_axis(s, top, axis=1) > -np.inf
            out[start : start + len(batch), :k_eff] = np.where(valid, top, -1)
        return out

    # ------------------------------------------------------------------ optional
    def memory_bytes(self, n_users: int, n_items: int) -> int:
        """A rough upper estimate of the memory ``fit`` needs (checked before anything is allocated).

        Default: embeddings of every width-like parameter (``d``, ``factors``, ``hidden``,
        ``layers``) for every user and item, four copies (weights, gradients, two optimiser
        moments) of float32. Victims whose memory grows otherwise override it.
        """
        widths = 0
        for name in ("d", "factors", "hidden"):
            widths += int(getattr(self.config, name, 0) or 0)
        layers = getattr(self.config, "layers", None)
        if layers:
            widths += max(int(x) for x in layers)
        return 4 * 4 * (n_users + n_items) * widths

    def user_embeddings(self) -> np.ndarray:
        raise NotImplementedError(f"{self.name} exposes no user embeddings")

    # ------------------------------------------------------------------ for subclasses
    def _prepare(self, data: Interactions) -> Interactions:
        if self.feedback == "implicit" and not data.implicit:
            threshold = getattr(self.config, "threshold", None)
            out = data.to_implicit(threshold)
            if threshold is not None and data.nnz and out.nnz == 0:
                raise ConfigError(
                    f"victim {self.name}: threshold={threshold:g} keeps no rating (the ratings are "
                    f"{data.rating_scale[0]:g} to {data.rating_scale[1]:g}); use a threshold within that scale"
                )
            return out
        return data

    def _fit(self, data: Interactions) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _score(self, users: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _check_fitted(self) -> None:
        if not hasattr(self, "train_"):
            raise NotFittedError(f"{self.name}: call fit() before score() or recommend()")

    def _users(self, users: np.ndarray | None) -> np.ndarray:
        n = self.train_.n_users
        if users is None:
            return np.arange(n)
        users = np.atleast_1d(np.asarray(users, dtype=np.int64))
        if users.size and (users.min() < 0 or users.max() >= n):
            raise ConfigError(f"user index out of range [0, {n})")
        return users


def check_memory(model: "Recommender", n_users: int, n_items: int) -> None:
    """Refuse a fit whose estimated memory (:meth:`Recommender.memory_bytes`) exceeds the machine's
    physical memory, before anything is allocated, naming the parameters that drive it."""
    params = ", ".join(
        f"{n}={getattr(model.config, n)}" for n in ("d", "factors", "hidden", "layers") if hasattr(model.config, n)
    )
    check_memory_need(f"victim {model.name}", model.memory_bytes(n_users, n_items), params, n_users, n_items)


def topk_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest entries per row, best first.

    Deterministic; within the returned list equal scores are ordered by item index.
    """
    n = scores.shape[1]
    k = min(k, n)
    if k == n:
        part = np.broadcast_to(np.arange(n), scores.shape)
    else:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    vals = np.take_along_axis(scores, part, axis=1)
    return np.take_along_axis(part, _row_lexsort(part, vals), axis=1)


def _row_lexsort(idx: np.ndarray, vals: np.ndarray) -> np.ndarray:
    # sort by value descending, then index ascending, row by row (vectorised)
    order = np.argsort(idx, axis=1, kind="stable")
    v = np.take_along_axis(vals, order, axis=1)
    order2 = np.argsort(-v, axis=1, kind="stable")
    return np.take_along_axis(order, order2, axis=1)
