"""Sweeps end to end on synthetic data: store, resume, failures, workers, the Ray executor against
a local Ray instance started by the test (skipped without Ray), report."""

import json
import sqlite3

import numpy as np
import pytest
from typer.testing import CliRunner

from recpoison.cli import app
from recpoison.errors import ConfigError
from recpoison.experiments import load_spec, run_sweep
from recpoison.experiments.executors import InlineExecutor, ProcessExecutor, plan_tasks
from recpoison.experiments.report import make_report
from recpoison.experiments.store import Store
from recpoison.pipeline import CellSpec, run_cell

runner = CliRunner()

SPEC = """\
name: syn
axes:
  dataset: synthetic
  victim: mf
  attack: [none, random, average, bandwagon]
  attack_size: [0.02, 0.05]
  n_filler: 10
  n_targets: 3
  seed: [0, 1]
  victim_params: {d: 8, sweeps: 3}
metrics:
  k: 10
"""


@pytest.fixture
def spec_path(tmp_path):
    p = tmp_path / "syn.yaml"
    p.write_text(SPEC)
    return p


def metrics_of(run_dir):
    with Store(run_dir, readonly=True) as st:
        return st.metrics()


def test_store_holds_each_cell_with_params_version_seed_times_and_metrics(spec_path, tmp_path):
    spec = load_spec(spec_path)
    s = run_sweep(spec, tmp_path / "run", progress=False)
    assert s.ok and s.done == 16 and s.skipped == 0
    con = sqlite3.connect(tmp_path / "run" / "results.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = con.execute("SELECT key, params, status, error, code_version, seed, started, finished, seconds FROM cells").fetchall()
    assert len(rows) == 16
    for key, params, status, error, version, seed, started, finished, seconds in rows:
        p = json.loads(params)
        assert status == "done" and error is None and version and started <= finished
        assert seed == p["seed"] and set(p) == set(CellSpec.__dataclass_fields__)
        assert {"fit_clean", "attack", "total"} <= set(json.loads(seconds))
    # the stored metrics are run_cell's numbers for that cell
    cell = next(c for c in spec.cells if c.params["attack"] == "average" and c.params["attack_size"] == 0.05 and c.params["seed"] == 1)
    direct = run_cell(CellSpec(**cell.params))
    m = metrics_of(tmp_path / "run")[cell.key]
    assert m["hr_after"] == direct["hr_after"] and m["accuracy_after.hr"] == direct["accuracy_after"]["hr"]
    assert [m[f"hr_per_target_after[{i}]"] for i in range(3)] == direct["hr_per_target_after"]
    assert m["n_fake"] == direct["n_fake"] == 10  # round(0.05 * 200 normal users)
    assert "attack_size" not in m and "seed" not in m  # parameters live in cells.params


def test_rerun_skips_done_cells_and_same_spec_gives_identical_metrics(spec_path, tmp_path):
    spec = load_spec(spec_path)
    run_sweep(spec, tmp_path / "a", progress=False)
    again = run_sweep(spec, tmp_path / "a", progress=False)
    assert again.skipped == 16 and again.done == 0
    run_sweep(spec, tmp_path / "b", progress=False)
    assert metrics_of(tmp_path / "a") == metrics_of(tmp_path / "b")


def test_failing_cell_is_recorded_sweep_goes_on_and_exit_is_1(tmp_path):
    # d=200000 passes the config check but the fit refuses it (memory bound): a run-time failure
    p = tmp_path / "fail.yaml"
    p.write_text(SPEC.replace("victim_params: {d: 8, sweeps: 3}", "victim_params: [{d: 8, sweeps: 3}, {d: 200000, sweeps: 3}]"))
    r = runner.invoke(app, ["sweep", str(p), "--run-dir", str(tmp_path / "run"), "--quiet"])
    assert r.exit_code == 1, r.output
    assert "16 run now" in r.output and "16 failed" in r.output
    assert "ConfigError: victim mf: d=200000 needs about" in r.output
    with Store(tmp_path / "run", readonly=True) as st:
        assert st.counts() == {"done": 16, "failed": 16}
        failed = list(st.cells(status="failed"))
        assert all(c["params"]["victim_params"]["d"] == 200000 and "needs about" in c["error"] for c in failed)
    rep = make_report(tmp_path / "run")
    assert "## Failed cells" in (rep["out_dir"] / "report.md").read_text()


def test_counts_the_data_cannot_meet_are_refused_before_any_cell_runs(tmp_path):
    p = tmp_path / "fail.yaml"
    p.write_text(SPEC.replace("n_targets: 3", "n_targets: [3, 100000]"))
    r = runner.invoke(app, ["sweep", str(p), "--run-dir", str(tmp_path / "run"), "--quiet"])
    assert r.exit_code == 2, r.output
    assert "100000 targets requested but synthetic has only 300 items" in r.output
    assert not (tmp_path / "run").exists()


def test_plan_tasks_groups_by_clean_victim_and_splits_for_idle_slots(spec_path):
    cells = load_spec(spec_path).cells
    tasks = plan_tasks(cells, 1)
    assert len(tasks) == 2  # one per seed: the cells of a seed share data split and clean victim
    for t in tasks:
        assert len({p["seed"] for _, p in t}) == 1
    # fewer groups than slots: one task per series (seed x attack, both sizes together)
    tasks = plan_tasks(cells, 4)
    assert len(tasks) == 8
    for t in tasks:
        assert len({(p["seed"], p["attack"]) for _, p in t}) == 1
        assert sorted(p["attack_size"] for _, p in t) == [0.02, 0.05]
    assert sum(len(t) for t in plan_tasks(cells, 100)) == 16 and len(plan_tasks(cells, 100)) == 16


def test_two_worker_processes_give_the_inline_results(spec_path, tmp_path):
    spec = load_spec(spec_path)
    run_sweep(spec, tmp_path / "inline", InlineExecutor(), progress=False)
    s = run_sweep(spec, tmp_path / "procs", ProcessExecutor(2), progress=False)
    assert s.ok and s.done == 16
    assert metrics_of(tmp_path / "procs") == metrics_of(tmp_path / "inline")


def test_report_tables_plots_and_html(spec_path, tmp_path):
    run_sweep(load_spec(spec_path), tmp_path / "run", progress=False)
    r = runner.invoke(app, ["report", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    out = tmp_path / "run" / "report"
    md = (out / "report.md").read_text()
    assert "### mf on synthetic, K=10: target HR@10 after the attack" in md
    assert "| attack | 2% | 5% |" in md and "| bandwagon |" in md
    # the average row at 5% is mean ± std over the 3 targets x 2 seeds read from the store
    import numpy as np

    with Store(tmp_path / "run", readonly=True) as st:
        m = st.metrics()
        vals = [m[c["key"]][f"hr_per_target_after[{i}]"] for c in st.cells() for i in range(3)
                if c["params"]["attack"] == "average" and c["params"]["attack_size"] == 0.05]
    assert len(vals) == 6
    line = next(l for l in md.splitlines() if l.startswith("| average |") and "after the attack" not in l)
    assert line.split("|")[3].strip() == f"{np.mean(vals):.4f} ± {np.std(vals, ddof=1):.4f}"
    rows = [l for l in (out / "report.csv").read_text().splitlines()[1:]]
    assert len(rows) == 2 * 4 * 2  # 2 metrics x 4 attacks x 2 sizes
    png = (out / "hr_1.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert not list(out.glob("detection_*.png"))  # no detector metrics in this run
    html = (out / "report.html").read_text()
    assert "<img src='hr_1.png'" in html and "target HR@10" in html


def test_report_of_an_empty_folder_is_a_clear_error(tmp_path):
    r = runner.invoke(app, ["report", str(tmp_path)])
    assert r.exit_code == 2 and "no results.sqlite here" in r.output


def test_seed001_example_validates_or_names_the_missing_attack():
    from pathlib import Path

    from recpoison.experiments.cli import EXAMPLES

    try:
        spec = load_spec(Path(EXAMPLES) / "seed001_table1_ml100k.yaml")
    except ConfigError as exc:  # until the MF-attacks issue registers them all
        assert "axes.attack[" in str(exc) and "unknown attack" in str(exc)
    else:
        assert len(spec.cells) == 10 * 4 and all(c.params["n_targets"] == 10 for c in spec.cells)


def test_report_draws_detection_bars_when_fpr_fnr_are_stored(tmp_path):
    """A detector's fpr / fnr result entries (flattened into the store) give tables and a bar plot."""
    with Store(tmp_path) as st:
        for i, (attack, size) in enumerate([(a, s) for a in ("random", "average") for s in (0.01, 0.03)]):
            params = {**CellSpec(dataset="synthetic", attack=attack, attack_size=size).__dict__}
            result = {"hr_after": 0.1 * i, "hr_per_target_after": [0.1 * i, 0.2 * i], "accuracy_after": {"hr": 0.5},
                      "detection": {"fpr": 0.01 * i, "fnr": 0.5 - 0.1 * i}, "seconds": {"total": 1.0}}
            st.write_cell(f"k{i}", params, status="done", code_version="test", started="a", finished="b", result=result)
    rep = make_report(tmp_path)
    names = [t.metric for t in rep["tables"]]
    assert names == ["target HR@10 after the attack", "accuracy HR@10 (leave-one-out) after the attack",
                     "detection FNR (fake users missed / fake users)", "detection FPR (normal users flagged / normal users)"]
    fpr = rep["tables"][3]
    assert fpr.stat("average", 0.03) == (0.03, 0.0, 1)
    assert (rep["out_dir"] / "detection_1.png").read_bytes()[:4] == b"\x89PNG"
    assert "detection_1.png" in (rep["out_dir"] / "report.html").read_text()


def test_cells_differing_only_in_victim_or_k_share_fake_profiles():
    from recpoison.pipeline import CellCache, CellSpec, run_cell

    cache = CellCache()
    a = run_cell(CellSpec(dataset="synthetic", victim="mf", attack="average", attack_size=0.05, k=10, victim_params={"d": 4, "sweeps": 3}), cache)
    n = len(cache._store)
    b = run_cell(CellSpec(dataset="synthetic", victim="mf", attack="average", attack_size=0.05, k=5, victim_params={"d": 4, "sweeps": 3}), cache)
    fakes = [k for k in cache._store if k[0] == "fakes"]
    assert len(fakes) == 1 and len(cache._store) == n + 1  # only the clean model's evaluation at k=5 is new
    assert a["seconds"]["attack"] >= 0 and b["n_fake"] == a["n_fake"]


# ------------------------------------------------------------------------------ Ray executor
def test_ray_executor_gives_the_inline_results(spec_path, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'recpoison[ray]'); CI installs it")
    from recpoison.experiments.executors import RayExecutor

    spec = load_spec(spec_path)
    run_sweep(spec, tmp_path / "inline", InlineExecutor(), progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        ex = RayExecutor()
        assert ex.slots == 2
        s = run_sweep(spec, tmp_path / "ray", ex, progress=False)
    finally:
        ray.shutdown()
    assert s.ok and s.done == 16
    assert metrics_of(tmp_path / "ray") == metrics_of(tmp_path / "inline")


def test_ray_missing_is_a_clear_error(monkeypatch):
    import builtins

    from recpoison.experiments import executors

    real = builtins.__import__

    def no_ray(name, *a, **k):
        if name == "ray":
            raise ImportError("no ray")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ConfigError, match=r"pip install 'recpoison\[ray\]'"):
        executors.make_executor("ray", 1, "auto")


def test_target_mode_each_attacks_every_target_on_its_own():
    from recpoison.pipeline import CellCache, CellSpec, run_cell

    common = dict(dataset="synthetic", victim="mf", attack_size=0.05, n_targets=3, target_mode="each", victim_params={"d": 4, "sweeps": 3})
    none = run_cell(CellSpec(attack="none", **common), CellCache())
    assert none["hr_per_target_after"] == none["hr_per_target_before"]
    cache = CellCache()
    each = run_cell(CellSpec(attack="average", **common), cache)
    fakes = [k for k in cache._store if k[0] == "fakes"]
    assert len(fakes) == 3 and all(len(k[-1]) == 1 for k in fakes)  # one attack per target
    assert each["hr_after"] == pytest.approx(np.mean(each["hr_per_target_after"]))
