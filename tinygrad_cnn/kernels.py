"""Vectorized numpy kernels for the CNN ops: pad, conv2d, max pool and average pool (NHWC).

Layouts (the notebook's):
    x   (m, n_H_prev, n_W_prev, n_C_prev)   a batch of m images, channels last
    W   (f_h, f_w, n_C_prev, n_C)           n_C filters
    b   None, (n_C,) or (1, 1, 1, n_C)
    out (m, n_H, n_W, n_C)

Each forward returns `(out, saved)`; the matching backward takes the output gradient and `saved`.
There is no Python loop over the batch, rows, columns or channels; only over the f_h * f_w offsets of
the kernel window, where each step is one strided slice of the whole batch. Tensors never appear here.

Argument checks live here too (`check_pad2d_args`, `check_conv2d_args`, `check_pool2d_args`), so the
Tensor ops in cnn.py and the notebook API in steps.py reject bad input with the same messages.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy as np

from .parallel import run_in_chunks

# The pool and pad kernels walk the batch in cache-sized blocks (parallel.BLOCK_BYTES): measured 10-30% faster
# than whole-batch passes. They are bound by memory bandwidth, and on this shared 2-core machine two threads
# measured slower than one in each A/B run (max pool forward W3 float32: 0.71 ms on one thread, 0.77 ms on
# two; (128, 32, 32, 64): 3.05 vs 3.11 ms), so they take threads only above this input size, in effect never;
# tests lower it to check the threaded path.
COPY_PARALLEL_BYTES = 1 << 40

TIES = ("first", "split", "all")

# ---------------------------------------------------------------- argument normalizing and checks


def _is_int(value) -> bool:
    """True for Python/numpy integers; bool is not an integer here."""
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def as_positive_pair(op: str, name: str, value) -> tuple[int, int]:
    """`3` -> (3, 3); `(2, 3)` -> (2, 3). Each entry must be a positive int (not bool)."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(_is_int(v) and v > 0 for v in pair):
        raise TypeError(f"{op}: {name} must be a positive int or a pair of positive ints (rows, cols), "
                        f"got {value!r}")
    return int(pair[0]), int(pair[1])


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
    """The (f_h, f_w) window must fit in the padded input."""
    padded = (x_shape[1] + sum(pads[0]), x_shape[2] + sum(pads[1]))
    if f[0] > padded[0] or f[1] > padded[1]:
        raise ValueError(f"{op}: window {f[0]}x{f[1]} is larger than the padded input {padded[0]}x{padded[1]} "
                         f"(x.shape={tuple(x_shape)}, pad={pads})")


def check_conv2d_args(x, W, b, stride, pad):
    """Check conv2d's inputs; return (stride, pads) as ((s_h, s_w), ((top, bottom), (left, right)))."""
    check_images("conv2d", "x", x)
    if not isinstance(W, np.ndarray) or W.ndim != 4:
        raise ValueError(f"conv2d: W must be a 4-D array (f_h, f_w, n_C_prev, n_C), "
                         f"got {getattr(W, 'shape', type(W).__name__)}")
    if x.shape[3] != W.shape[2]:
        hint = ""
        if x.shape[1] == W.shape[2]:
            hint = "; x looks NCHW (channels at axis 1): pass x.transpose(0, 2, 3, 1)"
        raise ValueError(f"conv2d: x has {x.shape[3]} channels (axis 3) but W expects {W.shape[2]} "
                         f"(W.shape={W.shape}, x.shape={x.shape}){hint}")
    n_C = W.shape[3]
    if b is not None and (not isinstance(b, np.ndarray) or b.shape not in ((n_C,), (1, 1, 1, n_C))):
        raise ValueError(f"conv2d: b must have shape ({n_C},) or (1, 1, 1, {n_C}) to match W.shape={W.shape}, "
                         f"got {getattr(b, 'shape', type(b).__name__)}")
    stride = as_positive_pair("conv2d", "stride", stride)
    f = W.shape[:2]
    pads = as_pads("conv2d", pad, x.shape[1:3], f, stride)
    _check_window_fits("conv2d", x.shape, f, pads)
    return stride, pads


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
    """The (m, n_H, n_W, n_C) view of xp that window offset (i, j) touches for every output position."""
    (s_h, s_w), (n_H, n_W) = stride, out_hw
    return xp[:, i:i + s_h * (n_H - 1) + 1:s_h, j:j + s_w * (n_W - 1) + 1:s_w, :]


def _window_offsets(f):
    """Row-major (i, j) offsets inside an (f_h, f_w) window."""
    return [(i, j) for i in range(f[0]) for j in range(f[1])]


def _pooled_hw(x_shape, f, stride) -> tuple[int, int]:
    return output_size(x_shape[1], f[0], 0, stride[0]), output_size(x_shape[2], f[1], 0, stride[1])


# ---------------------------------------------------------------- conv2d


class ConvSaved(NamedTuple):
    """What conv2d_backward needs: the im2col matrix of the padded input and the forward's arguments."""
    cols: np.ndarray | None  # (m * n_H * n_W, f_h * f_w * n_C_prev) rows (i, h, w), cols (i, j, c); None: no dW
    W: np.ndarray           # (f_h, f_w, n_C_prev, n_C)
    b_shape: tuple | None   # b's shape, so db comes back in it
    x_shape: tuple          # (m, n_H_prev, n_W_prev, n_C_prev)
    out_shape: tuple        # (m, n_H, n_W, n_C)
    stride: tuple
    pads: tuple


def im2col(xp: np.ndarray, f, stride) -> np.ndarray:
    """Padded (m, H, W, C) -> (m * n_H * n_W, f_h * f_w * C): every window flattened as one row."""
    m, H, W, C = xp.shape
    n_H, n_W = _pooled_hw(xp.shape, f, stride)
    s_m, s_H, s_W, s_C = xp.strides
    windows = np.lib.stride_tricks.as_strided(
        xp, shape=(m, n_H, n_W, f[0], f[1], C),
        strides=(s_m, s_H * stride[0], s_W * stride[1], s_H, s_W, s_C), writeable=False)
    return windows.reshape(m * n_H * n_W, f[0] * f[1] * C)


def conv2d_saved(x: np.ndarray, W: np.ndarray, b, stride, pads) -> ConvSaved:
    """Everything conv2d_backward needs (im2col of the padded x), without the forward GEMM."""
    dtype = _float_dtype(x, W)
    xp = pad_forward(x.astype(dtype, copy=False), pads)
    f = W.shape[:2]
    n_H, n_W = _pooled_hw(xp.shape, f, stride)
    return ConvSaved(im2col(xp, f, stride), W.astype(dtype, copy=False), None if b is None else b.shape,
                     x.shape, (x.shape[0], n_H, n_W, W.shape[3]), stride, pads)


def conv2d_forward(x: np.ndarray, W: np.ndarray, b, stride, pads):
    """Z[i, h, w, c] = sum(window(i, h, w) * W[..., c]) + b[c], as one GEMM on the im2col matrix.

    x (m, n_H_prev, n_W_prev, n_C_prev), W (f_h, f_w, n_C_prev, n_C), b None / (n_C,) / (1, 1, 1, n_C),
    stride (s_h, s_w), pads ((top, bottom), (left, right)) -> (out (m, n_H, n_W, n_C), saved)
    """
    saved = conv2d_saved(x, W, b, stride, pads)
    out = saved.cols @ saved.W.reshape(-1, W.shape[3])
    if b is not None:
        out += b.reshape(-1).astype(out.dtype, copy=False)
    return out.reshape(saved.out_shape), saved


def conv2d_input_grad(dout2d: np.ndarray, saved: ConvSaved) -> np.ndarray:
    """dx (m, n_H_prev, n_W_prev, C) from dout2d (m * n_H * n_W, n_C): col2im one window offset at a time.

    For offset (i, j), dout2d @ W[i, j].T is the gradient of every window's (i, j) entry; it lands on the
    strided slice of the padded input that offset touches, and overlapping windows add up. One small GEMM per
    offset instead of one big (m * n_H * n_W, f_h * f_w * C) matrix: measured as fast, and far less memory.
    With a column stride > 1 and few channels (C < 8) the slices' contiguous runs would be only C long, so
    conv2d_input_grad_channels_first takes over.
    """
    m, H, W, C = saved.x_shape
    if saved.stride[1] > 1 and C < 8:
        return conv2d_input_grad_channels_first(dout2d, saved)
    (top, bottom), (left, right) = saved.pads
    dxp = np.zeros((m, top + H + bottom, left + W + right, C), dtype=dout2d.dtype)
    for i, j in _window_offsets(saved.W.shape[:2]):
        window_grad = (dout2d @ saved.W[i, j].T).reshape(*saved.out_shape[:3], C)
        _offset_slice(dxp, i, j, saved.stride, saved.out_shape[1:3])[...] += window_grad
    return unpad(dxp, saved.pads)


def conv2d_input_grad_channels_first(dout2d: np.ndarray, saved: ConvSaved) -> np.ndarray:
    """conv2d_input_grad for few channels: col2im into channels-first memory, one GEMM per kernel row.

    W[i] (f_w * C, n_C) @ dout2d.T holds kernel row i's window gradients as (f_w, C, m, n_H, n_W): per offset
    and channel, whole (m, n_H, n_W) planes. The padded buffer is a (m, H, W, C) view of (C, m, H, W) memory,
    so each offset's strided add runs along output rows instead of C-long runs; one copy makes dx channels-last.
    Measured on x (16, 64, 64, 3), W (5, 5, 3, 32), stride 2, float64: 11.8 -> 5.2 ms; extra memory 1 / f_h of
    the im2col matrix.
    """
    m, H, W, C = saved.x_shape
    (top, bottom), (left, right) = saved.pads
    f_h, f_w, _, n_C = saved.W.shape
    dxp = np.zeros((C, m, top + H + bottom, left + W + right), dtype=dout2d.dtype).transpose(1, 2, 3, 0)
    for i in range(f_h):
        row_grads = (saved.W[i].reshape(f_w * C, n_C) @ dout2d.T).reshape(f_w, C, *saved.out_shape[:3])
        for j in range(f_w):
            window_grad = row_grads[j].transpose(1, 2, 3, 0)  # (m, n_H, n_W, C) view
            _offset_slice(dxp, i, j, saved.stride, saved.out_shape[1:3])[...] += window_grad
    return np.ascontiguousarray(unpad(dxp, saved.pads))


def conv2d_backward(dout: np.ndarray, saved: ConvSaved, need_dx=True, need_dW=True, need_db=True):
    """dout (m, n_H, n_W, n_C) -> (dx like x, dW like W, db like b); None where not needed (or b is None)."""
    dout = dense(dout)
    n_C = saved.W.shape[3]
    dout2d = dout.reshape(-1, n_C).astype(saved.W.dtype, copy=False)
    dx = dW = db = None
    if need_dx:
        dx = conv2d_input_grad(dout2d, saved)
    if need_dW:
        dW = (saved.cols.T @ dout2d).reshape(saved.W.shape)
    if need_db and saved.b_shape is not None:
        db = dout2d.sum(axis=0).reshape(saved.b_shape)
    return dx, dW, db


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
    """
    windows = list(_pool_windows(saved.x, saved.f, saved.stride))
    if saved.ties == "split":
        count = sum((window == saved.out).astype(saved.out.dtype) for _, _, window in windows)
    taken = np.zeros(saved.out.shape, dtype=bool)
    for i, j, window in windows:
        is_max = window == saved.out
        if saved.ties == "first":
            np.greater(is_max, taken, out=is_max)  # a max that no earlier offset took
            np.logical_or(taken, is_max, out=taken)
            yield i, j, is_max
        elif saved.ties == "split":
            yield i, j, is_max / count
        else:
            yield i, j, is_max


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


def avg_pool_forward(x: np.ndarray, f, stride):
    """out[i, h, w, c] = mean of the (f_h, f_w) window at (h * s_h, w * s_w). x (m, H, W, C) -> (out, saved)."""
    out = _reduce_windows(x, f, stride, np.add, divisor=f[0] * f[1])
    return out, PoolSaved(x, out, f, stride, None)


def avg_pool_backward(dout: np.ndarray, saved: PoolSaved) -> np.ndarray:
    """dout (m, n_H, n_W, C) -> dx (m, H, W, C): the notebook's distribute_value, dz / (f_h * f_w) to each entry."""
    dout = dense(dout)  # a broadcast view (the gradient of a sum): W2 float32 measured 0.80 -> 0.64 ms
    share = 1.0 / (saved.f[0] * saved.f[1])  # a Python float keeps dout's dtype and takes numpy's fast scalar loop
    return _scatter_windows(dout, saved, lambda part: ((i, j, share) for i, j in _window_offsets(part.f)))
