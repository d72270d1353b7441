"""Compiled CPU kernels (numba) for training steps that torch runs as many small memory-bound ops.

A GMF step on ML-100K (4,096 instances of 64 factors) is about 25 torch ops on 1 MiB temporaries,
2.8 ms on one core; the same arithmetic as one loop over the instances, which keeps each row in
registers and never writes a temporary, takes 0.5 ms (docs/victims.md, issue 15). numba compiles
each loop on first use and caches the machine code beside this file, or in the user's cache
directory when that is read-only: the first process ever pays about 2.6 s for the three loops,
later ones about 0.9 s (``import numba`` 0.3 s, the first call 0.6 s). The import happens on first
use too, so a run that trains no such model never pays for it.

The loops are sequential: the same inputs give the same bits on every run and machine thread
count. The torch form of each step stays the reference (and the GPU path); the tests compare the two.
"""

from __future__ import annotations

import math
import warnings
from functools import lru_cache
from typing import Any, Callable

import numpy as np


def _njit(f: Callable[..., Any]) -> Any:
    import numba

    opts = dict(boundscheck=False, nogil=True, fastmath=False)
    try:
        return numba.njit(cache=True, **opts)(f)
    except RuntimeError:  # no writable cache location: compile in every process instead
        warnings.warn("numba cannot cache its kernels here; they compile once per process", stacklevel=2)
        return numba.njit(cache=False, **opts)(f)


def _gmf_bce_step(P, Q, h, b, users, items, y, gP, gQ, gh):  # pragma: no cover - compiled
    n = users.shape[0]
    d = P.shape[1]
    d8 = d - d % 8
    gP[:] = 0.0
    gQ[:] = 0.0
    gh[:] = 0.0
    inv = 1.0 / n
    loss = 0.0
    gb = 0.0
    for t in range(n):
        a = users[t]
        c = items[t]
        # the logit's dot product in eight lanes, summed in a fixed order: LLVM vectorises it
        # without fastmath (a single running sum cannot be), and the bits do not depend on the CPU
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = np.float32(0.0)
        for k in range(0, d8, 8):
            s0 += P[a, k] * Q[c, k] * h[k]
            s1 += P[a, k + 1] * Q[c, k + 1] * h[k + 1]
            s2 += P[a, k + 2] * Q[c, k + 2] * h[k + 2]
            s3 += P[a, k + 3] * Q[c, k + 3] * h[k + 3]
            s4 += P[a, k + 4] * Q[c, k + 4] * h[k + 4]
            s5 += P[a, k + 5] * Q[c, k + 5] * h[k + 5]
            s6 += P[a, k + 6] * Q[c, k + 6] * h[k + 6]
            s7 += P[a, k + 7] * Q[c, k + 7] * h[k + 7]
        s = ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))
        for k in range(d8, d):
            s += P[a, k] * Q[c, k] * h[k]
        x = np.float64(s) + b
        # binary cross-entropy with logits, stably: max(x, 0) - x y + log(1 + exp(-|x|))
        e = math.exp(-abs(x))
        loss += max(x, 0.0) - x * y[t] + math.log1p(e)
        sig = 1.0 / (1.0 + e) if x >= 0.0 else e / (1.0 + e)
        g = np.float32((sig - y[t]) * inv)
        gb += g
        for k in range(d):
            pk = P[a, k]
            qk = Q[c, k]
            gk = g * h[k]
            gh[k] += g * (pk * qk)
            gP[a, k] += gk * qk
            gQ[c, k] += gk * pk
    return loss * inv, gb


@lru_cache(maxsize=None)
def gmf_bce_step() -> Callable[..., tuple[float, float]] | None:
    """The compiled GMF step, or None where numba cannot be imported (the caller then takes its
    torch path): ``f(P, Q, h, b, users, items, y, gP, gQ, gh) -> (loss, dL/db)``.

    ``logit_t = (P[users_t] * Q[items_t]) . h + b`` (NCF eq. (9) before the sigmoid), ``loss`` the
    mean binary cross-entropy of eq. (7) against ``y``; the gradients of that mean with respect to
    ``P``, ``Q`` and ``h`` are written into ``gP``, ``gQ``, ``gh`` (overwritten; repeated rows add
    up), float32 like the parameters. ``users``, ``items``: int64; ``y``: float32; ``b``: float.
    """
    return _compiled(_gmf_bce_step)


def _rprop_update(p, g, prev, step, etaminus, etaplus, smin, smax):  # pragma: no cover - compiled
    one = np.float32(1.0)
    for e in range(p.shape[0]):
        ge = g[e]
        s = ge * prev[e]
        f = etaplus if s > 0 else (etaminus if s < 0 else one)
        st = min(max(step[e] * f, smin), smax)
        step[e] = st
        if f == etaminus:
            ge = np.float32(0.0)
        sg = np.float32(1.0) if ge > 0 else (np.float32(-1.0) if ge < 0 else np.float32(0.0))
        p[e] = p[e] + (-sg) * st
        prev[e] = ge


@lru_cache(maxsize=None)
def rprop_update() -> Callable[..., None] | None:
    """``f(p, g, prev, step, etaminus, etaplus, smin, smax)``: one Rprop update of the flat float32
    arrays ``p`` (parameters), ``prev`` (previous gradient) and ``step`` (step sizes) with the
    gradient ``g``, in one pass; the arithmetic of ``torch.optim.Rprop`` element by element (float32
    constants), bitwise its result (tested). None without numba."""
    return _compiled(_rprop_update)


def _seen_hits(users, items, todo, n_items, bitmap, out):  # pragma: no cover - compiled
    m = 0
    for t in todo:
        if bitmap[users[t] * n_items + items[t]]:
            out[m] = t
            m += 1
    return m


@lru_cache(maxsize=None)
def seen_hits() -> Callable[..., int] | None:
    """``f(users, items, todo, n_items, bitmap, out) -> m``: writes into ``out[:m]``, in order, the
    entries ``t`` of ``todo`` whose pair ``users[t] * n_items + items[t]`` is set in ``bitmap``
    (one pass, no temporaries; None without numba)."""
    return _compiled(_seen_hits)


def _bce_assemble(order, u, ii, n_neg, out_u, out_i, out_y):  # pragma: no cover - compiled
    n_pos = u.shape[0]
    for t in range(order.shape[0]):
        o = order[t]
        if o < n_pos:
            out_u[t] = u[o]
            out_y[t] = 1.0
        else:
            out_u[t] = u[(o - n_pos) // n_neg]
            out_y[t] = 0.0
        out_i[t] = ii[o]


@lru_cache(maxsize=None)
def bce_assemble() -> Callable[..., None] | None:
    """``f(order, u, ii, n_neg, out_u, out_i, out_y)``: instance ``t`` of a shuffled epoch is
    positive ``order[t]`` when ``order[t] < len(u)``, else a negative of positive ``(order[t] -
    len(u)) // n_neg``; its user, item ``ii[order[t]]`` and label go to the outputs (None without
    numba)."""
    return _compiled(_bce_assemble)


def _compiled(f: Callable[..., Any]) -> Any:
    try:
        return _njit(f)
    except ImportError:  # pragma: no cover - numba is a dependency; a Python it does not support yet
        return None
