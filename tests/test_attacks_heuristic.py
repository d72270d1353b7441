import numpy as np

from recpoison.attacks import make
from recpoison.testing import AttackTests, planted_blocks


class TestNone(AttackTests):
    name = "none"
    promotes = False


class TestRandom(AttackTests):
    name = "random"


class TestAverage(AttackTests):
    name = "average"


class TestBandwagon(AttackTests):
    name = "bandwagon"


class TestPopular(AttackTests):
    name = "popular"


def _fake(name, view, n_fake=400, n_filler=10, **params):
    return make(name, **params).generate(view, np.array([0]), n_fake, n_filler, np.random.default_rng(0)).matrix


def test_targets_get_max_rating_and_fillers_avoid_targets():
    view = planted_blocks(seed=3)
    for name in ("random", "average", "bandwagon", "popular"):
        m = _fake(name, view, n_fake=50).toarray()
        assert np.all(m[:, 0] == view.r_max), name
        assert np.all((m != 0).sum(axis=1) == 11), name  # 10 fillers + 1 target, all distinct


def test_average_attack_follows_item_means():
    view = planted_blocks(seed=3)
    m = _fake("average", view)
    mean, _ = view.item_stats()
    col_mean = np.asarray(m.sum(axis=0)).ravel() / np.maximum(np.diff(m.tocsc().indptr), 1)
    rated = np.diff(m.tocsc().indptr) > 30
    rated[0] = False
    # the fake users' mean on each item tracks the normal users' mean (rounding shifts it a little)
    assert np.corrcoef(col_mean[rated], mean[rated])[0, 1] > 0.8


def test_random_attack_follows_global_distribution():
    view = planted_blocks(seed=3)
    m = _fake("random", view).tocsr()
    mask = np.ones(m.shape[1], bool)
    mask[0] = False
    vals = m[:, mask].data
    mu, _ = view.global_stats()
    assert abs(vals.mean() - mu) < 0.25


def test_bandwagon_and_popular_use_popular_items():
    view = planted_blocks(seed=3)
    counts = view.item_counts()
    top = set(np.argsort(-counts, kind="stable")[:9])
    for name, params in (("bandwagon", {"popular_pool": 9}), ("popular", {"pool_fraction": 0.1})):
        m = _fake(name, view, n_fake=200, **params).toarray()
        share_top = np.mean([len(top & set(np.flatnonzero(r))) >= 1 for r in m])
        assert share_top == 1.0, name  # every fake user rates at least one popular item
    # bandwagon rates its selected popular items with the maximum rating
    m = _fake("bandwagon", view, n_fake=100, popular_pool=5).toarray()
    pop5 = np.argsort(-counts, kind="stable")[:5]
    # (random fillers may also hit a popular item, with a random rating)
    assert np.all((m[:, pop5] == view.r_max).any(axis=1))


def test_implicit_view_gives_binary_profiles():
    view = planted_blocks(seed=3, implicit=True)
    for name in ("random", "average", "bandwagon", "popular"):
        m = _fake(name, view, n_fake=20)
        assert np.all(m.data == 1.0), name
