"""RevAdv (Tang et al., NeurIPS 2020; seed 003 baseline): conformance, the budgeted projection, the
code's options, and promotion on a WRMF victim."""

import numpy as np
import torch

from recpoison.attacks import make
from recpoison.attacks.revadv import project, target_hit_ratio
from recpoison.datasets.synthetic import make_synthetic
from recpoison.testing import AttackTests, ClickAttackTests, planted_blocks

FAST = {"adv_epochs": 3, "epochs": 20, "unroll": 5, "d": 8}


class TestRevAdv(AttackTests):
    name = "revadv"
    params = FAST


class TestRevAdvImplicit(ClickAttackTests):
    """Clicks, against WRMF, on the synthetic power-law clicks."""

    name = "revadv"
    params = FAST


def test_projection_keeps_the_budget_and_the_targets():
    X = torch.tensor([[0.9, 0.2, 0.7, 0.01, 0.6], [0.0, 0.04, 0.3, 0.02, -1.0]])
    out = project(X, np.array([4]), 2, 0.05)
    np.testing.assert_array_equal(out.numpy(), [[1, 0, 1, 0, 1], [0, 0, 1, 0, 1]])  # row 2: one entry above 0.05


def test_target_hit_ratio_counts_any_target_among_unseen():
    scores = torch.tensor([[5.0, 4.0, 3.0, 2.0], [1.0, 2.0, 3.0, 4.0]])
    seen = torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0]])
    # user 0: unseen top-1 = item 1; user 1: item 3
    assert target_hit_ratio(scores, seen, np.array([1]), 1) == 0.5
    assert target_hit_ratio(scores, seen, np.array([1, 3]), 1) == 1.0


def test_profiles_and_history():
    view = planted_blocks(seed=5, implicit=True)
    t = np.argsort(view.item_counts(), kind="stable")[:2]
    a = make("revadv", **FAST)
    f = a.generate(view, t, 6, 4, np.random.default_rng(0)).matrix.toarray()
    assert np.all(f[:, t] == 1) and np.all(f.sum(axis=1) <= 6) and set(np.unique(f)) <= {0.0, 1.0}
    assert len(a.history_) == 3 and all(np.isfinite(x) for h in a.history_ for x in h)
    assert a.best_hr_ == max(h[1] for h in a.history_)
    first = make("revadv", init="first", **FAST).generate(view, t, 6, 4, np.random.default_rng(0)).matrix
    assert first.shape == (6, view.n_items)


def test_raises_target_scores_on_wrmf():
    """Untuned known answer: 10% fake users, 10 proxies, WRMF victim (8 factors), synthetic clicks;
    the share of items scored above the target (lower is better)."""
    from recpoison.victims import VICTIMS

    view = make_synthetic(n_users=300, n_items=200, seed=5).to_implicit()
    t = np.argsort(view.item_counts(), kind="stable")[:1]
    shares = {}
    for name, params in (("none", {}), ("revadv", {"adv_epochs": 5, "epochs": 30, "unroll": 5, "d": 16})):
        fake = make(name, **params).generate(view, t, 30, 10, np.random.default_rng(0))
        m = VICTIMS.make("wrmf", factors=8, seed=0).fit(view.append_users(fake))
        s = m.score(np.arange(view.n_normal)).astype(np.float64)
        shares[name] = float(np.mean(s > s[:, t]))
    assert shares["revadv"] < shares["none"] - 0.05, shares
