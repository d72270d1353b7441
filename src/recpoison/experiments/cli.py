"""The ``recpoison sweep`` and ``recpoison report`` commands (wired into :mod:`recpoison.cli`),
and the sweep behind ``recpoison demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ..errors import ConfigError
from .spec import SweepSpec, load_spec, parse_spec

#: examples/ of a source checkout (``pip install -e .``); absent from an installed wheel.
EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def _fmt(x: Any) -> str:
    return f"{x:g}" if isinstance(x, float) else str(x)


def print_cells(spec: SweepSpec, run_dir: Path, console: Console) -> None:
    """The ``--dry-run`` listing: one row per cell, with its status in ``run_dir`` if any."""
    from .store import DB_NAME, Store

    done: set[str] = set()
    if (run_dir / DB_NAME).exists():
        with Store(run_dir, readonly=True) as st:
            done = st.done_keys()
    varying = [n for n, v in spec.axes.items() if len(v) > 1]
    shown = list(dict.fromkeys(["dataset", "victim", "attack", "attack_size", "seed", "k"] + varying))
    n_done = len(done & {c.key for c in spec.cells})
    console.print(f"{spec.name}: {len(spec.cells)} cells, {n_done} already done in {run_dir}", highlight=False, soft_wrap=True)
    for i, c in enumerate(spec.cells, 1):
        desc = " ".join(f"{n}={_fmt(c.params[n])}" for n in shown)
        console.print(f"{i:>5}  {c.key}  {'done  ' if c.key in done else 'to run'}  {desc}", highlight=False, soft_wrap=True, markup=False)


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
) -> int:
    """Validate ``spec_path``, then run it (or list its cells); returns the exit status."""
    from .executors import make_executor
    from .runner import run_sweep

    out = out or Console()
    err = err or Console(stderr=True)
    spec = load_spec(spec_path)
    run_dir = Path(run_dir) if run_dir else Path("runs") / spec.name
    if dry_run:
        print_cells(spec, run_dir, out)
        return 0
    ex = make_executor(executor, workers, address)
    summary = run_sweep(spec, run_dir, ex, progress=not quiet, console=err)
    out.print(
        f"{summary.total} cells: {summary.done} run now, {summary.skipped} already done, {len(summary.failed)} failed "
        f"({summary.seconds:.1f} s, {ex.name}); results in {run_dir}/results.sqlite — `recpoison report {run_dir}` for tables",
        highlight=False, soft_wrap=True,
    )
    for key, label, error in summary.failed:
        err.print(f"[red]failed[/] {key} {label}: {error}", highlight=False, soft_wrap=True)
    return 1 if summary.failed else 0


def report(run_dir: Path, out_dir: Path | None = None, out: Console | None = None) -> int:
    from .report import make_report, to_markdown

    out = out or Console()
    rep = make_report(run_dir, out_dir)
    for t in rep["tables"]:
        rt = Table(title=f"{t.title}: {t.metric}", title_justify="left")
        rt.add_column("attack")
        for s in t.cols:
            rt.add_column(f"{s * 100:g}%", justify="right")
        for r in t.rows:
            rt.add_row(r, *[t.text(r, s) for s in t.cols])
        out.print(rt)
    out.print(f"mean ± std over targets and seeds; written: {', '.join(str(p) for p in rep['files'])}", highlight=False, soft_wrap=True)
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
        raise ConfigError(f"{run_dir}: {len(missing)} cells have no result")
    return [res[c.key] for c in spec.cells]
