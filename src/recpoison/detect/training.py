"""Training data for supervised detectors, generated apart from the evaluated cell.

Seed 001 §6: "for each attack, we construct a training dataset consisting of 800 fake users generated
by the attack and 800 randomly sampled normal users". :func:`training_contexts` builds it from the
clean training data (the provider simulates the attack with full knowledge of its own data):

- the fake users are generated in batches of ``batch`` users (by default the cell's number of fake
  users), each batch by one of ``attacks`` in turn, with ``n_targets`` targets of its own drawn
  uniformly from the items that are *not* targets of the evaluated cell, and a random stream
  derived from the cell's seed under a name no other stage uses (``"detector-train"``): the
  detector never sees the fake users, nor the targets, it is scored on;
- each batch is appended on its own to the clean data (one *context*), so that its features are
  computed among as many fake users as a cell has (module docstring of :mod:`recpoison.detect.svm`);
- ``n_normal`` distinct normal users, a random sample, are labelled 0, spread over the contexts.

Labels per context: 1 = a generated fake user, 0 = a sampled normal user, -1 = the other normal users
(present for the item statistics, not training examples).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import attacks
from ..errors import ConfigError
from ..interactions import Interactions
from ..seeding import derive_rng


def training_contexts(
    clean: Interactions,
    attack_names: list[str],
    n_targets: int,
    n_filler: int,
    batch: int,
    exclude_targets: np.ndarray,
    seed: int,
    n_fake: int = 800,
    n_normal: int = 800,
    attack_params: dict[str, dict] | None = None,
    k: int | None = None,
) -> tuple[list[tuple[Interactions, np.ndarray]], dict[str, Any]]:
    """(contexts, info): the labelled training contexts and what they hold (module docstring)."""
    if not attack_names:
        raise ConfigError("a supervised detector needs at least one training attack")
    if batch < 1:
        raise ConfigError(f"training batch of {batch} fake users: must be at least 1")
    attack_params = attack_params or {}
    pool = np.setdiff1d(np.arange(clean.n_items), np.asarray(exclude_targets, dtype=np.int64))
    if len(pool) < n_targets:
        raise ConfigError(f"only {len(pool)} items are left for the detector's training targets; {n_targets} needed")
    n_batches = math.ceil(n_fake / batch)
    sizes = [min(batch, n_fake - b * batch) for b in range(n_batches)]
    rng0 = derive_rng(seed, "detector-train", "normal")
    normal_pick = rng0.permutation(clean.n_normal)[: min(n_normal, clean.n_normal)]
    normal_chunks = np.array_split(normal_pick, n_batches)
    made = {name: attacks.make(name, **attack_params.get(name, {})) for name in dict.fromkeys(attack_names)}
    contexts, used_targets = [], []
    for b, size in enumerate(sizes):
        name = attack_names[b % len(attack_names)]
        rng = derive_rng(seed, "detector-train", name, str(b))
        targets = np.sort(rng.choice(pool, size=n_targets, replace=False))
        fakes = made[name].generate(clean, targets, size, n_filler, rng, k=k)
        ctx = clean.append_users(fakes)
        y = np.full(ctx.n_users, -1, dtype=np.int8)
        y[clean.n_users :] = 1
        y[normal_chunks[b]] = 0
        contexts.append((ctx, y))
        used_targets.append(targets)
    info = {
        "attacks": list(attack_names),
        "n_fake": int(sum(sizes)),
        "n_normal": int(len(normal_pick)),
        "batch": int(batch),
        "targets": sorted({int(t) for ts in used_targets for t in ts}),
        "normal_users": np.sort(normal_pick),  # rows of ``clean``; not a result field (the pipeline pops it)
    }
    return contexts, info
