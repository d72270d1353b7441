"""Time the detection stage of one cell on ML-100K: what a detector adds to a cell (fit + flag).

Usage: OMP_NUM_THREADS=1 python benchmarks/detection.py [--repeat 3] [--attack average] [--size 0.03]

For each detector: the training data (supervised detectors: 800 fake users of the attack, generated
in batches of the cell's size, + 800 normal users; recpoison.detect.training), the fit, and the
flagging of the poisoned data, each the median over the repeats, plus the features of all users
alone. The victim's retraining after removal is the victim's fit time (docs/victims.md), not counted.
Prints a Markdown table and the machine's load average (the timings are wall time).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from recpoison import attacks, datasets, detect
from recpoison.detect.features import FEATURES, SEED001_FEATURES, profile_features
from recpoison.detect.training import training_contexts
from recpoison.metrics import detection_rates


def timed(fn, repeat):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--attack", default="average")
    ap.add_argument("--size", type=float, default=0.03)
    args = ap.parse_args()
    data = datasets.load("ml-100k")
    rng = np.random.default_rng(0)
    targets = np.sort(rng.choice(data.n_items, 5, replace=False))
    n_fake = round(args.size * data.n_users)
    poisoned = data.append_users(attacks.make(args.attack).generate(data, targets, n_fake, 20, rng))
    print(f"load average before: {os.getloadavg()[0]:.2f}; ML-100K + {n_fake} {args.attack} fake users, {args.repeat} repeats")
    t_feat, _ = timed(lambda: profile_features(poisoned, FEATURES), args.repeat)
    t_six, _ = timed(lambda: profile_features(poisoned, SEED001_FEATURES), args.repeat)
    print(f"\nfeatures of {poisoned.n_users} users: all eight {t_feat:.3f} s; the SVM's six {t_six:.3f} s\n")
    print("| detector | training data (s) | fit (s) | flag (s) | total (s) | FPR | FNR |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name in ("svm", "svm-tia", "pca", "perfect", "random"):
        det = detect.make(name)
        if det.supervised:
            t_gen, (ctx, _) = timed(lambda: training_contexts(data, [args.attack], 5, 20, n_fake, targets, seed=1), args.repeat)
            t_fit, det = timed(lambda: detect.make(name).fit([c for c, _ in ctx], [y for _, y in ctx]), args.repeat)
        else:
            t_gen = 0.0
            t_fit, det = timed(lambda: detect.make(name).fit(poisoned), args.repeat)
        t_flag, mask = timed(lambda: det.flag(poisoned), args.repeat)
        r = detection_rates(mask, poisoned.is_fake)
        print(f"| {name} | {t_gen:.3f} | {t_fit:.3f} | {t_flag:.3f} | {t_gen + t_fit + t_flag:.3f} | {r['fpr']:.4f} | {r['fnr']:.4f} |")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
