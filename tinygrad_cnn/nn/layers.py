"""The layers, NHWC as the notebook: Conv2d, ConvTranspose2d, Linear, BatchNorm2d, Dropout, MaxPool2d, AvgPool2d,
GlobalAvgPool2d, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, Flatten; each checks its arguments when built and its
input's layout when called, then runs Tensor ops (a conv layer one, Linear a matmul and a sum).

Shapes: images ``(m, n_H, n_W, n_C)``, conv weights ``(f, f, C_in, C_out)``, conv bias ``(C_out,)``, linear weights
``(in_features, out_features)`` used as ``x @ W + b``.

Imports: numpy, dtypes.py, hints.py (PyTorch's spellings and positional arguments), tensor.py, kernels/checks.py
(argument checks), module.py and init.py; no container.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..dtypes import get_default_dtype
from ..hints import pytorch_args
from ..kernels.checks import TIES, check_dropout_p
from ..tensor import Tensor, as_tensor
from .init import init_weight, rng_from_seed
from .module import Module

__all__ = ["Conv2d", "ConvTranspose2d", "Linear", "BatchNorm2d", "Dropout", "MaxPool2d", "AvgPool2d",
           "GlobalAvgPool2d", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "Flatten"]


# ----------------------------------------------------------------------------- argument checks
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


def _check_bool(layer: str, arg: str, value) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{layer}: {arg} must be a bool (True or False), got {value!r}")
    return bool(value)


def _check_dtype(layer: str, dtype) -> np.dtype:
    """float32 or float64; None: the default dtype (``set_default_dtype``)."""
    if dtype is None:
        return get_default_dtype()
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{layer}: dtype must be float32 or float64, got {dtype!r}") from None
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"{layer}: dtype must be float32 or float64, got {dtype}")
    return dtype


def _check_groups(layer: str, groups, **channels) -> int:
    """groups: a positive int dividing each channel count given by name."""
    groups = _check_positive_int(layer, "groups", groups)
    for name, n in channels.items():
        if n % groups:
            raise ValueError(f"{layer}: groups={groups} must divide {name}={n}")
    return groups


def _conv_weights(layer: str, f, n_in: int, n_out: int, bias: bool, init: str, seed, dtype, n_bias=None):
    """(W (f_h, f_w, n_in, n_out) drawn with init, fan_in = f_h * f_w * n_in; b zeros (n_bias or n_out,) or None)."""
    dtype, bias = _check_dtype(layer, dtype), _check_bool(layer, "bias", bias)
    f_h, f_w = _pair(f)
    W = init_weight(layer, init, (f_h, f_w, n_in, n_out), f_h * f_w * n_in, f_h * f_w * n_out, seed, dtype)
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

    @pytorch_args("Conv2d", ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
                             "bias", "padding_mode", "device", "dtype"))
    def __init__(self, in_channels: int, out_channels: int, f, stride=1, pad=0, *, dilation=1, groups: int = 1,
                 bias: bool = True, init: str = "he", seed=None, dtype=None):
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

    @pytorch_args("ConvTranspose2d", ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                                      "output_padding", "groups", "bias", "dilation", "padding_mode", "device",
                                      "dtype"))
    def __init__(self, in_channels: int, out_channels: int, f, stride=1, pad=0, output_padding=0, *, groups: int = 1,
                 bias: bool = True, dilation=1, init: str = "he", seed=None, dtype=None):
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

    @pytorch_args("Linear", ("in_features", "out_features", "bias", "device", "dtype"))
    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, init: str = "he", seed=None,
                 dtype=None):
        super().__init__()
        self.in_features = _check_positive_int("Linear", "in_features", in_features)
        self.out_features = _check_positive_int("Linear", "out_features", out_features)
        dtype = _check_dtype("Linear", dtype)
        self.W = init_weight("Linear", init, (self.in_features, self.out_features), self.in_features,
                             self.out_features, seed, dtype)
        self.b = Tensor(np.zeros(self.out_features, dtype), requires_grad=True) if _check_bool("Linear", "bias", bias) \
            else None

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

    @pytorch_args("BatchNorm2d", ("num_features", "eps", "momentum", "affine", "track_running_stats", "device",
                                  "dtype"))
    def __init__(self, n_C: int, eps: float = 1e-5, momentum: float = 0.1, *, dtype=None):
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
        out = x.batch_norm2d(self.gamma, self.beta, running_mean=self.running_mean, running_var=self.running_var,
                             training=self.training,
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

    seed: an int or a numpy Generator: the layer keeps one Generator, so a seeded model draws the same sequence of
    masks on every run; None: each call draws from ``manual_seed``'s generator as it is then (else fresh entropy),
    as PyTorch's dropout draws from the global generator.
    """

    @pytorch_args("Dropout", ("p", "inplace"))
    def __init__(self, p: float = 0.5, *, seed=None):
        super().__init__()
        check_dropout_p(p)
        self.p = float(p)
        self.rng = None if seed is None else rng_from_seed("Dropout", seed)  # None: chosen at each call

    def forward(self, x) -> Tensor:
        return as_tensor(x).dropout(self.p, training=self.training, rng=self.rng)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class MaxPool2d(Module):
    """Max pooling, NHWC: (m, n_H, n_W, C) -> (m, n_H', n_W', C).  stride defaults to f.

    ties: which entries of a window share its gradient when several equal the max: "first"
    (default, as PyTorch), "split" (evenly) or "all" (each gets all of it, the notebook's mask).
    """

    @pytorch_args("MaxPool2d", ("kernel_size", "stride", "padding", "dilation", "return_indices", "ceil_mode"),
                  missing={"padding": "pad first with x.pad2d(p, value=-np.inf)"})
    def __init__(self, f, stride=None, *, ties: str = "first"):
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

    @pytorch_args("AvgPool2d", ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                                "divisor_override"), missing={"padding": "pad first with x.pad2d(p) (zeros, counted in "
                                                                        "the mean)"})
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

    @pytorch_args("ReLU", ("inplace",))
    def __init__(self):
        super().__init__()

    def forward(self, x) -> Tensor:
        return as_tensor(x).relu()


class LeakyReLU(Module):
    """x where x > 0, else slope * x, elementwise; any shape (PyTorch's ``LeakyReLU(negative_slope)``)."""

    @pytorch_args("LeakyReLU", ("negative_slope", "inplace"))
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

    @pytorch_args("Softmax", ("dim",))
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
