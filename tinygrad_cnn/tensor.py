"""Tensor: a numpy array that records the computation that made it.

Every op below has the same shape, in the style of micrograd:

    out_data = <numpy forward>
    def _backward(g):                 # g: gradient of the loss w.r.t. out, shape out.shape
        return <grad for each parent>  # one array (or None) per parent, in order
    return Tensor._from_op(out_data, (a, b), "op", _backward, **hyper_parameters)

Closures never touch ``.grad``: ``backward()`` walks the graph once (iterative topological
order), sums each returned gradient back to its parent's shape (undoing numpy broadcasting)
and accumulates it.  That single place is what makes the semantics easy to audit:

* leaves with ``requires_grad=True`` *accumulate* into ``.grad`` across calls (as PyTorch);
* interior tensors hold the gradient of the *latest* ``backward()`` (PyTorch drops it; we keep
  it so the graph can be drawn with its gradients);
* calling ``backward()`` twice on the same graph gives every leaf exactly twice its gradient;
* tensors that do not require grad get none, and no closure runs for them.

Tensors own their data, read-only: ``t.data[0] = 1`` raises.  Assigning ``t.data = new``
is allowed (optimizers do it) and bumps a version counter; a ``backward()`` through an op
that saw the old data raises instead of returning a wrong gradient.
"""

from __future__ import annotations

import contextlib
import gc

import numpy as np

# ----------------------------------------------------------------------------- global state
_default_dtype = np.dtype(np.float32)
_grad_enabled = True


def set_default_dtype(dtype) -> None:
    """Set the dtype given to ints, bools, lists and Python scalars (float32 or float64)."""
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"set_default_dtype: dtype must be float32 or float64, got {dtype}")
    _default_dtype = dtype


def get_default_dtype() -> np.dtype:
    """The dtype given to ints, bools, lists and Python scalars."""
    return _default_dtype


def is_grad_enabled() -> bool:
    """False inside ``no_grad()``."""
    return _grad_enabled


class no_grad(contextlib.ContextDecorator):
    """Context manager and decorator: ops inside record nothing (results are plain leaves).

    ``with no_grad(): ...``, ``@no_grad()`` and ``@no_grad`` all work.
    """

    def __new__(cls, func=None):
        self = super().__new__(cls)
        return self(func) if callable(func) else self  # bare @no_grad: decorate func right away

    def __init__(self, func=None):
        pass

    def __enter__(self):
        global _grad_enabled
        self._previous = _grad_enabled
        _grad_enabled = False
        return self

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._previous
        return False


# ----------------------------------------------------------------------------- helpers
def _to_array(data, dtype=None) -> np.ndarray:
    """Apply the dtype policy and return a fresh, read-only array.

    float32/float64 numpy data keep their dtype; ints, bools, other floats, lists and Python
    scalars become the default float dtype; strings, objects and complex raise TypeError.
    """
    if isinstance(data, Tensor):
        data = data.data
    is_numpy = isinstance(data, (np.ndarray, np.generic))
    try:
        arr = np.array(data)
    except ValueError as e:  # ragged nested lists
        raise ValueError(f"Tensor: data is not a rectangular array: {e}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"Tensor: unsupported dtype {arr.dtype} (from {type(data).__name__}); "
            "use numbers: float32/float64 arrays, ints, bools, lists or scalars"
        )
    if dtype is not None:
        target = np.dtype(dtype)
        if target not in (np.float32, np.float64):
            raise TypeError(f"Tensor: dtype must be float32 or float64, got {target}")
    elif is_numpy and arr.dtype in (np.float32, np.float64):
        target = arr.dtype
    else:
        target = _default_dtype
    arr = arr.astype(target, copy=False)
    arr.setflags(write=False)
    return arr


def _readonly(arr) -> np.ndarray:
    """The result of a numpy op as a read-only ndarray (numpy returns scalars for 0-d)."""
    if type(arr) is not np.ndarray:
        arr = np.asarray(arr)
    arr.setflags(write=False)
    return arr


def _sum_to_shape(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Undo numpy broadcasting: sum g (broadcast shape) down to ``shape``."""
    if g.shape == shape:
        return g
    g = g.sum(axis=tuple(range(g.ndim - len(shape))))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _as_grad_of(g, t: "Tensor") -> np.ndarray:
    """A closure's gradient for ``t``, summed back to t's shape (undoing broadcasting), in t's dtype."""
    data = t._data
    if type(g) is not np.ndarray:
        g = np.asarray(g)
    if g.shape != data.shape:
        g = _sum_to_shape(g, data.shape)
    return g if g.dtype == data.dtype else g.astype(data.dtype)


def _shape_error(op: str, err: Exception, *tensors) -> Exception:
    """Re-raise a numpy shape error with the op's name and the shapes it got."""
    shapes = " and ".join(str(t.shape) for t in tensors)
    return type(err)(f"{op}: {err} (got shapes {shapes})")


def _normalize_axes(axis, ndim: int, op: str) -> tuple:
    """axis (None, int or tuple) -> sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    for a in axes:
        if not -ndim <= a < max(ndim, 1):
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dims")
    return tuple(sorted(a % max(ndim, 1) for a in axes))


def _axis_arg(axis) -> dict:
    """A reduction's op_args: its axis, when it has one (for the graph's labels)."""
    return {} if axis is None else {"axis": axis}


def _expand_reduced(g: np.ndarray, in_shape: tuple, axes: tuple, keepdims: bool) -> np.ndarray:
    """Broadcast the gradient of a reduction back over the reduced axes of ``in_shape``."""
    if not keepdims:
        g = np.expand_dims(g, axes) if axes else g
    return np.broadcast_to(g, in_shape)


@contextlib.contextmanager
def _gc_paused():
    """Pause Python's cyclic garbage collector: the backward walk allocates arrays but no cycles, and
    collections that scan a graph of 100,000 tensors would make its cost grow faster than linearly."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def as_tensor(x) -> "Tensor":
    """Tensors pass through; anything else becomes a constant Tensor (requires_grad=False)."""
    return x if isinstance(x, Tensor) else Tensor(x)


def _join(op: str, numpy_join, tensors, axis: int) -> tuple:
    """(the inputs as a tuple of Tensors, their data joined by numpy_join along axis)."""
    tensors = tuple(as_tensor(t) for t in tensors)
    if not tensors:
        raise ValueError(f"{op}: needs at least one tensor")
    try:
        return tensors, numpy_join([t._data for t in tensors], axis=axis)
    except ValueError as e:
        raise _shape_error(op, e, *tensors) from None


def topo_order(root: "Tensor") -> list:
    """Every tensor that leads to ``root``, parents before children, root last.

    Iterative depth-first search (no recursion limit), deterministic: parents are visited in
    the order the op lists them.
    """
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for parent in reversed(node.parents):
            if id(parent) not in seen:
                stack.append((parent, False))
    return order


# ----------------------------------------------------------------------------- Tensor
class Tensor:
    """An n-d array of float32/float64 that records the ops applied to it.

    Attributes: ``data`` (read-only ndarray), ``grad`` (ndarray of data's shape and dtype, or
    None), ``requires_grad``, ``name``, ``op`` (the op that made it, None for a leaf),
    ``op_args`` (its hyper-parameters), ``parents`` (the tensors it was made from).
    """

    __slots__ = ("_data", "grad", "requires_grad", "name", "op", "op_args", "parents",
                 "_backward", "_version", "_saved_versions", "__weakref__")
    __array_priority__ = 100  # so ndarray <op> Tensor calls Tensor's reflected op

    def __init__(self, data, requires_grad: bool = False, name: str | None = None, dtype=None):
        self._set_leaf(_to_array(data, dtype), bool(requires_grad), name)

    def _set_leaf(self, data: np.ndarray, requires_grad: bool, name: str | None) -> None:
        self._data, self.grad, self.requires_grad, self.name = data, None, requires_grad, name
        self.op, self.op_args, self.parents, self._backward = None, {}, (), None
        self._version, self._saved_versions = 0, ()

    @classmethod
    def _leaf(cls, data: np.ndarray, requires_grad: bool = False, name: str | None = None) -> "Tensor":
        """A leaf around an array that is already read-only and follows the dtype policy."""
        out = cls.__new__(cls)
        out._set_leaf(data, requires_grad, name)
        return out

    @classmethod
    def _from_op(cls, data, parents: tuple, op: str, backward, **op_args) -> "Tensor":
        """Wrap an op's result; record parents and backward only if some parent needs grad."""
        if not (_grad_enabled and any([p.requires_grad for p in parents])):
            return cls._leaf(_readonly(data))
        out = cls.__new__(cls)
        out._data, out.grad, out.requires_grad, out.name = _readonly(data), None, True, None
        out.op, out.op_args, out.parents, out._backward = op, op_args, parents, backward
        out._version, out._saved_versions = 0, tuple([p._version for p in parents])
        return out

    def _lift(self, other) -> "Tensor":
        """A constant Tensor for a scalar/list/array operand; Python scalars and lists take self's dtype."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, (int, float, bool)):
            return Tensor._leaf(_readonly(np.array(other, dtype=self._data.dtype)))
        if isinstance(other, np.ndarray):
            return Tensor(other)  # the dtype policy: float32/float64 arrays keep their dtype
        return Tensor(other, dtype=self._data.dtype)  # lists, like Python scalars, take self's dtype

    # ------------------------------------------------------------------ data and basic info
    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, value) -> None:
        """Replace the values (same shape not required); later backward through old uses raises."""
        self._data = _to_array(value, self._data.dtype)
        self._version += 1

    shape = property(lambda self: self._data.shape)
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)
    size = property(lambda self: self._data.size)
    T = property(lambda self: self.transpose())

    @property
    def is_leaf(self) -> bool:
        return not self.parents

    @property
    def op_label(self) -> str:
        """The op and its hyper-parameters, e.g. ``conv2d stride=2 pad=1``; '' for a leaf."""
        if self.op is None:
            return ""
        args = " ".join(f"{k}={v}" for k, v in self.op_args.items())
        return f"{self.op} {args}".strip()

    def numpy(self) -> np.ndarray:
        """The data (read-only; copy it to write)."""
        return self._data

    def item(self) -> float:
        if self.size != 1:
            raise ValueError(f"item: only a one-element tensor converts to a Python number, got shape {self.shape}")
        return self._data.item()

    def __array__(self, dtype=None, copy=None):
        if copy:
            return np.array(self._data, dtype=dtype)
        return self._data if dtype is None else self._data.astype(dtype)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        values = np.array2string(self._data, precision=4, threshold=8, edgeitems=2, separator=", ")
        extra = [f"shape={self.shape}", f"dtype={self.dtype}"]
        if self.op:
            extra.append(f"op={self.op_label}")
        if self.name:
            extra.append(f"name={self.name!r}")
        if self.requires_grad:
            extra.append("requires_grad=True")
        return f"Tensor({values}, {', '.join(extra)})"

    def __setitem__(self, index, value):
        raise TypeError(
            "Tensor does not support item assignment: writing into a tensor that is in a graph would "
            "change gradients silently. Build a new tensor (concatenate/stack, or multiply by a mask) "
            "or set .data outside the graph."
        )

    def _no_in_place(self, other):
        raise TypeError(
            "Tensor has no in-place ops (+=, -=, *=, /=, **=, @=): in a graph they would change what earlier ops "
            "saw, and on a parameter they would turn it into an op result. Write x = x + y for a new tensor, "
            "or p.data = p.data - lr * p.grad to update a parameter's values."
        )

    __iadd__ = __isub__ = __imul__ = __itruediv__ = __ipow__ = __imatmul__ = _no_in_place

    def __bool__(self):
        if self.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self._data)

    # ------------------------------------------------------------------ constructors
    @staticmethod
    def _shape_arg(shape) -> tuple:
        return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else tuple(shape)

    @classmethod
    def zeros(cls, *shape, dtype=None, requires_grad=False, name=None) -> "Tensor":
        return cls(np.zeros(cls._shape_arg(shape), dtype or _default_dtype), requires_grad, name)

    @classmethod
    def ones(cls, *shape, dtype=None, requires_grad=False, name=None) -> "Tensor":
        return cls(np.ones(cls._shape_arg(shape), dtype or _default_dtype), requires_grad, name)

    @classmethod
    def randn(cls, *shape, seed=None, dtype=None, requires_grad=False, name=None) -> "Tensor":
        """Standard normal values; ``seed`` is an int or a ``numpy.random.Generator``."""
        rng = np.random.default_rng(seed)
        return cls(rng.standard_normal(cls._shape_arg(shape)).astype(dtype or _default_dtype), requires_grad, name)

    @classmethod
    def uniform(cls, *shape, low=0.0, high=1.0, seed=None, dtype=None, requires_grad=False, name=None) -> "Tensor":
        """Uniform values in [low, high); ``seed`` is an int or a ``numpy.random.Generator``."""
        rng = np.random.default_rng(seed)
        data = rng.uniform(low, high, cls._shape_arg(shape)).astype(dtype or _default_dtype)
        return cls(data, requires_grad, name)

    @classmethod
    def zeros_like(cls, t, requires_grad=False, name=None) -> "Tensor":
        return cls(np.zeros_like(np.asarray(t)), requires_grad, name)

    @classmethod
    def ones_like(cls, t, requires_grad=False, name=None) -> "Tensor":
        return cls(np.ones_like(np.asarray(t)), requires_grad, name)

    # ------------------------------------------------------------------ autograd
    def backward(self, grad=None) -> None:
        """Fill ``.grad`` of every tensor that leads here and requires grad.

        ``grad`` defaults to 1 for a one-element tensor; any other shape needs it explicitly.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad: none of the tensors it was computed "
                "from has requires_grad=True (or it was made inside no_grad())"
            )
        if grad is None:
            if self.size != 1:
                raise RuntimeError(
                    f"backward: grad can be implied only for a one-element tensor, this one has shape "
                    f"{self.shape}; pass grad= an array of that shape"
                )
            grad = np.ones_like(self._data)
        else:
            grad = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward: grad has shape {grad.shape} but the tensor has shape {self.shape}")
        with _gc_paused():
            order = [t for t in topo_order(self) if t.requires_grad]
            for t in order:  # check before changing anything: a failed backward leaves grads untouched
                t._check_versions()
            self._run_backward(order, grad)

    @staticmethod
    def _run_backward(order: list, grad: np.ndarray) -> None:
        """Call each closure in reverse topological order; accumulate what it returns per parent."""
        pending = {id(order[-1]): grad}
        for t in reversed(order):
            g = pending.pop(id(t), None)
            if g is None:
                continue
            if not t.parents:  # a leaf: its grad is its own array, accumulated in place as PyTorch does
                if t.grad is None:
                    t.grad = np.array(g)
                else:
                    t.grad += g
                continue
            t.grad = g
            for parent, pg in zip(t.parents, t._backward(g), strict=True):
                if pg is None or not parent.requires_grad:
                    continue
                pg = _as_grad_of(pg, parent)
                key = id(parent)
                pending[key] = pg if key not in pending else pending[key] + pg

    def _check_versions(self) -> None:
        if self._saved_versions == tuple([p._version for p in self.parents]):
            return
        for i, (p, v) in enumerate(zip(self.parents, self._saved_versions, strict=True)):
            if p._version != v:
                who = f" ({p.name!r})" if p.name else ""
                raise RuntimeError(
                    f"backward: input {i}{who} of '{self.op}' had its .data replaced after the op used it; "
                    "its gradient would be wrong. Run the forward pass again after changing .data."
                )

    def zero_grad(self) -> None:
        self.grad = None

    def detach(self) -> "Tensor":
        """A new leaf sharing the (read-only) data, cut from the graph (requires_grad=False)."""
        return Tensor._leaf(self._data, name=self.name)

    def requires_grad_(self, requires_grad: bool = True) -> "Tensor":
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("requires_grad_: only a leaf's flag can be turned off; use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    # ------------------------------------------------------------------ elementwise binary
    def _operands(self, other, op: str, numpy_op) -> tuple:
        """(self, other as a Tensor, numpy_op of their data); names op and the shapes if they do not broadcast."""
        a, b = self, self._lift(other)
        try:
            return a, b, numpy_op(a._data, b._data)
        except ValueError as e:
            raise _shape_error(op, e, a, b) from None

    def __add__(self, other) -> "Tensor":
        a, b, out = self._operands(other, "add", np.add)

        def _backward(g):
            return g, g
        return Tensor._from_op(out, (a, b), "add", _backward)

    def __sub__(self, other) -> "Tensor":
        a, b, out = self._operands(other, "sub", np.subtract)

        def _backward(g):
            return g, -g
        return Tensor._from_op(out, (a, b), "sub", _backward)

    def __mul__(self, other) -> "Tensor":
        a, b, out = self._operands(other, "mul", np.multiply)

        def _backward(g):
            return (g * b._data if a.requires_grad else None,
                    g * a._data if b.requires_grad else None)
        return Tensor._from_op(out, (a, b), "mul", _backward)

    def __truediv__(self, other) -> "Tensor":
        a, b, out = self._operands(other, "div", np.divide)

        def _backward(g):
            return (g / b._data if a.requires_grad else None,
                    -g * out / b._data if b.requires_grad else None)
        return Tensor._from_op(out, (a, b), "div", _backward)

    def __pow__(self, other) -> "Tensor":
        a, b, out = self._operands(other, "pow", np.power)

        def _backward(g):
            da = g * b._data * a._data ** (b._data - 1) if a.requires_grad else None
            db = g * out * np.log(a._data) if b.requires_grad else None
            return da, db
        return Tensor._from_op(out, (a, b), "pow", _backward)

    def __neg__(self) -> "Tensor":
        def _backward(g):
            return (-g,)
        return Tensor._from_op(-self._data, (self,), "neg", _backward)

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

    def __matmul__(self, other) -> "Tensor":
        return self.matmul(other)

    def __rmatmul__(self, other) -> "Tensor":
        return self._lift(other).matmul(self)

    def matmul(self, other) -> "Tensor":
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
        return Tensor._from_op(out, (a, b), "matmul", _backward)

    # ------------------------------------------------------------------ elementwise unary
    def exp(self) -> "Tensor":
        out = np.exp(self._data)

        def _backward(g):
            return (g * out,)
        return Tensor._from_op(out, (self,), "exp", _backward)

    def log(self) -> "Tensor":
        x = self._data

        def _backward(g):
            return (g / x,)
        return Tensor._from_op(np.log(x), (self,), "log", _backward)

    def sqrt(self) -> "Tensor":
        out = np.sqrt(self._data)

        def _backward(g):
            return (g / (2 * out),)
        return Tensor._from_op(out, (self,), "sqrt", _backward)

    def abs(self) -> "Tensor":
        x = self._data

        def _backward(g):
            return (g * np.sign(x),)  # d|x|/dx at 0 taken as 0
        return Tensor._from_op(np.abs(x), (self,), "abs", _backward)

    def clip(self, low=None, high=None) -> "Tensor":
        """Clamp to [low, high]; the gradient passes where low <= x <= high."""
        x = self._data
        out = np.clip(x, low, high)

        def _backward(g):
            return (g * (out == x),)
        return Tensor._from_op(out, (self,), "clip", _backward, low=low, high=high)

    def relu(self) -> "Tensor":
        x = self._data

        def _backward(g):
            return (g * (x > 0),)
        return Tensor._from_op(np.maximum(x, 0), (self,), "relu", _backward)

    def sigmoid(self) -> "Tensor":
        x = self._data
        # stable for large |x|: exp of a non-positive number only
        e = np.exp(-np.abs(x))
        out = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)

        def _backward(g):
            return (g * out * (1 - out),)
        return Tensor._from_op(out, (self,), "sigmoid", _backward)

    def tanh(self) -> "Tensor":
        out = np.tanh(self._data)

        def _backward(g):
            return (g * (1 - out * out),)
        return Tensor._from_op(out, (self,), "tanh", _backward)

    def softmax(self, axis: int = -1) -> "Tensor":
        """exp(x) / sum(exp(x)) along ``axis``, shifted by the max so large logits do not overflow."""
        _normalize_axes(axis, self.ndim, "softmax")
        x = self._data
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        out = e / e.sum(axis=axis, keepdims=True)

        def _backward(g):
            return (out * (g - (g * out).sum(axis=axis, keepdims=True)),)
        return Tensor._from_op(out, (self,), "softmax", _backward, axis=axis)

    def log_softmax(self, axis: int = -1) -> "Tensor":
        """x - logsumexp(x) along ``axis``, computed stably."""
        _normalize_axes(axis, self.ndim, "log_softmax")
        x = self._data
        shifted = x - x.max(axis=axis, keepdims=True)
        out = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))

        def _backward(g):
            return (g - np.exp(out) * g.sum(axis=axis, keepdims=True),)
        return Tensor._from_op(out, (self,), "log_softmax", _backward, axis=axis)

    # ------------------------------------------------------------------ reductions
    def sum(self, axis=None, keepdims: bool = False) -> "Tensor":
        axes = _normalize_axes(axis, self.ndim, "sum")
        shape = self.shape

        def _backward(g):
            return (_expand_reduced(g, shape, axes, keepdims),)
        out = self._data.sum(axis=axes, keepdims=keepdims)
        return Tensor._from_op(out, (self,), "sum", _backward, **_axis_arg(axis))

    def mean(self, axis=None, keepdims: bool = False) -> "Tensor":
        axes = _normalize_axes(axis, self.ndim, "mean")
        shape = self.shape
        count = int(np.prod([shape[a] for a in axes])) if axes else 1

        def _backward(g):
            return (_expand_reduced(g / count, shape, axes, keepdims),)
        out = self._data.mean(axis=axes, keepdims=keepdims)
        return Tensor._from_op(out, (self,), "mean", _backward, **_axis_arg(axis))

    def _extremum(self, op: str, reduce, axis, keepdims: bool) -> "Tensor":
        """max/min: the gradient is shared evenly among tied extreme entries (as torch.amax)."""
        axes = _normalize_axes(axis, self.ndim, op)
        if self.size == 0:
            raise ValueError(f"{op}: cannot reduce an empty tensor (shape {self.shape})")
        x = self._data
        out = reduce(x, axis=axes, keepdims=True)

        def _backward(g):
            g = g if keepdims else np.expand_dims(g, axes)
            hits = x == out
            return (g * hits / hits.sum(axis=axes, keepdims=True),)
        result = out if keepdims else np.squeeze(out, axis=axes)
        return Tensor._from_op(result, (self,), op, _backward, **_axis_arg(axis))

    def max(self, axis=None, keepdims: bool = False) -> "Tensor":
        return self._extremum("max", np.max, axis, keepdims)

    def min(self, axis=None, keepdims: bool = False) -> "Tensor":
        return self._extremum("min", np.min, axis, keepdims)

    def argmax(self, axis=None) -> np.ndarray:
        """Indices of the maxima (a plain ndarray: not differentiable)."""
        return np.argmax(self._data, axis=axis)

    # ------------------------------------------------------------------ shape ops
    def reshape(self, *shape) -> "Tensor":
        """The same values in a new shape (one axis may be -1), as numpy.reshape."""
        shape = self._shape_arg(shape)
        try:
            out = self._data.reshape(shape)
        except ValueError as e:
            raise ValueError(
                f"reshape: cannot reshape shape {self.shape} ({self.size} elements) into {shape}: {e}"
            ) from None
        return self._reshaped(out, "reshape", shape=out.shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> "Tensor":
        """Merge axes start_dim..end_dim into one (``flatten(1)`` keeps the batch axis)."""
        if self.ndim == 0:
            return self._reshaped(self._data.reshape(1), "flatten")
        start, end = _normalize_axes((start_dim, end_dim), self.ndim, "flatten")
        if start_dim % self.ndim > end_dim % self.ndim:
            raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} (shape {self.shape})")
        s = self.shape
        out = self._data.reshape(s[:start] + (int(np.prod(s[start:end + 1])),) + s[end + 1:])
        return self._reshaped(out, "flatten", **({"start_dim": start_dim} if start_dim else {}))

    def _reshaped(self, out: np.ndarray, op: str, **op_args) -> "Tensor":
        """Record ``out`` (self's values in another shape); the gradient is reshaped back."""
        in_shape = self.shape

        def _backward(g):
            return (g.reshape(in_shape),)
        return Tensor._from_op(out, (self,), op, _backward, **op_args)

    def transpose(self, *axes) -> "Tensor":
        """Permute axes (all reversed when none are given), as numpy.transpose."""
        axes = self._shape_arg(axes) or tuple(reversed(range(self.ndim)))
        if sorted(a % max(self.ndim, 1) for a in axes) != list(range(self.ndim)):
            raise ValueError(
                f"transpose: axes {axes} are not a permutation of the {self.ndim} axes of shape {self.shape}"
            )
        inverse = tuple(np.argsort([a % self.ndim for a in axes]))

        def _backward(g):
            return (g.transpose(inverse),)
        return Tensor._from_op(self._data.transpose(axes), (self,), "transpose", _backward, axes=axes)

    permute = transpose

    def __getitem__(self, index) -> "Tensor":
        """numpy indexing: slices, ints, None, Ellipsis, integer/bool arrays (repeats accumulate)."""
        if isinstance(index, Tensor):
            index = index._data.astype(np.intp)
        elif isinstance(index, tuple):
            index = tuple(i._data.astype(np.intp) if isinstance(i, Tensor) else i for i in index)
        try:
            out = self._data[index]
        except IndexError as e:
            raise IndexError(f"getitem: {e} (tensor shape {self.shape})") from None
        shape, dtype = self.shape, self.dtype
        parts = index if isinstance(index, tuple) else (index,)
        advanced = any(isinstance(i, (list, np.ndarray)) for i in parts)

        def _backward(g):
            dx = np.zeros(shape, dtype)
            if advanced:
                np.add.at(dx, index, g)  # repeated indices must accumulate
            else:
                dx[index] = g
            return (dx,)
        return Tensor._from_op(out, (self,), "getitem", _backward)

    @staticmethod
    def concatenate(tensors, axis: int = 0) -> "Tensor":
        """Join tensors along an existing axis."""
        tensors, out = _join("concatenate", np.concatenate, tensors, axis)
        ax = axis % out.ndim
        bounds = np.cumsum([t.shape[ax] for t in tensors])[:-1]

        def _backward(g):
            return tuple(np.split(g, bounds, axis=ax))
        return Tensor._from_op(out, tensors, "concatenate", _backward, axis=axis)

    @staticmethod
    def stack(tensors, axis: int = 0) -> "Tensor":
        """Join same-shaped tensors along a new axis."""
        tensors, out = _join("stack", np.stack, tensors, axis)
        ax = axis % out.ndim

        def _backward(g):
            return tuple(np.moveaxis(g, ax, 0))
        return Tensor._from_op(out, tensors, "stack", _backward, axis=axis)

    # ------------------------------------------------------------------ CNN ops (tinygrad_cnn.cnn)
    def pad2d(self, pad, value: float = 0.0) -> "Tensor":
        from .cnn import pad2d
        return pad2d(self, pad, value)

    def conv2d(self, W, b=None, stride=1, pad=0) -> "Tensor":
        from .cnn import conv2d
        return conv2d(self, W, b, stride=stride, pad=pad)

    def max_pool2d(self, f, stride=None, ties: str = "first") -> "Tensor":
        from .cnn import max_pool2d
        return max_pool2d(self, f, stride=stride, ties=ties)

    def avg_pool2d(self, f, stride=None) -> "Tensor":
        from .cnn import avg_pool2d
        return avg_pool2d(self, f, stride=stride)

    def draw(self, **options):
        """The graph that leads here, as a graphviz.Digraph (see ``tinygrad_cnn.viz.draw_graph``)."""
        from .viz import draw_graph
        return draw_graph(self, **options)
