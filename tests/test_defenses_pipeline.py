"""The defense stage of a cell (seed 004): `recpoison run --defense`, the sweep axis, the results."""

from __future__ import annotations

import json
import textwrap

import pytest
from typer.testing import CliRunner

from recpoison.cli import app
from recpoison.errors import ConfigError
from recpoison.experiments import load_spec, run_sweep
from recpoison.experiments.store import Store
from recpoison.pipeline import CellSpec, run_cell

runner = CliRunner()
CELL = dict(dataset="synthetic", victim="mf", attack="average", attack_size=0.1, n_filler=15, n_targets=2, k=10,
            victim_params={"d": 16}, target_strategy="unpopular")


def test_a_defended_cell_reports_the_defended_victim_beside_the_plain_one():
    plain = run_cell(CellSpec(**CELL))
    res = run_cell(CellSpec(**CELL, defense="rvd", defense_params={"k": 8}))
    assert "hr_after_defense" not in plain and "defense" not in plain
    # the same poisoned data and plain victim: the undefended figures do not move
    assert res["hr_after"] == plain["hr_after"] and res["accuracy_after"] == plain["accuracy_after"]
    assert res["defense"] == "rvd" and res["defense_params"] == {"k": 8}
    assert 0 <= res["hr_after_defense"] <= 1 and res["hr_after_defense"] != res["hr_after"]
    assert set(res["accuracy_after_defense"]) == {"hr", "ndcg"}
    t = res["inference_seconds_per_user"]
    assert t["defended"] > t["plain"] > 0  # a fine-tuning per user costs more than a product
    assert {"defense_fit", "defense_evaluate"} <= set(res["seconds"])


def test_no_attack_defends_the_clean_model_once_for_every_target_group():
    res = run_cell(CellSpec(**{**CELL, "attack": "none", "target_mode": "each"}, defense="rvd", defense_params={"k": 8}))
    assert res["hr_before"] == res["hr_after"] and len(res["hr_per_target_after_defense"]) == 2


def test_bad_defenses_are_refused_before_any_work():
    with pytest.raises(ConfigError, match="unknown defense"):
        CellSpec(**CELL, defense="nope")
    with pytest.raises(ConfigError, match="itemknn lacks"):
        CellSpec(**{**CELL, "victim": "itemknn", "victim_params": {}}, defense="rvd")
    with pytest.raises(ConfigError, match="unknown parameter"):
        CellSpec(**CELL, defense="rvd", defense_params={"kk": 1})
    with pytest.raises(ConfigError, match="takes no parameters"):
        CellSpec(**CELL, defense="none", defense_params={"k": 1})


def test_cli_run_prints_the_defense_column_and_refuses_a_bad_defense():
    args = ["run", "--dataset", "synthetic", "--victim", "mf", "--victim-param", "d=8", "--attack", "average", "--attack-size", "0.1", "--targets", "2"]
    r = runner.invoke(app, args + ["--defense", "rvd", "--defense-param", "k=8"])
    assert r.exit_code == 0, r.output
    assert "with rvd" in r.output and "inference ms per user" in r.output
    r = runner.invoke(app, args + ["--defense", "rvd", "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["defense"] == "rvd"
    r = runner.invoke(app, args + ["--defense", "rvd+rvd"])
    assert r.exit_code != 0 and "twice" in r.output


def test_defense_is_a_sweep_axis_and_old_cells_keep_their_keys(tmp_path):
    base = """\
        name: d
        axes:
          dataset: synthetic
          victim: mf
          attack: [none, average]
          attack_size: 0.1
          n_filler: 10
          n_targets: 2
          victim_params: {d: 8, sweeps: 3}
        """
    p = tmp_path / "a.yaml"
    p.write_text(textwrap.dedent(base))
    old_keys = {c.key for c in load_spec(p).cells}
    p.write_text(textwrap.dedent(base) + "  defense: [none, rvd]\nper_defense:\n  rvd: {k: 6}\n")
    spec = load_spec(p)
    assert len(spec.cells) == 4
    assert {c.key for c in spec.cells if c.params["defense"] == "none"} == old_keys
    assert all(c.params["defense_params"] == ({"k": 6} if c.params["defense"] == "rvd" else {}) for c in spec.cells)
    s = run_sweep(spec, tmp_path / "run", progress=False)
    assert s.ok and s.done == 4
    with Store(tmp_path / "run", readonly=True) as st:
        m = st.metrics()
    rvd = [v for c in spec.cells if c.params["defense"] == "rvd" for k, v in m.items() if k == c.key]
    assert all("hr_after_defense" in v and "inference_seconds_per_user.defended" in v for v in rvd)
    p.write_text(textwrap.dedent(base) + "  defense: [rvd+]\n")
    with pytest.raises(ConfigError, match=r"axes.defense.*empty part"):
        load_spec(p)
    p.write_text(textwrap.dedent(base) + "  defense: rvd\nper_defense:\n  ltsmf: {trim: 0.1}\n")
    with pytest.raises(ConfigError, match="not on the defense axis"):
        load_spec(p)
