"""dl-ncf (Huang et al. NDSS 2021): conformance, the poison loss, promotion on planted data."""

import numpy as np
import pytest

from recpoison import attacks, victims
from recpoison.metrics import target_hit_ratio
from recpoison.testing import AttackTests, planted_blocks

FAST = {"pretrain_epochs": 3, "warm_epochs": 1, "rounds": 2, "batch_size": 512, "select_epoch": False}


class TestDLNCF(AttackTests):
    name = "dl-ncf"
    params = FAST


class TestDLNCFWithWRMFSurrogate(AttackTests):
    name = "dl-ncf"
    params = {**FAST, "surrogate": "wrmf", "wrmf_epochs": 5, "wrmf_warm_epochs": 2}


def test_wrmf_surrogate_fits_and_its_poison_loss_decreases():
    """surrogate=wrmf: pre-training lowers the weighted squared error, and the poison rounds lower
    the hinge sum of every fake user."""
    import torch

    from recpoison.attacks.dl_ncf import _Surrogate

    view = planted_blocks(seed=5)
    a = attacks.make("dl-ncf", surrogate="wrmf", wrmf_epochs=30, rounds=4, select_epoch=False)
    m = view.matrix.copy()
    m.data[:] = 1
    model = _Surrogate(m.shape[0], m.shape[1], a.config, torch.Generator().manual_seed(0))
    opt = a._optimizer(model)
    rng = np.random.default_rng(0)
    losses = [a._epoch(model, opt, m, rng) for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]
    target = np.argsort(view.item_counts(), kind="stable")[:1]
    a.generate(view, target, 3, 10, np.random.default_rng(0))
    losses = np.array(a.poison_losses_)
    assert losses.shape == (3, 4) and np.all(losses[:, -1] < losses[:, 0])


def test_poison_loss_gradient_equals_the_full_score_graph():
    """The poison loss differentiates only each user's K-th item and the targets: its value and
    gradient equal those of the loss written over all (user, item) log-probabilities (eq. (4))."""
    import torch

    from recpoison.attacks.dl_ncf import _Surrogate

    view = planted_blocks(seed=5)
    m = view.matrix.copy()
    m.data[:] = 1
    a = attacks.make("dl-ncf")
    c = a.config
    model = _Surrogate(m.shape[0], m.shape[1], c, torch.Generator().manual_seed(0))
    rng = np.random.default_rng(0)
    opt = a._optimizer(model)
    for _ in range(3):
        a._epoch(model, opt, m, rng)
    users, targets = np.arange(60, dtype=np.int64), np.array([3, 40])
    tu, tt = torch.from_numpy(users), torch.from_numpy(targets)
    seen = torch.from_numpy(m[users].toarray() != 0)
    logp = torch.nn.functional.logsigmoid(model.all_logits(tu))
    log_sk = torch.topk(logp.masked_fill(seen, -torch.inf), a.list_length(), dim=1).values[:, -1]
    full = (torch.clamp(log_sk[:, None] - logp[:, tt], min=-c.kappa) * ~seen[:, tt]).sum()
    fast = a.poison_loss(model, m, users, targets)
    g_full = torch.autograd.grad(full, list(model.parameters()))
    g_fast = torch.autograd.grad(fast, list(model.parameters()))
    assert float(fast.detach()) == pytest.approx(float(full.detach()), rel=1e-5)
    scale = max(float(g.abs().max()) for g in g_full)
    assert max(float((x - y).abs().max()) for x, y in zip(g_full, g_fast)) < 1e-5 * scale


@pytest.fixture(scope="module")
def planted_run():
    """18 fake users (15%) promoting one rarely rated item of the planted data, 10 fillers each."""
    view = planted_blocks(seed=5)
    target = np.argsort(view.item_counts(), kind="stable")[:1]
    attack = attacks.make("dl-ncf", pretrain_epochs=10, rounds=5)
    fakes = attack.generate(view, target, 18, 10, np.random.default_rng(0))
    return view, target, attack, fakes


def test_poison_loss_decreases_during_poison_training(planted_run):
    _, _, attack, _ = planted_run
    losses = np.array(attack.poison_losses_)  # (fake users, rounds): the hinge sum before each round's steps
    assert losses.shape == (18, 5)
    assert np.all(losses[:, -1] < losses[:, 0])


def test_fillers_follow_the_attenuated_surrogate_scores(planted_run):
    """Every fake user rates the target (at r_max) and exactly n fillers; attenuation spreads the
    fillers: no item is chosen by every fake user."""
    view, target, _, fakes = planted_run
    m = fakes.matrix
    assert np.all(np.diff(m.indptr) == 11)
    assert np.all(m[:, target].toarray() == view.r_max)
    counts = np.bincount(m.indices, minlength=view.n_items)
    counts[target] = 0
    assert counts.max() < 18


def test_raises_target_hr_on_ncf_over_the_random_attack(planted_run):
    """Known answer on planted data (not ML-100K): with the same budget, dl-ncf's fake users lift the
    target's HR@10 on an NCF victim above what random fake users do (mean over 3 victim seeds)."""
    view, target, _, fakes = planted_run
    rand = attacks.make("random").generate(view, target, 18, 10, np.random.default_rng(0))

    def hr(f):
        p = view.append_users(f)
        return np.mean([target_hit_ratio(victims.make("ncf", seed=s, epochs=20, batch_size=256).fit(p), target, 10)[0] for s in range(3)])

    assert hr(fakes) > hr(rand) + 0.03


def test_batched_and_per_user_poison_steps_both_promote():
    """user_batch=1 is the reference's one-step-per-user loop; both settings reach the surrogate's
    target HR of the batched default on planted data."""
    view = planted_blocks(seed=5)
    target = np.argsort(view.item_counts(), kind="stable")[:1]
    for ub in (1, 64):
        a = attacks.make("dl-ncf", pretrain_epochs=5, rounds=3, user_batch=ub)
        a.generate(view, target, 2, 10, np.random.default_rng(0))
        assert max(a.target_hr_) > 0.5


def test_prefix_stable_first_users_equal_a_shorter_run():
    """``prefix_stable``: from the same rng, the first 2 fake users of a run of 3 are a run of 2,
    rating values included (rating data: fillers drawn N(mu_i, sigma_i^2))."""
    view = planted_blocks(seed=5)
    target = np.argsort(view.item_counts(), kind="stable")[:1]
    a = attacks.make("dl-ncf", **FAST)
    assert a.prefix_stable
    long = a.generate(view, target, 3, 6, np.random.default_rng(7)).matrix
    short = a.generate(view, target, 2, 6, np.random.default_rng(7)).matrix
    assert (long[:2] != short).nnz == 0
    assert not view.implicit and set(np.unique(short.data)) - {view.r_max}  # disguised fillers, not all r_max
