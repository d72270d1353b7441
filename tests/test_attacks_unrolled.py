"""The unrolled dense WRMF surrogate of the bi-level attacks: the Adam step as an expression equals
the project's Adam, training lowers the loss, and the hyper-gradient through the unrolled steps
matches central finite differences."""

import numpy as np
import pytest
import torch

from recpoison.attacks._unrolled import UnrolledWRMF, WRMFSettings, adam_update, wrmf_grads, wrmf_loss
from recpoison.victims._optim import Adam


def test_analytic_gradient_is_autograd():
    g = torch.Generator().manual_seed(0)
    P = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    Q = torch.randn(5, 3, generator=g, dtype=torch.float64, requires_grad=True)
    R = (torch.rand(6, 5, generator=g, dtype=torch.float64) < 0.4).double()
    W = 1 + 19 * R
    gP, gQ = torch.autograd.grad(wrmf_loss(P, Q, R, W), (P, Q))
    aP, aQ = wrmf_grads(P, Q, R, W)
    torch.testing.assert_close(aP, gP)
    torch.testing.assert_close(aQ, gQ)


def test_adam_expression_matches_the_project_adam():
    s = WRMFSettings(d=3, weight_decay=1e-2)
    g = torch.Generator().manual_seed(1)
    p0 = torch.randn(4, 3, generator=g, dtype=torch.float64)
    p = p0.clone()
    opt = Adam([p], lr=s.lr, weight_decay=s.weight_decay, fused=False)
    q, m, v = p0.clone(), torch.zeros_like(p0), torch.zeros_like(p0)
    for step in range(1, 6):
        grad = torch.sin(3 * p + step)
        p.grad = grad.clone()
        opt.step()
        q, m, v = adam_update(q, torch.sin(3 * q + step), m, v, step, s)
    torch.testing.assert_close(q, p, rtol=1e-12, atol=1e-12)


def test_training_fits_the_data():
    g = torch.Generator().manual_seed(0)
    R = (torch.rand(30, 20, generator=g) < 0.3).float()
    model = UnrolledWRMF(WRMFSettings(d=8))
    P, Q = model.train(R[:25], R[25:], 200, 0, torch.Generator().manual_seed(0))
    W = model.weights(R)
    P0, Q0 = model.init(30, 20, torch.Generator().manual_seed(0))
    assert float(wrmf_loss(P, Q, R, W)) < 0.5 * float(wrmf_loss(P0, Q0, R, W))
    # a trained model ranks each user's own interactions high
    s = (P @ Q.T).detach()
    assert float(s[R > 0].mean()) > float(s[R == 0].mean()) + 0.3


@pytest.mark.parametrize("weight", ["mask", "linear"])
def test_hypergradient_matches_finite_differences(weight):
    """6 users x 5 items (4 real + 2 fake rows), d = 3, 8 epochs of which the last 3 are unrolled,
    float64; outer loss = the mean log-softmax of a target over the real users' scores."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(3)
    R_real = (torch.rand(4, 5, generator=g, dtype=torch.float64) < 0.5).double()
    X0 = 0.2 + 0.6 * torch.rand(2, 5, generator=g, dtype=torch.float64)  # inside (0, 1): the mask weight is constant nearby
    model = UnrolledWRMF(WRMFSettings(d=3, weight=weight, lr=5e-2), dtype=torch.float64)
    init = model.init(6, 5, torch.Generator().manual_seed(4))

    def outer(X):
        P, Q = model.train(R_real, X, 8, 3, init=init)
        return -torch.log_softmax(P[:4] @ Q.T, dim=1)[:, 2].mean()

    X = X0.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(outer(X), X)
    # finite differences of the same truncated map: the first 5 steps see X as data, outside the
    # graph, so the differences hold their input at X0 and move only the unrolled steps' data
    def truncated(Xv):
        return _from_state(model, R_real, X0, Xv, init)

    fd = torch.zeros_like(X0)
    h = 1e-6
    for idx in np.ndindex(*X0.shape):
        e = torch.zeros_like(X0)
        e[idx] = h
        fd[idx] = (truncated(X0 + e) - truncated(X0 - e)) / (2 * h)
    torch.testing.assert_close(grad, fd, rtol=1e-5, atol=1e-8)
    assert float(grad.abs().max()) > 1e-4  # not a vacuous zero


def _from_state(model, R_real, X_pre, X_unrolled, init):
    """Outer loss when the first 5 steps train on ``X_pre`` and the last 3 on ``X_unrolled``."""
    s = model.s
    P, Q = (t.clone() for t in init)
    R = torch.cat([R_real, X_pre])
    W = model.weights(R)
    mP, vP, mQ, vQ = (torch.zeros_like(t) for t in (P, P, Q, Q))
    for step in range(1, 9):
        if step == 6:
            R = torch.cat([R_real, X_unrolled])
            W = model.weights(R)
        gP, gQ = wrmf_grads(P, Q, R, W)
        P_new, mP, vP = adam_update(P, gP, mP, vP, step, s)
        Q, mQ, vQ = adam_update(Q, gQ, mQ, vQ, step, s)
        P = P_new
    return -torch.log_softmax(P[:4] @ Q.T, dim=1)[:, 2].mean()


def test_no_unroll_gives_no_graph_and_unroll_matches_plain_training():
    g = torch.Generator().manual_seed(0)
    R = (torch.rand(10, 7, generator=g, dtype=torch.float64) < 0.4).double()
    model = UnrolledWRMF(WRMFSettings(d=4), dtype=torch.float64)
    init = model.init(10, 7, torch.Generator().manual_seed(1))
    P0, Q0 = model.train(R[:8], R[8:], 12, 0, init=init)
    assert not P0.requires_grad
    X = R[8:].clone().requires_grad_(True)
    P1, Q1 = model.train(R[:8], X, 12, 4, init=init)
    assert P1.requires_grad
    torch.testing.assert_close(P1.detach(), P0, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(Q1.detach(), Q0, rtol=1e-10, atol=1e-12)
