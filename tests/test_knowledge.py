"""Partial-knowledge views (seed 001 §5.3) and their wiring into the pipeline and CLI."""

import json
import math

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order
from typer.testing import CliRunner

from recpoison.cli import app
from recpoison.errors import ConfigError
from recpoison.knowledge import make_view, parse_knowledge, partial_view
from recpoison.pipeline import CellSpec
from recpoison.testing import planted_blocks


@pytest.fixture(scope="module")
def data():
    return planted_blocks(n_users=150, n_items=100, p_in=0.2, p_out=0.01, seed=4)


TARGETS = np.array([7, 50])


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.5, 0.9, 1.0])
def test_observed_fraction_hits_the_goal(data, fraction):
    v = partial_view(data, fraction, TARGETS, np.random.default_rng(0))
    assert v.shape == data.shape and v.n_normal == data.n_normal
    assert v.nnz == math.ceil(fraction * data.nnz)
    assert abs(v.nnz / data.nnz - fraction) <= 1 / data.nnz + 1e-12


def test_observed_ratings_are_a_subset_with_the_same_values(data):
    v = partial_view(data, 0.4, TARGETS, np.random.default_rng(1))
    full = data.matrix.toarray()
    part = v.matrix.toarray()
    seen = part != 0
    np.testing.assert_array_equal(part[seen], full[seen])


def test_every_observed_rating_is_reachable_from_the_targets(data):
    v = partial_view(data, 0.3, TARGETS, np.random.default_rng(2))
    n_u, n_i = v.shape
    b = v.binary()
    graph = sp.bmat([[None, b], [b.T, None]], format="csr")
    # a virtual source joined to every target item
    src = sp.csr_matrix((np.ones(len(TARGETS)), (np.zeros(len(TARGETS), int), n_u + TARGETS)), shape=(1, n_u + n_i))
    g = sp.bmat([[graph, src.T], [src, None]], format="csr")
    reached = np.zeros(n_u + n_i + 1, dtype=bool)
    reached[breadth_first_order(g, n_u + n_i, directed=False, return_predecessors=False)] = True
    rows, cols = v.matrix.nonzero()
    assert reached[rows].all() and reached[n_u + cols].all()


def test_hops_grow_from_the_targets(data):
    """A small view holds the targets' own ratings first (hop 1), all of them when room allows."""
    n_target_ratings = int((data.matrix[:, TARGETS] != 0).sum())
    v = partial_view(data, (n_target_ratings + 5) / data.nnz, TARGETS, np.random.default_rng(0))
    assert int((v.matrix[:, TARGETS] != 0).sum()) == n_target_ratings
    # hop 2 ratings belong to users who rated a target
    raters = np.flatnonzero(np.asarray((data.matrix[:, TARGETS] != 0).sum(axis=1)).ravel())
    rows, _ = v.matrix.nonzero()
    assert set(rows) <= set(raters)


def test_deterministic_and_seed_dependent(data):
    a = partial_view(data, 0.35, TARGETS, np.random.default_rng(3)).matrix
    b = partial_view(data, 0.35, TARGETS, np.random.default_rng(3)).matrix
    c = partial_view(data, 0.35, TARGETS, np.random.default_rng(4)).matrix
    assert (a != b).nnz == 0
    assert (a != c).nnz > 0  # the last hop's random cut depends on the seed


def test_make_view_and_parsing(data):
    assert make_view(data, "full", TARGETS, np.random.default_rng(0)) is data
    assert parse_knowledge("partial:0.5") == ("partial", 0.5)
    v = make_view(data, "partial:0.5", TARGETS, np.random.default_rng(0))
    assert v.nnz == math.ceil(0.5 * data.nnz)


@pytest.mark.parametrize("bad", ["partial:1.5", "partial:0", "partial:-1", "partial:x", "partial", "foo", ""])
def test_bad_strings_raise_one_line_config_errors(data, bad):
    with pytest.raises(ConfigError) as exc:
        make_view(data, bad, TARGETS, np.random.default_rng(0))
    assert "\n" not in str(exc.value) and "partial:" in str(exc.value)
    with pytest.raises(ConfigError):
        CellSpec(dataset="synthetic", knowledge=bad)


def test_cli_run_with_partial_knowledge():
    runner = CliRunner()
    args = ["run", "--dataset", "synthetic", "--victim-param", "d=8", "--victim-param", "sweeps=5",
            "--attack", "average", "--attack-size", "0.05", "--json"]
    full = json.loads(runner.invoke(app, args).output)
    r = runner.invoke(app, args + ["--knowledge", "partial:0.5"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert res["knowledge"] == "partial:0.5" and full["knowledge"] == "full"
    assert res["n_fake"] == full["n_fake"]
    # the attacker's item statistics come from half the data, so the fake profiles differ
    assert res["hr_per_target_after"] != full["hr_per_target_after"] or res["accuracy_after"] != full["accuracy_after"]
    bad = runner.invoke(app, args + ["--knowledge", "partial:1.5"])
    assert bad.exit_code == 2 and "partial:" in bad.output
