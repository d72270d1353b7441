"""MF (seed 001 eq. 1) fit time on ML-100K: d = 64, 15 ALS sweeps.

Usage: python benchmarks/bench_mf.py [--repeat 5] [--dtype float32] [--threads N]
Prints one Markdown table row per setting: the median and best wall time of ``fit`` over the
repeats (the first, warm-up fit is not counted), and the final value of the eq. (1) objective.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from recpoison import datasets
from recpoison.victims import make


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dtype", default="float32,float64")
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--sweeps", type=int, default=15)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = datasets.load("ml-100k")
    print(f"ML-100K {data.shape}, {data.nnz} ratings; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("| dtype | d | sweeps | median fit (s) | best fit (s) | objective eq. (1) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for dtype in args.dtype.split(","):
        model = make("mf", d=args.d, sweeps=args.sweeps, dtype=dtype)
        model.fit(data)  # warm-up
        times = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            model.fit(data)
            times.append(time.perf_counter() - t)
        print(f"| {dtype} | {args.d} | {args.sweeps} | {statistics.median(times):.3f} | {min(times):.3f} | {model.loss():.1f} |")


if __name__ == "__main__":
    main()
