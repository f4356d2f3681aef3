"""Layers for CNNs in NHWC: Module, Conv2d, Linear, MaxPool2d, AvgPool2d, ReLU, Flatten, Sequential.

A Module is a plain Python object whose attributes are registered as they are set:

* a ``Tensor`` attribute is a parameter (``self.W = Tensor(..., requires_grad=True)``);
* a ``Module`` attribute is a child (``self.conv1 = Conv2d(1, 8, 3)``).

Both keep the order they were set in, so ``named_parameters()`` is deterministic and gives dotted
names (``conv1.W``, ``conv1.b``, ``fc.W``). When a module is set as a child, each of its parameters'
``Tensor.name`` becomes that dotted name, so a drawn graph (``tinygrad_cnn.viz``) labels the leaf
``conv1.W`` instead of leaving it anonymous.

Shapes (NHWC, as the notebook): images ``(m, n_H, n_W, n_C)``, conv weights ``(f, f, C_in, C_out)``,
conv bias ``(C_out,)``, linear weights ``(in_features, out_features)`` used as ``x @ W + b``.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping

import numpy as np

from .kernels import TIES
from .tensor import Tensor, as_tensor

__all__ = ["Module", "Conv2d", "Linear", "MaxPool2d", "AvgPool2d", "ReLU", "Flatten", "Sequential",
           "he_init", "glorot_init"]

INITS = ("he", "glorot")


# ----------------------------------------------------------------------------- Module
class Module:
    """Base class: register parameters and children by setting attributes; override ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before setting attributes")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Tensor):
            self._parameters[name] = value
            value.name = name
        elif isinstance(value, Module):
            self._modules[name] = value
            for sub, p in value.named_parameters():
                p.name = f"{name}.{sub}"
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    # ------------------------------------------------------------------ calling
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------ walking the tree
    def named_children(self):
        """(name, child module) pairs, in the order they were set."""
        return iter(self._modules.items())

    def children(self):
        return (m for _, m in self.named_children())

    def named_modules(self, prefix: str = ""):
        """(dotted name, module) for this module ("" for itself) and every descendant, depth first."""
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self, prefix: str = ""):
        """(dotted name, Tensor) pairs: own parameters first, then each child's, in the order set."""
        for name, p in self._parameters.items():
            yield (f"{prefix}.{name}" if prefix else name), p
        for name, child in self._modules.items():
            yield from child.named_parameters(f"{prefix}.{name}" if prefix else name)

    def parameters(self) -> list:
        """Every parameter Tensor, in ``named_parameters()`` order."""
        return [p for _, p in self.named_parameters()]

    def num_parameters(self) -> int:
        """Total number of scalars in the parameters."""
        return sum(p.size for p in self.parameters())

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``grad = None``)."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> "Module":
        """Set ``training`` on this module and all descendants; returns self."""
        for _, m in self.named_modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        """Same as ``train(False)``."""
        return self.train(False)

    # ------------------------------------------------------------------ weights as arrays
    def state_dict(self) -> dict:
        """{dotted name: writable ndarray copy of the parameter}, in ``named_parameters()`` order."""
        return {name: np.array(p.data, copy=True) for name, p in self.named_parameters()}

    def load_state_dict(self, state) -> None:
        """Copy arrays into the parameters (each cast to its parameter's dtype).

        The keys must be exactly those of ``state_dict()`` and each shape must match.  Everything is
        checked before anything is written, so on error no parameter has changed.
        """
        if not isinstance(state, Mapping):
            raise TypeError(f"load_state_dict: expected a mapping name -> array, got {type(state).__name__}")
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state]
        unexpected = [k for k in state if k not in own]
        if missing or unexpected:
            parts = [f"missing keys {missing}"] if missing else []
            parts += [f"unexpected keys {unexpected}"] if unexpected else []
            raise ValueError(f"load_state_dict: {type(self).__name__}: {'; '.join(parts)}")
        arrays = {}
        for name, p in own.items():
            value = state[name]
            value = value.data if isinstance(value, Tensor) else value
            arr = np.asarray(value)
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"load_state_dict: key {name!r} holds dtype {arr.dtype}, expected numbers")
            if arr.shape != p.shape:
                raise ValueError(f"load_state_dict: key {name!r} has shape {arr.shape}, "
                                 f"but the parameter has shape {p.shape}")
            arrays[name] = arr
        for name, p in own.items():
            p.data = arrays[name]

    # ------------------------------------------------------------------ printing
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


# ----------------------------------------------------------------------------- checks and init
def _check_positive_int(layer: str, arg: str, value) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
        raise TypeError(f"{layer}: {arg} must be a positive int, got {value!r}")
    return int(value)


def _check_window(layer: str, arg: str, value):
    """A positive int or a pair of positive ints (rows, cols); returned as given (int or tuple)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise TypeError(f"{layer}: {arg} must be a positive int or a pair (rows, cols), got {value!r}")
        return tuple(_check_positive_int(layer, arg, v) for v in value)
    return _check_positive_int(layer, arg, value)


def _pair(value) -> tuple:
    return tuple(value) if isinstance(value, tuple) else (value, value)


def _check_dtype(layer: str, dtype) -> np.dtype:
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{layer}: dtype must be float32 or float64, got {dtype!r}") from None
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"{layer}: dtype must be float32 or float64, got {dtype}")
    return dtype


def _rng(layer: str, seed) -> np.random.Generator:
    if seed is not None and not isinstance(seed, (numbers.Integral, np.random.Generator)):
        raise TypeError(f"{layer}: seed must be None, an int or a numpy.random.Generator, got {seed!r}")
    return np.random.default_rng(seed)


def he_init(shape, fan_in: int, rng: np.random.Generator) -> np.ndarray:
    """He (Kaiming) normal: N(0, 2 / fan_in); keeps activations' scale through ReLU layers."""
    return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)


def glorot_init(shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Glorot (Xavier) uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out))."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape)


def _init_weight(layer: str, init: str, shape, fan_in: int, fan_out: int, seed, dtype) -> Tensor:
    """A weight Tensor (requires_grad=True) drawn with ``init`` ("he" or "glorot")."""
    if init not in INITS:
        raise ValueError(f"{layer}: init must be one of {INITS}, got {init!r}")
    rng = _rng(layer, seed)
    data = he_init(shape, fan_in, rng) if init == "he" else glorot_init(shape, fan_in, fan_out, rng)
    return Tensor(data.astype(dtype), requires_grad=True)


def _check_images(layer: str, x: Tensor, channels: int | None = None) -> None:
    """x must be 4-D NHWC (m, n_H, n_W, n_C), with ``channels`` channels if given."""
    if x.ndim != 4:
        hint = " (a single image? add the batch axis with x[None])" if x.ndim == 3 else ""
        raise ValueError(f"{layer}: input must be 4-D NHWC (m, n_H, n_W, n_C), got shape {x.shape}{hint}")
    if channels is not None and x.shape[3] != channels:
        hint = "; it looks NCHW: pass x.transpose(0, 2, 3, 1)" if x.shape[1] == channels else ""
        raise ValueError(f"{layer}: input must have {channels} channels on its last axis (NHWC), "
                         f"got shape {x.shape}{hint}")


# ----------------------------------------------------------------------------- layers
class Conv2d(Module):
    """2-D convolution, NHWC.  x (m, n_H, n_W, in_channels) -> (m, n_H', n_W', out_channels).

    W: (f, f, in_channels, out_channels), b: (out_channels,), zeros at start.
    f, stride: int or (rows, cols); pad: as ``Tensor.conv2d`` (int, pair, "valid", "same").
    init: "he" (default, N(0, 2/fan_in)) or "glorot", fan_in = f*f*in_channels; seed: int or Generator.
    """

    def __init__(self, in_channels: int, out_channels: int, f, stride=1, pad=0, bias: bool = True,
                 init: str = "he", seed=None, dtype=np.float32):
        super().__init__()
        self.in_channels = _check_positive_int("Conv2d", "in_channels", in_channels)
        self.out_channels = _check_positive_int("Conv2d", "out_channels", out_channels)
        self.f = _check_window("Conv2d", "f", f)
        self.stride = _check_window("Conv2d", "stride", stride)
        self.pad = pad
        dtype = _check_dtype("Conv2d", dtype)
        f_h, f_w = _pair(self.f)
        shape = (f_h, f_w, self.in_channels, self.out_channels)
        self.W = _init_weight("Conv2d", init, shape, f_h * f_w * self.in_channels,
                              f_h * f_w * self.out_channels, seed, dtype)
        if bias:
            self.b = Tensor(np.zeros(self.out_channels, dtype), requires_grad=True)
        else:
            self.b = None

    def forward(self, x) -> Tensor:
        x = as_tensor(x)
        _check_images(f"Conv2d({self.extra_repr()})", x, self.in_channels)
        return x.conv2d(self.W, self.b, stride=self.stride, pad=self.pad)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, f={self.f}"
        s += f", stride={self.stride}" if self.stride != 1 else ""
        s += f", pad={self.pad!r}" if self.pad != 0 else ""
        return s + (", bias=False" if self.b is None else "")


class Linear(Module):
    """Fully connected: x (m, in_features) -> x @ W + b (m, out_features).

    W: (in_features, out_features), b: (out_features,), zeros at start.
    init: "he" (default) or "glorot"; seed: int or Generator.
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init: str = "he", seed=None,
                 dtype=np.float32):
        super().__init__()
        self.in_features = _check_positive_int("Linear", "in_features", in_features)
        self.out_features = _check_positive_int("Linear", "out_features", out_features)
        dtype = _check_dtype("Linear", dtype)
        self.W = _init_weight("Linear", init, (self.in_features, self.out_features), self.in_features,
                              self.out_features, seed, dtype)
        self.b = Tensor(np.zeros(self.out_features, dtype), requires_grad=True) if bias else None

    def forward(self, x) -> Tensor:
        x = as_tensor(x)
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            hint = " (images? put a Flatten() before this layer)" if x.ndim == 4 else ""
            raise ValueError(f"Linear({self.extra_repr()}): input's last axis must have {self.in_features} "
                             f"features, got shape {x.shape}{hint}")
        out = x @ self.W
        return out if self.b is None else out + self.b

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}" + (", bias=False" if self.b is None else "")


class MaxPool2d(Module):
    """Max pooling, NHWC: (m, n_H, n_W, C) -> (m, n_H', n_W', C).  stride defaults to f.

    ties: which entries of a window share its gradient when several equal the max: "first"
    (default, as PyTorch), "split" (evenly) or "all" (each gets all of it, the notebook's mask).
    """

    def __init__(self, f, stride=None, ties: str = "first"):
        super().__init__()
        self.f = _check_window("MaxPool2d", "f", f)
        self.stride = None if stride is None else _check_window("MaxPool2d", "stride", stride)
        if ties not in TIES:
            raise ValueError(f"MaxPool2d: ties must be one of {TIES}, got {ties!r}")
        self.ties = ties

    def forward(self, x) -> Tensor:
        x = as_tensor(x)
        _check_images(f"MaxPool2d({self.extra_repr()})", x)
        return x.max_pool2d(self.f, stride=self.stride, ties=self.ties)

    def extra_repr(self) -> str:
        s = f"f={self.f}" + (f", stride={self.stride}" if self.stride is not None else "")
        return s + (f", ties={self.ties!r}" if self.ties != "first" else "")


class AvgPool2d(Module):
    """Average pooling, NHWC: (m, n_H, n_W, C) -> (m, n_H', n_W', C).  stride defaults to f."""

    def __init__(self, f, stride=None):
        super().__init__()
        self.f = _check_window("AvgPool2d", "f", f)
        self.stride = None if stride is None else _check_window("AvgPool2d", "stride", stride)

    def forward(self, x) -> Tensor:
        x = as_tensor(x)
        _check_images(f"AvgPool2d({self.extra_repr()})", x)
        return x.avg_pool2d(self.f, stride=self.stride)

    def extra_repr(self) -> str:
        return f"f={self.f}" + (f", stride={self.stride}" if self.stride is not None else "")


class ReLU(Module):
    """max(x, 0), elementwise; any shape."""

    def forward(self, x) -> Tensor:
        return as_tensor(x).relu()


class Flatten(Module):
    """(m, ...) -> (m, prod(...)): keeps the batch axis, so conv features can feed a Linear."""

    def forward(self, x) -> Tensor:
        x = as_tensor(x)
        if x.ndim < 2:
            raise ValueError(f"Flatten: input must be (m, ...) with a batch axis and at least one more, "
                             f"got shape {x.shape}")
        return x.flatten(1)


class Sequential(Module):
    """Layers applied in order.  ``Sequential(a, b)`` names them "0", "1"; ``Sequential(conv1=a,
    relu1=b)`` names them "conv1", "relu1" (so parameters are ``conv1.W``).  Indexable: ``seq[0]``,
    ``seq["conv1"]``; ``len(seq)``; iterable.
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
        if isinstance(key, str):
            return self._modules[key]
        return list(self._modules.values())[key]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
