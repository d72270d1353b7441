"""Conformance suites every component's tests inherit (DESIGN.md, "Testing shape").

A new victim's test file is a few lines::

    from recpoison.testing import VictimTests

    class TestMyModel(VictimTests):
        name = "my-model"
        params = {"epochs": 5}      # small and fast for the synthetic data

and likewise ``AttackTests`` for an attack, ``DetectorTests`` for a detector and ``DefenseTests``
for a defense. The suites check config round-trip and rejection of
unknown parameters, determinism under a fixed seed, output shapes and dtypes, that inputs are not
mutated, budgets, and a known-answer case on planted synthetic data.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pytest

from ..errors import ConfigError, NotFittedError
from ..interactions import Interactions
from ..metrics import loo_accuracy_from_topk
from ..splits import leave_one_out


def planted_blocks(
    n_users: int = 120,
    n_items: int = 90,
    n_groups: int = 3,
    p_in: float = 0.35,
    p_out: float = 0.02,
    seed: int = 0,
    implicit: bool = False,
) -> Interactions:
    """Known-answer data: users in ``n_groups`` groups, each group rates its own block of items
    often and high (4-5) and other items rarely and low (1-2). A model that learns anything puts a
    user's held-out in-block item near the top (the "checkerboard" test of ``implicit``)."""
    rng = np.random.default_rng(seed)
    gu = np.arange(n_users) % n_groups
    gi = np.arange(n_items) % n_groups
    same = gu[:, None] == gi[None, :]
    mask = rng.random((n_users, n_items)) < np.where(same, p_in, p_out)
    ratings = np.where(same, rng.integers(4, 6, mask.shape), rng.integers(1, 3, mask.shape))
    u, i = np.nonzero(mask)
    ts = rng.permutation(len(u)).astype(float)
    return Interactions.from_arrays(
        u, i, ratings[u, i], timestamps=ts, rating_scale=(1, 5), implicit=implicit, name="planted"
    )


def _snapshot(data: Interactions) -> tuple:
    m = data.matrix
    return (m.data.copy(), m.indices.copy(), m.indptr.copy(), data.n_normal)


def _same(a: tuple, b: tuple) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a[:3], b[:3])) and a[3] == b[3]


class VictimTests:
    """Inherit and set ``name`` (registry name) and ``params`` (fast settings for tiny data)."""

    name: ClassVar[str]
    params: ClassVar[dict[str, Any]] = {}
    #: leave-one-out HR@10 on the planted data must exceed this multiple of random (10 / n_items)
    planted_factor: ClassVar[float] = 2.0

    def make(self, **kw):
        from ..victims import VICTIMS

        return VICTIMS.make(self.name, **{**self.params, **kw})

    @pytest.fixture(scope="class")
    @classmethod
    def planted(cls) -> Interactions:
        return planted_blocks()

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, planted):
        return cls.make(cls, seed=1).fit(planted)

    def test_registered_with_paper(self):
        from ..victims import VICTIMS

        assert VICTIMS.entry(self.name).paper

    def test_config_round_trip(self):
        m = self.make()
        again = self.make(**m.get_params())
        assert again.get_params() == m.get_params()

    def test_rejects_unknown_parameter(self):
        with pytest.raises(ConfigError, match="unknown parameter"):
            self.make(no_such_parameter=1)

    def test_unfitted_use_fails_clearly(self):
        with pytest.raises(NotFittedError):
            self.make().score(np.arange(2))

    def test_shapes_and_dtypes(self, fitted, planted):
        users = np.array([0, 5, 7])
        s = fitted.score(users)
        assert s.shape == (3, planted.n_items) and s.dtype == np.float32
        assert np.all(np.isfinite(s))
        r = fitted.recommend(users, k=7)
        assert r.shape == (3, 7) and r.dtype == np.int64
        assert fitted.score().shape == (planted.n_users, planted.n_items)

    def test_recommends_only_unseen_items(self, fitted, planted):
        rec = fitted.recommend(None, k=10)
        seen = planted.matrix.toarray() != 0
        assert not np.any(np.take_along_axis(seen, rec, axis=1))
        # recommending seen items is possible when asked
        rec_all = fitted.recommend(None, k=10, exclude_seen=False)
        assert np.take_along_axis(seen, rec_all, axis=1).any()

    def test_recommend_is_sorted_by_score(self, fitted):
        rec = fitted.recommend(np.arange(5), k=10, exclude_seen=False)
        s = np.take_along_axis(fitted.score(np.arange(5)), rec, axis=1)
        assert np.all(np.diff(s, axis=1) <= 1e-6)

    def test_deterministic_for_a_seed(self, planted):
        a = self.make(seed=3).fit(planted).score(np.arange(10))
        b = self.make(seed=3).fit(planted).score(np.arange(10))
        np.testing.assert_array_equal(a, b)

    def test_does_not_mutate_input(self, planted):
        before = _snapshot(planted)
        self.make(seed=2).fit(planted)
        assert _same(before, _snapshot(planted))

    def test_learns_planted_structure(self, planted):
        split = leave_one_out(planted, np.random.default_rng(0))
        model = self.make(seed=0).fit(split.train)
        users = split.test_users
        hr = loo_accuracy_from_topk(model.recommend(users, 10), split.test_items, users)["hr"]
        random_hr = 10 / planted.n_items
        assert hr > self.planted_factor * random_hr, f"HR@10 {hr:.3f} vs random {random_hr:.3f}"

    def test_fit_ignores_earlier_fit(self, planted):
        other = planted_blocks(seed=9)
        a = self.make(seed=4).fit(planted).score(np.arange(5))
        m = self.make(seed=4).fit(other)
        b = m.fit(planted).score(np.arange(5))
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


class AttackTests:
    """Inherit and set ``name`` and ``params``; set ``promotes = False`` for ``none``."""

    name: ClassVar[str]
    params: ClassVar[dict[str, Any]] = {}
    promotes: ClassVar[bool] = True
    #: the victim used for the known-answer promotion check
    victim: ClassVar[str] = "mf"
    victim_params: ClassVar[dict[str, Any]] = {"d": 8, "reg": 1.0, "sweeps": 10}

    def make(self, **kw):
        from ..attacks import ATTACKS

        return ATTACKS.make(self.name, **{**self.params, **kw})

    @pytest.fixture(scope="class")
    @classmethod
    def view(cls) -> Interactions:
        return planted_blocks(seed=5)

    def targets(self, view) -> np.ndarray:
        # two rarely rated items: room to be promoted
        counts = view.item_counts()
        return np.argsort(counts, kind="stable")[:2]

    def test_registered_with_paper(self):
        from ..attacks import ATTACKS

        assert ATTACKS.entry(self.name).paper

    def test_config_round_trip(self):
        a = self.make()
        assert self.make(**a.get_params()).get_params() == a.get_params()

    def test_rejects_unknown_parameter(self):
        with pytest.raises(ConfigError, match="unknown parameter"):
            self.make(no_such_parameter=1)

    def test_budget(self, view):
        t = self.targets(view)
        fake = self.make().generate(view, t, 12, 6, np.random.default_rng(0))
        assert isinstance(fake, Interactions)
        assert fake.n_items == view.n_items and fake.n_normal == 0
        expected_rows = 12 if self.make().injects else 0
        assert fake.n_users == expected_rows
        if expected_rows:
            per_user = np.diff(fake.matrix.indptr)
            assert per_user.max() <= 6 + len(t)
            lo, hi = view.rating_scale
            assert fake.matrix.data.min() >= lo and fake.matrix.data.max() <= hi
            if view.rating_step:
                steps = (fake.matrix.data - lo) / view.rating_step
                np.testing.assert_allclose(steps, np.round(steps), atol=1e-6)
        view.append_users(fake)  # must be appendable

    def test_deterministic_for_a_seed(self, view):
        t = self.targets(view)
        a = self.make().generate(view, t, 8, 5, np.random.default_rng(7)).matrix
        b = self.make().generate(view, t, 8, 5, np.random.default_rng(7)).matrix
        assert (a != b).nnz == 0

    def test_does_not_mutate_view(self, view):
        before = _snapshot(view)
        self.make().generate(view, self.targets(view), 5, 4, np.random.default_rng(1))
        assert _same(before, _snapshot(view))

    def test_bad_inputs_fail_clearly(self, view):
        a = self.make()
        rng = np.random.default_rng(0)
        with pytest.raises(ConfigError):
            a.generate(view, [view.n_items], 3, 2, rng)
        with pytest.raises(ConfigError):
            a.generate(view, [0], -1, 2, rng)
        with pytest.raises(ConfigError):
            a.generate(view, [], 3, 2, rng)

    def test_promotes_targets_on_planted_data(self, view):
        """Known answer: with 15% fake users the targets rise in the normal users' rankings.

        Measured as the mean fraction of items a normal user's model scores above a target (0 =
        ranked first). Top-10 hits are too coarse on tiny data: heuristic attacks against explicit
        MF move targets up without always crossing the top-10 cut-off.
        """
        if not self.promotes:
            pytest.skip("this attack injects nobody")
        from ..victims import VICTIMS

        t = self.targets(view)
        n_fake = int(0.15 * view.n_users)
        fake = self.make().generate(view, t, n_fake, 10, np.random.default_rng(0))
        poisoned = view.append_users(fake)
        above = []
        for data in (view, poisoned):
            m = VICTIMS.make(self.victim, seed=0, **self.victim_params).fit(data)
            s = m.score(np.arange(data.n_normal)).astype(np.float64)
            above.append(float(np.mean(s[:, None, :] > s[:, t][:, :, None])))
        assert above[1] < above[0] - 0.02, f"share of items above targets: before {above[0]:.3f}, after {above[1]:.3f}"


class ClickAttackTests(AttackTests):
    """:class:`AttackTests` in seed 003's setting: implicit clicks (the synthetic power-law data, 300
    users x 200 items, as 0/1) against a small WRMF, for the attacks built for click data."""

    victim: ClassVar[str] = "wrmf"
    victim_params: ClassVar[dict[str, Any]] = {"factors": 8}

    @pytest.fixture(scope="class")
    @classmethod
    def view(cls) -> Interactions:
        from ..datasets.synthetic import make_synthetic

        return make_synthetic(n_users=300, n_items=200, seed=5).to_implicit()


def planted_attack(seed: int = 5, share: float = 0.1, attack: str = "average", n_filler: int = 15) -> tuple[Interactions, np.ndarray]:
    """Known-answer data for detectors: the synthetic power-law, low-rank ratings (300 users x 200
    items) with ``share`` x n_users fake users of ``attack`` appended (targets: the two least rated
    items); returns (poisoned data, targets). (The planted blocks are too regular for detectors:
    three groups are all of their principal structure.)"""
    from ..attacks import ATTACKS
    from ..datasets.synthetic import make_synthetic

    data = make_synthetic(n_users=300, n_items=200, seed=seed)
    targets = np.argsort(data.item_counts(), kind="stable")[:2]
    fakes = ATTACKS.make(attack).generate(data, targets, int(share * data.n_users), n_filler, np.random.default_rng(seed))
    return data.append_users(fakes), targets


class DetectorTests:
    """Inherit and set ``name`` and ``params``. Supervised detectors are trained on fake users
    generated apart from the evaluated ones (other targets, other random stream), as in the
    pipeline (``recpoison.detect.training``)."""

    name: ClassVar[str]
    params: ClassVar[dict[str, Any]] = {}
    #: the known-answer check: flags more fakes than the random oracle flagging as many users
    beats_random: ClassVar[bool] = True

    def make(self, **kw):
        from ..detect import DETECTORS

        return DETECTORS.make(self.name, **{**self.params, **kw})

    @pytest.fixture(scope="class")
    @classmethod
    def poisoned(cls) -> Interactions:
        return planted_attack()[0]

    def fitted(self, poisoned, **kw):
        from ..detect.training import training_contexts

        det = self.make(**kw)
        if det.supervised:
            clean = poisoned.normal()
            _, targets = planted_attack()
            contexts, _ = training_contexts(clean, ["average"], 2, 15, poisoned.n_fake, targets, seed=11, n_fake=90, n_normal=90)
            det.fit([c for c, _ in contexts], [y for _, y in contexts])
        else:
            det.fit(poisoned)
        return det

    def test_registered_with_paper(self):
        from ..detect import DETECTORS

        assert DETECTORS.entry(self.name).paper

    def test_config_round_trip(self):
        d = self.make()
        assert self.make(**d.get_params()).get_params() == d.get_params()

    def test_rejects_unknown_parameter(self):
        with pytest.raises(ConfigError, match="unknown parameter"):
            self.make(no_such_parameter=1)

    def test_mask_shape_and_dtype(self, poisoned):
        mask = self.fitted(poisoned).flag(poisoned)
        assert mask.shape == (poisoned.n_users,) and mask.dtype == bool

    def test_deterministic(self, poisoned):
        a = self.fitted(poisoned).flag(poisoned)
        b = self.fitted(poisoned).flag(poisoned)
        np.testing.assert_array_equal(a, b)

    def test_does_not_mutate_input(self, poisoned):
        before = _snapshot(poisoned)
        self.fitted(poisoned).flag(poisoned)
        assert _same(before, _snapshot(poisoned))

    def test_among_restricts_the_flags(self, poisoned):
        among = np.zeros(poisoned.n_users, dtype=bool)
        among[::2] = True
        mask = self.fitted(poisoned).flag(poisoned, among=among)
        assert not (mask & ~among).any()

    def test_unfitted_supervised_use_fails_clearly(self, poisoned):
        d = self.make()
        if not d.supervised:
            pytest.skip("unsupervised: nothing to fit")
        with pytest.raises(NotFittedError):
            d.flag(poisoned)
        with pytest.raises(ConfigError, match="labels"):
            d.fit(poisoned)

    def test_rating_features_refuse_implicit_data(self, poisoned):
        d = self.make()
        if not d.needs_ratings:
            pytest.skip("reads no rating values")
        implicit = poisoned.to_implicit()
        with pytest.raises(ConfigError, match="implicit"):
            d.fit(implicit, np.where(implicit.is_fake, 1, 0)).flag(implicit)

    def test_catches_more_fakes_than_the_random_oracle(self, poisoned):
        """Known answer: on synthetic data with 10% average-attack fakes, the detector catches a larger
        share of the fakes than flagging as many users at random would in expectation."""
        if not self.beats_random:
            pytest.skip("an oracle or baseline")
        from ..metrics import detection_rates

        mask = self.fitted(poisoned).flag(poisoned)
        caught = 1 - detection_rates(mask, poisoned.is_fake)["fnr"]
        random_share = mask.sum() / poisoned.n_users  # expected recall of as many random flags
        assert mask.any() and caught > random_share + 0.2, f"caught {caught:.2f} of the fakes, random would {random_share:.2f}"


class DefenseTests:
    """Inherit and set ``name`` (registry name), ``params`` (fast settings) and the ``victim`` it
    defends with ``victim_params``. The known-answer case: on :func:`planted_attack` (the average
    attack, 10% fake users) the defended model's target HR@``k`` over the normal users is below the
    undefended model's."""

    name: ClassVar[str]
    params: ClassVar[dict[str, Any]] = {}
    victim: ClassVar[str] = "mf"
    victim_params: ClassVar[dict[str, Any]] = {"d": 16}
    k: ClassVar[int] = 10

    def make(self, **kw):
        from ..defenses import DEFENSES
        from ..victims import VICTIMS

        return DEFENSES.make(self.name, **{**self.params, **kw}).wrap(VICTIMS.make(self.victim, **self.victim_params))

    @pytest.fixture(scope="class")
    @classmethod
    def poisoned(cls) -> Interactions:
        return planted_attack()[0]

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, poisoned):
        return cls.make(cls).fit(poisoned)

    def test_registered_with_paper(self):
        from ..defenses import DEFENSES

        assert DEFENSES.entry(self.name).paper

    def test_config_round_trip(self):
        from ..defenses import DEFENSES

        d = DEFENSES.make(self.name, **self.params)
        assert DEFENSES.make(self.name, **d.get_params()).get_params() == d.get_params()

    def test_rejects_unknown_parameter(self):
        from ..defenses import DEFENSES

        with pytest.raises(ConfigError, match="unknown parameter"):
            DEFENSES.make(self.name, no_such_parameter=1)

    def test_fit_before_wrap_fails_clearly(self, poisoned):
        from ..defenses import DEFENSES

        with pytest.raises(ConfigError, match="wrap"):
            DEFENSES.make(self.name, **self.params).fit(poisoned)

    def test_shapes_dtypes_and_unseen_items(self, fitted, poisoned):
        users = np.array([0, 5, 7])
        s = fitted.score(users)
        assert s.shape == (3, poisoned.n_items) and s.dtype == np.float32 and np.isfinite(s).all()
        rec = fitted.recommend(users, k=10)
        assert rec.shape == (3, 10) and rec.dtype == np.int64
        seen = poisoned.matrix[users].toarray() != 0
        assert not np.take_along_axis(seen, rec, axis=1).any()

    def test_deterministic(self, poisoned):
        users = np.arange(12)
        np.testing.assert_array_equal(self.make().fit(poisoned).score(users), self.make().fit(poisoned).score(users))

    def test_does_not_mutate_input(self, poisoned):
        before = _snapshot(poisoned)
        self.make().fit(poisoned).score(np.arange(5))
        assert _same(before, _snapshot(poisoned))

    def test_scoring_leaves_the_model_as_trained(self, fitted):
        users = np.arange(8)
        a = fitted.score(users)
        fitted.score(np.arange(20, 40))
        np.testing.assert_array_equal(a, fitted.score(users))

    def test_lowers_target_hr_of_the_average_attack_on_planted_data(self, fitted, poisoned):
        from ..metrics import target_hit_ratio
        from ..victims import VICTIMS

        _, targets = planted_attack()
        plain = VICTIMS.make(self.victim, **self.victim_params).fit(poisoned)
        hr_plain = float(np.mean(target_hit_ratio(plain, targets, self.k)))
        hr_def = float(np.mean(target_hit_ratio(fitted, targets, self.k)))
        assert hr_def < hr_plain, f"target HR@{self.k}: defended {hr_def:.3f}, undefended {hr_plain:.3f}"
