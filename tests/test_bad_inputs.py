"""A corpus of hostile inputs (issue 14): files, CLI values, specs, run folders and stores.

Every case must end with a non-zero exit, exactly one line on stderr that starts with ``error:``,
names the input and says what to do, no traceback, and every existing file left byte for byte as
it was. A few inputs that used to break things and are valid (text ids, UTF-16, quoted CSV,
brackets in names) must work.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from recpoison.cli import app
from recpoison.experiments.store import lock_run_dir

runner = CliRunner()
SYN = ["--dataset", "synthetic"]
#: words of which an error line must contain one: it says what to do
ADVICE = ("use ", "give ", "pass ", "choose ", "move ", "save ", "write ", "check ", "keep ", "split ",
          "wait ", "rescale", "run ", "remove ", "fix ", "flatten", "lower ", "smaller", "at most", "at least",
          "must be", "e.g.", "valid names: ")

TINY_SPEC = """\
name: tiny
axes:
  dataset: {dataset}
  victim: mf
  attack: [none, random]
  attack_size: 0.05
  n_filler: 3
  n_targets: 2
  victim_params: {{d: 4, sweeps: 2}}
metrics:
  k: 5
"""


def ratings(n_users: int = 30, n_items: int = 25) -> list[tuple[int, int, int]]:
    return [(u, i, (u * i) % 5 + 1) for u in range(1, n_users + 1) for i in range(1, n_items + 1) if (u + i) % 3]


def csv_text(rows) -> str:
    return "".join(f"{u},{i},{r}\n" for u, i, r in rows)


def snapshot(root: Path) -> dict[str, str]:
    """SHA-256 of every file under ``root`` (what must not change). SQLite's own ``-wal`` / ``-shm``
    side files, which any reader of a WAL store creates, are left out; the store file is not."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.endswith(("-wal", "-shm"))}


def check_refused(r, *names: str, before: dict | None = None, root: Path | None = None) -> str:
    """The contract: non-zero exit, one stderr line starting 'error:' that names each of ``names``
    and gives advice, no traceback; files under ``root`` unchanged."""
    assert r.exit_code not in (0, None), r.output
    assert "Traceback" not in r.output and r.exception is None or isinstance(r.exception, SystemExit), r.output
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    assert len(line) < 800, f"{len(line)} characters"
    for n in names:
        assert n in line, (n, line)
    assert any(a in line for a in ADVICE), line
    if before is not None:
        assert snapshot(root) == before
    return line


@pytest.fixture
def good_csv(tmp_path):
    p = tmp_path / "good.csv"
    p.write_text(csv_text(ratings()))
    return p


@pytest.fixture
def finished_run(tmp_path, good_csv):
    """A run folder with a finished two-cell sweep."""
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPEC.format(dataset=good_csv))
    r = runner.invoke(app, ["sweep", str(spec), "--run-dir", str(tmp_path / "run"), "--quiet"])
    assert r.exit_code == 0, r.output
    return spec, tmp_path / "run"


# ------------------------------------------------------------------------------ CLI values
@pytest.mark.parametrize(
    "args, names",
    [
        (["--victim", "[/]"], ["'[/]'", "valid names"]),
        (["--victim", "[bold]x"], ["'[bold]x'"]),
        (["--attack", "[red]"], ["'[red]'"]),
        (["--seed", "-1"], ["seed=-1"]),
        (["--seed", "99999999999"], ["seed=99999999999"]),
        (["--victim-param", "d=10000000000"], ["d=10000000000"]),
        (["--victim-param", "d=2000000"], ["d=2000000", "GiB"]),
        (["--victim-param", "init_std=inf"], ["init_std=inf", "finite"]),
        (["--victim-param", "reg=nan"], ["reg=nan"]),
        (["--victim", "gmf", "--victim-param", "threshold=nan"], ["threshold=nan"]),
        (["--victim-param", "sweeps=1000000000"], ["sweeps=1000000000"]),
        (["--victim-param", "d=3", "--victim-param", "d=4"], ["--victim-param d", "twice"]),
        (["--attack-param", "popular_fraction=0.1", "--attack", "bandwagon", "--attack-param", "popular_fraction=0.2"], ["--attack-param popular_fraction", "twice"]),
        (["--k", "100000"], ["k=100000", "300"]),
        (["--filler", "100000"], ["filler count 100000"]),
        (["--targets", "100000"], ["100000 targets"]),
        (["--attack-size", "nan"], ["attack size nan"]),
        (["--attack-size", "inf"], ["attack size inf"]),
        (["--knowledge", "partial:nan"], ["partial:nan"]),
        (["--target-mode", "[b]each"], ["[b]each"]),
        (["--attack", "pga", "--attack-param", "d=100000"], ["attack pga", "d=100000", "GiB"]),
        (["--victim", "ncf", "--victim-param", "layers=64,x"], ["layers='64,x'", "comma-separated"]),
        (["--victim", "gmf", "--victim-param", "threshold=100"], ["threshold=100", "keeps no rating"]),
        (["--victim", "nsvd", "--victim-param", "lr=1e11", "--victim-param", "epochs=3"], ["nsvd", "non-finite"]),
    ],
)
def test_bad_run_values(args, names):
    r = runner.invoke(app, ["run", *SYN, *args])
    check_refused(r, *names)


def test_huge_value_is_echoed_as_a_short_excerpt():
    r = runner.invoke(app, ["run", *SYN, "--victim-param", "d=" + "9" * 2_000_000])
    line = check_refused(r, "d=")
    assert "characters" in line and len(r.output) < 800


def test_rich_markup_in_an_error_is_printed_as_written():
    r = runner.invoke(app, ["run", *SYN, "--victim", "[bold]x[/bold]"])
    assert "[bold]x[/bold]" in check_refused(r)


def test_ray_missing_names_the_extra(tmp_path, good_csv, monkeypatch):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPEC.format(dataset=good_csv))
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    r = runner.invoke(app, ["sweep", str(spec), "--run-dir", str(tmp_path / "run"), "--executor", "ray"])
    check_refused(r, "'recpoison[ray]'")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, names", [(["--workers", "0"], ["--workers 0"]), (["--executor", "[x]"], ["--executor '[x]'"]),
                                         (["--workers", "100000000"], ["--workers 100000000"])])
def test_bad_sweep_options(tmp_path, good_csv, args, names):
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_SPEC.format(dataset=good_csv))
    r = runner.invoke(app, ["sweep", str(spec), "--run-dir", str(tmp_path / "run"), *args])
    check_refused(r, *names)
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------ data files
def _bad_files():
    rows = ratings()
    big = csv_text(rows[:-1]) + f"{rows[-1][0]},{rows[-1][1]},1e300\n"
    return {
        "huge rating": ("big.csv", big.encode(), ["big.csv line", "1e300", "±1,000,000"]),
        "every user one rating": ("one.csv", "".join(f"{u},{u},4\n" for u in range(1, 40)).encode(), ["one.csv", "0 of 39 users qualify"]),
        "one user": ("oneuser.csv", b"1,1,4\n1,2,3\n1,3,5\n", ["oneuser.csv", "1 of 1 users qualify"]),
        "one item": ("oneitem.csv", "".join(f"{u},7,4\n" for u in range(1, 40)).encode(), ["oneitem.csv", "users qualify"]),
        "pairs without --implicit": ("pairs.csv", "".join(f"{u},{i}\n" for u, i, _ in rows).encode(), ["pairs.csv line 1", "--implicit"]),
        "5 MB field": ("long.csv", b"1,1,4\n1,2," + b"x" * 1_000_000 + b"\n", ["long.csv line 2", "characters"]),
        "binary": ("bin.csv", bytes(range(256)) * 50, ["bin.csv"]),
        "overflowing timestamp": ("ts.csv", b"1,1,4,1\n1,2,3,1e999\n", ["ts.csv line 2", "timestamp"]),
        "brackets in the name": ("r[bold]x.csv", b"1,1,4\n1,2,x\n", ["r[bold]x.csv line 2", "'x'"]),
        "empty": ("empty.csv", b"", ["empty.csv", "empty file"]),
        "latin-1 garbage rating": ("lat.csv", "1,1,4\n1,2,\xe9\n".encode("latin-1"), ["lat.csv line 2", "'é'"]),
    }


@pytest.mark.parametrize("case", list(_bad_files()))
def test_bad_ratings_files(tmp_path, case):
    name, content, names = _bad_files()[case]
    f = tmp_path / name
    f.write_bytes(content)
    before = snapshot(tmp_path)
    r = runner.invoke(app, ["run", "--dataset", str(f), "--targets", "2", "--k", "5", "--filler", "3"])
    check_refused(r, *names, before=before, root=tmp_path)


def test_missing_file_and_folder_as_dataset(tmp_path):
    check_refused(runner.invoke(app, ["run", "--dataset", str(tmp_path / "nope[1].csv")]), "nope[1].csv")
    (tmp_path / "dir.csv").mkdir()
    check_refused(runner.invoke(app, ["run", "--dataset", str(tmp_path / "dir.csv")]), "dir.csv", "directory")


@pytest.mark.parametrize(
    "name, encode",
    [
        ("text_ids.csv", lambda rows: "".join(f"user_{u},item-{i},{r}\n" for u, i, r in rows).encode()),
        ("utf16.csv", lambda rows: csv_text(rows).encode("utf-16")),
        ("utf16le_nobom.csv", lambda rows: csv_text(rows).encode("utf-16-le")),
        ("utf8bom.csv", lambda rows: csv_text(rows).encode("utf-8-sig")),
        ("quoted.csv", lambda rows: ('"user","item","rating"\n' + "".join(f'"u {u}","item, {i}","{r}"\n' for u, i, r in rows)).encode()),
    ],
)
def test_valid_files_that_used_to_break(tmp_path, name, encode):
    f = tmp_path / name
    f.write_bytes(encode(ratings()))
    r = runner.invoke(app, ["run", "--dataset", str(f), "--targets", "2", "--k", "5", "--filler", "3", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["n_fake"] == 1 and len(res["targets"]) == 2
    if name == "text_ids.csv":
        assert all(t.startswith("item-") for t in res["targets"])
    if name == "quoted.csv":
        assert all(t.startswith("item, ") for t in res["targets"])


def test_implicit_flag_reads_pairs(tmp_path):
    f = tmp_path / "pairs.csv"
    f.write_text("".join(f"{u},{i}\n" for u, i, _ in ratings()))
    r = runner.invoke(app, ["run", "--dataset", str(f), "--implicit", "--victim", "mostpop", "--targets", "2", "--k", "5", "--filler", "3", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n_fake"] == 1


def test_json_is_strict_null_for_undefined(tmp_path):
    # item 1 is every user's earliest rating, so leave-one-out never holds it out: every normal
    # user has rated it, no user is eligible, and its target HR is undefined (NaN inside)
    f = tmp_path / "full.csv"
    f.write_text("".join(f"{u},{i},4,{0 if i == 1 else 100 + i}\n" for u in range(1, 20) for i in range(1, 8)))
    r = runner.invoke(app, ["run", "--dataset", str(f), "--victim", "mostpop", "--targets", "7", "--filler", "0", "--k", "3", "--json"])
    assert r.exit_code == 0, r.output
    assert "NaN" not in r.stdout
    res = json.loads(r.stdout, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    assert res["targets"][0] == 1 and res["hr_per_target_before"][0] is None and res["hr_per_target_after"][0] is None


# ------------------------------------------------------------------------------ specs
def _spec(tmp_path, text: str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


@pytest.mark.parametrize(
    "text, names",
    [
        ("name: a\nname: b\naxes: {attack: none}\n", ["s.yaml", "line 2", "'name'", "twice"]),
        ("axes:\n  attack: none\n  attack: random\n", ["s.yaml", "line 3", "'attack'", "twice"]),
        ("axes: {attack: none, seed: -1}\n", ["s.yaml", "axes.seed", "seed=-1"]),
        ("axes: {attack: none, victim_params: {init_std: .inf}}\n", ["s.yaml", "init_std", "not finite"]),
        ("axes: {attack: none, victim_params: {d: 3, d: 4}}\n", ["s.yaml", "'d'", "twice"]),
        ("axes: {attack: none, victim: '[/]'}\n", ["s.yaml", "'[/]'"]),
        ("axes: {attack: none, victim_params: {sweeps: 10000000}}\n", ["sweeps=10000000"]),
        ("axes: {attack: none, victim_params: {d: 2020-01-01}}\n", ["s.yaml", "axes.victim_params"]),
        ("a: &a [*a]\naxes: {attack: none}\n", ["s.yaml", "recursive"]),
        ("axes: {attack: none, seed: [" + ", ".join(map(str, range(400))) + "], attack_size: ["
         + ", ".join(f"0.{i:03d}" for i in range(1, 400)) + "]}\n", ["s.yaml", "159,600 cells", "--force"]),
    ],
)
def test_bad_specs(tmp_path, text, names):
    p = _spec(tmp_path, text)
    before = snapshot(tmp_path)
    r = runner.invoke(app, ["sweep", str(p), "--run-dir", str(tmp_path / "run"), "--dry-run"])
    check_refused(r, *names, before=before, root=tmp_path)


def test_alias_bomb_is_refused_with_a_short_line(tmp_path):
    s = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    prev = "a"
    for n in "bcdefghi":
        s += f"{n}: &{n} [" + ",".join(["*" + prev] * 9) + "]\n"
        prev = n
    p = _spec(tmp_path, s + "axes: {attack: *i}\n")
    check_refused(runner.invoke(app, ["sweep", str(p), "--dry-run"]), "s.yaml", "alias")


def test_dry_run_checks_data_files_and_counts(tmp_path, good_csv):
    bad = tmp_path / "bad.csv"
    bad.write_text("1,1,4\n1,2,4\n2,1,x\n")
    p = _spec(tmp_path, TINY_SPEC.format(dataset=bad))
    check_refused(runner.invoke(app, ["sweep", str(p), "--dry-run"]), "bad.csv line 3", "'x'")
    p = _spec(tmp_path, TINY_SPEC.format(dataset=good_csv).replace("n_targets: 2", "n_targets: 500"))
    check_refused(runner.invoke(app, ["sweep", str(p), "--dry-run"]), "s.yaml", "500 targets", "25 items")
    p = _spec(tmp_path, TINY_SPEC.format(dataset=good_csv).replace("k: 5", "k: 25"))
    check_refused(runner.invoke(app, ["sweep", str(p), "--dry-run"]), "k=25")


def test_implicit_spec_field(tmp_path):
    f = tmp_path / "pairs.csv"
    f.write_text("".join(f"{u},{i}\n" for u, i, _ in ratings()))
    text = TINY_SPEC.format(dataset=f).replace("victim: mf", "victim: mostpop").replace("{d: 4, sweeps: 2}", "{}")
    check_refused(runner.invoke(app, ["sweep", str(_spec(tmp_path, text)), "--dry-run"]), "pairs.csv", "--implicit")
    p = _spec(tmp_path, text.replace("  victim: mostpop", "  victim: mostpop\n  implicit: true"))
    r = runner.invoke(app, ["sweep", str(p), "--run-dir", str(tmp_path / "run"), "--quiet"])
    assert r.exit_code == 0 and "2 run now" in r.stdout, r.output


def test_dry_run_summarises_big_grids(tmp_path, good_csv):
    p = _spec(tmp_path, TINY_SPEC.format(dataset=good_csv).replace("attack_size: 0.05", "attack_size: [" + ", ".join(f"0.{i:02d}" for i in range(1, 31)) + "]"))
    r = runner.invoke(app, ["sweep", str(p), "--run-dir", str(tmp_path / "run"), "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "60 cells" in r.stdout and "attack 2, attack_size 30" in r.stdout
    assert "... and 40 more cells (--list-all" in r.stdout and len(r.stdout.splitlines()) == 23
    r = runner.invoke(app, ["sweep", str(p), "--run-dir", str(tmp_path / "run"), "--dry-run", "--list-all"])
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 62
    assert not (tmp_path / "run").exists()


def test_brackets_in_spec_name_and_paths_do_not_crash_the_summary(tmp_path, good_csv):
    d = tmp_path / "d[ir]"
    d.mkdir()
    f = d / "r[1].csv"
    f.write_bytes(good_csv.read_bytes())
    p = _spec(tmp_path, TINY_SPEC.format(dataset=f"'{f}'").replace("name: tiny", "name: '[bold]x'"))
    run = tmp_path / "run[/]"
    r = runner.invoke(app, ["sweep", str(p), "--run-dir", str(run)])
    assert r.exit_code == 0, r.output
    assert "2 run now" in r.stdout and "run[/]" in r.stdout and "[bold]x" in r.stderr
    r = runner.invoke(app, ["report", str(run)])
    assert r.exit_code == 0, r.output
    assert "d[ir]" in r.stdout


# ------------------------------------------------------------------------------ run folders and stores
def test_different_spec_in_an_existing_run_folder_is_refused(tmp_path, finished_run):
    spec, run = finished_run
    other = _spec(tmp_path, spec.read_text().replace("attack: [none, random]", "attack: [none, average]"), "other.yaml")
    before = snapshot(tmp_path)
    r = runner.invoke(app, ["sweep", str(other), "--run-dir", str(run), "--quiet"])
    check_refused(r, str(run), "axes.attack", '["none","random"] there', "--force", before=before, root=tmp_path)
    r = runner.invoke(app, ["sweep", str(other), "--run-dir", str(run), "--quiet", "--force"])
    assert r.exit_code == 0 and "1 run now, 1 already done" in r.stdout, r.output


def test_a_second_sweep_into_a_locked_folder_is_refused(tmp_path, finished_run):
    spec, run = finished_run
    before = snapshot(tmp_path)
    with lock_run_dir(run):
        r = runner.invoke(app, ["sweep", str(spec), "--run-dir", str(run), "--quiet"])
    check_refused(r, "another sweep", f"pid {os.getpid()}", str(run), "wait", before=before, root=tmp_path)
    r = runner.invoke(app, ["sweep", str(spec), "--run-dir", str(run), "--quiet"])  # free again
    assert r.exit_code == 0 and "2 already done" in r.stdout


def _corrupt(run: Path) -> None:
    run.mkdir(parents=True, exist_ok=True)
    (run / "results.sqlite").write_bytes(b"this is not a database\n" * 100)


def _foreign(run: Path) -> None:
    run.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(run / "results.sqlite")
    con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)")
    con.execute("INSERT INTO invoices VALUES (1, 9.5)")
    con.commit()
    con.close()


@pytest.mark.parametrize("make, what", [(_corrupt, "not an SQLite database"), (_foreign, "not a recpoison results store")])
@pytest.mark.parametrize("command", ["sweep", "dry-run", "report"])
def test_corrupt_or_foreign_store_is_left_untouched(tmp_path, good_csv, make, what, command):
    spec = _spec(tmp_path, TINY_SPEC.format(dataset=good_csv))
    run = tmp_path / "run"
    make(run)
    before = snapshot(tmp_path)
    args = {"sweep": ["sweep", str(spec), "--run-dir", str(run), "--quiet"],
            "dry-run": ["sweep", str(spec), "--run-dir", str(run), "--dry-run"],
            "report": ["report", str(run)]}[command]
    r = runner.invoke(app, args)
    check_refused(r, "results.sqlite", what, "untouched", before=before, root=tmp_path)
    assert sorted(p.name for p in run.iterdir()) == ["results.sqlite"]


def test_run_dir_that_is_a_file(tmp_path, good_csv):
    spec = _spec(tmp_path, TINY_SPEC.format(dataset=good_csv))
    f = tmp_path / "afile"
    f.write_text("keep me\n")
    before = snapshot(tmp_path)
    check_refused(runner.invoke(app, ["sweep", str(spec), "--run-dir", str(f)]), "afile", "is a file", before=before, root=tmp_path)
    check_refused(runner.invoke(app, ["sweep", str(spec), "--run-dir", str(f / "sub")]), "afile", before=before, root=tmp_path)
    check_refused(runner.invoke(app, ["report", str(f)]), "afile", before=before, root=tmp_path)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root may write into read-only folders")
def test_read_only_run_dir(tmp_path, good_csv):
    spec = _spec(tmp_path, TINY_SPEC.format(dataset=good_csv))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        check_refused(runner.invoke(app, ["sweep", str(spec), "--run-dir", str(ro / "run")]), "ro", "choose another --run-dir")
        check_refused(runner.invoke(app, ["sweep", str(spec), "--run-dir", str(ro)]), "ro", "not writable")
    finally:
        ro.chmod(0o755)


def test_report_out_naming_a_file_and_missing_run(tmp_path, finished_run):
    _, run = finished_run
    f = tmp_path / "out.txt"
    f.write_text("keep me\n")
    before = snapshot(tmp_path)
    check_refused(runner.invoke(app, ["report", str(run), "--out", str(f)]), "--out", "out.txt", "is a file", before=before, root=tmp_path)
    check_refused(runner.invoke(app, ["report", str(tmp_path / "nowhere")]), "nowhere", before=before, root=tmp_path)
