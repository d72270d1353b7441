"""AUSH (Lin et al., CIKM 2020): conformance, templates' own fillers, popular selected items on the
rating grid, and recorded, finite GAN losses."""

import numpy as np

from recpoison.attacks import make
from recpoison.attacks.bandwagon import popular_items
from recpoison.testing import AttackTests, planted_blocks

FAST = {"epochs": 3, "g_hidden": (32, 16), "d_hidden": (16, 16)}


class TestAUSH(AttackTests):
    name = "aush"
    params = FAST


def _run(n_fake=10, n_filler=8, seed=0, **kw):
    view = planted_blocks(seed=5)
    targets = np.argsort(view.item_counts(), kind="stable")[:2]
    a = make("aush", **{**FAST, **kw})
    fake = a.generate(view, targets, n_fake, n_filler, np.random.default_rng(seed))
    return view, targets, a, fake.matrix.toarray()


def test_fillers_are_a_templates_own_items_and_ratings():
    view, targets, a, F = _run()
    R = view.matrix.toarray()
    assert a.templates_.shape == (10,) and a.fillers_.shape == (10, 8 - 3)
    assert len(set(a.templates_)) == 10  # no repetition while the pool lasts
    for row, (u, fill) in enumerate(zip(a.templates_, a.fillers_)):
        assert u < view.n_normal and len(set(fill)) == len(fill)
        assert np.all(R[u, fill] > 0)
        np.testing.assert_array_equal(F[row, fill], R[u, fill])
        assert not set(fill) & (set(targets) | set(a.selected_))
        rated = set(np.flatnonzero(F[row]))
        assert rated == set(fill) | set(a.selected_) | set(targets)


def test_selected_items_are_the_most_popular_non_targets_rated_on_the_grid():
    view, targets, a, F = _run()
    np.testing.assert_array_equal(a.selected_, np.sort(popular_items(view, targets, 3)))
    assert not set(a.selected_) & set(targets)
    s = F[:, a.selected_]
    lo, hi = view.rating_scale
    assert np.all((s >= lo) & (s <= hi))
    np.testing.assert_allclose(s, np.round(s))
    assert np.all(F[:, targets] == view.r_max)


def test_budget_counts_selected_items_among_fillers():
    view, targets, a, F = _run(n_filler=5, n_selected=3)
    assert np.all((F != 0).sum(axis=1) == 5 + len(targets))
    view, targets, a, F = _run(n_filler=2)  # budget below n_selected: selected cut to the budget
    assert len(a.selected_) == 2 and a.fillers_.shape[1] == 0


def test_gan_losses_recorded_and_finite():
    _, _, a, _ = _run(epochs=4)
    assert set(a.history_) == {"d", "g", "g_gan", "g_shill", "g_recon"}
    for k, v in a.history_.items():
        assert len(v) == 4 and np.all(np.isfinite(v)), k


def test_templates_repeat_when_the_pool_is_small():
    view, _, a, _ = _run(n_fake=130)
    assert len(a.templates_) == 130 and len(set(a.templates_)) <= view.n_normal
