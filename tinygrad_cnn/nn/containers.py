"""The containers: Sequential (layers applied in order), ModuleList and ModuleDict (children held as a list or a
dict, their parameters registered under dotted names such as ``blocks.0.W``).

Imports: tensor.py and module.py; no layer.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping

from ..tensor import Tensor
from .module import Module

__all__ = ["Sequential", "ModuleList", "ModuleDict"]


class Sequential(Module):
    """Layers applied in order.  ``Sequential(a, b)`` names them "0", "1"; ``Sequential(conv1=a,
    relu1=b)`` names them "conv1", "relu1" (so parameters are ``conv1.W``).  Indexable: ``seq[0]``,
    ``seq["conv1"]``, ``seq[1:]`` (a Sequential, as PyTorch); ``len(seq)``; iterable.
    """

    def __init__(self, *layers, **named_layers):
        super().__init__()
        if layers and named_layers:
            raise TypeError("Sequential: give layers either all positionally or all by name, not both")
        items = named_layers.items() if named_layers else ((str(i), m) for i, m in enumerate(layers))
        for name, layer in items:
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: layer {name!r} must be a Module, got {type(layer).__name__}")
            setattr(self, name, layer)

    def forward(self, x) -> Tensor:
        for layer in self._modules.values():
            x = layer(x)
        return x

    def __getitem__(self, key) -> Module:
        """``seq[i]``, ``seq["name"]``, or ``seq[i:j]``: a Sequential of those layers, under their names."""
        if isinstance(key, str):
            return self._modules[key]
        if isinstance(key, slice):
            return _view(Sequential(), list(self._modules.items())[key])
        return list(self._modules.values())[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


def _view(container: Module, named_modules) -> Module:
    """``container`` holding ``(name, module)`` pairs as they are: a slice. Not ``_add_module``, which would rename
    the modules' parameters (their ``Tensor.name``) after the slice, mislabelling the model they still belong to."""
    container._modules.update((str(name), module) for name, module in named_modules)
    return container


class ModuleList(Module):
    """A list of Modules whose parameters are registered: ``self.blocks = ModuleList([...])`` names
    them ``blocks.0.W``, ``blocks.1.W``...  As a Python list: ``blocks[i]`` (a slice gives a
    ModuleList), ``len``, iteration, ``append``, ``extend``, ``insert``, ``blocks[i] = m``, ``del
    blocks[i]``.  No ``forward``: the owner decides how to call the modules.
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _check(self, i: int, module) -> "Module":
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList: item {i} must be a Module, got {type(module).__name__}")
        return module

    def _set_all(self, modules: list) -> None:
        """Re-register ``modules`` under the names "0", "1", ... (after an insert or a delete)."""
        self._modules.clear()
        for i, module in enumerate(modules):
            self._add_module(str(i), module)

    def _index(self, index) -> int:
        if not isinstance(index, numbers.Integral) or isinstance(index, bool):
            raise TypeError(f"ModuleList: indices must be ints or slices, got {type(index).__name__}")
        if not -len(self) <= index < len(self):
            raise IndexError(f"ModuleList: index {index} is out of range for {len(self)} modules")
        return int(index) % len(self)

    def append(self, module) -> "ModuleList":
        self._add_module(str(len(self)), self._check(len(self), module))
        return self

    def extend(self, modules) -> "ModuleList":
        if isinstance(modules, Module) or not isinstance(modules, Iterable):
            hint = "; wrap it in a list" if isinstance(modules, Module) else ""
            raise TypeError(f"ModuleList: expected an iterable of Modules, got a {type(modules).__name__}{hint}")
        modules = [self._check(len(self) + i, m) for i, m in enumerate(modules)]
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module) -> None:
        modules = list(self)
        modules.insert(index, self._check(index, module))
        self._set_all(modules)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return _view(ModuleList(), enumerate(list(self)[index]))
        return list(self._modules.values())[self._index(index)]

    def __setitem__(self, index: int, module) -> None:
        if isinstance(index, slice):
            raise TypeError("ModuleList: set one module at a time (blocks[i] = module), got a slice")
        index = self._index(index)
        self._add_module(str(index), self._check(index, module))

    def __delitem__(self, index) -> None:
        modules = list(self)
        del modules[index if isinstance(index, slice) else self._index(index)]
        self._set_all(modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    """A dict of Modules whose parameters are registered: ``self.heads = ModuleDict({"cls": ...})``
    names them ``heads.cls.W``.  As a Python dict: ``heads["cls"]``, ``heads[k] = m``, ``del
    heads[k]``, ``in``, ``len``, iteration over keys, ``keys()``, ``items()``, ``values()``,
    ``update(mapping)``.  Keys are non-empty strings without a "." (they become parts of dotted
    names); insertion order is kept.  No ``forward``.
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def update(self, modules) -> None:
        if not isinstance(modules, Mapping):
            raise TypeError(f"ModuleDict: expected a mapping name -> Module, got {type(modules).__name__}")
        for key, module in modules.items():
            self._check(key, module)
        for key, module in modules.items():
            self[key] = module

    @staticmethod
    def _check(key, module) -> None:
        if not isinstance(key, str):
            raise TypeError(f"ModuleDict: keys must be strings, got {key!r}")
        if not key or "." in key:
            raise KeyError(f"ModuleDict: key {key!r} must not be empty or hold a '.' (keys become parts of "
                           "dotted names)")
        if not isinstance(module, Module):
            raise TypeError(f"ModuleDict: value of key {key!r} must be a Module, got {type(module).__name__}")

    def __setitem__(self, key: str, module) -> None:
        self._check(key, module)
        self._add_module(key, module)

    def _check_present(self, key) -> None:
        if key not in self._modules:
            raise KeyError(f"ModuleDict: no module {key!r}; keys are {list(self._modules)}")

    def __getitem__(self, key: str) -> Module:
        self._check_present(key)
        return self._modules[key]

    def __delitem__(self, key: str) -> None:
        self._check_present(key)
        del self._modules[key]

    def __contains__(self, key) -> bool:
        return key in self._modules

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def items(self):
        return self._modules.items()

    def values(self):
        return self._modules.values()
