"""What the attacker knows: full or partial views of the training data (seed 001 §5.3).

Seed 001 §5.3 (partial knowledge): "we view the user-item rating matrix as a bipartite graph ... we
construct the subset of ratings by selecting nodes (users and items) with increasing distance from
the target item (e.g., one-hop distance to the target item, then two-hop distance and so on) on the
bipartite graph until we reach the size of observed data."

:func:`partial_view` implements this as a breadth-first search from the target items. Hop ``h``
reveals every rating incident to a node at distance ``h - 1`` that is not revealed yet:

- hop 1: every rating of a target item (edges to the users at distance 1);
- hop 2: every other rating of those users (edges to the items at distance 2);
- hop 3: every rating of those items by users not reached yet, and so on.

Hops are added whole while the observed total stays below ``ceil(fraction * nnz)``; of the hop that
crosses the goal, a uniformly random subset of its new ratings (drawn with ``rng``) is kept so that
exactly ``ceil(fraction * nnz)`` ratings are observed. Every observed rating is therefore connected to
a target inside the observed graph itself. Departures / choices where the seed is silent: with
several targets the search starts from all of them at once (distance to the nearest target); when
the targets' connected component holds fewer ratings than asked, the view is that whole component
(fewer than ``fraction`` of the ratings) rather than ratings unreachable from the targets. The seed's
second partial-knowledge ingredient, not knowing ``d``, is an attack parameter, not a data view.

The returned :class:`Interactions` has the shape, ids and ``n_normal`` of the input with the
unobserved ratings removed, so attacks index users and items exactly as in the full data.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from .errors import ConfigError
from .interactions import Interactions

KNOWLEDGE_HELP = "use 'full' or 'partial:F' with F in (0, 1], e.g. 'partial:0.5'"


def parse_knowledge(spec: str) -> tuple[str, float]:
    """``"full"`` -> ``("full", 1.0)``; ``"partial:0.5"`` -> ``("partial", 0.5)``; else ConfigError."""
    if not isinstance(spec, str):
        raise ConfigError(f"knowledge {spec!r} is not a string; {KNOWLEDGE_HELP}")
    s = spec.strip().lower()
    if s == "full":
        return "full", 1.0
    kind, sep, value = s.partition(":")
    if kind == "partial" and sep:
        try:
            fraction = float(value)
        except ValueError:
            raise ConfigError(f"knowledge {spec!r}: {value!r} is not a number; {KNOWLEDGE_HELP}") from None
        if not (math.isfinite(fraction) and 0 < fraction <= 1):
            raise ConfigError(f"knowledge {spec!r}: the fraction must be in (0, 1]; {KNOWLEDGE_HELP}")
        return "partial", fraction
    raise ConfigError(f"unknown knowledge {spec!r}; {KNOWLEDGE_HELP}")


def partial_view(
    data: Interactions, fraction: float, targets: np.ndarray, rng: np.random.Generator
) -> Interactions:
    """The ratings reached by growing hops from ``targets`` until ``fraction`` of them is observed.

    See the module docstring for the exact hop rule and the random cut of the last hop.
    """
    if not 0 < fraction <= 1:
        raise ConfigError(f"partial knowledge: fraction {fraction} must be in (0, 1]")
    targets = np.unique(np.atleast_1d(np.asarray(targets, dtype=np.int64)))
    if targets.size == 0 or targets.min() < 0 or targets.max() >= data.n_items:
        raise ConfigError(f"partial knowledge: target indices must be in [0, {data.n_items})")
    m = data.matrix
    goal = min(m.nnz, int(math.ceil(fraction * m.nnz - 1e-9)))
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    cols = m.indices
    observed = np.zeros(m.nnz, dtype=bool)
    seen_users = np.zeros(m.shape[0], dtype=bool)
    seen_items = np.zeros(m.shape[1], dtype=bool)
    seen_items[targets] = True
    frontier_items = seen_items.copy()
    frontier_users = np.zeros(m.shape[0], dtype=bool)
    from_items = True
    while observed.sum() < goal:
        touch = frontier_items[cols] if from_items else frontier_users[rows]
        new = np.flatnonzero(touch & ~observed)
        if new.size == 0:
            break  # the targets' component is exhausted
        need = goal - int(observed.sum())
        if new.size > need:
            new = np.sort(rng.choice(new, size=need, replace=False))
        observed[new] = True
        if from_items:
            frontier_users = np.zeros_like(seen_users)
            frontier_users[rows[new]] = True
            frontier_users &= ~seen_users
            seen_users |= frontier_users
        else:
            frontier_items = np.zeros_like(seen_items)
            frontier_items[cols[new]] = True
            frontier_items &= ~seen_items
            seen_items |= frontier_items
        from_items = not from_items
    keep = np.flatnonzero(observed)
    sub = sp.csr_matrix((m.data[keep], (rows[keep], cols[keep])), shape=m.shape, dtype=np.float32)
    return data.with_matrix(sub, name=f"{data.name}[partial:{fraction:g}]")


def make_view(
    data: Interactions, spec: str, targets: np.ndarray, rng: np.random.Generator
) -> Interactions:
    """The attacker's view of ``data`` for a knowledge spec ``"full"`` or ``"partial:F"``."""
    kind, fraction = parse_knowledge(spec)
    if kind == "full":
        return data
    return partial_view(data, fraction, targets, rng)
