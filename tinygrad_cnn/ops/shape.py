"""Shape ops: reshape, flatten, transpose/permute, indexing, concatenate, stack, broadcast_to; getitem_backward.

They move values without changing them, so each backward moves the gradient back the same way: with the same
numpy call on arrays and, on a Tensor g (create_graph, see elementwise.py), with the op that undoes the move.
Indexing and broadcasting come in adjoint pairs, so every order of derivative is again one of these ops: getitem's
backward is getitem_backward (zeros with g placed at the index) and that one's is getitem; broadcast_to's is a sum
and the sum's is broadcast_to.
"""

from __future__ import annotations

import numpy as np

from ..graph import sum_to_shape
from .common import normalize_axes, shape_arg, shape_error
from .facts import declare

# index parts that select without repeats (numpy's basic indexing); anything else (lists, arrays, tuples, ranges)
# may repeat an entry, so its gradient must accumulate (np.add.at)
BASIC_INDEX = (int, np.integer, slice)


class ShapeOps:
    """Mixin of Tensor: reshape, flatten, transpose/permute/.T, x[index], concatenate, stack, broadcast_to,
    getitem_backward."""

    __slots__ = ()

    @property
    def T(self):
        """All axes reversed (``transpose()``)."""
        return self.transpose()

    RESHAPE = declare("reshape", "da = g reshaped back", moves_values=True, keeps_order=True)

    def reshape(self, *shape):
        """The same values in a new shape (one axis may be -1), as numpy.reshape."""
        shape = shape_arg(shape)
        try:
            out = self.data.reshape(shape)
        except ValueError as e:
            raise ValueError(
                f"reshape: cannot reshape shape {self.shape} ({self.size} elements) into {shape}: {e}"
            ) from None
        return self._reshaped(out, self.RESHAPE, shape=out.shape)

    FLATTEN = declare("flatten", "da = g reshaped back", moves_values=True, keeps_order=True,
                      label_defaults={"start_dim": 0, "end_dim": -1})

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        """Merge axes start_dim..end_dim into one (``flatten(1)``: (m, H, W, C) -> (m, H*W*C))."""
        if self.ndim == 0:
            return self._reshaped(self.data.reshape(1), self.FLATTEN, start_dim=start_dim, end_dim=end_dim)
        (start,), (end,) = (normalize_axes(d, self.shape, "flatten") for d in (start_dim, end_dim))
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} (shape {self.shape})")
        s = self.shape
        out = self.data.reshape(s[:start] + (int(np.prod(s[start:end + 1])),) + s[end + 1:])
        return self._reshaped(out, self.FLATTEN, start_dim=start_dim, end_dim=end_dim)

    def _reshaped(self, out: np.ndarray, op, **op_args):
        """Record ``out`` (self's values in another shape) as op (reshape or flatten); the gradient is reshaped
        back."""
        in_shape = self.shape

        def _backward(g):  # the same on arrays and on Tensors
            return (g.reshape(in_shape),)
        return self.from_op(out, (self,), op, _backward, **op_args)

    TRANSPOSE = declare("transpose", "da = g with the axes put back", moves_values=True)

    def transpose(self, *axes):
        """Permute axes (all reversed when none are given), as numpy.transpose."""
        axes = shape_arg(axes) or tuple(reversed(range(self.ndim)))
        in_range = all(-self.ndim <= a < self.ndim for a in axes)
        if not in_range or sorted(a % max(self.ndim, 1) for a in axes) != list(range(self.ndim)):
            raise ValueError(
                f"transpose: axes {axes} are not a permutation of the {self.ndim} axes of shape {self.shape}"
            )
        axes = tuple(int(a) % self.ndim for a in axes)
        inverse = tuple(int(i) for i in np.argsort(axes))

        def _backward(g):  # the same on arrays and on Tensors
            return (g.transpose(inverse),)
        return self.from_op(self.data.transpose(axes), (self,), self.TRANSPOSE, _backward, axes=axes)

    def permute(self, *axes):
        """The same as ``transpose(*axes)`` (PyTorch's name)."""
        return self.transpose(*axes)

    GETITEM = declare("getitem", "da = g at the indexed places (repeats add)")

    def __getitem__(self, index):
        """numpy indexing: slices, ints, None, Ellipsis, integer/bool arrays (repeats accumulate); not Tensors."""
        if isinstance(index, ShapeOps) or (type(index) is tuple and any(isinstance(i, ShapeOps) for i in index)):
            raise IndexError(
                "getitem: a Tensor cannot be an index: it holds floats, so a mask would become indices 0/1 and "
                "1.9 would become 1; index with a numpy integer or boolean array, e.g. x[np.asarray(mask, bool)]"
            )
        try:
            out = self.data[index]
        except IndexError as e:
            raise IndexError(f"getitem: {e} (tensor shape {self.shape})") from None
        shape = self.shape

        def _backward(g):
            if type(g) is not np.ndarray:
                return (g.getitem_backward(index, shape),)
            return (_placed(g, index, shape),)
        return self.from_op(out, (self,), self.GETITEM, _backward)

    GETITEM_BACKWARD = declare("getitem_backward", "da = the entries of g at the indexed places")

    def getitem_backward(self, index, shape):
        """getitem's backward as an op: zeros of ``shape`` with self placed at ``index`` (repeated indices add).

        self: the shape of ``zeros(shape)[index]``. Its own backward is getitem (``g[index]``), so gradients of any
        order through indexing are these two ops.
        """
        shape = tuple(int(n) for n in shape)
        try:
            selected = np.empty(shape, dtype=np.bool_)[index]
        except IndexError as e:
            raise IndexError(f"getitem_backward: {e} (shape {shape})") from None
        if selected.shape != self.shape:
            raise ValueError(f"getitem_backward: zeros{shape}[index] has shape {selected.shape}, but the values "
                             f"to place have shape {self.shape}")

        def _backward(g):  # the same on arrays and on Tensors
            return (g[index],)
        return self.from_op(_placed(self.data, index, shape), (self,), self.GETITEM_BACKWARD, _backward,
                            shape=shape)

    @classmethod
    def _joined(cls, op: str, numpy_join, tensors, axis: int) -> tuple:
        """(the inputs as a tuple of Tensors, their data joined by numpy_join along axis)."""
        tensors = tuple(cls.as_tensor(t) for t in tensors)
        if not tensors:
            raise ValueError(f"{op}: needs at least one tensor")
        try:
            return tensors, numpy_join([t.data for t in tensors], axis=axis)
        except ValueError as e:
            raise shape_error(op, e, *tensors) from None

    CONCATENATE = declare("concatenate", "da = the slice of g at a's place, each input alike", moves_values=True)

    @classmethod
    def concatenate(cls, tensors, axis: int = 0):
        """Join tensors along an existing axis: shapes equal but on ``axis`` -> their sum on ``axis``."""
        tensors, out = cls._joined("concatenate", np.concatenate, tensors, axis)
        ax = axis % out.ndim
        bounds = np.cumsum([t.shape[ax] for t in tensors])[:-1]

        def _backward(g):
            if type(g) is not np.ndarray:
                starts = (0, *(int(b) for b in bounds))
                return tuple(g[(slice(None),) * ax + (slice(lo, lo + t.shape[ax]),)] for lo, t in zip(starts, tensors,
                                                                                                   strict=True))
            return tuple(np.split(g, bounds, axis=ax))
        return cls.from_op(out, tensors, cls.CONCATENATE, _backward, axis=ax)

    STACK = declare("stack", "da = the slice of g at a's place, each input alike", moves_values=True)

    @classmethod
    def stack(cls, tensors, axis: int = 0):
        """Join k same-shaped tensors along a new axis: k x (d0, d1, ...) -> (k, d0, d1, ...) for axis 0."""
        tensors, out = cls._joined("stack", np.stack, tensors, axis)
        ax = axis % out.ndim

        def _backward(g):
            if type(g) is not np.ndarray:
                return tuple(g[(slice(None),) * ax + (i,)] for i in range(len(tensors)))
            return tuple(np.moveaxis(g, ax, 0))
        return cls.from_op(out, tensors, cls.STACK, _backward, axis=ax)

    BROADCAST_TO = declare("broadcast_to", "da = g summed over the broadcast axes", moves_values=True)

    def broadcast_to(self, *shape):
        """The values repeated along new leading axes and axes of length 1, as numpy.broadcast_to (what the backward
        of a sum or mean records): shape (d0, ...) -> ``shape``."""
        shape = shape_arg(shape)
        try:
            out = np.broadcast_to(self.data, shape)
        except ValueError:
            raise ValueError(f"broadcast_to: shape {self.shape} does not broadcast to {shape}") from None
        in_shape = self.shape

        def _backward(g):
            return (g._summed_to(in_shape) if type(g) is not np.ndarray else sum_to_shape(g, in_shape),)
        return self.from_op(out, (self,), self.BROADCAST_TO, _backward, shape=out.shape)

    def _summed_to(self, shape: tuple):
        """self summed down to ``shape`` (which broadcasts to self's shape) with sum ops: the Tensor form of
        ``graph.sum_to_shape``, which undoes broadcasting."""
        g = self
        if g.ndim > len(shape):
            g = g.sum(axis=tuple(range(g.ndim - len(shape))))
        axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
        return g.sum(axis=axes, keepdims=True) if axes else g


def _placed(values: np.ndarray, index, shape: tuple) -> np.ndarray:
    """zeros(shape) with values placed at index; repeated indices (numpy's advanced indexing) accumulate."""
    parts = index if isinstance(index, tuple) else (index,)
    dx = np.zeros(shape, values.dtype)
    if all(isinstance(i, BASIC_INDEX) or i is None or i is Ellipsis for i in parts):
        dx[index] = values
    else:
        np.add.at(dx, index, values)  # repeated indices must accumulate
    return dx
