import json

import pytest
from typer.testing import CliRunner

from recpoison.cli import app

runner = CliRunner()
SYN = ["--dataset", "synthetic", "--victim-param", "d=8", "--victim-param", "sweeps=5"]


def run(*args):
    return runner.invoke(app, list(args))


def test_list_shows_components_with_papers():
    r = run("list")
    assert r.exit_code == 0
    for name in ("ml-100k", "mf", "random", "average", "bandwagon", "popular", "Lam & Riedl"):
        assert name in r.output


def test_run_json_has_the_documented_keys():
    r = run("run", *SYN, "--attack", "average", "--attack-size", "0.05", "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.output)
    for key in ("dataset", "victim", "attack", "attack_size", "n_fake", "targets", "k", "seed",
                "hr_before", "hr_after", "accuracy_before", "accuracy_after", "seconds"):
        assert key in res
    assert res["n_fake"] == 10 and len(res["targets"]) == 5


def test_same_command_twice_gives_identical_numbers():
    a = json.loads(run("run", *SYN, "--attack", "random", "--json").output)
    b = json.loads(run("run", *SYN, "--attack", "random", "--json").output)
    a.pop("seconds"), b.pop("seconds")
    assert a == b


def test_table_output():
    r = run("run", *SYN, "--attack", "bandwagon")
    assert r.exit_code == 0 and "target HR@10" in r.output and "before attack" in r.output


@pytest.mark.parametrize(
    "args, message",
    [
        (["--dataset", "nope"], "valid names: ml-100k"),
        (["--victim", "nope"], "unknown victim 'nope'; valid names:"),
        (["--attack", "nope"], "valid names:"),
        (["--attack-size", "0"], "must be in (0, 1]"),
        (["--attack-size", "1.5"], "must be in (0, 1]"),
        (["--targets", "100000"], "only"),
        (["--k", "0"], "k=0"),
        (["--victim-param", "nonsense"], "NAME=VALUE"),
        (["--victim-param", "foo=1"], "unknown parameter"),
        (["--victim-param", "d=abc"], "must be int"),
        (["--threads", "0"], "threads=0 must be a whole number >= 1"),
    ],
)
def test_bad_input_is_one_clear_line_and_nonzero_exit(args, message):
    r = run("run", "--dataset", "synthetic", *[a for a in args if True])
    assert r.exit_code == 2
    assert message in r.output
    assert "Traceback" not in r.output


def test_malformed_ratings_file(tmp_path):
    f = tmp_path / "ratings.csv"
    f.write_text("1,2,5\n1,3,4\n2,x,3,1,1\n")
    r = run("run", "--dataset", str(f))
    assert r.exit_code == 2 and "ratings.csv line 3" in r.output and "Traceback" not in r.output


def test_threads_option_trains_on_that_many_threads_reproducibly_and_is_restored():
    import torch

    from recpoison.threads import training_thread_count
    from recpoison.victims import _neural

    seen = []
    real = torch.set_num_threads

    def spy(n):
        seen.append(n)
        real(n)

    args = ("run", "--dataset", "synthetic", "--victim", "gmf", "--victim-param", "epochs=2", "--threads", "2", "--json")
    _neural.torch.set_num_threads = spy
    try:
        a = json.loads(run(*args).output)
    finally:
        _neural.torch.set_num_threads = real
    b = json.loads(run(*args).output)
    assert 2 in seen and a["threads"] == 2  # the training loop asked for two threads, the result says so
    a.pop("seconds"), b.pop("seconds")
    assert a == b  # reproducible for a fixed thread count
    assert training_thread_count() == 1  # the default is back after the run
