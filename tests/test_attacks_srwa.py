"""SRWA (seed 003 §5.1.2) = the graph attack of Fang et al. 2018 with binary edges."""

import numpy as np
import pytest

from recpoison.attacks import make
from recpoison.testing import AttackTests, ClickAttackTests, planted_blocks

FAST = {"steps": 3, "tol": 1e-5}


class TestSrwaImplicit(AttackTests):
    """On seed 003's kind of data: clicks, against the random-walk victim the attack models."""

    name = "srwa"
    params = FAST
    victim = "rwr"
    victim_params = {}

    @pytest.fixture(scope="class")
    @classmethod
    def view(cls):
        return planted_blocks(seed=5, implicit=True)


def test_binary_edges_by_default_and_the_graph_attack_on_clicks():
    view = planted_blocks(seed=5, implicit=True)
    t = np.argsort(view.item_counts(), kind="stable")[:2]
    assert make("srwa").config.weights == "binary" and make("graph").config.weights == "rating"
    a = make("srwa", **FAST).generate(view, t, 4, 5, np.random.default_rng(3)).matrix
    b = make("graph", **FAST).generate(view, t, 4, 5, np.random.default_rng(3)).matrix
    assert (a != b).nnz == 0  # on implicit data graph already walks binary edges
    assert set(np.unique(a.data)) == {1.0} and np.all(a.toarray()[:, t] == 1)
    assert np.all(np.diff(a.indptr) == 5 + 2)


def test_explicit_ratings_walk_the_binary_pattern():
    view = planted_blocks(seed=5)
    t = np.argsort(view.item_counts(), kind="stable")[:2]
    a = make("srwa", **FAST).generate(view, t, 3, 4, np.random.default_rng(0)).matrix
    b = make("graph", **FAST, weights="binary").generate(view, t, 3, 4, np.random.default_rng(0)).matrix
    assert (a != b).nnz == 0


class TestSrwaClicksOnWRMF(ClickAttackTests):
    """Seed 003's conformance setting of RAPU-R, RAPU-G and RevAdv (synthetic power-law clicks, a
    WRMF victim with 8 factors): SRWA's fake clicks, optimised on the random walk, raise the targets
    on WRMF too. Measured (share of items above the two targets, 15% fake users, 10 fillers): none
    0.712, srwa 0.407; random 0.415, popular 0.330."""

    name = "srwa"
    params = FAST
