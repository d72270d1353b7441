"""Every registered victim on MovieLens-100K: fit time, leave-one-out HR@10 / NDCG@10, RMSE.

Usage: python benchmarks/victims.py [--victims wrmf,mostpop] [--repeat 1] [--k 10] [--seed 0]

Protocol (exactly as ``recpoison.pipeline.run_cell``): each user's latest rating is held out
(``leave_one_out`` with ``derive_rng(seed, "split")``), the model is fitted on the rest with its
default (paper) settings and ``seed = derive_seed(seed, "victim")``, and each user's top-K list
ranks every item unseen in training (``recommend``). HR@K and NDCG@K come from
``recpoison.metrics.loo_accuracy_from_topk``. RMSE is measured on the held-out ratings, for the
models that predict ratings (``predicts_ratings``). The "random" row is the expected HR@K of a
random ranking, K / n_items. Fit time is the median over ``--repeat`` fits (wall clock; the
machine may be shared, so treat it as indicative). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from recpoison import datasets
from recpoison.metrics import loo_accuracy_from_topk
from recpoison.seeding import derive_rng, derive_seed
from recpoison.splits import leave_one_out
from recpoison.victims import VICTIMS, make


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--victims", default="", help="comma-separated names (default: every registered victim)")
    ap.add_argument("--repeat", type=int, default=1, help="fits per victim; the median time is reported")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    names = [n for n in args.victims.split(",") if n] or sorted(VICTIMS.names())
    for n in names:
        VICTIMS.entry(n)  # unknown names fail before any work
    data = datasets.load("ml-100k")
    split = leave_one_out(data, derive_rng(args.seed, "split"))
    users = np.arange(split.train.n_normal)
    test_users = split.test_users
    print(
        f"ML-100K {data.shape}, {data.nnz} ratings, leave-one-out (seed {args.seed}), {len(test_users)} test users; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads; repeat {args.repeat}"
    )
    print()
    print(f"| victim | feedback | fit (s) | HR@{args.k} | NDCG@{args.k} | RMSE |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    for name in names:
        params = {"seed": derive_seed(args.seed, "victim")}
        times = []
        for _ in range(max(1, args.repeat)):
            model = make(name, **params)
            t = time.perf_counter()
            model.fit(split.train)
            times.append(time.perf_counter() - t)
        acc = loo_accuracy_from_topk(model.recommend(users, args.k), split.test_items, users)
        rmse = ""
        if getattr(model, "predicts_ratings", False):
            pred = model.score(test_users)[np.arange(len(test_users)), split.test_items[test_users]]
            rmse = f"{np.sqrt(np.mean((pred - split.test_ratings[test_users]) ** 2)):.4f}"
        print(
            f"| {name} | {model.feedback} | {statistics.median(times):.2f} | {acc['hr']:.4f} | "
            f"{acc['ndcg']:.4f} | {rmse} |",
            flush=True,
        )
    print(f"| random | - | - | {args.k / split.train.n_items:.4f} | - | |")


if __name__ == "__main__":
    main()
