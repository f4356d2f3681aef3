"""Gradient clipping, as ``torch.nn.utils``: ``clip_grad_norm_`` and ``clip_grad_value_``, between ``backward()``
and ``opt.step()``.

Imports: numpy, hints.py and tensor.py; no other nn file.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..hints import pytorch_args
from ..tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _with_grads(who: str, parameters) -> list:
    """The parameters (a Tensor or an iterable of them, e.g. ``model.parameters()``) that have a gradient."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    try:
        parameters = list(parameters)
    except TypeError:
        raise TypeError(f"{who}: parameters must be a Tensor or an iterable of Tensors (model.parameters()), got "
                        f"{type(parameters).__name__}") from None
    for i, p in enumerate(parameters):
        if not isinstance(p, Tensor):
            raise TypeError(f"{who}: parameters[{i}] must be a Tensor, got {type(p).__name__} (pass "
                            "model.parameters())")
    return [p for p in parameters if p.grad is not None]


def _norm(g: np.ndarray, p: float):
    """torch.linalg.vector_norm(g, p), in g's dtype."""
    a = np.abs(g)
    if p == math.inf:
        return a.max() if a.size else g.dtype.type(0)
    if p == 2:
        return np.sqrt(np.sum(a * a))
    return np.sum(a ** p) ** (1 / p)


@pytorch_args("clip_grad_norm_", ("parameters", "max_norm", "norm_type", "error_if_nonfinite", "foreach"))
def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0, error_if_nonfinite: bool = False) -> Tensor:
    """Scale every gradient by ``min(1, max_norm / (total_norm + 1e-6))``, as PyTorch, and return ``total_norm``:
    the ``norm_type``-norm of all the gradients together (the norm of the per-parameter norms), a 0-d Tensor.

    norm_type: a number > 0 or ``math.inf`` (the largest absolute entry). Parameters without a gradient are
    skipped; with none, the total norm is 0. ``error_if_nonfinite=True`` raises RuntimeError when the total norm is
    NaN or inf (else the gradients are scaled by it anyway, as PyTorch). parameters may be any iterable (read once).
    A ``.grad`` that is a Tensor (after ``backward(create_graph=True)``) is replaced by ``.grad * scale``, recorded, so
    it stays in the graph and can be differentiated again; the scale is a constant (PyTorch computes the norm under
    no_grad and scales the gradient in place).
    """
    params = _with_grads("clip_grad_norm_", parameters)  # once: parameters may be an iterator
    grads = [p.grad for p in params]
    if not isinstance(max_norm, numbers.Real) or isinstance(max_norm, bool):
        raise TypeError(f"clip_grad_norm_: max_norm must be a number, got {max_norm!r}")
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"clip_grad_norm_: norm_type must be > 0 or math.inf, got {norm_type}")
    if not grads:
        return Tensor(0.0)
    norms = np.array([_norm(np.asarray(g), norm_type) for g in grads])
    total = _norm(norms, norm_type)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is {total}, so "
                           "they cannot be clipped; error_if_nonfinite=False scales them by it anyway")
    scale = min(max_norm / (total + 1e-6), 1.0)
    for p in params:
        if isinstance(p.grad, Tensor):  # create_graph: a constant scale, recorded as an op (as PyTorch: no_grad norm)
            p.grad = p.grad * float(scale)
        else:
            p.grad = (p.grad * np.asarray(scale, total.dtype)).astype(p.grad.dtype, copy=False)
    return Tensor(total)


@pytorch_args("clip_grad_value_", ("parameters", "clip_value", "foreach"))
def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamp every gradient entry to ``[-clip_value, clip_value]``, as PyTorch (returns None). A ``.grad`` that is a
    Tensor (``backward(create_graph=True)``) is replaced by ``.grad.clip(...)``, recorded: it stays in the graph, its
    gradient passing where the entries were not clipped (PyTorch clamps the gradient in place, unrecorded)."""
    if not isinstance(clip_value, numbers.Real) or isinstance(clip_value, bool):
        raise TypeError(f"clip_grad_value_: clip_value must be a number, got {clip_value!r}")
    for p in _with_grads("clip_grad_value_", parameters):
        if isinstance(p.grad, Tensor):  # create_graph: the clip is recorded (the gradient passes where not clipped)
            p.grad = p.grad.clip(-clip_value, clip_value)
        else:
            p.grad = np.clip(p.grad, -clip_value, clip_value).astype(p.grad.dtype, copy=False)
