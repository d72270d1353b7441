"""The Ray executor against a local Ray instance started by the test (skipped without Ray)."""

import pytest

from recpoison.errors import ConfigError
from recpoison.experiments import load_spec, run_sweep
from recpoison.experiments.executors import InlineExecutor
from recpoison.experiments.store import Store

SPEC = """\
name: syn
axes:
  dataset: synthetic
  victim: mf
  attack: [none, random, average, bandwagon]
  attack_size: [0.02, 0.05]
  n_filler: 10
  n_targets: 3
  seed: [0, 1]
  victim_params: {d: 8, sweeps: 3}
metrics:
  k: 10
"""


@pytest.fixture
def spec_path(tmp_path):
    p = tmp_path / "syn.yaml"
    p.write_text(SPEC)
    return p


def metrics_of(run_dir):
    with Store(run_dir, readonly=True) as st:
        return st.metrics()


def test_ray_executor_gives_the_inline_results(spec_path, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'recpoison[ray]'); CI installs it")
    from recpoison.experiments.executors import RayExecutor

    spec = load_spec(spec_path)
    run_sweep(spec, tmp_path / "inline", InlineExecutor(), progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        ex = RayExecutor()
        assert ex.slots == 2
        s = run_sweep(spec, tmp_path / "ray", ex, progress=False)
    finally:
        ray.shutdown()
    assert s.ok and s.done == 16
    assert metrics_of(tmp_path / "ray") == metrics_of(tmp_path / "inline")


def test_ray_missing_is_a_clear_error(monkeypatch):
    import builtins

    from recpoison.experiments import executors

    real = builtins.__import__

    def no_ray(name, *a, **k):
        if name == "ray":
            raise ImportError("no ray")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ConfigError, match=r"pip install 'recpoison\[ray\]'"):
        executors.make_executor("ray", 1, "auto")
