"""The results store of a sweep: ``RUN_DIR/results.sqlite``.

Why SQLite: it is in the standard library (no extra dependency), one file inside the run folder that
can be copied or mailed, and transactional — a cell's row and its metrics are committed together, so a
process killed at any moment leaves either the whole cell or nothing (WAL journal mode: readers such as
``recpoison report`` never block the writer, and a crash never corrupts committed rows). DuckDB would
give faster analytics but is an extra dependency and our tables are small (one row per cell x metric).

Schema::

    cells(key TEXT PRIMARY KEY,   -- stable hash of the cell's canonical parameters (spec.cell_key)
          params TEXT,            -- JSON of the CellSpec keyword arguments
          status TEXT,            -- 'done' | 'failed'
          error TEXT,             -- 'ExceptionType: message' of a failed cell, else NULL
          code_version TEXT,      -- `git describe --always --dirty`, else the package version
          seed INTEGER,
          started TEXT, finished TEXT,   -- ISO-8601 UTC
          seconds TEXT,           -- JSON: wall time of each stage (load, split, fit_clean, attack, ...)
          result TEXT)            -- JSON: run_cell's whole result dict (for the CSV / JSON exports)
    metrics(key TEXT, name TEXT, value REAL, PRIMARY KEY (key, name))

Only the parent process of a sweep writes (one connection, one transaction per finished cell).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from ..errors import ConfigError, RunDirError
from ..text import excerpt, strict_json

SCHEMA = """
CREATE TABLE IF NOT EXISTS cells (
    key TEXT PRIMARY KEY,
    params TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    code_version TEXT,
    seed INTEGER,
    started TEXT,
    finished TEXT,
    seconds TEXT,
    result TEXT
);
CREATE TABLE IF NOT EXISTS metrics (
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (key, name)
);
"""

DB_NAME = "results.sqlite"
LOCK_NAME = ".lock"
#: the columns of each table of a recpoison store (a file without them is not one)
COLUMNS = {
    "cells": {"key", "params", "status", "error", "code_version", "seed", "started", "finished", "seconds", "result"},
    "metrics": {"key", "name", "value"},
}
#: Result entries that are parameters or bookkeeping, not metrics.
NOT_METRICS = {"targets", "target_index", "seconds", "victim_params", "attack_params", "detector_params", "detection_train", "defense_params"}


def code_version() -> str:
    """``git describe --always --dirty`` of the source tree if it is a git checkout, else the version."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--tags"],
            cwd=here, capture_output=True, text=True, timeout=10, check=True,
        )
        if out.stdout.strip():
            return "git:" + out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return "recpoison " + version("recpoison")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def flatten_metrics(result: dict[str, Any], param_names: Iterable[str]) -> dict[str, float]:
    """The numeric entries of a ``run_cell`` result as ``name -> value``.

    Nested dicts become ``outer.inner`` (``accuracy_after.hr``), lists of numbers ``name[i]``
    (``hr_per_target_after[0]``, in the order of ``result['targets']``); parameters are left out
    (they are in ``cells.params``). NaN is stored as NULL.
    """
    skip = set(param_names) | NOT_METRICS
    out: dict[str, float] = {}

    def put(name: str, v: Any) -> None:
        if isinstance(v, bool):
            out[name] = float(v)
        elif isinstance(v, (int, float)):
            out[name] = float(v)
        elif isinstance(v, dict):
            for k, x in v.items():
                put(f"{name}.{k}", x)
        elif isinstance(v, (list, tuple)):
            for i, x in enumerate(v):
                put(f"{name}[{i}]", x)

    for k, v in result.items():
        if k not in skip:
            put(k, v)
    return out


def _nan_to_none(x: float) -> float | None:
    return None if isinstance(x, float) and math.isnan(x) else x


def check_store_file(path: Path) -> bool:
    """Check, without writing to it, that ``path`` is a recpoison results store; ``False`` when it
    does not exist or is empty (a new store may be created there). Raises :class:`RunDirError`
    for a file that is corrupt, not SQLite, or SQLite without the store's tables."""
    label = excerpt(path, 120)
    if not path.exists():
        return False
    if not path.is_file():
        raise RunDirError(f"{label} is not a file; move it away or choose another --run-dir")
    try:
        size = path.stat().st_size
        if size == 0:
            return False
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise RunDirError(f"cannot read {label} ({exc.strerror or exc}); check its permissions") from None
    if head != b"SQLite format 3\x00":
        raise RunDirError(f"{label} is not a recpoison results store (not an SQLite database); it was left untouched: move it away or choose another --run-dir")
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            ok = all(
                t in tables and COLUMNS[t] <= {r[1] for r in conn.execute(f"PRAGMA table_info({t})")}
                for t in COLUMNS
            )
        finally:
            conn.close()
    except sqlite3.Error as exc:
        raise RunDirError(f"{label} is not a readable recpoison results store ({excerpt(exc, 80)}); it was left untouched: move it away or choose another --run-dir") from None
    if not ok:
        raise RunDirError(f"{label} is an SQLite database but not a recpoison results store (no cells / metrics tables); it was left untouched: move it away or choose another --run-dir")
    return True


def prepare_run_dir(run_dir: Path) -> None:
    """Create ``run_dir`` if needed and check that it is a writable folder (one clear error if not)."""
    label = excerpt(run_dir, 120)
    if run_dir.exists() and not run_dir.is_dir():
        raise RunDirError(f"run folder {label} is a file, not a folder; choose another --run-dir")
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise RunDirError(f"cannot create run folder {label}: a file is in the way; choose another --run-dir") from None
    except OSError as exc:
        raise RunDirError(f"cannot create run folder {label} ({exc.strerror or exc}); choose another --run-dir") from None
    if not os.access(run_dir, os.W_OK | os.X_OK):
        raise RunDirError(f"run folder {label} is not writable; choose another --run-dir or fix its permissions")


@contextmanager
def lock_run_dir(run_dir: Path):
    """Hold an exclusive lock on ``RUN_DIR/.lock`` while a sweep writes there; a second sweep into
    the same folder is refused at once (the lock dies with its process, even on SIGKILL)."""
    label = excerpt(run_dir, 120)
    path = run_dir / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise RunDirError(f"cannot create the lock file {excerpt(path, 120)} ({exc.strerror or exc}); choose another --run-dir") from None
    try:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            fcntl = None  # type: ignore[assignment]
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                try:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                except OSError:
                    holder = "?"
                raise RunDirError(
                    f"another sweep (pid {excerpt(holder, 20)}) is running in {label}; wait for it to finish, "
                    "or use another --run-dir"
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)


class Store:
    """A connection to ``RUN_DIR/results.sqlite`` (created on first use).

    An existing file is checked before anything is written to it (:func:`check_store_file`): a
    corrupt or foreign file is refused and left untouched.
    """

    def __init__(self, run_dir: str | Path, readonly: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / DB_NAME
        if readonly:
            if not self.run_dir.is_dir():
                raise ConfigError(f"{excerpt(self.run_dir, 120)}: no such run folder; give the folder a sweep wrote (runs/NAME)")
            if not check_store_file(self.path):
                raise ConfigError(f"{excerpt(self.run_dir, 120)}: no {DB_NAME} here; give the folder a sweep wrote (runs/NAME)")
            try:
                self.conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True)
                self.conn.execute("SELECT COUNT(*) FROM cells").fetchone()
            except sqlite3.Error as exc:
                raise RunDirError(f"cannot read {excerpt(self.path, 120)} ({excerpt(exc, 80)}); check the folder's permissions") from None
        else:
            prepare_run_dir(self.run_dir)
            check_store_file(self.path)
            try:
                self.conn = sqlite3.connect(self.path, isolation_level=None)  # explicit BEGIN/COMMIT
                self.conn.execute("PRAGMA journal_mode=WAL")
                self.conn.execute("PRAGMA synchronous=NORMAL")
                self.conn.executescript(SCHEMA)
            except sqlite3.Error as exc:
                raise RunDirError(f"cannot write the results store {excerpt(self.path, 120)} ({excerpt(exc, 80)}); choose another --run-dir") from None

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------------------ writing
    def write_cell(
        self,
        key: str,
        params: dict,
        *,
        status: str,
        code_version: str,
        started: str,
        finished: str,
        result: dict | None = None,
        error: str | None = None,
    ) -> None:
        """Record one finished cell (and its metrics) in one transaction; replaces an earlier try."""
        from .spec import canonical_json

        seconds = (result or {}).get("seconds", {})
        metrics = flatten_metrics(result, params) if result is not None else {}
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute("DELETE FROM metrics WHERE key = ?", (key,))
            c.execute(
                "INSERT OR REPLACE INTO cells (key, params, status, error, code_version, seed, started, finished, seconds, result)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key, canonical_json(params), status, error, code_version, int(params.get("seed", 0)),
                    started, finished, strict_json(seconds), strict_json(result) if result is not None else None,
                ),
            )
            c.executemany(
                "INSERT INTO metrics (key, name, value) VALUES (?, ?, ?)",
                [(key, n, _nan_to_none(v)) for n, v in sorted(metrics.items())],
            )
            c.execute("COMMIT")
        except BaseException:
            c.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------------------ reading
    def done_keys(self) -> set[str]:
        return {k for (k,) in self.conn.execute("SELECT key FROM cells WHERE status = 'done'")}

    def cells(self, status: str | None = None) -> Iterator[dict[str, Any]]:
        """Rows of ``cells`` as dicts (params / seconds / result decoded), ordered by key."""
        q = "SELECT key, params, status, error, code_version, seed, started, finished, seconds, result FROM cells"
        args: tuple = ()
        if status:
            q += " WHERE status = ?"
            args = (status,)
        for row in self.conn.execute(q + " ORDER BY key", args):
            key, params, st, error, ver, seed, started, finished, seconds, result = row
            yield {
                "key": key, "params": json.loads(params), "status": st, "error": error, "code_version": ver,
                "seed": seed, "started": started, "finished": finished,
                "seconds": json.loads(seconds) if seconds else {}, "result": json.loads(result) if result else None,
            }

    def metrics(self) -> dict[str, dict[str, float]]:
        """``key -> {metric name -> value}`` of the finished cells (NULL read back as NaN)."""
        out: dict[str, dict[str, float]] = {}
        q = "SELECT m.key, m.name, m.value FROM metrics m JOIN cells c ON c.key = m.key WHERE c.status = 'done'"
        for key, name, value in self.conn.execute(q):
            out.setdefault(key, {})[name] = float("nan") if value is None else value
        return out

    def counts(self) -> dict[str, int]:
        return dict(self.conn.execute("SELECT status, COUNT(*) FROM cells GROUP BY status").fetchall())
