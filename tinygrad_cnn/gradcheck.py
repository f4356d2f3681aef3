"""gradcheck: compare backward() with central differences, in float64; gradgradcheck: the same for the backward that
``create_graph=True`` records (the derivatives of the first gradient)."""

from __future__ import annotations

import numpy as np

from .autograd import grad
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


def gradgradcheck(fn, *inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3, seed: int = 0) -> bool:
    """Check ``fn``'s recorded backward (``create_graph=True``) against central differences of its first gradient.

    With w a fixed random gradient at fn's output and u_i fixed random directions, s(inputs, w) = sum over the
    inputs that require grad of <d<fn(inputs), w>/dx_i, u_i> (a Hessian-vector product plus, through w, a
    Jacobian-vector product). Its gradient with respect to each such input and to w comes from
    ``grad(..., create_graph=True)`` then a second ``grad``; each entry is compared with the central difference of
    s, whose first gradients come from a plain backward() at the shifted points. First checks that the first
    gradients of the recording walk equal plain backward()'s. Runs in float64; returns True, or raises
    GradcheckError naming the input (w is "the output gradient w"), the element and both values.
    """
    xs = _as_float64_inputs(inputs)
    positions = [i for i, x in enumerate(xs) if isinstance(x, Tensor) and x.requires_grad]
    out = fn(*xs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradgradcheck: fn must return a Tensor, got {type(out).__name__}")
    rng = np.random.default_rng(seed)
    w = Tensor(rng.uniform(0.5, 1.5, out.shape), requires_grad=True, name="w")
    us = [rng.uniform(-1.0, 1.0, xs[i].shape) for i in positions]
    firsts = grad((out * w).sum(), [xs[i] for i in positions], create_graph=True, allow_unused=True)
    for pos, g, plain in zip(positions, firsts, _plain_gradients(fn, xs, positions, w.data), strict=True):
        got = np.zeros(xs[pos].shape) if g is None else g.data
        if not np.allclose(got, plain, rtol=1e-8, atol=1e-10 * max(1.0, float(np.abs(plain).max(initial=0)))):
            raise GradcheckError(f"gradgradcheck: the first gradient of {_who(xs, pos)} recorded with create_graph "
                                 f"differs from backward()'s by up to {np.abs(got - plain).max():.3g}")
    terms = [(g * u).sum() for g, u in zip(firsts, us, strict=True) if g is not None]
    s = sum(terms[1:], terms[0]) if terms else None
    targets = [xs[i] for i in positions] + [w]
    seconds = grad(s, targets, allow_unused=True) if s is not None and s.requires_grad else [None] * len(targets)

    def s_at(shifted, w_data) -> float:
        return float(sum(np.sum(g * u) for g, u in zip(_plain_gradients(fn, shifted, positions, w_data), us,
                                                       strict=True)))
    for k, (target, second) in enumerate(zip(targets, seconds, strict=True)):
        analytic = np.zeros(target.shape) if second is None else second.data
        for idx in np.ndindex(target.shape):
            values = []
            for step in (eps, -eps):
                data = np.array(target.data)
                data[idx] += step
                if k < len(positions):
                    shifted = list(xs)
                    shifted[positions[k]] = Tensor(data, dtype=np.float64)
                    values.append(s_at(shifted, w.data))
                else:
                    values.append(s_at(xs, data))
            numeric = (values[0] - values[1]) / (2 * eps)
            a = float(analytic[idx])
            if not abs(a - numeric) <= atol + rtol * abs(numeric):
                who = _who(xs, positions[k]) if k < len(positions) else f"the output gradient w of shape {w.shape}"
                raise GradcheckError(
                    f"gradgradcheck: derivative of the first gradient with respect to {who}, element {idx}: "
                    f"analytic {a:.8g} vs numeric {numeric:.8g} (|diff| {abs(a - numeric):.3g} > atol {atol} + "
                    f"rtol {rtol} * |numeric|)"
                )
    return True


def _who(xs, pos: int) -> str:
    x = xs[pos]
    return f"input {pos}" + (f" ({x.name!r})" if x.name else "") + f" of shape {x.shape}"


def _plain_gradients(fn, xs, positions, w_data) -> list:
    """[d<fn(xs), w>/dx_i for i in positions] by a plain backward() on fresh leaves (zeros where none reached)."""
    fresh = list(xs)
    for i in positions:
        fresh[i] = Tensor(xs[i].data, requires_grad=True, dtype=np.float64)
    fn(*fresh).backward(w_data)
    return [np.zeros(fresh[i].shape) if fresh[i].grad is None else np.asarray(fresh[i].grad) for i in positions]
