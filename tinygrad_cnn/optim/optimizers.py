"""Optimizers: SGD (momentum, dampening, Nesterov, weight decay) and Adam, with PyTorch's update formulas and argument
order.

Both take a list of parameter Tensors (e.g. ``model.parameters()``, which lists a tied weight once; given a Module,
a dict, PyTorch's parameter groups, a non-leaf or the same Tensor twice they raise an error that says what to pass
instead: one optimizer per group; ``opt.param_groups`` says the options are attributes, ``opt.lr``).  ``step()``
reads each ``p.grad`` (parameters whose grad is None are skipped) and writes the update by assigning
``p.data = new_array``; ``zero_grad()`` sets every grad back to None (``set_to_none=False``: to zeros).  The state
(momentum buffers, Adam moments) is kept in the parameter's dtype, one entry per parameter; ``state_dict()`` and
``load_state_dict()`` save and restore it with the hyper-parameters, in PyTorch's layout, so training resumes
exactly (``tinygrad_cnn.save`` writes it with the model's).

Imports: numpy, hints.py, tensor.py, nn/module.py (to refuse a Module given as params).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping

import numpy as np

from ..hints import Unavailable, pytorch_args
from ..nn.module import Module
from ..tensor import Tensor

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
        if isinstance(p, Mapping):
            raise TypeError(f"{opt}: params[{i}] is a {type(p).__name__}: parameter groups (PyTorch's per-group "
                            f"options) are not supported here; make one optimizer per group, e.g. "
                            f"{opt}(model.fc.parameters(), lr=0.01), and step each")
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
    """Holds the parameter list; subclasses define ``_update(state, w, g)`` and ``HYPER`` (their hyper-parameters'
    names, set by ``_configure``)."""

    HYPER: tuple = ()
    STATE: tuple = ()  # the names a parameter's state may hold
    param_groups = Unavailable("one group here, its options are attributes: opt.lr = 0.01 (an lr scheduler sets "
                               "opt.lr); state_dict()['param_groups'] is PyTorch's layout")

    def __init__(self, params):
        self.params = _check_params(type(self).__name__, params)
        self.state = [{} for _ in self.params]
        self.initial_lr = None  # the lr the first lr scheduler started from (PyTorch's group["initial_lr"])

    @pytorch_args("zero_grad")
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Set every parameter's grad to None (as PyTorch's default); ``set_to_none=False``: to zeros of its shape."""
        for p in self.params:
            p.grad = None if set_to_none or p.grad is None else np.zeros_like(p.grad)

    def step(self) -> None:
        """Update every parameter that has a gradient."""
        for i, p in enumerate(self.params):
            if p.grad is not None:
                p.data = self._update(self.state[i], np.asarray(p.data), np.asarray(p.grad, dtype=p.dtype))

    def _update(self, state: dict, w: np.ndarray, g: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _configure(self, **hyper) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------------ state, as PyTorch lays it out
    def state_dict(self) -> dict:
        """``{"state": {index: {name: array or number}}, "param_groups": [{hyper-parameters..., "params": [0, 1,
        ...]}]}``, PyTorch's layout (one group; a parameter that has no state yet is left out; ``initial_lr`` once an lr
        scheduler was built); arrays are copies."""
        state = {i: {k: np.array(v, copy=True) if isinstance(v, np.ndarray) else v for k, v in s.items()}
                 for i, s in enumerate(self.state) if s}
        group = {name: getattr(self, name) for name in self.HYPER}
        if self.initial_lr is not None:  # set by a scheduler, as PyTorch's group["initial_lr"]
            group["initial_lr"] = self.initial_lr
        group["params"] = list(range(len(self.params)))
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict) -> None:
        """Restore what ``state_dict()`` gave (from this optimizer's class, over the same parameters in the same
        order): the hyper-parameters and each parameter's state, checked whole before anything changes."""
        who = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state_dict, Mapping) or set(state_dict) != {"state", "param_groups"}:
            found = sorted(state_dict) if isinstance(state_dict, Mapping) else type(state_dict).__name__
            raise ValueError(f"{who}: expected a dict with keys 'param_groups' and 'state' (opt.state_dict()), "
                             f"got {found}")
        groups = state_dict["param_groups"]
        if not isinstance(groups, (list, tuple)) or len(groups) != 1 or not isinstance(groups[0], Mapping):
            raise ValueError(f"{who}: expected param_groups to be a list of one group, got {groups!r}")
        group = dict(groups[0])
        initial_lr = group.pop("initial_lr", None)
        if initial_lr is not None:
            initial_lr = _check_number(type(self).__name__, "initial_lr", initial_lr)
        if set(group) != {*self.HYPER, "params"}:
            raise ValueError(f"{who}: the group holds {sorted(group)}, but {type(self).__name__} has "
                             f"{sorted({*self.HYPER, 'params'})} (a state of another optimizer?)")
        if list(group.pop("params")) != list(range(len(self.params))):
            raise ValueError(f"{who}: the saved state is for {len(groups[0]['params'])} parameters, this optimizer "
                             f"has {len(self.params)}")
        state = [{} for _ in self.params]
        for i, entries in state_dict["state"].items():
            if not isinstance(i, int) or not 0 <= i < len(self.params):
                raise ValueError(f"{who}: state key {i!r} is not a parameter index in [0, {len(self.params)})")
            state[i] = self._checked_entries(who, i, entries)
        saved = {name: getattr(self, name) for name in self.HYPER}
        try:
            self._configure(**group)
        except (TypeError, ValueError):
            self._configure(**saved)
            raise
        self.state, self.initial_lr = state, initial_lr

    def _checked_entries(self, who: str, i: int, entries) -> dict:
        """Parameter i's saved state, checked: this optimizer's names, arrays of the parameter's shape."""
        p = self.params[i]
        if not isinstance(entries, Mapping) or not set(entries) <= set(self.STATE):
            raise ValueError(f"{who}: the state of parameter {i} holds {entries!r}; {type(self).__name__} keeps "
                             f"{list(self.STATE)}")
        out = {}
        for name, value in entries.items():
            if isinstance(value, np.ndarray):
                if value.shape != p.shape:
                    raise ValueError(f"{who}: state {name!r} of parameter {i} has shape {value.shape}, the "
                                     f"parameter {p.shape}")
                value = np.array(value, dtype=p.dtype)
            out[name] = value
        return out


class SGD(Optimizer):
    """Stochastic gradient descent, as ``torch.optim.SGD``, arguments in its order.  For each parameter w::

        g = grad + weight_decay * w
        if momentum:
            buf = g                                        on the first step
            buf = momentum * buf + (1 - dampening) * g     afterwards
            g = g + momentum * buf         if nesterov, else  g = buf
        w = w - lr * g
    """

    HYPER = ("lr", "momentum", "dampening", "weight_decay", "nesterov")
    STATE = ("momentum_buffer",)

    @pytorch_args("SGD", ("params", "lr", "momentum", "dampening", "weight_decay", "nesterov"))
    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0, weight_decay: float = 0.0,
                 nesterov: bool = False):
        self._configure(lr, momentum, dampening, weight_decay, nesterov)
        super().__init__(params)

    def _configure(self, lr, momentum, dampening, weight_decay, nesterov) -> None:
        lr, momentum = _check_number("SGD", "lr", lr), _check_number("SGD", "momentum", momentum)
        dampening = _check_number("SGD", "dampening", dampening)
        weight_decay = _check_number("SGD", "weight_decay", weight_decay)
        if nesterov and (momentum == 0 or dampening != 0):
            raise ValueError(f"SGD: nesterov=True needs momentum > 0 and dampening = 0, got momentum={momentum}, "
                             f"dampening={dampening}")
        self.lr, self.momentum, self.dampening, self.weight_decay = lr, momentum, dampening, weight_decay
        self.nesterov = bool(nesterov)

    def _update(self, state, w, g):
        if self.weight_decay:
            g = g + self.weight_decay * w
        if self.momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = g.copy()
            else:
                buf = self.momentum * buf + (g if self.dampening == 0 else (1 - self.dampening) * g)
            state["momentum_buffer"] = buf
            g = g + self.momentum * buf if self.nesterov else buf
        return w - self.lr * g


class Adam(Optimizer):
    """Adam, as ``torch.optim.Adam`` (L2 weight decay added to the gradient), arguments in its order.  For each
    parameter w, at its t-th step (t = 1, 2, ...)::

        g = grad + weight_decay * w
        m = beta1 * m + (1 - beta1) * g            (m, v start at 0; state "exp_avg", "exp_avg_sq", as PyTorch)
        v = beta2 * v + (1 - beta2) * g**2
        m_hat = m / (1 - beta1**t)                 bias correction
        v_hat = v / (1 - beta2**t)
        w = w - lr * m_hat / (sqrt(v_hat) + eps)
    """

    HYPER = ("lr", "betas", "eps", "weight_decay")
    STATE = ("step", "exp_avg", "exp_avg_sq")

    @pytorch_args("Adam", ("params", "lr", "betas", "eps", "weight_decay", "amsgrad"))
    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        self._configure(lr, betas, eps, weight_decay)
        super().__init__(params)

    def _configure(self, lr, betas, eps, weight_decay) -> None:
        lr = _check_number("Adam", "lr", lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"Adam: betas must be a pair (beta1, beta2), got {betas!r}")
        betas = (_check_number("Adam", "betas[0]", betas[0], high=1.0, high_inclusive=False),
                 _check_number("Adam", "betas[1]", betas[1], high=1.0, high_inclusive=False))
        eps, weight_decay = _check_number("Adam", "eps", eps), _check_number("Adam", "weight_decay", weight_decay)
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay

    def _update(self, state, w, g):
        beta1, beta2 = self.betas
        if self.weight_decay:
            g = g + self.weight_decay * w
        t = state["step"] = state.get("step", 0) + 1
        m = state["exp_avg"] = beta1 * state.get("exp_avg", 0) + (1 - beta1) * g
        v = state["exp_avg_sq"] = beta2 * state.get("exp_avg_sq", 0) + (1 - beta2) * g * g
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        return w - self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
