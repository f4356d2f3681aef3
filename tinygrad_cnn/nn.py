"""Layers for CNNs in NHWC: Module, Conv2d, ConvTranspose2d, Linear, BatchNorm2d, Dropout, MaxPool2d, AvgPool2d,
GlobalAvgPool2d, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, Flatten; the containers Sequential, ModuleList,
ModuleDict; ``summary``.

A Module is a plain Python object whose attributes are registered as they are set:

* a ``Tensor`` attribute is a parameter (``self.W = Tensor(..., requires_grad=True)``);
* ``self.register_buffer(name, array)`` registers a buffer: a numpy array that is part of the layer's state
  but not learned (BatchNorm2d's running statistics). ``state_dict``/``save`` include buffers and
  ``load_state_dict`` restores them (in place); ``parameters()`` and so the optimizers never see them;
* a ``Module`` attribute is a child (``self.conv1 = Conv2d(1, 8, 3)``);
* several children go in a ``ModuleList`` or ``ModuleDict`` (a plain list, tuple or dict holding
  Modules or Tensors registers nothing, so setting one raises TypeError).

A parameter shared by two layers (tied weights) is listed once by ``parameters()`` and
``named_parameters()`` (under its first name), as in PyTorch; ``state_dict()`` lists it under each name.

Both keep the order they were set in, so ``named_parameters()`` is deterministic and gives dotted
names (``conv1.W``, ``conv1.b``, ``fc.W``). When a module is set as a child, each of its parameters'
``Tensor.name`` becomes that dotted name, so a drawn graph (``tinygrad_cnn.viz``) labels the leaf
``conv1.W`` instead of leaving it anonymous.

Shapes (NHWC, as the notebook): images ``(m, n_H, n_W, n_C)``, conv weights ``(f, f, C_in, C_out)``,
conv bias ``(C_out,)``, linear weights ``(in_features, out_features)`` used as ``x @ W + b``.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Mapping

import numpy as np

from .kernels.checks import TIES, check_dropout_p
from .tensor import Tensor, as_tensor, set_grad_enabled

__all__ = ["Module", "Conv2d", "ConvTranspose2d", "Linear", "BatchNorm2d", "Dropout", "MaxPool2d", "AvgPool2d",
           "GlobalAvgPool2d", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "Flatten", "Sequential",
           "ModuleList", "ModuleDict", "summary", "he_init", "glorot_init"]

INITS = ("he", "glorot")


# ----------------------------------------------------------------------------- Module
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
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

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
        """(name, child module) pairs, in the order they were set."""
        return iter(self._modules.items())

    def children(self):
        return (m for _, m in self.named_children())

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

    def named_parameters(self, prefix: str = "", remove_duplicate: bool = True):
        """(dotted name, Tensor) pairs: each module's own parameters, then its children's, in the order set.

        A parameter shared by several layers (tied weights) is listed once, under its first name, as
        PyTorch does; ``remove_duplicate=False`` lists it under every name (what ``state_dict`` does).
        """
        seen = set()
        for module_name, module in self.named_modules(prefix, remove_duplicate):
            for name, p in module._parameters.items():
                if remove_duplicate and id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{module_name}.{name}" if module_name else name), p

    def named_buffers(self, prefix: str = "", remove_duplicate: bool = True):
        """(dotted name, ndarray) pairs of every module's buffers, in ``named_modules()`` order."""
        for module_name, module in self.named_modules(prefix, remove_duplicate):
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
    def _named_state(self) -> dict:
        """{dotted name: parameter Tensor or buffer ndarray}: each module's parameters, then its buffers, module by
        module in ``named_modules()`` order (PyTorch's ``state_dict`` order); a tied one under each name."""
        state = {}
        for module_name, module in self.named_modules(remove_duplicate=False):
            prefix = f"{module_name}." if module_name else ""
            for name, value in (*module._parameters.items(), *module._buffers.items()):
                if value is not None:
                    state[prefix + name] = value
        return state

    def state_dict(self) -> dict:
        """{dotted name: writable ndarray copy} of every parameter and buffer (BatchNorm2d's running statistics),
        each module's parameters then its buffers, as PyTorch's ``state_dict``.

        A tied parameter appears under each of its names, as in PyTorch's ``state_dict``.
        """
        return {name: np.array(v.data if isinstance(v, Tensor) else v, copy=True)
                for name, v in self._named_state().items()}

    def load_state_dict(self, state) -> None:
        """Copy arrays into the parameters and buffers (each cast to its parameter's or buffer's dtype; a buffer
        is written in place, so an op holding it sees the new values).

        The keys must be exactly those of ``state_dict()`` and each shape must match; the names of
        one tied parameter must hold equal values (PyTorch would silently keep the last).  Everything
        is checked before anything is written, so on error no parameter has changed.
        """
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


# ----------------------------------------------------------------------------- checks and init
def check_state_keys(who: str, expected, state) -> None:
    """ValueError naming the missing and the unexpected keys unless state's keys are expected's."""
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


def _check_groups(layer: str, groups, **channels) -> int:
    """groups: a positive int dividing each channel count given by name."""
    groups = _check_positive_int(layer, "groups", groups)
    for name, n in channels.items():
        if n % groups:
            raise ValueError(f"{layer}: groups={groups} must divide {name}={n}")
    return groups


def _conv_weights(layer: str, f, n_in: int, n_out: int, bias: bool, init: str, seed, dtype, n_bias=None):
    """(W (f_h, f_w, n_in, n_out) drawn with init, fan_in = f_h * f_w * n_in; b zeros (n_bias or n_out,) or None)."""
    dtype = _check_dtype(layer, dtype)
    f_h, f_w = _pair(f)
    W = _init_weight(layer, init, (f_h, f_w, n_in, n_out), f_h * f_w * n_in, f_h * f_w * n_out, seed, dtype)
    b = Tensor(np.zeros(n_bias or n_out, dtype), requires_grad=True) if bias else None
    return W, b


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
class _Conv(Module):
    """What Conv2d and ConvTranspose2d share: their checked arguments and their repr."""

    def __init__(self, layer: str, in_channels, out_channels, f, stride, pad, dilation, groups):
        super().__init__()
        self.in_channels = _check_positive_int(layer, "in_channels", in_channels)
        self.out_channels = _check_positive_int(layer, "out_channels", out_channels)
        self.f = _check_window(layer, "f", f)
        self.stride = _check_window(layer, "stride", stride)
        self.pad = pad
        self.dilation = _check_window(layer, "dilation", dilation)
        self.groups = _check_groups(layer, groups, in_channels=self.in_channels, out_channels=self.out_channels)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, f={self.f}"
        s += f", stride={self.stride}" if self.stride != 1 else ""
        s += f", pad={self.pad!r}" if self.pad != 0 else ""
        s += f", output_padding={self.output_padding}" if getattr(self, "output_padding", 0) != 0 else ""
        s += f", dilation={self.dilation}" if self.dilation != 1 else ""
        s += f", groups={self.groups}" if self.groups != 1 else ""
        return s + (", bias=False" if self.b is None else "")


class Conv2d(_Conv):
    """2-D convolution, NHWC.  x (m, n_H, n_W, in_channels) -> (m, n_H', n_W', out_channels).

    W: (f, f, in_channels // groups, out_channels), b: (out_channels,), zeros at start.
    f, stride, dilation: int or (rows, cols); pad: as ``Tensor.conv2d`` (int, pair, "valid", "same").
    groups: divides both channel counts; groups = in_channels is a depthwise convolution (MobileNet).
    init: "he" (default, N(0, 2/fan_in)) or "glorot", fan_in = f*f*in_channels/groups; seed: int or Generator.
    """

    def __init__(self, in_channels: int, out_channels: int, f, stride=1, pad=0, bias: bool = True,
                 init: str = "he", seed=None, dtype=np.float32, dilation=1, groups: int = 1):
        super().__init__("Conv2d", in_channels, out_channels, f, stride, pad, dilation, groups)
        self.W, self.b = _conv_weights("Conv2d", self.f, self.in_channels // self.groups, self.out_channels, bias,
                                       init, seed, dtype)

    def forward(self, x) -> Tensor:
        x = as_tensor(x)
        _check_images(f"Conv2d({self.extra_repr()})", x, self.in_channels)
        return x.conv2d(self.W, self.b, stride=self.stride, pad=self.pad, dilation=self.dilation, groups=self.groups)


class ConvTranspose2d(_Conv):
    """Transposed 2-D convolution (upsampling, as in U-Net), NHWC.  x (m, n_H, n_W, in_channels) ->
    (m, (n_H - 1) * s - pads + dilation * (f - 1) + 1 + output_padding, ..., out_channels).

    W: (f, f, out_channels // groups, in_channels): the weight of the Conv2d(out_channels, in_channels) whose
    input gradient this layer computes (``Tensor.conv_transpose2d``); b: (out_channels,), zeros at start.
    f, stride, dilation, output_padding: int or (rows, cols); pad: int, pair or ((top, bottom), (left, right)).
    init: "he" (default) or "glorot", fan_in = f*f*out_channels/groups (that Conv2d's, and PyTorch's); seed: int or
    Generator.
    """

    def __init__(self, in_channels: int, out_channels: int, f, stride=1, pad=0, output_padding=0, bias: bool = True,
                 init: str = "he", seed=None, dtype=np.float32, dilation=1, groups: int = 1):
        super().__init__("ConvTranspose2d", in_channels, out_channels, f, stride, pad, dilation, groups)
        self.output_padding = output_padding
        self.W, self.b = _conv_weights("ConvTranspose2d", self.f, self.out_channels // self.groups, self.in_channels,
                                       bias, init, seed, dtype, n_bias=self.out_channels)

    def forward(self, x) -> Tensor:
        x = as_tensor(x)
        _check_images(f"ConvTranspose2d({self.extra_repr()})", x, self.in_channels)
        return x.conv_transpose2d(self.W, self.b, stride=self.stride, pad=self.pad,
                                  output_padding=self.output_padding, dilation=self.dilation, groups=self.groups)


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


class BatchNorm2d(Module):
    """Batch normalization per channel, NHWC: (m, n_H, n_W, n_C) -> same shape (``Tensor.batch_norm2d``).

    Parameters gamma (ones) and beta (zeros), (n_C,). Buffers (saved by ``state_dict``/``save``, not learned):
    running_mean (zeros), running_var (ones), num_batches_tracked (an int64 count). In training mode
    (``model.train()``, the default) it normalizes by the batch's statistics and updates the running ones in
    place with ``momentum`` (PyTorch's rule, unbiased variance); in eval mode (``model.eval()``) it uses the running
    statistics. PyTorch's ``BatchNorm2d(n_C, eps, momentum)`` with weight = gamma, bias = beta.
    """

    def __init__(self, n_C: int, eps: float = 1e-5, momentum: float = 0.1, dtype=np.float32):
        super().__init__()
        self.n_C = _check_positive_int("BatchNorm2d", "n_C", n_C)
        if not isinstance(eps, numbers.Real) or isinstance(eps, bool) or not eps > 0:
            raise ValueError(f"BatchNorm2d: eps must be a number > 0, got {eps!r}")
        if not isinstance(momentum, numbers.Real) or isinstance(momentum, bool) or not 0 <= momentum <= 1:
            raise ValueError(f"BatchNorm2d: momentum must be a number in [0, 1], got {momentum!r}")
        self.eps, self.momentum = float(eps), float(momentum)
        dtype = _check_dtype("BatchNorm2d", dtype)
        self.gamma = Tensor(np.ones(self.n_C, dtype), requires_grad=True)
        self.beta = Tensor(np.zeros(self.n_C, dtype), requires_grad=True)
        self.register_buffer("running_mean", np.zeros(self.n_C, dtype))
        self.register_buffer("running_var", np.ones(self.n_C, dtype))
        self.register_buffer("num_batches_tracked", np.array(0, np.int64))

    def forward(self, x) -> Tensor:
        x = as_tensor(x)
        _check_images(f"BatchNorm2d({self.extra_repr()})", x, self.n_C)
        out = x.batch_norm2d(self.gamma, self.beta, self.running_mean, self.running_var, training=self.training,
                             momentum=self.momentum, eps=self.eps)
        if self.training:
            self.num_batches_tracked[...] += 1
        return out

    def extra_repr(self) -> str:
        s = f"{self.n_C}"
        s += f", eps={self.eps}" if self.eps != 1e-5 else ""
        return s + (f", momentum={self.momentum}" if self.momentum != 0.1 else "")


class Dropout(Module):
    """Inverted dropout, any shape: in training mode each entry is zeroed with probability p and survivors are
    scaled by 1 / (1 - p); in eval mode (``model.eval()``) the input passes unchanged.

    seed: None, an int or a numpy Generator: the layer keeps one Generator, so a seeded model draws the same
    sequence of masks on every run.
    """

    def __init__(self, p: float = 0.5, seed=None):
        super().__init__()
        check_dropout_p(p)
        self.p = float(p)
        self.rng = _rng("Dropout", seed)

    def forward(self, x) -> Tensor:
        return as_tensor(x).dropout(self.p, training=self.training, rng=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


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


class GlobalAvgPool2d(Module):
    """Mean over the rows and columns, NHWC: (m, n_H, n_W, C) -> (m, C).

    PyTorch: ``AdaptiveAvgPool2d(1)`` then ``Flatten()``.  Replaces a Flatten before the classifier,
    whatever the image size.
    """

    def forward(self, x) -> Tensor:
        x = as_tensor(x)
        _check_images("GlobalAvgPool2d()", x)
        return x.mean(axis=(1, 2))


class ReLU(Module):
    """max(x, 0), elementwise; any shape."""

    def forward(self, x) -> Tensor:
        return as_tensor(x).relu()


class LeakyReLU(Module):
    """x where x > 0, else slope * x, elementwise; any shape (PyTorch's ``LeakyReLU(negative_slope)``)."""

    def __init__(self, slope: float = 0.01):
        super().__init__()
        if not isinstance(slope, numbers.Real) or isinstance(slope, bool):
            raise TypeError(f"LeakyReLU: slope must be a number, got {slope!r}")
        self.slope = float(slope)

    def forward(self, x) -> Tensor:
        return as_tensor(x).leaky_relu(self.slope)

    def extra_repr(self) -> str:
        return f"slope={self.slope}"


class Sigmoid(Module):
    """1 / (1 + exp(-x)), elementwise; any shape."""

    def forward(self, x) -> Tensor:
        return as_tensor(x).sigmoid()


class Tanh(Module):
    """tanh(x), elementwise; any shape."""

    def forward(self, x) -> Tensor:
        return as_tensor(x).tanh()


class Softmax(Module):
    """exp(x) / sum(exp(x)) along ``axis`` (default -1: the classes of (m, n_classes) scores).

    For training, give the raw scores to ``functional.cross_entropy``, which applies log-softmax
    itself (more stable); use this layer for probabilities at prediction time.
    """

    def __init__(self, axis: int = -1):
        super().__init__()
        if not isinstance(axis, numbers.Integral) or isinstance(axis, bool):
            raise TypeError(f"Softmax: axis must be an int, got {axis!r}")
        self.axis = int(axis)

    def forward(self, x) -> Tensor:
        return as_tensor(x).softmax(axis=self.axis)

    def extra_repr(self) -> str:
        return f"axis={self.axis}"


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
    shape = check_input_shape("summary", input_shape)
    shapes = _output_shapes(model, shape)
    counted = [*model.named_parameters(), *_float_buffers(model)]
    owned = {}
    for name, p in counted:
        owner = name.rpartition(".")[0]
        owned[owner] = owned.get(owner, 0) + p.size
    rows = [(name, type(m).__name__, shapes.get(id(m), "-"), f"{owned.get(name, 0):,}")
            for name, m in model.named_modules() if name]
    trainable = sum(p.size for _, p in counted if isinstance(p, Tensor) and p.requires_grad)
    total = sum(p.size for _, p in counted)
    table = _table(("Layer", "Type", "Output shape", "Params"), rows)
    rule = "=" * len(table[0])
    lines = [f"Model: {type(model).__name__}, input {shape} -> output {shapes.get(id(model), '-')}", rule,
             table[0], rule, *table[1:], rule, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
             f"Non-trainable params: {total - trainable:,}"]
    text = "\n".join(lines)
    if print_fn is not None:
        print_fn(text)
    return text


def _float_buffers(model: Module) -> list:
    """(name, array) of the model's float buffers, each array once."""
    seen, found = set(), []
    for name, array in model.named_buffers():
        if array.dtype.kind == "f" and id(array) not in seen:
            seen.add(id(array))
            found.append((name, array))
    return found


def check_input_shape(who: str, input_shape) -> tuple:
    """input_shape as a tuple of positive ints (batch axis included); TypeError naming ``who`` otherwise."""
    ok = isinstance(input_shape, (tuple, list)) and all(
        isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0 for n in input_shape)
    if not ok or not input_shape:
        raise TypeError(f"{who}: input_shape must be a tuple of positive ints, batch axis included "
                        f"(e.g. (1, 28, 28, 1)), got {input_shape!r}")
    return tuple(int(n) for n in input_shape)


def _shape_text(out) -> str:
    if isinstance(out, Tensor):
        return str(out.shape)
    if isinstance(out, (tuple, list)) and out and all(isinstance(o, Tensor) for o in out):
        return ", ".join(str(o.shape) for o in out)
    return "-"


def _output_shapes(model: Module, input_shape: tuple) -> dict:
    """{id(module): its first output's shape as text}, from one eval-mode, no-grad pass on zeros."""
    shapes = {}

    def record(module, args, out):
        shapes.setdefault(id(module), _shape_text(out))
    trace_calls(model, input_shape, record)
    return shapes


def trace_calls(model: Module, input_shape: tuple, record, grad: bool = False) -> None:
    """Run model once on zeros of ``input_shape`` (in its parameters' dtype, in eval mode, modes restored after)
    calling ``record(module, args, out)`` after each call of each of its modules' forward.

    grad=False runs under ``no_grad``; grad=True records the graph (the zeros require grad), so ``record`` can
    walk the ops that made a module's input.
    """
    modules = [m for _, m in model.named_modules()]
    saved = [(m.training, m.__dict__.get("forward")) for m in modules]

    def recording(module, forward):
        def forward_and_record(*args, **kwargs):
            out = forward(*args, **kwargs)
            record(module, args, out)
            return out
        return forward_and_record

    params = model.parameters()
    x = Tensor(np.zeros(input_shape, params[0].dtype if params else np.float32), requires_grad=grad)
    try:
        for m in modules:
            object.__setattr__(m, "forward", recording(m, m.forward))
        model.eval()
        with set_grad_enabled(grad):
            model(x)
    finally:
        for m, (training, own_forward) in zip(modules, saved, strict=True):
            object.__setattr__(m, "training", training)
            m.__dict__.pop("forward", None)
            if own_forward is not None:
                object.__setattr__(m, "forward", own_forward)


def _table(header: tuple, rows: list) -> list:
    """Lines of text: columns padded to their widest cell, numbers (the last column) right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        left = "  ".join(c.ljust(w) for c, w in zip(cells[:-1], widths, strict=False))
        return f"{left}  {cells[-1].rjust(widths[-1])}"
    return [line(header)] + [line(r) for r in rows]
