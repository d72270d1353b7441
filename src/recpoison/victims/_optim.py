"""Small optimisers for the torch victims: Adam, Adagrad, Rprop and SGD.

They compute exactly what ``torch.optim``'s single-tensor implementations compute (the ones torch
uses for CPU tensors; the same operations in the same order, so the same numbers), for the options
the victims use: no AMSGrad, no maximise, no learning-rate decay, plain floats for every setting.

Why not ``torch.optim``: constructing a ``torch.optim`` optimiser imports ``torch._dynamo``, which
took about 2 s on the two-core machine (measured on a cold process: 2.06 s for ``Adam([p])``), once
per process. Every ``recpoison run`` that trains a torch victim paid it, the per-cell overhead goal
is 1.5 s, and the matched LightGCN cell (docs/victims.md) takes under 4 s in all. The update itself
is the same few in-place tensor operations either way.

Interface: ``step()`` reads ``p.grad`` of every parameter (a parameter whose ``grad`` is None is
skipped, as torch does) and ``zero_grad()`` sets the gradients to None.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from . import _kernels


class Optimizer:
    """Base: holds the parameter list and per-parameter state."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float) -> None:
        self.params = list(params)
        self.lr = float(lr)
        self.state: list[dict[str, torch.Tensor]] = [{} for _ in self.params]

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        for p, st in zip(self.params, self.state):
            if p.grad is not None:
                self._update(p, p.grad, st)

    def _update(self, p: torch.Tensor, grad: torch.Tensor, st: dict) -> None:  # pragma: no cover
        raise NotImplementedError

    def _fused_begin(self, init):
        """Common start of a step by one of torch's fused kernels: the parameters that have a
        gradient, their gradients, their states (``init(p)`` gives a new one, with a float32 step
        counter ``step_t`` on the parameter's device added) and their step counters, incremented.
        None when no parameter has a gradient."""
        idx = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not idx:
            return None
        for i in idx:
            if not self.state[i]:
                p = self.params[i]
                self.state[i] = {"step_t": torch.zeros((), dtype=torch.float32, device=p.device), **init(p)}
        states = [self.state[i] for i in idx]
        steps = [st["step_t"] for st in states]
        torch._foreach_add_(steps, 1)
        return [self.params[i] for i in idx], [self.params[i].grad for i in idx], states, steps


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015) with torch's coupled ``weight_decay`` (L2 added to the gradient)."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 fused: bool = True):
        super().__init__(params, lr)
        self.beta1, self.beta2 = float(betas[0]), float(betas[1])
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        self.fused = bool(fused)

    @torch.no_grad()
    def step(self) -> None:
        """``fused`` (default): torch's fused Adam kernel (``torch._fused_adam_``, what
        ``torch.optim.Adam(fused=True)`` runs; the tests check it bitwise): one pass over each
        parameter instead of seven, 8x faster on the 110,000 parameters of dl-ncf's surrogate (0.12
        against about 1 ms a step, measured on the two-core machine). Its arithmetic is the same
        formula in another order, so results differ from the unfused update in the last bits.
        Otherwise the multi-tensor path below."""
        if self.fused:
            self._fused_step()
            return
        self._foreach_step()

    def _fused_step(self) -> None:
        def init(p):
            z = torch.zeros_like(p, memory_format=torch.preserve_format)
            return {"exp_avg": z, "exp_avg_sq": z.clone()}

        started = self._fused_begin(init)
        if started is None:
            return
        params, grads, states, steps = started
        torch._fused_adam_(
            params, grads, [st["exp_avg"] for st in states], [st["exp_avg_sq"] for st in states], [], steps,
            lr=self.lr, beta1=self.beta1, beta2=self.beta2, weight_decay=self.weight_decay, eps=self.eps,
            amsgrad=False, maximize=False, grad_scale=None, found_inf=None)

    def _foreach_step(self) -> None:
        """All parameters with a gradient in one pass of multi-tensor (``torch._foreach_*``) ops
        when they share their step count (the usual case): on CPU these run the per-tensor kernels
        one tensor after the other, so the numbers are those of the per-tensor update, for an
        eighth of the Python dispatches (the surrogate of dl-ncf has 12 parameters per step)."""
        idx = [i for i, p in enumerate(self.params) if p.grad is not None]
        if not idx:
            return
        for i in idx:
            st = self.state[i]
            if not st:
                st["step"] = 0
                st["exp_avg"] = torch.zeros_like(self.params[i], memory_format=torch.preserve_format)
                st["exp_avg_sq"] = torch.zeros_like(self.params[i], memory_format=torch.preserve_format)
        steps = {self.state[i]["step"] for i in idx}
        if len(steps) > 1:
            for i in idx:
                self._update(self.params[i], self.params[i].grad, self.state[i])
            return
        step = steps.pop() + 1
        for i in idx:
            self.state[i]["step"] = step
        params = [self.params[i] for i in idx]
        grads = [p.grad for p in params]
        if self.weight_decay != 0:
            grads = torch._foreach_add(grads, params, alpha=self.weight_decay)
        exp_avgs = [self.state[i]["exp_avg"] for i in idx]
        exp_avg_sqs = [self.state[i]["exp_avg_sq"] for i in idx]
        torch._foreach_lerp_(exp_avgs, grads, 1 - self.beta1)
        torch._foreach_mul_(exp_avg_sqs, self.beta2)
        torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - self.beta2)
        bias_correction1 = 1 - self.beta1**step
        bias_correction2 = 1 - self.beta2**step
        denom = torch._foreach_sqrt(exp_avg_sqs)
        torch._foreach_div_(denom, bias_correction2**0.5)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_addcdiv_(params, exp_avgs, denom, value=-(self.lr / bias_correction1))

    def _update(self, p, grad, st):
        if not st:
            st["step"] = 0
            st["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            st["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        st["step"] += 1
        step = st["step"]
        if self.weight_decay != 0:
            grad = grad.add(p, alpha=self.weight_decay)
        exp_avg, exp_avg_sq = st["exp_avg"], st["exp_avg_sq"]
        exp_avg.lerp_(grad, 1 - self.beta1)
        exp_avg_sq.mul_(self.beta2).addcmul_(grad, grad, value=1 - self.beta2)
        bias_correction1 = 1 - self.beta1**step
        bias_correction2 = 1 - self.beta2**step
        step_size = self.lr / bias_correction1
        denom = (exp_avg_sq.sqrt() / bias_correction2**0.5).add_(self.eps)
        p.addcdiv_(exp_avg, denom, value=-step_size)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011): ``p -= lr g / (sqrt(sum g^2) + eps)``, the sum starting at
    ``initial_accumulator_value`` (torch's parameter of that name)."""

    def __init__(self, params, lr: float = 1e-2, eps: float = 1e-10, initial_accumulator_value: float = 0.0,
                 fused: bool = True):
        super().__init__(params, lr)
        self.eps = float(eps)
        self.init = float(initial_accumulator_value)
        self.fused = bool(fused)

    @torch.no_grad()
    def step(self) -> None:
        """``fused`` (default): torch's fused Adagrad kernel (``torch._fused_adagrad_``, what
        ``torch.optim.Adagrad(fused=True)`` runs; tested bitwise), one pass over each parameter
        instead of four (CDAE's 216,000 parameters: about 0.5 to 0.1 ms a step). Otherwise the
        per-tensor update below (``torch.optim.Adagrad``'s default arithmetic)."""
        if not self.fused:
            super().step()
            return
        started = self._fused_begin(
            lambda p: {"sum": torch.full_like(p, self.init, memory_format=torch.preserve_format)}
        )
        if started is None:
            return
        params, grads, states, steps = started
        torch._fused_adagrad_(
            params, grads, [st["sum"] for st in states], steps, lr=self.lr, lr_decay=0.0, weight_decay=0.0,
            eps=self.eps, maximize=False, grad_scale=None, found_inf=None)

    def _update(self, p, grad, st):
        if not st:
            st["sum"] = torch.full_like(p, self.init, memory_format=torch.preserve_format)
        st["sum"].addcmul_(grad, grad, value=1)
        std = st["sum"].sqrt().add_(self.eps)
        p.addcdiv_(grad, std, value=-self.lr)


class Rprop(Optimizer):
    """Resilient back-propagation (Riedmiller and Braun, 1993), torch's defaults: step sizes start
    at ``lr``, grow by 1.2 while the gradient keeps its sign and shrink by 0.5 when it flips (that
    step is skipped), clamped to [1e-6, 50]."""

    def __init__(self, params, lr: float = 1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50.0), fused: bool = True):
        super().__init__(params, lr)
        self.etaminus, self.etaplus = float(etas[0]), float(etas[1])
        self.step_min, self.step_max = float(step_sizes[0]), float(step_sizes[1])
        #: on the CPU, float32 contiguous parameters take the compiled one-pass update
        #: (``_kernels.rprop_update``, bitwise the same; AutoRec's 1.7M parameters: about 20 ms a
        #: step as torch ops)
        self.fused = bool(fused)

    def _update(self, p, grad, st):
        if not st:
            st["prev"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            st["step_size"] = torch.full_like(grad, self.lr)
        prev, step_size = st["prev"], st["step_size"]
        if self.fused and _flat_cpu_float32(p, grad, prev, step_size):
            kernel = _kernels.rprop_update()
            if kernel is not None:
                f32 = np.float32
                kernel(*(t.detach().view(-1).numpy() for t in (p, grad, prev, step_size)), f32(self.etaminus),
                       f32(self.etaplus), f32(self.step_min), f32(self.step_max))
                return
        # torch.optim.Rprop's arithmetic, with torch.where / masked_fill in place of its boolean-mask
        # assignments (each a nonzero() and a scatter): the same values, bitwise (tested)
        sign = grad.mul(prev).sign_()
        factor = torch.where(sign > 0, self.etaplus, torch.where(sign < 0, self.etaminus, 1.0))
        step_size.mul_(factor).clamp_(self.step_min, self.step_max)
        grad = grad.masked_fill(factor.eq(self.etaminus), 0)
        p.addcmul_(grad.sign(), step_size, value=-1)
        prev.copy_(grad)


def _flat_cpu_float32(*ts: torch.Tensor) -> bool:
    return all(t.device.type == "cpu" and t.dtype == torch.float32 and t.is_contiguous() for t in ts)


class SGD(Optimizer):
    """Plain gradient descent, ``p -= lr g``."""

    def _update(self, p, grad, st):
        p.add_(grad, alpha=-self.lr)
