"""Paper-style reports from a run folder's results store (never from in-memory state).

``make_report(run_dir)`` reads the finished cells of ``RUN_DIR/results.sqlite`` and writes into
``RUN_DIR/report/``:

- ``report.md`` and ``report.csv``: one table per (data set, victim, K, other varying parameters)
  and metric, attack rows x attack-size columns, each entry ``mean ± std`` (sample standard
  deviation, ddof = 1; 0 for a single value). Target HR@K is averaged over targets *and* seeds (each
  target of each seed is one value, as seed 001 Table 1 averages over target items); accuracy over
  seeds; detection FPR / FNR (any metric named ``*fpr`` / ``*fnr``) over seeds.
- ``hr_<n>.png``: target HR@K after the attack against the attack size, one line per attack (error
  bars: std); ``detection_<n>.png``: FPR / FNR bars, only when such metrics exist.
- ``report.html``: the tables and plots on one page.
"""

from __future__ import annotations

import csv
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .store import Store

ROW_AXES = ("attack", "attack_params")
COL_AXIS = "attack_size"
POOLED = ("seed",)  # averaged over, with the targets


@dataclass
class Table:
    title: str
    metric: str
    rows: list[str]
    cols: list[float]
    cells: dict = field(default_factory=dict)  # (row, col) -> list of values

    def stat(self, row: str, col: float) -> tuple[float, float, int]:
        v = np.asarray([x for x in self.cells.get((row, col), []) if not math.isnan(x)], dtype=float)
        if v.size == 0:
            return float("nan"), float("nan"), 0
        return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0, int(v.size)

    def text(self, row: str, col: float, digits: int = 4) -> str:
        m, s, n = self.stat(row, col)
        return "–" if n == 0 else f"{m:.{digits}f} ± {s:.{digits}f}"


def _row_label(p: dict) -> str:
    return p["attack"] + (f" {json.dumps(p['attack_params'], sort_keys=True)}" if p["attack_params"] else "")


def _attack_order(run_dir: Path) -> list[str]:
    """Attack order of the spec copied into the run folder (falls back to alphabetical)."""
    import yaml

    try:
        raw = yaml.safe_load((run_dir / "spec.yaml").read_text())
        att = raw["axes"]["attack"]
        return [att] if isinstance(att, str) else [str(a) for a in att]
    except Exception:  # noqa: BLE001 - any problem: alphabetical order
        return []


def _metric_values(name: str, p: dict, m: dict[str, float]) -> list[float]:
    if name in ("hr_after", "hr_after_detection") and p.get("hr_definition", "per-target") != "any":
        # per target, so the std is over targets and seeds; with hr_definition any a cell has one
        # figure (a hit when any target of the set is in the top-K), kept in hr_after itself
        prefix = "hr_per_target_after[" if name == "hr_after" else "hr_per_target_after_detection["
        vals = [v for k, v in m.items() if k.startswith(prefix)]
        return vals if vals else [m.get(name, float("nan"))]
    return [m.get(name, float("nan"))]


def _metric_title(name: str, k: int) -> str:
    return {
        "hr_after": f"target HR@{k} after the attack",
        "accuracy_after.hr": f"accuracy HR@{k} (leave-one-out) after the attack",
        "accuracy_after.ndcg": f"accuracy NDCG@{k} after the attack",
        "hr_after_detection": f"target HR@{k} after removing the flagged users",
        "accuracy_after_detection.hr": f"accuracy HR@{k} (leave-one-out) after removing the flagged users",
        "detection.fpr": "detection FPR (normal users flagged / normal users)",
        "detection.fnr": "detection FNR (fake users missed / fake users)",
    }.get(name, name.replace("detection.phases.", "detection phase ").replace(".fpr", " FPR").replace(".fnr", " FNR"))


def build_tables(store: Store, run_dir: Path) -> list[Table]:
    cells = list(store.cells(status="done"))
    metrics = store.metrics()
    if not cells:
        return []
    params = [c["params"] for c in cells]
    names = list(dict.fromkeys(n for p in params for n in p))  # cells of older versions may lack newer fields
    fixed_out = set(ROW_AXES) | {COL_AXIS} | set(POOLED)
    varying = [n for n in names if n not in fixed_out and len({json.dumps(p.get(n), sort_keys=True) for p in params}) > 1]
    detection = sorted({n for m in metrics.values() for n in m if n.endswith(("fpr", "fnr"))})
    with_det = any("hr_after_detection" in m for m in metrics.values())
    metric_names = (["hr_after", "hr_after_detection", "accuracy_after.hr", "accuracy_after_detection.hr"] if with_det
                    else ["hr_after", "accuracy_after.hr"]) + detection
    order = _attack_order(run_dir)

    groups: dict[str, list[dict]] = {}
    for c in cells:
        p = c["params"]
        head = f"{p['victim']} on {p['dataset']}, K={p['k']}"
        extra = ", ".join(f"{n}={json.dumps(p.get(n), sort_keys=True) if isinstance(p.get(n), dict) else p.get(n)}" for n in varying if n not in ("victim", "dataset", "k"))
        groups.setdefault(head + (f", {extra}" if extra else ""), []).append(c)

    tables = []
    for title, members in sorted(groups.items()):
        rows = sorted({_row_label(c["params"]) for c in members},
                      key=lambda r: (order.index(r.split(" ")[0]) if r.split(" ")[0] in order else len(order), r))
        cols = sorted({c["params"][COL_AXIS] for c in members})
        k = members[0]["params"]["k"]
        for name in metric_names:
            t = Table(title=title, metric=_metric_title(name, k), rows=rows, cols=cols)
            for c in members:
                m = metrics.get(c["key"], {})
                t.cells.setdefault((_row_label(c["params"]), c["params"][COL_AXIS]), []).extend(_metric_values(name, c["params"], m))
            if (name in detection or "detection" in name) and all(t.stat(r, s)[2] == 0 for r in rows for s in cols):
                continue
            t.name = name  # type: ignore[attr-defined]
            tables.append(t)
    return tables


def _size(s: float) -> str:
    return f"{s * 100:g}%"


def to_markdown(t: Table) -> str:
    n = max((t.stat(r, s)[2] for r in t.rows for s in t.cols), default=0)
    lines = [f"### {t.title}: {t.metric}", "", f"mean ± std over targets and seeds (up to {n} value{'s' if n != 1 else ''} per entry); columns: fake users as a share of normal users", ""]
    lines.append("| attack | " + " | ".join(_size(s) for s in t.cols) + " |")
    lines.append("| --- | " + " | ".join("---:" for _ in t.cols) + " |")
    for r in t.rows:
        lines.append(f"| {r} | " + " | ".join(t.text(r, s) for s in t.cols) + " |")
    return "\n".join(lines) + "\n"


def _plot_hr(t: Table, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=110)
    x = np.asarray(t.cols, dtype=float) * 100
    span = (x.max() - x.min()) or 1.0
    # distinct colours for every attack (tab10 has grey at index 7, which "none" uses)
    palette = [c for j, c in enumerate(plt.get_cmap("tab10").colors) if j != 7] + list(plt.get_cmap("Dark2").colors)
    others = iter(palette)
    for i, r in enumerate(t.rows):
        dx = (i - (len(t.rows) - 1) / 2) * 0.008 * span  # dodge so the error bars do not overlap
        st = [t.stat(r, s) for s in t.cols]
        mean = np.array([a for a, _, _ in st])
        std = np.array([b for _, b, _ in st])
        style = dict(linestyle="--", color="grey") if r == "none" else dict(color=next(others))
        ax.errorbar(x + dx, mean, yerr=std, marker="o", capsize=3, label=r, **style)
    ax.set_xlabel("attack size (fake users, % of normal users)")
    ax.set_ylabel(t.metric.replace(" after the attack", ""))
    ax.set_title(t.title, fontsize=10)
    ax.set_xticks(x, [f"{v:g}%" for v in x])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _plot_detection(tables: list[Table], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    labels = [f"{r} {_size(s)}" for r in tables[0].rows for s in tables[0].cols]
    width = 0.8 / len(tables)
    for i, t in enumerate(tables):
        means = [t.stat(r, s)[0] for r in t.rows for s in t.cols]
        ax.bar(np.arange(len(labels)) + i * width, means, width, label=t.metric)
    ax.set_xticks(np.arange(len(labels)) + width * (len(tables) - 1) / 2, labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("rate")
    ax.set_title(tables[0].title, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def make_report(run_dir: str | Path, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Write the report files; returns ``{tables, files, failed}`` (``failed``: failed cells)."""
    import os

    from ..errors import ConfigError
    from ..text import excerpt

    run_dir = Path(run_dir)
    out = Path(out_dir) if out_dir else run_dir / "report"
    with Store(run_dir, readonly=True) as store:
        tables = build_tables(store, run_dir)
        failed = [(c["params"], c["error"]) for c in store.cells(status="failed")]
    if not tables:
        raise ConfigError(f"{excerpt(run_dir, 120)}: no finished cells to report yet; run `recpoison sweep SPEC --run-dir {excerpt(run_dir, 120)}` first")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {excerpt(out, 120)} is a file, not a folder; give a folder for the report files")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot create the report folder {excerpt(out, 120)} ({exc.strerror or exc}); give another --out") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise ConfigError(f"the report folder {excerpt(out, 120)} is not writable; give another --out")
    files: list[Path] = []

    md = ["# Sweep report", "", f"Run folder: `{run_dir}`", ""]
    for t in tables:
        md.append(to_markdown(t))
    if failed:
        md += ["## Failed cells", ""] + [f"- {p['victim']} {p['attack']} {p['attack_size']} seed {p['seed']}: {e}" for p, e in failed] + [""]
    (out / "report.md").write_text("\n".join(md))
    files.append(out / "report.md")

    with open(out / "report.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["table", "metric", "attack", "attack_size", "mean", "std", "n"])
        for t in tables:
            for r in t.rows:
                for s in t.cols:
                    m, sd, n = t.stat(r, s)
                    w.writerow([t.title, t.metric, r, s, m, sd, n])
    files.append(out / "report.csv")

    plots: list[tuple[str, Path]] = []
    titles = list(dict.fromkeys(t.title for t in tables))
    for i, title in enumerate(titles, 1):
        mine = [t for t in tables if t.title == title]
        hr = next(t for t in mine if t.name == "hr_after")  # type: ignore[attr-defined]
        p = out / f"hr_{i}.png"
        _plot_hr(hr, p)
        plots.append((title, p))
        det = [t for t in mine if t.name.endswith(("fpr", "fnr"))]  # type: ignore[attr-defined]
        if det:
            p = out / f"detection_{i}.png"
            _plot_detection(det, p)
            plots.append((title + ": detection", p))
    files += [p for _, p in plots]

    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>recpoison sweep report</title>",
             "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}table{border-collapse:collapse;margin:1em 0}"
             "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}td:first-child,th:first-child{text-align:left}</style>",
             f"</head><body><h1>Sweep report</h1><p>Run folder: <code>{html.escape(str(run_dir))}</code>; entries are mean ± std over targets and seeds.</p>"]
    for title in titles:
        parts.append(f"<h2>{html.escape(title)}</h2>")
        for t in (t for t in tables if t.title == title):
            parts.append(f"<h3>{html.escape(t.metric)}</h3><table><tr><th>attack</th>" + "".join(f"<th>{_size(s)}</th>" for s in t.cols) + "</tr>")
            for r in t.rows:
                parts.append(f"<tr><td>{html.escape(r)}</td>" + "".join(f"<td>{t.text(r, s)}</td>" for s in t.cols) + "</tr>")
            parts.append("</table>")
        for ptitle, p in plots:
            if ptitle.startswith(title):
                parts.append(f"<img src='{p.name}' alt='{html.escape(ptitle)}'>")
    if failed:
        parts.append("<h2>Failed cells</h2><ul>" + "".join(f"<li>{html.escape(p['attack'])} {p['attack_size']} seed {p['seed']}: {html.escape(str(e))}</li>" for p, e in failed) + "</ul>")
    parts.append("</body></html>")
    (out / "report.html").write_text("\n".join(parts))
    files.append(out / "report.html")
    return {"tables": tables, "files": files, "failed": failed, "out_dir": out}


def _param_value(params: dict, path: str) -> Any:
    """``attack`` or ``detector_params.train_attacks``: a cell parameter, dotted into dict parameters."""
    v: Any = params
    for part in path.split("."):
        if not isinstance(v, dict):
            return None
        v = v.get(part)
    return v


def pivot(run_dir: str | Path, rows: str, cols: str, metric: str, digits: int = 4, where: dict[str, str] | None = None) -> str:
    """A Markdown table of ``metric`` (mean ± std over the matching finished cells; over targets too for
    target HR) with one row per value of the parameter ``rows`` and one column per value of ``cols``
    (e.g. rows ``detector_params.train_attacks``, columns ``attack``, metric ``detection.fnr``: the
    detection transfer table). Values absent from a cell's parameters show as ``-``. ``where``: keep
    only the cells whose parameters have these values (``{"victim": "mf"}``; compared as text)."""
    from ..errors import ConfigError

    with Store(run_dir, readonly=True) as store:
        cells = list(store.cells(status="done"))
        metrics = store.metrics()
    if not cells:
        raise ConfigError(f"{run_dir}: no finished cells to report yet")
    known = sorted({n for m in metrics.values() for n in m if "[" not in n})
    if metric not in known:
        raise ConfigError(f"metric {metric!r} is not in {run_dir}; metrics there: {', '.join(known)}")
    table: dict[tuple[str, str], list[float]] = {}
    order_r: dict[str, None] = {}
    order_c: dict[str, None] = {}
    where = where or {}
    for name in where:
        if all(_param_value(c["params"], name) is None for c in cells):
            raise ConfigError(f"--where {name}=...: {name!r} is not a parameter of the cells in {run_dir}")
    cells = [c for c in cells if all(str(_param_value(c["params"], n)) == v for n, v in where.items())]
    if not cells:
        raise ConfigError(f"no finished cell of {run_dir} matches {', '.join(f'{n}={v}' for n, v in where.items())}")
    for c in cells:
        p = c["params"]
        r, k = _param_value(p, rows), _param_value(p, cols)
        r, k = ("-" if r is None else str(r)), ("-" if k is None else str(k))
        order_r.setdefault(r)
        order_c.setdefault(k)
        table.setdefault((r, k), []).extend(_metric_values(metric, p, metrics.get(c["key"], {})))
    if len(order_r) == 1 and "-" in order_r or len(order_c) == 1 and "-" in order_c:
        raise ConfigError(f"{rows!r} or {cols!r} is not a parameter of the cells in {run_dir}; use names such as attack, attack_size, detector, detector_params.train_attacks")
    t = Table(title=str(run_dir), metric=metric, rows=_ordered(run_dir, rows, order_r), cols=_ordered(run_dir, cols, order_c), cells=table)
    only = f" ({', '.join(f'{n}={v}' for n, v in where.items())})" if where else ""
    lines = [f"{metric}{only}: rows {rows}, columns {cols}; mean ± std over cells{' and targets' if metric.startswith('hr_after') else ''}", ""]
    lines.append(f"| {rows} \\ {cols} | " + " | ".join(t.cols) + " |")
    lines.append("| --- | " + " | ".join("---:" for _ in t.cols) + " |")
    for r in t.rows:
        lines.append(f"| {r} | " + " | ".join(t.text(r, k, digits) for k in t.cols) + " |")
    return "\n".join(lines) + "\n"


def _ordered(run_dir: str | Path, path: str, values: dict) -> list[str]:
    """The values of parameter ``path`` in the order the run folder's spec lists them (others after,
    sorted: numbers by value)."""
    import yaml

    listed: list[str] = []
    try:
        raw = yaml.safe_load((Path(run_dir) / "spec.yaml").read_text())
        head = path.split(".")[0]
        axis = raw.get("axes", {}).get(head)
        axis = axis if isinstance(axis, list) else [axis]
        listed = [str(_param_value({head: a}, path)) for a in axis]
    except Exception:  # noqa: BLE001 - no readable spec: sorted order
        pass

    def key(v: str):
        try:
            return (1, float(v), "")
        except ValueError:
            return (2, 0.0, v)

    first = [v for v in dict.fromkeys(listed) if v in values]
    return first + sorted((v for v in values if v not in first), key=key)
