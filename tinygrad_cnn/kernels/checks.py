"""Argument normalizing and checks for the CNN kernels, and the shape arithmetic they share.

The Tensor ops (ops/cnn.py), the notebook API (steps.py) and the layers (nn/layers.py) call the `check_*` functions
before any work, so bad input is rejected with the same message everywhere: the op, the argument, the expected
layout and the shapes found. The normalizers turn user arguments into the kernels' canonical forms:
    stride, f, dilation   int or pair            -> (rows, cols)
    pad                   int, pair, ((t, b), (l, r)), "same", "valid"  -> ((top, bottom), (left, right))
May import: numpy only.
"""

from __future__ import annotations

import numbers

import numpy as np

TIES = ("first", "split", "all")  # max pooling's policies for a window with several maxima

# ---------------------------------------------------------------- normalizing and shape arithmetic


def _is_int(value) -> bool:
    """True for Python/numpy integers; bool is not an integer here."""
    if type(value) is int:  # the common case, without the slower abstract-class check below
        return True
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def as_int_pair(op: str, name: str, value, minimum: int) -> tuple[int, int]:
    """`3` -> (3, 3); `(2, 3)` -> (2, 3). Each entry must be an int (not bool) >= minimum."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(_is_int(v) and v >= minimum for v in pair):
        kind = "a positive int" if minimum == 1 else f"an int >= {minimum}"
        raise TypeError(f"{op}: {name} must be {kind} or a pair of them (rows, cols), got {value!r}")
    return int(pair[0]), int(pair[1])


def as_positive_pair(op: str, name: str, value) -> tuple[int, int]:
    """`3` -> (3, 3); `(2, 3)` -> (2, 3). Each entry must be a positive int (not bool)."""
    return as_int_pair(op, name, value, 1)


def same_pads(n_prev: tuple[int, int], f: tuple[int, int], stride: tuple[int, int]):
    """TF-style "same" padding: output size ceil(n / stride); odd extra padding goes to bottom/right.

    For stride 1 and odd f this is (f - 1) // 2 on every side.
    Returns ((top, bottom), (left, right)).
    """
    pads = []
    for n, k, s in zip(n_prev, f, stride, strict=True):
        total = max((-(-n // s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def as_pads(op: str, pad, n_prev=None, f=None, stride=None) -> tuple[tuple[int, int], tuple[int, int]]:
    """Normalize a pad argument to ((top, bottom), (left, right)).

    pad: int p (all sides), (p_h, p_w), ((top, bottom), (left, right)), "valid" (no padding) or
    "same" (needs n_prev, f and stride: output = ceil(n / stride)). Entries must be ints >= 0.
    """
    if isinstance(pad, str):
        if pad == "valid":
            return ((0, 0), (0, 0))
        if pad == "same" and n_prev is not None:
            return same_pads(n_prev, f, stride)
        raise ValueError(f"{op}: unknown pad mode {pad!r}; use an int, a pair, ((top, bottom), (left, right)), "
                         f"'same' or 'valid'")
    if _is_int(pad):
        pad = (pad, pad)
    if not isinstance(pad, (tuple, list)) or len(pad) != 2:
        raise TypeError(f"{op}: pad must be an int, (p_h, p_w) or ((top, bottom), (left, right)), got {pad!r}")
    sides = [tuple(p) if isinstance(p, (tuple, list)) else (p, p) for p in pad]
    flat = [v for side in sides for v in side]
    if any(len(side) != 2 for side in sides) or not all(_is_int(v) for v in flat):
        raise TypeError(f"{op}: pad must be an int, (p_h, p_w) or ((top, bottom), (left, right)), got {pad!r}")
    if any(v < 0 for v in flat):
        raise ValueError(f"{op}: pad must be >= 0, got {pad!r}")
    return tuple((int(a), int(b)) for a, b in sides)


def output_size(n_prev: int, f: int, pad_total: int, stride: int) -> int:
    """The notebook formula: floor((n_prev - f + pad_total) / stride) + 1."""
    return (n_prev - f + pad_total) // stride + 1


def output_hw(x_shape, f, stride) -> tuple[int, int]:
    """(n_H, n_W) of windows (f_h, f_w) placed stride apart on the rows and cols of x_shape (m, H, W, C); no pad."""
    return output_size(x_shape[1], f[0], 0, stride[0]), output_size(x_shape[2], f[1], 0, stride[1])


def dilated_size(f, dilation) -> tuple[int, int]:
    """The (rows, cols) a dilated window spans: dilation * (f - 1) + 1 on each axis."""
    return tuple(d * (k - 1) + 1 for k, d in zip(f, dilation, strict=True))


def conv_transpose2d_output_hw(x_shape, f, stride, pads, output_padding, dilation=(1, 1)) -> tuple[int, int]:
    """(n - 1) * stride - (pad_start + pad_end) + dilation * (f - 1) + 1 + output_padding, rows and cols."""
    return tuple((n - 1) * s - sum(p) + d * (k - 1) + 1 + op
                 for n, k, s, p, op, d in zip(x_shape[1:3], f, stride, pads, output_padding, dilation, strict=True))


def float_dtype(*arrays):
    """Result dtype of the arrays, promoted to float64 if it is not a float type."""
    dtype = np.result_type(*arrays)
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)


def dense(a: np.ndarray) -> np.ndarray:
    """a itself, or a C-contiguous copy when a is a broadcast view (stride 0 along an axis longer than 1).

    The gradient of a sum reaches the kernels as such a view (np.broadcast_to); BLAS and the strided
    copies run slowly on it, so the conv and average-pool backwards copy it first.
    """
    if any(step == 0 and n > 1 for step, n in zip(a.strides, a.shape, strict=True)):
        return np.ascontiguousarray(a)
    return a


# ---------------------------------------------------------------- checks


def check_images(op: str, name: str, x) -> None:
    """x must be a numeric 4-D NHWC ndarray (m, n_H, n_W, n_C)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: {name} must be a numpy array, got {type(x).__name__}")
    if x.dtype.kind not in "iuf":  # np.number less complex (and bool, which is no np.number)
        raise TypeError(f"{op}: {name} must hold real numbers, got dtype {x.dtype}")
    if x.ndim != 4:
        hint = " (a single image? add the batch axis with x[None])" if x.ndim == 3 else ""
        raise ValueError(f"{op}: {name} must be 4-D NHWC (m, n_H, n_W, n_C), got shape {x.shape}{hint}")


def _check_window_fits(op: str, x_shape, f, pads, layout: str | None = None) -> None:
    """The (f_h, f_w) window (dilated: its span) must fit in the padded input. layout: check_weight_layout's text
    when W also reads as PyTorch's layout, added to the error (then it is most likely the mistake)."""
    padded = (x_shape[1] + sum(pads[0]), x_shape[2] + sum(pads[1]))
    if f[0] > padded[0] or f[1] > padded[1]:
        raise ValueError(f"{op}: window {f[0]}x{f[1]} is larger than the padded input {padded[0]}x{padded[1]} "
                         f"(x.shape={tuple(x_shape)}, pad={pads}){'; ' + layout if layout else ''}")


def check_weight_layout(op: str, channels: int, W_shape: tuple, groups: int) -> str | None:
    """A conv weight in PyTorch's layout where ours is expected: raise when only PyTorch's reading fits x's
    ``channels`` (with a square window: else it is more likely ours with the wrong channel count, which the caller
    reports); return the text of a warning when both fit and only PyTorch's reading has a square window larger than
    1x1 (ours then an odd f_h x f_w one), else None. The Tensor ops warn with it (naming the user's line).

    Ours: conv2d (f_h, f_w, C_in // groups, C_out), conv_transpose2d (f_h, f_w, C_out // groups, C_in).
    PyTorch's: conv2d (C_out, C_in // groups, f_h, f_w), conv_transpose2d (C_in, C_out // groups, f_h, f_w).
    Either way ``W.transpose(2, 3, 1, 0)`` turns PyTorch's into ours. A square W (3, 3, 3, 3) reads the same both
    ways and is taken as ours.
    """
    per_group = " // groups" if groups > 1 else ""
    if op == "conv2d":
        ours_fits = W_shape[2] * groups == channels
        theirs_fits = W_shape[1] * groups == channels and W_shape[0] % groups == 0
        theirs, ours = f"(C_out, C_in{per_group}, f_h, f_w)", f"(f_h, f_w, C_in{per_group}, C_out)"
        filters, their_filters = W_shape[3], W_shape[0]
    else:
        ours_fits, theirs_fits = W_shape[3] == channels, W_shape[0] == channels
        theirs, ours = "(C_in, C_out // groups, f_h, f_w)", "(f_h, f_w, C_out // groups, C_in)"
        filters, their_filters = W_shape[2] * groups, W_shape[1] * groups
    fixed = (W_shape[2], W_shape[3], W_shape[1], W_shape[0])
    if theirs_fits and not ours_fits and W_shape[2] == W_shape[3]:
        raise ValueError(f"{op}: W has shape {W_shape}, PyTorch's layout {theirs} for x's {channels} channels; ours "
                         f"is {ours}: pass W.transpose(2, 3, 1, 0) (shape {fixed})")
    if theirs_fits and W_shape[2] == W_shape[3] > 1 and W_shape[0] != W_shape[1]:
        return (f"{op}: W of shape {W_shape} is read as ours {ours}: a {W_shape[0]}x{W_shape[1]} window, "
                f"{_count(filters, 'filter')}; in PyTorch's layout it would be {_count(their_filters, 'filter')} of "
                f"{W_shape[2]}x{W_shape[3]}: then pass W.transpose(2, 3, 1, 0)")
    return None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def check_conv2d_args(x, W, b, stride, pad, dilation=1, groups=1):
    """Check conv2d's inputs; return (stride, pads) as ((s_h, s_w), ((top, bottom), (left, right))).

    dilation: a positive int or pair (conv2d_forward takes it as given); groups: a positive int dividing
    n_C_prev and n_C, with W of shape (f_h, f_w, n_C_prev // groups, n_C). "same" padding uses the dilated
    window size dilation * (f - 1) + 1.
    """
    check_images("conv2d", "x", x)
    if not isinstance(W, np.ndarray) or W.ndim != 4:
        raise ValueError(f"conv2d: W must be a 4-D array (f_h, f_w, n_C_prev, n_C) "
                         f"((f_h, f_w, n_C_prev // groups, n_C) with groups), "
                         f"got {getattr(W, 'shape', type(W).__name__)}")
    if W.shape[3] == 0:
        raise ValueError(f"conv2d: W has 0 filters (n_C = W.shape[3] = 0, W.shape={W.shape}); it needs at least one")
    layout = None
    if isinstance(groups, numbers.Integral) and groups > 0:
        layout = check_weight_layout("conv2d", x.shape[3], W.shape, int(groups))
    check_groups("conv2d", groups, {"n_C_prev": x.shape[3], "n_C": W.shape[3]}, f"x.shape={x.shape}, W.shape={W.shape}")
    if x.shape[3] != W.shape[2] * groups:
        hint = ""
        if x.shape[1] == W.shape[2] * groups:
            hint = "; x looks NCHW (channels at axis 1): pass x.transpose(0, 2, 3, 1)"
        per_group = "" if groups == 1 else f" (W.shape[2] * groups = {W.shape[2]} * {groups})"
        raise ValueError(f"conv2d: x has {x.shape[3]} channels (axis 3) but W expects {W.shape[2] * groups}"
                         f"{per_group} (W.shape={W.shape}, x.shape={x.shape}){hint}")
    check_bias("conv2d", b, W.shape[3], f"W.shape={W.shape}")
    stride = as_positive_pair("conv2d", "stride", stride)
    dilation = as_positive_pair("conv2d", "dilation", dilation)
    f = dilated_size(W.shape[:2], dilation)
    pads = as_pads("conv2d", pad, x.shape[1:3], f, stride)
    _check_window_fits("conv2d", x.shape, f, pads, layout)
    return stride, pads


def check_groups(op: str, groups, channels: dict, shapes: str) -> None:
    """groups must be a positive int dividing each channel count in channels ({name: count})."""
    if not _is_int(groups) or groups < 1:
        raise TypeError(f"{op}: groups must be a positive int, got {groups!r}")
    for name, n in channels.items():
        if n % groups:
            raise ValueError(f"{op}: groups={groups} does not divide {name}={n} ({shapes})")


def check_bias(op: str, b, n_C: int, shapes: str) -> None:
    """b must be None, (n_C,) or (1, 1, 1, n_C)."""
    if b is not None and (not isinstance(b, np.ndarray) or b.shape not in ((n_C,), (1, 1, 1, n_C))):
        raise ValueError(f"{op}: b must have shape ({n_C},) or (1, 1, 1, {n_C}) to match {shapes}, "
                         f"got {getattr(b, 'shape', type(b).__name__)}")


def check_pad2d_args(op: str, x, pad, value=0.0):
    """Check a pad's inputs; return pads as ((top, bottom), (left, right))."""
    check_images(op, "x", x)
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{op}: value must be a real number, got {value!r}")
    return as_pads(op, pad)


def check_pool2d_args(op: str, x, f, stride, ties=None):
    """Check a pool's inputs; return (f, stride) as pairs. stride None means stride = f."""
    check_images(op, "x", x)
    f = as_positive_pair(op, "f", f)
    stride = f if stride is None else as_positive_pair(op, "stride", stride)
    if ties is not None and ties not in TIES:
        raise ValueError(f"{op}: unknown ties policy {ties!r}; use one of {TIES}")
    _check_window_fits(op, x.shape, f, ((0, 0), (0, 0)))
    return f, stride


def check_conv_transpose2d_args(x, W, b, stride, pad, output_padding=0, dilation=1, groups=1):
    """Check conv_transpose2d's inputs; return (stride, pads, output_padding) normalized.

    x (m, n_H, n_W, n_C_in), W (f_h, f_w, n_C_out // groups, n_C_in), b None / (n_C_out,) / (1, 1, 1, n_C_out).
    pad: int, pair, ((top, bottom), (left, right)) or "valid" (no "same"). output_padding: int or pair, each
    >= 0 and < its stride (PyTorch also accepts < dilation; we do not, so the op stays conv2d's exact adjoint).
    """
    op = "conv_transpose2d"
    check_images(op, "x", x)
    if not isinstance(W, np.ndarray) or W.ndim != 4:
        raise ValueError(f"{op}: W must be a 4-D array (f_h, f_w, n_C_out // groups, n_C_in), "
                         f"got {getattr(W, 'shape', type(W).__name__)}")
    if isinstance(groups, numbers.Integral) and groups > 0:
        check_weight_layout(op, x.shape[3], W.shape, int(groups))
    if x.shape[3] != W.shape[3]:
        raise ValueError(f"{op}: x has {x.shape[3]} channels (axis 3) but W expects {W.shape[3]} (its last axis, "
                         f"n_C_in; W.shape={W.shape}, x.shape={x.shape})")
    check_groups(op, groups, {"n_C_in": W.shape[3]}, f"x.shape={x.shape}, W.shape={W.shape}")
    n_C_out = W.shape[2] * groups
    check_bias(op, b, n_C_out, f"n_C_out = W.shape[2] * groups = {n_C_out}")
    stride = as_positive_pair(op, "stride", stride)
    dilation = as_positive_pair(op, "dilation", dilation)
    if isinstance(pad, str) and pad == "same":
        raise ValueError(f"{op}: pad='same' is not supported; give the pad as ints (conv2d's pad)")
    pads = as_pads(op, pad)
    output_padding = as_int_pair(op, "output_padding", output_padding, 0)
    if any(op_ >= s for op_, s in zip(output_padding, stride, strict=True)):
        raise ValueError(f"{op}: output_padding={output_padding} must be smaller than stride={stride} "
                         f"(it picks one of the stride input sizes that conv2d maps to the same output size)")
    out_hw = conv_transpose2d_output_hw(x.shape, W.shape[:2], stride, pads, output_padding, dilation)
    if min(out_hw) < 1:
        raise ValueError(f"{op}: output size {out_hw} is not positive: (n - 1) * stride - pads + dilation * (f - 1)"
                         f" + 1 + output_padding with x.shape={x.shape}, W.shape={W.shape}, stride={stride}, "
                         f"pad={pads}")
    return stride, pads, output_padding


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def check_batch_norm_args(x, gamma, beta, running_mean, running_var, eps, momentum, training) -> None:
    """x 4-D NHWC; gamma, beta and the running statistics (n_C,) arrays (running ones may be None in training);
    eps > 0; momentum in [0, 1] (PyTorch's momentum=None, a cumulative average, is not supported)."""
    op = "batch_norm2d"
    check_images(op, "x", x)
    n_C = x.shape[3]
    for name, value in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean),
                        ("running_var", running_var)):
        if value is None and name.startswith("running") and training:
            continue
        if not isinstance(value, np.ndarray) or value.shape != (n_C,):
            raise ValueError(f"{op}: {name} must be an array of shape ({n_C},) (one per channel of x.shape={x.shape})"
                             f", got {getattr(value, 'shape', type(value).__name__)}"
                             + (" (eval mode needs the running statistics)" if value is None else ""))
    if (running_mean is None) != (running_var is None):
        raise ValueError(f"{op}: give both running_mean and running_var or neither")
    if not _real(eps) or not eps > 0:
        raise ValueError(f"{op}: eps must be a number > 0, got {eps!r}")
    if not _real(momentum) or not 0 <= momentum <= 1:
        raise ValueError(f"{op}: momentum must be a number in [0, 1], got {momentum!r}")
    if training and x.shape[0] * x.shape[1] * x.shape[2] == 1:  # none (an empty batch) is fine, as PyTorch
        raise ValueError(f"{op}: training needs more than one value per channel, got x.shape={x.shape}")


def check_dropout_p(p) -> None:
    """p must be a number in [0, 1]: the probability of dropping an entry."""
    if not _real(p):
        raise TypeError(f"dropout: p must be a number in [0, 1], got {p!r}")
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be in [0, 1] (the probability of dropping an entry), got {p!r}")
