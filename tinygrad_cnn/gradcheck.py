"""gradcheck: compare backward() with central differences, in float64."""

from __future__ import annotations

import numpy as np

from .tensor import Tensor


class GradcheckError(AssertionError):
    """backward() and the numerical gradient disagree; the message names input and element."""


def _as_float64_inputs(inputs) -> list:
    """float64 copies of the Tensor inputs (same requires_grad and name); others pass through."""
    return [Tensor(x.data, x.requires_grad, x.name, dtype=np.float64) if isinstance(x, Tensor) else x
            for x in inputs]


def _weighted_output(fn, inputs, weights) -> float:
    """sum(fn(*inputs) * weights): a scalar whose gradient checks every output element."""
    return float(np.sum(np.asarray(fn(*inputs).data, dtype=np.float64) * weights))


def gradcheck(fn, *inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0) -> bool:
    """Check ``fn``'s backward against central differences for every element of every input.

    fn: Tensors -> Tensor (any shape; a fixed random weighting reduces it to a scalar so every
    output element is checked). inputs: Tensors (those with requires_grad=True are checked) or
    other arguments passed through.  Runs in float64.  Returns True, or raises GradcheckError
    naming the input (position and name), the element index, the analytic and numeric values.
    """
    xs = _as_float64_inputs(inputs)
    out = fn(*xs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    weights = np.random.default_rng(seed).uniform(0.5, 1.5, out.shape)
    out.backward(weights)
    for pos, x in enumerate(xs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        analytic = x.grad if x.grad is not None else np.zeros_like(x.data)
        for idx in np.ndindex(x.shape):
            numeric = _central_difference(fn, xs, pos, idx, eps, weights)
            a = float(analytic[idx])
            if not abs(a - numeric) <= atol + rtol * abs(numeric):
                who = f"input {pos}" + (f" ({x.name!r})" if x.name else "") + f" of shape {x.shape}"
                raise GradcheckError(
                    f"gradcheck: {who}, element {idx}: analytic {a:.8g} vs numeric {numeric:.8g} "
                    f"(|diff| {abs(a - numeric):.3g} > atol {atol} + rtol {rtol} * |numeric|)"
                )
    return True


def _central_difference(fn, xs, pos, idx, eps, weights) -> float:
    """(f(x + eps e_idx) - f(x - eps e_idx)) / (2 eps) for input ``pos``."""
    values = []
    for step in (eps, -eps):
        data = np.array(xs[pos].data)
        data[idx] += step
        shifted = list(xs)
        shifted[pos] = Tensor(data, requires_grad=False, dtype=np.float64)
        values.append(_weighted_output(fn, shifted, weights))
    return (values[0] - values[1]) / (2 * eps)
