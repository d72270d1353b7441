"""Detection on a ratings file with known labels: ``recpoison detect`` (no attack, no victim).

:func:`read_labels` reads ``user_id,label`` lines (1 = fake, 0 = normal; a header line is allowed);
:func:`detect_labelled` flags the users of a data set and scores the flags against the labels.

A supervised detector given real labels is scored by stratified k-fold cross-validation over the
labelled users: for each fold it is trained on the labels of the other folds and flags only users of
the held-out fold (features computed once; ``fit_matrix`` / ``predict_matrix`` per fold), so no user is flagged by a model that saw its
label; SVM-TIA's target item analysis, which reads no label, then runs once on the union of the
out-of-fold phase-1 flags. Users the labels file does not name count as normal in FPR / FNR but are
never training examples. Features are computed once on the whole data
set, as a provider sees it. The oracles ``perfect`` and ``random`` read the labelled fake users as
the injected rows: the data set is reordered so that they come last (``Interactions.n_normal``).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, DataError
from ..interactions import Interactions
from ..metrics import detection_rates
from .base import Detector


def read_labels(path: str | Path, data: Interactions) -> tuple[np.ndarray, np.ndarray]:
    """(labels over the users of ``data``, mask of the users the file names). Users it does not
    name count as normal in FPR / FNR, but are no training examples of a supervised detector."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"labels file {str(p)!r} not found; give a CSV of user_id,label lines (1 = fake, 0 = normal)")
    index = {str(u): i for i, u in enumerate(data.user_ids.tolist())}
    labels = np.zeros(data.n_users, dtype=np.int8)
    seen = np.zeros(data.n_users, dtype=bool)
    unknown: list[str] = []
    try:
        with open(p, newline="", encoding="utf-8-sig") as fh:
            for n, row in enumerate(csv.reader(fh), 1):
                if not row or not "".join(row).strip():
                    continue
                if len(row) != 2:
                    raise DataError(f"{p.name} line {n}: expected 2 fields user_id,label, got {len(row)}")
                uid, lab = row[0].strip(), row[1].strip()
                if n == 1 and lab not in ("0", "1") and uid not in index:
                    continue  # a header line
                if lab not in ("0", "1"):
                    raise DataError(f"{p.name} line {n}: label {lab[:20]!r} must be 0 (normal) or 1 (fake)")
                i = index.get(uid)
                if i is None:
                    unknown.append(uid)
                    continue
                if seen[i]:
                    raise DataError(f"{p.name} line {n}: user {uid[:40]!r} is labelled twice")
                seen[i] = True
                labels[i] = int(lab)
    except UnicodeDecodeError:
        raise DataError(f"{p.name}: not UTF-8 text; save the labels as a UTF-8 CSV") from None
    if unknown:
        raise DataError(
            f"{p.name}: {len(unknown)} user id(s) are not in the data set (first: {unknown[0][:40]!r}); "
            "label only users of the ratings file"
        )
    if not (labels == 1).any():
        raise DataError(f"{p.name}: no user is labelled 1 (fake); FPR / FNR need at least one fake user")
    return labels, seen


def fakes_last(data: Interactions, labels: np.ndarray) -> tuple[Interactions, np.ndarray]:
    """``data`` with the users labelled 1 moved after the others (``n_normal`` = number of 0s),
    and the permutation applied (``new row j`` = old row ``perm[j]``)."""
    perm = np.concatenate([np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)])
    ts = None if data.timestamps is None else data.timestamps[perm]
    out = Interactions(
        data.matrix[perm], rating_scale=data.rating_scale, rating_step=data.rating_step, implicit=data.implicit,
        n_normal=int((labels == 0).sum()), user_ids=data.user_ids[perm], item_ids=data.item_ids, timestamps=ts,
        name=data.name,
    )
    return out, perm


def detect_labelled(detector: Detector, data: Interactions, labels: np.ndarray | None, folds: int = 5, seed: int = 0,
                    named: np.ndarray | None = None) -> dict[str, Any]:
    """Flag the users of ``data``; with labels, also FPR / FNR (overall and per phase). ``named``:
    the users the labels file names (default all); the others are no training examples.

    Returns ``{"flagged": bool mask in the order of data, "rates": ..., "phases": ..., "cv_folds": k or None}``.
    """
    if labels is None:
        if detector.supervised:
            raise ConfigError(
                f"detector {detector.name!r} is supervised: give --labels FILE (user_id,label; 1 = fake) "
                "to train it by cross-validation, or use an unsupervised detector (pca)"
            )
        if detector.name in ("perfect", "random"):
            raise ConfigError(f"detector {detector.name!r} is an oracle: it needs --labels FILE naming the fake users")
        mask = detector.fit(data).flag(data)
        return {"flagged": mask, "rates": None, "phases": {}, "cv_folds": None}
    ordered, perm = fakes_last(data, labels)
    y = labels[perm]
    known = np.ones(len(y), dtype=bool) if named is None else np.asarray(named, dtype=bool)[perm]
    phases: dict[str, np.ndarray] = {}
    if detector.supervised:
        from sklearn.model_selection import StratifiedKFold

        n_fake = int(y.sum())
        n_norm = int((known & (y == 0)).sum())
        if n_fake < folds or n_norm < folds:
            raise ConfigError(
                f"{folds}-fold cross-validation needs at least {folds} labelled users of each label "
                f"({n_fake} fake, {n_norm} normal); lower --folds (>= 2)"
            )
        # unnamed users are flagged like the others but never train. The features do not depend
        # on the labels: computed once, each fold fits and predicts on its rows
        detector.check_data(ordered)
        x = detector.features(ordered)
        phase1 = np.zeros(len(y), dtype=bool)
        for train_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
            fit_rows = train_idx[known[train_idx]]
            detector.fit_matrix(x[fit_rows], y[fit_rows])
            phase1[test_idx] = detector.predict_matrix(x[test_idx])
        mask, phases = phase1, {"svm": phase1}
        if hasattr(detector, "second_phase"):
            # a group analysis (SVM-TIA's phase 2) reads no label: run it once on all out-of-fold
            # flags, not per fold (per fold it would see only 1/k of the fake users)
            mask = detector.second_phase(ordered, phase1)
            phases = {"svm": phase1, "svm+tia": mask}
    else:
        mask = detector.fit(ordered).flag(ordered)
        phases = dict(detector.phase_masks_)
    back = np.empty_like(perm)
    back[perm] = np.arange(len(perm))
    is_fake = y == 1
    return {
        "flagged": mask[back],
        "rates": detection_rates(mask, is_fake),
        "phases": {name: detection_rates(m, is_fake) for name, m in phases.items()},
        "cv_folds": folds if detector.supervised else None,
    }


def write_flagged(path: Path, data: Interactions, mask: np.ndarray) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user_id"])
        for uid in data.user_ids[mask].tolist():
            w.writerow([uid])


def write_profiles(path: Path, parts: list[Interactions], real_ids: np.ndarray) -> tuple[int, Any]:
    """Write injected profiles as a ``user,item,rating`` CSV (raw item ids). Fake users are numbered
    after the largest real id when ids are integers, else named ``fake-0``, ``fake-1`` ... (with a
    longer prefix while that collides with a real id). Returns (number of users, the first id)."""
    if real_ids.dtype.kind in "iu":
        first_id: Any = int(real_ids.max()) + 1 if len(real_ids) else 1
        name = lambda j: first_id + j  # noqa: E731
    else:
        taken = {str(x) for x in real_ids.tolist()}
        prefix = "fake-"
        while any(f"{prefix}{j}" in taken for j in range(sum(p.n_users for p in parts))):
            prefix = "_" + prefix
        first_id = f"{prefix}0"
        name = lambda j: f"{prefix}{j}"  # noqa: E731
    n = 0
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["user", "item", "rating"])
        for part in parts:
            m = part.matrix.tocoo()
            vals = m.data.astype(np.float64)
            for row, i, r in zip((m.row + n).tolist(), part.item_ids[m.col].tolist(), vals.tolist()):
                w.writerow([name(row), i, f"{r:g}"])
            n += part.n_users
    return n, first_id
