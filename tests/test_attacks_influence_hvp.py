"""The one Hessian of seed 001 eq. (1) (``attacks._mfhessian.MFHessian``) against autograd, for one
vector ``(n, d)`` and ``m`` columns ``(n, d, m)``, in float64 (exact influence) and float32 (the
Li2016 surrogate's default dtype)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recpoison.attacks._influence import MFHessian as FromInfluence
from recpoison.attacks._mfhessian import MFHessian, RatingPattern

REG = 0.7


@pytest.fixture(scope="module")
def problem():
    """40 users x 30 items: user degrees 0..30 (several padded blocks, users without ratings), an
    item without ratings, an explicitly stored 0 rating; factors at a random point (not a minimum,
    so the residual terms of the Hessian matter)."""
    rng = np.random.default_rng(0)
    nu, ni, d = 40, 30, 4
    deg = rng.integers(0, ni, size=nu)
    deg[:3] = [0, ni - 1, 1]
    M = np.zeros((nu, ni), dtype=bool)
    for u, k in enumerate(deg):  # test data only
        M[u, rng.choice(ni - 1, size=min(k, ni - 1), replace=False)] = True  # item ni-1: no ratings
    R = sp.csr_matrix(M, dtype=np.float64)
    R.data = rng.integers(1, 6, size=R.nnz).astype(np.float64)
    R.data[5] = 0.0  # stored: a rating of 0 is still a term of eq. (1)
    X, Y = rng.normal(size=(nu, d)), rng.normal(size=(ni, d))
    return R, X, Y


def _objective(R: sp.csr_matrix):
    coo = R.tocoo()
    r, c, v = (torch.as_tensor(a) for a in (coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data))

    def F(X, Y):
        e = v.to(X.dtype) - (X[r] * Y[c]).sum(1)
        return (e**2).sum() + REG * ((X**2).sum() + (Y**2).sum())

    return F


def _autograd_hvp(R, X, Y, a, b):
    X, Y = torch.as_tensor(X, dtype=torch.float64), torch.as_tensor(Y, dtype=torch.float64)
    _, (hx, hy) = torch.autograd.functional.hvp(_objective(R), (X, Y), (a.double(), b.double()))
    return hx, hy


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b).abs().max() / b.abs().max())


def test_one_vector_matches_autograd(problem):
    R, X, Y = problem
    H = MFHessian(X, Y, R, REG)
    g = torch.Generator().manual_seed(1)
    a = torch.randn(X.shape, generator=g, dtype=torch.float64)
    b = torch.randn(Y.shape, generator=g, dtype=torch.float64)
    hx, hy = H.matvec(a, b)
    rx, ry = _autograd_hvp(R, X, Y, a, b)
    assert hx.shape == X.shape and hy.shape == Y.shape
    assert _rel(hx, rx) < 1e-12 and _rel(hy, ry) < 1e-12


@pytest.mark.parametrize("m", [1, 2, 7])
def test_batched_columns_match_autograd(problem, m):
    R, X, Y = problem
    H = FromInfluence(X, Y, R, REG)  # the name the exact influence imports is the same class
    assert FromInfluence is MFHessian
    g = torch.Generator().manual_seed(2)
    A = torch.randn(*X.shape, m, generator=g, dtype=torch.float64)
    B = torch.randn(*Y.shape, m, generator=g, dtype=torch.float64)
    hx, hy = H.matvec(A, B)
    assert hx.shape == A.shape and hy.shape == B.shape
    for k in range(m):  # reference only: one autograd product per column
        rx, ry = _autograd_hvp(R, X, Y, A[..., k], B[..., k])
        assert _rel(hx[..., k], rx) < 1e-12 and _rel(hy[..., k], ry) < 1e-12
    # a non-contiguous batch (a permuted view) gives the same products
    hx2, hy2 = H.matvec(A.permute(2, 0, 1).contiguous().permute(1, 2, 0), B.permute(2, 0, 1).contiguous().permute(1, 2, 0))
    assert _rel(hx2, hx) < 1e-14 and _rel(hy2, hy) < 1e-14


def test_directional_derivative_of_the_predictions(problem):
    R, X, Y = problem
    H = MFHessian(X, Y, R, REG)
    coo = sp.csr_matrix(R).tocoo()  # csr order
    g = torch.Generator().manual_seed(3)
    A = torch.randn(*X.shape, 3, generator=g, dtype=torch.float64)
    B = torch.randn(*Y.shape, 3, generator=g, dtype=torch.float64)
    Xt, Yt = torch.as_tensor(X), torch.as_tensor(Y)
    r, c = torch.as_tensor(coo.row.astype(np.int64)), torch.as_tensor(coo.col.astype(np.int64))
    ref = (Yt[c].unsqueeze(-1) * A[r]).sum(1) + (Xt[r].unsqueeze(-1) * B[c]).sum(1)
    assert _rel(H.directional(A, B), ref) < 1e-13
    assert _rel(H.directional(A[..., 0], B[..., 0]), ref[:, 0]) < 1e-13
    assert _rel(H.res, torch.as_tensor(coo.data - (X[coo.row] * Y[coo.col]).sum(1))) < 1e-13


def test_batched_solve_inverts_the_products(problem):
    R, X, Y = problem
    R = sp.csr_matrix(R, copy=True)  # ratings close to the predictions: small residuals, H positive definite
    coo = R.tocoo()
    R.data = (X[coo.row] * Y[coo.col]).sum(1) + 0.05 * np.random.default_rng(4).normal(size=R.nnz)
    H = MFHessian(X, Y, R, REG)
    g = torch.Generator().manual_seed(4)
    Bx = torch.randn(*X.shape, 3, generator=g, dtype=torch.float64)
    By = torch.randn(*Y.shape, 3, generator=g, dtype=torch.float64)
    Vx, Vy = H.solve(Bx, By, tol=1e-12)
    hx, hy = H.matvec(Vx, Vy)
    assert _rel(hx, Bx) < 1e-9 and _rel(hy, By) < 1e-9


@pytest.mark.parametrize("m", [None, 5])
def test_float32_pattern_path_as_the_li2016_surrogate_uses_it(problem, m):
    """The surrogate passes a RatingPattern, the values in csr order and float32 factors: the
    products stay float32 and agree with float64 autograd to float32 precision."""
    R, X, Y = problem
    R = sp.csr_matrix(R)
    pattern = RatingPattern(R.indptr, R.indices, R.shape)
    X32, Y32 = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(Y, dtype=torch.float32)
    H = MFHessian(X32, Y32, pattern, REG, values=torch.as_tensor(R.data, dtype=torch.float32))
    g = torch.Generator().manual_seed(5)
    shape = () if m is None else (m,)
    A = torch.randn(*X.shape, *shape, generator=g)
    B = torch.randn(*Y.shape, *shape, generator=g)
    hx, hy = H.matvec(A, B)
    assert hx.dtype == torch.float32 and hy.dtype == torch.float32
    cols = [(A, B, hx, hy)] if m is None else [(A[..., k], B[..., k], hx[..., k], hy[..., k]) for k in range(m)]
    for a, b, px, py in cols:
        rx, ry = _autograd_hvp(R, X32.double(), Y32.double(), a, b)
        assert _rel(px, rx) < 1e-5 and _rel(py, ry) < 1e-5
    with pytest.raises(ValueError, match="values"):
        MFHessian(X32, Y32, pattern, REG)
