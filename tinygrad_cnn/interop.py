"""Weights to and from PyTorch, without importing it: ``to_torch_state_dict`` and ``from_torch_state_dict``.

``to_torch_state_dict(model, input_shape)`` gives ``{name: ndarray}`` laid out exactly as the ``state_dict()`` of
the equivalent PyTorch model (an ``nn.Sequential`` of the same layers, or a Module with the same attribute names),
so ``torch_model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})`` works. Per layer:

* Conv2d: W (f_h, f_w, n_C_prev/groups, n_C) -> weight (n_C, n_C_prev/groups, f_h, f_w); b -> bias.
* ConvTranspose2d: W (f_h, f_w, n_C_out/groups, n_C_in) -> weight (n_C_in, n_C_out/groups, f_h, f_w); b -> bias.
* Linear: W (in, out), used as x @ W + b -> weight (out, in), used as x @ weight.T + bias; b -> bias.
* BatchNorm2d: gamma -> weight, beta -> bias; running_mean, running_var, num_batches_tracked as they are.

The one silent trap is a Linear fed by a Flatten of images: ours flattens NHWC (rows in (H, W, C) order), PyTorch
NCHW ((C, H, W) order), so that Linear's input rows are reordered. Which Linears are fed so is found by running
the model once on zeros of ``input_shape`` (eval mode, batch axis included, e.g. ``(1, 28, 28, 1)``) and following
each Linear's input back through elementwise ops (relu, dropout, a scale, a residual sum...) to a flatten of a 4-D
tensor.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .nn.layers import BatchNorm2d, Conv2d, ConvTranspose2d, Linear
from .nn.module import Module, check_state_keys
from .nn.tracing import check_input_shape, trace_calls
from .ops.facts import facts_of
from .tensor import Tensor

__all__ = ["to_torch_state_dict", "from_torch_state_dict"]



def _conv_weight_to_torch(W):
    """(f_h, f_w, a, b) -> (b, a, f_h, f_w): Conv2d's and ConvTranspose2d's weight alike."""
    return W.transpose(3, 2, 0, 1)


def _conv_weight_from_torch(w):
    return w.transpose(2, 3, 1, 0)


def _same(a):
    return a


def _linear_layouts(hwc):
    """(to_torch, from_torch) for a Linear's W; hwc: the (H, W, C) of the images flattened into it, or None."""
    if hwc is None:
        return np.transpose, np.transpose
    H, W_, C = hwc

    def to_torch(W):   # rows (h, w, c) -> columns (c, h, w)
        return W.reshape(H, W_, C, -1).transpose(3, 2, 0, 1).reshape(W.shape[1], -1)

    def from_torch(w):
        return w.reshape(w.shape[0], C, H, W_).transpose(2, 3, 1, 0).reshape(-1, w.shape[0])
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
    """{id(Linear): (H, W, C)} for each Linear whose input is a flatten of NHWC images (through ENTRYWISE_OPS)."""
    found = {}

    def record(module, args, out):
        if isinstance(module, Linear) and args and isinstance(args[0], Tensor):
            hwc = _flattened_image(args[0])
            if found.setdefault(id(module), hwc) != hwc:
                raise ValueError(f"interop: a Linear({module.extra_repr()}) is called on inputs flattened from "
                                 f"images of (H, W, C) {found[id(module)]} and {hwc}: its rows have no single order")
    trace_calls(model, input_shape, record, grad=True)
    return found


def _flattened_image(x: Tensor):
    """(H, W, C) when x (m, H*W*C) is a flatten of images (m, H, W, C), through entrywise ops; else None.

    Every input of an entrywise op that has the op's shape is followed (``0.5 * flat``, ``flat + flat.relu()``);
    flattens of images of two different (H, W, C) reaching one x raise ValueError (its rows have no single order).
    """
    found, stack, seen = set(), [x], set()
    while stack:
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        facts = facts_of(t)
        if facts.entrywise:  # each entry stays in its place (ops/facts.py): the flatten's order survives
            stack += [p for p in t.parents if p.shape == t.shape]
        elif facts.keeps_order and t.ndim == 2 and t.parents[0].ndim == 4 and t.shape[0] == t.parents[0].shape[0]:
            found.add(tuple(t.parents[0].shape[1:]))
    if len(found) > 1:
        raise ValueError(f"interop: a Linear's input is made from flattens of images of (H, W, C) {sorted(found)}: "
                         "its rows have no single order")
    return found.pop() if found else None


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
