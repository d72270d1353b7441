"""Where the cells of a sweep run: inline, in local worker processes, or on a Ray cluster.

The unit of work is a *task*: a list of cells that share a clean victim (same data set, seed, victim
and victim parameters), run one after the other with one :class:`~recpoison.pipeline.CellCache`, so
the data set is loaded, split and the clean victim trained once per task. When there are fewer such
groups than worker slots, the largest groups are split in halves until every slot has a task (each
half then trains its own copy of the clean victim: one extra fit buys one more busy core).

Every executor calls ``on_outcome(outcome)`` in the parent process once per cell, as soon as the
parent learns of it; only the parent writes the results store. An *outcome* is a plain dict:
``{key, status: 'done'|'failed', started, finished, result, error}``.

- :class:`InlineExecutor` runs the tasks in this process.
- :class:`ProcessExecutor` runs them in ``workers`` processes (``concurrent.futures`` with the
  'spawn' start method: no fork of a process holding torch threads); each worker uses
  ``cores // workers`` torch threads. Workers send each cell's outcome back through a queue as it
  finishes, so a killed sweep loses only the cells in flight.
- :class:`RayExecutor` submits one Ray task per task-list (``ray`` imported only here, lazily). A
  Ray task returns its outcomes when the whole list is done, so on Ray the unit lost to a kill is one
  task-list rather than one cell.
"""

from __future__ import annotations

import os
import queue as queue_mod
import time
import traceback
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from ..errors import ConfigError
from ..text import short

Outcome = dict
Task = list  # list of (key, params) pairs


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def n_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def plan_tasks(cells: Sequence, slots: int) -> list[Task]:
    """Group ``cells`` (spec.Cell) by shared clean victim; where that gives fewer tasks than
    ``slots``, split each group into its series (cells that differ only in attack size, kept
    together so that a prefix-stable attack's smaller sizes are served from its larger run), one
    task each, so that a worker that finishes takes the next series instead of idling while another
    runs the expensive attacks (the seed-001 grid is one group: halving it gave one worker the five
    optimised attacks and the other the cheap ones); then split the largest tasks in halves until
    there are at least ``slots`` (or every task is a single cell). Deterministic."""
    groups: dict[str, list] = {}
    for c in cells:
        groups.setdefault(c.group(), []).append((c.key, c.params))
    tasks = list(groups.values())
    if len(tasks) < slots:
        tasks = [series for group in tasks for series in _series(group)]
    while len(tasks) < slots:
        i = max(range(len(tasks)), key=lambda j: len(tasks[j]), default=None)
        if i is None or len(tasks[i]) < 2:
            break
        t = tasks.pop(i)
        half = (len(t) + 1) // 2
        tasks[i:i] = [t[:half], t[half:]]
    return tasks


def _series(group: list) -> list[list]:
    """The cells of ``group`` by everything but their attack size, in first-seen order."""
    from .spec import canonical_json

    out: dict[str, list] = {}
    for key, params in group:
        out.setdefault(canonical_json({k: v for k, v in params.items() if k != "attack_size"}), []).append((key, params))
    return list(out.values())


def _error_text(exc: BaseException) -> str:
    from ..text import one_line

    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return one_line(f"{type(exc).__name__}: {msg}" if msg else type(exc).__name__)


def run_task(task: Task, emit: Callable[[Outcome], None] | None = None, fakes_dir: str | None = None) -> list[Outcome]:
    """Run the cells of one task with one shared CellCache (fake profiles also kept in
    ``fakes_dir``); a failing cell does not stop the rest. The larger attack sizes run first, so that
    a prefix-stable attack's smaller sizes are served from the larger run."""
    from ..pipeline import CellCache, CellSpec, run_cell

    cache = CellCache(fakes_dir)
    outcomes = []
    for key, params in sorted(task, key=lambda kp: -float(kp[1].get("attack_size", 0.0))):
        started = now_iso()
        t0 = time.perf_counter()
        try:
            res = run_cell(CellSpec(**params), cache)
            res["seconds"]["total"] = round(time.perf_counter() - t0, 4)
            out = {"key": key, "status": "done", "started": started, "finished": now_iso(), "result": res, "error": None}
        except Exception as exc:  # noqa: BLE001 - recorded as a failed cell, the sweep goes on
            out = {
                "key": key, "status": "failed", "started": started, "finished": now_iso(), "result": None,
                "error": _error_text(exc), "traceback": traceback.format_exc(limit=8),
            }
        outcomes.append(out)
        if emit is not None:
            emit(out)
    return outcomes


class InlineExecutor:
    """Run every task in this process, one after the other."""

    name = "inline"
    slots = 1
    #: where the tasks keep fake profiles (set by the sweep runner to RUN/fakes); None: memory only
    fakes_dir: str | None = None

    def run(self, tasks: list[Task], on_outcome: Callable[[Outcome], None]) -> None:
        for task in tasks:
            run_task(task, on_outcome, self.fakes_dir)


# ---------------------------------------------------------------------------------- processes
_QUEUE = None
#: seconds between a worker's checks that its parent is still alive
PARENT_CHECK_S = 1.0


def die_with_parent(parent_pid: int) -> None:
    """Make this (worker) process end when ``parent_pid`` ends, however it ends (even SIGKILL).

    On Linux the kernel delivers SIGKILL to this process when its parent dies
    (``prctl(PR_SET_PDEATHSIG)``); everywhere a daemon thread also checks every
    :data:`PARENT_CHECK_S` seconds that the parent is still this process's parent and exits at
    once otherwise (covering a parent that died before the prctl call, and other systems).
    """
    import sys
    import threading

    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            PR_SET_PDEATHSIG = 1
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - no prctl: the thread below still works
            pass
    if os.getppid() != parent_pid:  # the parent died before the prctl call
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_S)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="recpoison-parent-watch", daemon=True).start()


def _worker_init(q, threads: int, parent_pid: int | None = None) -> None:
    global _QUEUE
    import signal

    # Ctrl-C reaches the whole process group: the parent alone handles it (and stops the workers)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent_pid is not None:
        die_with_parent(parent_pid)
    _QUEUE = q
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    import torch

    torch.set_num_threads(threads)


def stop_pool(pool) -> None:
    """Stop a ProcessPoolExecutor now: kill its workers (their cells in flight are lost; finished
    cells are already stored), cancel queued tasks and reap the processes."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for p in procs:
        try:
            p.kill()
        except (OSError, ValueError, AttributeError):
            pass
    try:
        pool.shutdown(wait=False, cancel_futures=True)
    except Exception:  # noqa: BLE001 - best effort while interrupted
        pass
    for p in procs:
        try:
            p.join(timeout=5)
        except (OSError, ValueError, AssertionError):
            pass


def _worker_task(task: Task, fakes_dir: str | None = None) -> list[Outcome]:
    return run_task(task, _QUEUE.put, fakes_dir)


class ProcessExecutor:
    """Run tasks in ``workers`` local processes ('spawn' context), each with cores // workers threads."""

    name = "processes"
    fakes_dir: str | None = None

    def __init__(self, workers: int, threads: int | None = None) -> None:
        if workers < 1:
            raise ConfigError(f"--workers {workers} must be at least 1")
        self.slots = self.workers = workers
        self.threads = threads or max(1, n_cores() // workers)

    def run(self, tasks: list[Task], on_outcome: Callable[[Outcome], None]) -> None:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context("spawn")
        q = ctx.Queue()
        seen: set[str] = set()

        def deliver(o: Outcome) -> None:
            if o["key"] not in seen:
                seen.add(o["key"])
                on_outcome(o)

        pool = ProcessPoolExecutor(
            max_workers=min(self.workers, max(1, len(tasks))), mp_context=ctx, initializer=_worker_init,
            initargs=(q, self.threads, os.getpid()),
        )
        try:
            pending = {pool.submit(_worker_task, t, self.fakes_dir): t for t in tasks}
            while pending:
                try:
                    deliver(q.get(timeout=0.2))
                    continue
                except queue_mod.Empty:
                    pass
                for fut in [f for f in pending if f.done()]:
                    task = pending.pop(fut)
                    exc = fut.exception()
                    if exc is None:  # the returned outcomes cover any still in the queue's pipe
                        for o in fut.result():
                            deliver(o)
                    else:  # the worker died (e.g. killed, out of memory): its unfinished cells fail
                        for key, _ in task:
                            deliver({"key": key, "status": "failed", "started": now_iso(), "finished": now_iso(),
                                     "result": None, "error": f"worker process failed: {_error_text(exc)}"})
        except BaseException:  # Ctrl-C, SIGTERM or a store error: stop the workers now, keep what is stored
            stop_pool(pool)
            q.close()
            q.cancel_join_thread()
            raise
        pool.shutdown(wait=True)
        while True:  # drain what arrived after the last future completed
            try:
                deliver(q.get_nowait())
            except queue_mod.Empty:
                break


# ---------------------------------------------------------------------------------- ray
def _ray_task(task: Task, threads: int, fakes_dir: str | None = None) -> list[Outcome]:
    import torch

    torch.set_num_threads(threads)
    return run_task(task, fakes_dir=fakes_dir)


def import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("the Ray executor needs Ray, which is not installed: pip install 'recpoison[ray]' (or pip install 'ray[default]'), or use --executor processes") from None
    return ray


class RayExecutor:
    """Run tasks as Ray tasks (one CPU each) on the cluster at ``address``.

    ``address``: ``auto`` (a running local cluster, ``ray start --head``), ``ray://host:10001`` (Ray
    Client) or ``local`` (start a private local instance). If Ray is already initialised in this
    process (as in the tests), that instance is used. Workers must have recpoison installed.
    """

    name = "ray"
    #: a folder the Ray workers can write (shared storage on a cluster); unwritable: memory only
    fakes_dir: str | None = None

    def __init__(self, address: str | None = "auto", slots: int | None = None) -> None:
        self.ray = import_ray()
        self.address = address
        if not self.ray.is_initialized():
            kw: dict[str, Any] = {"ignore_reinit_error": True, "log_to_driver": False}
            if address and address != "local":
                kw["address"] = address
            try:
                self.ray.init(**kw)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ConfigError(f"cannot connect to Ray at {short(address)}: {_error_text(exc)}; start one with `ray start --head` or use --address local") from None
        self.slots = slots or max(1, int(self.ray.cluster_resources().get("CPU", 1)))

    def run(self, tasks: list[Task], on_outcome: Callable[[Outcome], None]) -> None:
        ray = self.ray
        remote = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
        refs = {remote.remote(t, 1, self.fakes_dir): t for t in tasks}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=1.0)
            for ref in done:
                try:
                    outcomes = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a dead worker fails its cells, the sweep goes on
                    outcomes = [{"key": k, "status": "failed", "started": now_iso(), "finished": now_iso(), "result": None,
                                 "error": f"ray task failed: {_error_text(exc)}"} for k, _ in refs[ref]]
                for o in outcomes:
                    on_outcome(o)


def make_executor(kind: str, workers: int = 1, address: str | None = None):
    """``auto`` = inline for one worker, processes for more; ``inline`` | ``processes`` | ``ray``."""
    if workers < 1:
        raise ConfigError(f"--workers {workers} must be at least 1")
    if workers > 100_000:
        raise ConfigError(f"--workers {workers} is absurd; use the number of cores (or Ray task slots) you have")
    if kind == "auto":
        kind = "inline" if workers == 1 else "processes"
    if kind == "inline":
        return InlineExecutor()
    if kind == "processes":
        if workers > 8 * n_cores():
            raise ConfigError(f"--workers {workers} is more than 8 processes per core ({n_cores()} cores here); use at most {8 * n_cores()}")
        return ProcessExecutor(workers)
    if kind == "ray":
        return RayExecutor(address or "auto", slots=workers if workers > 1 else None)
    raise ConfigError(f"--executor {short(kind)}: use auto, inline, processes or ray")
