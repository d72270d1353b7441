"""Run a validated sweep into a run folder: skip finished cells, execute the rest, record each one.

``run_sweep(spec, run_dir, executor)``: opens ``RUN_DIR/results.sqlite`` (see :mod:`.store`), drops
the cells whose key is already stored with status 'done' (resume), plans the rest into tasks
(:func:`.executors.plan_tasks`), hands them to the executor, and writes each outcome in its own
transaction as it arrives, with a Rich progress bar (done / failed / time left) on stderr. A failing
cell is recorded as 'failed' with its error and the sweep goes on; failed cells are retried by the
next run of the same command.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .spec import SweepSpec
from .store import Store, code_version


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


def run_sweep(
    spec: SweepSpec,
    run_dir: str | Path,
    executor: Any = None,
    *,
    progress: bool = True,
    console: Any = None,
) -> SweepSummary:
    """Run the cells of ``spec`` not yet done in ``run_dir``; returns counts and the failures."""
    from .executors import InlineExecutor, plan_tasks

    executor = executor or InlineExecutor()
    run_dir = Path(run_dir)
    t0 = time.perf_counter()
    with Store(run_dir) as store:
        if spec.raw:  # the spec as run (overrides applied; metrics.k folded into axes.k), for the report
            import yaml

            (run_dir / "spec.yaml").write_text(yaml.safe_dump(spec.raw, sort_keys=False))
        done = store.done_keys()
        todo = [c for c in spec.cells if c.key not in done]
        summary = SweepSummary(run_dir=run_dir, total=len(spec.cells), skipped=len(spec.cells) - len(todo))
        if not todo:
            summary.seconds = time.perf_counter() - t0
            return summary
        version = code_version()
        by_key = {c.key: c for c in todo}
        tasks = plan_tasks(todo, getattr(executor, "slots", 1))

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
            task_id = bar.add_task(f"{spec.name} ({executor.name})", total=len(todo), ok=0, bad=0)

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
