"""Declarative sweeps: YAML spec -> grid of cells -> executor -> SQLite results store -> report.

- :mod:`.spec` reads and validates a spec (``load_spec``) into cells with stable keys;
- :mod:`.store` is the crash-safe results store ``RUN_DIR/results.sqlite``;
- :mod:`.executors` runs cells inline, in local processes or on Ray;
- :mod:`.runner` ties them together with resume and a progress bar (``run_sweep``);
- :mod:`.report` turns a store into tables, plots and an HTML page (``make_report``).

See docs/experiments.md.
"""

from .spec import Cell, SweepSpec, cell_key, load_spec, parse_spec

__all__ = ["Cell", "SweepSpec", "cell_key", "load_spec", "parse_spec", "run_sweep", "make_report"]


def __getattr__(name):  # lazy: keep `import recpoison.experiments` light
    if name == "run_sweep":
        from .runner import run_sweep

        return run_sweep
    if name == "make_report":
        from .report import make_report

        return make_report
    raise AttributeError(name)
