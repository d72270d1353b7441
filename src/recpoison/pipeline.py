"""One experiment cell, end to end: data -> split -> clean victim -> attack -> poisoned victim -> metrics.

:func:`run_cell` is what ``recpoison run`` calls, and what grids call once per cell; a
:class:`CellCache` shares the loaded data, the split and the clean victim between cells that agree on
them, so a grid trains each clean model once.

Protocol: each normal user's latest rating is held out (leave-one-out) for the accuracy metrics
(a data set with a given split, such as FilmTrust, holds out its own test ratings instead, the same
for every seed: :func:`make_split`);
the attacker sees the training part, whole (``knowledge="full"``), a partial view of it
(``"partial:F"``) or a partial and perturbed one (``"perturbed:F"``, seed 003;
:mod:`recpoison.knowledge`); ``n_fake = round(attack_size * n_normal)`` fake users are appended; the victim is retrained from the same initial seed on the poisoned data
(always the full training data plus the fakes, whatever the attacker's view);
target HR@K (seed 001 §3.2) is measured over normal users before and after: by default per target
over the users who have not rated it, averaged over the targets; with ``hr_definition="any"``
(seed 003 §5.1.4) the share of all normal users whose top-K holds any target of the set
(:func:`recpoison.metrics.any_hit_ratio_from_topk`), in ``hr_before``, ``hr_after``,
``hr_after_defense`` and ``hr_after_detection``.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp

from . import attacks, datasets, defenses, detect, victims
from .attacks.base import fake_profiles
from .config import MAX_INT, check
from .detect.base import make_seeded
from .errors import ConfigError, DataError
from .interactions import Interactions
from .knowledge import make_view, parse_knowledge
from .metrics import any_hit_ratio_from_topk, detection_rates, hit_ratio_from_topk, loo_accuracy_from_topk
from .seeding import derive_rng, derive_seed
from .splits import Split, leave_one_out


@dataclass(frozen=True)
class CellSpec:
    """Everything that defines one cell. Validated on construction."""

    dataset: str = "ml-100k"
    victim: str = "mf"
    attack: str = "random"
    attack_size: float = 0.03
    n_filler: int = 20
    n_targets: int = 5
    k: int = 10
    seed: int = 0
    #: random | unpopular | tier:most-pop|pop|ordinary|unpop|most-unp (see :func:`choose_targets`)
    target_strategy: str = "random"
    knowledge: str = "full"
    target_mode: Literal["together", "each"] = "together"
    victim_params: dict = field(default_factory=dict)
    attack_params: dict = field(default_factory=dict)
    detector: str = "none"
    detector_params: dict = field(default_factory=dict)
    #: defense of the victim (seed 004): a name or a chain such as rvd+ltsmf; none: no defense stage
    defense: str = "none"
    defense_params: dict = field(default_factory=dict)
    #: read the data as implicit feedback (every rating -> 1; a file needs no rating column)
    implicit: bool = False
    #: also report accuracy over the users whose held-out rating is at least this (seed 004 App. D:
    #: "users whose actual rating meets the threshold"): ``accuracy_*.hr_liked`` / ``ndcg_liked``
    accuracy_threshold: float | None = None
    #: target HR@K: per-target (seed 001/004: per target over the users who have not rated it, mean
    #: over the targets) or any (seed 003 §5.1.4: share of all normal users whose top-K holds any
    #: target); with any, hr_before / hr_after / hr_after_defense / hr_after_detection hold that figure
    hr_definition: Literal["per-target", "any"] = "per-target"

    def __post_init__(self) -> None:
        check(isinstance(self.dataset, str) and self.dataset.strip() != "", "dataset must be a non-empty name or path")
        victims.VICTIMS.entry(self.victim)
        attacks.ATTACKS.entry(self.attack)
        detect.DETECTORS.entry(self.detector)
        defenses.check_victim(self.defense, self.victim)
        for name in ("n_filler", "n_targets", "k", "seed"):
            v = getattr(self, name)
            check(isinstance(v, numbers.Integral) and not isinstance(v, bool), f"{name}={short(v)} must be an integer")
        check(
            isinstance(self.attack_size, (int, float)) and not isinstance(self.attack_size, bool) and 0 < self.attack_size <= 1,
            f"attack size {short(self.attack_size)} must be in (0, 1] (a fraction of the normal users, e.g. 0.03)",
        )
        check(0 <= self.n_filler <= MAX_INT, f"filler count {self.n_filler} must be >= 0 (and at most the number of items)")
        check(1 <= self.n_targets <= MAX_INT, f"number of targets {self.n_targets} must be at least 1 (and at most the number of items)")
        check(1 <= self.k <= MAX_INT, f"k={self.k} must be at least 1 (and below the number of items)")
        check(0 <= self.seed <= MAX_SEED, f"seed={self.seed} must be in [0, {MAX_SEED}]; use e.g. --seed 0")
        check(isinstance(self.implicit, bool), f"implicit={short(self.implicit)} must be true or false")
        check(self.accuracy_threshold is None or (isinstance(self.accuracy_threshold, (int, float)) and not isinstance(self.accuracy_threshold, bool)
                                                  and math.isfinite(self.accuracy_threshold)),
              f"accuracy threshold {short(self.accuracy_threshold)} must be a rating value such as 4 (or left out)")
        check(all(isinstance(p, dict) for p in (self.victim_params, self.attack_params, self.detector_params, self.defense_params)),
              "victim_params, attack_params, detector_params and defense_params must be mappings")
        check_target_strategy(self.target_strategy)
        check(self.hr_definition in HR_DEFINITIONS, f"hr definition {short(self.hr_definition)}: use 'per-target' (seed 001/004) or 'any' (seed 003: a hit when any target of the set is in the top-K)")
        check(not (self.hr_definition == "any" and self.target_mode == "each"),
              "hr definition 'any' counts a hit when any target of the set is in a top-K list; with target mode 'each' "
              "every attack promotes one target, so use target mode 'together' or hr definition 'per-target'")
        parse_knowledge(self.knowledge)
        check(self.target_mode in ("together", "each"), f"target mode {self.target_mode!r}: use 'together' (one attack promotes all targets) or 'each' (one attack per target, seed 001)")
        defenses.split_params(self.defense, self.defense_params)


MAX_SEED = 2**32 - 1
HR_DEFINITIONS = ("per-target", "any")
#: seed 003 App. A.8 popularity tiers: percentile bands of the items' click counts
TARGET_TIERS = {"most-pop": (80, 100), "pop": (60, 80), "ordinary": (40, 60), "unpop": (20, 40), "most-unp": (0, 20)}
TARGET_STRATEGY_HELP = "use 'random', 'unpopular' or 'tier:T' with T one of " + ", ".join(TARGET_TIERS) + " (seed 003 App. A.8)"
#: leave-one-out needs at least this many users with 2 or more ratings (one held out, one to train on)
MIN_LOO_USERS = 2


def short(value: Any) -> str:
    from .text import short as _short

    return _short(value)


def load_data(spec: CellSpec) -> Interactions:
    """The cell's data set: a registered name or a ratings file, as implicit feedback when asked."""
    if spec.implicit:
        if spec.dataset in datasets.DATASETS:
            return datasets.load(spec.dataset).to_implicit()
        return datasets.load(spec.dataset, implicit=True)
    return datasets.load(spec.dataset)


def make_split(spec: CellSpec, data: Interactions, cache: "CellCache") -> Split:
    """The data set's given split when it has one (the same for every seed, see
    :func:`recpoison.datasets.given_split`), else :func:`leave_one_out` drawn from the cell's seed."""
    if spec.dataset in datasets.GIVEN_SPLITS:
        return cache.get(("split", spec.dataset, spec.implicit, "given"), lambda: datasets.given_split(spec.dataset, data))
    return cache.get(("split", spec.dataset, spec.implicit, spec.seed), lambda: leave_one_out(data, derive_rng(spec.seed, "split")))


def check_data(spec: CellSpec, data: Interactions) -> None:
    """Refuse data that cannot support the cell's protocol, and counts the data cannot meet, before
    any model is fitted (``recpoison sweep --dry-run`` runs the same checks)."""
    from .text import excerpt

    label = excerpt(spec.dataset)
    counts = np.diff(data.matrix.indptr)
    qualify = int(np.count_nonzero(counts >= 2))
    if qualify < MIN_LOO_USERS or data.n_items < 2:
        raise DataError(
            f"{label}: leave-one-out needs at least {MIN_LOO_USERS} users with 2 or more ratings and 2 items; "
            f"{qualify} of {data.n_users} users qualify ({data.n_items} items); give a data set with more ratings per user"
        )
    if spec.k >= data.n_items:
        raise ConfigError(
            f"k={spec.k} must be below the number of items of {label} ({data.n_items}); "
            "a top-K list of every unseen item would make every hit ratio 1"
        )
    if spec.n_targets > data.n_items:
        raise ConfigError(f"{spec.n_targets} targets requested but {label} has only {data.n_items} items; use fewer targets")
    if spec.n_filler > data.n_items - spec.n_targets:
        raise ConfigError(
            f"filler count {spec.n_filler} is more than the {data.n_items - spec.n_targets} items of {label} "
            f"left besides the {spec.n_targets} targets; use at most that many fillers"
        )


def _raw_id(x: Any) -> Any:
    """A raw id as JSON-ready Python value: int for integer ids, else str (ids may be text)."""
    if isinstance(x, (np.integer, int)):
        return int(x)
    return str(x)


def check_target_strategy(strategy: Any) -> None:
    """ConfigError (one line) unless ``strategy`` is random, unpopular or tier:<one of TARGET_TIERS>."""
    if not isinstance(strategy, str):
        raise ConfigError(f"target strategy {short(strategy)} must be a string; {TARGET_STRATEGY_HELP}")
    if strategy in ("random", "unpopular"):
        return
    kind, sep, tier = strategy.partition(":")
    if kind == "tier" and sep:
        if tier not in TARGET_TIERS:
            raise ConfigError(f"target strategy {short(strategy)}: unknown tier {short(tier)}; {TARGET_STRATEGY_HELP}")
        return
    raise ConfigError(f"target strategy {short(strategy)}: {TARGET_STRATEGY_HELP}")


def tier_items(data: Interactions, tier: str) -> np.ndarray:
    """The items of a seed 003 App. A.8 popularity tier: by click count among normal users, "Most Pop."
    above the 80th percentile, "Popular" 60-80th, "Ordinary" 40-60th, "Unpopular" 20-40th, "Most Unp."
    below the 20th.

    Choices where the seed is silent: percentiles (numpy's linear interpolation) of the counts of the
    items with at least one click; items nobody clicked belong to no tier (as for ``unpopular``).
    The bands are half-open, ``lo < count <= hi`` (``count <= p20`` for most-unp, ``count > p80``
    for most-pop), so they partition the clicked items and an item whose count equals a boundary
    percentile falls in the lower tier (the paper writes strict inequalities on both sides, which would
    leave such items out). With many tied counts a band can be small or empty."""
    check_target_strategy(f"tier:{tier}")
    counts = data.item_counts()
    rated = np.flatnonzero(counts > 0)
    if rated.size == 0:
        return rated
    lo_p, hi_p = TARGET_TIERS[tier]
    c = counts[rated]
    lo = np.percentile(c, lo_p) if lo_p > 0 else -np.inf
    hi = np.percentile(c, hi_p) if hi_p < 100 else np.inf
    return rated[(c > lo) & (c <= hi)]


def choose_targets(data: Interactions, n: int, rng: np.random.Generator, strategy: str = "random") -> np.ndarray:
    """``n`` distinct target items drawn uniformly from a pool: all items (``random``, seed 001
    §5.1.4; seed 003 §5.1.4), the less popular half of the items that have at least one rating
    (``unpopular``, "non-popular items", seed 004 §5.1), or a popularity tier (``tier:most-pop``,
    ``pop``, ``ordinary``, ``unpop``, ``most-unp``; seed 003 App. A.8, see :func:`tier_items`)."""
    check_target_strategy(strategy)
    if n > data.n_items:
        raise ConfigError(f"{n} targets requested but the data set has only {data.n_items} items")
    pool = np.arange(data.n_items)
    if strategy == "unpopular":
        counts = data.item_counts()
        rated = pool[counts > 0]
        pool = rated[counts[rated] <= np.median(counts[rated])]
        if n > len(pool):
            raise ConfigError(f"{n} unpopular targets requested but only {len(pool)} qualify")
    elif strategy.startswith("tier:"):
        tier = strategy.partition(":")[2]
        pool = tier_items(data, tier)
        if n > len(pool):
            raise ConfigError(f"{n} targets requested from tier {tier} but only {len(pool)} items qualify; use fewer targets")
    return np.sort(rng.choice(pool, size=n, replace=False))


class CellCache:
    """In-memory cache of data sets, splits, targets and clean victims shared across cells.

    ``fakes_dir`` (a sweep's ``RUN/fakes``): fake profiles are also kept there, one ``.npz`` per
    attack run (csr arrays only, read with ``allow_pickle=False``), so that cells in other worker
    processes, later resumptions of the sweep and other sweeps pointed at the same folder reuse them
    instead of running the attack again. A folder that cannot be written only disables the reuse.
    """

    def __init__(self, fakes_dir: str | Path | None = None) -> None:
        self._store: dict[tuple, Any] = {}
        self.fakes_dir = Path(fakes_dir) if fakes_dir is not None else None

    def get(self, key: tuple, make):
        if key not in self._store:
            self._store[key] = make()
        return self._store[key]

    def fakes(self, key: tuple, n: int, make, like: Interactions, prefix: bool) -> Interactions:
        """The fake profiles of attack run ``key``: ``n`` users. With ``prefix`` (the attack is
        ``prefix_stable`` and ``key`` holds no size), a stored run of more users serves the first
        ``n`` of them; a shorter one is replaced by a new run of ``n``."""
        have = self._store.get(("fakes",) + key)
        if have is None:
            have = self._load_fakes(key, like)
        if have is None or (have.n_users != n if not prefix else have.n_users < n):
            have = make()
            self._save_fakes(key, have)
        self._store[("fakes",) + key] = have
        return have if have.n_users == n else have.select_users(np.arange(n))

    def _fakes_path(self, key: tuple) -> Path | None:
        if self.fakes_dir is None:
            return None
        return self.fakes_dir / (hashlib.sha1(repr(key).encode()).hexdigest()[:24] + ".npz")

    def _load_fakes(self, key: tuple, like: Interactions) -> Interactions | None:
        path = self._fakes_path(key)
        if path is None or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                if str(z["key"]) != repr(key) or int(z["shape"][1]) != like.n_items:
                    return None
                m = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(int(x) for x in z["shape"]))
        except (OSError, ValueError, KeyError):  # unreadable or foreign: run the attack again
            return None
        return fake_profiles(like, m, f"{like.name}+fakes")

    def _save_fakes(self, key: tuple, fakes: Interactions) -> None:
        path = self._fakes_path(key)
        if path is None:
            return
        m = fakes.matrix.tocsr()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, key=np.array(repr(key)), shape=np.array(m.shape), data=m.data, indices=m.indices, indptr=m.indptr)
            os.replace(tmp, path)  # atomic: a reader sees the old file or the new one
        except OSError:
            pass


def _frozen(params: dict) -> tuple:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


def _evaluate(model, split: Split, targets: np.ndarray, k: int, kept: np.ndarray | None = None,
              threshold: float | None = None) -> dict[str, Any]:
    """Target HR@K and leave-one-out accuracy over the normal users of the model's training data;
    ``kept``: the split's normal users those rows are, when they are not all of them (after
    detection); ``threshold``: accuracy also over the users whose held-out rating is >= it."""
    data = model.train_
    users = np.arange(data.n_normal)
    t = time.perf_counter()
    topk = model.recommend(users, k)
    seconds = time.perf_counter() - t
    hr = hit_ratio_from_topk(topk, data, targets, users)
    hr_all = hit_ratio_from_topk(topk, data, targets, users, denominator="all")
    test_items = split.test_items if kept is None else split.test_items[kept]
    acc = loo_accuracy_from_topk(topk, test_items, users)
    if threshold is not None:
        test_ratings = split.test_ratings if kept is None else split.test_ratings[kept]
        liked = np.where(test_ratings[users] >= threshold, test_items[users], -1)  # NaN (none held out) compares False
        acc.update({f"{m}_liked": v for m, v in loo_accuracy_from_topk(topk, liked, users).items()})
    return {"hr": _mean(hr), "hr_per_target": hr.tolist(), "hr_all_per_target": hr_all.tolist(), "acc": acc,
            "hr_any": any_hit_ratio_from_topk(topk, targets, users), "seconds_per_user": seconds / max(1, len(users))}


def _mean_acc(accs: list[dict[str, float]]) -> dict[str, float]:
    return {m: float(np.mean([a[m] for a in accs])) for m in accs[0]}


def run_cell(spec: CellSpec, cache: CellCache | None = None, return_fakes: bool = False):
    """Run one cell and return a flat, JSON-ready result dict (see ``recpoison run --json``);
    with ``return_fakes``, also the list of injected profiles (one Interactions per target group)."""
    cache = cache or CellCache()
    seconds: dict[str, float] = {}

    def timed(stage, fn):
        t = time.perf_counter()
        out = fn()
        seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - t
        return out

    data: Interactions = timed("load", lambda: cache.get(("data", spec.dataset, spec.implicit), lambda: load_data(spec)))
    check_data(spec, data)
    split: Split = timed("split", lambda: make_split(spec, data, cache))
    train = split.train
    detector = _make_detector(spec, train)  # before any training: a detector the data cannot serve fails at once
    targets = cache.get(
        ("targets", spec.dataset, spec.implicit, spec.seed, spec.n_targets, spec.target_strategy),
        lambda: choose_targets(train, spec.n_targets, derive_rng(spec.seed, "targets"), spec.target_strategy),
    )
    vparams = {"seed": derive_seed(spec.seed, "victim"), **spec.victim_params}
    vkey = ("clean", spec.dataset, spec.implicit, spec.seed, spec.victim, tuple(sorted(vparams.items())))

    def fit_clean():
        model = victims.make(spec.victim, **vparams).fit(train)
        return model, _evaluate(model, split, targets, spec.k, threshold=spec.accuracy_threshold)

    clean_model, before = timed("fit_clean", lambda: cache.get(vkey + (spec.k, tuple(targets)), fit_clean))
    defended = spec.defense != "none"
    attack = attacks.make(spec.attack, **spec.attack_params)
    n_fake = max(1, int(round(spec.attack_size * train.n_normal))) if attack.injects else 0
    # "together": one set of fake users promotes every target; "each" (seed 001 §5.1.4): each target
    # is attacked on its own by n_fake fake users, and HR@K is averaged over the targets
    groups = [targets[i : i + 1] for i in range(len(targets))] if spec.target_mode == "each" else [targets]
    hr_after = np.full(len(targets), np.nan)
    hr_det = np.full(len(targets), np.nan)
    hr_all_after = np.full(len(targets), np.nan)  # the same hits over all normal users (Huang et al.'s code)
    hr_all_det = np.full(len(targets), np.nan)
    hr_def = np.full(len(targets), np.nan)  # with the defense (on the same poisoned data)
    hr_all_def = np.full(len(targets), np.nan)
    # hr_definition "any" (target mode together: one group, all targets): one figure per stage
    hr_any = {"after": np.nan, "defense": np.nan, "detection": np.nan}
    accs, det_accs, det_stats, def_accs, def_time = [], [], [], [], []
    fake_parts = []
    # a prefix-stable attack's run of n fake users starts with its run of m < n: its random stream
    # and its cache key leave the size out, and the sizes of a sweep share one run
    prefix = attack.prefix_stable
    size_key = () if prefix else (str(spec.attack_size),)
    for group in groups:
        keys = ("attack", spec.attack) + size_key + ((str(int(group[0])),) if spec.target_mode == "each" else ())
        rng = derive_rng(spec.seed, *keys)
        # the attacker sees only its knowledge view; the victim trains on the full poisoned data
        view = timed("knowledge", lambda: make_view(train, spec.knowledge, group, derive_rng(spec.seed, "knowledge", spec.knowledge)))
        # fake profiles depend on the attacker's side only (not on the victim or K): cells that
        # differ only there share them through the cache
        fkey = ("fakes", spec.dataset, spec.implicit, spec.seed, spec.attack, _frozen(spec.attack_params)) + size_key + (
                spec.n_filler, spec.knowledge, spec.target_strategy, spec.n_targets, spec.target_mode, tuple(int(t) for t in group)) + (
                (("k", spec.k),) if attack.uses_cell_k() else ())  # K only where the attack optimises a top-K list
        fakes = timed("attack", lambda: cache.fakes(
            fkey, n_fake, lambda: attack.generate(view, group, n_fake, spec.n_filler, rng, k=spec.k), train, prefix))
        fake_parts.append(fakes)
        pos = np.searchsorted(targets, group)
        if fakes.n_users == 0:  # nothing injected: the clean model's figures stand
            hr_after[pos] = np.asarray(before["hr_per_target"])[pos]
            hr_all_after[pos] = np.asarray(before["hr_all_per_target"])[pos]
            hr_any["after"] = before["hr_any"]
            accs.append(before["acc"])
            poisoned, ev = train, before
        else:
            poisoned = train.append_users(fakes)
            model = timed("fit_poisoned", lambda: victims.make(spec.victim, **vparams).fit(poisoned))
            ev = timed("evaluate", lambda: _evaluate(model, split, group, spec.k, threshold=spec.accuracy_threshold))
            hr_after[pos] = ev["hr_per_target"]
            hr_all_after[pos] = ev["hr_all_per_target"]
            hr_any["after"] = ev["hr_any"]
            accs.append(ev["acc"])
        if defended:
            # defense stage: the victim defended on the same poisoned data (an inference defense
            # wraps the model just trained; a training defense trains its own)
            plain = clean_model if fakes.n_users == 0 else model
            dmodel = timed("defense_fit", lambda: _defended(spec, vparams, poisoned, plain, vkey if fakes.n_users == 0 else None, cache))
            ev_f = timed("defense_evaluate", lambda: _evaluate(dmodel, split, group, spec.k, threshold=spec.accuracy_threshold))
            hr_def[pos] = ev_f["hr_per_target"]
            hr_all_def[pos] = ev_f["hr_all_per_target"]
            hr_any["defense"] = ev_f["hr_any"]
            def_accs.append(ev_f["acc"])
            def_time.append((ev["seconds_per_user"], ev_f["seconds_per_user"]))
        if detector is None:
            continue
        # detection stage: the provider flags users of the poisoned data, drops every flagged
        # user (fake or not) and retrains; the HR population is the normal users still present
        fitted = timed("detect_fit", lambda: _fit_detector(detector, spec, train, targets, len(group), n_fake, cache))
        mask = timed("detect_flag", lambda: fitted.flag(poisoned))
        stats = detection_rates(mask, poisoned.is_fake)
        if fitted.supervised:  # FPR over the normal users that were not training examples
            unseen = np.ones(train.n_normal, dtype=bool)
            unseen[fitted.train_normal_] = False
            stats["heldout_fpr"] = float(mask[: train.n_normal][unseen].mean()) if unseen.any() else float("nan")
        stats["n_flagged"] = int(mask.sum())
        stats["n_flagged_normal"] = int(mask[: train.n_normal].sum())
        stats["phases"] = {name: detection_rates(m, poisoned.is_fake) for name, m in fitted.phase_masks_.items()}
        det_stats.append(stats)
        if not mask.any():  # nobody removed: the figures without detection stand
            hr_det[pos] = np.asarray(ev["hr_per_target"])[pos] if ev is before else ev["hr_per_target"]
            hr_all_det[pos] = np.asarray(ev["hr_all_per_target"])[pos] if ev is before else ev["hr_all_per_target"]
            hr_any["detection"] = ev["hr_any"]
            det_accs.append(ev["acc"])
            continue
        kept_normal = np.flatnonzero(~mask[: train.n_normal])
        cleaned = poisoned.drop_users(mask)
        fit_d = lambda: victims.make(spec.victim, **vparams).fit(cleaned)  # noqa: E731
        if fakes.n_users == 0:  # the same flags on the clean data give the same model: share it
            fit_d = (lambda f=fit_d: cache.get(("detected-clean", vkey, hashlib.sha1(mask.tobytes()).hexdigest()), f))
        model_d = timed("fit_detected", fit_d)
        ev_d = timed("evaluate", lambda: _evaluate(model_d, split, group, spec.k, kept_normal, spec.accuracy_threshold))
        hr_det[pos] = ev_d["hr_per_target"]
        hr_all_det[pos] = ev_d["hr_all_per_target"]
        hr_any["detection"] = ev_d["hr_any"]
        det_accs.append(ev_d["acc"])
    after = {
        "hr": _mean(hr_after),
        "hr_per_target": hr_after.tolist(),
        "acc": _mean_acc(accs),
    }
    result = {
        "dataset": spec.dataset,
        "victim": spec.victim,
        "attack": spec.attack,
        "attack_size": spec.attack_size,
        "knowledge": spec.knowledge,
        "target_mode": spec.target_mode,
        "n_fake": int(fakes.n_users),
        "n_filler": spec.n_filler,
        "targets": [_raw_id(x) for x in train.item_ids[targets]],
        "target_index": [int(t) for t in targets],
        "k": spec.k,
        "seed": spec.seed,
        "hr_before": before["hr"],
        "hr_after": after["hr"],
        "hr_per_target_before": before["hr_per_target"],
        "hr_per_target_after": after["hr_per_target"],
        # the same hits over all normal users, those who rated the target included (Huang et al.)
        "hr_all_before": _mean(np.asarray(before["hr_all_per_target"], dtype=float)),
        "hr_all_after": _mean(hr_all_after),
        "accuracy_before": before["acc"],
        "accuracy_after": after["acc"],
        "victim_params": spec.victim_params,
        "attack_params": spec.attack_params,
        "detector": spec.detector,
        "detector_params": spec.detector_params,
    }
    if spec.accuracy_threshold is not None:
        result["accuracy_threshold"] = spec.accuracy_threshold
    if defended:
        result["defense"] = spec.defense
        result["defense_params"] = spec.defense_params
        result["hr_after_defense"] = _mean(hr_def)
        result["hr_per_target_after_defense"] = hr_def.tolist()
        result["hr_all_after_defense"] = _mean(hr_all_def)
        result["accuracy_after_defense"] = _mean_acc(def_accs)
        # top-K lists of the normal users: the wall time of recommend() per user, plain and defended
        result["inference_seconds_per_user"] = {"plain": float(np.mean([t[0] for t in def_time])), "defended": float(np.mean([t[1] for t in def_time]))}
    if detector is not None:
        result["detection"] = {
            **{m: _mean(np.array([d[m] for d in det_stats], dtype=float)) for m in ("fpr", "fnr", "heldout_fpr") if m in det_stats[0]},
            **{m: int(sum(d[m] for d in det_stats)) for m in ("n_flagged", "n_flagged_normal")},
            "phases": {
                p: {m: _mean(np.array([d["phases"][p][m] for d in det_stats], dtype=float)) for m in ("fpr", "fnr")}
                for p in det_stats[0]["phases"]
            },
        }
        if detector.supervised:
            result["detection_train"] = fitted.train_info_
        result["hr_after_detection"] = _mean(hr_det)
        result["hr_per_target_after_detection"] = hr_det.tolist()
        result["hr_all_after_detection"] = _mean(hr_all_det)
        result["accuracy_after_detection"] = _mean_acc(det_accs)
    if spec.hr_definition != "per-target":
        # seed 003: the headline HR fields hold the any-target figure over all normal users (the
        # hr_per_target_* and hr_all_* fields keep their per-target definitions)
        result["hr_definition"] = spec.hr_definition
        result["hr_before"] = before["hr_any"]
        result["hr_after"] = float(hr_any["after"])
        if defended:
            result["hr_after_defense"] = float(hr_any["defense"])
        if detector is not None:
            result["hr_after_detection"] = float(hr_any["detection"])
    result["seconds"] = {k_: round(v, 4) for k_, v in seconds.items()}
    if return_fakes:
        return result, fake_parts
    return result


def _defended(spec: CellSpec, vparams: dict, data: Interactions, fitted, clean_key: tuple | None, cache: CellCache):
    """The cell's victim defended by ``spec.defense`` on ``data``. A chain of inference defenses
    wraps ``fitted`` (the victim already trained on ``data``: no second fit); a chain with a
    training defense trains a fresh victim its way. On the clean data (``clean_key``) the defended
    model is shared by the cell's target groups."""
    def make():
        seed = derive_seed(spec.seed, "defense", spec.defense)
        parts = defenses.parse_chain(spec.defense)
        if all(defenses.DEFENSES.entry(p).factory.kind == "inference" for p in parts):
            model = defenses.build(spec.defense, spec.defense_params, fitted, seed=seed, attach=True)
        else:
            model = defenses.build(spec.defense, spec.defense_params, victims.make(spec.victim, **vparams), seed=seed).fit(data)
        return model

    if clean_key is None:
        return make()
    return cache.get(("defended-clean", clean_key, spec.defense, _frozen(spec.defense_params)), make)


def _mean(x: np.ndarray) -> float:
    return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")


def _make_detector(spec: CellSpec, train: Interactions):
    """The cell's detector (None when there is no detection stage), seeded from the cell."""
    entry = detect.DETECTORS.entry(spec.detector)
    cls = entry.factory
    if not cls.active:
        if spec.detector_params:
            raise ConfigError(f"detector 'none' takes no parameters (got {', '.join(spec.detector_params)})")
        return None
    det = make_seeded(spec.detector, spec.detector_params, derive_seed(spec.seed, "detector", spec.detector))
    det.check_data(train)
    return det


def _fit_detector(det, spec: CellSpec, train: Interactions, targets: np.ndarray, n_targets: int, n_fake: int, cache: CellCache):
    """Fit a supervised detector on fake users generated apart from the cell (detect.training);
    cached per (data, seed, training attacks, sizes, excluded targets)."""
    if not det.supervised:
        return det.fit(train)
    from .detect.svm import train_attack_names
    from .detect.training import training_contexts

    cfg = det.config
    names = train_attack_names(cfg.train_attacks)
    params: dict[str, dict] = {}
    if not names:
        if attacks.ATTACKS.entry(spec.attack).factory.injects:
            names, params = [spec.attack], {spec.attack: dict(spec.attack_params)}
        else:
            # nothing to imitate: the classic shilling models the rating features were designed for
            names = list(DEFAULT_TRAIN_ATTACKS)
    batch = cfg.train_batch or max(1, n_fake or int(round(spec.attack_size * train.n_normal)))
    tkey = ("det-train", spec.dataset, spec.implicit, spec.seed, tuple(names), _frozen({n: _frozen(p) for n, p in params.items()}),
            n_targets, spec.n_filler, batch, cfg.n_train_fake, cfg.n_train_normal, tuple(int(t) for t in targets), spec.k)
    fkey = tkey + ("features", cfg.features, cfg.degsim_k)

    def matrix():
        contexts, info = training_contexts(
            train, names, n_targets, spec.n_filler, batch, targets, spec.seed, cfg.n_train_fake, cfg.n_train_normal, params, k=spec.k)
        x, y = det.training_matrix(contexts)  # the contexts (data copies) are not kept
        return x, y, info

    x, y, info = cache.get(fkey, matrix)
    dkey = ("detector", spec.detector, _frozen(spec.detector_params)) + tkey

    def fit():
        fitted = type(det)(**det.get_params()).fit_matrix(x, y)
        fitted.train_normal_ = info["normal_users"]
        fitted.train_info_ = {k: v for k, v in info.items() if k != "normal_users"}
        return fitted

    return cache.get(dkey, fit)


#: training attacks of a supervised detector in a cell whose own attack injects nobody
DEFAULT_TRAIN_ATTACKS = ("random", "average", "bandwagon")


def spec_dict(spec: CellSpec) -> dict[str, Any]:
    return asdict(spec)
