"""Optimizers: SGD (momentum, Nesterov, weight decay) and Adam, with PyTorch's update formulas.

Both take a list of parameter Tensors (e.g. ``model.parameters()``, which lists a tied weight once;
given a Module, a dict, a non-leaf or the same Tensor twice they raise an error that says what to
pass instead).  ``step()`` reads each
``p.grad`` (parameters whose grad is None are skipped) and writes the update by assigning
``p.data = new_array``; ``zero_grad()`` sets every grad back to None.  The state (momentum
buffers, Adam moments) is kept in the parameter's dtype, one entry per parameter.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping

import numpy as np

from .nn.module import Module
from .tensor import Tensor

__all__ = ["Optimizer", "SGD", "Adam"]


def _check_number(opt: str, name: str, value, low: float = 0.0, high: float | None = None,
                  high_inclusive: bool = True) -> float:
    """value must be a real number in [low, high] (or [low, high) when not high_inclusive)."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not np.isfinite(value):
        raise ValueError(f"{opt}: {name} must be a finite number, got {value!r}")
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if value < low or too_high:
        bound = "" if high is None else (f", <= {high}" if high_inclusive else f", < {high}")
        raise ValueError(f"{opt}: {name} must be >= {low}{bound}, got {value!r}")
    return float(value)


def _check_params(opt: str, params) -> list:
    """params as a list of distinct leaf Tensors, or an error that says what to pass instead."""
    if isinstance(params, Tensor):
        raise TypeError(f"{opt}: params must be a list of Tensors (e.g. model.parameters()), "
                        "got a single Tensor; wrap it in a list")
    if isinstance(params, Module):
        raise TypeError(f"{opt}: params must be an iterable of Tensors, got a {type(params).__name__} "
                        "(a Module): pass model.parameters()")
    if isinstance(params, Mapping):
        raise TypeError(f"{opt}: params must be an iterable of Tensors, got a {type(params).__name__}: "
                        "pass list(d.values()) or model.parameters()")
    if not isinstance(params, Iterable):
        raise TypeError(f"{opt}: params must be an iterable of Tensors (e.g. model.parameters()), "
                        f"got {type(params).__name__}")
    params = list(params)
    if not params:
        raise ValueError(f"{opt}: got an empty parameter list")
    first_index = {}
    for i, p in enumerate(params):
        if isinstance(p, Module):
            raise TypeError(f"{opt}: params[{i}] is a {type(p).__name__} (a Module), not a Tensor: "
                            "pass model.parameters()")
        if not isinstance(p, Tensor):
            raise TypeError(f"{opt}: params[{i}] must be a Tensor, got {type(p).__name__}")
        if not p.is_leaf:  # PyTorch: "can't optimize a non-leaf Tensor"
            raise ValueError(f"{opt}: params[{i}] is not a leaf Tensor (it is the result of {p.op!r}); "
                             "optimize the leaf Tensors it was computed from")
        j = first_index.setdefault(id(p), i)
        if j != i:  # PyTorch only warns, then updates the tensor twice per step
            raise ValueError(f"{opt}: a parameter appears more than once in params (params[{j}] and "
                             f"params[{i}] are the same Tensor); pass each once (model.parameters() lists "
                             "a tied weight once)")
    return params


class Optimizer:
    """Holds the parameter list; subclasses define ``_update(i, p, g)``."""

    def __init__(self, params):
        self.params = _check_params(type(self).__name__, params)
        self.state = [{} for _ in self.params]

    def zero_grad(self) -> None:
        """Set every parameter's grad to None."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient."""
        for i, p in enumerate(self.params):
            if p.grad is not None:
                p.data = self._update(self.state[i], p.data, np.asarray(p.grad, dtype=p.dtype))

    def _update(self, state: dict, w: np.ndarray, g: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD`` (no dampening).  For each parameter w::

        g = grad + weight_decay * w
        if momentum:
            buf = g                        on the first step
            buf = momentum * buf + g       afterwards
            g = g + momentum * buf         if nesterov, else  g = buf
        w = w - lr * g
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False):
        self.lr = _check_number("SGD", "lr", lr)
        self.momentum = _check_number("SGD", "momentum", momentum)
        self.weight_decay = _check_number("SGD", "weight_decay", weight_decay)
        if nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0, got momentum=0")
        self.nesterov = bool(nesterov)
        super().__init__(params)

    def _update(self, state, w, g):
        if self.weight_decay:
            g = g + self.weight_decay * w
        if self.momentum:
            buf = state.get("momentum_buffer")
            buf = g.copy() if buf is None else self.momentum * buf + g
            state["momentum_buffer"] = buf
            g = g + self.momentum * buf if self.nesterov else buf
        return w - self.lr * g


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (L2 weight decay added to the gradient).  For each parameter w,
    at its t-th step (t = 1, 2, ...)::

        g = grad + weight_decay * w
        m = beta1 * m + (1 - beta1) * g            (m, v start at 0)
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t)                 bias correction
        v_hat = v / (1 - beta2**t)
        w = w - lr * m_hat / (sqrt(v_hat) + eps)
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        self.lr = _check_number("Adam", "lr", lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = (_check_number("Adam", "betas[0]", betas[0], high=1.0, high_inclusive=False),
                      _check_number("Adam", "betas[1]", betas[1], high=1.0, high_inclusive=False))
        self.eps = _check_number("Adam", "eps", eps)
        self.weight_decay = _check_number("Adam", "weight_decay", weight_decay)
        super().__init__(params)

    def _update(self, state, w, g):
        beta1, beta2 = self.betas
        if self.weight_decay:
            g = g + self.weight_decay * w
        t = state["step"] = state.get("step", 0) + 1
        m = state["m"] = beta1 * state.get("m", 0) + (1 - beta1) * g
        v = state["v"] = beta2 * state.get("v", 0) + (1 - beta2) * g * g
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        return w - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
