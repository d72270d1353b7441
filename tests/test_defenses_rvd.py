"""RVD (seed 004 Algorithm 1): conformance, the batched closed form against the per-user loop,
the identity case, neighbours, and the victims it can and cannot wrap."""

from __future__ import annotations

import numpy as np
import pytest

from recpoison import defenses, victims
from recpoison.errors import ConfigError
from recpoison.testing import DefenseTests, planted_attack


class TestRVDConformance(DefenseTests):
    name = "rvd"
    victim = "mf"
    victim_params = {"d": 16}


@pytest.fixture(scope="module")
def poisoned():
    return planted_attack()[0]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("include_self", [True, False])
def test_batched_closed_form_equals_the_one_user_loop(poisoned, dtype, include_self):
    mf = victims.make("mf", d=16, dtype=dtype).fit(poisoned)
    users = np.arange(poisoned.n_users)  # fake users served too: their neighbourhoods are fake
    kw = {"k": 7, "include_self": include_self}
    batched = defenses.make("rvd", method="batched", batch_users=50, **kw).attach(mf)
    loop = defenses.make("rvd", method="loop", **kw).attach(mf)
    assert batched.method_ == "batched" and loop.method_ == "loop"
    a, b = batched.score(users), loop.score(users)
    tol = 1e-9 if dtype == "float64" else 2e-4
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    assert np.abs(a - mf.score(users)).max() > 0.1  # the fine-tuning moved the scores


def test_auto_picks_the_closed_form_for_mf_and_the_loop_otherwise(poisoned):
    mf = victims.make("mf", d=16).fit(poisoned)
    assert defenses.make("rvd", k=5).attach(mf).method_ == "batched"
    assert defenses.make("rvd", k=5, steps=2).attach(mf).method_ == "loop"
    assert defenses.make("rvd", k=20).attach(mf).method_ == "loop"  # k >= d: the d x d systems are smaller


def test_all_users_and_no_fine_tuning_return_the_undefended_scores(poisoned):
    mf = victims.make("mf", d=16).fit(poisoned)
    r = defenses.make("rvd", k=poisoned.n_users, steps=0).attach(mf)
    np.testing.assert_array_equal(r.score(), mf.score())


def test_neighbours_are_the_nearest_embeddings_self_first_fakes_included(poisoned):
    mf = victims.make("mf", d=16).fit(poisoned)
    r = defenses.make("rvd", k=6).attach(mf)
    E = mf.user_embeddings().astype(np.float64)
    users = np.arange(poisoned.n_users)
    nb = r.neighbours(users)
    assert nb.shape == (len(users), 6) and np.array_equal(nb[:, 0], users)
    d = np.linalg.norm(E[users, None] - E[None], axis=2)
    kth = np.take_along_axis(d, nb[:, 1:], axis=1).max(1)
    d[users, users] = np.inf
    assert np.all(np.sort(d, axis=1)[:, 4] >= kth - 1e-9)  # nobody outside is nearer
    fake = np.flatnonzero(poisoned.is_fake)
    assert np.isin(nb[fake], fake).any()  # the defender does not know the fake users
    r2 = defenses.make("rvd", k=6, include_self=False).attach(mf)
    assert not (r2.neighbours(users) == users[:, None]).any()


def test_k_defaults_to_seed_004_table_2():
    from recpoison.defenses.rvd import DEFAULT_K, K_TABLE

    assert K_TABLE[("ml-100k", "mf")] == 12 and K_TABLE[("ml-100k", "nsvd")] == 25 and K_TABLE[("filmtrust", "mf")] == 650
    data = planted_attack()[0]
    r = defenses.make("rvd").attach(victims.make("mf", d=8).fit(data))
    assert r.k_ == DEFAULT_K  # a data set the table does not list
    import dataclasses

    named = dataclasses.replace(data, name="filmtrust") if dataclasses.is_dataclass(data) else None
    if named is not None:
        for victim in ("mf", "mf-wu"):  # seed 004's MF row applies to both MF victims
            m = victims.make(victim, **({"d": 8} if victim == "mf" else {"d": 8, "epochs": 2})).fit(named)
            assert defenses.make("rvd").attach(m).k_ == min(650, named.n_users)


def test_generic_loop_on_a_torch_victim_restores_the_model(poisoned):
    gmf = victims.make("gmf", epochs=2, d=8).fit(poisoned)
    users = np.arange(10)
    plain = gmf.score(users)
    r = defenses.make("rvd", k=5, steps=3).attach(gmf)
    defended = r.score(users)
    assert np.abs(defended - plain).max() > 0
    np.testing.assert_array_equal(gmf.score(users), plain)  # the trained state is back
    np.testing.assert_array_equal(defenses.make("rvd", k=5, steps=0).attach(gmf).score(users), plain)


def test_refuses_victims_without_fine_tuning_and_misplaced_options(poisoned):
    knn = victims.make("itemknn").fit(poisoned)
    with pytest.raises(ConfigError, match="needs a victim with"):
        defenses.make("rvd").attach(knn)
    with pytest.raises(ConfigError, match="method=batched"):
        defenses.make("rvd", method="batched").attach(victims.make("gmf", epochs=1, d=4).fit(poisoned))
    with pytest.raises(ConfigError, match="k=0"):
        defenses.make("rvd", k=0)


def test_chains_parse_and_refuse_clearly():
    assert defenses.parse_chain("rvd") == ["rvd"]
    for bad, msg in [("rvd+", "empty part"), ("rvd+rvd", "twice"), ("none+rvd", "none"), ("nope", "unknown defense")]:
        with pytest.raises(ConfigError, match=msg):
            defenses.parse_chain(bad)
    with pytest.raises(ConfigError, match="unknown parameter"):
        defenses.build("rvd", {"kk": 3}, victims.make("mf"))
    assert defenses.build("none", {}, m := victims.make("mf")) is m
