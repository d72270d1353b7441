"""The ``recpoison sweep`` and ``recpoison report`` commands (wired into :mod:`recpoison.cli`),
and the sweep behind ``recpoison demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..errors import ConfigError
from ..text import escape, excerpt, one_line
from .spec import SweepSpec, load_spec, parse_spec

#: examples/ of a source checkout (``pip install -e .``); absent from an installed wheel.
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _fmt(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


#: cells listed by ``--dry-run`` without ``--list-all``
SHOWN_CELLS = 20


def print_cells(spec: SweepSpec, run_dir: Path, console: Console, list_all: bool = False, shown: int = SHOWN_CELLS) -> None:
    """The ``--dry-run`` listing: the number of values per axis and the first ``shown`` cells (every
    cell with ``list_all``), each with its status in ``run_dir`` if any. Printed as plain text
    (``markup=False``), so user text is never read as Rich markup."""
    from .store import DB_NAME, Store, check_store_file

    done: set[str] = set()
    if check_store_file(run_dir / DB_NAME):
        with Store(run_dir, readonly=True) as st:
            done = st.done_keys()
    varying = [n for n, v in spec.axes.items() if len(v) > 1]
    cols = list(dict.fromkeys(["dataset", "victim", "attack", "attack_size", "seed", "k"] + varying))
    n_done = len(done & {c.key for c in spec.cells})
    plain = dict(highlight=False, soft_wrap=True, markup=False)
    console.print(f"{excerpt(spec.name)}: {len(spec.cells):,} cells, {n_done:,} already done in {excerpt(run_dir, 120)}", **plain)
    per_axis = ", ".join(f"{n} {len(v)}" for n, v in spec.axes.items())
    console.print(f"values per axis: {per_axis}", **plain)
    limit = len(spec.cells) if list_all else min(shown, len(spec.cells))
    for i, c in enumerate(spec.cells[:limit], 1):
        desc = " ".join(f"{n}={excerpt(_fmt(c.params[n]), 40)}" for n in cols)
        console.print(f"{i:>5}  {c.key}  {'done  ' if c.key in done else 'to run'}  {desc}", **plain)
    if limit < len(spec.cells):
        console.print(f"... and {len(spec.cells) - limit:,} more cells (--list-all lists every cell)", **plain)


def _install_sigterm():
    """SIGTERM stops a sweep like Ctrl-C (workers stopped, finished cells kept); returns the
    previous handler (``None`` when it cannot be installed, e.g. outside the main thread)."""
    import signal

    def on_term(signum, frame):  # noqa: ARG001
        raise SweepInterrupted("SIGTERM")

    try:
        return signal.signal(signal.SIGTERM, on_term)
    except (ValueError, OSError):  # not the main thread
        return None


class SweepInterrupted(KeyboardInterrupt):
    """A sweep stopped by SIGTERM."""


def sweep(
    spec_path: Path,
    run_dir: Path | None = None,
    workers: int = 1,
    executor: str = "auto",
    address: str | None = None,
    dry_run: bool = False,
    quiet: bool = False,
    out: Console | None = None,
    err: Console | None = None,
    *,
    force: bool = False,
    list_all: bool = False,
    fakes_dir: Path | None = None,
) -> int:
    """Validate ``spec_path`` and its data, then run it (or summarise its cells); returns the exit
    status: 0 all cells done, 1 some failed, 130 / 143 interrupted by Ctrl-C / SIGTERM."""
    import signal

    from ..cli import print_error
    from .executors import make_executor
    from .runner import run_sweep
    from .spec import check_data
    from .store import DB_NAME, Store, check_store_file, prepare_run_dir

    out = out or Console()
    err = err or Console(stderr=True)
    spec = load_spec(spec_path, force=force)
    run_dir = Path(run_dir) if run_dir else Path("runs") / spec.name
    if run_dir.exists() and not run_dir.is_dir():
        prepare_run_dir(run_dir)  # raises the one-line error
    check_store_file(run_dir / DB_NAME)  # a foreign or corrupt store: refused before any work
    ex = None if dry_run else make_executor(executor, workers, address)
    check_data(spec)
    if fakes_dir is not None and Path(fakes_dir).exists() and not Path(fakes_dir).is_dir():
        raise ConfigError(f"--fakes {excerpt(fakes_dir, 120)} is a file, not a folder; give a folder (it is created if missing)")
    if dry_run:
        print_cells(spec, run_dir, out, list_all=list_all)
        return 0
    previous = _install_sigterm()
    previous_int = signal.getsignal(signal.SIGINT)
    try:
        summary = run_sweep(spec, run_dir, ex, progress=not quiet, console=err, force=force, fakes_dir=fakes_dir)
    except KeyboardInterrupt as exc:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not break the message
        kept = 0
        try:
            if check_store_file(run_dir / DB_NAME):
                with Store(run_dir, readonly=True) as st:
                    kept = len(st.done_keys() & {c.key for c in spec.cells})
        except Exception:  # noqa: BLE001 - only for the message
            pass
        what = "SIGTERM" if isinstance(exc, SweepInterrupted) else "Ctrl-C"
        print_error(
            f"interrupted by {what}: the sweep and its workers stopped; {kept} of {len(spec.cells)} cells are finished and kept in "
            f"{excerpt(run_dir, 120)}; run the same command again to resume", err,
        )
        return 143 if isinstance(exc, SweepInterrupted) else 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        try:  # the Ctrl-C handler set above must not outlive the call (a process that goes on, e.g.
            # a test runner, would ignore Ctrl-C, and so would every process it starts afterwards)
            signal.signal(signal.SIGINT, previous_int if previous_int is not None else signal.default_int_handler)
        except (ValueError, OSError):  # not the main thread
            pass
    out.print(
        f"{summary.total} cells: {summary.done} run now, {summary.skipped} already done, {len(summary.failed)} failed "
        f"({summary.seconds:.1f} s, {ex.name}); results in {excerpt(run_dir, 120)}/results.sqlite — "
        f"`recpoison report {excerpt(run_dir, 120)}` for tables",
        highlight=False, soft_wrap=True, markup=False,
    )
    for key, label, error in summary.failed:
        err.print(f"[red]failed[/] {key} {escape(label)}: {escape(one_line(error), None)}", highlight=False, soft_wrap=True)
    return 1 if summary.failed else 0


def report(run_dir: Path, out_dir: Path | None = None, out: Console | None = None) -> int:
    from .report import make_report

    out = out or Console()
    rep = make_report(run_dir, out_dir)
    for t in rep["tables"]:
        rt = Table(title=escape(f"{t.title}: {t.metric}", 200), title_justify="left")
        rt.add_column("attack")
        for s in t.cols:
            rt.add_column(f"{s * 100:g}%", justify="right")
        for r in t.rows:
            rt.add_row(escape(r, 80), *[t.text(r, s) for s in t.cols])
        out.print(rt)
    out.print(f"mean ± std over targets and seeds; written: {', '.join(excerpt(p, 200) for p in rep['files'])}", highlight=False, soft_wrap=True, markup=False)
    if rep["failed"]:
        out.print(f"{len(rep['failed'])} failed cells are listed in report.md", highlight=False)
    return 0


def demo_spec(seed: int, attacks: tuple, sizes: tuple) -> SweepSpec:
    """examples/demo.yaml with the seed replaced; the same grid built in code where examples/ is absent."""
    f = EXAMPLES / "demo.yaml"
    if f.is_file():
        return load_spec(f, overrides={"seed": [seed]})
    raw = {"name": "demo", "axes": {"dataset": "ml-100k", "victim": "mf", "attack": list(attacks), "attack_size": list(sizes),
                                    "n_filler": 20, "n_targets": 5, "seed": seed}, "metrics": {"k": 10}}
    return parse_spec(raw, source="demo")


def results_in_order(spec: SweepSpec, run_dir: Path) -> list[dict]:
    """``run_cell`` result dicts of the spec's finished cells, in the spec's cell order."""
    from .store import Store

    with Store(run_dir, readonly=True) as st:
        res = {c["key"]: c["result"] for c in st.cells(status="done")}
    missing = [c.key for c in spec.cells if c.key not in res]
    if missing:
        raise ConfigError(f"{excerpt(run_dir, 120)}: {len(missing)} cells have no result")
    return [res[c.key] for c in spec.cells]
