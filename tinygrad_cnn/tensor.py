"""The engine: Tensor, a numpy array that records the computation that made it, and ``backward()``.

This file holds only what every op relies on: a tensor's fields, constructors, conversions and copies,
``from_op`` (how an op records itself) and the backward walk; grad mode (per thread) is in ``modes.py``, the
dtype policy in ``dtypes.py``. The ops themselves
live in ``ops/`` (elementwise, reduce, shape, cnn, cnn_grad; compare and numpy_protocol for ``==`` and numpy calls) as
mixin classes whose methods Tensor inherits, each written in one place in micrograd's shape:

    out = <numpy forward>
    def _backward(g):                  # g: gradient of the loss w.r.t. out, shape out.shape
        return <grad for each input>   # one array (or None) per input, in order
    return self.from_op(out, (a, b), self.OP, _backward, **hyper_parameters)

``OP = declare("op", "da = ...", ...)`` stands right above the method (``ops/facts.py``): the op's name, its rule
and the facts readers need. Your own op passes a name and its rule instead: ``Tensor.from_op(out, (a,), "swish",
_backward, rule="da = ...")``.

Closures never touch ``.grad``: ``backward()`` walks the graph once (iterative topological order), sums each
returned gradient back to its input's shape (undoing numpy broadcasting) and accumulates it. That single place
is what makes the semantics easy to audit:

* leaves with ``requires_grad=True`` *accumulate* into ``.grad`` across calls (as PyTorch), safely across threads;
* interior tensors hold the gradient of the *latest* ``backward()`` (PyTorch drops it; we keep it so the
  graph can be drawn with its gradients);
* calling ``backward()`` twice on the same graph gives every leaf exactly twice its gradient;
* tensors that do not require grad get none, and no closure runs for them.

``backward(create_graph=True)`` walks the same graph with the gradients as Tensors (``higher_order.py``): each
closure then records its rule as ops, so ``.grad`` holds Tensors that can be differentiated again. The plain walk
below is untouched by it; ``grad()`` (autograd.py) runs either walk without writing ``.grad``.

Tensors own their data, read-only: ``t.data[0] = 1`` raises. Assigning ``t.data = new`` is allowed (optimizers
do it) and bumps a version counter; a ``backward()`` through an op that saw the old data raises instead of
returning a wrong gradient.
"""

from __future__ import annotations

import operator

import numpy as np

from .anomaly import anomaly_mode, check_backward, check_forward, user_line
from .arrays import DataView, HookGradient, NumpyView
from .creation import Creation
from .dtypes import get_default_dtype, set_default_dtype, to_array  # noqa: F401 (re-exported)
from .graph import (
    RemovableHandle,
    checked_hook_result,
    gc_paused,
    grad_like,
    leaf_grad_lock,
    readonly,
    topo_order,
    wrong_gradients,
    wrong_shape,
)
from .higher_order import TwoBackwards, check_records_itself, run_graph_backward
from .hints import Size, add_unavailable, name_methods_after, pytorch_args
from .modes import enable_grad, grad_mode, is_grad_enabled, no_grad, set_grad_enabled  # noqa: F401 (re-exported)
from .ops.cnn import CNNOps
from .ops.cnn_grad import CNNGradOps
from .ops.compare import CompareOps
from .ops.elementwise import ElementwiseOps
from .ops.facts import GENERIC, OpFacts, op_label
from .ops.numpy_protocol import NumpyProtocol
from .ops.reduce import ReduceOps
from .ops.shape import ShapeOps

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)


def _augmented(symbol: str, binary):
    """``x op= y`` as ``x = x op y`` (a new tensor), refused on a leaf that requires grad (a parameter), even inside
    ``no_grad()``: a deliberate difference from PyTorch, which updates the parameter in place there."""
    def method(self, other):
        if self.requires_grad and not self.parents:
            raise TypeError(
                f"{symbol} on a leaf that requires grad (a parameter) is refused, even inside no_grad() (PyTorch "
                "updates it in place there; here there are no in-place ops): W -= lr * W.grad "
                "would rebind the name W to a new tensor while the model keeps the old one, so training would "
                "silently stop. To update a parameter's values write p.data = p.data - lr * p.grad; for a new "
                "tensor, x = x + y."
            )
        return binary(self, other)
    return method


class Tensor(ElementwiseOps, ReduceOps, ShapeOps, CNNOps, CNNGradOps, CompareOps, NumpyProtocol, Creation):
    """An n-d array of float32/float64 that records the ops applied to it.

    Fields: ``data`` (read-only ndarray), ``grad`` (ndarray of data's shape and dtype, or None; a Tensor after
    ``backward(create_graph=True)``),
    ``requires_grad``, ``name``, and for an op's result: ``op`` (its name, None for a leaf), ``op_args`` (its
    hyper-parameters, canonical: pairs as tuples), ``rule`` (one line saying what its backward does), ``facts``
    (the ``OpFacts`` a library op declares; None for a user's op), ``parents`` (its inputs).
    """

    __slots__ = ("_data", "grad", "requires_grad", "name", "op", "op_args", "rule", "facts", "parents",
                 "_backward", "_version", "_saved_versions", "_hooks", "_where", "__weakref__")

    def __init__(self, data, requires_grad: bool = False, name: str | None = None, dtype=None):
        self._set_leaf(to_array(data.data if isinstance(data, Tensor) else data, dtype), bool(requires_grad), name)

    def _set_leaf(self, data: np.ndarray, requires_grad: bool, name: str | None) -> None:
        self._data, self.grad, self.requires_grad, self.name = data, None, requires_grad, name
        self.op, self.op_args, self.rule, self.facts, self.parents, self._backward = None, {}, None, None, (), None
        self._version, self._saved_versions, self._hooks, self._where = 0, (), None, None

    # ------------------------------------------------------------------ recording an op
    @classmethod
    def from_op(cls, data, parents: tuple, op, backward, *, rule: str | None = None, graph_backward=None,
                **op_args) -> Tensor:
        """The result of an op: ``data`` (its numpy output), recorded with its inputs and backward closure.

        parents: the input Tensors, in order. backward: ``g -> tuple`` of one gradient per parent (an array
        that broadcasts to the parent's shape, or None), g being the gradient at the output (data's shape).
        op: the op's name (your own op), or the ``OpFacts`` a library op declares (``ops/facts.py``), which
        carries its name, rule and what readers need to know. rule: one line saying what backward computes,
        drawn by ``draw(show_rule=True)``; required with a name (a declared op has its own). op_args: the op's
        hyper-parameters, shown in its label (``conv2d stride=2 pad=1``).
        graph_backward: for your own op, ``g -> tuple`` as backward but on Tensors, written with Tensor ops, so that
        ``backward(create_graph=True)`` can record it (without it that raises, naming the op); a library op's
        closure does both itself (ops/: it takes the Tensor branch when g is a Tensor).
        Nothing is recorded (a plain leaf comes back) inside ``no_grad()`` or when no parent requires grad.
        Inside ``detect_anomaly()`` the op also records the user's file:line and checks its output.
        data follows the dtype policy: float32/float64 arrays as they are; ints, bools, lists and Python numbers
        become the parents' float dtype (the default dtype without parents). For your own op, a writable array is
        copied (your array stays yours and writable; the tensor's is read-only); a library op's fresh output is kept
        as it is, made read-only. A gradient ``backward`` returns must
        have its parent's shape, or one that shape broadcasts to (``backward()`` raises ValueError naming the op).
        """
        facts = op if type(op) is OpFacts else None
        if facts is not None:
            op, rule = facts.name, facts.rule
        else:
            if not isinstance(rule, str) or not rule:
                raise TypeError(f"from_op: op '{op}' needs rule=, one line saying what its backward computes "
                                "(e.g. rule=\"da = g*2\"), shown by draw(show_rule=True)")
            if graph_backward is not None:
                if not callable(graph_backward):
                    raise TypeError(f"from_op: graph_backward of '{op}' must be callable (g -> one Tensor per "
                                    f"input), got {type(graph_backward).__name__}")
                backward = TwoBackwards(backward, graph_backward)
            if type(data) is np.ndarray and data.flags.writeable and data.dtype in (F32, F64):
                data = data.copy()  # the caller's array stays theirs, writable; the tensor owns a read-only copy
        try:
            needs_grad = grad_mode.enabled and any([p.requires_grad for p in parents])
        except AttributeError:
            raise TypeError(f"from_op: parents of '{op}' must be Tensors, got "
                            f"{[type(p).__name__ for p in parents]}; wrap constants with Tensor(...)") from None
        dtype = getattr(data, "dtype", None)
        if dtype is not F64 and dtype is not F32:  # ints, bools, lists, Python numbers: the dtype policy
            data = to_array(data, np.result_type(*[p._data for p in parents]) if parents else None)
        where = None
        if anomaly_mode.enabled:
            where = user_line()
            check_forward(data, parents, facts or GENERIC, op, op_args, where)
        if not needs_grad:
            return cls._leaf(readonly(data))
        out = cls.__new__(cls)
        out._data, out.grad, out.requires_grad, out.name = readonly(data), None, True, None
        out.op, out.op_args, out.rule, out.facts, out._backward = op, op_args, rule, facts, backward
        out.parents = parents if type(parents) is tuple else tuple(parents)
        out._version, out._saved_versions, out._hooks, out._where = 0, tuple([p._version for p in parents]), None, where
        return out

    @classmethod
    def _leaf(cls, data: np.ndarray, requires_grad: bool = False, name: str | None = None) -> Tensor:
        """A leaf around an array that is already read-only and follows the dtype policy."""
        out = cls.__new__(cls)
        out._set_leaf(data, requires_grad, name)
        return out

    @classmethod
    def as_tensor(cls, x) -> Tensor:
        """Tensors pass through; anything else becomes a constant Tensor (requires_grad=False)."""
        return x if isinstance(x, Tensor) else cls(x)

    def _lift(self, other) -> Tensor:
        """A constant Tensor for a scalar/list/array operand; Python scalars and lists take self's dtype."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, (int, float, bool)):
            return Tensor._leaf(readonly(np.array(other, dtype=self._data.dtype)))
        if isinstance(other, np.ndarray):
            return Tensor(other)  # the dtype policy: float32/float64 arrays keep their dtype
        return Tensor(other, dtype=self._data.dtype)  # lists, like Python scalars, take self's dtype

    # ------------------------------------------------------------------ the backward walk
    @pytorch_args("backward", ("gradient", "retain_graph", "create_graph", "inputs"))
    def backward(self, grad=None, retain_graph=None, create_graph: bool = False) -> None:
        """Fill ``.grad`` of every tensor that leads here and requires grad. The arguments are in PyTorch's order
        (``backward(None, True)`` is retain_graph=True there and here).

        ``grad`` defaults to 1 for a one-element tensor; any other shape needs it explicitly.
        create_graph: record the backward itself (``higher_order.py``): each ``.grad`` is then a Tensor in a graph
        (as PyTorch), which a further loss may use and differentiate again; a ``grad`` Tensor that requires grad
        is part of that graph. Without it (the default) the walk runs numpy only and ``.grad`` holds arrays.
        retain_graph: accepted for PyTorch's code and ignored: the graph is always kept (backward may run again).
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward: this tensor does not require grad: none of the tensors it was computed "
                "from has requires_grad=True (or it was made inside no_grad())"
            )
        seed = self._seed_gradient(grad, "backward", create_graph)
        with gc_paused():
            order = [t for t in topo_order(self) if t.requires_grad]
            for t in order:  # check before changing anything: a failed backward leaves grads untouched
                t._check_versions()
            if create_graph:
                check_records_itself(order, "backward")
                run_graph_backward(order, {id(self): seed}, anomaly=anomaly_mode.enabled)
            else:
                _run_backward(order, {id(self): seed}, anomaly=anomaly_mode.enabled)

    def _seed_gradient(self, grad, caller: str, as_tensor: bool = False):
        """The gradient a walk starts from at self: ``grad`` (an array or Tensor of self's shape, in self's dtype), or
        1 for a one-element tensor when grad is None. An array; a Tensor when as_tensor (kept in its graph when grad
        is a Tensor that requires grad)."""
        if grad is None:
            if self._data.size != 1:
                raise RuntimeError(
                    f"{caller}: grad can be implied only for a one-element tensor, this one has shape "
                    f"{self.shape}; pass grad= an array of that shape"
                )
            seed = np.ones_like(self._data)
        else:
            seed = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.dtype)
            if seed.shape != self.shape:
                raise ValueError(f"{caller}: grad has shape {seed.shape} but the tensor has shape {self.shape}")
        if not as_tensor:
            return seed
        if isinstance(grad, Tensor):
            return grad if grad.dtype == self.dtype else grad.astype(self.dtype)
        return Tensor._leaf(readonly(np.array(seed)))

    def register_hook(self, hook) -> RemovableHandle:
        """Call ``hook(grad)`` each time backward() computes this tensor's gradient; return a handle whose
        ``.remove()`` takes the hook off.

        As PyTorch: ``grad`` is the whole gradient of this tensor for that backward() (read-only); the hook
        may return a replacement array (same shape and dtype) or None. The replacement is what flows on to
        the op's inputs and what ``.grad`` holds; on a leaf the hook runs before ``.grad`` accumulates it.
        Several hooks run in the order they were registered, each getting the previous one's result.
        """
        if not self.requires_grad:
            raise RuntimeError("register_hook: this tensor does not require grad, so no gradient will reach it")
        if not callable(hook):
            raise TypeError(f"register_hook: hook must be callable, got {type(hook).__name__}")
        if self._hooks is None:
            self._hooks = {}
        handle = RemovableHandle(self._hooks)
        self._hooks[handle.id] = hook
        return handle

    def _run_hooks(self, g: np.ndarray) -> np.ndarray:
        """The gradient after this tensor's hooks (each may replace it with an array of g's shape and dtype)."""
        for hook in list(self._hooks.values()):
            view = g.view(HookGradient)  # read-only; an in-place edit says to return the new gradient
            view.setflags(write=False)
            new = hook(view)
            if new is None:
                continue
            new = new.data if isinstance(new, Tensor) else new
            if isinstance(new, (np.generic, np.ndarray)):  # a numpy scalar (0-d arithmetic) or a HookGradient
                new = np.asarray(new)
            checked_hook_result(hook, new, g.shape, g.dtype)
            g = new
        return g

    def _check_versions(self) -> None:
        """Raise if an input's data was replaced after this op used it."""
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

    def detach(self) -> Tensor:
        """A new leaf sharing the (read-only) data, cut from the graph (requires_grad=False)."""
        return Tensor._leaf(self._data, name=self.name)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if not self.is_leaf and not requires_grad:
            raise RuntimeError("requires_grad_: only a leaf's flag can be turned off; use detach()")
        self.requires_grad = bool(requires_grad)
        return self

    # ------------------------------------------------------------------ data and basic info
    @property
    def data(self) -> np.ndarray:
        """The values, a read-only ndarray (``DataView``: an in-place edit says to assign ``t.data = ...`` instead)."""
        return self._data.view(DataView)

    @data.setter
    def data(self, value) -> None:
        """Replace the values (same shape not required); later backward through old uses raises."""
        self._data = to_array(value, self._data.dtype)
        self._version += 1

    shape = property(lambda self: self._data.shape)
    dtype = property(lambda self: self._data.dtype)
    ndim = property(lambda self: self._data.ndim)
    size = property(lambda self: Size(self._data.shape), doc="The number of elements (numpy's meaning), an int; "
                    "PyTorch's x.size() is x.shape here (calling it says so)")

    @property
    def is_leaf(self) -> bool:
        return not self.parents

    @property
    def op_label(self) -> str:
        """The op and its hyper-parameters, e.g. ``conv2d stride=2 pad=1``; '' for a leaf."""
        if self.op is None:
            return ""
        return self.facts.label(self.op_args) if self.facts is not None else op_label(self.op, self.op_args)

    def numpy(self) -> np.ndarray:
        """The values, a read-only ndarray (``NumpyView``: an edit says to copy, or to assign ``t.data``)."""
        return self._data.view(NumpyView)

    def item(self) -> float:
        return self._number("item")

    def tolist(self):
        """The values as nested Python lists of floats (a Python float for a 0-d tensor), as numpy and PyTorch."""
        return self._data.tolist()

    def __float__(self) -> float:
        return float(self._number("float"))

    def __int__(self) -> int:
        return int(self._number("int"))

    def _number(self, caller: str):
        """The value of a one-element tensor as a Python number; caller names the conversion in the error."""
        if self._data.size != 1:
            raise ValueError(f"{caller}: only a one-element tensor converts to a Python number, got shape "
                             f"{self.shape}")
        return self._data.item()

    def __iter__(self):
        """The rows ``x[0], x[1], ...``, each a Tensor in the graph (as PyTorch)."""
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(self.shape[0]))

    def __array__(self, dtype=None, copy=None):
        if copy:
            return np.array(self._data, dtype=dtype)
        return self._data if dtype is None else self._data.astype(dtype)

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __bool__(self):
        if self._data.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self._data)

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

    # x op= y rebinds x to a new tensor (micrograd's and JAX's meaning), except on a leaf that requires grad
    __iadd__, __isub__, __imul__ = _augmented("+=", operator.add), _augmented("-=", operator.sub), \
        _augmented("*=", operator.mul)
    __itruediv__, __ipow__, __imatmul__ = _augmented("/=", operator.truediv), _augmented("**=", operator.pow), \
        _augmented("@=", operator.matmul)

    # ------------------------------------------------------------------ copies and pickle
    def _check_copyable(self, how: str) -> None:
        if not self.is_leaf:
            raise RuntimeError(
                f"{how}: this tensor is the result of '{self.op}', inside a graph; only a leaf can be copied or "
                "pickled (as PyTorch). Call t.detach() first for a leaf with the same values."
            )

    def __copy__(self) -> Tensor:
        """A leaf sharing the read-only data, with the same name and requires_grad; no grad (as PyTorch)."""
        self._check_copyable("copy")
        return type(self)._leaf(self._data, self.requires_grad, self.name)

    def __deepcopy__(self, memo) -> Tensor:
        """A leaf with its own read-only copy of the data, the same name and requires_grad, and a copy of the
        grad (as PyTorch)."""
        self._check_copyable("deepcopy")
        out = type(self)._leaf(readonly(self._data.copy()), self.requires_grad, self.name)
        out.grad = None if self.grad is None else np.array(self.grad)  # a Tensor's (create_graph) values too
        memo[id(self)] = out
        return out

    def __reduce_ex__(self, protocol):
        """Pickle a leaf as its data, requires_grad and name (no grad, as PyTorch); it comes back read-only."""
        self._check_copyable("pickle")
        return _rebuild_leaf, (np.array(self._data), self.requires_grad, self.name)

    def draw(self, **options):
        """The graph that leads here, as a graphviz.Digraph (see ``tinygrad_cnn.viz.draw_graph``)."""
        from .viz import draw_graph
        return draw_graph(self, **options)


as_tensor = Tensor.as_tensor
add_unavailable(Tensor)  # PyTorch-only names (x.dim(), x.cpu(), x.add_(y), ...) say what to write (hints.py)
name_methods_after(Tensor)  # Python's own argument errors say Tensor.relu(), not ElementwiseOps.relu()


def _rebuild_leaf(data: np.ndarray, requires_grad: bool, name: str | None) -> Tensor:
    """The leaf a pickle holds (see ``Tensor.__reduce_ex__``)."""
    return Tensor(data, requires_grad, name)


# ----------------------------------------------------------------------------- the walk's inner loop
def _run_backward(order: list, pending: dict, anomaly: bool = False, record: dict | None = None,
                  hooks: bool = False) -> None:
    """Call each closure in reverse topological order; accumulate what it returns per parent.

    pending: {id(t): gradient array} to start from (the seeds: the root's, or each output's for ``grad()``).
    anomaly: check each closure's gradients (``detect_anomaly()``). record: None for ``backward()``, which
    runs hooks and fills ``.grad``; or a dict that receives ``{id(t): gradient}`` for every tensor reached,
    touching no ``.grad`` and calling hooks only when ``hooks`` (``grad()`` does; ``explain``, re-running the
    walk, does not).
    """
    for t in reversed(order):
        g = pending.pop(id(t), None)
        if g is None:
            continue
        if record is not None:
            if hooks and t._hooks:
                g = t._run_hooks(g)
            record[id(t)] = g
            if not t.parents:
                continue
        else:
            if t._hooks:
                g = t._run_hooks(g)
            if not t.parents:  # a leaf: its grad is its own array, accumulated in place as PyTorch does
                with leaf_grad_lock:
                    if t.grad is None:
                        t.grad = np.array(g)
                    elif type(t.grad) is np.ndarray:
                        t.grad += g
                    else:  # the Tensor of a backward(create_graph=True): a plain backward adds plain values
                        t.grad = t.grad.data + g
                continue
            t.grad = g
        grads = t._backward(g)
        if type(grads) is not tuple or len(grads) != len(t.parents):
            raise wrong_gradients(t, grads)
        if anomaly:
            check_backward(t, g, grads)
        for parent, pg in zip(t.parents, grads, strict=True):
            if pg is None or not parent.requires_grad:
                continue
            try:
                pg = grad_like(pg, parent._data)
            except ValueError as e:  # a closure's gradient must have its input's shape, or one it broadcasts to
                raise wrong_shape(t, parent, e) from None
            key = id(parent)
            pending[key] = pg if key not in pending else pending[key] + pg


def walk_gradients(root: Tensor, grad: np.ndarray) -> dict:
    """{id(t): the gradient backward() would send to t} for every tensor leading to root that gets one,
    from ``grad`` at root; no ``.grad`` is touched and no hook is called."""
    record = {}
    with gc_paused():
        _run_backward([t for t in topo_order(root) if t.requires_grad], {id(root): grad}, record=record)
    return record
