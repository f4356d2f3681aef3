"""Small helpers the ops share: axis arguments, shape errors, shape arguments. numpy only."""

from __future__ import annotations

import numpy as np


def normalize_axes(axis, shape: tuple, op: str) -> tuple:
    """axis (None, int or tuple) -> sorted tuple of non-negative axes; names op and shape if one is out of range
    (a 0-d tensor has no axis 0, as numpy)."""
    ndim = len(shape)
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{op}: axis {a} is out of range for a tensor of shape {shape} ({ndim} dims)")
    normalized = tuple(sorted(a % ndim for a in axes))
    twice = [a for a, b in zip(normalized, normalized[1:], strict=False) if a == b]
    if twice:
        raise ValueError(f"{op}: axis {axis} names axis {twice[0]} twice (shape {shape})")
    return normalized


def shape_error(op: str, err: Exception, *tensors) -> Exception:
    """A numpy shape error, re-worded with the op's name and the shapes it got."""
    shapes = " and ".join(str(t.shape) for t in tensors)
    return type(err)(f"{op}: {err} (got shapes {shapes})")


def shape_arg(shape: tuple) -> tuple:
    """``f(2, 3)`` and ``f((2, 3))`` both mean the shape (2, 3)."""
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)
