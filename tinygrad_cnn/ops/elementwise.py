"""Elementwise ops and matmul: arithmetic with broadcasting, unary functions, softmax.

Every op has the same shape, micrograd's: its facts declared right above it (``MUL = declare("mul", rule, ...)``,
ops/facts.py), then the method: compute the output with numpy, define ``_backward(g)`` beside it (g: the gradient
at the output, shape out.shape; it returns one gradient per input, or None where an input needs none), then record
both with ``self.from_op(out, inputs, self.MUL, _backward)``. The rule is the one line ``draw(show_rule=True)``
writes under the op: g is the gradient at the output, a and b the inputs, out the value. An input that numpy
broadcast gets its gradient summed back to its own shape by the engine (``Tensor.backward``), so the closures
below return broadcast-shaped gradients freely.

Each closure writes its rule twice: on arrays (a plain ``backward()``), and first, under
``if type(g) is not np.ndarray:``, on Tensors, with the library's ops: ``backward(create_graph=True)`` and
``grad(..., create_graph=True)`` pass g as a Tensor, so the rule is recorded and can be differentiated again
(higher_order.py). Constants of the rule (masks, signs) stay arrays there: their derivative is 0.
"""

from __future__ import annotations

import numpy as np

from ..hints import keyword_error, pytorch_args
from .common import normalize_axes, shape_error
from .facts import declare


class ElementwiseOps:
    """Mixin of Tensor: ``+ - * / ** @``, maximum, minimum, unary minus, astype, exp, log, sqrt, abs, clip, relu,
    leaky_relu, sigmoid, tanh, softmax."""

    __slots__ = ()

    # ------------------------------------------------------------------ binary, with broadcasting
    # Each op is declared (its name, rule and what readers need, ops/facts.py) right above its method.
    def _operands(self, other, op: str, numpy_op) -> tuple:
        """(self, other as a Tensor, numpy_op of their data); names op and the shapes if they do not broadcast."""
        a, b = self, self._lift(other)
        try:
            return a, b, numpy_op(a._data, b._data)  # ._data: the field behind .data, read on the hottest path
        except ValueError as e:
            raise shape_error(op, e, a, b) from None

    ADD = declare("add", "da = g, db = g", inputs=("a", "b"), entrywise=True)

    def __add__(self, other):
        """a + b, broadcasting as numpy. a, b: any shapes that broadcast -> the broadcast shape."""
        a, b, out = self._operands(other, "add", np.add)

        def _backward(g):  # the same on arrays and on Tensors
            return g, g
        return self.from_op(out, (a, b), self.ADD, _backward)

    SUB = declare("sub", "da = g, db = -g", inputs=("a", "b"), entrywise=True)

    def __sub__(self, other):
        """a - b, broadcasting as numpy."""
        a, b, out = self._operands(other, "sub", np.subtract)

        def _backward(g):  # the same on arrays and on Tensors
            return g, -g
        return self.from_op(out, (a, b), self.SUB, _backward)

    MUL = declare("mul", "da = g*b, db = g*a", inputs=("a", "b"), entrywise=True)

    def __mul__(self, other):
        """a * b elementwise, broadcasting as numpy."""
        a, b, out = self._operands(other, "mul", np.multiply)

        def _backward(g):
            if type(g) is not np.ndarray:  # a Tensor: create_graph records the rule
                return g * b if a.requires_grad else None, g * a if b.requires_grad else None
            return (g * b._data if a.requires_grad else None,
                    g * a._data if b.requires_grad else None)
        return self.from_op(out, (a, b), self.MUL, _backward)

    DIV = declare("div", "da = g/b, db = -g*out/b", inputs=("a", "b"), entrywise=True)

    def __truediv__(self, other):
        """a / b elementwise, broadcasting as numpy."""
        a, b, out = self._operands(other, "div", np.divide)

        def _backward(g):
            if type(g) is not np.ndarray:
                return g / b if a.requires_grad else None, -g * (a / b) / b if b.requires_grad else None
            return (g / b._data if a.requires_grad else None,
                    -g * out / b._data if b.requires_grad else None)
        return self.from_op(out, (a, b), self.DIV, _backward)

    POW = declare("pow", "da = g*b*a^(b-1) (0 where b = 0), db = g*out*log(a) (0 where a = 0, b >= 0)",
                  inputs=("a", "b"), entrywise=True)

    def __pow__(self, other):
        """a ** b elementwise, broadcasting as numpy (b may be a Tensor too)."""
        a, b, out = self._operands(other, "pow", np.power)

        def _backward(g):
            x, e = a._data, b._data
            if type(g) is not np.ndarray:  # the masks as constants: b = 0 takes a^0, a = 0 (b >= 0) takes log(1)
                with np.errstate(divide="ignore", invalid="ignore"):
                    da = g * b * a ** (b - 1 + (e == 0).astype(e.dtype)) if a.requires_grad else None
                    db = (g * a ** b * (a + ((x == 0) & (e >= 0)).astype(x.dtype)).log()
                          if b.requires_grad else None)
                return da, db
            with np.errstate(divide="ignore", invalid="ignore"):  # 0 ** -1 and log(0), masked as PyTorch does
                da = g * np.where(e == 0, 0, e * x ** (e - 1)) if a.requires_grad else None
                db = g * np.where((x == 0) & (e >= 0), 0, out * np.log(x)) if b.requires_grad else None
            return da, db
        return self.from_op(out, (a, b), self.POW, _backward)

    MAXIMUM = declare("maximum", "da = g where a is the result, db = g where b is (ties: g/2 each)",
                      inputs=("a", "b"), entrywise=True)
    MINIMUM = declare("minimum", "da = g where a is the result, db = g where b is (ties: g/2 each)",
                      inputs=("a", "b"), entrywise=True)

    def maximum(self, other):
        """Elementwise max of a and b, broadcasting as numpy; NaN wins (as np.maximum and torch.maximum).

        Tied entries share the gradient equally (g/2 each, as torch.maximum); at a NaN both inputs get g.
        """
        return self._pairwise_extremum(other, self.MAXIMUM, np.maximum, np.less)

    def minimum(self, other):
        """Elementwise min of a and b, broadcasting as numpy; NaN wins; ties and NaN as ``maximum``."""
        return self._pairwise_extremum(other, self.MINIMUM, np.minimum, np.greater)

    def _pairwise_extremum(self, other, op, numpy_op, loses):
        """maximum/minimum (op: their facts): ``loses(a, b)`` says where a is not the result (np.less for maximum)."""
        a, b, out = self._operands(other, op.name, numpy_op)

        def _backward(g):  # the shares are constants: the same on arrays and on Tensors
            x, y = a._data, b._data
            tie = x == y
            dtype = out.dtype
            return (g * np.where(tie, 0.5, ~loses(x, y)).astype(dtype) if a.requires_grad else None,
                    g * np.where(tie, 0.5, ~loses(y, x)).astype(dtype) if b.requires_grad else None)
        return self.from_op(out, (a, b), op, _backward)

    NEG = declare("neg", "da = -g", entrywise=True)

    def __neg__(self):
        """-a."""
        def _backward(g):  # the same on arrays and on Tensors
            return (-g,)
        return self.from_op(-self._data, (self,), self.NEG, _backward)

    ASTYPE = declare("astype", "da = g cast back to a's dtype", entrywise=True)

    def astype(self, dtype):
        """The values in another float dtype, float32 or float64 (numpy's astype); x itself when it has that dtype."""
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"astype: dtype must be float32 or float64, got {dtype}")
        if dtype == self.dtype:
            return self
        x_dtype = self.dtype

        def _backward(g):  # the same on arrays and on Tensors
            return (g.astype(x_dtype),)
        return self.from_op(self._data.astype(dtype), (self,), self.ASTYPE, _backward, dtype=dtype.name)

    def __radd__(self, other):
        return self._lift(other) + self

    def __rsub__(self, other):
        return self._lift(other) - self

    def __rmul__(self, other):
        return self._lift(other) * self

    def __rtruediv__(self, other):
        return self._lift(other) / self

    def __rpow__(self, other):
        return self._lift(other) ** self

    def __matmul__(self, other):
        return self.matmul(other)

    def __rmatmul__(self, other):
        return self._lift(other).matmul(self)

    MATMUL = declare("matmul", "da = g @ b.T, db = a.T @ g", inputs=("a", "b"), formula="matmul")

    def matmul(self, other):
        """numpy.matmul: 1-D, 2-D and batched (..., n, k) @ (..., k, m) -> (..., n, m)."""
        a, b = self, self._lift(other)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: operands must have at least 1 dim, got shapes {a.shape} and {b.shape}")
        try:
            out = np.matmul(a._data, b._data)
        except ValueError:
            raise ValueError(
                f"matmul: shapes {a.shape} and {b.shape} do not align: the last axis of the first "
                f"({a.shape[-1]}) must equal the {'only' if b.ndim == 1 else 'second-to-last'} axis of the "
                f"second ({b.shape[0] if b.ndim == 1 else b.shape[-2]}), and batch axes must broadcast"
            ) from None

        def _backward(g):
            if type(g) is not np.ndarray:
                return _matmul_grads(g, a, b)
            ad = a._data[None, :] if a.ndim == 1 else a._data
            bd = b._data[:, None] if b.ndim == 1 else b._data
            g = g[..., None] if b.ndim == 1 else g
            g = g[..., None, :] if a.ndim == 1 else g
            da = db = None
            if a.requires_grad:
                da = g @ np.swapaxes(bd, -1, -2)
                da = da[..., 0, :] if a.ndim == 1 else da
            if b.requires_grad:
                db = np.swapaxes(ad, -1, -2) @ g
                db = db[..., 0] if b.ndim == 1 else db
            return da, db
        return self.from_op(out, (a, b), self.MATMUL, _backward)

    # ------------------------------------------------------------------ unary
    EXP = declare("exp", "da = g*out", entrywise=True)

    def exp(self):
        """e ** x elementwise."""
        out = np.exp(self._data)

        def _backward(g):
            if type(g) is not np.ndarray:
                return (g * self.exp(),)  # out, recomputed as a Tensor in the graph
            return (g * out,)
        return self.from_op(out, (self,), self.EXP, _backward)

    LOG = declare("log", "da = g/a", entrywise=True)

    def log(self):
        """Natural log elementwise."""
        x = self._data

        def _backward(g):
            return (g / (self if type(g) is not np.ndarray else x),)
        return self.from_op(np.log(x), (self,), self.LOG, _backward)

    SQRT = declare("sqrt", "da = g/(2*out)", entrywise=True)

    def sqrt(self):
        """Square root elementwise."""
        out = np.sqrt(self._data)

        def _backward(g):
            return (g / (2 * (self.sqrt() if type(g) is not np.ndarray else out)),)
        return self.from_op(out, (self,), self.SQRT, _backward)

    ABS = declare("abs", "da = g*sign(a) (0 at NaN)", entrywise=True)

    def abs(self):
        """|x| elementwise; its gradient at 0 and at NaN is taken as 0 (as PyTorch)."""
        x = self._data

        def _backward(g):  # the sign is a constant: the same on arrays and on Tensors
            return (g * ((x > 0).astype(x.dtype) - (x < 0)),)  # not np.sign(x): NaN at NaN
        return self.from_op(np.abs(x), (self,), self.ABS, _backward)

    CLIP = declare("clip", "da = g where low <= a <= high", entrywise=True)

    @pytorch_args("clip", ("min", "max"))
    def clip(self, low=None, high=None):
        """Clamp to [low, high] (either may be None, a number, an array or a constant Tensor, broadcasting to
        x); the gradient passes where low <= x <= high. Bounds get no gradient: a bound that requires grad
        raises (write ``x.maximum(low).minimum(high)`` for that)."""
        low, high = self._clip_bound(low, "low"), self._clip_bound(high, "high")
        x = self._data
        out = np.clip(x, low, high)

        def _backward(g):  # the mask is a constant: the same on arrays and on Tensors
            return (g * (out == x).astype(x.dtype),)
        return self.from_op(out, (self,), self.CLIP, _backward, low=low, high=high)

    @staticmethod
    def _clip_bound(bound, name: str):
        """A bound of clip as numpy sees it: a Tensor's data (a constant), else as given."""
        if not isinstance(bound, ElementwiseOps):
            return bound
        if bound.requires_grad:
            raise TypeError(f"clip: {name} requires grad, but clip sends no gradient to its bounds; write "
                            "x.maximum(low).minimum(high) for bounds that learn")
        return bound._data

    RELU = declare("relu", "da = g*(a > 0) (g at NaN)", entrywise=True)

    def relu(self, **pytorch_keywords):
        """max(x, 0) elementwise; its gradient at 0 is taken as 0; at NaN (which it passes on) it is g, as PyTorch."""
        if pytorch_keywords:  # inplace=: say so (no wrapper on this hot op)
            raise keyword_error("relu", ElementwiseOps.relu, pytorch_keywords)
        x = self._data

        def _backward(g):
            if type(g) is not np.ndarray:  # the mask is a constant
                return (g * (~(x <= 0)).astype(x.dtype),)
            return (g * ~(x <= 0),)  # not g*(x > 0): that would drop the gradient at NaN
        return self.from_op(np.maximum(x, 0), (self,), self.RELU, _backward)

    LEAKY_RELU = declare("leaky_relu", "da = g where a > 0, else slope*g", entrywise=True)

    @pytorch_args("leaky_relu", ("negative_slope", "inplace"))
    def leaky_relu(self, slope: float = 0.01):
        """x where x > 0, else slope * x, elementwise (PyTorch's negative_slope); the gradient at 0 is slope * g,
        as PyTorch."""
        if not isinstance(slope, (int, float, np.integer, np.floating)) or isinstance(slope, (bool, np.bool_)):
            raise TypeError(f"leaky_relu: slope must be a number, got {slope!r}")
        x = self._data
        positive = x > 0
        out = np.where(positive, x, x * x.dtype.type(slope))

        def _backward(g):
            if type(g) is not np.ndarray:  # the slopes are constants
                return (g * np.where(positive, 1, slope).astype(x.dtype),)
            return (np.where(positive, g, g * g.dtype.type(slope)),)
        return self.from_op(out, (self,), self.LEAKY_RELU, _backward, slope=slope)

    SIGMOID = declare("sigmoid", "da = g*out*(1 - out)", entrywise=True)

    def sigmoid(self):
        """1 / (1 + e ** -x) elementwise, stable for large |x|."""
        x = self._data
        e = np.exp(-np.abs(x))  # exp of a non-positive number only
        out = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)

        def _backward(g):
            s = self.sigmoid() if type(g) is not np.ndarray else out  # on Tensors: out recomputed in the graph
            return (g * s * (1 - s),)
        return self.from_op(out, (self,), self.SIGMOID, _backward)

    TANH = declare("tanh", "da = g*(1 - out^2)", entrywise=True)

    def tanh(self):
        """Hyperbolic tangent elementwise."""
        out = np.tanh(self._data)

        def _backward(g):
            t = self.tanh() if type(g) is not np.ndarray else out  # on Tensors: out recomputed in the graph
            return (g * (1 - t * t),)
        return self.from_op(out, (self,), self.TANH, _backward)

    SOFTMAX = declare("softmax", "da = out*(g - sum(g*out)), sums along axis", equivariant=True)

    @pytorch_args("softmax", ("dim",))
    def softmax(self, axis: int = -1):
        """exp(x) / sum(exp(x)) along ``axis`` (same shape), shifted by the max so large logits do not overflow."""
        normalize_axes(axis, self.shape, "softmax")
        x = self._data
        e = np.exp(x - x.max(axis=axis, keepdims=True, initial=-np.inf))  # initial: an empty axis gives empty
        out = e / e.sum(axis=axis, keepdims=True)

        def _backward(g):
            s = self.softmax(axis) if type(g) is not np.ndarray else out  # on Tensors: out recomputed in the graph
            return (s * (g - (g * s).sum(axis=axis, keepdims=True)),)
        return self.from_op(out, (self,), self.SOFTMAX, _backward, axis=axis)

    LOG_SOFTMAX = declare("log_softmax", "da = g - exp(out)*sum(g), sums along axis", equivariant=True)

    @pytorch_args("log_softmax", ("dim",))
    def log_softmax(self, axis: int = -1):
        """x - logsumexp(x) along ``axis`` (same shape), computed stably."""
        normalize_axes(axis, self.shape, "log_softmax")
        x = self._data
        shifted = x - x.max(axis=axis, keepdims=True, initial=-np.inf)
        with np.errstate(divide="ignore"):  # log(0) only for an empty axis, whose output is empty
            out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

        def _backward(g):
            p = self.softmax(axis) if type(g) is not np.ndarray else np.exp(out)  # exp(out), a Tensor on Tensors
            return (g - p * g.sum(axis=axis, keepdims=True),)
        return self.from_op(out, (self,), self.LOG_SOFTMAX, _backward, axis=axis)


def _matmul_grads(g, a, b) -> tuple:
    """matmul's rule on Tensors (create_graph): da = g @ b.T, db = a.T @ g, with a 1-D operand taken as a row (a)
    or a column (b) as numpy does, and the result put back in its shape; batch axes are summed back by the walk."""
    if a.ndim == 1 and b.ndim == 1:
        return g * b if a.requires_grad else None, g * a if b.requires_grad else None
    A = a.reshape(1, -1) if a.ndim == 1 else a
    B = b.reshape(-1, 1) if b.ndim == 1 else b
    G = g.reshape(*g.shape, 1) if b.ndim == 1 else g
    G = G.reshape(*G.shape[:-1], 1, G.shape[-1]) if a.ndim == 1 else G
    da = db = None
    if a.requires_grad:
        da = G @ _swap_last(B)
        da = da.reshape(*da.shape[:-2], da.shape[-1]) if a.ndim == 1 else da
    if b.requires_grad:
        db = _swap_last(A) @ G
        db = db.reshape(*db.shape[:-1]) if b.ndim == 1 else db
    return da, db


def _swap_last(t):
    """t with its last two axes swapped (a transpose op)."""
    axes = list(range(t.ndim))
    axes[-2:] = axes[-1], axes[-2]
    return t.transpose(*axes)
