"""The ``Detector`` protocol (DESIGN.md, "Core types").

``fit(data, labels)`` then ``flag(data) -> bool mask over the users of data`` (and ``score(data)``
where the detector has a continuous suspicion score: higher = more suspicious).

Labels are one integer per user of ``data``: 1 = fake, 0 = normal, -1 = unlabelled. Unlabelled
users are not training examples, but they are part of the data the features are computed on (item
statistics such as an item's mean rating come from every profile the provider sees). ``fit``
accepts either one data set with its labels or lists of them: a supervised detector trained on
fake users generated in several batches computes each batch's features in its own context, the
way the features of a cell's fake users are computed in the poisoned data (see
:func:`recpoison.detect.training.training_contexts`).

Detectors that need no labels (``supervised = False``) ignore them. The oracles read the injected
rows of the data (``Interactions.n_normal``): they exist to bound every detection table.
After ``flag``, ``phase_masks_`` maps the name of each phase to its mask when a detector works in
phases (SVM-TIA), so that FPR / FNR can be reported per phase.
"""

from __future__ import annotations

from typing import ClassVar, Sequence

import numpy as np

from ..errors import ConfigError, NotFittedError
from ..interactions import Interactions
from ..registry import Component, Registry

DETECTORS: Registry["Detector"] = Registry("detector")


def as_contexts(data, labels) -> list[tuple[Interactions, np.ndarray]]:
    """Normalise ``fit``'s arguments to a list of (data, labels) pairs, checking shapes and values."""
    if isinstance(data, Interactions):
        data, labels = [data], [labels]
    data, labels = list(data), list(labels)
    if len(data) != len(labels) or not data:
        raise ConfigError("fit needs one labels array per data set, and at least one data set")
    out = []
    for d, y in zip(data, labels):
        y = np.asarray(y)
        if y.shape != (d.n_users,):
            raise ConfigError(f"labels have shape {y.shape}, expected ({d.n_users},): one label per user")
        if not np.isin(y, (-1, 0, 1)).all():
            raise ConfigError("labels must be 1 (fake), 0 (normal) or -1 (unlabelled)")
        out.append((d, y.astype(np.int8)))
    return out


class Detector(Component):
    """Base class. Subclasses implement ``_fit`` (if they learn) and ``_flag``."""

    #: True when ``fit`` needs labelled fake and normal users
    supervised: ClassVar[bool] = False
    #: False only for ``none``: the pipeline skips the detection stage
    active: ClassVar[bool] = True
    #: True when the detector reads rating values (refuses implicit feedback)
    needs_ratings: ClassVar[bool] = False

    def fit(self, data: Interactions | Sequence[Interactions], labels=None) -> "Detector":
        if self.supervised:
            if labels is None:
                raise ConfigError(f"detector {self.name!r} is supervised: it needs labels (1 = fake, 0 = normal)")
            contexts = as_contexts(data, labels)
            ys = np.concatenate([y for _, y in contexts])
            if not ((ys == 1).any() and (ys == 0).any()):
                raise ConfigError(f"detector {self.name!r} needs at least one fake and one normal labelled user")
            for d, _ in contexts:
                self.check_data(d)
            self._fit(contexts)
        self.fitted_ = True
        return self

    def check_data(self, data: Interactions) -> None:
        """Refuse data the detector cannot read (rating features on implicit feedback)."""
        if self.needs_ratings:
            from .features import require_ratings

            require_ratings(data, f"detector {self.name!r}: its rating features")

    def flag(self, data: Interactions, among: np.ndarray | None = None) -> np.ndarray:
        """Boolean mask over the users of ``data``: True = flagged as fake.

        ``among``: optional mask of the users that may be flagged (the others never are, and
        group analyses such as SVM-TIA's phase 2 count only them): cross-validation passes the
        held-out fold, so a user's flag never rests on a label the detector was trained on."""
        if self.supervised and not getattr(self, "fitted_", False):
            raise NotFittedError(f"detector {self.name!r}: call fit(data, labels) before flag")
        if not isinstance(data, Interactions):
            raise TypeError("flag expects an Interactions")
        self.check_data(data)
        self.phase_masks_: dict[str, np.ndarray] = {}
        among = np.ones(data.n_users, dtype=bool) if among is None else np.asarray(among, dtype=bool)
        if among.shape != (data.n_users,):
            raise ConfigError(f"among has shape {among.shape}, expected ({data.n_users},)")
        mask = np.asarray(self._flag(data, among), dtype=bool) & among
        self.phase_masks_ = {k: v & among for k, v in self.phase_masks_.items()}
        if mask.shape != (data.n_users,):  # pragma: no cover - programming error
            raise AssertionError(f"{self.name}: mask of shape {mask.shape}, expected ({data.n_users},)")
        return mask

    def score(self, data: Interactions) -> np.ndarray:
        """Suspicion score per user (higher = more suspicious), where the detector has one."""
        raise NotImplementedError(f"detector {self.name!r} has no continuous score")

    def _fit(self, contexts: list[tuple[Interactions, np.ndarray]]) -> None:  # pragma: no cover
        raise NotImplementedError

    def _flag(self, data: Interactions, among: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


def make_seeded(name: str, params: dict, seed: int) -> Detector:
    """``DETECTORS.make(name, **params)``, with ``seed`` filled in when the detector's config has a
    seed the caller did not give."""
    params = dict(params)
    if "seed" in getattr(DETECTORS.entry(name).factory.Config, "__dataclass_fields__", {}):
        params.setdefault("seed", seed)
    return DETECTORS.make(name, **params)
