"""MixRand and MixInf (Wu et al., TPAMI 2023; seed 004 App. B): conformance, Usermix profiles are
interpolations of real users (checked exactly against the recorded pairs and lambdas), prefix
stability, and MixInf's selection of the best-scoring candidate."""

import numpy as np
import pytest

from recpoison.attacks import make
from recpoison.attacks.mixrand import usermix
from recpoison.errors import ConfigError
from recpoison.interactions import Interactions
from recpoison.testing import AttackTests, planted_blocks

#: a small surrogate for the planted data (the defaults are PGA's: d 64, reg 7, 15 sweeps)
FAST_INF = {"d": 8, "reg": 1.0, "fit_sweeps": 5, "cg_iters": 10}


class TestMixRand(AttackTests):
    name = "mixrand"


class TestMixInf(AttackTests):
    name = "mixinf"
    params = FAST_INF


def _tiny(step):
    """8 users x 12 items with known ratings (0 = unrated); on a 0.5 grid, or continuous."""
    rng = np.random.default_rng(4)
    D = np.where(rng.random((8, 12)) < 0.4, rng.integers(2, 11, (8, 12)) / 2.0, 0.0)  # 1.0 .. 5.0
    D[0, :] = 0.0
    D[0, [1, 4]] = [5.0, 1.0]  # a user with two ratings: the union is sometimes small
    u, i = np.nonzero(D)
    view = Interactions.from_arrays(u, i, D[u, i], rating_scale=(1.0, 5.0), rating_step=step, name="tiny")
    return view, D


def _expected(view, ra, rb, lam, missing):
    """The documented rule: the mixed non-target vector on the view's grid and its support."""
    both = (ra > 0) & (rb > 0)
    if missing == "other":
        x = np.where(both, lam * ra + (1 - lam) * rb, ra + rb)
        support = (ra > 0) | (rb > 0)
    else:
        x = lam * ra + (1 - lam) * rb
        lo = view.r_min
        rounded = lo + np.round((x - lo) / view.rating_step) * view.rating_step if view.rating_step else x
        support = ((ra > 0) | (rb > 0)) & (rounded >= lo - 1e-9)
    return view.to_scale(x), support


@pytest.mark.parametrize("step", [0.5, None])
@pytest.mark.parametrize("missing", ["other", "zero"])
@pytest.mark.parametrize("mix", ["uniform", "beta"])
def test_mixrand_profiles_interpolate_the_recorded_real_users(step, missing, mix):
    view, D = _tiny(step)
    t = np.array([2, 7])
    n_fake, n_filler = 40, 5
    a = make("mixrand", missing=missing, mix=mix)
    fake = a.generate(view, t, n_fake, n_filler, np.random.default_rng(0)).matrix.toarray()
    assert a.pairs_.shape == (n_fake, 2) and a.lambdas_.shape == (n_fake,)
    sizes = []
    for k in range(n_fake):
        ia, ib = a.pairs_[k]
        lam = a.lambdas_[k]
        assert ia != ib and 0 <= ia < view.n_normal and 0 <= ib < view.n_normal and 0.0 <= lam <= 1.0
        ra, rb = D[ia].copy(), D[ib].copy()
        ra[t] = rb[t] = 0.0
        x, support = _expected(view, ra, rb, lam, missing)
        row = fake[k]
        assert np.all(row[t] == view.r_max)
        kept = np.setdiff1d(np.flatnonzero(row), t)
        assert support[kept].all()  # only items one of the two users rated
        assert len(kept) == min(n_filler, int(support.sum()))  # n_filler of them, or all
        np.testing.assert_array_equal(row[kept], x[kept].astype(np.float32))
        sizes.append(int(support.sum()))
    assert min(sizes) < n_filler < max(sizes)  # both cases occurred
    if step is None:  # continuous scale: the values are the interpolations themselves, not only rounded ones
        assert np.any((fake % 0.5 != 0) & (fake != 0))


def test_usermix_keeps_a_uniform_subset_and_lambda_follows_the_mix():
    view, _ = _tiny(0.5)
    t = np.array([2])
    u = usermix(view, t, 3000, 3, np.random.default_rng(1))
    assert 0.4 < u.lambdas.mean() < 0.6 and 0.75 < np.mean((u.lambdas > 0.1) & (u.lambdas < 0.9)) < 0.85
    b = usermix(view, t, 3000, 3, np.random.default_rng(1), mix="beta", alpha=0.2)
    assert np.mean((b.lambdas > 0.1) & (b.lambdas < 0.9)) < 0.5  # Beta(0.2, 0.2) is U-shaped
    # the pair (3, 5), drawn many times, keeps different subsets: each entry of the union is kept
    # about 3 / |union| of the time
    sel = (u.pairs[:, 0] == 3) & (u.pairs[:, 1] == 5)
    counts = np.asarray((u.fillers[np.flatnonzero(sel)] != 0).sum(axis=0)).ravel()
    union = np.flatnonzero(counts)
    share = counts[union] / sel.sum()
    np.testing.assert_allclose(share, 3 / len(union), atol=0.2)


@pytest.mark.parametrize("name,params", [("mixrand", {}), ("mixinf", FAST_INF)])
def test_prefix_stable(name, params):
    view = planted_blocks(seed=2)
    t = np.array([4, 9])
    a = make(name, **params)
    long = a.generate(view, t, 5, 6, np.random.default_rng(3)).matrix
    short = a.generate(view, t, 3, 6, np.random.default_rng(3)).matrix
    assert a.prefix_stable and (long[:3] != short).nnz == 0


def test_mixinf_keeps_the_best_scoring_candidate():
    view = planted_blocks(seed=5)
    t = np.argsort(view.item_counts(), kind="stable")[:2]
    a = make("mixinf", n_candidates=30, **FAST_INF)
    fake = a.generate(view, t, 6, 8, np.random.default_rng(2)).matrix.toarray().astype(np.float64)
    assert a.scores_.shape == (6, 30)
    np.testing.assert_array_equal(a.chosen_, np.argmax(a.scores_, axis=1))
    fill = fake.copy()
    fill[:, t] = 0.0
    np.testing.assert_allclose(fill @ a.influence_, a.scores_.max(axis=1), rtol=1e-9, atol=1e-9)
    assert np.all(a.scores_.std(axis=1) > 0)  # a real choice among different candidates
    # the influence vector: `repeat` vectors of max |value| 1 summed; zeros (the targets) -> the minimum
    assert np.abs(a.influence_).max() <= 3 + 1e-9
    assert np.all(a.influence_[t] == a.influence_.min())
    # the probe: a Usermix user with the targets at r_max
    assert np.all(a.probe_.toarray()[0, t] == view.r_max) and a.probe_.nnz <= 8 + len(t)


def test_mixinf_with_one_candidate_is_a_usermix_user():
    """With ``n_candidates=1`` there is nothing to select: MixInf's fake users are the Usermix users
    MixRand draws from the same stream after the probe and the surrogate seeds."""
    view = planted_blocks(seed=5)
    t = np.argsort(view.item_counts(), kind="stable")[:2]
    inf = make("mixinf", n_candidates=1, repeat=2, **FAST_INF)
    got = inf.generate(view, t, 7, 8, np.random.default_rng(11)).matrix
    rng = np.random.default_rng(11)
    usermix(view, t, 1, 8, rng)  # the probe
    rng.integers(2**31 - 1, size=2)  # the surrogate seeds
    rand = make("mixrand")
    want = rand.generate(view, t, 7, 8, rng).matrix
    assert (got != want).nnz == 0
    np.testing.assert_array_equal(inf.pairs_, rand.pairs_)
    np.testing.assert_array_equal(inf.lambdas_, rand.lambdas_)


def test_mixinf_refuses_implicit_data_and_bad_params():
    view = planted_blocks(seed=5, implicit=True)
    with pytest.raises(ConfigError, match="explicit"):
        make("mixinf", **FAST_INF).generate(view, [0], 3, 4, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="n_candidates"):
        make("mixinf", n_candidates=0)
    with pytest.raises(ConfigError, match="mix"):
        make("mixrand", mix="gauss")
    with pytest.raises(ConfigError, match="missing"):
        make("mixrand", missing="mean")


def test_mixrand_on_implicit_data_is_the_union():
    view = planted_blocks(seed=5, implicit=True)
    a = make("mixrand")
    fake = a.generate(view, [0], 4, 1000, np.random.default_rng(0)).matrix
    B = view.binary()
    for k, (ia, ib) in enumerate(a.pairs_):
        union = ((B[ia] + B[ib]) != 0).toarray().ravel()
        union[0] = True
        np.testing.assert_array_equal(fake[k].toarray().ravel() != 0, union)
    assert np.all(fake.data == 1.0)


def test_mixinf_defaults_are_pgas_surrogate():
    from recpoison.attacks._li2016 import Li2016Config

    p = make("mixinf").get_params()
    li = Li2016Config()
    assert (p["d"], p["reg"], p["fit_sweeps"], p["cg_iters"], p["cg_tol"], p["dtype"]) == (
        li.d, li.reg, li.fit_sweeps, li.cg_iters, li.cg_tol, li.dtype)
    assert (p["n_candidates"], p["repeat"], p["mix"], p["missing"]) == (100, 3, "uniform", "other")
