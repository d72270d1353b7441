"""Sweep specs: validation with the place in the file, --dry-run, stable cell keys."""

import textwrap

import pytest
from typer.testing import CliRunner

from recpoison.cli import app
from recpoison.errors import ConfigError
from recpoison.experiments import cell_key, load_spec, parse_spec
from recpoison.pipeline import CellSpec

runner = CliRunner()

SPEC = """\
name: syn
axes:
  dataset: synthetic
  victim: mf
  attack: [none, random, average]
  attack_size: [0.02, 0.05]
  n_filler: 10
  n_targets: 3
  seed: [0, 1]
  victim_params: {d: 8, sweeps: 3}
metrics:
  k: 10
"""


def write(tmp_path, text, name="spec.yaml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def test_grid_is_the_cartesian_product_with_defaults_filled(tmp_path):
    spec = load_spec(write(tmp_path, SPEC))
    assert spec.name == "syn" and len(spec.cells) == 3 * 2 * 2
    p = spec.cells[0].params
    assert set(p) == set(CellSpec.__dataclass_fields__)
    assert p["victim_params"] == {"d": 8, "sweeps": 3} and p["k"] == 10 and p["n_filler"] == 10
    assert p["target_strategy"] == CellSpec().target_strategy  # an axis left out takes CellSpec's default
    assert {(c.params["attack"], c.params["attack_size"], c.params["seed"]) for c in spec.cells} == {
        (a, s, seed) for a in ("none", "random", "average") for s in (0.02, 0.05) for seed in (0, 1)
    }
    for c in spec.cells:  # every cell builds a CellSpec
        assert c.spec().attack == c.params["attack"]


def test_accuracy_threshold_under_metrics_is_an_axis_left_out_of_keys_while_unset(tmp_path):
    plain = load_spec(write(tmp_path, SPEC))
    same = load_spec(write(tmp_path, SPEC.replace("metrics:", "metrics:\n  accuracy_threshold: null"), "same.yaml"))
    liked = load_spec(write(tmp_path, SPEC + "  accuracy_threshold: 4\n", "liked.yaml"))
    assert [c.key for c in plain.cells] == [c.key for c in same.cells]  # old runs keep their keys
    assert {c.params["accuracy_threshold"] for c in liked.cells} == {4}
    assert not {c.key for c in liked.cells} & {c.key for c in plain.cells}


def test_cell_keys_are_stable_and_distinct(tmp_path):
    a = load_spec(write(tmp_path, SPEC))
    b = load_spec(write(tmp_path, SPEC.replace("[none, random, average]", "[average, none, random]"), "other.yaml"))
    assert {c.key for c in a.cells} == {c.key for c in b.cells}  # order of axis values does not matter
    assert len({c.key for c in a.cells}) == len(a.cells)
    assert cell_key({"b": 1, "a": [1, 2]}) == cell_key({"a": [1, 2], "b": 1}) != cell_key({"a": [2, 1], "b": 1})


def test_k_list_makes_one_cell_per_k_and_per_attack_params_apply_to_one_attack(tmp_path):
    text = SPEC.replace("  k: 10", "  k: [5, 10]") + "per_attack:\n  average: {}\nper_victim:\n  mf: {reg: 3.0}\n"
    spec = load_spec(write(tmp_path, text))
    assert len(spec.cells) == 24 and {c.params["k"] for c in spec.cells} == {5, 10}
    assert all(c.params["victim_params"] == {"d": 8, "sweeps": 3, "reg": 3.0} for c in spec.cells)


def test_overrides_replace_an_axis(tmp_path):
    spec = load_spec(write(tmp_path, SPEC), overrides={"seed": [7]})
    assert {c.params["seed"] for c in spec.cells} == {7}


@pytest.mark.skipif("knowledge" not in CellSpec.__dataclass_fields__, reason="CellSpec has no knowledge field yet")
def test_knowledge_is_an_axis(tmp_path):
    default = CellSpec().knowledge
    spec = load_spec(write(tmp_path, SPEC + ""))
    assert all(c.params["knowledge"] == default for c in spec.cells)
    two = load_spec(write(tmp_path, SPEC.replace("  seed: [0, 1]", '  seed: [0, 1]\n  knowledge: [full, "partial:0.5"]'), "two.yaml"))
    assert len(two.cells) == 2 * len(spec.cells)
    assert {c.params["knowledge"] for c in two.cells} == {"full", "partial:0.5"}
    with pytest.raises(ConfigError, match=r"axes\.knowledge"):
        load_spec(write(tmp_path, SPEC.replace("  seed: [0, 1]", "  seed: [0, 1]\n  knowledge: [no-such-knowledge]"), "k.yaml"))


@pytest.mark.parametrize(
    "edit, message",
    [
        (None, "missing.yaml: spec file not found"),
        (lambda s: s.replace("attack: [none, random, average]", "attack: [none, random"), "spec.yaml: line"),
        (lambda s: s.replace("[none, random, average]", "[none, random, foo]"),
         "spec.yaml: axes.attack[2]: unknown attack 'foo'; valid names: "),
        (lambda s: s.replace("[0.02, 0.05]", "[0.02, -0.05]"), "spec.yaml: axes.attack_size[1]: attack size -0.05 must be in (0, 1]"),
        (lambda s: s.replace("seed: [0, 1]", "seed: []"), "spec.yaml: axes.seed: empty list"),
        (lambda s: s.replace("n_filler: 10", "n_filler: ten"), "spec.yaml: axes.n_filler: n_filler='ten' must be an integer"),
        (lambda s: s.replace("d: 8", "dee: 8"), "spec.yaml: axes.victim_params: mf: unknown parameter 'dee'; allowed: d,"),
        (lambda s: s.replace("  victim: mf", "  victm: mf"), "spec.yaml: axes.victm: unknown axis; valid axes: dataset, victim"),
        (lambda s: s.replace("dataset: synthetic", "dataset: nosuchdata"), "spec.yaml: axes.dataset: unknown dataset 'nosuchdata'"),
        (lambda s: s.replace("axes:", "axis:"), "spec.yaml: axis: unknown top-level key"),
        (lambda s: s.replace("  k: 10", "  k: 0"), "spec.yaml: metrics.k: k=0 must be at least 1"),
        (lambda s: s + "  accuracy_threshold: high\n", "spec.yaml: metrics.accuracy_threshold: accuracy_threshold='high' must be a number or null"),
        (lambda s: s + "  recall: 5\n", "spec.yaml: metrics.recall: unknown metric option; allowed: k, accuracy_threshold"),
        (lambda s: "- just\n- a list\n", "spec.yaml: the spec must be a mapping"),
        (lambda s: s + "per_attack:\n  popular: {}\n", "spec.yaml: per_attack.popular: attack 'popular' is not on the attack axis"),
    ],
)
def test_malformed_spec_is_one_clear_line_and_exit_2(tmp_path, edit, message):
    path = tmp_path / "missing.yaml" if edit is None else write(tmp_path, edit(SPEC))
    r = runner.invoke(app, ["sweep", str(path), "--run-dir", str(tmp_path / "run")])
    assert r.exit_code == 2, r.output
    assert message in r.output
    assert "Traceback" not in r.output and r.output.count("error:") == 1
    assert not (tmp_path / "run").exists()  # nothing started


def test_dry_run_lists_the_cells_and_runs_nothing(tmp_path):
    path = write(tmp_path, SPEC)
    r = runner.invoke(app, ["sweep", str(path), "--dry-run", "--run-dir", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    spec = load_spec(path)
    assert "syn: 12 cells, 0 already done" in r.output
    for c in spec.cells:
        assert c.key in r.output
    assert r.output.count("to run") == 12 and "attack=average attack_size=0.05 seed=1" in r.output
    assert not (tmp_path / "run").exists()


def test_examples_are_valid_and_demo_matches_the_cli_grid():
    from pathlib import Path

    from recpoison.cli import DEMO_ATTACKS, DEMO_SIZES
    from recpoison.experiments.cli import EXAMPLES, demo_spec

    demo = load_spec(Path(EXAMPLES) / "demo.yaml")
    built = parse_spec({"name": "demo", "axes": {"dataset": "ml-100k", "victim": "mf", "attack": list(DEMO_ATTACKS),
                                                  "attack_size": list(DEMO_SIZES), "n_filler": 20, "n_targets": 5, "seed": 0},
                        "metrics": {"k": 10}})
    assert [c.key for c in demo.cells] == [c.key for c in built.cells] == [c.key for c in demo_spec(0, DEMO_ATTACKS, DEMO_SIZES).cells]
    assert len(demo.cells) == 10
    assert {c.params["seed"] for c in demo_spec(3, DEMO_ATTACKS, DEMO_SIZES).cells} == {3}
