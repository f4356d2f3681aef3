"""Shape ops: reshape (and PyTorch's view, unsqueeze, squeeze, recorded as reshapes), flatten, transpose/permute/
swapaxes, indexing, concatenate, stack, broadcast_to; getitem_backward.

They move values without changing them, so each backward moves the gradient back the same way: with the same
numpy call on arrays and, on a Tensor g (create_graph, see elementwise.py), with the op that undoes the move.
Indexing and broadcasting come in adjoint pairs, so every order of derivative is again one of these ops: getitem's
backward is getitem_backward (zeros with g placed at the index) and that one's is getitem; broadcast_to's is a sum
and the sum's is broadcast_to.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..graph import sum_to_shape
from ..hints import keyword_error, pytorch_args
from .common import normalize_axes, shape_arg, shape_error
from .facts import declare


def _frozen(index):
    """The index as a closure may keep it: its arrays as read-only copies, its lists copied (an edit of the caller's
    index array between forward and backward must not move the gradient). Ints, slices, None, Ellipsis as they are."""
    if type(index) is tuple:
        return tuple([_frozen(part) for part in index])
    if isinstance(index, np.ndarray):
        if index.flags.writeable or not index.flags.owndata:  # a read-only view may still see its base change
            index = index.copy()
            index.setflags(write=False)
        return index
    if isinstance(index, list):
        return [_frozen(part) for part in index]
    return index


# the keywords PyTorch users give the shape ops (the hints of keyword_error)
TWO_AXES = dict.fromkeys(("dim0", "dim1"), "numpy's transpose(*axes) takes every axis in its new order; PyTorch's "
                                           "transpose(dim0, dim1) is x.swapaxes(dim0, dim1) here")


def _shape_given(op: str, *keywords: str) -> dict:
    """{keyword: hint} for a shape given by name (reshape(shape=(3, 2))): PyTorch takes it so, we positionally."""
    return dict.fromkeys(("shape", *keywords), f"give the shape positionally: x.{op}({{args}})")


# index parts that select without repeats (numpy's basic indexing); anything else (lists, arrays, tuples, ranges)
# may repeat an entry, so its gradient must accumulate (np.add.at)
BASIC_INDEX = (int, np.integer, slice)


class ShapeOps:
    """Mixin of Tensor: reshape/view/unsqueeze/squeeze, flatten, transpose/permute/swapaxes/.T, x[index], concatenate,
    stack, broadcast_to, getitem_backward."""

    __slots__ = ()

    @property
    def T(self):
        """All axes reversed (``transpose()``)."""
        return self.transpose()

    RESHAPE = declare("reshape", "da = g reshaped back", moves_values=True, keeps_order=True)

    def reshape(self, *shape, **pytorch_keywords):
        """The same values in a new shape (one axis may be -1), as numpy.reshape."""
        if pytorch_keywords:  # shape=: say so (no wrapper on this hot op)
            raise keyword_error("reshape", ShapeOps.reshape, pytorch_keywords, missing=_shape_given("reshape"))
        shape = shape_arg(shape)
        try:
            out = self._data.reshape(shape)
        except ValueError as e:
            raise ValueError(
                f"reshape: cannot reshape shape {self.shape} ({self.size} elements) into {shape}: {e}"
            ) from None
        return self._reshaped(out, self.RESHAPE, shape=out.shape)

    FLATTEN = declare("flatten", "da = g reshaped back", moves_values=True, keeps_order=True,
                      label_defaults={"start_dim": 0, "end_dim": -1})

    @pytorch_args("flatten", ("start_dim", "end_dim"))
    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        """Merge axes start_dim..end_dim into one (``flatten(1)``: (m, H, W, C) -> (m, H*W*C))."""
        if self.ndim == 0:
            return self._reshaped(self._data.reshape(1), self.FLATTEN, start_dim=start_dim, end_dim=end_dim)
        (start,), (end,) = (normalize_axes(d, self.shape, "flatten") for d in (start_dim, end_dim))
        if start > end:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} (shape {self.shape})")
        s = self.shape
        out = self._data.reshape(s[:start] + (int(np.prod(s[start:end + 1])),) + s[end + 1:])
        return self._reshaped(out, self.FLATTEN, start_dim=start_dim, end_dim=end_dim)

    def view(self, *shape, **pytorch_keywords):
        """PyTorch's name for ``reshape``: the same values in a new shape (recorded as a reshape; the data is
        read-only, so whether it is shared cannot matter)."""
        if pytorch_keywords:
            raise keyword_error("view", ShapeOps.view, pytorch_keywords, missing={
                **_shape_given("view"), "dtype": "PyTorch's view(dtype) reads the bits as another dtype; "
                                                "x.astype(dtype) converts the values"})
        return self.reshape(*shape)

    @pytorch_args("unsqueeze", ("dim",))
    def unsqueeze(self, axis: int):
        """A new axis of length 1 at ``axis`` (-ndim-1 <= axis <= ndim), as ``torch.unsqueeze`` and
        ``np.expand_dims``: (2, 3).unsqueeze(1) -> (2, 1, 3). Recorded as a reshape."""
        if not isinstance(axis, (int, np.integer)) or not -self.ndim - 1 <= axis <= self.ndim:
            raise ValueError(f"unsqueeze: axis {axis!r} is out of range for a tensor of shape {self.shape} (a new axis "
                             f"goes at {-self.ndim - 1}..{self.ndim})")
        out = np.expand_dims(self._data, int(axis))
        return self._reshaped(out, self.RESHAPE, shape=out.shape)

    @pytorch_args("squeeze", ("dim",))
    def squeeze(self, axis=None):
        """Drop axes of length 1: all of them (axis None), or those of ``axis`` (an int or a tuple) that have length
        1; a given axis of another length stays, as ``torch.squeeze`` (numpy's raises). Recorded as a reshape."""
        axes = normalize_axes(axis, self.shape, "squeeze")
        shape = tuple(n for i, n in enumerate(self.shape) if not (i in axes and n == 1))
        return self._reshaped(self._data.reshape(shape), self.RESHAPE, shape=shape)

    def _reshaped(self, out: np.ndarray, op, **op_args):
        """Record ``out`` (self's values in another shape) as op (reshape or flatten); the gradient is reshaped
        back."""
        in_shape = self.shape

        def _backward(g):  # the same on arrays and on Tensors
            return (g.reshape(in_shape),)
        return self.from_op(out, (self,), op, _backward, **op_args)

    TRANSPOSE = declare("transpose", "da = g with the axes put back", moves_values=True)

    def transpose(self, *axes, **pytorch_keywords):
        """Permute axes (all reversed when none are given), as numpy.transpose: ``axes`` is every axis, in its new
        order. Given the identity order (``x.transpose(0, 1)`` or ``x.transpose(-2, -1)`` of a 2-D x, PyTorch's swap of
        two axes) it warns that nothing changes, and points to ``swapaxes``."""
        if pytorch_keywords:  # dim0=, dim1=: PyTorch's transpose is swapaxes here
            raise keyword_error("transpose", ShapeOps.transpose, pytorch_keywords, missing=TWO_AXES)
        axes = shape_arg(axes)
        if len(axes) == self.ndim >= 2 and all(-self.ndim <= a < self.ndim for a in axes) and \
                tuple(a % self.ndim for a in axes) == tuple(range(self.ndim)):  # (-2, -1) too: PyTorch's swap
            given = ", ".join(str(a) for a in axes)
            swap = given if self.ndim == 2 else "0, 1"
            warnings.warn(f"transpose({given}) on a {self.ndim}-D tensor changes nothing: numpy's transpose takes all "
                          f"axes in their new order. To swap two axes write x.swapaxes({swap}) (or x.T for 2-D)",
                          UserWarning, stacklevel=2)
        return self.permute(*axes)

    def permute(self, *axes, **pytorch_keywords):
        """PyTorch's name for numpy's ``transpose(*axes)``: every axis in its new order (all reversed when none are
        given)."""
        if pytorch_keywords:
            raise keyword_error("permute", ShapeOps.permute, pytorch_keywords,
                                missing={"dims": "give the axes positionally: x.permute({args})"})
        axes = shape_arg(axes) or tuple(reversed(range(self.ndim)))
        in_range = all(-self.ndim <= a < self.ndim for a in axes)
        if not in_range or sorted(a % max(self.ndim, 1) for a in axes) != list(range(self.ndim)):
            hint = (f" (numpy's transpose takes all axes in their new order; to swap two axes write "
                    f"x.swapaxes({axes[0]}, {axes[1]}))" if len(axes) == 2 else "")
            raise ValueError(
                f"transpose: axes {axes} are not a permutation of the {self.ndim} axes of shape {self.shape}{hint}"
            )
        axes = tuple(int(a) % self.ndim for a in axes)
        inverse = tuple(int(i) for i in np.argsort(axes))

        def _backward(g):  # the same on arrays and on Tensors
            return (g.transpose(inverse),)
        return self.from_op(self._data.transpose(axes), (self,), self.TRANSPOSE, _backward, axes=axes)

    @pytorch_args("swapaxes", ("dim0", "dim1"), dim0="axis1", dim1="axis2")
    def swapaxes(self, axis1: int, axis2: int):
        """Swap two axes (numpy's ``swapaxes``, PyTorch's ``transpose(dim0, dim1)``); recorded as a transpose."""
        axes = list(range(self.ndim))
        for a in (axis1, axis2):
            if not isinstance(a, (int, np.integer)) or not -self.ndim <= a < self.ndim:
                raise ValueError(f"swapaxes: axis {a!r} is out of range for a tensor of shape {self.shape}")
        axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
        return self.permute(*axes)

    GETITEM = declare("getitem", "da = g at the indexed places (repeats add)")

    def __getitem__(self, index):
        """numpy indexing: slices, ints, None, Ellipsis, integer/bool arrays (repeats accumulate); not Tensors."""
        if isinstance(index, ShapeOps) or (type(index) is tuple and any(isinstance(i, ShapeOps) for i in index)):
            raise IndexError(
                "getitem: a Tensor cannot be an index: it holds floats, so a mask would become indices 0/1 and "
                "1.9 would become 1; index with a numpy integer or boolean array, e.g. x[np.asarray(mask, bool)]"
            )
        try:
            out = self._data[index]
        except IndexError as e:
            raise IndexError(f"getitem: {e} (tensor shape {self.shape})") from None
        shape, index = self.shape, _frozen(index)

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
        shape, index = tuple(int(n) for n in shape), _frozen(index)
        try:
            selected = np.empty(shape, dtype=np.bool_)[index]
        except IndexError as e:
            raise IndexError(f"getitem_backward: {e} (shape {shape})") from None
        if selected.shape != self.shape:
            raise ValueError(f"getitem_backward: zeros{shape}[index] has shape {selected.shape}, but the values "
                             f"to place have shape {self.shape}")

        def _backward(g):  # the same on arrays and on Tensors
            return (g[index],)
        return self.from_op(_placed(self._data, index, shape), (self,), self.GETITEM_BACKWARD, _backward,
                            shape=shape)

    @classmethod
    def _joined(cls, op: str, numpy_join, tensors, axis: int) -> tuple:
        """(the inputs as a tuple of Tensors, their data joined by numpy_join along axis)."""
        tensors = tuple(cls.as_tensor(t) for t in tensors)
        if not tensors:
            raise ValueError(f"{op}: needs at least one tensor")
        try:
            return tensors, numpy_join([t._data for t in tensors], axis=axis)
        except ValueError as e:
            raise shape_error(op, e, *tensors) from None

    CONCATENATE = declare("concatenate", "da = the slice of g at a's place, each input alike", moves_values=True)

    @classmethod
    @pytorch_args("concatenate", ("tensors", "dim"))
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
    @pytorch_args("stack", ("tensors", "dim"))
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

    def broadcast_to(self, *shape, **pytorch_keywords):
        """The values repeated along new leading axes and axes of length 1, as numpy.broadcast_to (what the backward
        of a sum or mean records): shape (d0, ...) -> ``shape``."""
        if pytorch_keywords:
            raise keyword_error("broadcast_to", ShapeOps.broadcast_to, pytorch_keywords,
                                missing=_shape_given("broadcast_to", "size"))
        shape = shape_arg(shape)
        try:
            out = np.broadcast_to(self._data, shape)
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
