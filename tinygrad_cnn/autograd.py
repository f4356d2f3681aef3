"""``grad(outputs, inputs)``: the gradients of outputs with respect to inputs, returned rather than stored in
``.grad``, as ``torch.autograd.grad``; with ``create_graph=True`` they are Tensors in a graph, to differentiate again.

The walk covers only the tensors between the outputs and the inputs (those with an input among their ancestors, or
an input themselves) and records every gradient it reaches instead of writing ``.grad``: the plain walk
(``tensor._run_backward``) on arrays, or the recording one (``higher_order.run_graph_backward``) on Tensors.
Hooks run, as in PyTorch. Imports the engine (tensor.py), the graph walk, the recording walk and hints.py.
"""

from __future__ import annotations

import numpy as np

from .anomaly import anomaly_mode
from .graph import gc_paused, readonly, topo_order
from .higher_order import check_records_itself, run_graph_backward
from .hints import pytorch_args
from .tensor import Tensor, _run_backward

__all__ = ["grad"]


class _Outputs:
    """A node whose parents are the outputs, so one topological order covers all of them."""

    def __init__(self, outputs: tuple):
        self.parents = outputs


def _tensors(value, what: str) -> tuple:
    """A Tensor or a sequence of Tensors -> a tuple of them; names ``what`` (outputs, inputs) if one is not a Tensor."""
    items = (value,) if isinstance(value, Tensor) else tuple(value)
    for i, item in enumerate(items):
        if not isinstance(item, Tensor):
            raise TypeError(f"grad: {what} must be Tensors, {what}[{i}] is {type(item).__name__}")
    if not items:
        raise ValueError(f"grad: no {what} given")
    return items


def _grad_outputs(grad_outputs, outputs: tuple) -> tuple:
    """One gradient per output (None: 1 for a one-element output)."""
    if grad_outputs is None:
        return (None,) * len(outputs)
    if isinstance(grad_outputs, (Tensor, np.ndarray)) or np.isscalar(grad_outputs):
        grad_outputs = (grad_outputs,)
    grad_outputs = tuple(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"grad: {len(grad_outputs)} grad_outputs for {len(outputs)} outputs; give one per output "
                         "(None for a one-element output)")
    return grad_outputs


def _between(outputs: tuple, inputs: tuple) -> list:
    """The tensors that require grad and have an input among their ancestors (or are one), parents first."""
    wanted = {id(x) for x in inputs}
    order = topo_order(_Outputs(outputs))[:-1]
    leads = set()
    for t in order:
        if t.requires_grad and (id(t) in wanted or any(id(p) in leads for p in t.parents)):
            leads.add(id(t))
    return [t for t in order if id(t) in leads]


@pytorch_args("grad", ("outputs", "inputs", "grad_outputs", "retain_graph", "create_graph", "only_inputs",
                       "allow_unused", "is_grads_batched", "materialize_grads"),
              missing={"only_inputs": "it is deprecated in PyTorch (always True); drop it, and write allow_unused= "
                                      "by name",
                       "is_grads_batched": "call grad once per grad_outputs",
                       "materialize_grads": "an unused input gets None with allow_unused=True"})
def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph: bool = False, *,
         allow_unused: bool = False) -> tuple:
    """The gradients of ``outputs`` with respect to ``inputs``: a tuple of Tensors, one per input, as
    ``torch.autograd.grad``. No ``.grad`` is touched.

    outputs, inputs: a Tensor or a sequence of Tensors (inputs may be leaves or interior tensors; each must
    require grad). grad_outputs: the gradient at each output (an array or Tensor of its shape; None, or a None
    entry, means 1 for a one-element output): the result is the sum over outputs of gradient^T d output / d input.
    create_graph: the gradients come back as Tensors in a graph (each op's backward recorded as ops), so a loss
    made of them can be differentiated again, to any order; a grad_outputs Tensor that requires grad is part of
    that graph. Without it they are constants (requires_grad=False) and the walk runs numpy only.
    allow_unused: an input that the outputs do not depend on gets None instead of raising. retain_graph: accepted
    for PyTorch's code and ignored: graphs are always kept. The positional arguments are torch.autograd.grad's first
    five, in its order; allow_unused is keyword-only (PyTorch's 6th is only_inputs).
    """
    outputs, inputs = _tensors(outputs, "outputs"), _tensors(inputs, "inputs")
    for i, x in enumerate(inputs):
        if not x.requires_grad:
            raise RuntimeError(f"grad: inputs[{i}]{_named(x)} does not require grad, so it has no gradient")
    seeds = {}
    for i, (y, g) in enumerate(zip(outputs, _grad_outputs(grad_outputs, outputs), strict=True)):
        if not y.requires_grad:
            raise RuntimeError(f"grad: outputs[{i}]{_named(y)} does not require grad: none of the tensors it was "
                               "computed from has requires_grad=True (or it was made inside no_grad())")
        seed = y._seed_gradient(g, f"grad: outputs[{i}]", create_graph)
        seeds[id(y)] = seed if id(y) not in seeds else seeds[id(y)] + seed
    record = {}
    with gc_paused():
        order = _between(outputs, inputs)
        for t in order:
            t._check_versions()
        if create_graph:
            check_records_itself(order, "grad")
            run_graph_backward(order, seeds, anomaly=anomaly_mode.enabled, record=record)
        else:
            _run_backward(order, seeds, anomaly=anomaly_mode.enabled, record=record, hooks=True)
    return tuple(_result(record.get(id(x)), x, i, create_graph, allow_unused) for i, x in enumerate(inputs))


def _named(t: Tensor) -> str:
    return f" ({t.name!r})" if t.name else ""


def _result(g, x: Tensor, i: int, create_graph: bool, allow_unused: bool):
    """The gradient of input i as grad returns it: a Tensor of x's shape and dtype, or None when unused."""
    if g is None:
        if allow_unused:
            return None
        raise RuntimeError(f"grad: inputs[{i}]{_named(x)} of shape {x.shape} was not used to compute the outputs, "
                           "so it has no gradient; pass allow_unused=True to get None for it")
    if create_graph:
        return g
    return Tensor._leaf(readonly(np.array(g, dtype=x.dtype)), name=None)
