"""The Hessian of the matrix-factorisation objective of seed 001 eq. (1), as a linear operator.

One definition, used by both places that need Hessian-vector products of eq. (1):

* :mod:`._influence` (the influence function of seed 001 eq. (12), ``hessian="exact"``):
  :func:`._influence.prediction_influence` builds an :class:`MFHessian` from the fitted factors and
  the training ratings, solves ``H z = grad r_hat_ot`` for a batch of users ``o`` at once with
  :meth:`MFHessian.solve` (batched conjugate gradients on ``(n, d, m)`` vectors) and reads the
  per-rating gradients off :meth:`MFHessian.directional`.
* :mod:`._li2016` (PGA/SGLD of Li et al. 2016): :meth:`._li2016.Surrogate.gradient` builds one per
  gradient from the surrogate's factors and its real + fake ratings and runs its conjugate
  gradient (``_li2016._cg``) on :meth:`MFHessian.matvec` with single ``(n, d)`` vectors, in the
  surrogate's dtype (float32 by default).

Objective and conventions. ``F(X, Y) = sum_{(u,i) in Omega} (r_ui - x_u.y_i)^2 + lambda (||X||^2 +
||Y||^2)`` over the stored entries ``Omega`` of a users x items matrix (an explicit 0 counts as a
rating), ``theta = (X, Y)``, ``H = d^2 F / d theta^2`` (the factor 2 of the squares included, no
``1/|Omega|``). With the residuals ``e_ui = r_ui - x_u.y_i`` and, for a direction ``v = (A, B)``,
the change of each prediction ``de_ui = a_u.y_i + x_u.b_i``::

    (H v)_{x_u} = 2 sum_{i in Omega_u} (y_i de_ui - e_ui b_i) + 2 lambda a_u
    (H v)_{y_i} = 2 sum_{u in Omega^i} (x_u de_ui - e_ui a_u) + 2 lambda b_i

``H`` is exact (the residual terms are kept: no Gauss-Newton approximation). Nothing is formed
densely, and nothing loops in Python over users, items, ratings or columns (the only loops run over
the ~12 length blocks below and over column chunks of one sparse product).

Two evaluation paths of the same formula, picked by the shape of the vector (measured on ML-100K,
d = 64, one thread, by ``benchmarks/hvp.py``: about 20 ms for one vector and 5 s for 256 columns,
against 0.64 s and ~260 s for the former gather + ``index_add_`` formulation):

* one vector ``(n, d)`` (or ``m = 1``): ``de`` by two ``torch.sparse.sampled_addmm`` products at
  the rating pattern, then four CSR x dense products (``D Y``, ``D^T X``, ``E B``, ``E^T A``).
* ``m > 1`` columns ``(n, d, m)``: the rows of the pattern grouped by length into padded dense
  blocks (as the ALS solver does, :class:`recpoison.victims.mf.RowBlocks`), so that ``a_u.y_i`` for
  all ``i in Omega_u`` and all columns is one batched GEMM per block (``Y_{Omega_u} A_u``), likewise
  ``x_u.b_i`` per item, and the sums ``sum_i y_i de_ui`` are batched GEMMs back (``Y_{Omega_u}^T
  DE_u``); the two layouts exchange ``de`` by one gather each. The residual terms ``E B`` and
  ``E^T A`` are CSR x dense products on the ``(n, d m)`` reshaped vectors, in column chunks that
  stay in cache. (Splitting off per-user Gram matrices, ``sum_i y_i de_ui = (sum_i y_i y_i^T) a_u +
  sum_i y_i (x_u.b_i)``, does not save work: ``x_u.b_i`` and ``a_u.y_i`` at the pattern and the two
  sums back are needed either way, so the Gram products would only be added.)
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse as sp
import torch

#: columns of the dense operand per CSR x dense product of the residual terms (a chunk of B,
#: n_items x 256 doubles, stays in cache; measured 2-8x faster than one product on all d m columns)
_SPMM_CHUNK = 256


def _csr(indptr: torch.Tensor, indices: torch.Tensor, values: torch.Tensor, shape) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(indptr, indices, values, size=tuple(shape), check_invariants=False)


def _spmm(S: torch.Tensor, V: torch.Tensor) -> torch.Tensor:
    """``S @ V`` for a CSR ``S`` and a dense 2-D ``V``, in column chunks of ``_SPMM_CHUNK``."""
    if V.shape[1] <= _SPMM_CHUNK:
        return S @ V
    out = V.new_empty(S.shape[0], V.shape[1])
    for s in range(0, V.shape[1], _SPMM_CHUNK):
        out[:, s : s + _SPMM_CHUNK] = S @ V[:, s : s + _SPMM_CHUNK].contiguous()
    return out


class _Padded:
    """The rows of a csr pattern grouped by length (1-8, 9-12, 13-18, ... entries, bounds growing by
    1.5x) into padded blocks laid end to end: block ``k`` covers ``rows[k]`` (``nb`` rows) and the
    slots ``off[k] : off[k] + nb * L`` of a flat layout, slot ``(row, l)`` holding the column
    ``idx`` (``n_cols`` where padded) of the row's ``l``-th entry and its position ``pos`` in the
    edge order of the pattern (``nnz`` where padded)."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, edge: np.ndarray, n_cols: int) -> None:
        counts = np.diff(indptr)
        nnz = int(indices.size)
        self.blocks: list[tuple[torch.Tensor, int, int, int]] = []  # (rows, offset, n rows, width)
        idx_all, pos_all = [], []
        off, lo, hi = 0, 0, 8
        top = int(counts.max()) if counts.size else 0
        while lo < top:
            rows = np.flatnonzero((counts > lo) & (counts <= hi))
            if rows.size:
                width = int(counts[rows].max())
                p = indptr[rows][:, None] + np.arange(width)[None, :]
                mask = np.arange(width)[None, :] < counts[rows][:, None]
                p = np.where(mask, p, 0)
                idx_all.append(np.where(mask, indices[p], n_cols).ravel())
                pos_all.append(np.where(mask, edge[p], nnz).ravel())
                self.blocks.append((torch.as_tensor(rows.astype(np.int64)), off, rows.size, width))
                off += rows.size * width
            lo, hi = hi, int(hi * 1.5)
        self.size = off
        self.idx = torch.as_tensor(np.concatenate(idx_all) if idx_all else np.zeros(0, np.int64)).long()
        self.pos = np.concatenate(pos_all) if pos_all else np.zeros(0, np.int64)
        # slot of each edge (and of the sentinel edge nnz: slot `size`, a zero row)
        self.slot = np.full(nnz + 1, off, dtype=np.int64)
        real = self.pos < nnz
        self.slot[self.pos[real]] = np.flatnonzero(real)

    def gathered(self, F: torch.Tensor) -> torch.Tensor:
        """``F`` (n_cols, d) at every slot (zero rows where padded): (size, d)."""
        return torch.cat([F, F.new_zeros(1, F.shape[1])])[self.idx]


class RatingPattern:
    """The sparsity pattern ``Omega`` of a users x items matrix (csr: ``indptr``, ``indices``;
    its stored order is the "edge order" of values and outputs), with what both evaluation paths of
    :class:`MFHessian` need: the transpose and its map to the edge order, and (built on first use)
    the padded row blocks of both sides. Independent of the factors and values, so a caller whose
    pattern is fixed (the Li2016 surrogate) builds it once."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, shape: tuple[int, int]) -> None:
        self.shape = (int(shape[0]), int(shape[1]))
        self.indptr = np.asarray(indptr, dtype=np.int64)
        self.indices = np.asarray(indices, dtype=np.int64)
        self.nnz = int(self.indices.size)
        self.rows = torch.as_tensor(np.repeat(np.arange(self.shape[0], dtype=np.int64), np.diff(self.indptr)))
        self.cols = torch.as_tensor(self.indices)
        order = sp.csr_matrix((np.arange(1, self.nnz + 1, dtype=np.float64), self.indices, self.indptr), shape=self.shape)
        T = order.T.tocsr()
        T.sort_indices()
        self.indptr_T, self.indices_T = T.indptr.astype(np.int64), T.indices.astype(np.int64)
        self.to_T = np.rint(T.data).astype(np.int64) - 1  # edge position of each entry of the transpose (csr order)
        self._t = {
            "ip": torch.as_tensor(self.indptr), "ix": self.cols,
            "ipT": torch.as_tensor(self.indptr_T), "ixT": torch.as_tensor(self.indices_T), "toT": torch.as_tensor(self.to_T),
        }
        self._ones: dict[torch.dtype, torch.Tensor] = {}
        self._padded: tuple[_Padded, _Padded, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    @classmethod
    def from_scipy(cls, R: sp.spmatrix) -> "RatingPattern":
        R = sp.csr_matrix(R)
        return cls(R.indptr, R.indices, R.shape)

    def csr(self, values: torch.Tensor) -> torch.Tensor:
        """The users x items CSR tensor with ``values`` (edge order)."""
        return _csr(self._t["ip"], self._t["ix"], values, self.shape)

    def csr_T(self, values: torch.Tensor) -> torch.Tensor:
        """The items x users CSR tensor (the transpose) with ``values`` given in edge order."""
        return _csr(self._t["ipT"], self._t["ixT"], values[self._t["toT"]], self.shape[::-1])

    def sampled(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        """``a_u.b_i`` at every edge (edge order) for ``A`` (n_users, d), ``B`` (n_items, d), without
        forming ``A B^T``."""
        if A.dtype not in self._ones:
            self._ones[A.dtype] = self.csr(torch.ones(self.nnz, dtype=A.dtype))
        return torch.sparse.sampled_addmm(self._ones[A.dtype], A, B.T, beta=0.0).values()

    def padded(self):
        """``(users, items, u2i, i2u, e2u, e2i)``: the padded blocks of the rows and of the columns
        and the gathers between the two flat layouts (``u2i``: for each user slot, the item slot of
        the same edge; padded slots point at the other layout's zero row) and from edge order."""
        if self._padded is None:
            users = _Padded(self.indptr, self.indices, np.arange(self.nnz, dtype=np.int64), self.shape[1])
            items = _Padded(self.indptr_T, self.indices_T, self.to_T, self.shape[0])
            as_t = lambda a: torch.as_tensor(np.ascontiguousarray(a, dtype=np.int64))
            self._padded = (users, items, as_t(items.slot[users.pos]), as_t(users.slot[items.pos]),
                            as_t(users.slot[: self.nnz]), as_t(items.slot[: self.nnz]))
        return self._padded


class MFHessian:
    """Hessian of eq. (1) at ``(X, Y)`` over the ratings (see the module docstring for the formula).

    ``R``: a scipy sparse users x items matrix (pattern and ratings, its csr order is the edge
    order), or a :class:`RatingPattern` with the ratings as ``values`` (edge order). ``X``
    (n_users, d), ``Y`` (n_items, d): numpy arrays (computed in float64) or torch tensors (their
    dtype is kept, e.g. the float32 surrogate of Li2016). ``reg``: lambda of eq. (1).

    A vector is a pair ``(A, B)``, either ``(n_users, d)`` and ``(n_items, d)`` or batched over ``m``
    columns, ``(n_users, d, m)`` and ``(n_items, d, m)``; :meth:`matvec` returns ``H (A, B)`` in the
    same shape. ``res`` holds the residuals ``e_ui = r_ui - x_u.y_i`` (edge order).
    """

    def __init__(self, X, Y, R, reg: float, values=None) -> None:
        def tensor(a) -> torch.Tensor:
            if isinstance(a, torch.Tensor):
                return a
            return torch.as_tensor(np.ascontiguousarray(a, dtype=np.float64))

        self.X, self.Y = tensor(X), tensor(Y)
        if isinstance(R, RatingPattern):
            if values is None:
                raise ValueError("MFHessian: a RatingPattern needs the rating values")
            self.pattern = R
        else:
            R = sp.csr_matrix(R)
            self.pattern = RatingPattern.from_scipy(R)
            values = R.data if values is None else values
        v = values if isinstance(values, torch.Tensor) else torch.as_tensor(np.asarray(values, dtype=np.float64))
        self.reg = float(reg)
        self.res = v.to(self.X.dtype) - self.pattern.sampled(self.X, self.Y)
        self._E, self._ET = self.pattern.csr(self.res), self.pattern.csr_T(self.res)
        self._gathered: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def rows(self) -> torch.Tensor:
        """User of each edge (edge order)."""
        return self.pattern.rows

    @property
    def cols(self) -> torch.Tensor:
        """Item of each edge (edge order)."""
        return self.pattern.cols

    # ------------------------------------------------------------------ products
    def matvec(self, A: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``H (A, B)`` for ``(n_users, d)``/``(n_items, d)`` or ``(n_users, d, m)``/``(n_items, d, m)``."""
        if A.dim() == 2:
            return self._matvec_one(A, B)
        if A.shape[2] == 1:
            hx, hy = self._matvec_one(A[..., 0], B[..., 0])
            return hx.unsqueeze(-1), hy.unsqueeze(-1)
        return self._matvec_batched(A, B)

    __call__ = matvec

    def directional(self, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
        """``de_ui = a_u.y_i + x_u.b_i`` at every edge: the first-order change of each prediction
        ``x_u.y_i`` along ``(A, B)``. ``(nnz,)`` for one vector, ``(nnz, m)`` for ``m`` columns."""
        if A.dim() == 2:
            return self.pattern.sampled(A, self.Y) + self.pattern.sampled(self.X, B)
        if A.shape[2] == 1:
            return self.directional(A[..., 0], B[..., 0]).unsqueeze(-1)
        _, _, _, _, e2u, e2i = self.pattern.padded()
        T, S = self._slots(A, B)
        return T[e2u] + S[e2i]

    def _matvec_one(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        P = self.pattern
        de = P.sampled(a, self.Y) + P.sampled(self.X, b)
        HX = P.csr(de) @ self.Y - self._E @ b
        HY = P.csr_T(de) @ self.X - self._ET @ a
        return 2 * HX + 2 * self.reg * a, 2 * HY + 2 * self.reg * b

    def _gather(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``Y`` at the user slots and ``X`` at the item slots (built once per Hessian)."""
        if self._gathered is None:
            users, items, *_ = self.pattern.padded()
            self._gathered = (users.gathered(self.Y), items.gathered(self.X))
        return self._gathered

    def _slots(self, A: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``y_i.a_u`` at the user slots and ``x_u.b_i`` at the item slots, each with a zero row
        appended: ``(users.size + 1, m)``, ``(items.size + 1, m)``; zero at padded slots."""
        users, items, *_ = self.pattern.padded()
        YU, XI = self._gather()
        m = A.shape[2]
        T = A.new_zeros(users.size + 1, m)
        S = A.new_zeros(items.size + 1, m)
        for side, G, V, out in ((users, YU, A, T), (items, XI, B, S)):
            for rows, off, nb, width in side.blocks:
                g = G[off : off + nb * width].view(nb, width, -1)
                torch.bmm(g, V[rows], out=out[off : off + nb * width].view(nb, width, m))
        return T, S

    def _matvec_batched(self, A: torch.Tensor, B: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        users, items, u2i, i2u, _, _ = self.pattern.padded()
        YU, XI = self._gather()
        n_users, d, m = A.shape
        n_items = B.shape[0]
        T, S = self._slots(A, B)
        DI = T[i2u].add_(S[: items.size])  # de at the item slots
        DU = T[: users.size].add_(S[u2i])  # de at the user slots (in place: T is not needed after)
        HX = A.new_zeros(A.shape)  # contiguous, whatever the layout of A
        HY = B.new_zeros(B.shape)
        for side, G, D, H in ((users, YU, DU, HX), (items, XI, DI, HY)):
            for rows, off, nb, width in side.blocks:
                g = G[off : off + nb * width].view(nb, width, -1)
                H.index_copy_(0, rows, torch.bmm(g.transpose(1, 2), D[off : off + nb * width].view(nb, width, m)))
        HX.view(n_users, d * m).sub_(_spmm(self._E, B.reshape(n_items, d * m)))
        HY.view(n_items, d * m).sub_(_spmm(self._ET, A.reshape(n_users, d * m)))
        return HX.add_(A, alpha=self.reg).mul_(2), HY.add_(B, alpha=self.reg).mul_(2)

    # ------------------------------------------------------------------ solve
    def solve(self, Bx: torch.Tensor, By: torch.Tensor, tol: float = 1e-10, max_iter: int = 2000):
        """``H^{-1} B`` by conjugate gradients, every column at once (H is positive definite at a
        strict local minimum of eq. (1); ``reg > 0`` removes the rotational null space). Used by the
        exact influence (:func:`._influence.prediction_influence`)."""
        x = (torch.zeros_like(Bx), torch.zeros_like(By))
        r = (Bx.clone(), By.clone())
        p = (Bx.clone(), By.clone())

        def dot(a, b):
            return (a[0] * b[0]).sum((0, 1)) + (a[1] * b[1]).sum((0, 1))

        rs = dot(r, r)
        b_norm = rs.sqrt().clamp_min(1e-300)
        for _ in range(max_iter):
            if bool((rs.sqrt() / b_norm <= tol).all()):
                break
            Ap = self.matvec(*p)
            alpha = rs / dot(p, Ap).clamp_min(1e-300)
            x = (x[0] + alpha * p[0], x[1] + alpha * p[1])
            r = (r[0] - alpha * Ap[0], r[1] - alpha * Ap[1])
            rs_new = dot(r, r)
            beta = rs_new / rs.clamp_min(1e-300)
            p = (r[0] + beta * p[0], r[1] + beta * p[1])
            rs = rs_new
        return x
