"""Detection: features against hand-computed values, the detectors' conformance suite, the
pipeline's detection stage, `recpoison detect` and `--save-fakes`."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from recpoison import datasets, detect
from recpoison.cli import app
from recpoison.detect.features import FEATURES, profile_features
from recpoison.detect.svm import target_item_analysis
from recpoison.detect.training import training_contexts
from recpoison.errors import ConfigError
from recpoison.interactions import Interactions
from recpoison.metrics import detection_rates
from recpoison.pipeline import CellSpec, run_cell
from recpoison.testing import DetectorTests, planted_attack

runner = CliRunner()


# ----------------------------------------------------------------------------------- features
@pytest.fixture
def four_users():
    """u0: i0=5 i1=3 | u1: i0=4 i2=1 | u2: i0=5 i1=5 i3=2 | u3: i1=1 i3=4 (scale 1-5).
    Item counts l = 3, 3, 1, 2; item means 14/3, 3, 1, 3."""
    u = [0, 0, 1, 1, 2, 2, 2, 3, 3]
    i = [0, 1, 0, 2, 0, 1, 3, 1, 3]
    r = [5, 3, 4, 1, 5, 5, 2, 1, 4]
    return Interactions.from_arrays(u, i, r, rating_scale=(1, 5))


def test_features_match_hand_computed_values(four_users):
    f = dict(zip(FEATURES, profile_features(four_users, FEATURES, degsim_k=3).T))
    np.testing.assert_allclose(f["wda"], [1 / 9, 2 / 9, 23 / 18, 7 / 6])
    np.testing.assert_allclose(f["rdma"], [1 / 18, 1 / 9, 23 / 54, 7 / 12])
    np.testing.assert_allclose(f["wdma"], [1 / 54, 1 / 27, 55 / 324, 17 / 72])
    np.testing.assert_allclose(f["lengthvar"], [1 / 3, 1 / 3, 1, 1 / 3])
    np.testing.assert_allclose(f["tmf"], [1, 0, 1, 0])  # r_max counts: i0 2, i1 1
    np.testing.assert_allclose(f["fmtd"], [2, 0, 3, 0])
    # u0 drops its r_max item i0 (rest: i1, deviation 0); u2 drops i1 (largest squared deviation 4)
    np.testing.assert_allclose(f["meanvar"], [0, 2 / 9, 5 / 9, 5 / 2])
    # only u2 and u3 co-rate two items: Pearson -4.5 / sqrt(5 * 4.5); k = 3 averages over all others
    w = -4.5 / np.sqrt(5 * 4.5)
    np.testing.assert_allclose(f["degsim"], [0, 0, w / 3, w / 3])


def test_features_refuse_implicit_feedback(four_users):
    with pytest.raises(ConfigError, match="undefined for implicit feedback"):
        profile_features(four_users.to_implicit())


def test_item_statistics_come_from_the_data_given(four_users):
    """Appending a profile changes the others' RDMA: a provider sees the poisoned data."""
    before = profile_features(four_users, ("rdma",))[:, 0]
    more = four_users.append_users(Interactions.from_matrix(np.array([[1, 1, 5, 5]], dtype=float), rating_scale=(1, 5)))
    after = profile_features(more, ("rdma",))[:4, 0]
    assert not np.allclose(before, after)


def test_target_item_analysis_releases_users_without_a_declared_target(four_users):
    suspicious = np.array([True, True, True, False])
    # i0 is rated 5 by two suspicious users: declared when tau = 1, not when tau = 2
    declared, kept = target_item_analysis(four_users, suspicious, tau=1)
    assert declared.tolist() == [0] and kept.tolist() == [True, False, True, False]
    declared, kept = target_item_analysis(four_users, suspicious, tau=2)
    assert declared.size == 0 and not kept.any()


# ----------------------------------------------------------------------------------- detectors
class TestSVM(DetectorTests):
    name = "svm"


class TestSVMTIA(DetectorTests):
    name = "svm-tia"
    params = {"tau": 3}


class TestPCA(DetectorTests):
    name = "pca"
    params = {"share": 0.1}


class TestPerfect(DetectorTests):
    name = "perfect"
    beats_random = False

    def test_fpr_and_fnr_are_zero(self, poisoned):
        r = detection_rates(self.fitted(poisoned).flag(poisoned), poisoned.is_fake)
        assert r == {"fpr": 0.0, "fnr": 0.0}


class TestRandomOracle(DetectorTests):
    name = "random"
    beats_random = False

    def test_flags_as_many_as_injected_and_fpr_near_the_share(self):
        poisoned, _ = planted_attack()
        fprs = []
        for seed in range(40):
            mask = self.make(seed=seed).fit(poisoned).flag(poisoned)
            assert mask.sum() == poisoned.n_fake
            fprs.append(detection_rates(mask, poisoned.is_fake)["fpr"])
        share = poisoned.n_fake / poisoned.n_users
        assert abs(np.mean(fprs) - share) < 0.02


def test_svm_tia_reports_both_phases_and_phase_two_only_releases():
    poisoned, _ = planted_attack()
    det = TestSVMTIA().fitted(poisoned)
    final = det.flag(poisoned)
    assert set(det.phase_masks_) == {"svm", "svm+tia"}
    assert not (final & ~det.phase_masks_["svm"]).any()


# ----------------------------------------------------------------------------------- pipeline
SYN = dict(dataset="synthetic", victim="mf", victim_params={"d": 8, "sweeps": 5}, attack="average", attack_size=0.05)


def test_detector_training_never_sees_the_evaluated_fake_users():
    spec = CellSpec(**SYN, detector="svm", detector_params={"n_train_fake": 100, "n_train_normal": 100})
    res, fakes = run_cell(spec, return_fakes=True)
    assert 0 <= res["detection"]["heldout_fpr"] <= 1  # normal users that were not training examples
    assert "normal_users" not in res["detection_train"]
    train_targets = set(res["detection_train"]["targets"])
    assert train_targets and not train_targets & set(res["target_index"])
    # rebuild the training contexts exactly as the pipeline did and compare profiles row by row
    data = datasets.load("synthetic")
    from recpoison.seeding import derive_rng
    from recpoison.splits import leave_one_out

    train = leave_one_out(data, derive_rng(spec.seed, "split")).train
    contexts, info = training_contexts(train, ["average"], spec.n_targets, spec.n_filler, res["n_fake"],
                                       np.array(res["target_index"]), spec.seed, 100, 100)
    assert info["targets"] == res["detection_train"]["targets"]
    trained_rows = {(tuple(r.indices), tuple(r.data)) for c, y in contexts for r in c.matrix[np.flatnonzero(y == 1)]}
    evaluated_rows = {(tuple(r.indices), tuple(r.data)) for r in fakes[0].matrix}
    assert len(trained_rows) > 50 and evaluated_rows and not trained_rows & evaluated_rows


def test_detection_stage_records_rates_and_retrains_without_flagged_users():
    perfect = run_cell(CellSpec(**SYN, detector="perfect"))
    assert perfect["detection"]["fpr"] == 0 and perfect["detection"]["fnr"] == 0
    assert perfect["detection"]["n_flagged"] == perfect["n_fake"]
    # dropping exactly the fakes: the HR after detection is the clean one (same victim seed)
    assert perfect["hr_after_detection"] == pytest.approx(perfect["hr_before"], abs=1e-9)
    rnd = run_cell(CellSpec(**SYN, detector="random"))
    assert rnd["detection"]["n_flagged"] == rnd["n_fake"]
    none = run_cell(CellSpec(**SYN))
    assert "detection" not in none and none["detector"] == "none"


def test_detector_on_a_cell_without_attack_measures_false_positives():
    res = run_cell(CellSpec(**{**SYN, "attack": "none"}, detector="pca", detector_params={"share": 0.05}))
    assert res["n_fake"] == 0 and np.isnan(res["detection"]["fnr"])
    n_users = datasets.load("synthetic").n_users
    assert res["detection"]["n_flagged"] == round(0.05 * n_users)
    assert res["detection"]["fpr"] == pytest.approx(res["detection"]["n_flagged"] / n_users)


def test_transfer_protocol_trains_on_the_named_attacks():
    res = run_cell(CellSpec(**SYN, detector="svm",
                            detector_params={"train_attacks": "random,bandwagon", "n_train_fake": 60, "n_train_normal": 60}))
    assert res["detection_train"]["attacks"] == ["random", "bandwagon"]


def test_detector_refuses_implicit_data_and_bad_parameters():
    with pytest.raises(ConfigError, match="unknown detector"):
        CellSpec(**SYN, detector="nope")
    with pytest.raises(ConfigError, match="train_attacks"):
        detect.make("svm", train_attacks="none")
    with pytest.raises(ConfigError, match="unknown feature"):
        detect.make("svm", features="rdma,colour")
    with pytest.raises(ConfigError, match="share"):
        detect.make("pca", share=1.5)


# ----------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def labelled_file(tmp_path_factory):
    """A ratings file with average-attack fakes among planted users, and its labels file."""
    poisoned, _ = planted_attack()
    d = tmp_path_factory.mktemp("det")
    m = poisoned.matrix.tocoo()
    ids = np.where(m.row >= poisoned.n_normal, m.row + 1000, m.row)
    f = d / "ratings.csv"
    f.write_text("".join(f"{u},{i},{int(r)}\n" for u, i, r in zip(ids, m.col, m.data)))
    lab = d / "labels.csv"
    lab.write_text("user_id,label\n" + "".join(f"{u if u < poisoned.n_normal else u + 1000},{int(u >= poisoned.n_normal)}\n" for u in range(poisoned.n_users)))
    return f, lab, poisoned


def test_detect_command_with_labels_scores_by_cross_validation(labelled_file, tmp_path):
    f, lab, poisoned = labelled_file
    out = tmp_path / "flagged.csv"
    r = runner.invoke(app, ["detect", "--dataset", str(f), "--labels", str(lab), "--detector", "svm-tia",
                            "--detector-param", "tau=3", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    assert res["cv_folds"] == 5 and res["n_fake_labelled"] == poisoned.n_fake
    assert res["fnr"] < 0.5 and set(res["phases"]) == {"svm", "svm+tia"}
    flagged = out.read_text().split()[1:]
    assert len(flagged) == res["n_flagged"]
    r = runner.invoke(app, ["detect", "--dataset", str(f), "--labels", str(lab), "--detector", "perfect", "--json"])
    assert json.loads(r.output)["fpr"] == 0 and json.loads(r.output)["fnr"] == 0


def test_cross_validated_svm_tia_analyses_targets_once_over_all_folds(labelled_file):
    """Phase 2 reads no label: run per fold it would see 1/5 of the fakes and, with tau above a
    fold's share, release them all. Run once on the out-of-fold flags it releases none of them."""
    f, lab, poisoned = labelled_file
    tau = poisoned.n_fake // 5 + 1  # more than any one fold holds, fewer than all
    r = runner.invoke(app, ["detect", "--dataset", str(f), "--labels", str(lab), "--detector", "svm-tia",
                            "--detector-param", f"tau={tau}", "--json"])
    res = json.loads(r.output)
    assert res["phases"]["svm"]["fnr"] < 0.5
    assert res["phases"]["svm+tia"]["fnr"] == pytest.approx(res["phases"]["svm"]["fnr"])


def test_users_missing_from_the_labels_file_count_as_normal_but_never_train(labelled_file, tmp_path):
    f, lab, poisoned = labelled_file
    lines = lab.read_text().splitlines()
    part = tmp_path / "part.csv"
    part.write_text("\n".join(lines[:1] + lines[51:]) + "\n")  # the first 50 normal users unnamed
    r = runner.invoke(app, ["detect", "--dataset", str(f), "--labels", str(part), "--detector", "svm", "--json"])
    res = json.loads(r.output)
    assert r.exit_code == 0 and res["unlabelled_as_normal"] == 50 and res["n_fake_labelled"] == poisoned.n_fake


@pytest.mark.parametrize(
    "labels, message",
    [
        ("user_id,label\n99999,1\n", "not in the data set"),
        ("0,2\n", "must be 0 (normal) or 1 (fake)"),
        ("0,0\n1,0\n", "no user is labelled 1"),
        ("0,1\n0,1\n", "labelled twice"),
    ],
)
def test_detect_rejects_bad_labels_files(labelled_file, tmp_path, labels, message):
    f, _, _ = labelled_file
    lab = tmp_path / "bad.csv"
    lab.write_text(labels)
    out = tmp_path / "flagged.csv"
    r = runner.invoke(app, ["detect", "--dataset", str(f), "--labels", str(lab), "--detector", "svm", "--out", str(out)])
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1 and not out.exists()


def test_detect_refuses_supervised_without_labels_and_implicit_data(labelled_file, tmp_path):
    f, lab, _ = labelled_file
    r = runner.invoke(app, ["detect", "--dataset", str(f), "--detector", "svm"])
    assert r.exit_code == 2 and "supervised" in r.output
    imp = tmp_path / "clicks.csv"
    imp.write_text("".join(f"{u},{i},1\n" for u in range(30) for i in range(u % 7, 40, 3)))
    r = runner.invoke(app, ["detect", "--dataset", str(imp), "--detector", "pca"])
    assert r.exit_code == 2 and "implicit feedback" in r.output and "Traceback" not in r.output
    saved = tmp_path / "fakes.csv"
    r = runner.invoke(app, ["run", "--dataset", str(imp), "--victim", "mostpop", "--detector", "svm", "--save-fakes", str(saved)])
    assert r.exit_code == 2 and "implicit feedback" in r.output and len(r.output.strip().splitlines()) == 1
    assert not saved.exists()


def test_save_fakes_round_trips(tmp_path):
    path = tmp_path / "fakes.csv"
    args = ["run", "--dataset", "synthetic", "--victim", "mostpop", "--attack", "average", "--attack-size", "0.02", "--json"]
    r = runner.invoke(app, args + ["--save-fakes", str(path)])
    assert r.exit_code == 0, r.output
    res = json.loads(r.output.strip().splitlines()[-1])
    back = datasets.load(str(path))
    assert back.n_users == res["n_fake"] == round(0.02 * datasets.load("synthetic").n_users)
    # every fake user rates every target at r_max, and the ratings are on the data set's scale
    for t in res["targets"]:
        col = list(back.item_ids).index(t)
        assert np.all(back.matrix[:, col].toarray() == back.r_max)
    r = runner.invoke(app, args + ["--save-fakes", str(path)])
    assert r.exit_code == 2 and "already exists" in r.output


# ----------------------------------------------------------------------------------- sweeps
DETECT_SPEC = """\
name: det
axes:
  dataset: synthetic
  victim: mf
  victim_params: {d: 8, sweeps: 3}
  attack: [random, average]
  attack_size: 0.05
  n_filler: 10
  n_targets: 2
  detector: [svm, perfect]
per_detector:
  svm: {n_train_fake: 40, n_train_normal: 40, train_attacks: average}
metrics:
  k: 10
"""


def test_detector_axis_in_a_sweep_report_and_pivot(tmp_path):
    from recpoison.experiments import load_spec, run_sweep
    from recpoison.experiments.executors import InlineExecutor
    from recpoison.experiments.report import make_report, pivot

    spec_file = tmp_path / "det.yaml"
    spec_file.write_text(DETECT_SPEC)
    spec = load_spec(spec_file)
    assert len(spec.cells) == 4
    run_dir = tmp_path / "run"
    assert not run_sweep(spec, run_dir, InlineExecutor()).failed
    names = {t.name for t in make_report(run_dir)["tables"]}
    assert {"hr_after_detection", "detection.fpr", "detection.fnr"} <= names
    table = pivot(run_dir, "detector", "attack", "detection.fnr")
    lines = table.splitlines()
    assert lines[2].split("|")[2:4] == [" random ", " average "]
    perfect = next(line for line in lines if line.startswith("| perfect"))
    assert perfect.count("0.0000 ± 0.0000") == 2
    with pytest.raises(ConfigError, match="metric 'nope'"):
        pivot(run_dir, "detector", "attack", "nope")
    only = pivot(run_dir, "attack", "detector", "detection.fnr", where={"detector": "perfect"}).splitlines()
    assert only[2].split("|")[2:3] == [" perfect "] and len(only) == 6  # title, blank, header, rule, 2 rows
    with pytest.raises(ConfigError, match="matches"):
        pivot(run_dir, "attack", "detector", "detection.fnr", where={"detector": "pca"})
    r = runner.invoke(app, ["report", str(run_dir), "--rows", "detector"])
    assert r.exit_code == 2 and "needs all three" in r.output
