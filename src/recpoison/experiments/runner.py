"""Run a validated sweep into a run folder: skip finished cells, execute the rest, record each one.

``run_sweep(spec, run_dir, executor)``: opens ``RUN_DIR/results.sqlite`` (see :mod:`.store`), drops
the cells whose key is already stored with status 'done' (resume), plans the rest into tasks
(:func:`.executors.plan_tasks`), hands them to the executor, and writes each outcome in its own
transaction as it arrives, with a Rich progress bar (done / failed / time left) on stderr. A failing
cell is recorded as 'failed' with its error and the sweep goes on; failed cells are retried by the
next run of the same command.

Guards (docs/experiments.md, "Run folders"): the folder is locked for the whole run
(:func:`.store.lock_run_dir`: a second sweep into it is refused), and a folder that holds another
spec's run is refused, naming the first difference, unless ``force``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import RunDirError
from ..text import excerpt
from .spec import SweepSpec, canonical_json
from .store import DB_NAME, Store, check_store_file, code_version, lock_run_dir, prepare_run_dir


@dataclass
class SweepSummary:
    run_dir: Path
    total: int
    skipped: int = 0
    done: int = 0
    failed: list = field(default_factory=list)  # (key, label, error)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed


def _first_difference(a: Any, b: Any, place: str = "") -> str | None:
    """Where two plain documents first differ, as ``place: X there, Y here`` (``None``: equal)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            where = f"{place}.{k}" if place else str(k)
            if k not in b:
                return f"{where}: {excerpt(canonical_json(a[k]))} there, absent from this spec"
            if k not in a:
                return f"{where}: absent there, {excerpt(canonical_json(b[k]))} in this spec"
            d = _first_difference(a[k], b[k], where)
            if d:
                return d
        return None
    if canonical_json(a) != canonical_json(b):
        return f"{place or 'the spec'}: {excerpt(canonical_json(a))} there, {excerpt(canonical_json(b))} in this spec"
    return None


def check_same_spec(spec: SweepSpec, run_dir: Path) -> None:
    """Refuse a run folder that holds another spec's run (its ``spec.yaml`` differs, or its store
    has finished cells that are not cells of ``spec``), naming the folder and the difference."""
    import yaml

    from ..yamlio import load_yaml

    label = excerpt(run_dir, 120)
    hint = "use another --run-dir, or --force to add this spec's cells to that folder"
    f = run_dir / "spec.yaml"
    if f.is_file() and spec.raw:
        try:
            there = load_yaml(f.read_text(encoding="utf-8"), source=str(f))
        except Exception:  # noqa: BLE001 - unreadable: cannot tell, so refuse
            raise RunDirError(f"{label} holds a spec.yaml that cannot be read, so it may be another run; {hint}") from None
        here = yaml.safe_load(yaml.safe_dump(spec.raw, sort_keys=False))
        try:
            diff = _first_difference(there, here)
        except (TypeError, ValueError):
            diff = "spec.yaml"
        if diff:
            raise RunDirError(f"{label} holds a run of a different spec ({diff}); {hint}")
        return
    if check_store_file(run_dir / DB_NAME):
        with Store(run_dir, readonly=True) as st:
            extra = st.done_keys() - {c.key for c in spec.cells}
        if extra:
            raise RunDirError(f"{label} holds {len(extra)} finished cells that are not cells of this spec; {hint}")


def run_sweep(
    spec: SweepSpec,
    run_dir: str | Path,
    executor: Any = None,
    *,
    progress: bool = True,
    console: Any = None,
    force: bool = False,
    fakes_dir: str | Path | None = None,
) -> SweepSummary:
    """Run the cells of ``spec`` not yet done in ``run_dir``; returns counts and the failures.

    The folder is locked while the sweep runs; a folder holding a different spec's run is refused
    unless ``force`` (see :func:`check_same_spec`). Fake profiles are kept in ``fakes_dir``
    (default ``run_dir/fakes``) and reused by every cell, resumption or sweep that needs the same
    attack run (:class:`~recpoison.pipeline.CellCache`).
    """
    from .executors import InlineExecutor

    executor = executor or InlineExecutor()
    run_dir = Path(run_dir)
    t0 = time.perf_counter()
    prepare_run_dir(run_dir)
    with lock_run_dir(run_dir):
        if not force:
            check_same_spec(spec, run_dir)
        return _run_locked(spec, run_dir, executor, progress, console, t0, Path(fakes_dir) if fakes_dir else run_dir / "fakes")


def _run_locked(spec: SweepSpec, run_dir: Path, executor: Any, progress: bool, console: Any, t0: float, fakes_dir: Path) -> SweepSummary:
    from .executors import plan_tasks

    with Store(run_dir) as store:
        if spec.raw:  # the spec as run (overrides applied; metrics.k folded into axes.k), for the report
            import yaml

            (run_dir / "spec.yaml").write_text(yaml.safe_dump(spec.raw, sort_keys=False), encoding="utf-8")
        done = store.done_keys()
        todo = [c for c in spec.cells if c.key not in done]
        summary = SweepSummary(run_dir=run_dir, total=len(spec.cells), skipped=len(spec.cells) - len(todo))
        if not todo:
            summary.seconds = time.perf_counter() - t0
            return summary
        version = code_version()
        by_key = {c.key: c for c in todo}
        tasks = plan_tasks(todo, getattr(executor, "slots", 1))
        # fake profiles outlive the workers: resumed sweeps and other workers reuse them
        executor.fakes_dir = str(fakes_dir)

        bar = task_id = None
        if progress:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            bar = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("[green]{task.fields[ok]} done[/] [red]{task.fields[bad]} failed[/]"),
                TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                console=console or Console(stderr=True),
            )
            bar.start()
            from ..text import escape

            task_id = bar.add_task(f"{escape(spec.name, 40)} ({executor.name})", total=len(todo), ok=0, bad=0)

        def on_outcome(o: dict) -> None:
            cell = by_key[o["key"]]
            store.write_cell(
                cell.key, cell.params, status=o["status"], code_version=version, started=o["started"],
                finished=o["finished"], result=o.get("result"), error=o.get("error"),
            )
            if o["status"] == "done":
                summary.done += 1
            else:
                summary.failed.append((cell.key, cell.label(), o.get("error")))
            if bar is not None:
                bar.update(task_id, advance=1, ok=summary.done, bad=len(summary.failed))

        try:
            executor.run(tasks, on_outcome)
        finally:
            if bar is not None:
                bar.stop()
    summary.seconds = time.perf_counter() - t0
    return summary
