"""What the attacker knows: full, partial (seed 001 §5.3) or partial and perturbed (seed 003 App. A.6)
views of the training data.

Partial view (``partial:F``). Seed 001 §5.3 (partial knowledge): "we view the user-item rating matrix as a bipartite graph ... we
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

Partial and perturbed view (``perturbed:F``; ``perturbed:F:P``; either with ``:random``): see
:func:`perturbed_view`. ``round(F * nnz)`` real interactions and ``nnz - round(F * nnz)`` (or
``round(P * nnz)``) perturbed ones (pairs the user did not interact with), seed 003's "90% of the
original data size real data and 10% ... perturbed data" for F = 0.9, drawn as App. A.6's random
walk does (``random``: the authors' code's other mode). It does not depend on the targets.
Composition with ``partial:F`` (a perturbed view of a partial view) is not offered.

The returned :class:`Interactions` has the shape, ids and ``n_normal`` of the input (unobserved
ratings removed, perturbed pairs added), so attacks index users and items exactly as in the full
data. The victim always trains on the full data: only the attacker sees a view
(:func:`recpoison.pipeline.run_cell`).
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from .errors import ConfigError
from .interactions import Interactions
from .text import short

KNOWLEDGE_HELP = ("use 'full', 'partial:F' or 'perturbed:F' (optionally 'perturbed:F:P' and/or ':random') with F in (0, 1] "
                  "and P in [0, 1], e.g. 'partial:0.5', 'perturbed:0.9' or 'perturbed:0.9:0.2:random'")
#: how the perturbed view draws its pairs: the paper's random walk (default) or the code's ``random``
PERTURBED_MODES = ("walk", "random")


def parse_knowledge(spec: str) -> tuple[str, float]:
    """``"full"`` -> ``("full", 1.0)``; ``"partial:0.5"`` -> ``("partial", 0.5)``;
    ``"perturbed:0.9"`` (and its longer forms) -> ``("perturbed", 0.9)``; else ConfigError."""
    kind, fraction, _, _ = parse_knowledge_mode(spec)
    return kind, fraction


def parse_knowledge_mode(spec: str) -> tuple[str, float, str | None, float | None]:
    """:func:`parse_knowledge` plus, for ``perturbed:F[:P][:MODE]``, the mode (``walk`` unless given)
    and the perturbed share ``P`` (``1 - F`` unless given); None for the other views."""
    if not isinstance(spec, str):
        raise ConfigError(f"knowledge {short(spec)} is not a string; {KNOWLEDGE_HELP}")
    s = spec.strip().lower()
    if s == "full":
        return "full", 1.0, None, None
    kind, sep, rest = s.partition(":")
    if kind not in ("partial", "perturbed") or not sep:
        raise ConfigError(f"unknown knowledge {short(spec)}; {KNOWLEDGE_HELP}")
    parts = rest.split(":")
    mode = "walk"
    if kind == "perturbed" and len(parts) > 1 and parts[-1] in PERTURBED_MODES:
        mode = parts.pop()
    if len(parts) > (2 if kind == "perturbed" else 1):
        raise ConfigError(f"knowledge {short(spec)}: too many values; {KNOWLEDGE_HELP}")
    try:
        values = [float(v) for v in parts]
    except ValueError:
        raise ConfigError(f"knowledge {short(spec)}: {short(rest)} is not a number (or a mode walk / random); {KNOWLEDGE_HELP}") from None
    fraction = values[0]
    if not (math.isfinite(fraction) and 0 < fraction <= 1):
        raise ConfigError(f"knowledge {short(spec)}: the fraction must be in (0, 1]; {KNOWLEDGE_HELP}")
    if kind == "partial":
        return kind, fraction, None, None
    share = values[1] if len(values) > 1 else None
    if share is not None and not (math.isfinite(share) and 0 <= share <= 1):
        raise ConfigError(f"knowledge {short(spec)}: the perturbed share must be in [0, 1]; {KNOWLEDGE_HELP}")
    return kind, fraction, mode, share


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


def perturbed_view(
    data: Interactions, fraction: float, rng: np.random.Generator, mode: str = "walk",
    perturbed_share: float | None = None,
) -> Interactions:
    """Seed 003 App. A.6: ``round(F * nnz)`` real interactions and ``nnz - round(F * nnz)`` perturbed
    pairs (never an interaction of ``data``), ``F = fraction``; no pair twice. ``perturbed_share``
    ``P`` (``perturbed:F:P``) asks for ``round(P * nnz)`` perturbed pairs instead, for §5.3's studies
    where the removed and the perturbed shares vary (``P = 0``: removal only). The walk's jump
    probability is ``1 - rho = P / (F + P)``, the perturbed share of what is recorded: ``1 - F``, the
    paper's ``rho = F`` ("the percentage of the partial data") for the default ``P = 1 - F`` (the
    code's ``jump_prop`` is a separate knob, 0.1 by default). Not composable with ``partial:F``.

    **The process** (App. A.6, and ``data_sampler`` of the authors' code, REFERENCES.md §2.2): "we use a
    random walk strategy ... from a user's perspective": at user ``u``, with probability ``rho = F``
    sample an item ``u`` clicked (a real pair), otherwise jump to a random item ``u`` has not clicked
    (a perturbed pair); "repeat until we have collected 90% of the original data size realistic data
    and 10% ... perturbed data". The paper describes only the user side "for simplicity"; the code's
    walk alternates user steps and item steps (at item ``i``: with probability ``rho`` a random user
    who clicked ``i``, else a random user who did not), walkers move on to the node reached (also
    after a jump), a pair is recorded only while its quota is open and only once. ``mode="walk"``
    (default) is that bipartite walk.

    **Vectorised sampler, and why it has the process's distribution.** Write ``pi_U`` / ``pi_I`` for
    the walk's stationary distribution at user / item steps and ``j_x`` for the jump probability of
    node ``x`` (``1 - rho``; 1 for a node without interactions, 0 for one that interacted with
    everything: no real / no perturbed step exists there). In the stationary regime each step
    is an independent draw: a user step traverses real edge ``(u, i)`` with probability
    ``pi_U(u)(1 - j_u)/d_u`` and emits the perturbed pair ``(u, j)`` with ``pi_U(u) j_u/(n_I - d_u)``
    for each ``j`` ``u`` did not click; item steps likewise, and the two kinds alternate. Hence

    * real part: the recorded real pairs are the first ``round(F nnz)`` *distinct* edges of an i.i.d.
      stream with edge weights ``w_ui = pi_U(u)(1 - j_u)/d_u + pi_I(i)(1 - j_i)/d_i``: successive
      sampling without replacement with probabilities proportional to ``w``, which the exponential race
      draws exactly in one pass (keys ``E_e / w_e`` with ``E_e ~ Exp(1)``; the ``n`` smallest keys;
      Efraimidis & Spirakis 2006). Without jumps (``P = 0``) ``pi_U ~ d_u`` on a connected graph and
      the weights are uniform: a uniform subset (a random walk's stationary flow is uniform over the
      edges); with jumps, edges of low-degree nodes weigh slightly more (jumps land on near-uniform
      nodes).
    * perturbed part: the first ``nnz - round(F nnz)`` distinct pairs of the i.i.d. stream of jump
      steps: the side is a user step with probability ``sum pi_U j_U / (sum pi_U j_U + sum pi_I j_I)``,
      the node ``x`` is drawn with probability ``~ pi(x) j_x``, the other end uniformly among the
      nodes ``x`` has not interacted with (drawn exactly, no rejection: the ``r``-th non-neighbour).
      Drawn in batches; duplicates are dropped keeping the first in draw order, as the process does.
    * The real and perturbed streams are independent: the jump decision at a step is a coin
      independent of the walker's position, so thinning the i.i.d. stream into its two kinds gives two
      independent i.i.d. streams; how they interleave and which quota fills first do not matter.

    ``pi_U``, ``pi_I`` are computed exactly, by power iteration of the two-step chain (sparse products,
    ``O(nnz)`` each). **Where it differs from the sequential process:** only in treating the steps as
    independent draws from the stationary distribution. The code's finite walk starts from 10% of the
    users drawn uniformly (a burn-in we leave out), consecutive steps of one walker share a node (a
    Markov correlation that changes which edges come first but not how often each is drawn in the
    long run), and the jump sides alternate with the steps where we draw them as independent coins.
    On ML-100K the walk takes ~2,700 steps per walker and forgets its start by about a factor
    ``rho`` per step (the jumps), so these effects are small; they are not modelled. A Monte Carlo
    comparison with a literal simulation of the code's walk (300 runs, planted 60 x 40 data, 303
    interactions): the expected number of real pairs per user and per item agree with correlation
    0.999, the perturbed ones within the simulation's noise; on a 16-interaction toy graph single
    pairs' inclusion probabilities differ by up to 0.05 (the walk's correlations matter there).

    ``mode="random"`` (the code's ``random`` strategy): each interaction is kept with probability
    ``F``, otherwise replaced by a uniformly random (user, item) non-interaction over the whole matrix
    that carries the replaced record's rating. Departure: exactly ``round(F nnz)`` are kept (a
    uniform subset) and the replacements are distinct, where the code's count is binomial and two
    equal replacements merge. (Seed 003 §5.1.5 itself says "randomly down-sample ... and add 10%
    ... randomly perturbed data", which reads like this mode; App. A.6 specifies the walk.)

    Ratings of perturbed pairs (explicit data; on implicit data every value is 1): ``walk``: a rating
    drawn uniformly from the pair's user's own ratings in ``data`` (from the item's when the user has
    none, from all ratings when neither has any); ``random``: the rating of the record it replaces.
    The code records a 0 for a perturbed pair, which its 0/1 matrix turns into a click.

    The view has the shape, ids and ``n_normal`` of ``data``; its users and items without any pair
    remain as empty rows and columns.
    """
    if not 0 < fraction <= 1:
        raise ConfigError(f"perturbed knowledge: fraction {fraction} must be in (0, 1]")
    if mode not in PERTURBED_MODES:
        raise ConfigError(f"perturbed knowledge: mode {short(mode)} must be one of {', '.join(PERTURBED_MODES)}")
    m = data.matrix.tocsr()
    n_u, n_i = m.shape
    nnz = m.nnz
    n_real = min(nnz, int(math.floor(fraction * nnz + 0.5)))
    n_pert = nnz - n_real if perturbed_share is None else int(math.floor(perturbed_share * nnz + 0.5))
    if perturbed_share is not None and not 0 <= perturbed_share <= 1:
        raise ConfigError(f"perturbed knowledge: perturbed share {perturbed_share} must be in [0, 1]")
    if n_pert > n_u * n_i - nnz:
        raise ConfigError(
            f"perturbed knowledge: {n_pert} perturbed pairs asked but {data.name} has only {n_u * n_i - nnz} "
            "non-interactions; use a larger fraction"
        )
    rows = np.repeat(np.arange(n_u), np.diff(m.indptr))
    empty = np.zeros(0, np.int64)
    if mode == "random":
        keep = np.sort(rng.choice(nnz, size=n_real, replace=False))
        gone = np.setdiff1d(np.arange(nnz), keep)
        gone = gone[rng.permutation(len(gone))]
        pu, pi_ = _distinct_pairs(m, n_pert, lambda b: _uniform_pairs(m, b, rng)) if n_pert else (empty, empty)
        # the replaced records' ratings (records drawn uniformly when P exceeds the removed share)
        extra = rng.integers(max(nnz, 1), size=max(0, n_pert - len(gone)))
        pv = m.data[np.concatenate([gone, extra]).astype(np.int64)[:n_pert]]
    else:
        pi_u, pi_i, j_u, j_i = _walk_stationary(m, n_pert / (n_real + n_pert) if n_real + n_pert else 0.0)
        d_u = np.diff(m.indptr)
        csc = m.tocsc()
        d_i = np.diff(csc.indptr)
        with np.errstate(divide="ignore", invalid="ignore"):
            w = pi_u[rows] * (1 - j_u[rows]) / d_u[rows] + pi_i[m.indices] * (1 - j_i[m.indices]) / d_i[m.indices]
            keys = rng.exponential(size=nnz) / w
        keys = np.nan_to_num(keys, nan=np.inf)
        keep = np.sort(np.argpartition(keys, n_real - 1)[:n_real]) if n_real < nnz else np.arange(nnz)
        if n_pert:
            pu, pi_ = _distinct_pairs(m, n_pert, lambda b: _jump_pairs(m, csc, pi_u * j_u, pi_i * j_i, b, rng))
        else:
            pu, pi_ = empty, empty
        pv = _own_ratings(m, csc, pu, pi_, rng)
    r = np.concatenate([rows[keep], pu])
    c = np.concatenate([m.indices[keep], pi_])
    v = np.concatenate([m.data[keep], pv]).astype(np.float32)
    sub = sp.csr_matrix((v, (r, c)), shape=m.shape, dtype=np.float32)
    label = f"perturbed:{fraction:g}" + (f":{perturbed_share:g}" if perturbed_share is not None else "") + (":random" if mode == "random" else "")
    return data.with_matrix(sub, name=f"{data.name}[{label}]")


def _walk_stationary(m: sp.csr_matrix, jump: float, tol: float = 1e-12, max_iter: int = 20_000):
    """Stationary distributions of the bipartite walk at its user steps and item steps, and the
    nodes' jump probabilities (``jump``; 1 without interactions; 0 with every possible one)."""
    n_u, n_i = m.shape
    b = m.copy()
    b.data = np.ones_like(b.data, dtype=np.float64)
    bt = b.T.tocsr()
    d_u = np.diff(b.indptr).astype(np.float64)
    d_i = np.diff(bt.indptr).astype(np.float64)
    j_u = np.where(d_u == 0, 1.0, np.where(d_u == n_i, 0.0, jump))
    j_i = np.where(d_i == 0, 1.0, np.where(d_i == n_u, 0.0, jump))

    def step(x, BT, d, j, n_other):  # distribution over the other side after one step
        with np.errstate(divide="ignore", invalid="ignore"):
            real = np.where(d > 0, x * (1 - j) / d, 0.0)
            z = np.where(d < n_other, x * j / (n_other - d), 0.0)
        return BT @ real + (z.sum() - BT @ z)

    x = (d_u + 1.0) / (d_u + 1.0).sum()
    for _ in range(max_iter):
        y = step(x, bt, d_u, j_u, n_i)
        x_new = step(y, b, d_i, j_i, n_u)
        x_new /= x_new.sum()
        done = np.abs(x_new - x).sum() < tol
        x = x_new
        if done:
            break
    y = step(x, bt, d_u, j_u, n_i)
    return x, y / y.sum(), j_u, j_i


def _nth_non_neighbour(m: sp.csr_matrix, rows: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """The ``rank``-th (0-based) column that row ``rows`` has no entry in, for each pair, exactly:
    with the row's sorted columns ``c_0 < c_1 < ...``, the answer is ``rank + #{k : c_k - k <= rank}``."""
    n_cols = m.shape[1]
    if not m.has_sorted_indices:
        m = m.sorted_indices()
    pos = np.arange(m.nnz) - np.repeat(m.indptr[:-1], np.diff(m.indptr))
    adj = m.indices.astype(np.int64) - pos  # non-decreasing within a row, in [0, n_cols]
    key = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr)) * (n_cols + 1) + adj
    below = np.searchsorted(key, rows * (n_cols + 1) + rank, side="right") - m.indptr[rows]
    return rank + below


def _jump_pairs(m, csc, mass_u, mass_i, n: int, rng: np.random.Generator):
    """``n`` perturbed pairs of the walk's jump steps: a side, a node ~ its jump mass, and a uniform
    non-neighbour of it."""
    n_u, n_i = m.shape
    total_u, total_i = mass_u.sum(), mass_i.sum()
    user_side = rng.random(n) < total_u / (total_u + total_i)
    k_u = int(user_side.sum())
    users = np.empty(n, dtype=np.int64)
    items = np.empty(n, dtype=np.int64)
    if k_u:
        u = rng.choice(n_u, size=k_u, p=mass_u / total_u)
        free = n_i - np.diff(m.indptr)[u]
        users[user_side] = u
        items[user_side] = _nth_non_neighbour(m, u, np.minimum((rng.random(k_u) * free).astype(np.int64), free - 1))
    if n - k_u:
        i = rng.choice(n_i, size=n - k_u, p=mass_i / total_i)
        cscT = sp.csr_matrix((csc.data, csc.indices, csc.indptr), shape=(n_i, n_u))
        free = n_u - np.diff(csc.indptr)[i]
        items[~user_side] = i
        users[~user_side] = _nth_non_neighbour(cscT, i, np.minimum((rng.random(n - k_u) * free).astype(np.int64), free - 1))
    return users, items


def _uniform_pairs(m, n: int, rng: np.random.Generator):
    """Up to ``n`` uniformly random (user, item) non-interactions (rejection of the interactions)."""
    u = rng.integers(m.shape[0], size=n)
    i = rng.integers(m.shape[1], size=n)
    hit = _is_edge(m, u, i)
    return u[~hit], i[~hit]


def _is_edge(m: sp.csr_matrix, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Whether each (user, item) pair is an entry of ``m`` (sorted keys, binary search)."""
    if not m.has_sorted_indices:
        m = m.sorted_indices()
    n_i = m.shape[1]
    edges = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr)) * n_i + m.indices
    q = np.asarray(users, dtype=np.int64) * n_i + np.asarray(items, dtype=np.int64)
    pos = np.minimum(np.searchsorted(edges, q), max(len(edges) - 1, 0))
    return (edges[pos] == q) if len(edges) else np.zeros(len(q), dtype=bool)


def _distinct_pairs(m, n: int, draw) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` distinct pairs, in draw order, of the stream ``draw(batch) -> (users, items)``."""
    n_i = m.shape[1]
    keys = np.zeros(0, dtype=np.int64)
    drawn = 0
    while True:
        first = np.unique(keys, return_index=True)[1]
        if len(first) >= n:
            break
        if drawn > 100 * n + 1_000_000:
            raise ConfigError(f"perturbed knowledge: could not draw {n} distinct perturbed pairs; the data is too dense, use a larger fraction")
        batch = int(1.25 * (n - len(first))) + 64
        u, i = draw(batch)
        drawn += batch
        keys = np.concatenate([keys, u.astype(np.int64) * n_i + i])
    chosen = keys[np.sort(first)[:n]]
    return chosen // n_i, chosen % n_i


def _own_ratings(m, csc, users, items, rng) -> np.ndarray:
    """A rating per pair drawn from the user's own ratings (else the item's, else all ratings)."""
    d_u = np.diff(m.indptr)[users]
    d_i = np.diff(csc.indptr)[items]
    a, b, c = rng.random(len(users)), rng.random(len(users)), rng.integers(max(m.nnz, 1), size=len(users))
    from_user = m.data[np.minimum(m.indptr[users] + (a * d_u).astype(np.int64), m.nnz - 1)]
    from_item = csc.data[np.minimum(csc.indptr[items] + (b * d_i).astype(np.int64), m.nnz - 1)]
    return np.where(d_u > 0, from_user, np.where(d_i > 0, from_item, m.data[c])).astype(np.float32)


def make_view(
    data: Interactions, spec: str, targets: np.ndarray, rng: np.random.Generator
) -> Interactions:
    """The attacker's view of ``data`` for a knowledge spec ``"full"``, ``"partial:F"`` or
    ``"perturbed:F[:P][:mode]"``."""
    kind, fraction, mode, share = parse_knowledge_mode(spec)
    if kind == "full":
        return data
    if kind == "perturbed":
        return perturbed_view(data, fraction, rng, mode, share)
    return partial_view(data, fraction, targets, rng)
