"""Seed 003's target sets and hit ratio: popularity tiers of App. A.8 (``tier:...``) and the
"any target of the set" HR@K of §5.1.4 (``hr_definition="any"``)."""

import json

import numpy as np
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from recpoison.cli import app
from recpoison.datasets.synthetic import make_synthetic
from recpoison.errors import ConfigError
from recpoison.interactions import Interactions
from recpoison.pipeline import TARGET_TIERS, CellCache, CellSpec, choose_targets, run_cell, tier_items

BANDS = {"most-pop": (80, None), "pop": (60, 80), "ordinary": (40, 60), "unpop": (20, 40), "most-unp": (None, 20)}


@pytest.fixture(scope="module")
def data():
    return make_synthetic(n_users=300, n_items=200, seed=3)


@pytest.mark.parametrize("tier", list(TARGET_TIERS))
def test_each_tiers_targets_lie_in_its_percentile_band(data, tier):
    counts = data.item_counts()
    rated = counts[counts > 0]
    lo_p, hi_p = BANDS[tier]
    lo = np.percentile(rated, lo_p) if lo_p is not None else -np.inf
    hi = np.percentile(rated, hi_p) if hi_p is not None else np.inf
    for seed in range(3):
        t = choose_targets(data, 5, np.random.default_rng(seed), f"tier:{tier}")
        assert len(set(t)) == 5
        c = counts[t]
        assert np.all((c > lo) & (c <= hi) & (c > 0)), (tier, c, lo, hi)


def test_tiers_partition_the_clicked_items_and_ties_go_to_the_lower_tier():
    # 10 items clicked 1..10 times (item k by k+1 users) and one item nobody clicked
    n_users = 10
    m = np.zeros((n_users, 11), dtype=np.float32)
    for k in range(10):
        m[: k + 1, k] = 1
    data = Interactions(sp.csr_matrix(m))
    tiers = {t: set(tier_items(data, t)) for t in TARGET_TIERS}
    assert set().union(*tiers.values()) == set(range(10))  # the unclicked item 10 is in no tier
    assert sum(len(v) for v in tiers.values()) == 10
    # counts 1..10: percentiles 2.8, 4.6, 6.4, 8.2 -> most-unp {1, 2}, unpop {3, 4}, ... most-pop {9, 10} clicks
    assert tiers["most-unp"] == {0, 1} and tiers["unpop"] == {2, 3} and tiers["most-pop"] == {8, 9}
    # a tie on a boundary: counts 1, 1, 1, 1, 1, 2, 3, ... p20 = p40 = 1 -> the 1s are all most-unp, unpop is empty
    m2 = np.zeros((n_users, 10), dtype=np.float32)
    for k, c in enumerate([1, 1, 1, 1, 1, 2, 3, 4, 5, 6]):
        m2[:c, k] = 1
    d2 = Interactions(sp.csr_matrix(m2))
    assert set(tier_items(d2, "most-unp")) == {0, 1, 2, 3, 4} and len(tier_items(d2, "unpop")) == 0
    with pytest.raises(ConfigError, match="tier unpop but only 0 items qualify"):
        choose_targets(d2, 1, np.random.default_rng(0), "tier:unpop")


@pytest.mark.parametrize("bad", ["tier:hot", "tier:", "tier", "popular", "Tier:pop", 3])
def test_bad_tier_names_are_one_clear_line(bad):
    with pytest.raises(ConfigError) as exc:
        CellSpec(dataset="synthetic", target_strategy=bad)
    msg = str(exc.value)
    assert "\n" not in msg and "most-pop" in msg and "random" in msg
    with pytest.raises(ConfigError):
        choose_targets(make_synthetic(n_users=20, n_items=10, seed=0), 1, np.random.default_rng(0), bad)


def test_sweep_spec_takes_tiers_and_refuses_bad_ones():
    from recpoison.experiments.spec import parse_spec

    spec = parse_spec({"axes": {"dataset": "synthetic", "target_strategy": ["random", "unpopular", "tier:most-pop", "tier:most-unp"]}})
    assert len(spec.cells) == 4
    with pytest.raises(ConfigError, match="axes.target_strategy"):
        parse_spec({"axes": {"dataset": "synthetic", "target_strategy": "tier:cold"}})


SMALL = dict(dataset="synthetic", victim="mf", victim_params={"d": 8, "sweeps": 5}, attack="popular", attack_size=0.05,
             n_targets=3, k=10, seed=1)


def test_run_cell_any_definition():
    """The any-target HR of the headline fields: recomputed by hand before the attack, at least the
    per-target figures, equal to the clean figure after a perfect detector; per-target lists kept."""
    from recpoison import victims
    from recpoison.metrics import any_hit_ratio_from_topk
    from recpoison.pipeline import load_data, make_split
    from recpoison.seeding import derive_seed

    cache = CellCache()
    per = run_cell(CellSpec(**SMALL), cache)
    anyr, fakes = run_cell(CellSpec(**SMALL, hr_definition="any", detector="perfect"), cache, return_fakes=True)
    assert "hr_definition" not in per and anyr["hr_definition"] == "any"
    spec = CellSpec(**SMALL)
    split = make_split(spec, load_data(spec), CellCache())
    model = victims.make("mf", seed=derive_seed(1, "victim"), d=8, sweeps=5).fit(split.train)
    users = np.arange(split.train.n_normal)
    t = np.array(anyr["target_index"])
    assert anyr["hr_before"] == pytest.approx(any_hit_ratio_from_topk(model.recommend(users, 10), t))
    poisoned = victims.make("mf", seed=derive_seed(1, "victim"), d=8, sweeps=5).fit(split.train.append_users(fakes[0]))
    assert anyr["hr_after"] == pytest.approx(any_hit_ratio_from_topk(poisoned.recommend(users, 10), t))
    for stage in ("before", "after"):
        assert anyr[f"hr_{stage}"] >= per[f"hr_{stage}"] and anyr[f"hr_{stage}"] >= per[f"hr_all_{stage}"]
        assert anyr[f"hr_per_target_{stage}"] == per[f"hr_per_target_{stage}"]
    assert anyr["hr_after"] > per["hr_after"] > anyr["hr_before"]
    assert anyr["hr_after_detection"] == pytest.approx(anyr["hr_before"])  # the fakes removed: the clean model


def test_any_definition_refuses_target_mode_each_and_bad_names():
    with pytest.raises(ConfigError) as exc:
        CellSpec(dataset="synthetic", hr_definition="any", target_mode="each")
    assert "\n" not in str(exc.value) and "together" in str(exc.value)
    with pytest.raises(ConfigError, match="per-target"):
        CellSpec(dataset="synthetic", hr_definition="all")


def test_spec_key_unchanged_while_the_default():
    from recpoison.experiments.spec import cell_key, parse_spec

    base = parse_spec({"axes": {"dataset": "synthetic", "attack": "random"}})
    same = parse_spec({"axes": {"dataset": "synthetic", "attack": "random"}, "metrics": {"hr_definition": "per-target"}})
    other = parse_spec({"axes": {"dataset": "synthetic", "attack": "random"}, "metrics": {"hr_definition": "any"}})
    assert base.cells[0].key == same.cells[0].key != other.cells[0].key
    params = dict(base.cells[0].params)
    del params["hr_definition"]
    assert cell_key(params) == base.cells[0].key  # a cell stored before the field existed
    with pytest.raises(ConfigError, match="must be one of 'per-target', 'any'"):
        parse_spec({"axes": {"dataset": "synthetic"}, "metrics": {"hr_definition": "some"}})


def test_cli_hr_definition_option():
    runner = CliRunner()
    args = ["run", "--dataset", "synthetic", "--victim", "mostpop", "--attack", "popular", "--attack-size", "0.05",
            "--targets", "3", "--target-strategy", "tier:pop"]
    r = runner.invoke(app, args + ["--hr-definition", "any", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["hr_definition"] == "any"
    table = runner.invoke(app, args + ["--hr-definition", "any"])
    assert table.exit_code == 0 and "any of 3" in table.output
    bad = runner.invoke(app, args + ["--hr-definition", "any", "--target-mode", "each"])
    assert bad.exit_code == 2 and bad.output.count("error:") == 1


def test_any_definition_fills_the_defense_field():
    res = run_cell(CellSpec(**SMALL, hr_definition="any", defense="rvd"), CellCache())
    # any target over all users >= each target's hits over all users >= their mean
    assert 0 <= res["hr_all_after_defense"] <= res["hr_after_defense"] <= 1
    assert res["hr_after_defense"] != pytest.approx(float(np.nanmean(res["hr_per_target_after_defense"])))


def test_report_shows_the_any_target_figure(tmp_path):
    from recpoison.experiments.executors import make_executor
    from recpoison.experiments.report import pivot
    from recpoison.experiments.runner import run_sweep
    from recpoison.experiments.spec import parse_spec

    spec = parse_spec({"name": "anyhr", "axes": dict(SMALL), "metrics": {"hr_definition": ["any", "per-target"]}})
    run_sweep(spec, tmp_path / "run", make_executor("inline", 1), progress=False)
    table = pivot(tmp_path / "run", rows="hr_definition", cols="attack", metric="hr_after", digits=6)
    from recpoison.experiments.store import Store

    store = Store(tmp_path / "run")
    res = {c["params"]["hr_definition"] if "hr_definition" in c["params"] else "per-target": c["result"] for c in store.cells()}
    store.close()
    any_row = next(line for line in table.splitlines() if line.startswith("| any |"))
    per_row = next(line for line in table.splitlines() if line.startswith("| per-target |"))
    # the any-target cell shows its one figure (no spread), the per-target cell the mean over targets
    assert f"{res['any']['hr_after']:.6f} ± 0.000000" in any_row
    assert f"{np.mean(res['per-target']['hr_per_target_after']):.6f}" in per_row
    assert res["any"]["hr_after"] != pytest.approx(float(np.mean(res["any"]["hr_per_target_after"])))
