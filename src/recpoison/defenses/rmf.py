"""RMF: robust matrix factorisation with a sparse outlier term, a training defense of seed 004
(RVD) for ``mf`` (ALS) and ``mf-wu`` (Wu et al.'s Adagrad MF).

**A reconstruction.** Seed 004 App. C cites Bampis, Rusu, Hajj, Bovik, "Robust matrix
factorization for collaborative filtering in recommender systems", Asilomar 2017, as minimising a
Frobenius norm of ``P_Omega`` (the projection keeping the rated entries) of the rating matrix minus
its reconstruction; the formula itself is elided in the seed and the paper could not be consulted
here. We implement the robust factorisation REFERENCES.md §5.5 reconstructs, with an explicit
sparse outlier matrix ``S`` on the rated entries::

    min_{U,V,S}  1/2 ||P_Omega(R - U V^T - S)||_F^2 + lambda_S ||P_Omega(S)||_1 + lambda/2 (||U||_F^2 + ||V||_F^2)

solved by alternating minimisation, starting from ``S = 0``:

* factor step with ``S`` fixed: the wrapped victim's own training on the targets ``R - S``:
  for ``mf`` one ALS sweep (exact user, then item half-step, :func:`~recpoison.victims.mf.ridge_solve`;
  the mf's objective ``||.||^2 + reg (||U||^2 + ||V||^2)`` is twice the one above with
  ``lambda = reg``); for ``mf-wu`` one epoch of Wu's mini-batch Adagrad on ``(r - s) / r_max``
  (Wu's mean squared error with his L2 term; one optimiser for the whole fit);
* outlier step with ``U, V`` fixed: the exact minimiser over ``S``, entry by entry
  ``s_ui = soft(r_ui - u_u . v_i, lambda_S) = sign(e) max(|e| - lambda_S, 0)`` (rating scale).

A rating the factors miss by more than ``lambda_S`` is pulled towards the model's prediction
(``r - s = r_hat +- lambda_S``), so a block of unexplained ratings (fake profiles' target ratings)
moves the factors less. Scores are ``U V^T`` (``S`` lives on the training entries only). The victim's
hyper-parameters (``d``, ``reg``, ``sweeps`` / ``epochs``, ``lr``, ``batch_size``, ``seed`` ...)
apply unchanged: ``mf``'s ``sweeps`` / ``mf-wu``'s ``epochs`` count the alternations.

Our choices (nothing of this is in the seed):

* ``lambda_s`` unset: a quarter of the rating range, ``(r_max - r_min) / 4`` (1.0 on a 1-5 scale,
  1.75 on FilmTrust's 1-8; ``r_max / 4`` for data without a range, e.g. implicit 1s): an error of
  more than one star on a 1-5 scale counts as partly outlying. The value used is ``lambda_s_``.
* ``S`` is recomputed from the current factors before each sweep / epoch except the first of a fit
  (``S = 0`` there: the factors start from ``X = 0`` / a Xavier draw). With a very large
  ``lambda_s`` ``S`` stays 0 and the fit is the victim's own.
* ``finetune(data, users, steps)`` (RVD on top: ``rvd+rmf``): before each step ``S`` of the
  ``users``' ratings is the outlier step at the current factors (``S`` is a function of the factors
  at every alternation, so it is not stored), then ALS sweeps restricted to those users and the
  items they rated (``mf``) or epochs over their ratings with a fresh Adagrad shuffled from
  ``(seed, users)`` (``mf-wu``).
* ``outliers_`` records the number of non-zero ``s_ui`` at each sweep / epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import check
from ..interactions import Interactions
from .base import DEFENSES
from ._mftrain import ResidualMFDefense


@dataclass(frozen=True)
class RMFConfig:
    """Hyper-parameters of :class:`RMF` (the wrapped victim keeps its own)."""

    #: l1 weight of the outlier term, rating scale; unset: (r_max - r_min) / 4 (our choice)
    lambda_s: float | None = None

    def __post_init__(self) -> None:
        check(
            self.lambda_s is None or self.lambda_s > 0,
            f"rmf: lambda_s={self.lambda_s} must be positive (at 0 the outlier term absorbs every residual), or unset",
        )


@DEFENSES.register(
    "rmf",
    paper="Bampis et al., Asilomar 2017 (robust MF), as reconstructed in REFERENCES §5.5; seed 004 App. C",
    summary="MF with a soft-thresholded sparse outlier term on the rated entries, alternating",
)
class RMF(ResidualMFDefense):
    """Robust MF with an l1 outlier term on ``mf`` or ``mf-wu``. ``lambda_s_``: the weight used;
    ``outliers_``: non-zero outlier entries per sweep / epoch."""

    Config = RMFConfig

    def _fit_inner(self, data: Interactions) -> None:
        self.lambda_s_ = self._lambda_for(data)
        super()._fit_inner(data)

    def _lambda_for(self, data: Interactions) -> float:
        if self.config.lambda_s is not None:
            return float(self.config.lambda_s)
        lo, hi = data.rating_scale
        return (hi - lo) / 4.0 if hi > lo else abs(hi) / 4.0

    def _adjust(self, r: np.ndarray, e: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
        s = np.sign(e) * np.maximum(np.abs(e) - self.lambda_s_, 0.0)
        return None, r - s

    def _record(self, keep, r, values) -> None:
        self.history_.append(0 if values is r else int(np.count_nonzero(r != values)))

    @property
    def outliers_(self) -> list[int]:
        return list(getattr(self, "history_", []))
