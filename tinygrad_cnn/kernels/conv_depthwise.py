"""Depthwise conv2d (groups = n_C_prev = n_C: one filter per channel) by shift-and-accumulate: a fast path
conv.conv_path may pick.

A depthwise conv mixes no channels, so a GEMM has nothing to contract but the f_h * f_w taps: im2col would copy the
input f_h * f_w times to multiply it by a vector. Here each tap (i, j) instead multiplies the view of the padded
input it touches (pad.offset_slice: no copy) by W[i, j], and the products add up:

    Z[n, h, w, c]       = sum over taps of A_prev_pad[n, s_h h + d_h i, s_w w + d_w j, c] * W[i, j, 0, c]   forward
    dW[i, j, 0, c]      = sum over (n, h, w) of the same view * dZ[n, h, w, c]                              backward
    dA_prev (stride 1)  = the same forward, of dZ padded by the window's reach, with the flipped taps

dW reads A_prev itself: each tap's sum runs over the outputs whose tap lands inside A_prev (the padding adds 0).

One np.einsum runs all of a forward's taps: it multiplies and accumulates in one pass per tap, where ufuncs would
take two (a product, then a sum). With stride 1 along the columns, an image row's (n_W, C) entries are one
contiguous run in every view, so the taps are tiled along n_W and einsum's inner loop runs n_W * C long instead of
C. A column stride > 1 keeps the (n_W, C) axes apart; dA_prev then scatters each tap's dZ * W[i, j] back by strided
adds, as conv.conv_dA_prev does.

    depthwise_forward(A_prev, W, b, stride, pads, dilation, Z)   -> (Z, None): conv.conv_forward's role
    depthwise_dW(A_prev, dZ, W_shape, stride=, pads=, dilation=) -> dW: conv.conv_dW's role, from A_prev itself
    depthwise_dA_prev(dZ, W, A_prev_shape, stride, pads, dilation)   conv.conv_dA_prev's role
    applies(W_shape, x_shape, groups)                            one filter per channel

Names as in conv.py: A_prev (m, n_H_prev, n_W_prev, C), W (f_h, f_w, 1, C), Z and dZ (m, n_H, n_W, C).
May import: numpy and the sibling kernel modules blocks, checks and pad.
"""

from __future__ import annotations

import numpy as np

from .blocks import batch_blocks, images_per_block, run_shares
from .checks import dilated_size, output_hw
from .pad import offset_slice, unpad, window_offsets

BLOCK_BYTES = 1 << 20  # the batch goes in blocks of about this much padded input
# set_num_threads(n >= 2): the batch on n threads from this much input (blocks.run_shares); below it, handing a
# share to a thread measured slower than the calling thread doing it.
PARALLEL_BYTES = 1 << 20


def applies(W_shape, x_shape, groups: int) -> bool:
    """Depthwise: as many groups as input channels, each with one input channel and one filter."""
    return groups > 1 and W_shape[2] == 1 and x_shape[3] == groups == W_shape[3]


def _taps(A_prev_pad: np.ndarray, f, stride, dilation, out_hw) -> np.ndarray:
    """The view of A_prev_pad (m, H, W, C) every tap reads: (m, n_H, f_h, f_w, n_W * C) when the column stride is 1
    (an output row's entries one run), else (m, n_H, n_W, f_h, f_w, C). No copy."""
    (s_h, s_w), (d_h, d_w), (n_H, n_W) = stride, dilation, out_hw
    m, C = A_prev_pad.shape[0], A_prev_pad.shape[3]
    s_m, s_H, s_W, s_C = A_prev_pad.strides
    if s_w == 1 and s_C == A_prev_pad.itemsize and s_W == C * s_C:
        return np.lib.stride_tricks.as_strided(A_prev_pad, (m, n_H, f[0], f[1], n_W * C),
                                               (s_m, s_H * s_h, s_H * d_h, s_W * d_w, s_C), writeable=False)
    return np.lib.stride_tricks.as_strided(A_prev_pad, (m, n_H, n_W, f[0], f[1], C),
                                           (s_m, s_H * s_h, s_W * s_w, s_H * d_h, s_W * d_w, s_C), writeable=False)


def _rows(a: np.ndarray) -> np.ndarray:
    """(m, n_H, n_W, C) C-contiguous -> the (m, n_H, n_W * C) view _taps' row layout matches."""
    return a.reshape(a.shape[0], a.shape[1], -1)


def _tiled(v: np.ndarray, Z: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """Per-channel values v (..., C) as _taps' layout reads them: repeated n_W times along the rows (row layout)."""
    return np.tile(v, (1,) * (v.ndim - 1) + (Z.shape[2],)) if taps.ndim == 5 else v


def _accumulate_taps(taps: np.ndarray, W: np.ndarray, Z: np.ndarray) -> None:
    """Z = the sum over taps of each tap's view times its weights: taps from _taps, W (f_h, f_w, 1, C), Z C-contiguous
    (m, n_H, n_W, C)."""
    if taps.ndim == 5:  # rows: each tap's C weights repeated n_W times along the row
        np.einsum("nhijk,ijk->nhk", taps, _tiled(W[:, :, 0, :], Z, taps), out=_rows(Z))
    else:
        np.einsum("nhwijc,ijc->nhwc", taps, W[:, :, 0, :], out=Z)


def depthwise_forward(A_prev: np.ndarray, W: np.ndarray, b, stride, pads, dilation=(1, 1), Z=None):
    """conv.conv_forward for one filter per channel -> (Z (m, n_H, n_W, C), None); no cols (the taps are views).
    From PARALLEL_BYTES of input with set_num_threads(n >= 2), the batch in n shares on n threads (run_shares)."""
    m, H, W_in, C = A_prev.shape
    (top, bottom), (left, right) = pads
    out_hw = output_hw((m, H + top + bottom, W_in + left + right), dilated_size(W.shape[:2], dilation), stride)
    if Z is None:
        Z = np.empty((m, *out_hw, C), dtype=W.dtype)
    run_shares(lambda s: _forward_share(A_prev[s], W, b, stride, pads, dilation, Z[s]), m, A_prev.nbytes,
               PARALLEL_BYTES)
    return Z, None


def _forward_share(A_prev: np.ndarray, W: np.ndarray, b, stride, pads, dilation, Z: np.ndarray) -> None:
    """Z (m, n_H, n_W, C), written in place, from A_prev (m, H, W, C): a block of images at a time, padded into one
    buffer whose border is zeroed once."""
    m, H, W_in, C = A_prev.shape
    (top, bottom), (left, right) = pads
    per_block = min(m, images_per_block(A_prev[:1].nbytes, BLOCK_BYTES))
    padded = np.zeros((per_block, top + H + bottom, left + W_in + right, C), dtype=W.dtype)
    for s in batch_blocks(m, per_block):
        block = padded[:s.stop - s.start]
        block[:, top:top + H, left:left + W_in] = A_prev[s]
        taps = _taps(block, W.shape[:2], stride, dilation, Z.shape[1:3])
        _accumulate_taps(taps, W, Z[s])
        if b is not None:
            (_rows(Z[s]) if taps.ndim == 5 else Z[s])[...] += _tiled(b.reshape(-1), Z, taps)


def _valid(n_out: int, n_in: int, s: int, d: int, k: int, before: int) -> tuple[int, int]:
    """The outputs [lo, hi) whose tap k reads inside the input (not the padding): 0 <= s * o + d * k - before < n_in."""
    lo = max(0, -(-(before - d * k) // s))
    hi = min(n_out, (n_in - 1 + before - d * k) // s + 1)
    return lo, max(lo, hi)


def depthwise_dW(A_prev: np.ndarray, dZ: np.ndarray, W_shape, *, stride, pads, dilation) -> np.ndarray:
    """conv.conv_dW for one filter per channel, from A_prev (m, n_H_prev, n_W_prev, C) itself: per tap, the sum over
    (n, h, w) of its view times dZ, over the outputs whose tap reads inside A_prev (the padding adds zeros). From
    PARALLEL_BYTES of input with set_num_threads(n >= 2), each of n threads sums its share of the batch."""
    shares = run_shares(lambda s: _dW_share(A_prev[s], dZ[s], W_shape, stride, pads, dilation), dZ.shape[0],
                        A_prev.nbytes, PARALLEL_BYTES)
    return shares[0] if len(shares) == 1 else np.sum(shares, axis=0)


def _dW_share(A_prev: np.ndarray, dZ: np.ndarray, W_shape, stride, pads, dilation) -> np.ndarray:
    """depthwise_dW summed over the images of A_prev and dZ, on the calling thread."""
    f_h, f_w, _, C = W_shape
    (s_h, s_w), (d_h, d_w), ((top, _), (left, _)) = stride, dilation, pads
    (H, W_in), (n_H, n_W) = A_prev.shape[1:3], dZ.shape[1:3]
    dW = np.zeros(W_shape, dtype=dZ.dtype)
    for i, j in window_offsets((f_h, f_w)):
        (h0, h1), (w0, w1) = _valid(n_H, H, s_h, d_h, i, top), _valid(n_W, W_in, s_w, d_w, j, left)
        if h0 == h1 or w0 == w1:
            continue
        rows = slice(s_h * h0 + d_h * i - top, s_h * (h1 - 1) + d_h * i - top + 1, s_h)
        cols = slice(s_w * w0 + d_w * j - left, s_w * (w1 - 1) + d_w * j - left + 1, s_w)
        x_tap, dZ_tap = A_prev[:, rows, cols], dZ[:, h0:h1, w0:w1]
        if s_w == 1 and x_tap.strides[2] == C * x_tap.itemsize == C * x_tap.strides[3]:
            # each row's (w, c) entries one run: einsum's inner loop (w1 - w0) * C long
            m, r = x_tap.shape[:2]
            dW[i, j, 0] = np.einsum("nhk,nhk->k", x_tap.reshape(m, r, -1), dZ_tap.reshape(m, r, -1)).reshape(
                -1, C).sum(0)
        else:
            dW[i, j, 0] = np.einsum("nhwc,nhwc->c", x_tap, dZ_tap)
    return dW


def depthwise_dA_prev(dZ: np.ndarray, W: np.ndarray, A_prev_shape, stride, pads, dilation=(1, 1)) -> np.ndarray:
    """conv.conv_dA_prev for one filter per channel. Stride 1, no pad beyond the window's reach: the forward of dZ
    padded by reach - pad with the taps flipped. Else each tap's dZ * W[i, j] added onto the slice it came from."""
    m, n_H_prev, n_W_prev, C = A_prev_shape
    (top, bottom), (left, right) = pads
    reach = dilated_size(W.shape[:2], dilation)
    dZ_pads = ((reach[0] - 1 - top, reach[0] - 1 - bottom), (reach[1] - 1 - left, reach[1] - 1 - right))
    if tuple(stride) == (1, 1) and min(min(p) for p in dZ_pads) >= 0:
        return depthwise_forward(dZ, W[::-1, ::-1], None, (1, 1), dZ_pads, dilation)[0]
    dA_prev_pad = np.zeros((m, top + n_H_prev + bottom, left + n_W_prev + right, C), dtype=dZ.dtype)
    product = np.empty_like(dZ)
    for i, j in window_offsets(W.shape[:2]):
        offset_slice(dA_prev_pad, i * dilation[0], j * dilation[1], stride, dZ.shape[1:3])[...] += np.multiply(
            dZ, W[i, j, 0], out=product)
    return unpad(dA_prev_pad, pads)
