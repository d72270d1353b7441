"""The training defenses of seed 004's baselines: LTSMF, RMF (on mf and mf-wu) and APR (on mf-wu)."""

import numpy as np
import pytest

from recpoison.defenses import DEFENSES, build
from recpoison.errors import ConfigError
from recpoison.metrics import target_hit_ratio
from recpoison.testing import planted_attack, planted_blocks
from recpoison.victims import make

#: small, fast victims for the conformance checks
FAST = {"mf": {"d": 8, "reg": 1.0, "sweeps": 5}, "mf-wu": {"d": 8, "epochs": 8}}
#: defense parameters that make each defense act on the tiny data
PARAMS = {"ltsmf": {"trim": 0.1}, "rmf": {"lambda_s": 0.5}, "apr": {"adv_epochs": 4}}
CASES = [("ltsmf", "mf"), ("ltsmf", "mf-wu"), ("rmf", "mf"), ("rmf", "mf-wu"), ("apr", "mf-wu")]
IDS = [f"{d}-{v}" for d, v in CASES]


def defended(defense, victim, seed=0, params=None, victim_params=None):
    v = make(victim, seed=seed, **(FAST[victim] if victim_params is None else victim_params))
    return build(defense, PARAMS[defense] if params is None else params, v)


@pytest.fixture(scope="module")
def planted():
    return planted_blocks(seed=4)


# ---------------------------------------------------------------------- configuration
@pytest.mark.parametrize("name", ["ltsmf", "rmf", "apr"])
def test_registered_training_defense(name):
    entry = DEFENSES.entry(name)
    assert entry.paper and entry.factory.kind == "training"


@pytest.mark.parametrize("name", ["ltsmf", "rmf", "apr"])
def test_config_round_trip(name):
    d = DEFENSES.make(name, **PARAMS[name])
    assert DEFENSES.make(name, **d.get_params()).get_params() == d.get_params()


@pytest.mark.parametrize("name", ["ltsmf", "rmf", "apr"])
def test_rejects_unknown_parameter(name):
    with pytest.raises(ConfigError, match="unknown parameter"):
        DEFENSES.make(name, no_such_parameter=1)


@pytest.mark.parametrize(
    "name, bad",
    [("ltsmf", {"trim": 1.0}), ("ltsmf", {"trim": -0.1}), ("rmf", {"lambda_s": 0}), ("apr", {"eps": -1}),
     ("apr", {"reg_adv": -1}), ("apr", {"adv_epochs": -1}), ("apr", {"adv_epoch": -1})],
)
def test_rejects_bad_values(name, bad):
    with pytest.raises(ConfigError, match=name):
        DEFENSES.make(name, **bad)


def test_defaults_stated_in_the_docstrings():
    assert DEFENSES.make("ltsmf").config.trim == 0.05
    assert DEFENSES.make("rmf").config.lambda_s is None
    c = DEFENSES.make("apr").config
    assert (c.eps, c.reg_adv, c.adv_epoch, c.adv_epochs) == (0.5, 1.0, None, 25)


@pytest.mark.parametrize("name, victim", [("ltsmf", "autorec"), ("rmf", "nsvd"), ("apr", "mf"), ("apr", "autorec")])
def test_refuses_victims_it_does_not_defend(name, victim):
    with pytest.raises(ConfigError, match="defends"):
        DEFENSES.make(name).wrap(make(victim))


def test_must_wrap_the_victim_itself():
    rvd = DEFENSES.make("rvd").wrap(make("mf"))
    with pytest.raises(ConfigError, match="victim itself"):
        DEFENSES.make("ltsmf").wrap(rvd)


# ---------------------------------------------------------------------- the Recommender contract
@pytest.mark.parametrize("defense, victim", CASES, ids=IDS)
def test_deterministic_for_a_seed(defense, victim, planted):
    a = defended(defense, victim, seed=3).fit(planted).score()
    b = defended(defense, victim, seed=3).fit(planted).score()
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("defense, victim", CASES, ids=IDS)
def test_shapes_and_does_not_mutate(defense, victim, planted):
    m = planted.matrix
    before = (m.data.copy(), m.indices.copy(), m.indptr.copy())
    model = defended(defense, victim).fit(planted)
    assert all(np.array_equal(x, y) for x, y in zip(before, (m.data, m.indices, m.indptr)))
    s = model.score(np.array([0, 4, 9]))
    assert s.shape == (3, planted.n_items) and s.dtype == np.float32 and np.isfinite(s).all()
    assert model.score().shape == planted.shape
    assert model.recommend(np.arange(4), k=5).shape == (4, 5)
    assert model.predicts_ratings
    # the factors live in the wrapped model: its own score gives the same numbers
    np.testing.assert_array_equal(model.inner.score(np.arange(4)), model.score(np.arange(4)))
    np.testing.assert_array_equal(model.user_embeddings(), model.inner.user_factors_)


@pytest.mark.parametrize("defense, victim", CASES, ids=IDS)
def test_defense_changes_the_fit(defense, victim, planted):
    plain = make(victim, seed=0, **FAST[victim]).fit(planted).score()
    assert not np.allclose(defended(defense, victim).fit(planted).score(), plain, atol=1e-3)


# ---------------------------------------------------------------------- reductions to the plain victim
@pytest.mark.parametrize(
    "defense, params, victim",
    [("ltsmf", {"trim": 0.0}, "mf"), ("ltsmf", {"trim": 0.0}, "mf-wu"), ("rmf", {"lambda_s": 1e9}, "mf"),
     ("rmf", {"lambda_s": 1e9}, "mf-wu"), ("apr", {"adv_epochs": 0}, "mf-wu")],
)
def test_inactive_defense_is_the_plain_victim(defense, params, victim, planted):
    """trim = 0 keeps every rating; a huge lambda_S keeps S = 0; no APR epochs leave the MF fit."""
    plain = make(victim, seed=2, **FAST[victim]).fit(planted).score()
    model = defended(defense, victim, seed=2, params=params).fit(planted)
    np.testing.assert_allclose(model.score(), plain, rtol=1e-6, atol=1e-6)


def test_ltsmf_trims_the_stated_share(planted):
    model = defended("ltsmf", "mf", params={"trim": 0.1}).fit(planted)
    n_trim = int(np.floor(0.1 * planted.nnz))
    assert model.trimmed_ == [0] + [n_trim] * (FAST["mf"]["sweeps"] - 1)


def test_rmf_default_lambda_is_a_quarter_of_the_rating_range(planted):
    model = defended("rmf", "mf", params={}).fit(planted)
    assert model.lambda_s_ == pytest.approx((planted.r_max - planted.r_min) / 4)
    assert model.outliers_[0] == 0 and max(model.outliers_) > 0


# ---------------------------------------------------------------------- RVD support
@pytest.mark.parametrize("defense, victim", CASES, ids=IDS)
def test_finetune_moves_only_the_users_and_their_items_and_restores(defense, victim, planted):
    model = defended(defense, victim).fit(planted)
    state = model.snapshot()
    users = np.array([5, 2])
    rated = np.unique(planted.matrix[users].indices)
    model.finetune(planted, users, 2)
    inner = model.inner
    moved_u = np.flatnonzero(np.any(inner.user_factors_ != state["user_factors"], axis=1))
    moved_i = np.flatnonzero(np.any(inner.item_factors_ != state["item_factors"], axis=1))
    assert set(moved_u) <= set(users) and moved_u.size
    assert set(moved_i) <= set(rated) and moved_i.size
    tuned = model.snapshot()
    model.restore(state).finetune(planted, users, 2)  # deterministic given (seed, users)
    np.testing.assert_array_equal(model.snapshot()["user_factors"], tuned["user_factors"])
    model.restore(state)
    np.testing.assert_array_equal(inner.user_factors_, state["user_factors"])
    np.testing.assert_array_equal(inner.item_factors_, state["item_factors"])
    with pytest.raises(ConfigError):
        model.finetune(planted, np.array([planted.n_users]), 1)


@pytest.mark.parametrize("chain, victim", [("rvd+ltsmf", "mf"), ("rvd+rmf", "mf-wu"), ("rvd+apr", "mf-wu")])
def test_rvd_on_top_fine_tunes_with_the_defense(chain, victim, planted):
    training = chain.split("+")[1]
    model = build(chain, {"k": 5, **PARAMS[training]}, make(victim, seed=0, **FAST[victim])).fit(planted)
    assert type(model.inner).__name__ == {"ltsmf": "LTSMF", "rmf": "RMF", "apr": "APR"}[training]
    base = model.inner.score(np.arange(3))
    s = model.score(np.arange(3))
    assert s.shape == (3, planted.n_items) and np.isfinite(s).all()
    assert not np.allclose(s, base)  # fine-tuned per user ...
    np.testing.assert_array_equal(model.inner.score(np.arange(3)), base)  # ... and restored


# ---------------------------------------------------------------------- behaviour
@pytest.fixture(scope="module")
def attacked():
    return planted_attack()


_UNDEFENDED: dict = {}


def _hr(model, targets) -> float:
    return float(target_hit_ratio(model, targets, 10).mean())


@pytest.mark.parametrize(
    "defense, victim",
    [
        ("ltsmf", "mf"),
        pytest.param(
            "rmf", "mf",
            marks=pytest.mark.xfail(strict=True, reason="measured: rmf (lambda_s 1.0) does not lower the HR@10 of a default mf on planted_attack() (1.000 vs 0.995)"),
        ),
        ("ltsmf", "mf-wu"),
        ("rmf", "mf-wu"),
        ("apr", "mf-wu"),
    ],
    ids=["ltsmf-mf", "rmf-mf", "ltsmf-mf-wu", "rmf-mf-wu", "apr-mf-wu"],
)
def test_lowers_target_hit_ratio_under_average_attack(defense, victim, attacked):
    """Known answer: 10% average-attack fakes promote two rare items; the defended victim (its
    defaults, the defense's defaults) ranks them into fewer normal users' top-10 than the same
    victim undefended."""
    data, targets = attacked
    if victim not in _UNDEFENDED:
        _UNDEFENDED[victim] = _hr(make(victim, seed=0).fit(data), targets)
    before = _UNDEFENDED[victim]
    after = _hr(build(defense, {}, make(victim, seed=0)).fit(data), targets)
    assert before > 0.1, f"the attack should work on the undefended {victim} (HR@10 {before:.3f})"
    assert after < before, f"{defense} on {victim}: HR@10 {after:.3f} defended vs {before:.3f} undefended"


def test_apr_step_is_the_gradient_of_the_apr_loss():
    """APR's written-out step: Delta = eps * row-normalised gradient of the clean squared error
    (autograd), held fixed; the step follows the gradient of L(theta) + reg_adv L(theta + Delta)."""
    import torch

    from recpoison.victims import _optim
    from recpoison.victims.mf_wu import wu_loss

    apr = DEFENSES.make("apr", eps=0.7, reg_adv=2.0).wrap(make("mf-wu", reg=0.1))
    gen = torch.Generator().manual_seed(1)
    P0, Q0 = torch.randn(5, 3, generator=gen), torch.randn(4, 3, generator=gen)
    u, i = torch.tensor([0, 2, 2, 4]), torch.tensor([1, 1, 3, 0])
    t = torch.tensor([0.8, 0.2, 1.0, 0.6])
    # Delta from autograd: gradient of the mean squared error w.r.t. the full P, Q, rows normalised
    Pa, Qa = P0.clone().requires_grad_(True), Q0.clone().requires_grad_(True)
    ((t - (Pa[u] * Qa[i]).sum(1)) ** 2).mean().backward()
    dP = 0.7 * Pa.grad / Pa.grad.norm(dim=1, keepdim=True).clamp(min=1e-6)
    dQ = 0.7 * Qa.grad / Qa.grad.norm(dim=1, keepdim=True).clamp(min=1e-6)
    got = apr.perturbation(P0, Q0, u, i, t)
    np.testing.assert_allclose(got[0].numpy(), dP[u].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[1].numpy(), dQ[i].numpy(), rtol=1e-5, atol=1e-6)
    # the step
    P, Q = P0.clone(), Q0.clone()
    apr._apr_step(P, Q, u, i, t, _optim.SGD([P, Q], lr=1.0))
    Pb, Qb = P0.clone().requires_grad_(True), Q0.clone().requires_grad_(True)
    adv = ((t - ((Pb[u] + dP[u]) * (Qb[i] + dQ[i])).sum(1)) ** 2).mean()
    (wu_loss(Pb[u], Qb[i], t, 0.1) + 2.0 * adv).backward()
    np.testing.assert_allclose((P0 - P).numpy(), Pb.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose((Q0 - Q).numpy(), Qb.grad.numpy(), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ the shared conformance suite
from recpoison.testing import DefenseTests  # noqa: E402


class TestLTSMFConformance(DefenseTests):
    name = "ltsmf"
    victim = "mf"
    victim_params = {}


class TestRMFConformance(DefenseTests):
    name = "rmf"
    victim = "mf-wu"
    victim_params = {}


class TestAPRConformance(DefenseTests):
    name = "apr"
    victim = "mf-wu"
    victim_params = {}
