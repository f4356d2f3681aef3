"""Padding, and the views of a padded batch that the window offsets read: the memory moves conv and pool share.

    pad_forward(x, pads, value)              (m, n_H, n_W, C) -> (m, top + n_H + bottom, left + n_W + right, C)
    unpad(xp, pads)                          its inverse, a view; also the backward of padding
    window_offsets(f)                        the (i, j) offsets inside an (f_h, f_w) window, row-major
    offset_slice(xp, i, j, stride, out_hw)   the view of xp that offset (i, j) touches for every output position

May import: numpy and the sibling kernel module blocks.
"""

from __future__ import annotations

import numpy as np

from .blocks import run_blocks


def pad_forward(x: np.ndarray, pads, value: float = 0.0) -> np.ndarray:
    """(m, n_H, n_W, n_C) -> (m, top + n_H + bottom, left + n_W + right, n_C), filled with `value`; x itself when
    pads are all 0. The batch goes in cache-sized blocks (blocks.run_blocks)."""
    (top, bottom), (left, right) = pads
    if top == bottom == left == right == 0:
        return x
    m, n_H, n_W, n_C = x.shape
    out = np.empty((m, top + n_H + bottom, left + n_W + right, n_C), dtype=x.dtype)

    def pad_block(s):
        out[s] = value
        out[s, top:top + n_H, left:left + n_W, :] = x[s]
    run_blocks(pad_block, m, x[:1].nbytes)
    return out


def unpad(xp: np.ndarray, pads) -> np.ndarray:
    """Inverse of pad_forward (a view): drop the padded border. Also the backward of padding."""
    (top, bottom), (left, right) = pads
    return xp[:, top:xp.shape[1] - bottom, left:xp.shape[2] - right, :]


def window_offsets(f) -> list:
    """Row-major (i, j) offsets inside an (f_h, f_w) window."""
    return [(i, j) for i in range(f[0]) for j in range(f[1])]


def offset_slice(xp: np.ndarray, i: int, j: int, stride, out_hw) -> np.ndarray:
    """The (..., n_H, n_W, n_C) view of xp (..., H, W, n_C) that window offset (i, j) touches for every output
    position (h, w): xp[..., i + h * s_h, j + w * s_w, :]. The leading axes are (m,) or (groups, m)."""
    (s_h, s_w), (n_H, n_W) = stride, out_hw
    return xp[..., i:i + s_h * (n_H - 1) + 1:s_h, j:j + s_w * (n_W - 1) + 1:s_w, :]
