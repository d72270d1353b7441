import numpy as np
import pytest

from recpoison.errors import ConfigError
from recpoison.interactions import Interactions
from recpoison.testing import VictimTests, planted_blocks
from recpoison.victims import make


class TestMF(VictimTests):
    name = "mf"
    params = {"d": 8, "reg": 1.0, "sweeps": 10}


def _brute_force_ridge(R, Y, reg):
    X = np.zeros((R.shape[0], Y.shape[1]))
    for u in range(R.shape[0]):  # reference implementation, test only
        idx = np.flatnonzero(R[u])
        A = Y[idx].T @ Y[idx] + reg * np.eye(Y.shape[1])
        X[u] = np.linalg.solve(A, Y[idx].T @ R[u, idx])
    return X


def test_als_is_exact_block_coordinate_descent():
    """After fit, X solves eq. (1) exactly given Y (and the loss decreases with sweeps)."""
    data = planted_blocks(n_users=40, n_items=30, seed=1)
    m = make("mf", d=4, reg=0.5, sweeps=6, dtype="float64", seed=0).fit(data)
    R = data.matrix.toarray()
    # the last half-sweep solved Y given X exactly
    Y = _brute_force_ridge(R.T, m.user_factors_, 0.5)
    np.testing.assert_allclose(m.item_factors_, Y, atol=1e-8)
    losses = [make("mf", d=4, reg=0.5, sweeps=s, dtype="float64", seed=0).fit(data).loss() for s in (1, 3, 6)]
    assert losses[0] >= losses[1] >= losses[2]


def test_rank_one_known_answer():
    """A rank-1 matrix is recovered: predictions of held-in entries are close to the truth."""
    u = np.linspace(1, 2, 20)
    v = np.linspace(1, 2.5, 15)
    R = np.outer(u, v)
    data = Interactions.from_matrix(R, rating_scale=(0, 5), rating_step=None)
    m = make("mf", d=1, reg=1e-6, sweeps=30, dtype="float64").fit(data)
    np.testing.assert_allclose(m.score().astype(float), R, rtol=1e-3)


def test_bad_hyper_parameters():
    with pytest.raises(ConfigError, match="d=0"):
        make("mf", d=0)
    with pytest.raises(ConfigError, match="reg"):
        make("mf", reg=-1)
    with pytest.raises(ConfigError, match="dtype"):
        make("mf", dtype="float16")


def test_warm_start_continues_from_previous_item_factors():
    data = planted_blocks(n_users=50, n_items=40, seed=2)
    m = make("mf", d=4, reg=0.5, sweeps=2, dtype="float64").fit(data)
    loss_cold = make("mf", d=4, reg=0.5, sweeps=2, dtype="float64").fit(data).loss()
    m.fit(data, warm_start=True)
    assert m.loss() < loss_cold


def test_finetune_decreases_the_restricted_objective_and_leaves_others_alone():
    from recpoison.testing import planted_blocks

    data = planted_blocks(seed=1)
    m = make("mf", d=4, reg=1.0, sweeps=3, seed=0).fit(data)
    before = m.snapshot()
    users = np.arange(5)
    m.finetune(data, users, steps=6)
    h = m.finetune_history_
    assert len(h) == 6 and all(b <= a + 1e-4 * abs(a) for a, b in zip(h, h[1:]))
    np.testing.assert_array_equal(m.user_factors_[5:], before["user_factors"][5:])
    assert not np.allclose(m.user_factors_[:5], before["user_factors"][:5])
    m.restore(before)
    np.testing.assert_array_equal(m.user_factors_, before["user_factors"])
    with pytest.raises(ConfigError):
        m.finetune(data, np.array([data.n_users]), steps=1)


def test_ridge_solve_primal_and_dual_forms_are_exact():
    """ridge_solve solves rows shorter than d in the dual form (w x w systems) and longer rows in
    the primal form (d x d): both equal the brute-force ridge solution, empty rows give 0."""
    import scipy.sparse as sp
    import torch

    from recpoison.victims.mf import RowBlocks, ridge_solve

    rng = np.random.default_rng(3)
    n_rows, n_cols, d = 60, 80, 16
    counts = np.concatenate([[0, 1, 2], rng.integers(3, 60, n_rows - 3)])
    R = np.zeros((n_rows, n_cols))
    for r, c in enumerate(counts):  # test data only
        R[r, rng.choice(n_cols, c, replace=False)] = rng.integers(1, 6, c)
    Y = rng.normal(size=(n_cols, d))
    blocks = RowBlocks(sp.csr_matrix(R), torch.float64, torch.device("cpu"))
    widths = [idx.shape[1] for _, idx, _ in blocks.blocks]
    assert min(widths) < d <= max(widths)  # both forms are exercised
    X = ridge_solve(blocks, torch.from_numpy(Y), 2.0).numpy()
    np.testing.assert_allclose(X, _brute_force_ridge(R, Y, 2.0), atol=1e-10)
    assert np.all(X[0] == 0)
