"""NeuMF, the fusion of GMF and an MLP tower from Neural Collaborative Filtering.

He, Liao, Zhang, Nie, Hu, Chua, "Neural Collaborative Filtering", WWW 2017 (NCF), §3.4, eqs. (11)-(12)::

    phi_GMF = p^G_u ⊙ q^G_i
    phi_MLP = a_L(W_L^T (... a_2(W_2^T [p^M_u ; q^M_i] + b_2) ...) + b_L)        a = ReLU (§3.3)
    y_hat_ui = sigmoid( h^T [phi_GMF ; phi_MLP] )

with separate embeddings for the two branches, trained on implicit feedback with the binary
cross-entropy of eq. (7): every observed interaction is a positive and ``n_neg`` (paper: 4) items
drawn uniformly among the user's non-interacted items per positive and per epoch are negatives;
Adam (§4.1). Scores are the logits ``h^T [phi_GMF ; phi_MLP] + b`` (a monotone transform of eq. (12)).

Defaults: seed 003 (Table 4) only gives a setting for its "NCF" victim, which it instantiates as
GMF (see ``gmf``); seed 002 uses an NCF re-implementation without listing its settings. So, as the
brief asks, the NCF paper's defaults are used (its public code's ``NeuMF`` defaults): predictive
factors ``d = 8`` for the GMF branch, MLP ``layers = (64, 32, 16, 8)`` where 64 is the width of the
concatenated MLP embeddings (32 per side) and 32 -> 16 -> 8 the ReLU tower, 4 negatives, Adam with
learning rate 1e-3, no L2 (``reg = 0``).

Departures: NeuMF is trained from a random initialisation; the paper's optional pre-training of
the two branches (§3.4.1) is not implemented. The paper trains with batch sizes in {128, 256, 512, 1024}; 1024 is used for speed, and
the number of epochs (20) is not given by the paper. It is chosen so that training on ML-100K
takes about 20 s on two CPU cores and still reaches a leave-one-out HR@10 of about 0.12.
When ``reg > 0``, L2 is applied as in ``gmf``: ``reg / 2 * ||theta||^2`` over all parameters,
through Adam's ``weight_decay``. Initialisation as the NCF code: embeddings N(0, 0.01^2), weights
Glorot-uniform, biases 0.
``user_embeddings()`` returns ``[p^G_u ; p^M_u]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..config import check
from ._neural import NeuralVictim, normal_, xavier_uniform_
from .base import VICTIMS


@dataclass(frozen=True)
class NCFConfig:
    """Hyper-parameters of :class:`NeuMF` (defaults: NCF paper / reference code, see module doc)."""

    d: int = 8
    layers: tuple[int, ...] = (64, 32, 16, 8)
    epochs: int = 20
    batch_size: int = 1024
    lr: float = 1e-3
    reg: float = 0.0
    n_neg: int = 4
    init_std: float = 0.01
    seed: int = 0
    device: str = "cpu"
    #: explicit ratings >= threshold become interactions; None: every rating (seed 003 App. A.5)
    threshold: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(int(x) for x in self.layers))
        check(self.d >= 1, f"ncf: d={self.d} must be at least 1")
        check(
            len(self.layers) >= 2 and all(x >= 1 for x in self.layers) and self.layers[0] % 2 == 0,
            f"ncf: layers={self.layers} needs >= 2 positive widths, the first even (two embeddings)",
        )
        check(self.epochs >= 0, f"ncf: epochs={self.epochs} must be >= 0")
        check(self.batch_size >= 1, f"ncf: batch_size={self.batch_size} must be at least 1")
        check(self.lr > 0, f"ncf: lr={self.lr} must be positive")
        check(self.reg >= 0, f"ncf: reg={self.reg} must be >= 0")
        check(self.n_neg >= 1, f"ncf: n_neg={self.n_neg} must be at least 1")
        check(self.init_std > 0, f"ncf: init_std={self.init_std} must be positive")
        check(self.device in ("cpu", "cuda"), f"ncf: device={self.device!r} must be 'cpu' or 'cuda'")


class _NeuMFModule(torch.nn.Module):
    def __init__(self, n_users, n_items, d, layers, std, gen) -> None:
        super().__init__()
        half = layers[0] // 2
        self.Pg = torch.nn.Parameter(normal_(torch.empty(n_users, d), std, gen))
        self.Qg = torch.nn.Parameter(normal_(torch.empty(n_items, d), std, gen))
        self.Pm = torch.nn.Parameter(normal_(torch.empty(n_users, half), std, gen))
        self.Qm = torch.nn.Parameter(normal_(torch.empty(n_items, half), std, gen))
        self.W = torch.nn.ParameterList(
            [torch.nn.Parameter(xavier_uniform_(torch.empty(o, i), gen)) for i, o in zip(layers[:-1], layers[1:])]
        )
        self.B = torch.nn.ParameterList([torch.nn.Parameter(torch.zeros(o)) for o in layers[1:]])
        self.h = torch.nn.Parameter(xavier_uniform_(torch.empty(1, d + layers[-1]), gen)[0].clone())
        self.b = torch.nn.Parameter(torch.zeros(()))
        self.half = half
        self.d = d

    def tower(self, z1: torch.Tensor) -> torch.Tensor:
        """ReLU tower from the pre-activation of the first hidden layer."""
        x = torch.relu(z1)
        for W, B in zip(list(self.W)[1:], list(self.B)[1:]):
            x = torch.relu(x @ W.T + B)
        return x


@torch.no_grad()
def neumf_bce_step_grads(Pg, Qg, Pm, Qm, Ws, Bs, h, b, u: torch.Tensor, i: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy (NCF eq. (7)) of NeuMF's logits on the pairs ``(u, i)`` with labels
    ``y`` (all (N,)), and its gradient written out (no autograd graph), stored in each parameter's
    ``.grad``. ``logit = h_G . (p^G_u * q^G_i) + h_M . tower([p^M_u ; q^M_i]) + b``, the tower
    ``relu(W_l x + B_l)`` layer after layer; ``dL/dlogit = (sigmoid(logit) - y) / N``, then the chain
    rule back through the tower (ReLU passes the gradient where its input is > 0, as autograd's
    ``relu`` backward does). The embedding gradients are dense tables filled by ``index_add_`` (rows
    outside the batch are zero, as autograd's gradient of an index). ``Pm``/``Qm``/``Ws``/``Bs`` None:
    the GMF branch alone (``h`` then has ``d`` entries). The tests compare it with autograd."""
    pg = Pg.index_select(0, u)
    qg = Qg.index_select(0, i)
    d = pg.shape[1]
    pq = pg * qg
    logit = pq @ h[:d] + b
    if Ws is not None:
        half = Pm.shape[1]
        pm = Pm.index_select(0, u)
        qm = Qm.index_select(0, i)
        W1 = Ws[0]
        z = torch.addmm(Bs[0], pm, W1[:, :half].T).addmm_(qm, W1[:, half:].T)
        zs = [z]
        x = torch.relu(z)
        xs = [x]
        for W, B in zip(Ws[1:], Bs[1:]):
            z = torch.addmm(B, x, W.T)
            zs.append(z)
            x = torch.relu(z)
            xs.append(x)
        logit = logit + x @ h[d:]
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logit, y)
    g = (torch.sigmoid(logit) - y) * (1.0 / u.shape[0])
    gpq = g.unsqueeze(1) * h[:d]
    Pg.grad = torch.zeros_like(Pg).index_add_(0, u, gpq * qg)
    Qg.grad = torch.zeros_like(Qg).index_add_(0, i, gpq * pg)
    gh = pq.T @ g
    if Ws is not None:
        gh = torch.cat([gh, xs[-1].T @ g])
        gx = g.unsqueeze(1) * h[d:]
        for layer in range(len(Ws) - 1, -1, -1):
            gz = gx * (zs[layer] > 0)
            inp = xs[layer - 1] if layer > 0 else None
            Bs[layer].grad = gz.sum(0)
            if layer > 0:
                Ws[layer].grad = gz.T @ inp
                gx = gz @ Ws[layer]
            else:
                Ws[0].grad = torch.cat([gz.T @ pm, gz.T @ qm], dim=1)
                Pm.grad = torch.zeros_like(Pm).index_add_(0, u, gz @ Ws[0][:, :half])
                Qm.grad = torch.zeros_like(Qm).index_add_(0, i, gz @ Ws[0][:, half:])
    h.grad = gh
    b.grad = g.sum()
    return loss


@VICTIMS.register(
    "ncf",
    paper="He et al., WWW 2017 (NCF), NeuMF §3.4 eqs. (11)-(12) with the log loss eq. (7)",
    summary="NeuMF: GMF branch + ReLU MLP tower on implicit feedback, BCE with sampled negatives, Adam",
)
class NeuMF(NeuralVictim):
    """NCF's NeuMF (registered as ``ncf``). Learned: ``module_`` (embeddings, tower, ``h``, ``b``)."""

    Config = NCFConfig
    loss_kind = "bce"
    reg_form = "all"
    single_thread = True

    def _build(self, n_users, n_items, gen):
        c = self.config
        return _NeuMFModule(n_users, n_items, c.d, c.layers, c.init_std, gen)

    def _pair_logits(self, u, items):
        m = self.module_
        B, k = items.shape
        flat = items.reshape(-1)
        pg = m.Pg.index_select(0, u)
        qg = m.Qg.index_select(0, flat).view(B, k, -1)
        pm = m.Pm.index_select(0, u)
        qm = m.Qm.index_select(0, flat).view(B, k, -1)
        W1 = m.W[0]
        # first layer on [p ; q] split into its user and item halves (same as concatenation)
        z1 = (pm @ W1[:, : m.half].T).unsqueeze(1) + qm @ W1[:, m.half :].T + m.B[0]
        phi = torch.cat([pg.unsqueeze(1) * qg, m.tower(z1)], dim=-1)
        return phi @ m.h + m.b, [pg, qg, pm, qm]

    @torch.no_grad()
    def _train_step(self, u, items, y, opt):
        """One BCE step (eq. (7)) with the gradient written out (:func:`neumf_bce_step_grads`; the
        tests compare it with autograd on ``_pair_logits``); the weight decay is Adam's."""
        m = self.module_
        k = items.shape[1]
        uu = u if k == 1 else u.repeat_interleave(k)
        loss = neumf_bce_step_grads(m.Pg, m.Qg, m.Pm, m.Qm, list(m.W), list(m.B), m.h, m.b, uu, items.reshape(-1), y.reshape(-1))
        opt.step()
        return loss

    def _score_block(self, users):
        m = self.module_
        n_items = m.Qg.shape[0]
        W1 = m.W[0]
        zu = m.Pm.index_select(0, users) @ W1[:, : m.half].T + m.B[0]  # (U, h1)
        zi = m.Qm @ W1[:, m.half :].T  # (I, h1)
        hg, hm = m.h[: m.d], m.h[m.d :]
        gmf = (m.Pg.index_select(0, users) * hg) @ m.Qg.T  # (U, I)
        chunk = max(1, int(4_000_000 // max(1, n_items * W1.shape[0])))
        parts = []
        for s in range(0, users.shape[0], chunk):  # memory-bounded blocks of users
            x = m.tower(zu[s : s + chunk, None, :] + zi[None, :, :])
            parts.append(x @ hm)
        return gmf + torch.cat(parts, dim=0) + m.b

    def _user_embeddings(self):
        return torch.cat([self.module_.Pg, self.module_.Pm], dim=1)
