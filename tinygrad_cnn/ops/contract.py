"""What the op mixins rely on from the class that inherits them: the engine's side of the contract.

The mixins (elementwise, reduce, shape, cnn, compare, numpy_protocol) never import ``tensor.py``; they call these
members on ``self`` (or ``cls``), which ``Tensor`` (tensor.py) provides. ``tests/test_structure.py`` checks both
directions: every name a mixin uses on ``self`` is defined by a mixin or declared here, and Tensor has all of
them. Imports nothing of the package.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class TensorLike(Protocol):
    """The members of Tensor that the op mixins use."""

    _data: np.ndarray        # the plain array behind .data (which is a DataView); the ops read this one
    requires_grad: bool
    name: str | None

    @property
    def data(self) -> np.ndarray: ...          # read-only values

    @property
    def shape(self) -> tuple: ...

    @property
    def dtype(self) -> np.dtype: ...

    @property
    def ndim(self) -> int: ...

    @property
    def size(self) -> int: ...

    @classmethod
    def from_op(cls, data, parents: tuple, op, backward, *, rule: str | None = None, graph_backward=None,
                **op_args) -> TensorLike:
        """Record an op's result (see tensor.py)."""

    @classmethod
    def as_tensor(cls, x) -> TensorLike:
        """Tensors pass through; anything else becomes a constant Tensor."""

    def _lift(self, other) -> TensorLike:
        """A constant Tensor for a scalar, list or array operand, in self's dtype where the policy says so."""
