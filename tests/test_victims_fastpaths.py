"""The hand-written fast paths compute what the plain torch code computes.

* ``victims._optim``: the same parameters as ``torch.optim`` after many steps (bitwise; Adam fused and not), without
  importing ``torch._dynamo``;
* LightGCN's hand-written BPR gradient equals autograd's on the reference loss (``_pair_logits``).
"""

import subprocess
import sys

import numpy as np
import pytest
import torch

from recpoison.testing import planted_blocks
from recpoison.victims import _optim, make
from recpoison.victims.lightgcn import propagate, propagate_nograd


@pytest.mark.parametrize(
    "ours, theirs",
    [
        (lambda p: _optim.Adam(p, lr=1e-2, weight_decay=1e-3), lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-3, fused=True)),
        (lambda p: _optim.Adam(p, lr=1e-3), lambda p: torch.optim.Adam(p, lr=1e-3, fused=True)),
        (lambda p: _optim.Adam(p, lr=1e-2, weight_decay=1e-3, fused=False), lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-3, foreach=False)),
        (lambda p: _optim.Adam(p, lr=1e-3, fused=False), lambda p: torch.optim.Adam(p, lr=1e-3, foreach=False)),
        (lambda p: _optim.Adagrad(p, lr=0.3, eps=1.0), lambda p: torch.optim.Adagrad(p, lr=0.3, eps=1.0, fused=True)),
        (lambda p: _optim.Adagrad(p, lr=0.3, eps=1.0, fused=False), lambda p: torch.optim.Adagrad(p, lr=0.3, eps=1.0)),
        (lambda p: _optim.Adagrad(p, lr=0.3, eps=0.0, initial_accumulator_value=0.1), lambda p: torch.optim.Adagrad(p, lr=0.3, eps=0.0, initial_accumulator_value=0.1, fused=True)),
        (lambda p: _optim.Adagrad(p, lr=0.3, eps=0.0, initial_accumulator_value=0.1, fused=False), lambda p: torch.optim.Adagrad(p, lr=0.3, eps=0.0, initial_accumulator_value=0.1)),
        (lambda p: _optim.Rprop(p, lr=1e-2), lambda p: torch.optim.Rprop(p, lr=1e-2)),
        (lambda p: _optim.Rprop(p, lr=1e-2, fused=False), lambda p: torch.optim.Rprop(p, lr=1e-2)),
        (lambda p: _optim.Rprop(p, lr=0.3, etas=(0.4, 1.5), step_sizes=(1e-3, 0.5)), lambda p: torch.optim.Rprop(p, lr=0.3, etas=(0.4, 1.5), step_sizes=(1e-3, 0.5))),
        (lambda p: _optim.SGD(p, lr=1e-2), lambda p: torch.optim.SGD(p, lr=1e-2)),
    ],
)
def test_optimisers_match_torch_optim_bitwise(ours, theirs):
    g = torch.Generator().manual_seed(0)
    W0, b0 = torch.randn(20, 5, generator=g), torch.randn(5, generator=g)
    X, Y = torch.randn(64, 20, generator=g), torch.randn(64, 5, generator=g)
    out = []
    for make_opt in (ours, theirs):
        W, b = W0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
        opt = make_opt([W, b])
        for step in range(40):
            opt.zero_grad()
            loss = ((X @ W + b - Y) ** 2).mean() + (0.0 if step % 2 else (W**4).sum() * 1e-3)
            loss.backward()
            opt.step()
        out.append((W.detach(), b.detach()))
    assert torch.equal(out[0][0], out[1][0]) and torch.equal(out[0][1], out[1][1])
    assert not torch.equal(out[0][0], W0)  # it did move


def test_training_a_torch_victim_does_not_import_dynamo():
    code = (
        "import sys; from recpoison.victims import make; from recpoison.testing import planted_blocks; "
        "d = planted_blocks(seed=1); [make(n, epochs=1).fit(d) for n in ('gmf', 'lightgcn', 'autorec', 'cdae')]; "
        "print('torch._dynamo' in sys.modules)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False", res.stdout + res.stderr


def test_propagate_nograd_equals_propagate():
    m = planted_blocks(seed=2)
    model = make("lightgcn", d=6, epochs=0).fit(m)
    E0 = torch.randn(model.module_.E0.shape, generator=torch.Generator().manual_seed(1))
    for K in (0, 1, 3):
        np.testing.assert_allclose(propagate_nograd(model.adj_, E0, K).numpy(), propagate(model.adj_, E0, K).numpy(), atol=1e-6)


@pytest.mark.parametrize("reg", [0.0, 1e-2])
def test_lightgcn_hand_written_bpr_gradient_equals_autograd(reg):
    data = planted_blocks(seed=4)
    model = make("lightgcn", d=8, n_layers=2, epochs=1, reg=reg, seed=0).fit(data)
    rng = np.random.default_rng(0)
    u = torch.from_numpy(rng.integers(0, data.n_users, 64))
    items = torch.from_numpy(rng.integers(0, data.n_items, (64, 2)))
    E0 = model.module_.E0

    class Capture:  # an "optimiser" that keeps the gradient it is handed
        def step(self):
            self.grad = E0.grad.clone()

    cap = Capture()
    before = E0.detach().clone()
    loss_fast = model._train_step(u, items, None, cap)
    assert torch.equal(E0.detach(), before)  # Capture does not move the parameters

    E0.grad = None
    logits, ego = model._pair_logits(u, items)
    loss = -torch.nn.functional.logsigmoid(logits[:, 0] - logits[:, 1]).mean()
    if reg > 0:
        loss = loss + reg * 0.5 * sum((e**2).sum() for e in ego) / u.shape[0]
    loss.backward()
    np.testing.assert_allclose(float(loss_fast), float(loss.detach()), rtol=1e-5)
    np.testing.assert_allclose(cap.grad.numpy(), E0.grad.numpy(), atol=1e-7, rtol=1e-4)


@pytest.mark.parametrize("path", ["compiled", "torch"])
def test_gmf_hand_written_bce_gradient_equals_autograd(path, monkeypatch):
    from recpoison.victims import _kernels

    if path == "torch":  # the GPU path, run on the CPU
        monkeypatch.setattr(_kernels, "gmf_bce_step", lambda: None)
    else:
        assert _kernels.gmf_bce_step() is not None  # numba is a dependency: the compiled loop runs
    data = planted_blocks(seed=4)
    model = make("gmf", d=8, epochs=1, seed=0).fit(data)
    rng = np.random.default_rng(1)
    u = torch.from_numpy(rng.integers(0, data.n_users, 128))
    items = torch.from_numpy(rng.integers(0, data.n_items, (128, 1)))
    u, items = torch.cat([u, u[:20]]), torch.cat([items, items[:20]])  # repeated pairs, as sampled negatives may be
    y = torch.from_numpy(rng.integers(0, 2, (148, 1)).astype(np.float32))
    params = dict(model.module_.named_parameters())

    class Capture:
        def step(self):
            self.grads = {k: p.grad.clone() for k, p in params.items()}

    cap = Capture()
    loss_fast = model._train_step(u, items, y, cap)
    for p in params.values():
        p.grad = None
    logits, _ = model._pair_logits(u, items)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
    loss.backward()
    np.testing.assert_allclose(float(loss_fast), float(loss.detach()), rtol=1e-6)
    for k, p in params.items():
        np.testing.assert_allclose(cap.grads[k].numpy(), p.grad.numpy(), atol=1e-8, rtol=1e-4, err_msg=k)


@pytest.mark.parametrize("order", ["csr", "shuffled"])
def test_observed_dot_value_and_gradient_equal_the_dense_reference(order):
    from recpoison.victims._autoenc import observed_dot

    g = torch.Generator().manual_seed(3)
    A0, B0 = torch.randn(30, 7, generator=g), torch.randn(20, 7, generator=g)
    mask = torch.rand(30, 20, generator=g) < 0.3
    mask[5] = False  # an empty row
    rows, cols = mask.nonzero(as_tuple=True)  # row-major: csr order
    if order == "shuffled":
        perm = torch.randperm(rows.numel(), generator=g)
        rows, cols = rows[perm], cols[perm]
    w = torch.randn(rows.numel(), generator=g)
    A, B = A0.clone().requires_grad_(True), B0.clone().requires_grad_(True)
    out = observed_dot(A, B, rows, cols)
    (out * w).sum().backward()
    A2, B2 = A0.clone().requires_grad_(True), B0.clone().requires_grad_(True)
    ref = (A2 @ B2.T)[rows, cols]
    (ref * w).sum().backward()
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), atol=1e-5)
    np.testing.assert_allclose(A.grad.numpy(), A2.grad.numpy(), atol=1e-5)
    np.testing.assert_allclose(B.grad.numpy(), B2.grad.numpy(), atol=1e-5)


def test_mf_trains_on_one_thread_whatever_torch_is_set_to():
    data = planted_blocks(seed=6)
    n = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        a = make("mf", d=8, sweeps=4, seed=0).fit(data)
        assert torch.get_num_threads() == 2  # restored after the fit
        torch.set_num_threads(1)
        b = make("mf", d=8, sweeps=4, seed=0).fit(data)
    finally:
        torch.set_num_threads(n)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)


@pytest.mark.parametrize("victim", ["ncf", "gmf-branch"])
def test_neumf_hand_written_bce_gradient_equals_autograd(victim):
    """``ncf.neumf_bce_step_grads`` (the ncf victim's step and dl-ncf's surrogate) gives autograd's
    loss and gradient of every parameter, the tower's ReLUs included; also for the GMF branch alone."""
    from recpoison.victims.ncf import neumf_bce_step_grads

    data = planted_blocks(seed=4)
    model = make("ncf", epochs=1, seed=0).fit(data)  # trained a little: some ReLUs are off
    m = model.module_
    rng = np.random.default_rng(2)
    u = torch.from_numpy(rng.integers(0, data.n_users, 128))
    i = torch.from_numpy(rng.integers(0, data.n_items, 128))
    y = torch.from_numpy(rng.integers(0, 2, 128).astype(np.float32))
    mlp = victim == "ncf"
    h = m.h if mlp else torch.nn.Parameter(m.h.detach()[: m.d].clone())
    args = (m.Pg, m.Qg, m.Pm, m.Qm, list(m.W), list(m.B)) if mlp else (m.Pg, m.Qg, None, None, None, None)
    params = {"Pg": m.Pg, "Qg": m.Qg, "h": h, "b": m.b}
    if mlp:
        params.update({"Pm": m.Pm, "Qm": m.Qm, **{f"W{j}": w for j, w in enumerate(m.W)}, **{f"B{j}": b for j, b in enumerate(m.B)}})
    loss_fast = neumf_bce_step_grads(*args, h, m.b, u, i, y)
    fast = {k: p.grad.clone() for k, p in params.items()}
    for p in params.values():
        p.grad = None
    logit = (m.Pg[u] * m.Qg[i]) @ h[: m.d] + m.b
    if mlp:
        z1 = torch.cat([m.Pm[u], m.Qm[i]], dim=1) @ m.W[0].T + m.B[0]
        assert 0.05 < float((z1 > 0).float().mean()) < 0.95  # both sides of the ReLU are exercised
        logit = logit + m.tower(z1) @ h[m.d :]
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, y)
    loss.backward()
    np.testing.assert_allclose(float(loss_fast), float(loss.detach()), rtol=1e-6)
    for k, p in params.items():
        np.testing.assert_allclose(fast[k].numpy(), p.grad.numpy(), atol=1e-8, rtol=1e-4, err_msg=k)


def test_pair_pattern_products_equal_the_dense_reference_with_repeated_and_unsorted_pairs():
    from recpoison.victims._sparse import PairPattern, mm, observed_dot, spmm

    g = torch.Generator().manual_seed(5)
    rows = torch.randint(0, 12, (80,), generator=g)
    cols = torch.randint(0, 9, (80,), generator=g)
    rows, cols = torch.cat([rows, rows[:10]]), torch.cat([cols, cols[:10]])  # repeated pairs
    v = torch.randn(90, generator=g, dtype=torch.float64)
    dense = torch.zeros(12, 9, dtype=torch.float64).index_put_((rows, cols), v, accumulate=True)
    p = PairPattern(rows, cols, 12, 9)
    assert p.order is not None  # random pairs are not in csr order
    X, Y = torch.randn(9, 200, generator=g, dtype=torch.float64), torch.randn(12, 200, generator=g, dtype=torch.float64)
    np.testing.assert_allclose(mm(p.by_row(v), X).numpy(), (dense @ X).numpy(), atol=1e-12)  # 200 columns: blocked
    np.testing.assert_allclose(mm(p.by_col(v), Y).numpy(), (dense.T @ Y).numpy(), atol=1e-12)
    assert torch.equal(mm(p.by_row(v), X), torch.sparse.mm(p.by_row(v), X))  # blocking changes no bit
    A = Y.clone().requires_grad_(True)
    B = X.clone().requires_grad_(True)
    out = observed_dot(A, B, p)
    np.testing.assert_allclose(out.detach().numpy(), (Y[rows] * X[cols]).sum(1).numpy(), atol=1e-12)
    (out * v).sum().backward()
    np.testing.assert_allclose(A.grad.numpy(), (dense @ X).numpy(), atol=1e-12)
    np.testing.assert_allclose(B.grad.numpy(), (dense.T @ Y).numpy(), atol=1e-12)
    Z = X.clone().requires_grad_(True)
    M, Mt = p.by_row(v), p.by_col(v)
    (spmm(M, Mt, Z) * Y).sum().backward()
    np.testing.assert_allclose(Z.grad.numpy(), (dense.T @ Y).numpy(), atol=1e-12)


@pytest.mark.parametrize("corruption", [0.0, 0.2])
def test_cdae_hand_written_gradient_equals_autograd(corruption):
    """CDAE's ``_step`` (gradient written out) against autograd on ``_batch_objective``, with the
    same random draws (the generator restarted from the same state)."""
    data = planted_blocks(seed=4)
    model = make("cdae", factors=6, epochs=2, corruption=corruption, reg=0.05, seed=0).fit(data)
    p = model.params_
    users = np.array([3, 0, 7, 5, 11])
    gen = torch.Generator().manual_seed(9)

    class Capture:
        def step(self):
            self.grads = {k: v.grad.clone() for k, v in p.items()}

    cap = Capture()
    before = {k: v.detach().clone() for k, v in p.items()}
    loss_fast = model._step(model._Y, users, cap, gen)
    assert all(torch.equal(p[k].detach(), before[k]) for k in p)
    for v in p.values():
        v.grad = None
    loss = model._batch_objective(model._Y, users, torch.Generator().manual_seed(9))
    loss.backward()
    np.testing.assert_allclose(loss_fast, float(loss.detach()), rtol=1e-5)
    for k, v in p.items():
        np.testing.assert_allclose(cap.grads[k].numpy(), v.grad.numpy(), atol=1e-7, rtol=1e-4, err_msg=k)
    rest = np.setdiff1d(np.arange(data.n_users), users)
    assert not cap.grads["V"][rest].any() and cap.grads["V"][users].abs().sum(1).gt(0).all()


def test_bce_instances_compiled_equal_the_numpy_reference(monkeypatch):
    """The compiled negative test and instance assembly give the instances of the numpy code, bitwise."""
    from recpoison.victims import _kernels, _neural

    data = planted_blocks(seed=1)
    u, i = _neural.positive_pairs(data.matrix)
    seen = _neural.SeenPairs.of(data.matrix)
    fast = _neural.bce_instances(u, i, seen, data.n_items, 4, np.random.default_rng(3))
    monkeypatch.setattr(_kernels, "seen_hits", lambda: None)
    monkeypatch.setattr(_kernels, "bce_assemble", lambda: None)
    slow = _neural.bce_instances(u, i, seen, data.n_items, 4, np.random.default_rng(3))
    for a, b in zip(fast, slow):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert fast[2].sum() == u.size and fast[0].size == 5 * u.size


def test_cdae_draws_follow_eq5_and_the_negative_sampling():
    """CDAE's batch draws: the corrupted input keeps each observed entry with probability 1 - q,
    scaled by 1/(1 - q), and is 0 elsewhere; sampled negatives never hit an observed item and number
    NS |O_u| per user in expectation."""
    data = planted_blocks(seed=4)
    q, ns = 0.3, 2
    model = make("cdae", factors=4, epochs=1, corruption=q, negatives=ns, seed=0).fit(data)
    Y = model._Y
    users = np.arange(data.n_users)
    gen = torch.Generator().manual_seed(3)
    kept, negs = [], []
    for _ in range(200):
        y, y_in, neg = model._draw(Y, users, gen)
        assert torch.equal(y, torch.from_numpy(Y.toarray()))
        assert not y_in[y == 0].any() and not neg[y == 1].any()
        vals = y_in[y == 1]
        assert bool(((vals == 0) | torch.isclose(vals, torch.tensor(1 / (1 - q)))).all())
        kept.append(float((vals > 0).float().mean()))
        negs.append(neg.sum(1).numpy())
    assert abs(np.mean(kept) - (1 - q)) < 0.01
    n_pos = np.diff(Y.indptr)
    expected = np.minimum(ns * n_pos, Y.shape[1] - n_pos)
    np.testing.assert_allclose(np.mean(negs, axis=0), expected, rtol=0.1, atol=0.3)
