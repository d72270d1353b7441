"""Wu et al.'s MF (``mf-wu``), the MF base model of seed 004 (RVD)."""

import numpy as np
import pytest
import torch

from recpoison.errors import ConfigError
from recpoison.testing import VictimTests, planted_blocks
from recpoison.victims import make
from recpoison.victims.mf_wu import TFAdagrad, wu_loss

FAST = {"d": 16, "epochs": 10}


class TestMFWu(VictimTests):
    name = "mf-wu"
    params = FAST


@pytest.fixture(scope="module")
def planted():
    return planted_blocks(seed=3)


@pytest.fixture(scope="module")
def fitted(planted):
    return make("mf-wu", seed=1, **FAST).fit(planted)


def test_scores_are_rmax_times_p_dot_q(fitted, planted):
    P, Q = fitted.user_factors_, fitted.item_factors_
    np.testing.assert_allclose(fitted.score(), planted.r_max * P @ Q.T, rtol=1e-5, atol=1e-5)
    assert fitted.predicts_ratings
    # fitted on ratings / r_max, scored on the rating scale: closer to the training ratings than
    # their mean is
    coo = planted.matrix.tocoo()
    rmse = np.sqrt(np.mean((fitted.score()[coo.row, coo.col] - coo.data) ** 2))
    assert rmse < np.std(coo.data), rmse


def test_defaults_are_wu_et_al():
    c = make("mf-wu").config
    assert (c.d, c.lr, c.reg, c.epochs, c.batch_size, c.init_accumulator) == (64, 10.0, 1e-12, 25, 4096, 0.1)


def test_xavier_initialisation_bounds(planted):
    m = make("mf-wu", seed=0, d=8)
    P, Q, _, _ = m.init_factors(planted)
    P, Q = P.detach(), Q.detach()
    assert float(P.abs().max()) <= np.sqrt(6 / (planted.n_users + 8))
    assert float(Q.abs().max()) <= np.sqrt(6 / (planted.n_items + 8))
    assert float(P.abs().max()) > 0.9 * np.sqrt(6 / (planted.n_users + 8))  # uniform over the whole range


def test_loss_is_wu_batch_loss():
    pu = torch.tensor([[1.0, 2.0], [0.5, -1.0]])
    qi = torch.tensor([[0.5, 0.0], [1.0, 1.0]])
    t = torch.tensor([1.0, 0.0])
    err = np.array([1.0 - 0.5, 0.0 - (-0.5)])
    expected = np.mean(err**2) + 0.1 * (np.mean(pu.numpy() ** 2) + np.mean(qi.numpy() ** 2))
    assert float(wu_loss(pu, qi, t, 0.1)) == pytest.approx(expected)


def test_adagrad_is_tensorflow_arithmetic():
    p = torch.tensor([1.0, -2.0], requires_grad=True)
    opt = TFAdagrad([p], lr=10.0, init=0.1)
    acc = np.full(2, 0.1)
    expected = np.array([1.0, -2.0])
    for g in ([0.3, -0.01], [0.0, 0.2]):
        p.grad = torch.tensor(g)
        opt.step()
        acc += np.square(g)
        expected -= 10.0 * np.array(g) / np.sqrt(acc)
    np.testing.assert_allclose(p.detach().numpy(), expected, rtol=1e-6)


def test_training_loss_decreases(fitted):
    h = fitted.loss_history_
    assert len(h) == FAST["epochs"] and h[-1] < h[0]


def test_finetune_moves_only_the_users_and_their_items(fitted, planted):
    state = fitted.snapshot()
    before = fitted.score()
    users = np.array([3, 0, 7])
    rated = np.unique(planted.matrix[users].indices)
    fitted.finetune(planted, users, 2)
    try:
        moved_u = np.flatnonzero(np.any(fitted.user_factors_ != state["user_factors"], axis=1))
        moved_i = np.flatnonzero(np.any(fitted.item_factors_ != state["item_factors"], axis=1))
        np.testing.assert_array_equal(moved_u, np.sort(users))
        assert moved_i.size and set(moved_i) <= set(rated)
        again = fitted.snapshot()
        # deterministic given (seed, users), whatever was fine-tuned before
        fitted.restore(state).finetune(planted, np.array([1, 2]), 1)
        fitted.restore(state).finetune(planted, users, 2)
        np.testing.assert_array_equal(fitted.user_factors_, again["user_factors"])
        np.testing.assert_array_equal(fitted.item_factors_, again["item_factors"])
    finally:
        fitted.restore(state)
    np.testing.assert_array_equal(fitted.user_factors_, state["user_factors"])
    np.testing.assert_array_equal(fitted.item_factors_, state["item_factors"])
    np.testing.assert_array_equal(fitted.score(), before)


def test_finetune_and_restore_reject_bad_input(fitted, planted):
    with pytest.raises(ConfigError):
        fitted.finetune(planted, np.array([planted.n_users]), 1)
    with pytest.raises(ConfigError):
        fitted.finetune(planted.select_users(np.arange(5)), np.array([0]), 1)
    with pytest.raises(ConfigError, match="snapshot"):
        fitted.restore({"user_factors": fitted.user_factors_})
    with pytest.raises(ConfigError, match="snapshot"):
        fitted.restore({"user_factors": fitted.user_factors_[:3], "item_factors": fitted.item_factors_})


def test_user_embeddings_are_p(fitted):
    np.testing.assert_array_equal(fitted.user_embeddings(), fitted.user_factors_)


@pytest.mark.parametrize("bad", [{"d": 0}, {"lr": 0}, {"reg": -1}, {"epochs": 0}, {"batch_size": 0}, {"init_accumulator": 0}])
def test_bad_values_rejected(bad):
    with pytest.raises(ConfigError):
        make("mf-wu", **bad)


def test_written_out_gradient_is_the_loss_gradient():
    """train_step's gradient equals autograd's of wu_loss (plain SGD with step 1 shows it)."""
    from recpoison.victims import _optim

    gen = torch.Generator().manual_seed(0)
    P0, Q0 = torch.randn(5, 3, generator=gen), torch.randn(4, 3, generator=gen)
    u, i = torch.tensor([0, 2, 2, 4]), torch.tensor([1, 1, 3, 0])
    t = torch.tensor([0.8, 0.2, 1.0, 0.6])
    m = make("mf-wu", reg=0.3)
    P, Q = P0.clone(), Q0.clone()
    m.train_step(P, Q, u, i, t, _optim.SGD([P, Q], lr=1.0))
    Pa, Qa = P0.clone().requires_grad_(True), Q0.clone().requires_grad_(True)
    wu_loss(Pa[u], Qa[i], t, 0.3).backward()
    np.testing.assert_allclose((P0 - P).numpy(), Pa.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose((Q0 - Q).numpy(), Qa.grad.numpy(), rtol=1e-5, atol=1e-6)
