"""Comparisons ``== != < <= > >=``: elementwise with broadcasting, returning a numpy bool array.

They are not differentiable (like ``argmax``), so nothing is recorded. ``hash(t)`` stays identity-based, so
tensors still work as dict keys and in sets (Python checks ``is`` before ``==`` there).
"""

from __future__ import annotations

import numpy as np


class CompareOps:
    """Mixin of Tensor: ``== != < <= > >=`` against Tensors, arrays and scalars, and ``value in t``."""

    __slots__ = ()
    __hash__ = object.__hash__  # defining __eq__ would otherwise make tensors unhashable

    def _compare(self, other, symbol: str, numpy_op) -> np.ndarray:
        """numpy_op(self's data, other's data) -> bool array of the broadcast shape; names symbol on a shape error."""
        b = other._data if isinstance(other, CompareOps) else other
        try:
            return numpy_op(self._data, b)
        except ValueError as e:
            raise ValueError(f"{symbol}: {e} (got shapes {self.shape} and {np.shape(b)})") from None

    def __eq__(self, other):
        return self._compare(other, "==", np.equal)

    def __ne__(self, other):
        return self._compare(other, "!=", np.not_equal)

    def __lt__(self, other):
        return self._compare(other, "<", np.less)

    def __le__(self, other):
        return self._compare(other, "<=", np.less_equal)

    def __gt__(self, other):
        return self._compare(other, ">", np.greater)

    def __ge__(self, other):
        return self._compare(other, ">=", np.greater_equal)

    def __contains__(self, value) -> bool:
        """``value in t``: whether any entry equals value (numpy's rule)."""
        return bool(self._compare(value, "in", np.equal).any())
