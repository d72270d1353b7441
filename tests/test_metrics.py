import numpy as np
import pytest

from recpoison.errors import ConfigError
from recpoison.interactions import Interactions
from recpoison.metrics import (
    any_hit_ratio_from_topk,
    detection_rates,
    loo_accuracy_from_topk,
    target_hit_ratio,
)
from recpoison.victims.base import Recommender, topk_indices

# 4 normal users + 1 fake user, 6 items. 0 = not rated.
R = np.array(
    [
        [5, 0, 0, 3, 0, 0],  # u0 has not rated items 1, 2, 4, 5
        [0, 4, 0, 0, 0, 1],  # u1: not 0, 2, 3, 4
        [0, 0, 2, 0, 0, 0],  # u2: not 0, 1, 3, 4, 5
        [1, 1, 1, 1, 1, 0],  # u3: only item 5 unrated
        [0, 5, 0, 0, 5, 0],  # fake user (row >= n_normal)
    ],
    dtype=float,
)


class Fixed(Recommender):
    """A recommender whose scores are a fixed matrix (for hand-computed metrics)."""

    from dataclasses import dataclass as _dc

    @_dc(frozen=True)
    class Config:
        pass

    name = "fixed"

    def __init__(self, scores):
        super().__init__()
        self.scores = np.asarray(scores, dtype=np.float32)

    def _fit(self, data):
        pass

    def _score(self, users):
        return self.scores[users]


SCORES = np.array(
    [
        [9, 1, 8, 9, 7, 0],
        [1, 9, 2, 3, 4, 5],
        [0, 5, 9, 1, 2, 3],
        [9, 9, 9, 9, 9, 1],
        [0, 0, 0, 0, 0, 0],
    ]
)


def data():
    return Interactions.from_matrix(R, n_normal=4)


def test_target_hit_ratio_by_hand():
    m = Fixed(SCORES).fit(data())
    # top-2 unseen: u0 -> [2, 4]; u1 -> [4, 3]; u2 -> [1, 5]; u3 -> [5] (+ -1)
    np.testing.assert_array_equal(m.recommend(None, 2)[:4], [[2, 4], [4, 3], [1, 5], [5, -1]])
    hr = target_hit_ratio(m, np.array([4, 5, 0]), k=2)
    # item 4: eligible u0,u1,u2 (u3 rated it; the fake is not a normal user): hits u0,u1 -> 2/3
    # item 5: eligible u0,u2,u3 (u1 rated it): hits u2,u3 -> 2/3
    # item 0: eligible u1,u2: hits none -> 0
    np.testing.assert_allclose(hr, [2 / 3, 2 / 3, 0.0])


def test_any_target_hit_ratio_by_hand():
    """Seed 003 §5.1.4: a user hits when any target of the set is in its top-K; all normal users
    count, those who rated a target included."""
    m = Fixed(SCORES).fit(data())
    topk = m.recommend(np.arange(4), 2)  # u0 [2, 4]; u1 [4, 3]; u2 [1, 5]; u3 [5, -1]
    # {4, 5}: u0 (4), u1 (4), u2 (5), u3 (5; u3 rated 4) -> 4/4; per target 2/3 each
    assert any_hit_ratio_from_topk(topk, np.array([4, 5]), np.arange(4)) == pytest.approx(1.0)
    # {0, 3}: only u1 (3; u0 rated both, still counted) -> 1/4
    assert any_hit_ratio_from_topk(topk, np.array([0, 3])) == pytest.approx(1 / 4)
    # {1}: u2 -> 1/4 over all users, while the per-target HR divides by the 2 users who have not rated it
    assert any_hit_ratio_from_topk(topk, np.array([1])) == pytest.approx(1 / 4)
    assert target_hit_ratio(m, np.array([1]), k=2)[0] == pytest.approx(1 / 2)
    assert np.isnan(any_hit_ratio_from_topk(topk[:0], np.array([1])))


def test_target_rated_by_every_normal_user_is_nan():
    m = Fixed(np.ones((2, 2))).fit(Interactions.from_matrix(np.array([[1.0, 0], [1, 0]])))
    hr = target_hit_ratio(m, np.array([0, 1]), k=1)
    assert np.isnan(hr[0]) and hr[1] >= 0


def test_k_must_be_positive():
    m = Fixed(SCORES).fit(data())
    with pytest.raises(ConfigError):
        target_hit_ratio(m, np.array([1]), k=0)


def test_leave_one_out_accuracy_by_hand():
    topk = np.array([[3, 1, 2], [0, 4, 5], [7, 8, 9]])
    test = np.array([1, 5, 2, -1])
    acc = loo_accuracy_from_topk(topk, test, np.array([0, 1, 2]))
    assert acc["hr"] == pytest.approx(2 / 3)
    assert acc["ndcg"] == pytest.approx((1 / np.log2(3) + 1 / np.log2(4)) / 3)
    assert np.isnan(loo_accuracy_from_topk(topk[:1], np.array([-1]), np.array([0]))["hr"])


def test_detection_rates():
    r = detection_rates([True, False, True, False], [True, True, False, False])
    assert r == {"fpr": 0.5, "fnr": 0.5}


def test_topk_orders_best_first_and_ties_by_index():
    s = np.array([[1.0, 3.0, 3.0, 2.0, 0.0]])
    np.testing.assert_array_equal(topk_indices(s, 3), [[1, 2, 3]])
    np.testing.assert_array_equal(topk_indices(s, 5), [[1, 2, 3, 0, 4]])
