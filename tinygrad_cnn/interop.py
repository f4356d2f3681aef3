"""Weights to and from PyTorch, without importing it: ``to_torch_state_dict`` and ``from_torch_state_dict``.

``to_torch_state_dict(model, input_shape)`` gives ``{name: ndarray}`` laid out exactly as the ``state_dict()`` of
the equivalent PyTorch model (an ``nn.Sequential`` of the same layers, or a Module with the same attribute names),
so ``torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})`` works. Per layer:

* Conv2d: W (f_h, f_w, n_C_prev/groups, n_C) -> weight (n_C, n_C_prev/groups, f_h, f_w); b -> bias.
* ConvTranspose2d: W (f_h, f_w, n_C_out/groups, n_C_in) -> weight (n_C_in, n_C_out/groups, f_h, f_w); b -> bias.
* Linear: W (in, out), used as x @ W + b -> weight (out, in), used as x @ weight.T + bias; b -> bias.
* BatchNorm2d: gamma -> weight, beta -> bias; running_mean, running_var, num_batches_tracked as they are.

The one silent trap is a Linear fed by a Flatten of images: ours flattens NHWC (rows in (H, W, C) order), PyTorch
NCHW ((C, H, W) order), so that Linear's input rows are reordered. Which Linears are fed so, and how, is found by
running the model once on zeros of ``input_shape`` (eval mode, batch axis included, e.g. ``(1, 28, 28, 1)``) and
following each row of each Linear's input back through the recorded ops (``flatten_order.py``): exact through
moves (reshape, transpose, concatenate, indexing), entrywise ops and softmax; refused, with the ops named, where no
order of the weight's rows could match PyTorch's twin.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .flatten_order import torch_columns
from .nn.layers import BatchNorm2d, Conv2d, ConvTranspose2d, Linear
from .nn.module import Module, check_state_keys
from .nn.tracing import check_input_shape, trace_calls
from .tensor import Tensor

__all__ = ["to_torch_state_dict", "from_torch_state_dict"]



def _conv_weight_to_torch(W):
    """(f_h, f_w, a, b) -> (b, a, f_h, f_w): Conv2d's and ConvTranspose2d's weight alike."""
    return W.transpose(3, 2, 0, 1)


def _conv_weight_from_torch(w):
    return w.transpose(2, 3, 1, 0)


def _same(a):
    return a


def _linear_layouts(columns):
    """(to_torch, from_torch) for a Linear's W (in, out); columns: PyTorch's column for each of our rows
    (``flatten_order.torch_columns``), or None for the same order."""
    if columns is None:
        return np.transpose, np.transpose

    def to_torch(W):   # our row j -> column columns[j] of weight (out, in)
        w = np.empty((W.shape[1], W.shape[0]), W.dtype)
        w[:, columns] = W.T
        return w

    def from_torch(w):
        return w[:, columns].T
    return to_torch, from_torch


def _layouts(module: Module, flattened) -> dict:
    """{our name: (PyTorch name, to_torch, from_torch)} for the parameters and buffers of a known layer."""
    if isinstance(module, (Conv2d, ConvTranspose2d)):
        return {"W": ("weight", _conv_weight_to_torch, _conv_weight_from_torch), "b": ("bias", _same, _same)}
    if isinstance(module, Linear):
        return {"W": ("weight", *_linear_layouts(flattened.get(id(module)))), "b": ("bias", _same, _same)}
    if isinstance(module, BatchNorm2d):
        names = {"gamma": "weight", "beta": "bias", "running_mean": "running_mean", "running_var": "running_var",
                 "num_batches_tracked": "num_batches_tracked"}
        return {ours: (theirs, _same, _same) for ours, theirs in names.items()}
    return {}


def _entries(model: Module, input_shape, who: str) -> list:
    """[(PyTorch key, our state_dict key, our value (Tensor or ndarray), to_torch, from_torch)] in PyTorch's
    state_dict order: module by module, each one's parameters then its buffers."""
    if not isinstance(model, Module):
        raise TypeError(f"{who}: model must be a Module, got {type(model).__name__}")
    flattened = _flatten_sources(model, check_input_shape(who, input_shape))
    entries = []
    for module_name, module in model.named_modules(remove_duplicate=False):
        prefix = f"{module_name}." if module_name else ""
        own = {**dict(module.named_parameters(remove_duplicate=False, recurse=False)),
               **dict(module.named_buffers(recurse=False))}
        layouts = _layouts(module, flattened)
        unknown = [k for k in own if k not in layouts]
        if unknown:
            raise TypeError(f"{who}: {module_name or 'the model'} ({type(module).__name__}) holds "
                            f"{[prefix + k for k in unknown]}, whose PyTorch layout is not known; the layers with "
                            "weights it maps are Conv2d, ConvTranspose2d, Linear and BatchNorm2d")
        entries += [(prefix + layouts[k][0], prefix + k, v, *layouts[k][1:]) for k, v in own.items()]
    return entries


def _flatten_sources(model: Module, input_shape: tuple) -> dict:
    """{id(Linear): PyTorch's column for each of its input rows, or None} for every Linear the model calls
    (``flatten_order.torch_columns``); a Linear called twice must need the same order both times."""
    found = {}

    def record(module, args, out):
        if isinstance(module, Linear) and args and isinstance(args[0], Tensor):
            who = f"Linear({module.extra_repr()})"
            columns = torch_columns(args[0], who)
            if id(module) not in found:
                found[id(module)] = columns
            elif not _same_order(found[id(module)], columns):
                raise ValueError(f"interop: {who} is called on inputs whose rows need different orders in PyTorch "
                                 "(flattens of different images, or one flattened and one not): no single order "
                                 "of its weight's rows matches both")
    trace_calls(model, input_shape, record, grad=True)
    return found


def _same_order(a, b) -> bool:
    return (a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))


def to_torch_state_dict(model: Module, input_shape) -> dict:
    """{PyTorch name: ndarray} laid out as the ``state_dict()`` of the same model in PyTorch (see the module doc).

    input_shape: the shape of one input batch, batch axis included, NHWC (e.g. ``(1, 28, 28, 1)``): the model runs
    once on zeros of it to find which Linear follows a Flatten. Arrays are copies in the parameters' dtypes.
    """
    entries = _entries(model, input_shape, "to_torch_state_dict")
    return {key: np.array(to_torch(value.data if isinstance(value, Tensor) else value), copy=True)
            for key, _, value, to_torch, _ in entries}


def _as_array(value) -> np.ndarray:
    """An ndarray from an array, or from anything with ``.numpy()`` (a torch tensor, detached first)."""
    if hasattr(value, "detach"):
        value = value.detach()
    if hasattr(value, "cpu"):
        value = value.cpu()
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def from_torch_state_dict(model: Module, state, input_shape) -> None:
    """Load a PyTorch ``state_dict`` (of the same layers, same names) into ``model``: the inverse of
    ``to_torch_state_dict``. Values: ndarrays or anything with ``.numpy()`` (torch tensors). Every key and shape
    is checked (against the PyTorch layout) before anything is written."""
    who = "from_torch_state_dict"
    if not isinstance(state, Mapping):
        raise TypeError(f"{who}: state must be a mapping name -> array (torch_model.state_dict()), "
                        f"got {type(state).__name__}")
    entries = _entries(model, input_shape, who)
    check_state_keys(f"{who}: {type(model).__name__}", [key for key, *_ in entries], state)
    ours = {}
    for key, our_key, value, to_torch, from_torch in entries:
        arr = _as_array(state[key])
        expected = to_torch(value.data if isinstance(value, Tensor) else value).shape
        if arr.shape != expected:
            raise ValueError(f"{who}: key {key!r} has shape {arr.shape}, but PyTorch's layout of {our_key!r} "
                             f"(ours {value.shape}) is {expected}")
        ours[our_key] = from_torch(arr)
    model.load_state_dict(ours)
