"""Vectorized numpy kernels for the CNN ops (NHWC): pad, conv2d (dilation, groups), conv_transpose2d,
batch norm, the dropout mask, max pool and average pool.

Layouts (the notebook's):
    x   (m, n_H_prev, n_W_prev, n_C_prev)   a batch of m images, channels last
    W   (f_h, f_w, n_C_prev // groups, n_C) n_C filters (groups = 1: (f_h, f_w, n_C_prev, n_C))
    b   None, (n_C,) or (1, 1, 1, n_C)
    out (m, n_H, n_W, n_C)
conv_transpose2d uses conv2d's W layout: (f_h, f_w, n_C_out // groups, n_C_in) is the weight of the conv2d
that maps n_C_out channels to n_C_in, and conv_transpose2d is that conv2d's input gradient.

Each forward returns `(out, saved)` (batch_norm_forward also the updated running statistics); the matching
backward takes the output gradient and `saved`. There is no Python loop over rows, columns or channels; only
over the f_h * f_w offsets of the kernel window, where each step is one strided slice of a block of images
(groups run as one batched GEMM), and over those blocks (parallel.run_in_chunks: cache-sized, on the thread
pool for large inputs). conv2d keeps no im2col matrix: each block's is built, used and dropped, in the forward
and again for dW. Tensors never appear here.

Argument checks live here too (`check_pad2d_args`, `check_conv2d_args`, `check_conv_transpose2d_args`,
`check_batch_norm_args`, `check_pool2d_args`), so the Tensor ops and the notebook API in steps.py reject bad
input with the same messages.
"""

from __future__ import annotations

import numbers
import os
import sys
import warnings
from typing import NamedTuple

import numpy as np

from .parallel import run_in_chunks

# The pool and pad kernels walk the batch in cache-sized blocks (parallel.BLOCK_BYTES): measured 10-30% faster
# than whole-batch passes. They are bound by memory bandwidth, and on this shared 2-core machine two threads
# measured slower than one in each A/B run (max pool forward W3 float32: 0.71 ms on one thread, 0.77 ms on
# two; (128, 32, 32, 64): 3.05 vs 3.11 ms), so they take threads only above this input size, in effect never;
# tests lower it to check the threaded path.
COPY_PARALLEL_BYTES = 1 << 40
# conv2d runs the batch in chunks of about CONV_BLOCK_BYTES of im2col matrix, built in the forward and again for
# dW rather than kept (peak memory of f+b 16x -> 6-8x its input). In one A/B run on a steady machine, conv f+b
# float32 ms, whole-batch im2col kept (before) / chunks on one thread, BLAS free / chunks on two threads, BLAS at
# one each: W2 11.7 / 12.6 / 15.1, W4 6.5 / 7.4 / 9.5; float64 W2 21.2 / 23.5 / 28.4, W4 10.3 / 11.1 / 15.1;
# W3 float32 38.2 / 36.3 (threads not run). Block size 1, 4 or 16 MB: within 5%. So the chunks take threads only
# above CONV_PARALLEL_BYTES of im2col matrix, in effect never; tests lower it to check the threaded path.
# (Under heavy load from other jobs OpenBLAS's own threads stall: then W4 float32 took 56 ms before and 16 ms on
# two chunk threads; figures from such runs do not decide the default.)
CONV_BLOCK_BYTES = 1 << 20
CONV_PARALLEL_BYTES = 1 << 40
# The channels-first col2im (_input_grad_chunk_channels_first, few channels) runs its chunks by CONV_DX_BLOCK_BYTES
# of dout instead: its per-offset passes over whole planes gain from more images per call. W4 dx, ms, 1 MB of
# im2col (3 images) / 1 MB of dout (8 images): float32 3.22 / 2.88, float64 5.85 / 4.43; peak memory of f+b
# float32 7.8x -> 8.2x its input (2 MB of dout: 10x). Other col2im shapes measured mixed with bigger chunks
# (W3 float32 0.92x, float64 1.04-1.12x; x (32, 32, 32, 8), 64 filters 1.1-1.2x), so they keep CONV_BLOCK_BYTES.
CONV_DX_BLOCK_BYTES = 1 << 20

TIES = ("first", "split", "all")

# ---------------------------------------------------------------- argument normalizing and checks


def _is_int(value) -> bool:
    """True for Python/numpy integers; bool is not an integer here."""
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


def check_images(op: str, name: str, x) -> None:
    """x must be a numeric 4-D NHWC ndarray (m, n_H, n_W, n_C)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: {name} must be a numpy array, got {type(x).__name__}")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise TypeError(f"{op}: {name} must hold real numbers, got dtype {x.dtype}")
    if x.ndim != 4:
        hint = " (a single image? add the batch axis with x[None])" if x.ndim == 3 else ""
        raise ValueError(f"{op}: {name} must be 4-D NHWC (m, n_H, n_W, n_C), got shape {x.shape}{hint}")


def _check_window_fits(op: str, x_shape, f, pads) -> None:
    """The (f_h, f_w) window (dilated: its span) must fit in the padded input."""
    padded = (x_shape[1] + sum(pads[0]), x_shape[2] + sum(pads[1]))
    if f[0] > padded[0] or f[1] > padded[1]:
        raise ValueError(f"{op}: window {f[0]}x{f[1]} is larger than the padded input {padded[0]}x{padded[1]} "
                         f"(x.shape={tuple(x_shape)}, pad={pads})")


def _user_stacklevel() -> int:
    """The stacklevel of warnings.warn that names the first frame outside this package (the user's line)."""
    package, level, frame = os.path.dirname(os.path.abspath(__file__)) + os.sep, 1, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(package):
        frame, level = frame.f_back, level + 1
    return level


def check_weight_layout(op: str, channels: int, W_shape: tuple, groups: int) -> None:
    """A conv weight in PyTorch's layout where ours is expected: raise when only PyTorch's reading fits x's
    ``channels`` (with a square window: else it is more likely ours with the wrong channel count, which the caller
    reports), warn when both fit and only PyTorch's reading has a square window larger than 1x1 (ours then an odd
    f_h x f_w one).

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
        warnings.warn(f"{op}: W of shape {W_shape} is read as ours {ours}: a {W_shape[0]}x{W_shape[1]} window, "
                      f"{_count(filters, 'filter')}; in PyTorch's layout it would be {_count(their_filters, 'filter')} "
                      f"of {W_shape[2]}x{W_shape[3]}: then pass W.transpose(2, 3, 1, 0)", UserWarning,
                      stacklevel=_user_stacklevel())


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
    if isinstance(groups, numbers.Integral) and groups > 0:
        check_weight_layout("conv2d", x.shape[3], W.shape, int(groups))
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
    _check_window_fits("conv2d", x.shape, f, pads)
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


def _float_dtype(*arrays):
    """Result dtype of the arrays, promoted to float64 if it is not a float type."""
    dtype = np.result_type(*arrays)
    return dtype if np.issubdtype(dtype, np.floating) else np.dtype(np.float64)


# ---------------------------------------------------------------- padding


def pad_forward(x: np.ndarray, pads, value: float = 0.0) -> np.ndarray:
    """(m, n_H, n_W, n_C) -> (m, top + n_H + bottom, left + n_W + right, n_C), filled with `value`."""
    (top, bottom), (left, right) = pads
    if top == bottom == left == right == 0:
        return x
    m, n_H, n_W, n_C = x.shape
    out = np.empty((m, top + n_H + bottom, left + n_W + right, n_C), dtype=x.dtype)

    def pad_chunk(s):
        out[s] = value
        out[s, top:top + n_H, left:left + n_W, :] = x[s]
    run_in_chunks(pad_chunk, m, x[:1].nbytes, COPY_PARALLEL_BYTES)
    return out


def unpad(xp: np.ndarray, pads) -> np.ndarray:
    """Inverse of pad_forward (a view): drop the padded border. Also the backward of padding."""
    (top, bottom), (left, right) = pads
    return xp[:, top:xp.shape[1] - bottom, left:xp.shape[2] - right, :]


def dense(a: np.ndarray) -> np.ndarray:
    """a itself, or a C-contiguous copy when a is a broadcast view (stride 0 along an axis longer than 1).

    The gradient of a sum reaches the kernels as such a view (np.broadcast_to); BLAS and the strided
    copies run slowly on it: conv2d backward on W3 float32 measured 30.5 ms on the view, 20.6 ms with the copy.
    """
    if any(step == 0 and n > 1 for step, n in zip(a.strides, a.shape, strict=True)):
        return np.ascontiguousarray(a)
    return a


def _offset_slice(xp: np.ndarray, i: int, j: int, stride, out_hw) -> np.ndarray:
    """The (..., n_H, n_W, n_C) view of xp (..., H, W, n_C) that window offset (i, j) touches for every output
    position; the leading axes are (m,) or (groups, m)."""
    (s_h, s_w), (n_H, n_W) = stride, out_hw
    return xp[..., i:i + s_h * (n_H - 1) + 1:s_h, j:j + s_w * (n_W - 1) + 1:s_w, :]


def _window_offsets(f):
    """Row-major (i, j) offsets inside an (f_h, f_w) window."""
    return [(i, j) for i in range(f[0]) for j in range(f[1])]


def _pooled_hw(x_shape, f, stride) -> tuple[int, int]:
    return output_size(x_shape[1], f[0], 0, stride[0]), output_size(x_shape[2], f[1], 0, stride[1])


# ---------------------------------------------------------------- conv2d


class ConvSaved(NamedTuple):
    """What conv2d_backward needs: the input (its im2col is recomputed per batch chunk) and the forward's arguments."""
    x: np.ndarray | None    # (m, n_H_prev, n_W_prev, n_C_prev) in the compute dtype; None: no dW
    W: np.ndarray           # (f_h, f_w, n_C_prev // groups, n_C)
    b_shape: tuple | None   # b's shape, so db comes back in it
    x_shape: tuple          # (m, n_H_prev, n_W_prev, n_C_prev)
    out_shape: tuple        # (m, n_H, n_W, n_C)
    stride: tuple
    pads: tuple
    dilation: tuple = (1, 1)
    groups: int = 1
    cols: np.ndarray | None = None  # the im2col matrix, kept only when the whole batch is one block (tiny inputs)


def _batch_saved(saved: ConvSaved, s: slice) -> ConvSaved:
    """saved restricted to the images of batch slice s."""
    m = len(range(*s.indices(saved.x_shape[0])))
    cols = saved.cols if m == saved.x_shape[0] else None
    return saved._replace(x=None if saved.x is None else saved.x[s], x_shape=(m, *saved.x_shape[1:]),
                          out_shape=(m, *saved.out_shape[1:]), cols=cols)


def _conv_chunks(fn, saved: ConvSaved, dout_bytes_per_image: int | None = None) -> None:
    """fn(s) for batch slices s, each holding about CONV_BLOCK_BYTES of im2col matrix (or, given
    dout_bytes_per_image, CONV_DX_BLOCK_BYTES of dout), on the thread pool when the whole im2col matrix is at
    least CONV_PARALLEL_BYTES (BLAS at one thread per chunk meanwhile)."""
    cols_bytes = _cols_bytes_per_image(saved)
    block = CONV_BLOCK_BYTES
    if dout_bytes_per_image is not None:  # the block size in im2col bytes that holds CONV_DX_BLOCK_BYTES of dout
        block = CONV_DX_BLOCK_BYTES * cols_bytes // max(1, dout_bytes_per_image)
    run_in_chunks(fn, saved.x_shape[0], cols_bytes, CONV_PARALLEL_BYTES, limit_blas=True, block_bytes=block)


def _cols_bytes_per_image(saved: ConvSaved) -> int:
    """Bytes of one image's rows of the im2col matrix."""
    f_h, f_w, C_g, _ = saved.W.shape
    return saved.out_shape[1] * saved.out_shape[2] * f_h * f_w * C_g * saved.groups * saved.W.itemsize


def dilated_size(f, dilation) -> tuple[int, int]:
    """The (rows, cols) a dilated window spans: dilation * (f - 1) + 1 on each axis."""
    return tuple(d * (k - 1) + 1 for k, d in zip(f, dilation, strict=True))


def im2col(xp: np.ndarray, f, stride, dilation=(1, 1), groups: int = 1) -> np.ndarray:
    """Padded (m, H, W, C) -> (groups, m * n_H * n_W, f_h * f_w * C // groups): every window, one row per group.

    Row (i, h, w), columns (row offset, col offset, channel of the group); window offsets step by `dilation`.
    For groups = 1 the copy is the reshape itself; for more groups, one gather moves the group axis first.
    """
    m, H, W, C = xp.shape
    n_H, n_W = _pooled_hw(xp.shape, dilated_size(f, dilation), stride)
    s_m, s_H, s_W, s_C = xp.strides
    windows = np.lib.stride_tricks.as_strided(
        xp, shape=(m, n_H, n_W, f[0], f[1], groups, C // groups),
        strides=(s_m, s_H * stride[0], s_W * stride[1], s_H * dilation[0], s_W * dilation[1], s_C * (C // groups),
                 s_C), writeable=False)
    return windows.transpose(5, 0, 1, 2, 3, 4, 6).reshape(groups, m * n_H * n_W, f[0] * f[1] * (C // groups))


def grouped_weights(W: np.ndarray, groups: int) -> np.ndarray:
    """W (f_h, f_w, C_g, n_C) -> (groups, f_h * f_w * C_g, n_C // groups): group g's filters as one matrix."""
    f_h, f_w, C_g, n_C = W.shape
    return W.reshape(f_h * f_w * C_g, groups, n_C // groups).transpose(1, 0, 2)


def _ungroup(out3: np.ndarray) -> np.ndarray:
    """(groups, rows, k) -> (rows, groups * k), C-contiguous: the per-group results side by side, group-major."""
    if out3.shape[0] == 1:
        return out3[0]
    return np.ascontiguousarray(out3.transpose(1, 0, 2)).reshape(out3.shape[1], -1)


def _group(a2d: np.ndarray, groups: int) -> np.ndarray:
    """(rows, groups * k) -> (groups, rows, k) view: the inverse of _ungroup."""
    return a2d.reshape(a2d.shape[0], groups, -1).transpose(1, 0, 2)


def _per_group_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(groups, n, k) @ (groups, k, p) -> (groups, n, p). One group takes the plain 2-D GEMM: measured up to 2x
    faster than a stack of one for transposed views (9 offsets of (32768, 64) @ (64, 32), float32). k = 1 (one
    filter per group, as in depthwise col2im) is a broadcast multiply: measured 10x faster than matmul."""
    if a.shape[0] == 1:
        return (a[0] @ b[0])[None]
    return a * b if a.shape[2] == 1 else a @ b


def conv2d_saved(x: np.ndarray, W: np.ndarray, b, stride, pads, dilation=(1, 1), groups: int = 1) -> ConvSaved:
    """Everything conv2d_backward needs (x and W in the compute dtype, the shapes and arguments); no copy of x."""
    dilation = as_positive_pair("conv2d", "dilation", dilation)
    dtype = _float_dtype(x, W)
    n_H, n_W = _pooled_hw((0, x.shape[1] + sum(pads[0]), x.shape[2] + sum(pads[1])),
                          dilated_size(W.shape[:2], dilation), stride)
    return ConvSaved(x.astype(dtype, copy=False), W.astype(dtype, copy=False), None if b is None else b.shape,
                     x.shape, (x.shape[0], n_H, n_W, W.shape[3]), stride, pads, dilation, groups)


def _chunk_cols(saved: ConvSaved) -> np.ndarray:
    """The grouped im2col matrix (groups, m * n_H * n_W, f_h * f_w * C // groups) of saved.x (a batch chunk)."""
    if saved.cols is not None:
        return saved.cols
    return im2col(pad_forward(saved.x, saved.pads), saved.W.shape[:2], saved.stride, saved.dilation, saved.groups)


def conv2d_forward(x: np.ndarray, W: np.ndarray, b, stride, pads, dilation=(1, 1), groups: int = 1):
    """Z[i, h, w, c] = sum(window(i, h, w) of c's group * W[..., c]) + b[c], one GEMM per group (batched).

    x (m, n_H_prev, n_W_prev, n_C_prev), W (f_h, f_w, n_C_prev // groups, n_C), b None / (n_C,) / (1, 1, 1, n_C),
    stride (s_h, s_w), pads ((top, bottom), (left, right)), dilation int or (d_h, d_w), groups dividing n_C_prev
    and n_C (output channel c belongs to group c // (n_C // groups), as in PyTorch)
    -> (out (m, n_H, n_W, n_C), saved), n = floor((n_prev + pads - dilation * (f - 1) - 1) / stride) + 1.
    The batch runs in chunks (_conv_chunks): each chunk's im2col matrix stays small, and is kept (for dW) only
    when the whole batch is one chunk.
    """
    saved = conv2d_saved(x, W, b, stride, pads, dilation, groups)
    out = np.empty(saved.out_shape, dtype=saved.W.dtype)
    weights = grouped_weights(saved.W, groups)

    def forward_chunk(s):
        nonlocal saved
        cols = _chunk_cols(_batch_saved(saved, s))
        if s.stop - s.start == saved.x_shape[0]:  # the whole batch in one block: keep its im2col for dW
            saved = saved._replace(cols=cols)
        if groups == 1:  # straight into out's rows
            np.matmul(cols[0], weights[0], out=out[s].reshape(cols.shape[1], -1))
        else:
            out[s] = _ungroup(_per_group_matmul(cols, weights)).reshape(out[s].shape)
    _conv_chunks(forward_chunk, saved)
    if b is not None:
        out += b.reshape(-1).astype(out.dtype, copy=False)
    return out, saved


def conv2d_input_grad(dout2d: np.ndarray, saved: ConvSaved) -> np.ndarray:
    """dx (m, n_H_prev, n_W_prev, C) from dout2d (m * n_H * n_W, n_C), col2im per batch chunk (_conv_chunks)."""
    if _input_grad_is_conv(saved):
        return _input_grad_as_conv(dout2d, saved)
    dx = np.empty(saved.x_shape, dtype=dout2d.dtype)
    rows = saved.out_shape[1] * saved.out_shape[2]

    def chunk(s):
        dx[s] = _input_grad_chunk(dout2d[s.start * rows:s.stop * rows], _batch_saved(saved, s))
    _conv_chunks(chunk, saved, rows * dout2d.shape[1] * dout2d.itemsize if _col2im_channels_first(saved) else None)
    return dx


def _input_grad_is_conv(saved: ConvSaved) -> bool:
    """True when dx runs as a stride-1 conv2d of dout (_input_grad_as_conv): stride 1, one group, no pad wider
    than the dilated window's reach, and dout not much wider than x. That conv's im2col matrix has n_C columns per
    offset where col2im's strided adds touch C; measured (float32 ms, col2im / conv, 3x3, pad 1) faster for
    n_C <= C: (64, 28, 28, 16) 16 filters 8.5 / 5.3, (32, 32, 32, 64) 32 filters 17.6 / 10.7; and for C = 8, 16
    filters (W2) 5.9 / 4.9, where col2im's runs are only 8 long; slower for (32, 32, 32, 32) 64 filters (W3)
    14.5 / 16.8 and C = 8, 64 filters 5.5 / 13.2."""
    f_h, f_w, C, n_C = saved.W.shape
    reach = [d * (k - 1) for k, d in zip((f_h, f_w), saved.dilation, strict=True)]
    return (saved.stride == (1, 1) and saved.groups == 1 and (n_C <= C or (C <= 8 and n_C <= 2 * C))
            and all(p <= r for pair, r in zip(saved.pads, reach, strict=True) for p in pair))


def _input_grad_as_conv(dout2d: np.ndarray, saved: ConvSaved) -> np.ndarray:
    """dx for stride 1, one group: the conv2d of dout, padded by each side's window reach minus its pad, with the
    kernel flipped and its channel axes swapped, (f_h, f_w, n_C, C)."""
    f_h, f_w, _, n_C = saved.W.shape
    (d_h, d_w), ((top, bottom), (left, right)) = saved.dilation, saved.pads
    pads = ((d_h * (f_h - 1) - top, d_h * (f_h - 1) - bottom), (d_w * (f_w - 1) - left, d_w * (f_w - 1) - right))
    flipped = np.ascontiguousarray(saved.W[::-1, ::-1].transpose(0, 1, 3, 2))
    return conv2d_forward(dout2d.reshape(saved.out_shape), flipped, None, (1, 1), pads, saved.dilation)[0]


def _input_grad_chunk(dout2d: np.ndarray, saved: ConvSaved) -> np.ndarray:
    """dx (m, n_H_prev, n_W_prev, C) from dout2d (m * n_H * n_W, n_C): col2im one window offset at a time.

    For offset (i, j), dout2d @ W[i, j].T (per group) is the gradient of every window's (i, j) entry; it lands
    on the strided slice of the padded input that offset touches, and overlapping windows add up. One small GEMM
    per offset instead of one big (m * n_H * n_W, f_h * f_w * C) matrix: measured as fast, and far less memory.
    The padded buffer is group-major, (groups, m, H, W, C // groups), so each group's GEMM result lands in
    contiguous runs; one copy at the end makes it channels-last (none for one group). Measured on depthwise
    x (32, 32, 32, 32), 3x3, one thread, against scattering channels-last: 70 -> 47 ms float32, 122 -> 84 ms
    float64 (with _per_group_matmul's multiply for one filter per group).
    With a column stride > 1, few channels (C < 8) and one group the slices' contiguous runs would be only C
    long, so _input_grad_chunk_channels_first takes over.
    """
    m, H, W, C = saved.x_shape
    groups, (d_h, d_w) = saved.groups, saved.dilation
    if _col2im_channels_first(saved):
        return _input_grad_chunk_channels_first(dout2d, saved)
    (top, bottom), (left, right) = saved.pads
    dxp = np.zeros((groups, m, top + H + bottom, left + W + right, C // groups), dtype=dout2d.dtype)
    dout3 = _group(dout2d, groups)
    for i, j in _window_offsets(saved.W.shape[:2]):
        W_ij = saved.W[i, j].reshape(-1, groups, saved.W.shape[3] // groups).transpose(1, 2, 0)  # (g, n_C/g, C/g)
        window_grad = _per_group_matmul(dout3, W_ij).reshape(groups, *saved.out_shape[:3], C // groups)
        _offset_slice(dxp, i * d_h, j * d_w, saved.stride, saved.out_shape[1:3])[...] += window_grad
    return unpad(dxp.transpose(1, 2, 3, 0, 4).reshape(m, *dxp.shape[2:4], C), saved.pads)


def _col2im_channels_first(saved: ConvSaved) -> bool:
    """True when _input_grad_chunk_channels_first takes over: a column stride > 1, few channels, one group."""
    return saved.stride[1] > 1 and saved.x_shape[3] < 8 and saved.groups == 1


def _input_grad_chunk_channels_first(dout2d: np.ndarray, saved: ConvSaved) -> np.ndarray:
    """_input_grad_chunk for few channels and one group: col2im into channels-first memory, one GEMM per kernel row.

    W[i] (f_w * C, n_C) @ dout2d.T holds kernel row i's window gradients as (f_w, C, m, n_H, n_W): per offset
    and channel, whole (m, n_H, n_W) planes. The padded buffer is a (m, H, W, C) view of (C, m, H, W) memory,
    so each offset's strided add runs along output rows instead of C-long runs; one copy makes dx channels-last.
    Measured on x (16, 64, 64, 3), W (5, 5, 3, 32), stride 2, float64: 11.8 -> 5.2 ms; extra memory 1 / f_h of
    the im2col matrix.
    """
    m, H, W, C = saved.x_shape
    (top, bottom), (left, right) = saved.pads
    f_h, f_w, _, n_C = saved.W.shape
    d_h, d_w = saved.dilation
    dxp = np.zeros((C, m, top + H + bottom, left + W + right), dtype=dout2d.dtype).transpose(1, 2, 3, 0)
    for i in range(f_h):
        row_grads = (saved.W[i].reshape(f_w * C, n_C) @ dout2d.T).reshape(f_w, C, *saved.out_shape[:3])
        for j in range(f_w):
            window_grad = row_grads[j].transpose(1, 2, 3, 0)  # (m, n_H, n_W, C) view
            _offset_slice(dxp, i * d_h, j * d_w, saved.stride, saved.out_shape[1:3])[...] += window_grad
    return np.ascontiguousarray(unpad(dxp, saved.pads))


def conv2d_weight_grad(dout2d: np.ndarray, saved: ConvSaved) -> np.ndarray:
    """dW (f_h, f_w, n_C_prev // groups, n_C) = per group cols.T @ dout2d, the groups' filters side by side.

    Summed over batch chunks (_conv_chunks), each chunk's im2col matrix recomputed from saved.x.
    """
    rows = saved.out_shape[1] * saved.out_shape[2]
    parts = []

    def chunk(s):
        cols = _chunk_cols(_batch_saved(saved, s))  # (groups, rows, f_h * f_w * C_g)
        parts.append(_per_group_matmul(cols.transpose(0, 2, 1), _group(dout2d[s.start * rows:s.stop * rows],
                                                                        saved.groups)))
    _conv_chunks(chunk, saved)
    return _ungroup(sum(parts[1:], parts[0])).reshape(saved.W.shape)


def conv2d_backward(dout: np.ndarray, saved: ConvSaved, need_dx=True, need_dW=True, need_db=True):
    """dout (m, n_H, n_W, n_C) -> (dx like x, dW like W, db like b); None where not needed (or b is None)."""
    dout = dense(dout)
    n_C = saved.W.shape[3]
    dout2d = dout.reshape(-1, n_C).astype(saved.W.dtype, copy=False)
    dx = dW = db = None
    if need_dx:
        dx = conv2d_input_grad(dout2d, saved)
    if need_dW:
        dW = conv2d_weight_grad(dout2d, saved)
    if need_db and saved.b_shape is not None:
        db = bias_grad(dout2d).reshape(saved.b_shape)
    return dx, dW, db


def bias_grad(dout2d: np.ndarray) -> np.ndarray:
    """(rows, n_C) -> (n_C,): the column sums, as one BLAS matrix-vector product (ones @ dout2d); measured 15x
    faster than dout2d.sum(axis=0) on (6272, 16) float32."""
    return np.ones(dout2d.shape[0], dtype=dout2d.dtype) @ dout2d


# ---------------------------------------------------------------- conv_transpose2d
# The adjoint of conv2d: W (f_h, f_w, n_C_out // groups, n_C_in) is the weight of the conv2d that maps n_C_out
# channels to n_C_in, and conv_transpose2d scatters x through it as that conv2d's backward scatters dZ. So the
# forward is conv2d_input_grad, and the backward is a conv2d forward (dx) and conv2d's dW kernel with the roles
# of input and output gradient swapped.


class ConvTransposeSaved(NamedTuple):
    """What conv_transpose2d_backward needs: the input and the forward's arguments."""
    x: np.ndarray           # (m, n_H_in, n_W_in, n_C_in)
    W: np.ndarray           # (f_h, f_w, n_C_out // groups, n_C_in)
    b_shape: tuple | None
    stride: tuple
    pads: tuple
    dilation: tuple
    groups: int


def conv_transpose2d_output_hw(x_shape, f, stride, pads, output_padding, dilation=(1, 1)) -> tuple[int, int]:
    """(n - 1) * stride - (pad_start + pad_end) + dilation * (f - 1) + 1 + output_padding, rows and cols."""
    return tuple((n - 1) * s - sum(p) + d * (k - 1) + 1 + op
                 for n, k, s, p, op, d in zip(x_shape[1:3], f, stride, pads, output_padding, dilation, strict=True))


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


def conv_transpose2d_forward(x: np.ndarray, W: np.ndarray, b, stride, pads, output_padding=(0, 0),
                             dilation=(1, 1), groups: int = 1):
    """out = the dA_prev of the conv2d with weight W, stride, pads, dilation, groups, given dZ = x; plus b.

    x (m, n_H, n_W, n_C_in), W (f_h, f_w, n_C_out // groups, n_C_in), b None / (n_C_out,) / (1, 1, 1, n_C_out),
    stride (s_h, s_w), pads ((top, bottom), (left, right)), output_padding and dilation ints or pairs
    -> (out (m, H, W_out, n_C_out), saved), H = (n_H - 1) * s_h - (top + bottom) + d_h * (f_h - 1) + 1 + op_h.
    """
    dilation = as_positive_pair("conv_transpose2d", "dilation", dilation)
    output_padding = as_int_pair("conv_transpose2d", "output_padding", output_padding, 0)
    dtype = _float_dtype(x, W)
    x, W = x.astype(dtype, copy=False), W.astype(dtype, copy=False)
    out_hw = conv_transpose2d_output_hw(x.shape, W.shape[:2], stride, pads, output_padding, dilation)
    as_conv = ConvSaved(None, W, None, (x.shape[0], *out_hw, W.shape[2] * groups), x.shape, stride, pads,
                        dilation, groups)
    out = np.ascontiguousarray(conv2d_input_grad(x.reshape(-1, x.shape[3]), as_conv))
    if b is not None:
        out += b.reshape(-1).astype(dtype, copy=False)
    return out, ConvTransposeSaved(x, W, None if b is None else b.shape, stride, pads, dilation, groups)


def conv_transpose2d_backward(dout: np.ndarray, saved: ConvTransposeSaved, need_dx=True, need_dW=True,
                              need_db=True):
    """dout (m, H, W_out, n_C_out) -> (dx like x, dW like W, db like b); None where not needed (or b is None).

    dx is the conv2d forward of dout with W; dW is that conv2d's weight gradient for output gradient x.
    """
    dout = dout.astype(saved.W.dtype, copy=False)
    conv_args = (saved.W, None, saved.stride, saved.pads, saved.dilation, saved.groups)
    dx = dW = db = None
    if need_dx:
        dx, as_conv = conv2d_forward(dout, *conv_args)
    elif need_dW:
        as_conv = conv2d_saved(dout, *conv_args)
    if need_dW:
        dW = conv2d_weight_grad(saved.x.reshape(-1, saved.x.shape[3]), as_conv)
    if need_db and saved.b_shape is not None:
        db = bias_grad(dout.reshape(-1, dout.shape[3])).reshape(saved.b_shape)
    return dx, dW, db


# ---------------------------------------------------------------- batch norm


class BatchNormSaved(NamedTuple):
    """What batch_norm_backward needs."""
    x_hat: np.ndarray       # (m, n_H, n_W, n_C): (x - mean) / sqrt(var + eps)
    inv_std: np.ndarray     # (n_C,): 1 / sqrt(var + eps), batch var in training, running var in eval
    gamma: np.ndarray       # (n_C,)
    training: bool


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


def batch_norm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float, training: bool,
                       running_mean=None, running_var=None, momentum: float = 0.1):
    """out = gamma * (x - mean) / sqrt(var + eps) + beta per channel, statistics over (m, n_H, n_W) of NHWC x.

    training: mean and biased var of the batch; the running statistics come back updated as PyTorch does,
    new = (1 - momentum) * old + momentum * batch (var unbiased: * N / (N - 1), N = m * n_H * n_W), new arrays.
    eval: running_mean and running_var normalize; they come back unchanged. An empty batch (training): an empty
    output, the running statistics unchanged (as PyTorch).
    x (m, n_H, n_W, n_C), gamma, beta, running_* (n_C,) -> (out like x, saved, running_mean, running_var)
    """
    dtype = _float_dtype(x, gamma, beta)
    x2d = x.reshape(-1, x.shape[3]).astype(dtype, copy=False)
    if training:
        empty = x2d.shape[0] == 0
        mean = np.zeros(x.shape[3], dtype) if empty else x2d.mean(axis=0)
        centered = x2d - mean
        var = np.einsum("ij,ij->j", centered, centered) / max(x2d.shape[0], 1)
        if running_mean is not None and not empty:
            n = x2d.shape[0]
            running_mean = (1 - momentum) * running_mean + momentum * mean.astype(running_mean.dtype)
            running_var = (1 - momentum) * running_var + momentum * (var * (n / (n - 1))).astype(running_var.dtype)
    else:
        centered = x2d - running_mean.astype(dtype, copy=False)
        var = running_var.astype(dtype, copy=False)
    inv_std = 1.0 / np.sqrt(var + dtype.type(eps))
    x_hat = np.multiply(centered, inv_std, out=centered)
    out = x_hat * gamma.astype(dtype, copy=False) + beta.astype(dtype, copy=False)
    saved = BatchNormSaved(x_hat.reshape(x.shape), inv_std, gamma.astype(dtype, copy=False), training)
    return out.reshape(x.shape), saved, running_mean, running_var


def batch_norm_backward(dout: np.ndarray, saved: BatchNormSaved):
    """dout (m, n_H, n_W, n_C) -> (dx, dgamma (n_C,), dbeta (n_C,)).

    training (closed form, N = m * n_H * n_W, sums over the batch axes):
        dx = gamma * inv_std / N * (N * dout - sum(dout) - x_hat * sum(dout * x_hat))
    eval (the statistics are constants): dx = gamma * inv_std * dout.  Both: dgamma = sum(dout * x_hat),
    dbeta = sum(dout).
    """
    n_C = dout.shape[3]
    g = dout.reshape(-1, n_C).astype(saved.x_hat.dtype, copy=False)
    x_hat = saved.x_hat.reshape(-1, n_C)
    dbeta = g.sum(axis=0)
    dgamma = np.einsum("ij,ij->j", g, x_hat)
    scale = saved.gamma * saved.inv_std
    if saved.training:
        n = max(g.shape[0], 1)  # an empty batch: dx is empty, dgamma and dbeta zeros
        dx = (g - dbeta / n - x_hat * (dgamma / n)) * scale
    else:
        dx = g * scale
    return dx.reshape(dout.shape), dgamma, dbeta


# ---------------------------------------------------------------- dropout


def check_dropout_p(p) -> None:
    """p must be a number in [0, 1]: the probability of dropping an entry."""
    if not _real(p):
        raise TypeError(f"dropout: p must be a number in [0, 1], got {p!r}")
    if not 0 <= p <= 1:
        raise ValueError(f"dropout: p must be in [0, 1] (the probability of dropping an entry), got {p!r}")


def dropout_mask(shape, p: float, rng=None, dtype=np.float64) -> np.ndarray:
    """Inverted-dropout mask: each entry 0 with probability p, else 1 / (1 - p), so mask.mean() ~ 1.

    p in [0, 1]: p = 0 gives all ones (rng untouched), p = 1 all zeros (everything dropped, as PyTorch).
    rng: a numpy Generator, a seed or None (fresh entropy). dtype: float32 or float64.
    out = x * mask in the forward, dx = dout * mask in the backward.
    """
    check_dropout_p(p)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dropout: dtype must be float32 or float64, got {dtype}")
    if p == 0:
        return np.ones(shape, dtype=dtype)
    if p == 1:
        return np.zeros(shape, dtype=dtype)
    keep = np.random.default_rng(rng).random(shape, dtype=dtype) >= p
    return np.multiply(keep, dtype.type(1 / (1 - p)), dtype=dtype)


# ---------------------------------------------------------------- pooling
# Every pool runs one strided slice per window offset; measured ~4x faster than reducing a
# (m, n_H, f_h, n_W, f_w, C) reshape, even for non-overlapping windows.


class PoolSaved(NamedTuple):
    """What the pool backwards need."""
    x: np.ndarray           # the input (m, n_H_prev, n_W_prev, n_C)
    out: np.ndarray         # the pooled output (m, n_H, n_W, n_C)
    f: tuple
    stride: tuple
    ties: str | None        # max pool only


def _pool_windows(x, f, stride):
    """Yield (i, j, view): for each window offset, row-major, the (m, n_H, n_W, C) view of x it touches."""
    out_hw = _pooled_hw(x.shape, f, stride)
    for i, j in _window_offsets(f):
        yield i, j, _offset_slice(x, i, j, stride, out_hw)


def _reduce_windows(x, f, stride, combine, divisor=None):
    """(m, n_H, n_W, C): combine(...) of the windows' entries, e.g. np.maximum, divided by divisor if given.

    One pass per window offset over a block of images at a time (parallel.run_in_chunks).
    """
    out = np.empty((x.shape[0], *_pooled_hw(x.shape, f, stride), x.shape[3]), dtype=_float_dtype(x))

    def reduce_block(s):
        part = out[s]
        for k, (_, _, window) in enumerate(_pool_windows(x[s], f, stride)):
            if k == 0:
                np.copyto(part, window)
            else:
                combine(part, window, out=part)
        if divisor is not None:
            part /= divisor
    run_in_chunks(reduce_block, x.shape[0], x[:1].nbytes, COPY_PARALLEL_BYTES)
    return out


def max_pool_forward(x: np.ndarray, f, stride, ties="first"):
    """out[i, h, w, c] = max of the (f_h, f_w) window at (h * s_h, w * s_w). x (m, H, W, C) -> (out, saved)."""
    x = x.astype(_float_dtype(x), copy=False)
    out = _reduce_windows(x, f, stride, np.maximum)
    return out, PoolSaved(x, out, f, stride, ties)


def max_pool_masks(saved: PoolSaved):
    """Yield (i, j, weight): the share of each window's gradient that window offset (i, j) receives.

    The notebook's create_mask_from_window for all windows at once, per ties policy:
    "all"   every entry equal to the window max gets the full gradient (notebook; may pass out more than came in)
    "first" only the first max in row-major order gets it (like PyTorch)
    "split" tied entries share it evenly
    A window holding NaN has max NaN (np.maximum passes NaN on) and its NaN entries count as its maxima, so the
    gradient reaches the entry that caused it (PyTorch sends it to the last NaN; "first" here picks the first).
    """
    windows = list(_pool_windows(saved.x, saved.f, saved.stride))
    has_nan = bool(np.isnan(saved.out).any())
    if saved.ties == "split":
        count = sum(_is_window_max(window, saved.out, has_nan).astype(saved.out.dtype) for _, _, window in windows)
    taken = np.zeros(saved.out.shape, dtype=bool)
    for i, j, window in windows:
        is_max = _is_window_max(window, saved.out, has_nan)
        if saved.ties == "first":
            np.greater(is_max, taken, out=is_max)  # a max that no earlier offset took
            np.logical_or(taken, is_max, out=taken)
            yield i, j, is_max
        elif saved.ties == "split":
            yield i, j, is_max / count
        else:
            yield i, j, is_max


def _is_window_max(window: np.ndarray, out: np.ndarray, has_nan: bool) -> np.ndarray:
    """Where a window offset holds its window's max; a window holding NaN has max NaN, and its NaNs are the maxima."""
    is_max = window == out
    return np.logical_or(is_max, np.isnan(window), out=is_max) if has_nan else is_max


def _batch_part(saved: PoolSaved, s: slice) -> PoolSaved:
    """saved restricted to the images of batch slice s."""
    return saved._replace(x=saved.x[s], out=saved.out[s])


def _scatter_windows(dout, saved, weights_of):
    """dx (like saved.x) = sum over window offsets (i, j) of dout * weight(i, j), placed at that offset.

    weights_of(part) yields (i, j, weight) for a PoolSaved `part` of the batch; the batch runs in chunks
    (parallel.run_in_chunks). Windows that tile x exactly (stride == f, sizes divisible) write every entry of
    dx once, so dx skips the zero fill then: measured 3.9 -> 2.9 ms for avg pool backward on
    (32, 32, 32, 64), f=2, float64.
    """
    n_H, n_W = saved.out.shape[1:3]
    tiling = saved.stride == saved.f and saved.x.shape[1:3] == (n_H * saved.f[0], n_W * saved.f[1])
    dx = (np.empty if tiling else np.zeros)(saved.x.shape, dtype=_float_dtype(dout, saved.x))
    overlapping = saved.stride[0] < saved.f[0] or saved.stride[1] < saved.f[1]

    def scatter_chunk(s):
        part, dout_part, dx_part = _batch_part(saved, s), dout[s], dx[s]
        contribution = np.empty(part.out.shape, dtype=dx.dtype)
        for i, j, weight in weights_of(part):
            target = _offset_slice(dx_part, i, j, saved.stride, (n_H, n_W))
            if overlapping:
                target += np.multiply(dout_part, weight, out=contribution)
            else:
                np.multiply(dout_part, weight, out=target)
    run_in_chunks(scatter_chunk, dx.shape[0], dx[:1].nbytes, COPY_PARALLEL_BYTES)
    return dx


def max_pool_backward(dout: np.ndarray, saved: PoolSaved) -> np.ndarray:
    """dout (m, n_H, n_W, C) -> dx (m, H, W, C): each window's gradient goes to its max per saved.ties."""
    return _scatter_windows(dout, saved, max_pool_masks)


def max_pool_gather(a: np.ndarray, saved: PoolSaved) -> np.ndarray:
    """a (like saved.x) -> (like saved.out): from each window, a's entries at the window's max, weighted as
    max_pool_backward shares the window's gradient (saved.ties). max_pool_backward's adjoint: each is the
    other's backward, so a max pool's gradients of every order are these two scatters and gathers."""
    out = np.zeros(saved.out.shape, dtype=_float_dtype(a, saved.x))
    for i, j, weight in max_pool_masks(saved):
        out += _offset_slice(a, i, j, saved.stride, saved.out.shape[1:3]) * weight
    return out


def avg_pool_forward(x: np.ndarray, f, stride):
    """out[i, h, w, c] = mean of the (f_h, f_w) window at (h * s_h, w * s_w). x (m, H, W, C) -> (out, saved)."""
    out = _reduce_windows(x, f, stride, np.add, divisor=f[0] * f[1])
    return out, PoolSaved(x, out, f, stride, None)


def avg_pool_backward(dout: np.ndarray, saved: PoolSaved) -> np.ndarray:
    """dout (m, n_H, n_W, C) -> dx (m, H, W, C): the notebook's distribute_value, dz / (f_h * f_w) to each entry."""
    dout = dense(dout)  # a broadcast view (the gradient of a sum): W2 float32 measured 0.80 -> 0.64 ms
    share = 1.0 / (saved.f[0] * saved.f[1])  # a Python float keeps dout's dtype and takes numpy's fast scalar loop
    return _scatter_windows(dout, saved, lambda part: ((i, j, share) for i, j in _window_offsets(part.f)))
