"""WRMF, ItemKNN, MostPop and the random-walk-with-restart recommender."""

import numpy as np
import pytest
import scipy.sparse as sp

from recpoison.errors import ConfigError
from recpoison.interactions import Interactions
from recpoison.testing import VictimTests, planted_blocks
from recpoison.victims import make
from recpoison.victims.itemknn import cosine_topk
from recpoison.victims.rwr import rwr_power, transitions


class TestWRMF(VictimTests):
    name = "wrmf"
    params = {"factors": 8, "regularization": 0.1, "iterations": 10}


class TestWRMFGD(VictimTests):
    name = "wrmf-gd"
    params = {"factors": 8, "epochs": 60}


def test_wrmf_gd_is_the_attack_surrogate_training_and_lowers_eq10(planted):
    from recpoison.attacks._unrolled import WRMFSettings, train_factors

    m = make("wrmf-gd", factors=8, epochs=30, seed=3).fit(planted)
    P, Q = train_factors(planted.to_implicit().matrix, WRMFSettings(d=8), 30, 3)
    assert np.allclose(m.user_factors_, P, atol=1e-6) and np.allclose(m.item_factors_, Q, atol=1e-6)
    losses = [make("wrmf-gd", factors=8, epochs=e, seed=3).fit(planted).loss() for e in (1, 10, 60)]
    assert losses[0] > losses[1] > losses[2]
    with pytest.raises(ConfigError, match="epochs"):
        make("wrmf-gd", epochs=0)


class TestItemKNN(VictimTests):
    name = "itemknn"
    params = {"k": 20}


class TestMostPop(VictimTests):
    name = "mostpop"
    # popularity cannot find a user's block: in planted data the blocks are equally popular, so
    # MostPop is only required to do better than random via the (slightly) more popular items
    planted_factor = 0.0


class TestRWR(VictimTests):
    name = "rwr"


@pytest.fixture(scope="module")
def planted():
    return planted_blocks(seed=3)


def _tiny():
    R = np.array(
        [[5, 0, 3, 0, 0, 1], [4, 2, 0, 0, 5, 0], [0, 0, 0, 0, 0, 0], [0, 1, 4, 4, 0, 0], [3, 0, 0, 2, 1, 0]],
        dtype=float,
    )  # user 2 rated nothing, item 5 has one rating
    return R, Interactions.from_matrix(R, rating_scale=(1, 5))


# ---------------------------------------------------------------------- WRMF
def test_wrmf_two_fits_give_identical_factors(planted):
    a = make("wrmf", factors=16, seed=5).fit(planted)
    b = make("wrmf", factors=16, seed=5).fit(planted)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    c = make("wrmf", factors=16, seed=6).fit(planted)
    assert not np.array_equal(a.item_factors_, c.item_factors_)


def test_wrmf_solves_eq10_exactly_with_exact_solver():
    """With Cholesky solves the last half-sweep gives the exact minimiser of eq. (10) over Q."""
    data = planted_blocks(n_users=40, n_items=30, seed=1)
    m = make("wrmf", factors=4, regularization=0.5, alpha=20.0, iterations=5, exact=True).fit(data)
    R = (data.matrix.toarray() != 0).astype(float)
    X = m.user_factors_.astype(float)
    Y = np.zeros_like(m.item_factors_, dtype=float)
    for i in range(R.shape[1]):  # reference implementation, test only
        w = np.where(R[:, i] > 0, 20.0, 1.0)
        A = X.T @ (w[:, None] * X) + 0.5 * np.eye(4)
        Y[i] = np.linalg.solve(A, X.T @ (w * R[:, i]))
    np.testing.assert_allclose(m.item_factors_, Y, atol=1e-4)
    # and more sweeps never increase the loss
    losses = [make("wrmf", factors=4, regularization=0.5, iterations=s, exact=True).fit(data).loss() for s in (1, 3, 8)]
    assert losses[0] >= losses[1] >= losses[2]


def test_wrmf_scores_are_factor_products(planted):
    m = make("wrmf", factors=8).fit(planted)
    np.testing.assert_allclose(m.score(np.arange(4)), m.user_factors_[:4] @ m.item_factors_.T, rtol=1e-6)
    assert m.user_embeddings().shape == (planted.n_users, 8)


def test_wrmf_bad_hyper_parameters():
    with pytest.raises(ConfigError, match="factors"):
        make("wrmf", factors=0)
    with pytest.raises(ConfigError, match="alpha"):
        make("wrmf", alpha=0)


# ---------------------------------------------------------------------- ItemKNN
def _dense_cosine_topk(R, k, shrink=0.0):
    B = (R != 0).astype(float)
    n = np.sqrt(B.sum(0))
    S = (B.T @ B) / (np.outer(n, n) + shrink + 1e-300 * 0)
    S = np.nan_to_num(S)
    np.fill_diagonal(S, 0.0)
    out = np.zeros_like(S)
    for i in range(S.shape[0]):  # reference, test only
        order = sorted(range(S.shape[1]), key=lambda j: (-S[i, j], j))[:k]
        for j in order:
            out[i, j] = S[i, j] if S[i, j] > 0 else 0.0
    return B, out


@pytest.mark.parametrize("k,shrink", [(2, 0.0), (3, 1.5), (100, 0.0)])
def test_itemknn_equals_brute_force_dense_cosine(k, shrink):
    R, data = _tiny()
    B, S = _dense_cosine_topk(R, k, shrink)
    got = cosine_topk(data.matrix, k, shrink).toarray()
    np.testing.assert_allclose(got, S, atol=1e-12)
    m = make("itemknn", k=k, shrink=shrink).fit(data)
    np.testing.assert_allclose(m.score(), B @ S.T, atol=1e-6)


def test_itemknn_keeps_at_most_k_neighbours(planted):
    m = make("itemknn", k=5).fit(planted)
    per_row = np.diff(m.similarity_.indptr)
    assert per_row.max() == 5 and (m.similarity_.diagonal() == 0).all()


def test_itemknn_uses_the_rating_threshold(planted):
    a = make("itemknn", k=10, threshold=4.0).fit(planted)
    b = make("itemknn", k=10).fit(planted)
    assert a._B.nnz == int((planted.matrix.data >= 4).sum()) < b._B.nnz


# ---------------------------------------------------------------------- MostPop
def test_mostpop_scores_are_counts_including_fake_users(planted):
    m = make("mostpop").fit(planted)
    counts = (planted.matrix.toarray() != 0).sum(0)
    np.testing.assert_array_equal(m.score(np.array([0, 3]))[1], counts)
    fake = sp.csr_matrix(np.eye(1, planted.n_items, 7) * 5)
    poisoned = planted.append_users(Interactions.from_matrix(fake))
    m2 = make("mostpop").fit(poisoned)
    assert m2.score(np.array([0]))[0, 7] == counts[7] + 1


def test_mostpop_recommends_the_same_unseen_popular_items(planted):
    m = make("mostpop").fit(planted)
    rec = m.recommend(np.array([0]), k=5)[0]
    seen = planted.matrix[0].toarray().ravel() != 0
    counts = np.where(seen, -1, (planted.matrix.toarray() != 0).sum(0))
    assert set(rec) <= set(np.flatnonzero(counts >= np.sort(counts)[-5]))


# ---------------------------------------------------------------------- RWR
def _dense_rwr(R, alpha):
    n_u, n_i = R.shape
    A = np.zeros((n_u + n_i, n_u + n_i))
    A[:n_u, n_u:] = R
    A[n_u:, :n_u] = R.T
    deg = A.sum(1)
    Q = np.divide(A, deg[:, None], out=np.zeros_like(A), where=deg[:, None] > 0)  # q_xy (eq. 23)
    dangling = deg == 0
    out = []
    for u in range(n_u):  # reference, test only: solve eq. (22) directly
        e = np.zeros(n_u + n_i)
        e[u] = 1.0
        # p = (1 - a) Q^T p + (a + (1 - a) * p[dangling].sum()) e
        M = np.eye(n_u + n_i) - (1 - alpha) * Q.T - (1 - alpha) * np.outer(e, dangling)
        out.append(np.linalg.solve(M, alpha * e))
    return np.array(out)


@pytest.mark.parametrize("weights", ["rating", "binary"])
def test_rwr_matches_a_dense_solve_of_eq22(weights):
    R, data = _tiny()
    W = R if weights == "rating" else (R != 0).astype(float)
    expected = _dense_rwr(W, 0.3)
    m = make("rwr", weights=weights, tol=1e-12, max_iter=1000).fit(data)
    got = m.stationary(np.arange(R.shape[0]))
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-10)
    np.testing.assert_allclose(got, expected, atol=1e-9)
    np.testing.assert_allclose(m.score(), expected[:, R.shape[0]:], atol=1e-6)


def test_rwr_stationary_vectors_sum_to_one_on_planted_data(planted):
    Tu_T, Ti_T = transitions(planted.matrix)
    users = np.arange(0, planted.n_users, 7)
    Pu, Pi, steps = rwr_power(Tu_T, Ti_T, users, 0.3, 1e-8, 500)
    np.testing.assert_allclose(Pu.sum(0) + Pi.sum(0), 1.0, atol=1e-10)
    assert (Pu >= 0).all() and (Pi >= 0).all() and steps < 500


def test_rwr_batches_do_not_change_the_result(planted):
    a = make("rwr", batch_size=1024).fit(planted).score()
    b = make("rwr", batch_size=7).fit(planted).score()
    np.testing.assert_allclose(a, b, atol=1e-9)


def test_rwr_bad_hyper_parameters():
    with pytest.raises(ConfigError, match="alpha"):
        make("rwr", alpha=0.0)
    with pytest.raises(ConfigError, match="weights"):
        make("rwr", weights="log")


# ---------------------------------------------------------------------- real data
@pytest.mark.slow
def test_implicit_models_beat_most_popular_on_ml100k():
    from recpoison import datasets
    from recpoison.metrics import loo_accuracy_from_topk
    from recpoison.seeding import derive_rng
    from recpoison.splits import leave_one_out

    split = leave_one_out(datasets.load("ml-100k"), derive_rng(0, "split"))
    users = split.test_users

    def hr(name):
        m = make(name, seed=0).fit(split.train)
        return loo_accuracy_from_topk(m.recommend(users, 10), split.test_items, users)["hr"]

    base = hr("mostpop")
    assert 0.06 < base < 0.11, base
    for name in ("wrmf", "wrmf-gd", "cdae", "itemknn", "rwr"):
        got = hr(name)
        assert got > base + 0.01, f"{name}: HR@10 {got:.3f} vs MostPop {base:.3f}"
