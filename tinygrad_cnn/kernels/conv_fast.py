"""conv2d's fast paths: the kernels conv.conv_path picks instead of the canonical ones in conv.py where they apply.

Each computes exactly what its canonical counterpart computes (the tests check every path against the loops in
reference.py); they only move the same numbers in a different order, chosen because it measured faster.

    grouped_im2col, grouped_forward, grouped_dW, grouped_dA_prev   groups > 1: each group's GEMM in one batched
                                          matmul over a group-major im2col, instead of a Python loop over groups
    flipped_conv(W, pads, dilation)       stride 1: dA_prev as a conv of dZ (conv.py runs it with conv2d_forward)
    dA_prev_channels_first                a column stride > 1 and few channels: col2im into channels-first memory

Names as in conv.py: A_prev (m, n_H_prev, n_W_prev, n_C_prev), W (f_h, f_w, n_C_prev // groups, n_C),
Z and dZ (m, n_H, n_W, n_C), cols the im2col matrix.
May import: numpy and the sibling kernel modules checks and pad (not conv, which imports this one).
"""

from __future__ import annotations

import numpy as np

from .checks import dilated_size, output_hw
from .pad import offset_slice, pad_forward, unpad, window_offsets

# dA_prev_channels_first walks the batch in blocks of about this many bytes of dZ (not of im2col matrix): its
# per-offset passes over whole (m, n_H, n_W) planes gain from more images per block.
CHANNELS_FIRST_BLOCK_BYTES = 1 << 20

# ---------------------------------------------------------------- groups: one batched GEMM


def grouped_im2col(A_prev_pad: np.ndarray, f, stride, dilation=(1, 1), *, groups: int) -> np.ndarray:
    """conv.im2col per group: (groups, m * n_H * n_W, f_h * f_w * n_C_prev // groups), group g's windows over its
    own channels; one gather moves the group axis first."""
    m, _, _, C = A_prev_pad.shape
    n_H, n_W = output_hw(A_prev_pad.shape, dilated_size(f, dilation), stride)
    s_m, s_H, s_W, s_C = A_prev_pad.strides
    windows = np.lib.stride_tricks.as_strided(
        A_prev_pad, shape=(m, n_H, n_W, f[0], f[1], groups, C // groups),
        strides=(s_m, s_H * stride[0], s_W * stride[1], s_H * dilation[0], s_W * dilation[1], s_C * (C // groups),
                 s_C), writeable=False)
    return windows.transpose(5, 0, 1, 2, 3, 4, 6).reshape(groups, m * n_H * n_W, f[0] * f[1] * (C // groups))


def grouped_weights(W: np.ndarray, groups: int) -> np.ndarray:
    """W (f_h, f_w, C_g, n_C) -> (groups, f_h * f_w * C_g, n_C // groups): group g's filters as one matrix."""
    f_h, f_w, C_g, n_C = W.shape
    return W.reshape(f_h * f_w * C_g, groups, n_C // groups).transpose(1, 0, 2)


def _ungroup(out3: np.ndarray) -> np.ndarray:
    """(groups, rows, k) -> (rows, groups * k), C-contiguous: the per-group results side by side, group-major."""
    return np.ascontiguousarray(out3.transpose(1, 0, 2)).reshape(out3.shape[1], -1)


def _group(a2d: np.ndarray, groups: int) -> np.ndarray:
    """(rows, groups * k) -> (groups, rows, k) view: the inverse of _ungroup."""
    return a2d.reshape(a2d.shape[0], groups, -1).transpose(1, 0, 2)


def _per_group_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(groups, n, k) @ (groups, k, p) -> (groups, n, p). With k = 1 (one filter per group, as in a depthwise
    col2im) a broadcast multiply, which runs much faster than matmul there."""
    return a * b if a.shape[2] == 1 else a @ b


def grouped_forward(A_prev: np.ndarray, W: np.ndarray, b, stride, pads, dilation=(1, 1), Z=None, *, groups: int):
    """conv.conv_forward with groups: each group's windows times its own filters -> (Z, cols), cols grouped."""
    A_prev_pad = pad_forward(A_prev, pads)
    n_H, n_W = output_hw(A_prev_pad.shape, dilated_size(W.shape[:2], dilation), stride)
    cols = grouped_im2col(A_prev_pad, W.shape[:2], stride, dilation, groups=groups)
    Z_rows = _ungroup(_per_group_matmul(cols, grouped_weights(W, groups)))
    if b is not None:
        Z_rows += b.reshape(-1)
    if Z is None:
        return Z_rows.reshape(A_prev.shape[0], n_H, n_W, W.shape[3]), cols
    Z[...] = Z_rows.reshape(Z.shape)
    return Z, cols


def grouped_dW(cols: np.ndarray, dZ: np.ndarray, W_shape, *, groups: int) -> np.ndarray:
    """conv.conv_dW with groups: per group cols.T @ dZ, the groups' filters side by side."""
    dZ_rows = dZ.reshape(-1, W_shape[3])
    return _ungroup(_per_group_matmul(cols.transpose(0, 2, 1), _group(dZ_rows, groups))).reshape(W_shape)


def grouped_dA_prev(dZ: np.ndarray, W: np.ndarray, A_prev_shape, stride, pads, dilation=(1, 1), *, groups: int):
    """conv.conv_dA_prev with groups. The padded buffer is group-major, (groups, m, H, W, n_C_prev // groups), so
    each group's GEMM result lands in contiguous runs; one copy at the end makes it channels-last."""
    m, n_H_prev, n_W_prev, C = A_prev_shape
    (top, bottom), (left, right) = pads
    f_h, f_w, _, n_C = W.shape
    dA_prev_pad = np.zeros((groups, m, top + n_H_prev + bottom, left + n_W_prev + right, C // groups), dZ.dtype)
    dZ_groups = _group(dZ.reshape(-1, n_C), groups)
    for i, j in window_offsets((f_h, f_w)):
        W_ij = W[i, j].reshape(-1, groups, n_C // groups).transpose(1, 2, 0)  # (groups, n_C / groups, C / groups)
        window_grad = _per_group_matmul(dZ_groups, W_ij).reshape(groups, *dZ.shape[:3], C // groups)
        offset_slice(dA_prev_pad, i * dilation[0], j * dilation[1], stride, dZ.shape[1:3])[...] += window_grad
    channels_last = dA_prev_pad.transpose(1, 2, 3, 0, 4).reshape(m, *dA_prev_pad.shape[2:4], C)
    return unpad(channels_last, pads)


# ---------------------------------------------------------------- dA_prev as a conv (stride 1)


def flipped_conv(W: np.ndarray, pads, dilation):
    """(W_flipped, dZ_pads): for stride 1 and one group, dA_prev = conv2d(dZ, W_flipped, stride 1, dZ_pads,
    dilation), the kernel flipped in both window axes with its channel axes swapped, (f_h, f_w, n_C, n_C_prev),
    and dZ padded by each side's window reach d * (f - 1) less that side's pad."""
    f_h, f_w = W.shape[:2]
    (d_h, d_w), ((top, bottom), (left, right)) = dilation, pads
    dZ_pads = ((d_h * (f_h - 1) - top, d_h * (f_h - 1) - bottom), (d_w * (f_w - 1) - left, d_w * (f_w - 1) - right))
    return np.ascontiguousarray(W[::-1, ::-1].transpose(0, 1, 3, 2)), dZ_pads


# ---------------------------------------------------------------- channels-first col2im (few channels)


def dA_prev_channels_first(dZ: np.ndarray, W: np.ndarray, A_prev_shape, stride, pads, dilation=(1, 1)):
    """conv.conv_dA_prev for one group, into channels-first memory, one GEMM per kernel row.

    W[i] (f_w * n_C_prev, n_C) @ dZ.T holds kernel row i's window gradients as (f_w, n_C_prev, m, n_H, n_W): per
    offset and channel, whole (m, n_H, n_W) planes. The padded buffer is a (m, H, W, n_C_prev) view of
    (n_C_prev, m, H, W) memory, so each offset's strided add runs along output rows instead of n_C_prev-long runs;
    one copy makes dA_prev channels-last. Extra memory: 1 / f_h of the im2col matrix.
    """
    m, n_H_prev, n_W_prev, C = A_prev_shape
    (top, bottom), (left, right) = pads
    f_h, f_w, _, n_C = W.shape
    dA_prev_pad = np.zeros((C, m, top + n_H_prev + bottom, left + n_W_prev + right), dZ.dtype).transpose(1, 2, 3, 0)
    dZ_rows = dZ.reshape(-1, n_C)
    for i in range(f_h):
        row_grads = (W[i].reshape(f_w * C, n_C) @ dZ_rows.T).reshape(f_w, C, *dZ.shape[:3])
        for j in range(f_w):
            window_grad = row_grads[j].transpose(1, 2, 3, 0)  # (m, n_H, n_W, C) view
            offset_slice(dA_prev_pad, i * dilation[0], j * dilation[1], stride, dZ.shape[1:3])[...] += window_grad
    return np.ascontiguousarray(unpad(dA_prev_pad, pads))
