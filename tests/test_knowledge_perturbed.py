"""The partial and perturbed view (seed 003 App. A.6): composition, subsets, the walk's stationary
distribution, determinism, wiring into the pipeline (the victim trains on the full data), errors."""

import json

import numpy as np
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from recpoison.cli import app
from recpoison.errors import ConfigError
from recpoison.interactions import Interactions
from recpoison.knowledge import (
    _nth_non_neighbour,
    _walk_stationary,
    make_view,
    parse_knowledge,
    parse_knowledge_mode,
    perturbed_view,
)
from recpoison.pipeline import CellSpec
from recpoison.testing import planted_blocks

TARGETS = np.array([7, 50])


@pytest.fixture(scope="module")
def data():
    return planted_blocks(n_users=150, n_items=100, p_in=0.2, p_out=0.01, seed=4)


def parts(view, data):
    full = data.matrix.toarray()
    seen = view.matrix.toarray()
    real = (seen != 0) & (full != 0)
    fake = (seen != 0) & (full == 0)
    return full, seen, real, fake


@pytest.mark.parametrize("mode", ["walk", "random"])
@pytest.mark.parametrize("fraction", [0.9, 0.5, 0.97, 1.0])
def test_exact_composition_subset_and_non_interactions(data, mode, fraction):
    v = perturbed_view(data, fraction, np.random.default_rng(0), mode)
    assert v.shape == data.shape and v.n_normal == data.n_normal
    assert np.array_equal(v.user_ids, data.user_ids) and np.array_equal(v.item_ids, data.item_ids)
    full, seen, real, fake = parts(v, data)
    n_real = int(np.floor(fraction * data.nnz + 0.5))
    assert real.sum() == n_real and fake.sum() == data.nnz - n_real and v.nnz == data.nnz
    # the real part holds only real interactions, with their own values
    np.testing.assert_array_equal(seen[real], full[real])
    # every other pair of the view is a non-interaction of its user (true by construction of fake)
    assert not (fake & (full != 0)).any()


def test_ninety_ten_on_the_default():
    d = planted_blocks(seed=1, implicit=True)
    v = make_view(d, "perturbed:0.9", TARGETS, np.random.default_rng(2))
    _, _, real, fake = parts(v, d)
    assert real.sum() == round(0.9 * d.nnz) and fake.sum() == d.nnz - round(0.9 * d.nnz)
    assert set(np.unique(v.matrix.data)) == {1.0}


@pytest.mark.parametrize("mode", ["walk", "random"])
def test_deterministic_and_seed_dependent(data, mode):
    a = perturbed_view(data, 0.9, np.random.default_rng(3), mode).matrix
    b = perturbed_view(data, 0.9, np.random.default_rng(3), mode).matrix
    c = perturbed_view(data, 0.9, np.random.default_rng(4), mode).matrix
    assert (a != b).nnz == 0 and (a != c).nnz > 0


@pytest.mark.parametrize("mode", ["walk", "random"])
@pytest.mark.parametrize("fraction, share", [(0.8, 0.0), (0.9, 0.2), (1.0, 0.05), (0.6, 0.1)])
def test_separate_perturbed_share(data, mode, fraction, share):
    """perturbed:F:P (seed 003 §5.3: removed and perturbed shares varied apart)."""
    v = make_view(data, f"perturbed:{fraction}:{share}:{mode}", TARGETS, np.random.default_rng(1))
    _, _, real, fake = parts(v, data)
    assert real.sum() == int(np.floor(fraction * data.nnz + 0.5)) and fake.sum() == int(np.floor(share * data.nnz + 0.5))


def test_walk_ratings_come_from_the_users_own_ratings(data):
    v = perturbed_view(data, 0.8, np.random.default_rng(5))
    full, seen, _, fake = parts(v, data)
    for u, i in zip(*np.nonzero(fake)):
        own = full[u][full[u] != 0]
        assert seen[u, i] in (own if own.size else full[:, i][full[:, i] != 0])


def test_random_mode_moves_the_removed_records_ratings(data):
    v = perturbed_view(data, 0.7, np.random.default_rng(6), "random")
    full, seen, real, fake = parts(v, data)
    removed = (full != 0) & ~real
    np.testing.assert_array_equal(np.sort(seen[fake]), np.sort(full[removed]))


def test_stationary_distribution_of_the_walk_with_jumps():
    """pi_U -> pi_I -> pi_U under the walk's explicit transition matrices (jumps to non-neighbours,
    forced jumps from a node without edges, no jump from a node linked to everything)."""
    rng = np.random.default_rng(1)
    M = (rng.random((7, 6)) < 0.45).astype(float)

    def transitions(B, j):
        d = B.sum(axis=1, keepdims=True)
        real = np.where(d > 0, B / np.maximum(d, 1), 0)
        jump = np.where(d < B.shape[1], (1 - B) / np.maximum(B.shape[1] - d, 1), 0)
        return (1 - j)[:, None] * real + j[:, None] * jump

    M[:, 2] = 0
    M[1, :] = 0
    pu, pi, ju, ji = _walk_stationary(sp.csr_matrix(M), 0.3)
    assert ju[1] == 1 and ji[2] == 1  # no edges: every step jumps
    np.testing.assert_allclose(pu @ transitions(M, ju), pi, atol=1e-12)
    np.testing.assert_allclose(pi @ transitions(M.T, ji), pu, atol=1e-12)
    M[0, :] = 1
    pu, pi, ju, ji = _walk_stationary(sp.csr_matrix(M), 0.3)
    assert ju[0] == 0  # linked to every item: no jump possible
    np.testing.assert_allclose(pu @ transitions(M, ju), pi, atol=1e-12)
    np.testing.assert_allclose(pi @ transitions(M.T, ji), pu, atol=1e-12)
    # without jumps the walk's stationary flow is uniform over the edges: pi_U ~ degree
    M2 = (rng.random((9, 8)) < 0.5).astype(float)
    M2[:, 0] = 1
    pu2, _, _, _ = _walk_stationary(sp.csr_matrix(M2), 1e-9)
    np.testing.assert_allclose(pu2, M2.sum(1) / M2.sum(), atol=1e-6)


def test_nth_non_neighbour_matches_a_brute_force_list():
    rng = np.random.default_rng(2)
    M = sp.csr_matrix((rng.random((6, 9)) < 0.4).astype(np.float32))
    rows, ranks, expect = [], [], []
    for r in range(6):
        free = np.flatnonzero(M[r].toarray().ravel() == 0)
        for k, j in enumerate(free):
            rows.append(r), ranks.append(k), expect.append(j)
    got = _nth_non_neighbour(M, np.array(rows), np.array(ranks))
    np.testing.assert_array_equal(got, expect)


def test_parsing_and_one_line_errors(data):
    assert parse_knowledge("perturbed:0.9") == ("perturbed", 0.9)
    assert parse_knowledge_mode("perturbed:0.9") == ("perturbed", 0.9, "walk", None)
    assert parse_knowledge_mode("Perturbed:0.8:random") == ("perturbed", 0.8, "random", None)
    assert parse_knowledge_mode("perturbed:0.8:0.2:walk") == ("perturbed", 0.8, "walk", 0.2)
    assert parse_knowledge_mode("perturbed:0.8:0") == ("perturbed", 0.8, "walk", 0.0)
    assert parse_knowledge_mode("partial:0.5") == ("partial", 0.5, None, None)
    for bad in ["perturbed:0", "perturbed:1.5", "perturbed:x", "perturbed", "perturbed:", "perturbed:0.9:foo",
                "partial:0.5:random", "partial:0.5:0.1", "perturbed:nan", "perturbed:0.9:-0.1", "perturbed:0.9:0.1:0.1",
                "perturbed:0.9:random:walk", "perturbed:0.9:inf"]:
        with pytest.raises(ConfigError) as exc:
            make_view(data, bad, TARGETS, np.random.default_rng(0))
        assert "\n" not in str(exc.value) and "perturbed:F" in str(exc.value)
        with pytest.raises(ConfigError):
            CellSpec(dataset="synthetic", knowledge=bad)
    CellSpec(dataset="synthetic", knowledge="perturbed:0.9:random")


def test_too_few_non_interactions_is_a_config_error():
    dense = Interactions(sp.csr_matrix(np.ones((4, 5), dtype=np.float32) - np.eye(4, 5, dtype=np.float32)))
    with pytest.raises(ConfigError, match="non-interactions"):
        perturbed_view(dense, 0.5, np.random.default_rng(0))


def test_attacker_sees_the_view_and_the_victim_trains_on_the_full_data(monkeypatch):
    from recpoison import attacks as attacks_mod
    from recpoison import pipeline, victims
    from recpoison.pipeline import CellCache, load_data, make_split, run_cell

    seen_views, fitted = [], []
    real_generate = attacks_mod.base.Attack.generate

    def spy_generate(self, view, *a, **kw):
        seen_views.append(view)
        return real_generate(self, view, *a, **kw)

    real_make = victims.make

    def spy_make(name, **params):
        model = real_make(name, **params)
        real_fit = model.fit

        def fit(d):
            fitted.append(d)
            return real_fit(d)

        model.fit = fit
        return model

    monkeypatch.setattr(attacks_mod.base.Attack, "generate", spy_generate)
    monkeypatch.setattr(pipeline.victims, "make", spy_make)
    spec = CellSpec(dataset="synthetic", victim="mostpop", attack="random", attack_size=0.02, n_targets=2, k=5,
                    knowledge="perturbed:0.9")
    res, fakes = run_cell(spec, CellCache(), return_fakes=True)
    train = make_split(spec, load_data(spec), CellCache()).train
    (view,) = seen_views
    _, _, real, fake = parts(view, train)
    assert real.sum() == round(0.9 * train.nnz) and fake.sum() == train.nnz - round(0.9 * train.nnz)
    clean, poisoned = fitted
    assert (clean.matrix != train.matrix).nnz == 0
    assert poisoned.n_normal == train.n_normal and poisoned.n_fake == fakes[0].n_users == res["n_fake"] > 0
    assert poisoned.nnz == train.nnz + fakes[0].nnz
    assert (poisoned.matrix[: train.n_users] != train.matrix).nnz == 0
    assert res["knowledge"] == "perturbed:0.9"


def test_cli_run_and_sweep_accept_the_perturbed_view(tmp_path):
    from recpoison.experiments.spec import parse_spec

    runner = CliRunner()
    args = ["run", "--dataset", "synthetic", "--victim", "mostpop", "--attack", "popular", "--attack-size", "0.02",
            "--targets", "2", "--json"]
    r = runner.invoke(app, args + ["--knowledge", "perturbed:0.9"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["knowledge"] == "perturbed:0.9"
    bad = runner.invoke(app, args + ["--knowledge", "perturbed:2"])
    assert bad.exit_code == 2 and "perturbed:F" in bad.output and bad.output.count("error:") == 1
    spec = parse_spec({"axes": {"dataset": "synthetic", "knowledge": ["full", "perturbed:0.9", "perturbed:0.9:random"]}})
    assert len(spec.cells) == 3
    with pytest.raises(ConfigError, match="axes.knowledge"):
        parse_spec({"axes": {"dataset": "synthetic", "knowledge": "perturbed:1.5"}})
