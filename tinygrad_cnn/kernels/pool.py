"""Max and average pooling (NHWC), forward and backward.

Layout: x (m, n_H_prev, n_W_prev, n_C) -> out (m, n_H, n_W, n_C), windows (f_h, f_w) placed (s_h, s_w) apart,
n_H = floor((n_H_prev - f_h) / s_h) + 1. Each forward returns (out, saved); the backward takes dout and saved.
The forwards reduce the window rows, then the window columns, with strided slices, a block of images at a
time (blocks.run_blocks); the backwards run one strided slice per window offset (pad.offset_slice). There is no
Python loop over rows, columns or channels. Strided slices run faster than reducing a (m, n_H, f_h, n_W, f_w, C)
reshape, even for windows that do not overlap.

May import: numpy and the sibling kernel modules (blocks, checks, pad).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .blocks import BLOCK_BYTES, run_blocks
from .checks import dense, float_dtype, output_hw
from .pad import offset_slice, window_offsets

# set_num_threads(n >= 2): the blocks on n threads (blocks.run_blocks) from four blocks of input; with two or three,
# handing a share to a thread measured no faster than one thread walking them all.
PARALLEL_BYTES = 4 * BLOCK_BYTES


class PoolSaved(NamedTuple):
    """What the pool backwards need."""
    x: np.ndarray           # the input (m, n_H_prev, n_W_prev, n_C)
    out: np.ndarray         # the pooled output (m, n_H, n_W, n_C)
    f: tuple
    stride: tuple
    ties: str | None        # max pool only


def _pool_windows(x, f, stride):
    """Yield (i, j, view): for each window offset, row-major, the (m, n_H, n_W, C) view of x it touches."""
    out_hw = output_hw(x.shape, f, stride)
    for i, j in window_offsets(f):
        yield i, j, offset_slice(x, i, j, stride, out_hw)


def _reduce_windows(x, f, stride, combine, divisor=None):
    """(m, n_H, n_W, C): combine(...) of the windows' entries, e.g. np.maximum, divided by divisor if given.

    max and sum are separable: the window rows first (f_h - 1 passes over (m, n_H, n_W_prev, C), each row a
    contiguous run), then the window columns of that (f_w - 1 passes), f_h + f_w - 2 passes in all instead of one
    per window offset. A block of images at a time.
    """
    (f_h, f_w), (s_h, s_w) = f, stride
    n_H, n_W = output_hw(x.shape, f, stride)
    out = np.empty((x.shape[0], n_H, n_W, x.shape[3]), dtype=float_dtype(x))

    def reduce_block(s):
        rows = [x[s, i:i + s_h * (n_H - 1) + 1:s_h] for i in range(f_h)]
        by_rows = rows[0] if f_h == 1 else combine(rows[0], rows[1], dtype=out.dtype)
        for row in rows[2:]:
            combine(by_rows, row, out=by_rows)
        cols = [by_rows[:, :, j:j + s_w * (n_W - 1) + 1:s_w] for j in range(f_w)]
        part = out[s]
        if f_w == 1:
            np.copyto(part, cols[0])
        else:
            combine(cols[0], cols[1], out=part)
        for col in cols[2:]:
            combine(part, col, out=part)
        if divisor is not None:
            part /= divisor
    run_blocks(reduce_block, x.shape[0], x[:1].nbytes, PARALLEL_BYTES)
    return out


def max_pool_forward(x: np.ndarray, f, stride, ties="first"):
    """out[i, h, w, c] = max of the (f_h, f_w) window at (h * s_h, w * s_w). x (m, H, W, C) -> (out, saved)."""
    x = x.astype(float_dtype(x), copy=False)
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
    taken, is_max = np.zeros(saved.out.shape, dtype=bool), np.empty(saved.out.shape, dtype=bool)
    weight = np.empty(saved.out.shape, dtype=saved.out.dtype)  # the mask as numbers: dout * weight needs no cast
    for k, (i, j, window) in enumerate(windows):
        if saved.ties == "first" and k == len(windows) - 1 and not has_nan:
            np.logical_not(taken, out=is_max)  # a window without NaN holds its max: the last offset if none before
        else:
            _is_window_max(window, saved.out, has_nan, is_max)
        if saved.ties == "first":
            np.greater(is_max, taken, out=is_max)  # a max that no earlier offset took
            np.logical_or(taken, is_max, out=taken)
        if saved.ties == "split":
            yield i, j, is_max / count
        else:
            np.copyto(weight, is_max)
            yield i, j, weight


def _is_window_max(window: np.ndarray, out: np.ndarray, has_nan: bool, out_mask=None) -> np.ndarray:
    """Where a window offset holds its window's max; a window holding NaN has max NaN, and its NaNs are the maxima.
    Written into the bool array out_mask when given."""
    is_max = np.equal(window, out, out=out_mask)
    return np.logical_or(is_max, np.isnan(window), out=is_max) if has_nan else is_max


def _batch_part(saved: PoolSaved, s: slice) -> PoolSaved:
    """saved restricted to the images of batch slice s."""
    return saved._replace(x=saved.x[s], out=saved.out[s])


def _scatter_windows(dout, saved, weights_of):
    """dx (like saved.x) = sum over window offsets (i, j) of dout * weight(i, j), placed at that offset.

    weights_of(part) yields (i, j, weight) for a PoolSaved `part` of the batch; the batch goes in blocks.
    Windows that tile x exactly (stride == f, sizes divisible) write every entry of dx once, so dx skips the zero
    fill then.
    """
    n_H, n_W = saved.out.shape[1:3]
    tiling = saved.stride == saved.f and saved.x.shape[1:3] == (n_H * saved.f[0], n_W * saved.f[1])
    dx = (np.empty if tiling else np.zeros)(saved.x.shape, dtype=float_dtype(dout, saved.x))
    overlapping = saved.stride[0] < saved.f[0] or saved.stride[1] < saved.f[1]

    def scatter_block(s):
        part, dout_part, dx_part = _batch_part(saved, s), dout[s], dx[s]
        contribution = np.empty(part.out.shape, dtype=dx.dtype)
        for i, j, weight in weights_of(part):
            target = offset_slice(dx_part, i, j, saved.stride, (n_H, n_W))
            if overlapping:
                target += np.multiply(dout_part, weight, out=contribution)
            else:
                np.multiply(dout_part, weight, out=target)
    run_blocks(scatter_block, dx.shape[0], dx[:1].nbytes, PARALLEL_BYTES)
    return dx


def max_pool_backward(dout: np.ndarray, saved: PoolSaved) -> np.ndarray:
    """dout (m, n_H, n_W, C) -> dx (m, H, W, C): each window's gradient goes to its max per saved.ties."""
    return _scatter_windows(dout, saved, max_pool_masks)


def max_pool_gather(a: np.ndarray, saved: PoolSaved) -> np.ndarray:
    """a (like saved.x) -> (like saved.out): from each window, a's entries at the window's max, weighted as
    max_pool_backward shares the window's gradient (saved.ties). max_pool_backward's adjoint: each is the
    other's backward, so a max pool's gradients of every order are these two scatters and gathers."""
    out = np.zeros(saved.out.shape, dtype=float_dtype(a, saved.x))
    for i, j, weight in max_pool_masks(saved):
        out += offset_slice(a, i, j, saved.stride, saved.out.shape[1:3]) * weight
    return out


def avg_pool_forward(x: np.ndarray, f, stride):
    """out[i, h, w, c] = mean of the (f_h, f_w) window at (h * s_h, w * s_w). x (m, H, W, C) -> (out, saved)."""
    out = _reduce_windows(x, f, stride, np.add, divisor=f[0] * f[1])
    return out, PoolSaved(x, out, f, stride, None)


def avg_pool_backward(dout: np.ndarray, saved: PoolSaved) -> np.ndarray:
    """dout (m, n_H, n_W, C) -> dx (m, H, W, C): the notebook's distribute_value, dz / (f_h * f_w) to each entry."""
    dout = dense(dout)  # the gradient of a sum comes as a broadcast view: a dense copy is read faster
    share = 1.0 / (saved.f[0] * saved.f[1])  # a Python float keeps dout's dtype and takes numpy's fast scalar loop
    return _scatter_windows(dout, saved, lambda part: ((i, j, share) for i, j in window_offsets(part.f)))
