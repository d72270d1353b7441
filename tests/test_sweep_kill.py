"""A killed or interrupted multi-worker sweep leaves no process behind (issue 14, class 1).

Each test starts `recpoison sweep --workers 2` in its own session (its own process group), waits
until the workers have finished a few cells, records the sweep's whole process tree (workers and
multiprocessing's resource tracker) from /proc, then kills or interrupts the sweep and asserts that
every recorded process is gone. Only processes this test started are ever signalled: the sweep by
its PID, and at the end, as a safety net, the test's own process group.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process tree from /proc")

SPEC = """\
name: killtree
axes:
  dataset: synthetic
  victim: mf
  attack: [none, random, average, bandwagon, popular]
  attack_size: [0.02, 0.05]
  n_filler: 10
  n_targets: 3
  seed: [0, 1, 2]
  victim_params: {d: 8, sweeps: 40}
metrics:
  k: 10
"""
TOTAL = 30


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(parent pid, state, start time) of ``pid``, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            rest = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(rest[1]), rest[0], int(rest[19])


def descendants(root: int) -> dict[int, int]:
    """PID -> start time of every descendant of ``root``."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            st = _stat(int(d))
            if st:
                children.setdefault(st[0], []).append(int(d))
    out, todo = {}, [root]
    while todo:
        for c in children.get(todo.pop(), []):
            st = _stat(c)
            if st:
                out[c] = st[2]
                todo.append(c)
    return out


def alive(procs: dict[int, int]) -> list[int]:
    """The recorded processes still running (same PID and start time, not a zombie)."""
    out = []
    for pid, start in procs.items():
        st = _stat(pid)
        if st and st[2] == start and st[1] != "Z":
            out.append(pid)
    return out


def n_done(run: Path) -> int:
    try:
        con = sqlite3.connect(f"file:{run / 'results.sqlite'}?mode=ro", uri=True, timeout=0.2)
        try:
            return con.execute("SELECT COUNT(*) FROM cells WHERE status = 'done'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


@pytest.mark.parametrize("how", ["SIGKILL", "SIGTERM", "Ctrl-C"])
def test_killed_or_interrupted_sweep_leaves_no_process(tmp_path, how):
    spec = tmp_path / "killtree.yaml"
    spec.write_text(SPEC)
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # A child inherits ignored and blocked signals; the test runner's process may carry either (left
    # by a library or an earlier test), so the sweep starts from a shell's state: SIGINT handled by
    # default and unblocked, as from a terminal. What the runner's process had is kept for the message.
    inherited = (signal.getsignal(signal.SIGINT), sorted(signal.pthread_sigmask(signal.SIG_BLOCK, [])))
    reset = ("import os, signal, sys; signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT, signal.SIGTERM]);"
             " signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.executable, [sys.executable] + sys.argv[1:])")
    cmd = [sys.executable, "-c", reset, "-m", "recpoison.cli", "sweep", str(spec), "--run-dir", str(run), "--workers", "2", "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    pgid = proc.pid  # start_new_session: the sweep leads its own process group
    try:
        deadline = time.monotonic() + 120
        tree: dict[int, int] = {}
        while time.monotonic() < deadline and proc.poll() is None:
            tree.update(descendants(proc.pid))
            if n_done(run) >= 2 and len(tree) >= 2:
                break
            time.sleep(0.05)
        tree.update(descendants(proc.pid))
        assert proc.poll() is None, f"the sweep ended before the kill: {proc.communicate()}"
        before = n_done(run)
        try:
            with open(f"/proc/{proc.pid}/status") as fh:
                masks = [ln.strip() for ln in fh if ln.startswith(("SigBlk", "SigIgn", "SigCgt"))]
        except OSError:
            masks = []
        assert before < TOTAL and len(tree) >= 2, (before, tree)
        if how == "SIGKILL":
            proc.send_signal(signal.SIGKILL)
        elif how == "SIGTERM":
            proc.send_signal(signal.SIGTERM)
        else:  # a terminal's Ctrl-C: SIGINT to the whole foreground process group
            os.killpg(pgid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        end = time.monotonic() + 15
        while alive(tree) and time.monotonic() < end:
            time.sleep(0.1)
        survivors = alive(tree)
        assert not survivors, f"{how}: processes of the sweep survived: {survivors}"
        kept = n_done(run)
        assert kept >= before, "finished cells were lost"
        if how == "SIGKILL":
            assert proc.returncode == -signal.SIGKILL
        else:
            assert proc.returncode == (143 if how == "SIGTERM" else 130), (proc.returncode, err, out[-500:], before, masks, inherited)
            text = err.decode()
            assert "Traceback" not in text, text
            lines = [ln for ln in text.splitlines() if ln.strip()]
            assert len(lines) == 1 and lines[0].startswith(f"error: interrupted by {how}"), text
            assert f"{kept} of {TOTAL} cells are finished and kept" in lines[0] and "run the same command again" in lines[0]
    finally:
        try:
            os.killpg(pgid, signal.SIGKILL)  # only this test's own group, if anything is left
        except (ProcessLookupError, PermissionError):
            pass
        if proc.poll() is None:
            proc.wait(timeout=10)
