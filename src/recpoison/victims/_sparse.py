"""Sparse building blocks of the hand-written gradients: a set of (row, col) pairs as a CSR matrix
and as the CSR matrix of its transpose, and a sparse x dense product whose backward uses a
precomputed transpose.

torch's own backward of ``csr @ dense`` and of a product with ``csr.t()`` converts the sparse
matrix to the transposed layout on every call (a sort of all its entries). The victims here
multiply with the same pattern in every training step, so the transposed layout is built once.
"""

from __future__ import annotations

import warnings
from functools import cached_property
from typing import Callable

import torch


def csr(crow: torch.Tensor, cols: torch.Tensor, values: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """A ``torch.sparse_csr_tensor`` from index arrays known to be valid (no invariant check)."""
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the ops used here are stable
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, cols, values, shape, check_invariants=False)


def _crow(rows_sorted: torch.Tensor, n_rows: int) -> torch.Tensor:
    crow = torch.zeros(n_rows + 1, dtype=torch.int64, device=rows_sorted.device)
    crow[1:] = torch.cumsum(torch.bincount(rows_sorted, minlength=n_rows), 0)
    return crow


#: CPU sparse x dense products take the dense operand in column blocks of this width when it is
#: wider than 1.5 blocks: a 64-column block of ML-100K's 943 or 1,682 rows stays in a 1 MiB L2 cache, and
#: AutoRec's 500-column products took 10 ms instead of 21 (bitwise the same result: each output
#: entry is the same sum in the same order; benchmarks/victims.py)
COLUMN_BLOCK = 64


def by_column_blocks(f: Callable[[torch.Tensor], torch.Tensor], X: torch.Tensor, width: int) -> torch.Tensor:
    """``f(X)`` for a map ``f`` that treats each column of ``X`` on its own, computed on blocks of
    ``width`` columns on the CPU when ``X`` is wider than 1.5 blocks (so that a block of a sparse
    product's dense operand stays in cache); ``f(X)`` at once otherwise. Bitwise the same result."""
    k = X.shape[1]
    if X.device.type != "cpu" or k <= width * 3 // 2:
        return f(X)
    return torch.cat([f(X[:, j : j + width].contiguous()) for j in range(0, k, width)], 1)


def mm(M: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """``M @ X`` for a sparse ``M`` and a dense ``X``, in column blocks of ``X`` on the CPU."""
    return by_column_blocks(lambda B: torch.sparse.mm(M, B), X, COLUMN_BLOCK)


class PairPattern:
    """The pairs ``(rows[n], cols[n])`` of an ``n_rows x n_cols`` matrix, repeats allowed.

    ``by_row(v)`` is the CSR matrix holding ``v[n]`` at pair n (pairs sorted by row, then column;
    repeated pairs add up in products), ``by_col(v)`` the CSR matrix of its transpose; ``v`` is
    given in the pairs' own order. So ``by_row(v) @ X`` is ``sum_{n: rows[n] = r} v[n] X[cols[n]]``
    for every row r, one sparse x dense product instead of a gather, a scaling and a scatter-add of
    ``len(rows) x d`` floats, and ``dot(A, B)`` is ``A[rows[n]] . B[cols[n]]`` (one sampled product).
    """

    def __init__(self, rows: torch.Tensor, cols: torch.Tensor, n_rows: int, n_cols: int) -> None:
        self.shape = (int(n_rows), int(n_cols))
        self.pairs = (rows, cols)
        key = rows * n_cols + cols
        self.order = None if key.numel() < 2 or bool((key[1:] >= key[:-1]).all()) else torch.argsort(key, stable=True)
        rs = rows if self.order is None else rows[self.order]
        self.cols = cols if self.order is None else cols[self.order]
        self.crow = _crow(rs, n_rows)
        self._selected: tuple[torch.Tensor, PairPattern] | None = None

    @cached_property
    def _transposed(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(order, crow, cols) of the transpose, built on first use (a forward pass never needs it)."""
        rows, cols = self.pairs
        t_order = torch.argsort(cols * self.shape[0] + rows, stable=True)
        return t_order, _crow(cols[t_order], self.shape[1]), rows[t_order]

    def select(self, keep: torch.Tensor) -> "PairPattern":
        """The pattern of the pairs where the boolean mask ``keep`` holds; the last one is kept, so a
        loop that selects the same mask object every step builds it once."""
        if self._selected is None or self._selected[0] is not keep:
            rows, cols = self.pairs
            self._selected = (keep, PairPattern(rows[keep], cols[keep], *self.shape))
        return self._selected[1]

    def _sorted(self, v: torch.Tensor) -> torch.Tensor:
        return v if self.order is None else v[self.order]

    def by_row(self, v: torch.Tensor) -> torch.Tensor:
        return csr(self.crow, self.cols, self._sorted(v).contiguous(), self.shape)

    def by_col(self, v: torch.Tensor) -> torch.Tensor:
        t_order, t_crow, t_cols = self._transposed
        return csr(t_crow, t_cols, v[t_order].contiguous(), (self.shape[1], self.shape[0]))

    def dot(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        """``A[rows[n]] . B[cols[n]]`` for every pair, in the pairs' order."""
        zeros = torch.zeros(self.cols.shape[0], dtype=A.dtype, device=A.device)
        out = torch.sparse.sampled_addmm(csr(self.crow, self.cols, zeros, self.shape), A, B.T, beta=0.0).values()
        if self.order is None:
            return out
        return torch.empty_like(out).index_copy_(0, self.order, out)


class _ObservedDot(torch.autograd.Function):
    @staticmethod
    def forward(ctx, A, B, pattern):  # type: ignore[override]
        ctx.save_for_backward(A, B)
        ctx.pattern = pattern
        return pattern.dot(A, B)

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        A, B = ctx.saved_tensors
        p = ctx.pattern
        gA = mm(p.by_row(g), B) if ctx.needs_input_grad[0] else None
        gB = mm(p.by_col(g), A) if ctx.needs_input_grad[1] else None
        return gA, gB, None


def observed_dot(A: torch.Tensor, B: torch.Tensor, pattern: PairPattern) -> torch.Tensor:
    """``A[rows[n]] . B[cols[n]]`` at the pairs of ``pattern``, differentiable in ``A`` and ``B``:
    forward one sampled product, backward ``dA = S B`` and ``dB = S^T A`` with ``S`` the incoming
    gradients at the pairs, two sparse x dense products with the layouts built once."""
    return _ObservedDot.apply(A, B, pattern)


class _SpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, M, Mt, X):  # type: ignore[override]
        ctx.Mt = Mt
        return mm(M, X)

    @staticmethod
    def backward(ctx, G):  # type: ignore[override]
        return None, None, mm(ctx.Mt, G.contiguous())


def spmm(M: torch.Tensor, Mt: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """``M @ X`` for a constant sparse ``M`` whose transpose ``Mt`` is given: differentiable in
    ``X`` (``dX = Mt G``) without torch converting ``M`` to the transposed layout every call."""
    return _SpMM.apply(M, Mt, X)
