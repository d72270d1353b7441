"""Every registered victim on MovieLens-100K: fit time, time per epoch, leave-one-out HR@10 / NDCG@10, RMSE.

Usage::

    python benchmarks/victims.py [--victims wrmf,mostpop] [--repeat 1] [--k 10] [--seed 0]
                                 [--threads 1,2] [--device cpu,cuda]
    python benchmarks/victims.py --matched [--threads 1,2] [--repeat 3]
    python benchmarks/victims.py --overhead [--victims mf] [--repeat 3]

Protocol (exactly as ``recpoison.pipeline.run_cell``): each user's latest rating is held out
(``leave_one_out`` with ``derive_rng(seed, "split")``), the model is fitted on the rest with its
default (paper) settings and ``seed = derive_seed(seed, "victim")``, and each user's top-K list
ranks every item unseen in training (``recommend``). HR@K and NDCG@K come from
``recpoison.metrics.loo_accuracy_from_topk``. RMSE is measured on the held-out ratings, for the
models that predict ratings (``predicts_ratings``). The "random" row is the expected HR@K of a
random ranking, K / n_items.

Times: ``fit`` is the wall-clock median over ``--repeat`` fits, ``cpu`` the median CPU time of this
process over the same fits (``time.process_time``: less sensitive to other jobs on a shared
machine, but it counts every thread, so with two threads it can exceed the wall time),
``per epoch`` the fit's wall time divided by its epochs (ALS sweeps for mf / wrmf). Each
``--threads`` value runs the whole table with ``torch.set_num_threads(n)`` and the training loops on
n threads (``recpoison.threads.set_training_threads(n)``, what ``recpoison run --threads n`` does;
MF's ALS and WRMF stay on one thread, see docs/victims.md). The load average of the machine
is printed before and after: other jobs slow every number down.

``--device cpu,cuda`` fits the torch victims on each device and prints the times side by side
(a device that is not present is reported as such, not silently replaced).

``--matched``: the LightGCN cell matched with a peer library (docs/victims.md): ML-100K, ratings
>= 4 as implicit feedback (LightGCN's ``threshold`` on the leave-one-out training part), 2 layers,
d 64, 30 epochs, batch 2048, lr 5e-3, reg 1e-4; clean fit + random attack with 1% fake users +
poisoned fit + evaluation, i.e. one ``run_cell``. Prints the in-process wall time of the cell
(data loading included), and the wall time of the same cell as a fresh ``recpoison run`` process
(imports included).

``--overhead``: the per-cell overhead of ``recpoison run`` (imports, loading, splitting, attack,
evaluation): a fresh process's wall time minus its clean and poisoned fits, median of ``--repeat``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np
import torch

from recpoison import datasets
from recpoison.errors import ConfigError
from recpoison.metrics import loo_accuracy_from_topk
from recpoison.seeding import derive_rng, derive_seed
from recpoison.splits import leave_one_out
from recpoison.threads import set_training_threads
from recpoison.victims import VICTIMS, make

TORCH_VICTIMS = ("autorec", "cdae", "gmf", "lightgcn", "mf", "ncf", "nsvd")
MATCHED = {"n_layers": 2, "d": 64, "epochs": 30, "batch_size": 2048, "lr": 5e-3, "reg": 1e-4, "threshold": 4.0}


def load_line() -> str:
    a, b, c = os.getloadavg()
    return f"load average {a:.2f} {b:.2f} {c:.2f} ({os.cpu_count()} CPUs)"


def epochs_of(model) -> int | None:
    c = model.config
    for name in ("epochs", "sweeps", "iterations"):
        if hasattr(c, name):
            return int(getattr(c, name))
    return None


def fit_timed(name: str, params: dict, train, repeat: int):
    walls, cpus = [], []
    model = None
    for _ in range(max(1, repeat)):
        model = make(name, **params)
        t, c = time.perf_counter(), time.process_time()
        model.fit(train)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return model, statistics.median(walls), statistics.median(cpus)


def table(args, names, split) -> None:
    users = np.arange(split.train.n_normal)
    test_users = split.test_users
    print(f"| victim | feedback | fit (s) | cpu (s) | per epoch (s) | HR@{args.k} | NDCG@{args.k} | RMSE |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in names:
        params = {"seed": derive_seed(args.seed, "victim")}
        model, wall, cpu = fit_timed(name, params, split.train, args.repeat)
        acc = loo_accuracy_from_topk(model.recommend(users, args.k), split.test_items, users)
        rmse = ""
        if getattr(model, "predicts_ratings", False):
            pred = model.score(test_users)[np.arange(len(test_users)), split.test_items[test_users]]
            rmse = f"{np.sqrt(np.mean((pred - split.test_ratings[test_users]) ** 2)):.4f}"
        ep = epochs_of(model)
        per_epoch = f"{wall / ep:.4f}" if ep else "-"
        print(
            f"| {name} | {model.feedback} | {wall:.2f} | {cpu:.2f} | {per_epoch} | {acc['hr']:.4f} | "
            f"{acc['ndcg']:.4f} | {rmse} |",
            flush=True,
        )
    print(f"| random | - | - | - | - | {args.k / split.train.n_items:.4f} | - | |")


def devices(args, names, split) -> None:
    devs = [d for d in args.device.split(",") if d]
    names = [n for n in names if n in TORCH_VICTIMS]
    users = np.arange(split.train.n_normal)
    print("| victim | " + " | ".join(f"{d} fit (s) | {d} HR@{args.k}" for d in devs) + " |")
    print("| --- | " + " | ".join("---: | ---:" for _ in devs) + " |")
    for name in names:
        cells = []
        for d in devs:
            params = {"seed": derive_seed(args.seed, "victim"), "device": d}
            try:
                model, wall, _ = fit_timed(name, params, split.train, args.repeat)
            except ConfigError as exc:
                cells.append(f"absent ({exc}) | -")
                continue
            if d == "cuda":
                torch.cuda.synchronize()
            hr = loo_accuracy_from_topk(model.recommend(users, args.k), split.test_items, users)["hr"]
            cells.append(f"{wall:.2f} | {hr:.4f}")
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def matched(args) -> None:
    from recpoison.pipeline import CellSpec, run_cell

    spec = CellSpec(dataset="ml-100k", victim="lightgcn", attack="random", attack_size=0.01,
                    seed=args.seed, victim_params=dict(MATCHED))
    walls, cpus, res = [], [], None
    for _ in range(max(1, args.repeat)):
        t, c = time.perf_counter(), time.process_time()
        res = run_cell(spec)
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    stages = ", ".join(f"{k} {v:.2f}" for k, v in res["seconds"].items())
    print(f"matched LightGCN cell, in process: wall {statistics.median(walls):.2f} s, CPU {statistics.median(cpus):.2f} s "
          f"(median of {len(walls)}: {', '.join(f'{w:.2f}' for w in walls)}); stages: {stages}")
    print(f"  accuracy HR@10 before/after {res['accuracy_before']['hr']:.4f} / {res['accuracy_after']['hr']:.4f}; "
          f"target HR@10 before/after {res['hr_before']:.4f} / {res['hr_after']:.4f}; {res['n_fake']} fake users")
    if args.no_process:
        return
    exe = os.path.join(os.path.dirname(sys.executable), "recpoison")
    cmd = [exe, "run", "--victim", "lightgcn", "--attack", "random", "--attack-size", "0.01", "--seed", str(args.seed), "--json",
           "--threads", str(torch.get_num_threads())]
    cmd += [x for k, v in MATCHED.items() for x in ("--victim-param", f"{k}={v}")]
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()))
    walls = []
    for _ in range(max(1, args.repeat)):
        t = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
        walls.append(time.perf_counter() - t)
    total = json.loads(out)["seconds"]["total"]
    print(f"matched LightGCN cell as a fresh `recpoison run` process (imports included): wall "
          f"{statistics.median(walls):.2f} s (median of {len(walls)}; the cell itself {total:.2f} s)")
    print(f"  command: OMP_NUM_THREADS={env['OMP_NUM_THREADS']} recpoison run {' '.join(cmd[2:])}")


def overhead(args) -> None:
    """Per-cell overhead: a fresh ``recpoison run`` process's wall time minus its two fits."""
    exe = os.path.join(os.path.dirname(sys.executable), "recpoison")
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()))
    for victim in [n for n in args.victims.split(",") if n] or ["mf"]:
        cmd = [exe, "run", "--victim", victim, "--seed", str(args.seed), "--json"]
        rows = []
        for _ in range(max(1, args.repeat)):
            t = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
            wall = time.perf_counter() - t
            sec = json.loads(out)["seconds"]
            fits = sec.get("fit_clean", 0.0) + sec.get("fit_poisoned", 0.0)
            rows.append((wall, fits, sec))
        wall, fits, sec = sorted(rows, key=lambda r: r[0] - r[1])[len(rows) // 2]
        rest = ", ".join(f"{k} {v:.2f}" for k, v in sec.items() if k not in ("fit_clean", "fit_poisoned", "total"))
        print(f"`recpoison run --victim {victim}`: process wall {wall:.2f} s, fits {fits:.2f} s, overhead "
              f"{wall - fits:.2f} s (median of {len(rows)}; in the cell: {rest})")
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch"], check=True, env=env)
    print(f"  for reference, `python -c 'import torch'` alone: {time.perf_counter() - t:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--victims", default="", help="comma-separated names (default: every registered victim)")
    ap.add_argument("--repeat", type=int, default=1, help="fits per victim; the median time is reported")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", default="", help="comma-separated torch thread counts, e.g. 1,2 (default: torch's)")
    ap.add_argument("--device", default="", help="cpu,cuda: fit the torch victims on each device, side by side")
    ap.add_argument("--matched", action="store_true", help="time the matched LightGCN cell instead")
    ap.add_argument("--no-process", action="store_true", help="--matched: skip the fresh-process run")
    ap.add_argument("--overhead", action="store_true",
                    help="time a fresh `recpoison run` (default victim mf, or --victims) outside its fits")
    args = ap.parse_args()
    names = [n for n in args.victims.split(",") if n] or sorted(VICTIMS.names())
    for n in names:
        VICTIMS.entry(n)  # unknown names fail before any work
    threads = [int(x) for x in args.threads.split(",") if x] or [torch.get_num_threads()]
    print(f"torch {torch.__version__}; {load_line()}")
    split = None
    if not (args.matched or args.overhead):
        data = datasets.load("ml-100k")
        split = leave_one_out(data, derive_rng(args.seed, "split"))
        print(f"ML-100K {data.shape}, {data.nnz} ratings, leave-one-out (seed {args.seed}), "
              f"{len(split.test_users)} test users; repeat {args.repeat}")
    for n in threads:
        torch.set_num_threads(n)
        set_training_threads(n)
        print(f"\n{n} torch thread(s):\n")
        if args.matched:
            matched(args)
        elif args.overhead:
            overhead(args)
        elif args.device:
            devices(args, names, split)
        else:
            table(args, names, split)
        print(f"\n{load_line()}", flush=True)


if __name__ == "__main__":
    main()
