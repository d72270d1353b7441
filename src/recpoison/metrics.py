"""Metrics: target hit ratio, leave-one-out accuracy, detection rates.

Target hit ratio HR@K, seed 001 §3.2 / §5.1.4 and seed 004 Appendix D: for a target item t, the
fraction of *normal* users who have not interacted with t (in the data the model was trained on)
whose top-K list of unseen items contains t; the reported HR@K is the mean over the targets.
Edge cases: a target every normal user has rated has no eligible user and its
HR is NaN (left out of the mean, as LensKit does for undefined metrics); an empty top-K list
counts as a miss.

"Any target" HR@K (seed 003 §5.1.4; REFERENCES.md §8, the RAPU code's ``evalute_attack``): for a
target *set*, the fraction of the normal users (all of them, those who rated a target included) whose
top-K list of unseen items contains at least one target of the set ("it is considered as a hit if one
of these items appears in the ranked list"): :func:`any_hit_ratio_from_topk`.

Accuracy, leave-one-out (seed 004 App. D "Accuracy"; He et al. 2017 for NDCG): for each normal
user with a held-out item, HR@K = 1 if the held-out item is in the user's top-K among items unseen
in training, and NDCG@K = 1 / log2(rank + 2) for a hit at 0-based rank (0 otherwise); both averaged
over those users.
"""

from __future__ import annotations

import numpy as np

from .errors import ConfigError
from .interactions import Interactions


def hit_ratio_from_topk(
    topk: np.ndarray, data: Interactions, targets: np.ndarray, users: np.ndarray | None = None,
    denominator: str = "unrated",
) -> np.ndarray:
    """Per-target HR given precomputed top-K lists.

    ``topk``: (len(users), K) item indices of ``users`` (default: all normal users, in order);
    ``data``: the training data of the model (decides who already rated a target).
    ``denominator``: ``unrated`` (the share of the users who have not rated the target; seed 001
    §3.2, the project's definition) or ``all`` (the share of all ``users``, as Huang et al.'s code
    computes it; a user who rated the target counts as a miss).
    Returns an array of len(targets) (NaN for a target with no eligible user).
    """
    if denominator not in ("unrated", "all"):
        raise ConfigError(f"denominator={denominator!r} must be 'unrated' or 'all'")
    targets = np.atleast_1d(np.asarray(targets, dtype=np.int64))
    if users is None:
        users = np.arange(data.n_normal)
    if topk.shape[0] != len(users):
        raise ValueError("topk must have one row per user")
    hits = (topk[:, :, None] == targets[None, None, :]).any(axis=1)  # (users, targets)
    rated = data.matrix[users][:, targets].toarray() != 0
    eligible = ~rated
    n_eligible = eligible.sum(axis=0)
    if denominator == "all":
        return (hits & eligible).sum(axis=0) / len(users) if len(users) else np.full(len(targets), np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        hr = (hits & eligible).sum(axis=0) / n_eligible
    return np.where(n_eligible > 0, hr, np.nan)


def any_hit_ratio_from_topk(topk: np.ndarray, targets: np.ndarray, users: np.ndarray | None = None) -> float:
    """The share of the rows of ``topk`` (one per user of ``users``) that hold at least one item of
    ``targets`` (seed 003 §5.1.4): one number for the whole set. Every user counts in the
    denominator; the lists are of unseen items (a target the user rated cannot appear, the user can
    still hit through another target). NaN for no user."""
    targets = np.atleast_1d(np.asarray(targets, dtype=np.int64))
    if users is not None and topk.shape[0] != len(users):
        raise ValueError("topk must have one row per user")
    if topk.shape[0] == 0:
        return float("nan")
    return float(np.isin(topk, targets).any(axis=1).mean())


def target_hit_ratio(model, targets: np.ndarray, k: int) -> np.ndarray:
    """Per-target HR@k of a fitted model over the normal users of its training data."""
    if k < 1:
        raise ConfigError(f"k={k} must be at least 1")
    data = model.train_
    users = np.arange(data.n_normal)
    return hit_ratio_from_topk(model.recommend(users, k), data, targets, users)


def loo_accuracy_from_topk(
    topk: np.ndarray, test_items: np.ndarray, users: np.ndarray
) -> dict[str, float]:
    """Leave-one-out HR@K and NDCG@K of ``users`` (rows of ``topk``) with held-out items."""
    test = test_items[users]
    has = test >= 0
    if not has.any():
        return {"hr": float("nan"), "ndcg": float("nan")}
    match = topk[has] == test[has, None]
    hit = match.any(axis=1)
    rank = match.argmax(axis=1)
    ndcg = np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0)
    return {"hr": float(hit.mean()), "ndcg": float(ndcg.mean())}


def detection_rates(flagged: np.ndarray, is_fake: np.ndarray) -> dict[str, float]:
    """False positive rate (normal users flagged) and false negative rate (fakes missed)."""
    flagged = np.asarray(flagged, dtype=bool)
    is_fake = np.asarray(is_fake, dtype=bool)
    n_fake, n_norm = is_fake.sum(), (~is_fake).sum()
    fpr = (flagged & ~is_fake).sum() / n_norm if n_norm else float("nan")
    fnr = (~flagged & is_fake).sum() / n_fake if n_fake else float("nan")
    return {"fpr": float(fpr), "fnr": float(fnr)}
