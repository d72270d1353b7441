"""Seed 001's Table-1 claims checked on a run of examples/seed001_table1_each.yaml (each target alone).

Usage: python examples/seed001_claims.py [RUN_DIR] [--extra RUN_DIR ...]

Prints, from the run's results store (read only), Table 1 as mean HR@10 over the targets per attack
and size, then one row per claim of seed 001 (§5.2 and §7.2) and size: the two means and the
per-target counts "first higher / first lower" (ties are the rest). ``--extra`` adds the cells of
other runs on the same targets (e.g. examples/seed001_table1_studies.yaml), named
``attack[param=value]``.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from pathlib import Path

import numpy as np

#: (first, second, claim as seed 001 states it)
CLAIMS = [
    ("u-tna", "none", "§5.2: the S-attack variants promote the target with few fake users"),
    ("s-tna-rand", "none", "§5.2: (same)"),
    ("s-tna-inf", "none", "§5.2: (same)"),
    ("s-tna-inf", "pga", "§5.2: the S-attack variants outperform the baselines in most cases"),
    ("s-tna-inf", "sgld", "§5.2: (same)"),
    ("u-tna", "pga", "§5.2: (same)"),
    ("u-tna", "sgld", "§5.2: (same)"),
    ("s-tna-inf", "u-tna", "§5.2: S-TNA-Inf outperforms U-TNA"),
    ("s-tna-inf", "s-tna-rand", "Table 1: S-TNA-Inf above S-TNA-Rand at every size"),
    ("weighting", "s-tna-inf", "§7.2 (Tables 1 and 4): weighting the users improves on S-TNA-Inf"),
]


def load(run: Path) -> dict[tuple[str, float], np.ndarray]:
    """``(name, attack size) -> HR@10 per target`` for the done cells of ``run``."""
    con = sqlite3.connect(f"file:{run / 'results.sqlite'}?mode=ro", uri=True)
    out = {}
    for params, result in con.execute("select params, result from cells where status = 'done'"):
        p, r = json.loads(params), json.loads(result)
        extra = p.get("attack_params") or {}
        extra = {k: v for k, v in extra.items() if not (p["attack"] == "pga" and k == "fillers")}
        name = p["attack"] + ("[" + ",".join(f"{k}={v}" for k, v in sorted(extra.items())) + "]" if extra else "")
        out[(name, float(p["attack_size"]))] = np.asarray(r["hr_per_target_after"], dtype=float)
    con.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run", nargs="?", default="runs/seed001_table1_each")
    ap.add_argument("--extra", nargs="*", default=[])
    args = ap.parse_args()
    hr = load(Path(args.run))
    for extra in args.extra:
        hr.update(load(Path(extra)))
    sizes = sorted({s for _, s in hr})
    names = list(dict.fromkeys(n for n, _ in sorted(hr, key=lambda k: k[0])))
    order = ["none", "random", "average", "bandwagon", "pga", "sgld", "u-tna", "s-tna-rand", "s-tna-inf", "weighting"]
    names = [n for n in order if n in names] + [n for n in names if n not in order]
    print("| attack | " + " | ".join(f"{100 * s:g}%" for s in sizes) + " |")
    print("| --- |" + " ---: |" * len(sizes))
    for n in names:
        print(f"| {n} | " + " | ".join(f"{hr[(n, s)].mean():.4f}" if (n, s) in hr else "-" for s in sizes) + " |")
    print()
    print("| claim | first vs second | " + " | ".join(f"{100 * s:g}%" for s in sizes) + " |")
    print("| --- | --- |" + " --- |" * len(sizes))
    claims = CLAIMS + [(n, "s-tna-inf", "study (not a claim of the paper)") for n in names if "[" in n]
    for a, b, text in claims:
        cells = []
        for s in sizes:
            if (a, s) not in hr or (b, s) not in hr:
                cells.append("-")
                continue
            x, y = hr[(a, s)], hr[(b, s)]
            cells.append(f"{x.mean():.3f} vs {y.mean():.3f} ({int((x > y).sum())} / {int((x < y).sum())})")
        print(f"| {text} | {a} vs {b} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
