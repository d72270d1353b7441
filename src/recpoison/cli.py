"""Command line: ``recpoison list | run | detect | demo | sweep | report`` (Typer + Rich).

User errors (:class:`recpoison.errors.RecPoisonError`) are printed as one line on stderr, without a
traceback, and the command exits with status 2; so are a failed file operation (``OSError``) and
running out of memory. Every message is escaped for Rich (user text such as ``[/]`` is printed as
written) and cut to one short line (:mod:`recpoison.text`). Ctrl-C exits with status 130.
"""

from __future__ import annotations

import csv
import functools
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer
from rich.console import Console
from rich.table import Table

from .errors import ConfigError, RecPoisonError
from .text import escape, excerpt, one_line, short, strict_json

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="recpoison: attack, detect and defend recommender systems against data poisoning.",
)
out = Console()
err = Console(stderr=True)


def print_error(message: Any, console: Console | None = None) -> None:
    """``error: MESSAGE`` on stderr: one line, cut to a short excerpt, user text escaped for Rich."""
    (console or err).print(f"[bold red]error:[/] {escape(one_line(message), None)}", highlight=False, soft_wrap=True)


def user_errors(fn: Callable) -> Callable:
    """Turn user-facing errors into one line on stderr and exit status 2 (130 on Ctrl-C)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RecPoisonError as exc:
            print_error(exc)
            raise typer.Exit(exc.exit_code) from None
        except MemoryError:
            print_error("out of memory; use smaller parameters (d, factors, hidden, batch_size) or a smaller data set")
            raise typer.Exit(2) from None
        except RuntimeError as exc:  # torch reports a failed allocation as a RuntimeError
            if "allocate" not in str(exc).lower():
                raise
            print_error("out of memory; use smaller parameters (d, factors, hidden, batch_size, n_neg) or a smaller data set")
            raise typer.Exit(2) from None
        except OSError as exc:
            where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
            print_error(f"{where}{exc.strerror or exc}; check the path and its permissions")
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            print_error("interrupted")
            raise typer.Exit(130) from None

    return wrapper


def parse_params(pairs: list[str] | None, what: str) -> dict[str, Any]:
    """``["d=32", "reg=0.1"]`` -> ``{"d": "32", "reg": "0.1"}`` (typed later by the component).

    Every ``--WHAT-param`` option uses it: a malformed pair or a name given twice is refused.
    """
    out_: dict[str, Any] = {}
    for p in pairs or []:
        key, sep, value = p.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--{what}-param {short(p)}: write it as NAME=VALUE, e.g. --{what}-param d=32")
        if key in out_:
            raise ConfigError(
                f"--{what}-param {excerpt(key)} is given twice ({short(out_[key])} and {short(value.strip())}); give it once"
            )
        out_[key] = value.strip()
    return out_


def fmt(x: Any, digits: int = 4) -> str:
    if isinstance(x, float):
        return "nan" if math.isnan(x) else f"{x:.{digits}f}"
    return str(x)


# ---------------------------------------------------------------------------------------- list
@app.command("list")
@user_errors
def list_cmd() -> None:
    """List the data sets, victims, attacks, detectors and defenses, each with its paper."""
    from . import attacks, datasets, defenses, detect, victims

    for title, rows in (
        ("Data sets", [(n, p, s) for n, p, s in datasets.list_datasets()]),
        ("Victims", [(e.name, e.paper, e.summary) for e in victims.VICTIMS]),
        ("Attacks", [(e.name, e.paper, e.summary) for e in attacks.ATTACKS]),
        ("Detectors", [(e.name, e.paper, e.summary) for e in detect.DETECTORS]),
        ("Defenses", [(e.name, e.paper, e.summary) for e in defenses.DEFENSES]),
    ):
        t = Table(title=title, title_justify="left")
        for col in ("name", "paper / source", "what it is"):
            t.add_column(col)
        for r in rows:
            t.add_row(*r)
        out.print(t)


# ---------------------------------------------------------------------------------------- run
def _spec(**kw):
    from .pipeline import CellSpec

    try:
        return CellSpec(**kw)
    except TypeError as exc:  # pragma: no cover - programming error
        raise ConfigError(str(exc)) from None


def _hr_label(res: dict[str, Any]) -> str:
    """The target HR row's name: the mean over the targets, or any target of the set (seed 003)."""
    how = "any" if res.get("hr_definition") == "any" else "mean"
    return f"target HR@{res['k']} ({how} of {len(res['targets'])})"


def _result_table(res: dict[str, Any], title: str) -> Table:
    t = Table(title=title, title_justify="left")
    t.add_column("metric")
    t.add_column("before attack", justify="right")
    t.add_column("after attack", justify="right")
    k = res["k"]
    t.add_row(_hr_label(res), fmt(res["hr_before"]), fmt(res["hr_after"]))
    t.add_row(f"accuracy HR@{k} (leave-one-out)", fmt(res["accuracy_before"]["hr"]), fmt(res["accuracy_after"]["hr"]))
    t.add_row(f"accuracy NDCG@{k}", fmt(res["accuracy_before"]["ndcg"]), fmt(res["accuracy_after"]["ndcg"]))
    if "accuracy_threshold" in res:
        t.add_row(f"accuracy HR@{k}, held-out rating >= {res['accuracy_threshold']:g}", fmt(res["accuracy_before"]["hr_liked"]), fmt(res["accuracy_after"]["hr_liked"]))
    if "detection" in res:
        t = _with_detection(t, res)
    if "hr_after_defense" in res:
        t = _with_defense(t, res)
    return t


def _with_defense(t: Table, res: dict[str, Any]) -> Table:
    """Add a 'with <defense>' column (the defended victim on the poisoned data) and the per-user
    inference time with and without it."""
    k = res["k"]
    rows = [list(r) for r in zip(*[[str(c) for c in col._cells] for col in t.columns])]
    nt = Table(title=t.title, title_justify="left")
    for col in t.columns:
        nt.add_column(str(col.header), justify=col.justify)
    nt.add_column(f"with {res['defense']}", justify="right")
    extra = {
        _hr_label(res): fmt(res["hr_after_defense"]),
        f"accuracy HR@{k} (leave-one-out)": fmt(res["accuracy_after_defense"]["hr"]),
        f"accuracy NDCG@{k}": fmt(res["accuracy_after_defense"]["ndcg"]),
    }
    if "accuracy_threshold" in res:
        extra[f"accuracy HR@{k}, held-out rating >= {res['accuracy_threshold']:g}"] = fmt(res["accuracy_after_defense"]["hr_liked"])
    for r in rows:
        nt.add_row(*r, extra.get(r[0], ""))
    s = res["inference_seconds_per_user"]
    nt.add_row("inference ms per user (plain / defended)", *([""] * (len(t.columns) - 1)), f"{1e3 * s['plain']:.2f} / {1e3 * s['defended']:.2f}")
    return nt


def _with_detection(t: Table, res: dict[str, Any]) -> Table:
    """Rebuild the result table with an 'after detection' column and the detector's rates."""
    k = res["k"]
    d = res["detection"]
    nt = Table(title=t.title, title_justify="left")
    for col in ("metric", "before attack", "after attack", f"after {res['detector']}"):
        nt.add_column(col, justify="left" if col == "metric" else "right")
    nt.add_row(_hr_label(res), fmt(res["hr_before"]), fmt(res["hr_after"]), fmt(res["hr_after_detection"]))
    rows = [("hr", f"accuracy HR@{k} (leave-one-out)"), ("ndcg", f"accuracy NDCG@{k}")]
    if "accuracy_threshold" in res:
        rows.append(("hr_liked", f"accuracy HR@{k}, held-out rating >= {res['accuracy_threshold']:g}"))
    for m, name in rows:
        nt.add_row(name, fmt(res["accuracy_before"][m]), fmt(res["accuracy_after"][m]), fmt(res["accuracy_after_detection"][m]))
    nt.add_row("detection FPR / FNR", "", "", f"{fmt(d['fpr'])} / {fmt(d['fnr'])}")
    for phase, r in d["phases"].items():
        if len(d["phases"]) > 1:
            nt.add_row(f"  phase {phase}: FPR / FNR", "", "", f"{fmt(r['fpr'])} / {fmt(r['fnr'])}")
    nt.add_row("users flagged (normal among them)", "", "", f"{d['n_flagged']} ({d['n_flagged_normal']})")
    return nt


@app.command("run")
@user_errors
def run_cmd(
    dataset: str = typer.Option("ml-100k", help="Data set name (see `recpoison list`) or a ratings file."),
    victim: str = typer.Option("mf", help="Victim recommender."),
    attack: str = typer.Option("random", help="Attack."),
    attack_size: float = typer.Option(0.03, help="Fake users as a fraction of normal users, in (0, 1]."),
    filler: int = typer.Option(20, help="Filler items per fake user (n)."),
    targets: int = typer.Option(5, help="Number of target items (promoted together)."),
    k: int = typer.Option(10, "--k", help="Length of the top-K lists."),
    seed: int = typer.Option(0, help="Seed of every random choice."),
    target_strategy: str = typer.Option("random", help="random | unpopular | tier:T, T one of most-pop, pop, ordinary, unpop, most-unp (seed 003 App. A.8 popularity percentiles)."),
    knowledge: str = typer.Option("full", help="Attacker's knowledge: full | partial:F (seed 001 §5.3) | perturbed:F (seed 003 App. A.6: F of the interactions + 1-F perturbed ones; perturbed:F:P for a share P of perturbed ones; a trailing :random for the authors' code's random mode), F in (0, 1]."),
    target_mode: str = typer.Option("together", help="together: one attack promotes all targets | each: one attack per target (seed 001)."),
    victim_param: Optional[List[str]] = typer.Option(None, help="Victim hyper-parameter NAME=VALUE (repeatable)."),
    attack_param: Optional[List[str]] = typer.Option(None, help="Attack hyper-parameter NAME=VALUE (repeatable)."),
    detector: str = typer.Option("none", help="Fake-user detector applied to the poisoned data (none | svm | svm-tia | pca | perfect | random)."),
    detector_param: Optional[List[str]] = typer.Option(None, help="Detector hyper-parameter NAME=VALUE (repeatable), e.g. train_attacks=random,average."),
    defense: str = typer.Option("none", help="Defense of the victim (see `recpoison list`): none | rvd, or a chain such as rvd+ltsmf."),
    defense_param: Optional[List[str]] = typer.Option(None, help="Defense hyper-parameter NAME=VALUE (repeatable), e.g. k=12."),
    save_fakes: Optional[Path] = typer.Option(None, "--save-fakes", help="Write the injected profiles to this CSV (user,item,rating); --dataset loads it back."),
    implicit: bool = typer.Option(False, "--implicit", help="Read the data as implicit feedback: every rating (or a (user, item) pair without one) counts as 1."),
    accuracy_threshold: Optional[float] = typer.Option(None, "--accuracy-threshold", help="Also report accuracy over the users whose held-out rating is at least this (seed 004 App. D), e.g. 4."),
    hr_definition: str = typer.Option("per-target", "--hr-definition", help="Target HR@K: per-target (mean over the targets, over the users who have not rated each) | any (seed 003: share of all normal users whose top-K holds any target)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table (null for undefined values)."),
    threads: int = typer.Option(1, "--threads", help="Threads for training the torch models (default 1: results do not depend on the machine; 2 made fits 1.13-1.56x faster on an idle 2-core machine, docs/victims.md). Reproducible for a fixed count."),
) -> None:
    """Attack one victim on one data set and print target HR@K and accuracy before / after
    (and after detection, with --detector; with the defense, with --defense)."""
    from .pipeline import run_cell
    from .threads import check_threads, use_training_threads

    check_threads(threads)  # a bad count fails before any work

    if save_fakes is not None:
        _check_new_file(save_fakes, "--save-fakes")

    spec = _spec(
        dataset=dataset,
        victim=victim,
        attack=attack,
        attack_size=attack_size,
        n_filler=filler,
        n_targets=targets,
        k=k,
        seed=seed,
        target_strategy=target_strategy,
        knowledge=knowledge,
        target_mode=target_mode,
        victim_params=parse_params(victim_param, "victim"),
        attack_params=parse_params(attack_param, "attack"),
        detector=detector,
        detector_params=parse_params(detector_param, "detector"),
        defense=defense,
        defense_params=parse_params(defense_param, "defense"),
        implicit=implicit,
        accuracy_threshold=accuracy_threshold,
        hr_definition=hr_definition,
    )
    t0 = time.perf_counter()
    with use_training_threads(threads):
        res, fakes = run_cell(spec, return_fakes=True)
    res["seconds"]["total"] = round(time.perf_counter() - t0, 4)
    if threads != 1:
        res["threads"] = threads
    if save_fakes is not None:
        from .detect.labelled import write_profiles
        from .pipeline import load_data

        n, first = write_profiles(save_fakes, fakes, load_data(spec).user_ids)
        err.print(f"{n} fake profiles written to {save_fakes} (user ids from {first})", highlight=False, markup=False)
    if as_json:
        sys.stdout.write(strict_json(res) + "\n")
        return
    title = escape(
        f"{res['attack']} on {res['victim']} / {excerpt(res['dataset'])}: {res['n_fake']} fake users "
        f"({res['attack_size']:.1%}), {res['n_filler']} fillers, targets {excerpt(res['targets'])}, seed {res['seed']}",
        None,
    )
    out.print(_result_table(res, title))
    out.print(f"time: {res['seconds']['total']:.1f} s  ({', '.join(f'{s} {v:.2f}' for s, v in res['seconds'].items() if s != 'total')})")


def _check_new_file(path: Path, option: str) -> None:
    """Refuse to overwrite a file or to write into a folder that does not exist (no data lost)."""
    if path.exists():
        raise ConfigError(f"{option} {str(path)!r} already exists; give a new file name (nothing is overwritten)")
    if not path.parent.is_dir():
        raise ConfigError(f"{option} {str(path)!r}: folder {str(path.parent)!r} does not exist")


# ---------------------------------------------------------------------------------------- detect
@app.command("detect")
@user_errors
def detect_cmd(
    dataset: str = typer.Option(..., help="Ratings file (user,item,rating[,timestamp]) or a data set name."),
    detector: str = typer.Option(..., help="Detector (see `recpoison list`): svm, svm-tia (need --labels), pca, perfect, random."),
    labels: Optional[Path] = typer.Option(None, help="CSV of user_id,label (1 = fake, 0 = normal); users not named count as normal."),
    detector_param: Optional[List[str]] = typer.Option(None, help="Detector hyper-parameter NAME=VALUE (repeatable)."),
    folds: int = typer.Option(5, help="Cross-validation folds for a supervised detector (>= 2)."),
    seed: int = typer.Option(0, help="Seed of the folds and of randomised detectors."),
    out_file: Optional[Path] = typer.Option(None, "--out", help="CSV of the flagged user ids (default: print only)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of text."),
) -> None:
    """Flag fake users in a ratings file; with --labels, print FPR / FNR (per phase where the detector has phases)."""
    from . import datasets, detect
    from .detect.base import make_seeded
    from .detect.labelled import detect_labelled, read_labels, write_flagged

    if folds < 2:
        raise ConfigError(f"--folds {folds}: cross-validation needs at least 2 folds")
    if seed < 0:
        raise ConfigError(f"--seed {seed} must be >= 0")
    if out_file is not None:
        _check_new_file(out_file, "--out")
    params = parse_params(detector_param, "detector")
    cls = detect.DETECTORS.entry(detector).factory
    if not cls.active:
        raise ConfigError("detector 'none' flags nobody; name a detector (see `recpoison list`)")
    det = make_seeded(detector, params, seed)
    if det.supervised and any(k_ in params for k_ in ("train_attacks", "n_train_fake", "n_train_normal", "train_batch")):
        raise ConfigError("train_attacks / n_train_* / train_batch apply to experiments (`recpoison run`); `detect` trains on --labels")
    data = datasets.load(dataset)
    y, named = (read_labels(labels, data) if labels is not None else (None, None))
    unnamed = int((~named).sum()) if named is not None else 0
    res = detect_labelled(det, data, y, folds=folds, seed=seed, named=named)
    mask = res["flagged"]
    if out_file is not None:
        write_flagged(out_file, data, mask)
    summary = {
        "dataset": dataset, "detector": detector, "detector_params": params, "n_users": data.n_users,
        "n_flagged": int(mask.sum()), "labels": str(labels) if labels else None, "unlabelled_as_normal": unnamed,
        "n_fake_labelled": int(y.sum()) if y is not None else None, "cv_folds": res["cv_folds"],
        "fpr": res["rates"]["fpr"] if res["rates"] else None, "fnr": res["rates"]["fnr"] if res["rates"] else None,
        "phases": res["phases"], "out": str(out_file) if out_file else None,
    }
    if as_json:
        sys.stdout.write(strict_json(summary) + "\n")
        return
    out.print(f"{detector} on {data.name}: {summary['n_flagged']} of {data.n_users} users flagged", highlight=False, markup=False)
    if res["rates"]:
        out.print(f"FPR {fmt(summary['fpr'])}  FNR {fmt(summary['fnr'])}  ({summary['n_fake_labelled']} users labelled fake; "
                  f"{unnamed} users not in the labels file counted as normal, never trained on)", highlight=False, markup=False)
        if len(res["phases"]) > 1:
            for phase, r in res["phases"].items():
                out.print(f"  phase {phase}: FPR {fmt(r['fpr'])}  FNR {fmt(r['fnr'])}", highlight=False, markup=False)
    if res["cv_folds"]:
        out.print(f"{det.name} is supervised: scored by {res['cv_folds']}-fold cross-validation over users; "
                  "no user is flagged by a model trained on its label", highlight=False, markup=False)
    if out_file is not None:
        out.print(f"flagged user ids written to {out_file}", highlight=False, markup=False)


# ---------------------------------------------------------------------------------------- demo
DEMO_ATTACKS = ("none", "random", "average", "bandwagon", "popular")
DEMO_SIZES = (0.01, 0.03)


@app.command("demo")
@user_errors
def demo_cmd(
    out_dir: Path = typer.Option(Path("runs"), "--out", help="Folder for the results."),
    seed: int = typer.Option(0, help="Seed."),
    workers: int = typer.Option(1, help="Worker processes (see `recpoison sweep --workers`)."),
) -> None:
    """Run the demo grid on ML-100K (examples/demo.yaml): mf x {none, random, average, bandwagon, popular} x {1%, 3%}, 5 targets."""
    from . import datasets
    from .experiments.cli import demo_spec, results_in_order
    from .experiments.executors import make_executor
    from .experiments.runner import run_sweep

    spec = demo_spec(seed, DEMO_ATTACKS, DEMO_SIZES)
    ex = make_executor("auto", workers)
    with err.status("obtaining MovieLens-100K (cache, GroupLens, or the PyPI fallback)..."):
        datasets.load("ml-100k")
    run_dir = out_dir / time.strftime("demo-%Y%m%d-%H%M%S")
    summary = run_sweep(spec, run_dir, ex, console=err)
    if summary.failed:
        for key, label, error in summary.failed:
            err.print(f"[red]failed[/] {key} {escape(label)}: {escape(one_line(error), None)}", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    rows = results_in_order(spec, run_dir)
    attacks_ = list(dict.fromkeys(r["attack"] for r in rows))
    sizes = sorted({r["attack_size"] for r in rows})
    t = Table(title=f"MF on ML-100K, seed {seed}: target HR@10 (accuracy HR@10)", title_justify="left")
    t.add_column("attack")
    for s in sizes:
        t.add_column(f"{s:.0%} fake users", justify="right")
    for a in attacks_:
        cells = sorted((r for r in rows if r["attack"] == a), key=lambda r: r["attack_size"])
        t.add_row(a, *[f"{fmt(r['hr_after'])} ({fmt(r['accuracy_after']['hr'], 3)})" for r in cells])
    out.print(t)
    (run_dir / "results.json").write_text(strict_json(rows, indent=1) + "\n")
    flat_keys = ["dataset", "victim", "attack", "attack_size", "n_fake", "n_filler", "k", "seed", "hr_before", "hr_after"]
    with open(run_dir / "results.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(flat_keys + ["acc_hr_before", "acc_hr_after", "acc_ndcg_before", "acc_ndcg_after", "targets", "seconds"])
        for r in rows:
            w.writerow(
                [r[k_] for k_ in flat_keys]
                + [r["accuracy_before"]["hr"], r["accuracy_after"]["hr"], r["accuracy_before"]["ndcg"], r["accuracy_after"]["ndcg"]]
                + [" ".join(map(str, r["targets"])), r["seconds"].get("total", sum(r["seconds"].values()))]
            )
    out.print(
        f"{len(rows)} cells in {summary.seconds:.1f} s; results written to {escape(run_dir, None)}/results.csv and results.json "
        f"(store: results.sqlite; `recpoison report {escape(run_dir, None)}` for tables and plots)",
        highlight=False, soft_wrap=True,
    )


# ---------------------------------------------------------------------------------------- sweep
@app.command("sweep")
@user_errors
def sweep_cmd(
    spec: Path = typer.Argument(..., help="Sweep spec (YAML), e.g. examples/demo.yaml; format in docs/experiments.md."),
    run_dir: Optional[Path] = typer.Option(None, "--run-dir", help="Run folder (default runs/<spec name>); rerunning resumes it."),
    workers: int = typer.Option(1, help="Parallel workers (local processes, or Ray task slots)."),
    executor: str = typer.Option("auto", help="auto (inline for 1 worker, processes for more) | inline | processes | ray"),
    address: Optional[str] = typer.Option(None, help="Ray cluster: auto | ray://HOST:10001 | local (with --executor ray)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate the spec and its data files and summarise the cells, without running them."),
    list_all: bool = typer.Option(False, "--list-all", help="With --dry-run: list every cell, not only the first ones."),
    force: bool = typer.Option(False, "--force", help="Run into a folder that holds a different spec's run, and allow grids beyond the cell limit."),
    quiet: bool = typer.Option(False, help="No progress bar."),
    fakes: Optional[Path] = typer.Option(None, "--fakes", help="Folder that keeps the fake profiles of every attack run (default RUN_DIR/fakes); sweeps given the same folder reuse each other's attack runs."),
) -> None:
    """Run a grid of cells from a YAML spec into a resumable results store (RUN_DIR/results.sqlite).

    Ctrl-C or SIGTERM stops the sweep and its workers at once, keeping every finished cell (rerun to
    resume); a second sweep into a folder that one is running in is refused."""
    from .experiments.cli import sweep

    raise typer.Exit(sweep(spec, run_dir, workers, executor, address, dry_run, quiet, out, err, force=force, list_all=list_all, fakes_dir=fakes))


# ---------------------------------------------------------------------------------------- report
@app.command("report")
@user_errors
def report_cmd(
    run_dir: Path = typer.Argument(..., help="Run folder written by `recpoison sweep` or `recpoison demo`."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Where to write the report (default RUN_DIR/report)."),
    rows: Optional[str] = typer.Option(None, help="With --cols and --metric: print one pivot table (Markdown) instead, rows = this parameter (e.g. detector_params.train_attacks)."),
    cols: Optional[str] = typer.Option(None, help="Column parameter of the pivot table (e.g. attack)."),
    metric: Optional[str] = typer.Option(None, help="Metric of the pivot table (e.g. detection.fnr, hr_after_detection)."),
    where: Optional[List[str]] = typer.Option(None, help="Pivot only the cells with this parameter value, NAME=VALUE (repeatable), e.g. victim=mf."),
) -> None:
    """Tables (attack x attack size, mean ± std), CSV, PNG plots and an HTML page from a run folder;
    or, with --rows/--cols/--metric, one pivot table of any metric over any two parameters."""
    from .experiments.cli import report

    if rows or cols or metric:
        if not (rows and cols and metric):
            raise ConfigError("a pivot table needs all three of --rows, --cols and --metric")
        from .experiments.report import pivot

        only: dict[str, str] = {}
        for w in where or []:
            name, sep, value = w.partition("=")
            if not sep or not name.strip():
                raise ConfigError(f"--where {short(w)}: write it as NAME=VALUE, e.g. --where victim=mf")
            only[name.strip()] = value.strip()
        sys.stdout.write(pivot(run_dir, rows, cols, metric, where=only))
        return

    raise typer.Exit(report(run_dir, out_dir, out))


def main() -> None:
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
