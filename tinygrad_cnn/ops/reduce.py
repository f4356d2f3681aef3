"""Reductions: sum, mean, max, min over ``axis`` (None, an int or a tuple), with ``keepdims``; argmax; var and std,
written as a composition of those ops (so they need no backward of their own).

Each backward spreads g back over the reduced axes (``expand_reduced``), the same shape as the forward; on a
Tensor g (create_graph, see elementwise.py) with a broadcast_to op, or a multiply by constant shares for max/min.
"""

from __future__ import annotations

import numpy as np

from ..hints import pytorch_args
from .common import normalize_axes
from .facts import declare


def expand_reduced(g: np.ndarray, in_shape: tuple, axes: tuple, keepdims: bool) -> np.ndarray:
    """Broadcast the gradient of a reduction back over the reduced axes of ``in_shape`` (a read-only view)."""
    if not keepdims:
        g = np.expand_dims(g, axes) if axes else g
    return np.broadcast_to(g, in_shape)


def kept_dims(g, axes: tuple, keepdims: bool):
    """The Tensor gradient of a reduction with the reduced axes back as 1s (a reshape op unless keepdims)."""
    if keepdims or not axes:
        return g
    shape = list(g.shape)
    for a in axes:
        shape.insert(a, 1)
    return g.reshape(*shape)


def _axis_arg(axis, axes: tuple):
    """A reduction's axis as recorded: None for all axes, else the non-negative axes as a tuple."""
    return None if axis is None else axes


class ReduceOps:
    """Mixin of Tensor: sum, mean, max, min, argmax, var, std."""

    __slots__ = ()

    SUM = declare("sum", "da = g, spread over the summed axes", label_defaults={"keepdims": False})

    @pytorch_args("sum", ("dim", "keepdim"))
    def sum(self, axis=None, keepdims: bool = False):
        """Sum over ``axis``: (d0, d1, ...) -> the shape without the summed axes (kept as 1 with keepdims)."""
        axes = normalize_axes(axis, self.shape, "sum")
        shape = self.shape

        def _backward(g):
            if type(g) is not np.ndarray:
                return (kept_dims(g, axes, keepdims).broadcast_to(shape),)
            return (expand_reduced(g, shape, axes, keepdims),)
        out = self._data.sum(axis=axes, keepdims=keepdims)
        return self.from_op(out, (self,), self.SUM, _backward, axis=_axis_arg(axis, axes), keepdims=keepdims)

    MEAN = declare("mean", "da = g/n, spread over the n averaged entries", label_defaults={"keepdims": False})

    @pytorch_args("mean", ("dim", "keepdim"))
    def mean(self, axis=None, keepdims: bool = False):
        """Mean over ``axis``, shapes as ``sum``."""
        axes = normalize_axes(axis, self.shape, "mean")
        shape = self.shape
        count = int(np.prod([shape[a] for a in axes])) if axes else 1

        def _backward(g):
            if type(g) is not np.ndarray:
                return (kept_dims(g / count, axes, keepdims).broadcast_to(shape),)
            return (expand_reduced(g / count, shape, axes, keepdims),)
        out = self._data.mean(axis=axes, keepdims=keepdims)
        return self.from_op(out, (self,), self.MEAN, _backward, axis=_axis_arg(axis, axes), keepdims=keepdims)

    MAX = declare("max", "da = g to the maxima (ties share)", label_defaults={"keepdims": False})
    MIN = declare("min", "da = g to the minima (ties share)", label_defaults={"keepdims": False})

    def _extremum(self, op, reduce, axis, keepdims: bool):
        """max/min (op: their facts) over ``axis``: the gradient is shared evenly among tied extreme entries (as
        torch.amax)."""
        axes = normalize_axes(axis, self.shape, op.name)
        if self._data.size == 0:
            raise ValueError(f"{op.name}: cannot reduce an empty tensor (shape {self.shape})")
        x = self._data
        out = reduce(x, axis=axes, keepdims=True)

        def _backward(g):
            hits = x == out
            if type(g) is not np.ndarray:  # the shares are constants
                return (kept_dims(g, axes, keepdims) * (hits / hits.sum(axis=axes, keepdims=True)).astype(x.dtype),)
            g = g if keepdims else np.expand_dims(g, axes)
            return (g * hits / hits.sum(axis=axes, keepdims=True),)
        result = out if keepdims else np.squeeze(out, axis=axes)
        return self.from_op(result, (self,), op, _backward, axis=_axis_arg(axis, axes), keepdims=keepdims)

    @pytorch_args("max", ("dim", "keepdim"))
    def max(self, axis=None, keepdims: bool = False):
        """Maximum over ``axis``, shapes as ``sum``; tied maxima share the gradient evenly."""
        return self._extremum(self.MAX, np.max, axis, keepdims)

    @pytorch_args("min", ("dim", "keepdim"))
    def min(self, axis=None, keepdims: bool = False):
        """Minimum over ``axis``, shapes as ``sum``; tied minima share the gradient evenly."""
        return self._extremum(self.MIN, np.min, axis, keepdims)

    @pytorch_args("var", ("dim", "unbiased", "keepdim"))
    def var(self, axis=None, *, correction=1, keepdims: bool = False):
        """Variance over ``axis``, shapes as ``sum``: sum((x - mean)**2) / (n - correction), n the count of entries
        averaged. correction=1 (the default, PyTorch's: unbiased) or 0 (numpy's default, ``ddof=0``). A composition
        of ops (sub, mul, sum, div), so its gradient is theirs. n <= correction gives inf or nan, as PyTorch."""
        axes = normalize_axes(axis, self.shape, "var")
        if not isinstance(correction, (int, float, np.integer, np.floating)) or isinstance(correction, bool):
            raise TypeError(f"var: correction must be a number (1: unbiased, 0: numpy's ddof=0), got {correction!r}")
        n = int(np.prod([self.shape[a] for a in axes]))
        centered = self - self.mean(axis, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (centered * centered).sum(axis, keepdims=keepdims) / max(n - correction, 0)

    @pytorch_args("std", ("dim", "unbiased", "keepdim"))
    def std(self, axis=None, *, correction=1, keepdims: bool = False):
        """Standard deviation over ``axis``: ``var(axis, correction=..., keepdims=...).sqrt()`` (PyTorch's default
        correction=1)."""
        return self.var(axis, correction=correction, keepdims=keepdims).sqrt()

    @pytorch_args("argmax", ("dim", "keepdim"))
    def argmax(self, axis=None) -> np.ndarray:
        """Indices of the maxima (a plain ndarray: not differentiable)."""
        return np.argmax(self._data, axis=axis)
