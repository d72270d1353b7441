"""Crash safety: `recpoison sweep` killed with SIGKILL mid-way, then rerun, ends with the same table
as an uninterrupted run."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

from recpoison.experiments import load_spec, make_report, run_sweep
from recpoison.experiments.store import Store

SPEC = """\
name: killme
axes:
  dataset: synthetic
  victim: mf
  attack: [none, random, average, bandwagon, popular]
  attack_size: [0.02, 0.05]
  n_filler: 10
  n_targets: 3
  seed: [0, 1, 2]
  victim_params: {d: 8, sweeps: 20}
metrics:
  k: 10
"""


def n_done(run_dir):
    db = run_dir / "results.sqlite"
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=0.1)
        try:
            return con.execute("SELECT COUNT(*) FROM cells WHERE status = 'done'").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:  # tables not created yet
        return 0


def sweep_cmd(spec, run_dir):
    return [sys.executable, "-m", "recpoison.cli", "sweep", str(spec), "--run-dir", str(run_dir), "--quiet"]


def test_sigkill_mid_sweep_then_resume_gives_the_uninterrupted_table(tmp_path):
    spec_path = tmp_path / "killme.yaml"
    spec_path.write_text(SPEC)
    spec = load_spec(spec_path)
    total = len(spec.cells)
    assert total == 30
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"

    proc = subprocess.Popen(sweep_cmd(spec_path, killed), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while n_done(killed) < 3 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    after_kill = n_done(killed)
    assert 3 <= after_kill < total, f"the kill did not land mid-sweep ({after_kill}/{total} cells done)"
    with Store(killed, readonly=True) as st:  # whatever was committed is whole: a row per cell and its metrics
        m = st.metrics()
        assert len(m) == after_kill and all("hr_after" in v for v in m.values())

    r = subprocess.run(sweep_cmd(spec_path, killed), env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"{total - after_kill} run now, {after_kill} already done, 0 failed" in r.stdout

    whole = tmp_path / "whole"
    run_sweep(spec, whole, progress=False)
    with Store(killed, readonly=True) as a, Store(whole, readonly=True) as b:
        assert a.metrics() == b.metrics()
        assert a.counts() == b.counts() == {"done": total}
    md = lambda d: (make_report(d)["out_dir"] / "report.md").read_text().split("\n", 3)[3]  # drop the run folder line
    assert md(killed) == md(whole)
