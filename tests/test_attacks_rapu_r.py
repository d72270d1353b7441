"""RAPU-R (seed 003 §4, Algorithm 3): conformance on explicit and implicit data, the reversing rule
(proxies = the pool items best aligned with q_t + mean target-user vector), the code's options, and
promotion on a WRMF victim."""

import numpy as np

from recpoison.attacks import make
from recpoison.attacks._unrolled import WRMFSettings, train_factors
from recpoison.datasets.synthetic import make_synthetic
from recpoison.testing import AttackTests, ClickAttackTests, planted_blocks

FAST = {"epochs": 40, "d": 8}


class TestRapuR(AttackTests):
    name = "rapu-r"
    params = FAST


class TestRapuRImplicit(ClickAttackTests):
    """Seed 003's setting: clicks, against WRMF, on the synthetic power-law clicks. (On the planted
    blocks the share of items above the targets hardly moves, 0.559 -> 0.555: the mean target-user
    vector of three symmetric groups nearly cancels, so the proxies come from the targets' own
    block and reach one group of users.)"""

    name = "rapu-r"
    params = FAST


def _view():
    return planted_blocks(seed=5, implicit=True)


def test_proxies_follow_the_reversed_direction():
    view = _view()
    t = np.argsort(view.item_counts(), kind="stable")[:1]
    a = make("rapu-r", pool_fraction=0.3, **FAST)
    rng = np.random.default_rng(0)
    f = a.generate(view, t, 6, 5, rng).matrix.toarray()
    # recompute: the surrogate from the same seed, eps* = mean of the users who did not click t
    seed = int(np.random.default_rng(0).integers(2**31))
    P, Q = train_factors(view.binary(), WRMFSettings(d=8), 40, seed)
    clicked = view.binary().toarray()[:, t[0]] > 0
    v = P[~clicked].mean(axis=0) + Q[t[0]]
    np.testing.assert_allclose(a.directions_[0], v, rtol=1e-5, atol=1e-7)
    counts = view.item_counts().astype(float)
    counts[t] = -1
    pool = np.argsort(-counts, kind="stable")[: round(0.3 * view.n_items)]
    best = pool[np.argsort(-(Q[pool] @ v), kind="stable")[:5]]
    np.testing.assert_array_equal(np.sort(a.proxies_[0]), np.sort(best))
    assert np.all(f[:, t[0]] == 1) and np.all(f.sum(axis=1) == 6)
    assert np.all(f[:, best] == 1)  # every controlled user of the target clicks the same proxies


def test_several_targets_round_robin_and_joint():
    view = _view()
    t = np.argsort(view.item_counts(), kind="stable")[[0, 40, 80]]
    a = make("rapu-r", **FAST)
    f = a.generate(view, t, 7, 4, np.random.default_rng(1)).matrix.toarray()
    assert a.proxies_.shape == (3, 4)
    assert np.all(f[:, t] == 1)  # every fake user clicks all targets
    for m in range(7):
        np.testing.assert_array_equal(np.flatnonzero(f[m]), np.sort(np.concatenate([a.proxies_[m % 3], t])))
    j = make("rapu-r", assign="joint", **FAST)
    fj = j.generate(view, t, 7, 4, np.random.default_rng(1)).matrix.toarray()
    assert j.proxies_.shape == (1, 4) and (fj == fj[0]).all()


def test_code_options_change_the_direction():
    view = _view()
    t = np.argsort(view.item_counts(), kind="stable")[:1]
    base = make("rapu-r", **FAST)
    base.generate(view, t, 2, 4, np.random.default_rng(0))
    bug = make("rapu-r", target_direction="scalar_bug", **FAST)
    bug.generate(view, t, 2, 4, np.random.default_rng(0))
    d = base.directions_[0] - bug.directions_[0]
    # scalar_bug: eps* + mean(q_t) 1 instead of eps* + q_t
    assert np.ptp(d) > 1e-6
    rnd = make("rapu-r", target_users="random", **FAST)
    rnd.generate(view, t, 2, 4, np.random.default_rng(0))
    assert not np.allclose(rnd.directions_, base.directions_)


def test_small_pool_is_topped_up_from_other_items():
    view = _view()
    t = np.argsort(view.item_counts(), kind="stable")[:1]
    a = make("rapu-r", pool_fraction=0.02, **FAST)  # 2 items in the pool, 6 proxies needed
    f = a.generate(view, t, 3, 6, np.random.default_rng(0)).matrix.toarray()
    assert np.all(f.sum(axis=1) == 7) and len(set(a.proxies_[0])) == 6


def test_raises_target_scores_on_wrmf():
    """Untuned known answer: 10% fake users, 10 proxies, against the WRMF victim (8 factors) on the
    synthetic power-law clicks; the share of items scored above the target (lower is better).
    Measured (not asserted): none 0.712, rapu-r 0.577 (0.535 with the default 100 epochs, d 64),
    random 0.481, popular 0.433. On this small data the heuristic baselines move the target further
    than RAPU-R (all 30 controlled users click the same 10 proxies); on the planted blocks
    (200 x 120): none 0.572, rapu-r 0.534, random 0.431."""
    from recpoison.victims import VICTIMS

    view = make_synthetic(n_users=300, n_items=200, seed=5).to_implicit()
    t = np.argsort(view.item_counts(), kind="stable")[:1]
    shares = {}
    for name, params in (("none", {}), ("rapu-r", FAST)):
        fake = make(name, **params).generate(view, t, 30, 10, np.random.default_rng(0))
        data = view.append_users(fake)
        m = VICTIMS.make("wrmf", factors=8, seed=0).fit(data)
        s = m.score(np.arange(view.n_normal)).astype(np.float64)
        shares[name] = float(np.mean(s > s[:, t]))
    assert shares["rapu-r"] < shares["none"] - 0.05, shares


def test_prefix_stable():
    view = planted_blocks(seed=5)  # explicit: the filler ratings are random too
    t = np.argsort(view.item_counts(), kind="stable")[:2]
    big = make("rapu-r", **FAST).generate(view, t, 9, 4, np.random.default_rng(3)).matrix.toarray()
    small = make("rapu-r", **FAST).generate(view, t, 5, 4, np.random.default_rng(3)).matrix.toarray()
    np.testing.assert_array_equal(big[:5], small)
