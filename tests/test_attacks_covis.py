"""Co-visitation attack (Yang, Gong, Cai, NDSS 2017; seed 003's CoVis baseline): conformance, the
fractional-knapsack LP, and its known answer on an item-to-item co-visitation recommender."""

import numpy as np
import pytest

from recpoison.attacks import make
from recpoison.attacks.covis import covis_plan, covisitation_needs
from recpoison.testing import AttackTests, ClickAttackTests, planted_blocks


class TestCovis(AttackTests):
    name = "covis"


class TestCovisImplicit(AttackTests):
    """Seed 003's setting, implicit data, against an item-to-item victim (the kind of recommender the
    attack was designed for). On these planted blocks WRMF hardly moves (share of items above the
    targets 0.562 -> 0.556; random: 0.304): the cheapest anchors lie mostly in the targets' own blocks
    (141 of the 180 filler slots). On the synthetic power-law data it beats random and popular on
    WRMF (0.535 -> 0.464; 0.504, 0.514)."""

    name = "covis"
    victim = "itemknn"
    victim_params = {}

    @pytest.fixture(scope="class")
    @classmethod
    def view(cls):
        return planted_blocks(seed=5, implicit=True)


def covis_lists_holding(data, target: int, n_list: int) -> np.ndarray:
    """Items whose co-visitation list (the n_list items most co-visited with it) holds ``target``:
    its count beats the n_list-th largest count of the other items."""
    b = data.binary().astype(np.float64)
    c = (b.T @ b).toarray()
    np.fill_diagonal(c, -1)
    rival = c.copy()
    rival[:, target] = -1
    s = np.maximum(-np.partition(-rival, n_list - 1, axis=1)[:, n_list - 1], 0)
    held = c[:, target] > s
    held[target] = False
    return held


def test_needs_match_a_hand_count():
    # users x items visits; target 3; list length 1
    b = np.array([[1, 1, 0, 0], [1, 1, 0, 1], [1, 0, 1, 0], [0, 1, 1, 0]], dtype=float)
    need = covisitation_needs(b, np.array([3]), 1)[:, 0]
    # item 0: rivals 1 (2 co-visits), 2 (1) -> s = 2, C[0, 3] = 1 -> 2; item 1: rivals 0 (2), 2 (1): 2 - 1 + 1
    # item 2: rivals 0 (1), 1 (1) -> s = 1, C[2, 3] = 0 -> 2; the target itself: 0
    np.testing.assert_array_equal(need, [2, 2, 2, 0])


def test_one_target_plan_is_the_fractional_knapsack_then_fills_the_budget():
    need = np.array([[2], [1], [4], [3], [0], [9], [1]])
    weight = np.array([4.0, 1.0, 10.0, 3.0, 5.0, 50.0, -1.0])  # item 6: a target
    alloc = covis_plan(need, weight, budget=7, cap=4)
    # ratios w/c: item 2 (2.5), item 0 (2), items 1 and 3 (1 each): 4 + 2 to items 2 and 0, the last
    # fake user to item 1 or 3 (its LP share rounds to 1 either way); item 4 is listed already, item 5
    # needs more than the 4 fake users, the target is never an anchor
    assert alloc[2] == 4 and alloc[0] == 2 and alloc[1] + alloc[3] == 1 and alloc[4] == alloc[5] == alloc[6] == 0
    # a budget beyond every promotable anchor tops items up by weight, at most cap users per item
    alloc = covis_plan(need, weight, budget=20, cap=4)
    assert alloc.sum() == 20 and alloc.max() <= 4 and np.all(alloc[:4] >= need[:4, 0]) and alloc[6] == 0
    assert alloc[5] == 4 and alloc[2] == 4  # the most visited items are topped up first


def test_several_targets_share_the_anchors_visits():
    """An anchor visited by k fake users gains k co-visitations with every target: one anchor that
    promotes two targets at cost 3 beats two anchors that promote one target each at cost 2."""
    need = np.array([[3, 3], [2, 0], [0, 2], [9, 9]])
    weight = np.array([1.0, 1.0, 1.0, 1.0])
    alloc = covis_plan(need, weight, budget=3, cap=5)
    np.testing.assert_array_equal(alloc, [3, 0, 0, 0])


def test_one_anchor_per_fake_user_promotes_exactly_the_planned_anchors():
    """Known answer on the co-visitation recommender: with one filler each (one fake co-visitation
    per fake user, no side effects) every anchor the LP funds lists the target afterwards, and more
    anchors list it than after the random attack with the same budget."""
    view = planted_blocks(n_users=200, n_items=120, seed=5, implicit=True)
    t = np.argsort(view.item_counts(), kind="stable")[:1]
    need = covisitation_needs(view.binary(), t, 10)[:, 0]
    fake = make("covis").generate(view, t, 30, 1, np.random.default_rng(0))
    after = covis_lists_holding(view.append_users(fake), int(t[0]), 10)
    anchors = np.flatnonzero(fake.matrix.toarray().sum(axis=0))
    anchors = anchors[anchors != t[0]]
    visits = np.asarray((fake.matrix != 0).sum(axis=0)).ravel()
    funded = anchors[visits[anchors] >= need[anchors]]
    assert len(funded) >= 3 and after[funded].all()
    before = covis_lists_holding(view, int(t[0]), 10).sum()
    rand = make("random").generate(view, t, 30, 1, np.random.default_rng(0))
    assert after.sum() > covis_lists_holding(view.append_users(rand), int(t[0]), 10).sum() >= before


def test_fake_users_visit_every_target_and_distinct_anchors():
    view = planted_blocks(seed=5, implicit=True)
    t = np.argsort(view.item_counts(), kind="stable")[:3]
    a = make("covis")
    f = a.generate(view, t, 9, 5, np.random.default_rng(1)).matrix.toarray()
    assert np.all(f[:, t] == 1)
    assert np.all((f != 0).sum(axis=1) == 5 + 3)
    rows = a.allocation_
    assert np.all(rows >= 0) and not np.isin(rows, t).any()
    assert all(len(set(r)) == len(r) for r in rows)  # no item twice in a profile


class TestCovisClicksOnWRMF(ClickAttackTests):
    """Seed 003's conformance setting of RAPU-R, RAPU-G and RevAdv (synthetic power-law clicks, a
    WRMF victim with 8 factors): CoVis's fake clicks raise the targets there too. Measured (share of
    items above the two targets, 15% fake users, 10 fillers): none 0.712, covis 0.476; random 0.415
    and popular 0.330 move them further on this small data."""

    name = "covis"
