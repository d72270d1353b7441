"""The base models of seed 004 (RVD) besides MF: I-AutoRec, CDAE and NSVD."""

import numpy as np
import pytest

from recpoison.errors import ConfigError
from recpoison.testing import VictimTests, planted_blocks
from recpoison.victims import make
from recpoison.victims.nsvd import normalised_pattern

FAST = {
    "autorec": {"hidden": 20, "epochs": 60, "reg": 1.0},
    "cdae": {"factors": 16, "epochs": 20},
    "nsvd": {"factors": 8, "epochs": 100, "reg": 1.0, "lr": 0.05},
}


class TestAutoRec(VictimTests):
    name = "autorec"
    params = FAST["autorec"]


class TestCDAE(VictimTests):
    name = "cdae"
    params = FAST["cdae"]


class TestNSVD(VictimTests):
    name = "nsvd"
    params = FAST["nsvd"]


@pytest.fixture(scope="module")
def planted():
    return planted_blocks(seed=3)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


# ---------------------------------------------------------------------- the models' equations
def test_autorec_scores_follow_eq1(planted):
    m = make("autorec", **FAST["autorec"]).fit(planted)
    p = {k: v.detach().double().numpy() for k, v in m.params_.items()}
    R = planted.matrix.toarray().astype(float)  # users x items; item i's vector is R[:, i]
    H = _sigmoid(R.T @ p["V"] + p["mu"])  # items x k: g(V r^(i) + mu)
    expected = (H @ p["W"].T + p["b"]).T  # users x items: h(r^(i))_u
    np.testing.assert_allclose(m.score(), expected, rtol=1e-4, atol=1e-4)
    # the objective is eq. 2: squared error on observed entries + lambda/2 (||W||^2 + ||V||^2)
    obs = R != 0
    sse = np.sum(((R - expected) * obs) ** 2)
    reg = 0.5 * FAST["autorec"]["reg"] * (np.sum(p["W"] ** 2) + np.sum(p["V"] ** 2))
    np.testing.assert_allclose(m.loss(), sse + reg, rtol=1e-4)


def test_cdae_scores_follow_eqs6_7_on_uncorrupted_input(planted):
    m = make("cdae", **FAST["cdae"]).fit(planted)
    p = {k: v.detach().double().numpy() for k, v in m.params_.items()}
    Y = (planted.matrix.toarray() != 0).astype(float)
    Z = _sigmoid(Y @ p["W"] + p["V"] + p["b"])
    np.testing.assert_allclose(m.score(), Z @ p["Wd"].T + p["bd"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(m.user_embeddings(), Z, atol=1e-5)


def test_nsvd_user_vectors_are_normalised_sums_of_item_vectors(planted):
    m = make("nsvd", **FAST["nsvd"]).fit(planted)
    p = {k: v.detach().double().numpy() for k, v in m.params_.items()}
    N = planted.matrix.toarray() != 0
    P = (N @ p["Y"]) / np.sqrt(np.maximum(N.sum(1, keepdims=True), 1))
    np.testing.assert_allclose(m.user_embeddings(), P, atol=1e-5)
    expected = m.mu_ + p["bu"][:, None] + p["bi"][None, :] + P @ p["Q"].T
    np.testing.assert_allclose(m.score(), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(normalised_pattern(planted.matrix).toarray(), N / np.sqrt(np.maximum(N.sum(1, keepdims=True), 1)), atol=1e-6)


@pytest.mark.parametrize("name", ["autorec", "cdae", "nsvd"])
def test_training_objective_decreases(name, planted):
    m = make(name, **FAST[name]).fit(planted)
    h = m.loss_history_
    assert len(h) == FAST[name]["epochs"]
    assert np.mean(h[-3:]) < 0.8 * np.mean(h[:3]), h[:3] + h[-3:]


@pytest.mark.parametrize("name", ["autorec", "nsvd"])
def test_rating_predictors_fit_the_rating_scale(name, planted):
    m = make(name, **FAST[name]).fit(planted)
    assert getattr(type(m), "predicts_ratings", False)
    coo = planted.matrix.tocoo()
    pred = m.score()[coo.row, coo.col]
    rmse = np.sqrt(np.mean((pred - coo.data) ** 2))
    assert rmse < 0.8 * coo.data.std(), rmse  # better than predicting the mean


# ---------------------------------------------------------------------- RVD support
def _margin(model, data, users):
    """Mean score of a user's interacted items minus the mean score of the others."""
    s = model.score(users).astype(np.float64)
    seen = data.matrix[users].toarray() != 0
    return float(np.mean((s * seen).sum(1) / seen.sum(1) - (s * ~seen).sum(1) / (~seen).sum(1)))


@pytest.mark.parametrize("name", ["autorec", "cdae", "nsvd"])
def test_finetune_fits_the_given_users_and_restore_undoes_it(name, planted):
    params = {**FAST[name], "epochs": 3}  # under-trained base model: room to move
    m = make(name, **params, seed=0).fit(planted)
    users = np.arange(0, 12)
    state = m.snapshot()
    base = m.score(users)
    before = _margin(m, planted, users)
    m.finetune(planted, users, steps=30)
    assert len(m.finetune_history_) == 30
    assert np.mean(m.finetune_history_[-3:]) < np.mean(m.finetune_history_[:3])
    assert _margin(m, planted, users) > before
    m.restore(state)
    np.testing.assert_allclose(m.score(users), base, atol=1e-6)


@pytest.mark.parametrize("name", ["autorec", "cdae", "nsvd"])
def test_finetune_result_does_not_depend_on_earlier_finetunes(name, planted):
    m = make(name, **{**FAST[name], "epochs": 3}, seed=0).fit(planted)
    state = m.snapshot()
    a = m.finetune(planted, np.arange(6), steps=4).score(np.arange(6))
    m.restore(state)
    m.finetune(planted, np.arange(20, 30), steps=4)
    m.restore(state)
    b = m.finetune(planted, np.arange(6), steps=4).score(np.arange(6))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("name", ["autorec", "cdae", "nsvd"])
def test_user_embeddings_and_bad_finetune_input(name, planted):
    m = make(name, **{**FAST[name], "epochs": 2}).fit(planted)
    e = m.user_embeddings()
    assert e.shape[0] == planted.n_users and e.ndim == 2 and np.isfinite(e).all()
    with pytest.raises(ConfigError):
        m.finetune(planted, np.array([planted.n_users]), steps=1)
    with pytest.raises(ConfigError):
        m.finetune(planted.select_users(np.arange(10)), np.array([0]), steps=1)
    with pytest.raises(ConfigError):
        m.finetune(planted, np.array([0]), steps=-1)


def test_bad_hyper_parameters():
    with pytest.raises(ConfigError, match="hidden"):
        make("autorec", hidden=0)
    with pytest.raises(ConfigError, match="corruption"):
        make("cdae", corruption=1.0)
    with pytest.raises(ConfigError, match="optimizer"):
        make("nsvd", optimizer="lbfgs")


# ---------------------------------------------------------------------- real data
@pytest.mark.slow
def test_rating_predictors_beat_random_on_ml100k():
    from recpoison import datasets
    from recpoison.metrics import loo_accuracy_from_topk
    from recpoison.seeding import derive_rng
    from recpoison.splits import leave_one_out

    split = leave_one_out(datasets.load("ml-100k"), derive_rng(0, "split"))
    users = split.test_users
    random_hr = 10 / split.train.n_items
    for name in ("autorec", "nsvd"):
        m = make(name, seed=0).fit(split.train)
        hr = loo_accuracy_from_topk(m.recommend(users, 10), split.test_items, users)["hr"]
        assert hr > 3 * random_hr, f"{name}: HR@10 {hr:.3f} vs random {random_hr:.4f}"
        pred = m.score(users)[np.arange(len(users)), split.test_items[users]]
        rmse = float(np.sqrt(np.mean((pred - split.test_ratings[users]) ** 2)))
        assert rmse < 1.1, f"{name}: held-out RMSE {rmse:.3f}"
