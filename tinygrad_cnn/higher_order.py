"""The backward walk that records itself: ``backward(create_graph=True)`` and ``grad(..., create_graph=True)``.

The plain walk (``tensor._run_backward``) calls each op's numpy closure on arrays. This walk calls the same closure
with the gradient as a Tensor instead: every op of the library writes its rule twice, side by side, on arrays and
on Tensors (``if type(g) is not np.ndarray:`` picks the Tensor branch), so here each rule runs as ops of the
library and is recorded like any forward op, with grad mode on. The gradients it returns are Tensors in a graph:
a loss made of them can be differentiated again, to any order. Where a rule's derivative is itself an op (the input
gradient of conv2d is a conv_transpose2d), that op is what gets recorded, so a drawing of the backward reads as ops.

A user's op (``Tensor.from_op`` with a name) has a numpy closure only; it joins in when given
``graph_backward=fn`` (``fn(g)``: g a Tensor, one Tensor or None per input), which ``from_op`` pairs with the numpy
closure in a ``TwoBackwards``. An op with neither is refused before the walk starts, naming it.

Everything else is the plain walk's semantics: version checks first, hooks (they get the gradient as a Tensor and
may return a Tensor, kept in the graph), leaves accumulate (``.grad`` becomes ``.grad + g``, a Tensor), interior
tensors keep their latest gradient, ``detect_anomaly`` checks each backward's values.
numpy, graph.py, modes.py and anomaly.py only; no Tensor import (it works through the tensors' own methods).
"""

from __future__ import annotations

import numpy as np

from .anomaly import AnomalyError, check_backward
from .graph import check_reduces_to, checked_hook_result, leaf_grad_lock, wrong_gradients, wrong_shape
from .modes import enable_grad, recording_backward


class TwoBackwards:
    """A user op's backward when it gave ``graph_backward``: ``numpy(g)`` on arrays (a plain backward), ``tensors(g)``
    on Tensors (create_graph)."""

    __slots__ = ("numpy", "tensors")

    def __init__(self, numpy_backward, tensor_backward):
        self.numpy, self.tensors = numpy_backward, tensor_backward

    def __call__(self, g):
        return self.numpy(g) if type(g) is np.ndarray else self.tensors(g)


def check_records_itself(order: list, caller: str) -> None:
    """Raise before anything is computed if an op of ``order`` cannot run its backward on Tensors: a user's op made
    without ``graph_backward``."""
    for t in order:
        if t.parents and t.facts is None and type(t._backward) is not TwoBackwards:
            raise RuntimeError(
                f"{caller}(create_graph=True): the op '{t.op}' has only a numpy backward, so its gradient cannot be "
                "recorded and differentiated again; give Tensor.from_op graph_backward=fn as well (fn(g): g a "
                "Tensor, one Tensor per input, written with Tensor ops), or differentiate without create_graph"
            )


def run_hooks_on_tensor(t, g):
    """t's hooks on its gradient Tensor g: each may return None, or a Tensor (kept in the graph) or array of g's shape
    and dtype that replaces it."""
    for hook in list(t._hooks.values()):
        new = hook(g)
        if new is None:
            continue
        is_tensor = isinstance(new, type(g))
        values = new.data if is_tensor else np.asarray(new)
        checked_hook_result(hook, values, g.shape, g.dtype)
        g = g._lift(new if is_tensor else values)
    return g


def gradient_like(pg, parent):
    """A Tensor branch's gradient for ``parent``: a Tensor (an array becomes a constant), summed back over the axes
    the forward broadcast (with sum ops, so that step is recorded too), in the parent's dtype."""
    pg = parent._lift(pg)
    if pg.shape != parent.shape:
        check_reduces_to(pg.shape, parent.shape)
        pg = pg._summed_to(parent.shape)
    return pg if pg.dtype == parent.dtype else pg.astype(parent.dtype)


def accumulate_leaf(t, g) -> None:
    """A leaf's .grad after a recording walk: g itself the first time, else ``.grad + g`` (a new Tensor, in the
    graph; an array left by a plain backward enters as a constant)."""
    with leaf_grad_lock:
        t.grad = g if t.grad is None else g._lift(t.grad) + g


def run_graph_backward(order: list, pending: dict, anomaly: bool = False, record: dict | None = None) -> None:
    """The recording walk: as ``tensor._run_backward`` but on Tensors, with grad mode on.

    order: the tensors to walk, parents first. pending: {id(t): gradient Tensor} to start from (the seeds).
    record: None to run hooks and fill ``.grad``; or a dict that receives ``{id(t): gradient Tensor}`` for every
    tensor reached, touching no ``.grad`` (hooks still run, as PyTorch's ``autograd.grad``).
    """
    with enable_grad(), recording_backward():
        for t in reversed(order):
            g = pending.pop(id(t), None)
            if g is None:
                continue
            if t._hooks:
                g = run_hooks_on_tensor(t, g)
            if record is not None:
                record[id(t)] = g
            elif not t.parents:
                accumulate_leaf(t, g)
            else:
                t.grad = g
            if not t.parents:
                continue
            try:
                grads = t._backward(g)
            except AnomalyError as e:  # an op of the recorded backward made NaN/inf: say whose backward it was
                raise AnomalyError(f"in the backward of {t.op_label} (made at {t._where or 'a line not recorded'}, "
                                   f"recorded by create_graph): {e}") from None
            if type(grads) is not tuple or len(grads) != len(t.parents):
                raise wrong_gradients(t, grads)
            if anomaly:
                check_backward(t, g.data, tuple(None if pg is None else np.asarray(pg) for pg in grads))
            for parent, pg in zip(t.parents, grads, strict=True):
                if pg is None or not parent.requires_grad:
                    continue
                try:
                    pg = gradient_like(pg, parent)
                except ValueError as e:
                    raise wrong_shape(t, parent, e) from None
                key = id(parent)
                pending[key] = pg if key not in pending else pending[key] + pg
