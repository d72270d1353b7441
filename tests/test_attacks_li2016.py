"""PGA and SGLD (Li et al., NeurIPS 2016): conformance, the implicit gradient against finite
differences of retraining, and promotion on planted data."""

import numpy as np
import pytest

from recpoison.attacks import make
from recpoison.attacks._li2016 import Surrogate
from recpoison.errors import ConfigError
from recpoison.metrics import hit_ratio_from_topk
from recpoison.testing import AttackTests, planted_blocks
from recpoison.victims import VICTIMS

FAST = {"d": 8, "reg": 1.0, "iters": 5, "refine_iters": 5}


class TestPGA(AttackTests):
    name = "pga"
    params = FAST


class TestSGLD(AttackTests):
    name = "sgld"
    params = FAST


def _tiny():
    view = planted_blocks(n_users=30, n_items=20, seed=1)
    targets = np.array([3, 7])
    rng = np.random.default_rng(0)
    M = np.clip(rng.normal(3, 1, size=(3, 20)), 1, 5)
    M[:, targets] = 5
    return view, targets, M


def _converge(sur, tol=1e-11, max_rounds=200):
    """ALS sweeps until no factor moves by more than ``tol`` (stationary point, float64)."""
    for _ in range(max_rounds):
        X, Y = sur.X.clone(), sur.Y.clone()
        sur.fit(25)
        if max(float((sur.X - X).abs().max()), float((sur.Y - Y).abs().max())) < tol:
            return
    raise AssertionError("ALS did not converge")


@pytest.mark.parametrize("dense", [True, False])
def test_implicit_gradient_matches_finite_differences_of_retraining(dense):
    """dR/dM~ from the ALS stationary conditions equals central finite differences of R after
    retraining the surrogate to convergence (warm start from the unperturbed solution).

    Tolerance: relative 1e-5 (measured agreement ~1e-8; ALS is run until no factor moves by more
    than 1e-11, in float64; central differences with step 1e-4).
    """
    view, targets, M = _tiny()
    support = None
    if not dense:
        support = np.zeros(M.shape, dtype=bool)
        support[:, [0, 2, 5, 11, 19]] = True
        support[:, targets] = True
    sur = Surrogate(view, targets, 3, d=3, reg=2.0, dtype="float64", seed=0, support=support)
    sur.set_fake(M)
    _converge(sur)
    G = sur.gradient(cg_iters=500, cg_tol=1e-12)
    assert np.all(G[:, targets] == 0)
    if support is not None:
        assert np.all(G[~support] == 0)
    X0, Y0 = sur.X.clone(), sur.Y.clone()
    eps = 1e-4
    checked = []
    for u, i in [(0, 0), (1, 5), (2, 11), (0, 19), (1, 2)]:
        if support is not None and not support[u, i]:
            continue
        vals = []
        for sign in (1.0, -1.0):
            Mp = M.copy()
            Mp[u, i] += sign * eps
            sur.X, sur.Y = X0.clone(), Y0.clone()
            sur.set_fake(Mp)
            _converge(sur)
            vals.append(sur.utility())
        fd = (vals[0] - vals[1]) / (2 * eps)
        checked.append((G[u, i], fd))
    assert len(checked) >= 3
    g, fd = np.array(checked).T
    assert np.abs(fd).max() > 1e-2  # the check is not vacuous
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-7 * np.abs(fd).max())


def _target_hr(view, fake, targets):
    data = view if fake is None else view.append_users(fake)
    model = VICTIMS.make("mf", seed=0, d=8, reg=1.0, sweeps=15).fit(data)
    users = np.arange(data.n_normal)
    hr = hit_ratio_from_topk(model.recommend(users, 10), data, targets, users)
    return float(np.nanmean(hr))


def test_pga_raises_target_hit_ratio_on_planted_data():
    view = planted_blocks(n_users=200, n_items=90, seed=5)
    targets = np.argsort(view.item_counts(), kind="stable")[:2]
    fake = make("pga", d=8, reg=1.0).generate(view, targets, 20, 10, np.random.default_rng(0))
    before, after = _target_hr(view, None, targets), _target_hr(view, fake, targets)
    assert after > before + 0.05, (before, after)


def test_pga_ascends_the_utility():
    """Phase-1 steps raise the surrogate's utility (the optimisation goes uphill)."""
    view, targets, M = _tiny()
    sur = Surrogate(view, targets, 3, d=4, reg=2.0, dtype="float64", seed=0)
    sur.set_fake(M)
    sur.fit(200)
    u0 = sur.utility()
    attack = make("pga", d=4, reg=2.0, inner_sweeps=200, step=0.25)
    M2, _ = attack._optimise(sur, M, view, targets, np.random.default_rng(0), 5)
    assert sur.utility() > u0 + 0.05 * abs(u0)
    assert M2.min() >= 1 and M2.max() <= 5 and np.all(M2[:, targets] == 5)


def test_fillers_are_the_largest_absolute_ratings_and_targets_get_rmax():
    view = planted_blocks(seed=3)
    t = np.array([0, 1])
    fake = make("sgld", **FAST).generate(view, t, 6, 7, np.random.default_rng(2)).matrix.toarray()
    assert np.all(fake[:, t] == view.r_max)
    assert np.all((fake != 0).sum(axis=1) == 9)


def test_sgld_beta_zero_samples_the_prior():
    """With beta = 0 SGLD samples the normal users' per-item rating distribution only, so the
    fake ratings stay close to the item means (the "mimic normal users" part of Li et al. §5)."""
    view = planted_blocks(seed=3)
    t = np.array([0])
    fake = make("sgld", d=4, reg=1.0, beta=0.0, iters=15, refine_iters=0).generate(
        view, t, 40, 20, np.random.default_rng(0)).matrix
    mean, _ = view.item_stats()
    coo = fake.tocoo()
    keep = coo.col != 0
    err = np.abs(coo.data[keep] - mean[coo.col[keep]]).mean()
    assert err < 1.5, err


def test_implicit_data_is_refused():
    view = planted_blocks(seed=3, implicit=True)
    with pytest.raises(ConfigError, match="explicit"):
        make("pga", **FAST).generate(view, np.array([0]), 3, 2, np.random.default_rng(0))


def test_config_validation():
    with pytest.raises(ConfigError, match="step"):
        make("pga", step=0)
    with pytest.raises(ConfigError, match="beta"):
        make("sgld", beta=-1)


@pytest.mark.slow
def test_pga_and_sgld_promote_on_ml100k():
    """Seed 001 protocol on the real data: 3% fake users, 20 fillers, MF victim (d = 64)."""
    from recpoison.pipeline import CellSpec, CellCache, run_cell

    cache = CellCache()
    none = run_cell(CellSpec(dataset="ml-100k", attack="none"), cache)
    for name in ("pga", "sgld"):
        res = run_cell(CellSpec(dataset="ml-100k", attack=name), cache)
        assert res["n_fake"] == 28
        assert res["hr_after"] > none["hr_after"] + 0.05, (name, res["hr_after"], none["hr_after"])


def test_sgld_stays_inside_the_bounds_without_oscillating_on_a_low_variance_item():
    """An item every normal user rates 3 (sigma floored at 0.1): the exact Ornstein-Uhlenbeck step
    keeps its fake ratings near 3 at every step, inside (1, 5); the Euler step (factor
    s / (2 sigma^2) = 5 > 2) overshoots and ends on the bounds (issue 9 finding 5)."""
    view = planted_blocks(n_users=30, n_items=20, seed=1)
    m = view.matrix.tocsr(copy=True)
    m.data[m.indices == 5] = 3.0
    view = view.with_matrix(m)
    targets = np.array([3])
    start = np.full((40, 20), 3.0)
    start[:, 5] = 4.0  # one rating unit off the item's only value
    start[:, targets] = 5

    def trace(update):
        sur = Surrogate(view, targets, 40, d=3, reg=2.0, dtype="float64", seed=0)
        sur.set_fake(start)
        sur.fit(20)
        attack = make("sgld", d=3, reg=2.0, beta=0.0, update=update)
        M, out = start.copy(), []
        for i in range(8):
            M, _ = attack._optimise(sur, M, view, targets, np.random.default_rng(i), 1)
            out.append(M[:, 5].copy())
        return np.array(out)

    ou = trace("ou")
    assert np.all(np.abs(ou - 3.0) < 0.6) and ou.min() > 1 and ou.max() < 5
    euler = trace("euler")
    assert np.mean((euler[-1] == 1) | (euler[-1] == 5)) > 0.5


def test_pga_random_fillers_are_drawn_first_and_only_their_ratings_optimised():
    """fillers=random (seed 001's PGA): the fillers do not depend on the optimisation (the same with
    0 and with 6 steps), the ratings on them do, and they differ from Li et al.'s optimised fillers."""
    view = planted_blocks(seed=3)
    t = np.array([0])
    kw = {"d": 4, "reg": 1.0, "fillers": "random"}

    def run(**extra):
        return make("pga", **{**kw, **extra}).generate(view, t, 8, 6, np.random.default_rng(5)).matrix.toarray()

    still, moved = run(iters=0, refine_iters=0), run(iters=3, refine_iters=3)
    assert np.array_equal(still != 0, moved != 0)
    assert np.all((moved != 0).sum(axis=1) == 7) and np.all(moved[:, 0] == view.r_max)
    assert not np.array_equal(still, moved)
    optimised = make("pga", d=4, reg=1.0, iters=3, refine_iters=3).generate(view, t, 8, 6, np.random.default_rng(5)).matrix.toarray()
    assert not np.array_equal(optimised != 0, moved != 0)
    with pytest.raises(ConfigError, match="fillers"):
        make("pga", fillers="best")
