"""LTSMF: least trimmed squares matrix factorisation (Cheng and Hurley, ICTAI 2010), a training
defense of seed 004 (RVD) for ``mf`` (ALS) and ``mf-wu`` (Wu et al.'s Adagrad MF).

Seed 004 App. C (REFERENCES.md §5.4): the MF loss::

    sum_{(u,i) in Omega_h} (r_ui - p_u . q_i)^2 + lambda (||P||^2 + ||Q||^2)

where ``Omega_h`` drops from the observed pairs those whose squared residual ``(r_ui - p_u . q_i)^2``
lies in the top ``trim`` share of all pairs: ratings the model cannot explain (as fake profiles'
target ratings tend to be) stop pulling the factors. The trimmed set depends on the model, so it is
recomputed as training proceeds:

* ``mf`` (ALS, seed 001 eq. (1)): before every ALS sweep the residuals of all ratings under the
  current factors are computed, the top ``trim`` share of squared residuals dropped, and the sweep
  (the exact user half-step, then the item half-step, :func:`~recpoison.victims.mf.ridge_solve` on
  the remaining ratings) runs on the rest; the mf's ``d``, ``reg``, ``sweeps``, ``init_std``,
  ``seed``, ``dtype``, ``device`` apply unchanged.
* ``mf-wu``: before every epoch likewise, and the epoch runs Wu's mini-batch Adagrad over the
  remaining ratings (one optimiser for the whole fit, as the plain model; its ``d``, ``lr``,
  ``reg``, ``epochs``, ``batch_size``, ``seed`` apply unchanged).

Our choices (the seed and REFERENCES give none of them):

* ``trim`` defaults to 0.05 (5% of the ratings; REFERENCES suggests 5-10% or the expected share of
  fake ratings). ``floor(trim * n)`` ratings are trimmed; ties in the squared residual are broken
  in favour of trimming the earlier rating in row-major (user, item) order.
* The first sweep / epoch of a fit uses every rating: there is no fitted model yet whose residuals
  could rank them (ALS starts from ``X = 0``, Wu's MF from a Xavier draw: both predict ~0, so
  trimming would drop the highest ratings, not the unexplained ones). This is LTS's usual scheme
  (an initial fit on all data, then refits on the best-fitting subset, the "C-steps" of FAST-LTS).
  With ``trim = 0`` the fit is the wrapped victim's own fit, number for number.
* ``finetune(data, users, steps)`` (RVD on top: ``rvd+ltsmf``) trims among the ratings of
  ``users`` by the current model's residuals before *every* step (the model is fitted, so the first
  step is trimmed too); ``mf``: ALS sweeps restricted to those users and the items of their kept
  ratings (as ``MF.finetune``); ``mf-wu``: epochs over the kept ratings with a fresh Adagrad,
  shuffled from ``(seed, users)`` (as ``MFWu.finetune``).
* The learned factors are written into the wrapped model (its ``score``, ``user_embeddings``,
  ``snapshot``, ``restore`` work on them); ``trimmed_`` records how many ratings each sweep / epoch
  dropped.

The training machinery it shares with ``rmf`` and ``apr`` is in :mod:`._mftrain`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import check
from .base import DEFENSES
from ._mftrain import ResidualMFDefense


@dataclass(frozen=True)
class LTSMFConfig:
    """Hyper-parameters of :class:`LTSMF` (the wrapped victim keeps its own)."""

    #: share of the ratings (largest squared residuals) left out of the loss; our choice (see module)
    trim: float = 0.05

    def __post_init__(self) -> None:
        check(0 <= self.trim < 1, f"ltsmf: trim={self.trim} must be in [0, 1) (the share of ratings left out)")


@DEFENSES.register(
    "ltsmf",
    paper="Cheng and Hurley, ICTAI 2010 (least trimmed squares MF); seed 004 App. C",
    summary="MF fitted without the top trim share of squared residuals, re-trimmed every sweep/epoch",
)
class LTSMF(ResidualMFDefense):
    """Least trimmed squares MF on ``mf`` or ``mf-wu``. ``trimmed_``: ratings dropped per sweep / epoch."""

    Config = LTSMFConfig

    def _adjust(self, r: np.ndarray, e: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        n_trim = int(np.floor(self.config.trim * r.size))
        if n_trim == 0:
            return None, r
        worst = np.argsort(-(e * e), kind="stable")[:n_trim]
        keep = np.ones(r.size, dtype=bool)
        keep[worst] = False
        return keep, r

    def _record(self, keep, r, values) -> None:
        self.history_.append(0 if keep is None else int(keep.size - keep.sum()))

    @property
    def trimmed_(self) -> list[int]:
        return list(getattr(self, "history_", []))
