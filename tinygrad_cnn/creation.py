"""Tensor's constructors, a mixin: ``Tensor.zeros/ones/full/arange/eye/randn/rand/uniform``, ``zeros_like/ones_like``.

Each builds a numpy array in the default float dtype (``set_default_dtype``) unless ``dtype=`` says float32 or
float64, then a leaf with ``cls(array, requires_grad, name)``. ``seed``: an int or a ``numpy.random.Generator``
(None: ``manual_seed``'s generator, else fresh entropy).

Imports numpy, dtypes.py, seeding.py and ops/common.py; never tensor.py (Tensor inherits this class).
"""

from __future__ import annotations

import numpy as np

from .dtypes import get_default_dtype
from .ops.common import shape_arg
from .seeding import generator


class Creation:
    """Mixin of Tensor: the classmethods that build a leaf from a shape (or another tensor's shape)."""

    __slots__ = ()

    @classmethod
    def zeros(cls, *shape, dtype=None, requires_grad=False, name=None):
        """Zeros of ``shape`` (``zeros(2, 3)`` or ``zeros((2, 3))``)."""
        return cls(np.zeros(shape_arg(shape), dtype or get_default_dtype()), requires_grad, name)

    @classmethod
    def ones(cls, *shape, dtype=None, requires_grad=False, name=None):
        """Ones of ``shape``."""
        return cls(np.ones(shape_arg(shape), dtype or get_default_dtype()), requires_grad, name)

    @classmethod
    def full(cls, shape, fill_value, dtype=None, requires_grad=False, name=None):
        """``fill_value`` everywhere in ``shape`` (an int or a tuple), as ``torch.full`` and ``np.full``."""
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        return cls(np.full(shape, fill_value, dtype or get_default_dtype()), requires_grad, name)

    @classmethod
    def arange(cls, start, stop=None, step=1, dtype=None, requires_grad=False, name=None):
        """start, start + step, ... below stop (``arange(5)``: 0..4), as ``torch.arange`` and ``np.arange``; a float
        Tensor like every other (numbers in the default dtype)."""
        values = np.arange(start, step=step) if stop is None else np.arange(start, stop, step)
        return cls(values.astype(dtype or get_default_dtype()), requires_grad, name)

    @classmethod
    def eye(cls, n, m=None, dtype=None, requires_grad=False, name=None):
        """The (n, m) identity (m defaults to n), as ``torch.eye`` and ``np.eye``."""
        return cls(np.eye(n, m, dtype=dtype or get_default_dtype()), requires_grad, name)

    @classmethod
    def randn(cls, *shape, seed=None, dtype=None, requires_grad=False, name=None):
        """Standard normal values; ``seed`` is an int or a ``numpy.random.Generator``."""
        rng = generator(seed)
        return cls(rng.standard_normal(shape_arg(shape)).astype(dtype or get_default_dtype()), requires_grad, name)

    @classmethod
    def uniform(cls, *shape, low=0.0, high=1.0, seed=None, dtype=None, requires_grad=False, name=None):
        """Uniform values in [low, high); ``seed`` is an int or a ``numpy.random.Generator``."""
        rng = generator(seed)
        data = rng.uniform(low, high, shape_arg(shape)).astype(dtype or get_default_dtype())
        return cls(data, requires_grad, name)

    @classmethod
    def rand(cls, *shape, seed=None, dtype=None, requires_grad=False, name=None):
        """Uniform values in [0, 1), as ``torch.rand``: ``uniform`` with its defaults."""
        return cls.uniform(*shape, seed=seed, dtype=dtype, requires_grad=requires_grad, name=name)

    @classmethod
    def zeros_like(cls, t, requires_grad=False, name=None):
        """Zeros of t's shape and dtype (t: a Tensor or an array)."""
        return cls(np.zeros_like(np.asarray(t)), requires_grad, name)

    @classmethod
    def ones_like(cls, t, requires_grad=False, name=None):
        """Ones of t's shape and dtype."""
        return cls(np.ones_like(np.asarray(t)), requires_grad, name)
