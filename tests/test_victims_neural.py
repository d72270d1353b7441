import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recpoison.errors import ConfigError
from recpoison.interactions import Interactions
from recpoison.testing import VictimTests, planted_blocks
from recpoison.victims import make
from recpoison.victims._neural import SeenPairs, bce_instances, positive_keys, positive_pairs, sample_negatives
from recpoison.victims.lightgcn import normalized_adjacency, propagate, to_torch_csr

FAST = {
    "gmf": {"d": 8, "epochs": 15, "batch_size": 256, "lr": 1e-2},
    "ncf": {"d": 8, "layers": (16, 8, 4), "epochs": 15, "batch_size": 256, "lr": 5e-3},
    "lightgcn": {"d": 8, "epochs": 30, "batch_size": 256, "lr": 1e-2},
}


class TestGMF(VictimTests):
    name = "gmf"
    params = FAST["gmf"]


class TestNeuMF(VictimTests):
    name = "ncf"
    params = FAST["ncf"]


class TestLightGCN(VictimTests):
    name = "lightgcn"
    params = FAST["lightgcn"]


@pytest.fixture(scope="module")
def planted():
    return planted_blocks(seed=3)


# ---------------------------------------------------------------------- negative sampling
def test_sampled_negatives_are_never_interactions(planted):
    m = planted.matrix
    keys = positive_keys(m)
    users = np.repeat(np.arange(planted.n_users), 50)
    neg = sample_negatives(keys, planted.n_items, users, np.random.default_rng(0))
    dense = m.toarray() != 0
    assert not dense[users, neg].any()
    # every non-interacted item can be drawn (uniform over the complement)
    assert np.unique(neg).size == planted.n_items


def test_sampling_is_deterministic_and_vectorised_over_users(planted):
    keys = positive_keys(planted.matrix)
    users = np.arange(planted.n_users)
    a = sample_negatives(keys, planted.n_items, users, np.random.default_rng(5))
    b = sample_negatives(keys, planted.n_items, users, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)


def test_bitmap_and_binary_search_give_the_same_negatives(planted):
    m = planted.matrix
    seen = SeenPairs.of(m)
    assert seen.bitmap is not None and seen.bitmap.sum() == m.nnz
    users = np.repeat(np.arange(planted.n_users), 30)
    a = sample_negatives(seen, planted.n_items, users, np.random.default_rng(7))
    b = sample_negatives(positive_keys(m), planted.n_items, users, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)


def test_bce_instances_hold_each_positive_once_and_n_neg_unseen_negatives_per_positive(planted):
    m = planted.matrix
    u, i = positive_pairs(m)
    cu, ci, cy = bce_instances(u, i, SeenPairs.of(m), planted.n_items, 4, np.random.default_rng(2))
    assert cu.size == ci.size == cy.size == 5 * u.size and cy.dtype == np.float32
    dense = m.toarray() != 0
    assert dense[cu[cy == 1], ci[cy == 1]].all() and not dense[cu[cy == 0], ci[cy == 0]].any()
    assert sorted(zip(cu[cy == 1], ci[cy == 1])) == sorted(zip(u, i))  # each positive exactly once
    np.testing.assert_array_equal(np.bincount(cu[cy == 0], minlength=planted.n_users), 4 * np.bincount(u, minlength=planted.n_users))
    assert not (np.diff(cy) == 0).all()  # shuffled, not positives then negatives


# ---------------------------------------------------------------------- LightGCN propagation
def test_lightgcn_propagation_equals_dense_adjacency_powers():
    R = np.array(
        [[1, 0, 1, 0, 0], [1, 1, 0, 0, 1], [0, 0, 0, 0, 0], [0, 1, 1, 1, 0]], dtype=float
    )  # user 2 has no interactions, item 3 a single one
    n_u, n_i = R.shape
    A = np.zeros((n_u + n_i, n_u + n_i))
    A[:n_u, n_u:] = R
    A[n_u:, :n_u] = R.T
    deg = A.sum(1)
    dinv = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1.0)), 0.0)
    At = dinv[:, None] * A * dinv[None, :]
    np.testing.assert_allclose(normalized_adjacency(sp.csr_matrix(R)).toarray(), At, atol=1e-12)
    E0 = np.random.default_rng(0).normal(size=(n_u + n_i, 3))
    K = 3
    expected = sum(np.linalg.matrix_power(At, k) @ E0 for k in range(K + 1)) / (K + 1)
    got = propagate(
        to_torch_csr(normalized_adjacency(sp.csr_matrix(R)), torch.device("cpu")),
        torch.tensor(E0, dtype=torch.float32),
        K,
    )
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-5)
    # and the fitted model scores with exactly these embeddings: e_u^T e_i
    data = Interactions.from_matrix(R, rating_scale=(1, 1), implicit=True)
    m = make("lightgcn", d=3, epochs=0).fit(data)
    E0m = m.module_.E0.detach().double().numpy()
    Em = sum(np.linalg.matrix_power(At, k) @ E0m for k in range(K + 1)) / (K + 1)
    np.testing.assert_allclose(m.score(), Em[:n_u] @ Em[n_u:].T, atol=1e-5)
    np.testing.assert_allclose(m.user_embeddings(), Em[:n_u], atol=1e-5)


def test_lightgcn_gradient_of_propagation_matches_autograd_reference():
    R = sp.random(6, 7, density=0.4, random_state=1, format="csr")
    A = normalized_adjacency(R)
    E0 = torch.randn(13, 4, dtype=torch.float32, requires_grad=True)
    propagate(to_torch_csr(A, torch.device("cpu")), E0, 2).pow(2).sum().backward()
    Ad = torch.tensor(A.toarray(), dtype=torch.float32)
    E1 = E0.detach().clone().requires_grad_(True)
    ((E1 + Ad @ E1 + Ad @ (Ad @ E1)) / 3).pow(2).sum().backward()
    np.testing.assert_allclose(E0.grad.numpy(), E1.grad.numpy(), atol=1e-5)


# ---------------------------------------------------------------------- training
@pytest.mark.parametrize("name", ["gmf", "ncf", "lightgcn"])
def test_loss_decreases_over_epochs(name, planted):
    m = make(name, **FAST[name], seed=0).fit(planted)
    h = m.loss_history_
    assert len(h) == FAST[name]["epochs"]
    assert h[-1] < 0.8 * h[0], h
    assert np.mean(h[-3:]) < np.mean(h[:3])


def _margin(model, data, users):
    """Mean score of a user's interacted items minus the mean score of the others."""
    s = model.score(users).astype(np.float64)
    seen = data.matrix[users].toarray() != 0
    return float(np.mean((s * seen).sum(1) / seen.sum(1) - (s * ~seen).sum(1) / (~seen).sum(1)))


@pytest.mark.parametrize("name", ["gmf", "ncf", "lightgcn"])
def test_finetune_moves_scores_toward_the_given_users_data(name, planted):
    params = {**FAST[name], "epochs": 2}  # under-trained base model: room to move
    m = make(name, **params, seed=0).fit(planted)
    users = np.arange(0, 12)
    before = _margin(m, planted, users)
    state = m.snapshot()
    base_scores = m.score(users)
    m.finetune(planted, users, steps=40)
    after = _margin(m, planted, users)
    assert after > before + 0.05 * abs(before), (before, after)
    assert len(m.finetune_history_) == 40
    assert np.mean(m.finetune_history_[-5:]) < np.mean(m.finetune_history_[:5])
    # restore gives the base model back
    m.restore(state)
    np.testing.assert_allclose(m.score(users), base_scores, atol=1e-6)


def test_finetune_leaves_other_users_embeddings_alone_in_gmf(planted):
    # without weight decay only the fine-tuned users' rows get gradients
    m = make("gmf", **FAST["gmf"], reg=0.0, seed=0).fit(planted)
    before = m.user_embeddings().copy()
    users = np.array([3, 4, 5])
    m.finetune(planted, users, steps=10)
    after = m.user_embeddings()
    others = np.setdiff1d(np.arange(planted.n_users), users)
    np.testing.assert_array_equal(after[others], before[others])
    assert not np.allclose(after[users], before[users])


def test_finetune_is_deterministic(planted):
    def run():
        m = make("ncf", **FAST["ncf"], seed=0).fit(planted)
        return m.finetune(planted, np.arange(5), steps=5).score(np.arange(5))

    np.testing.assert_array_equal(run(), run())


def test_finetune_rejects_bad_input(planted):
    m = make("gmf", **{**FAST["gmf"], "epochs": 1}).fit(planted)
    with pytest.raises(ConfigError):
        m.finetune(planted, np.array([planted.n_users]), steps=1)
    with pytest.raises(ConfigError):
        m.finetune(planted.select_users(np.arange(10)), np.array([0]), steps=1)


@pytest.mark.parametrize("name", ["gmf", "ncf", "lightgcn"])
def test_user_embeddings_shape(name, planted):
    m = make(name, **{**FAST[name], "epochs": 1}).fit(planted)
    e = m.user_embeddings()
    assert e.shape[0] == planted.n_users and e.ndim == 2 and np.isfinite(e).all()


def test_bad_hyper_parameters():
    with pytest.raises(ConfigError, match="n_neg"):
        make("gmf", n_neg=0)
    with pytest.raises(ConfigError, match="layers"):
        make("ncf", layers=(15, 8))
    with pytest.raises(ConfigError, match="device"):
        make("lightgcn", device="tpu")


def test_neumf_full_scoring_equals_pairwise_logits(planted):
    """The blocked all-items scorer computes the same logits as the training path."""
    m = make("ncf", **{**FAST["ncf"], "epochs": 2}).fit(planted)
    users = np.array([0, 7, 50])
    s = m.score(users)
    u = torch.from_numpy(np.repeat(users, planted.n_items))
    items = torch.from_numpy(np.tile(np.arange(planted.n_items), len(users)))[:, None]
    with torch.no_grad():
        logits, _ = m._pair_logits(u, items)
    np.testing.assert_allclose(s, logits.numpy().reshape(len(users), -1), atol=1e-5)


# ---------------------------------------------------------------------- real data
@pytest.mark.slow
@pytest.mark.parametrize("name", ["gmf", "ncf", "lightgcn"])
def test_beats_most_popular_on_ml100k(name):
    from recpoison import datasets
    from recpoison.metrics import loo_accuracy_from_topk
    from recpoison.splits import leave_one_out

    split = leave_one_out(datasets.load("ml-100k"), np.random.default_rng(0))
    m = make(name, seed=0).fit(split.train)
    users = split.test_users
    hr = loo_accuracy_from_topk(m.recommend(users, 10), split.test_items, users)["hr"]
    assert hr > 0.095, f"{name}: HR@10 {hr:.3f} (MostPop about 0.086)"


def test_training_restores_the_torch_thread_count(planted):
    n = torch.get_num_threads()
    make("gmf", **{**FAST["gmf"], "epochs": 1}).fit(planted)
    assert torch.get_num_threads() == n


def test_finetune_result_does_not_depend_on_earlier_finetunes(planted):
    m = make("lightgcn", **{**FAST["lightgcn"], "epochs": 3}, seed=0).fit(planted)
    state = m.snapshot()
    a = m.finetune(planted, np.arange(6), steps=5).score(np.arange(6))
    m.restore(state)
    m.finetune(planted, np.arange(20, 30), steps=5)
    m.restore(state)
    b = m.finetune(planted, np.arange(6), steps=5).score(np.arange(6))
    np.testing.assert_array_equal(a, b)


def test_rating_threshold_selects_the_positives(planted):
    m = make("gmf", **{**FAST["gmf"], "epochs": 1}, threshold=4.0).fit(planted)
    assert m.keys_.size == int((planted.matrix.data >= 4).sum()) < planted.nnz
    m_all = make("gmf", **{**FAST["gmf"], "epochs": 1}).fit(planted)
    assert m_all.keys_.size == planted.nnz
