"""Module, the base class of every layer: parameters, buffers and children registered as attributes are set;
train/eval; state_dict/load_state_dict; ``summary`` (the function form of ``Module.summary``).

A Module is a plain Python object whose attributes are registered as they are set:

* a ``Tensor`` attribute is a parameter (``self.W = Tensor(..., requires_grad=True)``);
* ``self.register_buffer(name, array)`` registers a buffer: a numpy array that is part of the layer's state
  but not learned (BatchNorm2d's running statistics). ``state_dict``/``save`` include buffers and
  ``load_state_dict`` restores them (in place); ``parameters()`` and so the optimizers never see them;
* a ``Module`` attribute is a child (``self.conv1 = Conv2d(1, 8, 3)``);
* several children go in a ``ModuleList`` or ``ModuleDict`` (containers.py; a plain list, tuple or dict holding
  Modules or Tensors registers nothing, so setting one raises TypeError).

A parameter shared by two layers (tied weights) is listed once by ``parameters()`` and
``named_parameters()`` (under its first name), as in PyTorch; ``state_dict()`` lists it under each name.

Both keep the order they were set in, so ``named_parameters()`` is deterministic and gives dotted
names (``conv1.W``, ``conv1.b``, ``fc.W``). When a module is set as a child, each of its parameters'
``Tensor.name`` becomes that dotted name, so a drawn graph (``tinygrad_cnn.viz``) labels the leaf
``conv1.W`` instead of leaving it anonymous.

Imports: numpy, hints.py, tensor.py and tracing.py (which runs a model for ``summary`` without importing this
module); no layer and no container.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from ..hints import MODULE_ATTRIBUTES, pytorch_args
from ..tensor import Tensor
from .tracing import summary_text

__all__ = ["Module", "summary", "check_state_keys"]


class Module:
    """Base class: register parameters and children by setting attributes; override ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before setting attributes")
        if name in self._buffers:
            self._buffers[name] = _check_buffer(type(self).__name__, name, value)
        elif isinstance(value, Tensor):
            self._modules.pop(name, None)
            self._parameters[name] = value  # a re-assigned name keeps its place, as in PyTorch
            value.name = name
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._add_module(name, value)
        else:
            _refuse_plain_container(type(self).__name__, name, value)
            self._parameters.pop(name, None)
            self._modules.pop(name, None)
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str):
        """Only called when normal lookup fails: children held by containers (``blocks.0``) by name."""
        modules = self.__dict__.get("_modules", {})
        if name in modules:
            return modules[name]
        hint = f": {MODULE_ATTRIBUTES[name]}" if name in MODULE_ATTRIBUTES else ""
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}{hint}")

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, array) -> None:
        """Register ``array`` (a numpy array of numbers) as the buffer ``name``, readable as ``self.name``.

        A buffer is state that is saved and loaded with the weights but not learned: in ``state_dict()``, not in
        ``parameters()``. Setting ``self.name = new_array`` later replaces it. As ``torch.nn.Module.register_buffer``.
        """
        if not isinstance(name, str) or not name.isidentifier():
            raise TypeError(f"register_buffer: name must be an identifier string, got {name!r}")
        if name in self._parameters or name in self._modules:
            raise KeyError(f"register_buffer: {type(self).__name__} already has a parameter or child {name!r}")
        self._buffers[name] = _check_buffer(type(self).__name__, name, array)
        object.__setattr__(self, name, self._buffers[name])

    def _add_module(self, name: str, module: "Module") -> None:
        """Register ``module`` as the child ``name``; its parameters' Tensor names get the prefix."""
        self._modules[name] = module
        for sub, p in module.named_parameters():
            p.name = f"{name}.{sub}"

    # ------------------------------------------------------------------ calling
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------ walking the tree
    def named_children(self):
        """(name, child module) pairs, in the order they were set; a module held under two names once, at its first
        (as PyTorch's)."""
        seen = set()
        for name, child in self._modules.items():
            if id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self):
        return (m for _, m in self.named_children())

    def modules(self):
        """This module and every descendant, depth first, a shared one once (as PyTorch's ``modules()``)."""
        return (m for _, m in self.named_modules())

    def apply(self, fn) -> "Module":
        """Call ``fn(module)`` on every child (recursively; children() gives a shared one once), then on this module, as
        PyTorch's ``apply`` (e.g. ``model.apply(init_weights)``); return this module."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Set ``requires_grad`` of every parameter (``False`` freezes them: no gradient, the optimizers skip them);
        return this module."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def named_modules(self, prefix: str = "", remove_duplicate: bool = True):
        """(dotted name, module) for this module ("" for itself) and every descendant, depth first.

        A module held in two places is listed once, under its first name (as PyTorch), unless
        ``remove_duplicate=False``.
        """
        seen = set()

        def walk(module, name):
            if remove_duplicate and id(module) in seen:
                return
            seen.add(id(module))
            yield name, module
            for child_name, child in module._modules.items():
                yield from walk(child, f"{name}.{child_name}" if name else child_name)
        return walk(self, prefix)

    def _self_or_all(self, prefix: str, remove_duplicate: bool, recurse: bool):
        """(name, module) pairs to read registered attributes from: all of ``named_modules()``, or this one."""
        return self.named_modules(prefix, remove_duplicate) if recurse else [(prefix, self)]

    def named_parameters(self, prefix: str = "", remove_duplicate: bool = True, *, recurse: bool = True):
        """(dotted name, Tensor) pairs: each module's own parameters, then its children's, in the order set.

        A parameter shared by several layers (tied weights) is listed once, under its first name, as
        PyTorch does; ``remove_duplicate=False`` lists it under every name (what ``state_dict`` does).
        ``recurse=False``: this module's own parameters only, no child's (as PyTorch).
        """
        seen = set()
        for module_name, module in self._self_or_all(prefix, remove_duplicate, recurse):
            for name, p in module._parameters.items():
                if remove_duplicate and id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{module_name}.{name}" if module_name else name), p

    def named_buffers(self, prefix: str = "", remove_duplicate: bool = True, *, recurse: bool = True):
        """(dotted name, ndarray) pairs of every module's buffers, in ``named_modules()`` order.

        ``recurse=False``: this module's own buffers only, no child's (as PyTorch).
        """
        for module_name, module in self._self_or_all(prefix, remove_duplicate, recurse):
            for name, array in module._buffers.items():
                yield (f"{module_name}.{name}" if module_name else name), array

    def buffers(self) -> list:
        """Every buffer array (BatchNorm2d's running statistics...), in ``named_buffers()`` order."""
        return [b for _, b in self.named_buffers()]

    def parameters(self) -> list:
        """Every parameter Tensor once (a tied weight once), in ``named_parameters()`` order."""
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        """Total number of scalars in the parameters."""
        return sum(p.size for p in self.parameters())

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (``grad = None``, PyTorch's default); ``set_to_none=False``: set it to
        zeros of its shape."""
        for p in self.parameters():
            p.grad = None if set_to_none or p.grad is None else np.zeros_like(p.grad)

    def train(self, mode: bool = True) -> "Module":
        """Set ``training`` on this module and all descendants; returns self."""
        for _, m in self.named_modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        """Same as ``train(False)``."""
        return self.train(False)

    # ------------------------------------------------------------------ weights as arrays
    def _named_state(self) -> dict:
        """{dotted name: parameter Tensor or buffer ndarray}: each module's parameters, then its buffers, module by
        module in ``named_modules()`` order (PyTorch's ``state_dict`` order); a tied one under each name."""
        state = {}
        for module_name, module in self.named_modules(remove_duplicate=False):
            state.update(module.named_parameters(module_name, remove_duplicate=False, recurse=False))
            state.update(module.named_buffers(module_name, recurse=False))
        return state

    def state_dict(self) -> dict:
        """{dotted name: writable ndarray copy} of every parameter and buffer (BatchNorm2d's running statistics),
        each module's parameters then its buffers, as PyTorch's ``state_dict``.

        A tied parameter appears under each of its names, as in PyTorch's ``state_dict``.
        """
        return {name: np.array(v.data if isinstance(v, Tensor) else v, copy=True)
                for name, v in self._named_state().items()}

    @pytorch_args("load_state_dict")
    def load_state_dict(self, state_dict, strict: bool = True) -> None:
        """Copy arrays into the parameters and buffers (each cast to its parameter's or buffer's dtype; a buffer
        is written in place, so an op holding it sees the new values).

        The keys must be exactly those of ``state_dict()`` and each shape must match; the names of
        one tied parameter must hold equal values (PyTorch would silently keep the last).  Everything
        is checked before anything is written, so on error no parameter has changed.
        """
        if strict is not True:
            raise TypeError("load_state_dict: strict=False (PyTorch's) is not supported here: the keys must match "
                            "exactly; load the ones this model has: model.load_state_dict({k: state[k] for k in "
                            "model.state_dict()})")
        state = state_dict
        if not isinstance(state, Mapping):
            raise TypeError(f"load_state_dict: expected a mapping name -> array, got {type(state).__name__}")
        own = self._named_state()
        check_state_keys(f"load_state_dict: {type(self).__name__}", own, state)
        arrays, first_name = {}, {}
        for name, p in own.items():
            value = state[name]
            value = value.data if isinstance(value, Tensor) else value
            arr = np.asarray(value)
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"load_state_dict: key {name!r} holds dtype {arr.dtype}, expected numbers")
            if arr.shape != p.shape:
                kind = "parameter" if isinstance(p, Tensor) else "buffer"
                raise ValueError(f"load_state_dict: key {name!r} has shape {arr.shape}, "
                                 f"but the {kind} has shape {p.shape}")
            first = first_name.setdefault(id(p), name)
            if not np.array_equal(arr.astype(p.dtype), arrays.get(first, arr).astype(p.dtype), equal_nan=True):
                raise ValueError(f"load_state_dict: keys {first!r} and {name!r} name one tied parameter but "
                                 "hold different values")
            arrays[name] = arr
        for name, p in own.items():
            if isinstance(p, Tensor):
                p.data = arrays[name]
            else:
                p[...] = arrays[name]

    # ------------------------------------------------------------------ printing
    def summary(self, input_shape, print_fn=print) -> str:
        """The table of layers, output shapes and parameter counts: ``nn.summary(self, input_shape)``."""
        return summary(self, input_shape, print_fn)

    def extra_repr(self) -> str:
        """The arguments shown between the parentheses of ``repr``; override in layers."""
        return ""

    def __repr__(self) -> str:
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not self._modules:
            return head + ")"
        lines = [head]
        for name, child in self._modules.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)"


# ----------------------------------------------------------------------------- checks
def check_state_keys(who: str, expected, state) -> None:
    """Unless ``state`` has exactly the keys of ``expected`` (names, in any iterable or mapping), a ValueError
    ``"{who}: missing keys [...]; unexpected keys [...]"``. ``load_state_dict`` and interop.py check with it."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        parts = [f"missing keys {missing}"] if missing else []
        parts += [f"unexpected keys {unexpected}"] if unexpected else []
        raise ValueError(f"{who}: {'; '.join(parts)}")


def _check_buffer(owner: str, name: str, value) -> np.ndarray:
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
        raise TypeError(f"{owner}: buffer {name!r} must be a numpy array of numbers, got {type(value).__name__}")
    return value


def _refuse_plain_container(owner: str, name: str, value) -> None:
    """A list, tuple or dict holding Modules or Tensors would register nothing: say what to use."""
    if not isinstance(value, (list, tuple, dict)):
        return
    items = value.values() if isinstance(value, dict) else value
    kind = type(value).__name__
    if any(isinstance(v, Module) for v in items):
        use = "nn.ModuleDict({...})" if isinstance(value, dict) else "nn.ModuleList([...])"
        raise TypeError(f"{owner}: attribute {name!r} is a {kind} holding Modules; a plain {kind} registers "
                        f"nothing: use {use}")
    if any(isinstance(v, Tensor) for v in items):
        raise TypeError(f"{owner}: attribute {name!r} is a {kind} holding Tensors; a plain {kind} registers "
                        "nothing: set each Tensor as its own attribute (self.w0 = ...), or put them in Modules "
                        "held by an nn.ModuleList")


# ----------------------------------------------------------------------------- summary
def summary(model: Module, input_shape, print_fn=print) -> str:
    """A table of the model's layers, as Keras' ``model.summary()``: returned, and printed by ``print_fn``
    (None: not printed).

    ``input_shape`` is the whole input's shape, batch axis included, e.g. ``(1, 28, 28, 1)``: the model
    runs once on zeros of that shape (in the parameters' dtype, under ``no_grad``, in eval mode, the
    modes restored after) to find each layer's output shape.  One row per module below the model, in
    ``named_modules()`` order, named with dots (``block.0``); "-" for a module that was not called.
    "Params" counts the parameters a module holds itself (a container holds none: its children's
    rows count them; a tied weight counts once, at its first name), so the rows add up to the total,
    except parameters set on the model itself, which only the totals include.
    As Keras, a layer's float buffers (BatchNorm2d's running_mean and running_var, not its integer batch count)
    count as its non-trainable params; PyTorch counts parameters only (``model.num_parameters()``).
    """
    if not isinstance(model, Module):
        raise TypeError(f"summary: model must be a Module, got {type(model).__name__}")
    text = summary_text(model, input_shape)
    if print_fn is not None:
        print_fn(text)
    return text
