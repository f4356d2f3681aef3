"""conv2d and conv_transpose2d on numpy (NHWC): the notebook's convolution, vectorized.

Layouts (the notebook's):
    A_prev  (m, n_H_prev, n_W_prev, n_C_prev)   a batch of m images, channels last
    W       (f_h, f_w, n_C_prev, n_C)           n_C filters; with groups: (f_h, f_w, n_C_prev // groups, n_C)
    b       None, (n_C,) or (1, 1, 1, n_C)
    Z, dZ   (m, n_H, n_W, n_C)                  n_H = floor((n_H_prev + top + bottom - d_h * (f_h - 1) - 1) / s_h) + 1
    stride (s_h, s_w), pads ((top, bottom), (left, right)), dilation (d_h, d_w): normalized by checks.py.

Read top to bottom:
1. The canonical conv, in the notebook's names: conv_forward is im2col and one GEMM; the backward is the notebook's
   three sums, dW and db as GEMMs over every output position at once, dA_prev as one GEMM per window offset
   scattered back by col2im. No Python loop over rows, columns or channels.
2. conv2d_forward / conv2d_backward, what the ops call: the batch in blocks, so the im2col matrix never grows with
   the batch, each phase run by the kernel that conv_path (the one dispatch) picks: the canonical one above, or a
   measured fast path from conv_fast.py, conv_winograd.py (3x3 stride 1) or conv_depthwise.py.
3. conv_transpose2d, conv2d's adjoint, on the same kernels.

May import: numpy and the sibling kernel modules (blocks, checks, conv_depthwise, conv_fast, conv_winograd, pad).
Tensors never appear here.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import NamedTuple

import numpy as np

from . import conv_depthwise as depthwise
from . import conv_fast as fast
from . import conv_winograd as winograd
from .blocks import batch_blocks, images_per_block, run_shares
from .checks import (
    as_int_pair,
    as_positive_pair,
    conv_transpose2d_output_hw,
    dense,
    dilated_size,
    float_dtype,
    output_hw,
)
from .pad import offset_slice, pad_forward, unpad, window_offsets

# ---------------------------------------------------------------- 1. the canonical conv


def im2col(A_prev_pad: np.ndarray, f, stride, dilation=(1, 1)) -> np.ndarray:
    """A_prev_pad (m, H, W, n_C_prev) -> cols (m * n_H * n_W, f_h * f_w * n_C_prev).

    Row (i, h, w) is the window Z[i, h, w] sees (the notebook's a_slice_prev), flattened in W's order (row offset,
    column offset, channel), so that the row times W.reshape(-1, n_C) is conv_single_step for all n_C filters.
    The taps of a dilated window are dilation apart. A strided view of A_prev_pad, copied once by the reshape.
    """
    m, _, _, n_C_prev = A_prev_pad.shape
    (f_h, f_w), (s_h, s_w), (d_h, d_w) = f, stride, dilation
    n_H, n_W = output_hw(A_prev_pad.shape, dilated_size(f, dilation), stride)
    s_m, s_H, s_W, s_C = A_prev_pad.strides
    windows = np.lib.stride_tricks.as_strided(A_prev_pad, shape=(m, n_H, n_W, f_h, f_w, n_C_prev),
                                              strides=(s_m, s_H * s_h, s_W * s_w, s_H * d_h, s_W * d_w, s_C),
                                              writeable=False)
    return windows.reshape(m * n_H * n_W, f_h * f_w * n_C_prev)


def conv_forward(A_prev: np.ndarray, W: np.ndarray, b, stride, pads, dilation=(1, 1), Z=None):
    """The notebook's conv_forward as one GEMM: Z = im2col(A_prev padded) @ W + b.

    -> (Z (m, n_H, n_W, n_C), cols), cols the im2col matrix (conv_dW needs it). Z: a C-contiguous array of that
    shape to write into (a block of the batch's output), or None for a new one.
    """
    A_prev_pad = pad_forward(A_prev, pads)
    n_H, n_W = output_hw(A_prev_pad.shape, dilated_size(W.shape[:2], dilation), stride)
    cols = im2col(A_prev_pad, W.shape[:2], stride, dilation)
    if Z is None:
        Z = np.empty((A_prev.shape[0], n_H, n_W, W.shape[3]), dtype=cols.dtype)
    Z_rows = Z.reshape(-1, W.shape[3])  # one row per output position (i, h, w): a view of Z
    np.matmul(cols, W.reshape(-1, W.shape[3]), out=Z_rows)
    if b is not None:
        Z_rows += b.reshape(-1)
    return Z, cols


# The backward: the notebook's conv_backward sums, over every output position (i, h, w) and filter c,
#     dA_prev[the window of (i, h, w)] += W[:, :, :, c] * dZ[i, h, w, c]     conv_dA_prev
#     dW[:, :, :, c]                   += a_slice_prev * dZ[i, h, w, c]     conv_dW
#     db[c]                            += dZ[i, h, w, c]                    conv_db
# With the rows of cols as the a_slice_prev, the last two are matrix products over all positions at once.


def conv_dW(cols: np.ndarray, dZ: np.ndarray, W_shape) -> np.ndarray:
    """dW = cols.T @ dZ: cols (m * n_H * n_W, f_h * f_w * n_C_prev), dZ (m, n_H, n_W, n_C) -> dW like W."""
    return (cols.T @ dZ.reshape(-1, W_shape[3])).reshape(W_shape)


def conv_db(dZ: np.ndarray) -> np.ndarray:
    """db = the sum of dZ over (m, n_H, n_W): dZ (m, n_H, n_W, n_C) -> (n_C,). Written as one BLAS matrix-vector
    product (ones @ dZ rows), which runs faster than dZ.sum(axis=(0, 1, 2))."""
    dZ_rows = dZ.reshape(-1, dZ.shape[3])
    return np.ones(dZ_rows.shape[0], dtype=dZ.dtype) @ dZ_rows


def conv_dA_prev(dZ: np.ndarray, W: np.ndarray, A_prev_shape, stride, pads, dilation=(1, 1)) -> np.ndarray:
    """dA_prev (A_prev_shape) from dZ (m, n_H, n_W, n_C): col2im, one window offset (i, j) at a time.

    dZ @ W[i, j].T is the gradient of every window's (i, j) entry; it lands on the strided slice of the padded
    input that offset touches (pad.offset_slice), and overlapping windows add up. One small GEMM per offset
    rather than one (m * n_H * n_W, f_h * f_w * n_C_prev) matrix: as fast, and far less memory.
    """
    m, n_H_prev, n_W_prev, n_C_prev = A_prev_shape
    (top, bottom), (left, right) = pads
    dA_prev_pad = np.zeros((m, top + n_H_prev + bottom, left + n_W_prev + right, n_C_prev), dtype=dZ.dtype)
    dZ_rows = dZ.reshape(-1, W.shape[3])
    for i, j in window_offsets(W.shape[:2]):
        window_grad = (dZ_rows @ W[i, j].T).reshape(*dZ.shape[:3], n_C_prev)
        offset_slice(dA_prev_pad, i * dilation[0], j * dilation[1], stride, dZ.shape[1:3])[...] += window_grad
    return unpad(dA_prev_pad, pads)


# ---------------------------------------------------------------- 2. conv2d over a batch: blocks and the dispatch

BLOCK_BYTES = 1 << 20  # the batch goes in blocks of about this much im2col matrix (peak memory stays bounded)
WINOGRAD_MIN_CHANNELS = 32
# set_num_threads(n >= 2): the blocks in n shares on n threads from this much input (blocks.run_shares), BLAS on one
# thread inside: few channels' GEMMs gain little from BLAS's threads, im2col none, and BLAS's idle threads spin.
PARALLEL_BYTES = 1 << 18


class ConvPath(NamedTuple):
    """The kernel that runs each phase of one conv2d (signatures as the canonical ones), and the block sizes."""
    im2col: Callable | None  # (A_prev_pad, f, stride, dilation) -> cols; None: dW takes A_prev, unpadded
    forward: Callable       # (A_prev, W, b, stride, pads, dilation, Z) -> (Z, cols)
    dW: Callable            # (cols, dZ, W_shape) -> dW (im2col None: (A_prev, dZ, W_shape), geometry bound)
    dA_prev: Callable       # (dZ, W, A_prev_shape, stride, pads, dilation) -> dA_prev
    block: int              # images per block for the forward and dW
    dx_block: int           # images per block for dA_prev
    keep_cols: bool         # the forward keeps its im2col matrix for dW


class ConvSaved(NamedTuple):
    """What conv2d_backward needs: the input (its im2col is built again per block) and the forward's arguments."""
    x: np.ndarray | None    # A_prev (m, n_H_prev, n_W_prev, n_C_prev) in the compute dtype; None: no dW
    W: np.ndarray           # (f_h, f_w, n_C_prev // groups, n_C)
    b_shape: tuple | None   # b's shape, so db comes back in it
    x_shape: tuple          # (m, n_H_prev, n_W_prev, n_C_prev)
    out_shape: tuple        # (m, n_H, n_W, n_C)
    stride: tuple
    pads: tuple
    dilation: tuple
    groups: int
    path: ConvPath          # the kernels conv_path picked
    cols: np.ndarray | None = None  # the im2col matrix, kept when the whole batch is one block (tiny inputs)


def conv_path(W_shape, x_shape, out_shape, stride, pads, dilation, groups, itemsize) -> ConvPath:
    """The one dispatch: the canonical kernels, unless a measured fast path applies (each choice says when and why
    in one line; the figures of what each gained are in docs/DESIGN.md)."""
    f_h, f_w, C_g, n_C = W_shape
    m, C = x_shape[0], x_shape[3]
    block = images_per_block(out_shape[1] * out_shape[2] * f_h * f_w * C_g * groups * itemsize, BLOCK_BYTES)
    # The whole batch is one block (tiny inputs): the forward keeps its im2col matrix, so dW need not build it again.
    path = ConvPath(im2col, conv_forward, conv_dW, conv_dA_prev, block, block, keep_cols=block >= m)
    # Winograd and depthwise walk the batch in blocks themselves, reusing their buffers from block to block (fresh
    # memory costs a page fault per page), and their dW pads (or reads) the input itself: one block for conv.py.
    whole = max(m, 1)
    if depthwise.applies(W_shape, x_shape, groups):
        # One filter per channel: a GEMM would contract only f_h * f_w taps, so each tap's view times its weights.
        return ConvPath(None, depthwise.depthwise_forward,
                        partial(depthwise.depthwise_dW, stride=stride, pads=pads, dilation=dilation),
                        depthwise.depthwise_dA_prev, whole, whole, keep_cols=False)
    if groups > 1:  # Groups: all groups' GEMMs as one batched matmul over a group-major im2col, not a loop of GEMMs.
        path = path._replace(im2col=partial(fast.grouped_im2col, groups=groups),
                             forward=partial(fast.grouped_forward, groups=groups),
                             dW=partial(fast.grouped_dW, groups=groups),
                             dA_prev=partial(fast.grouped_dA_prev, groups=groups))
    reach = [d * (k - 1) for k, d in zip((f_h, f_w), dilation, strict=True)]
    fits_flipped = all(p <= r for pair, r in zip(pads, reach, strict=True) for p in pair)
    if winograd.applies(W_shape, stride, dilation, groups) and min(C, n_C) >= WINOGRAD_MIN_CHANNELS:
        # 3x3, stride 1, many channels (see the line above): Winograd F(2x2, 3x3), 2.25x fewer multiplies, dA_prev too.
        return ConvPath(None, winograd.winograd_forward, partial(winograd.winograd_dW, pads=pads),
                        _dA_prev_as_conv if fits_flipped else conv_dA_prev, whole, whole if fits_flipped else block,
                        keep_cols=False)
    if (stride == (1, 1) and groups == 1 and (n_C <= C or (C <= 8 and n_C <= 2 * C)) and fits_flipped):
        # Stride 1, n_C not far above n_C_prev: dA_prev as dZ's conv with the flipped W, not col2im's strided adds.
        path = path._replace(dA_prev=_dA_prev_as_conv, dx_block=max(m, 1))
    elif stride[1] > 1 and C < 8 and groups == 1:
        # Column stride > 1, n_C_prev < 8: col2im's adds would be n_C_prev long; channels-first adds run along rows.
        path = path._replace(dA_prev=fast.dA_prev_channels_first, dx_block=images_per_block(
            out_shape[1] * out_shape[2] * n_C * itemsize, fast.CHANNELS_FIRST_BLOCK_BYTES))
    return path


def _dA_prev_as_conv(dZ: np.ndarray, W: np.ndarray, A_prev_shape, stride, pads, dilation=(1, 1)) -> np.ndarray:
    """conv_dA_prev for stride 1 and one group: conv2d_forward of dZ with the flipped kernel (fast.flipped_conv)."""
    W_flipped, dZ_pads = fast.flipped_conv(W, pads, dilation)
    return conv2d_forward(dZ, W_flipped, None, (1, 1), dZ_pads, dilation)[0]


def _conv_saved(x, x_shape, W, b_shape, stride, pads, dilation, groups) -> ConvSaved:
    """The ConvSaved of a conv on inputs of x_shape, with conv_path's choices; x None when only dA_prev will be
    asked for (conv_transpose2d's forward)."""
    n_H, n_W = output_hw((0, x_shape[1] + sum(pads[0]), x_shape[2] + sum(pads[1])),
                         dilated_size(W.shape[:2], dilation), stride)
    out_shape = (x_shape[0], n_H, n_W, W.shape[3])
    path = conv_path(W.shape, x_shape, out_shape, stride, pads, dilation, groups, W.itemsize)
    return ConvSaved(x, W, b_shape, tuple(x_shape), out_shape, stride, pads, dilation, groups, path)


def conv2d_saved(x: np.ndarray, W: np.ndarray, b, stride, pads, dilation=(1, 1), groups: int = 1) -> ConvSaved:
    """Everything conv2d_backward needs (x and W in the compute dtype, the shapes and arguments); no copy of x."""
    dilation = as_positive_pair("conv2d", "dilation", dilation)
    dtype = float_dtype(x, W)
    return _conv_saved(x.astype(dtype, copy=False), x.shape, W.astype(dtype, copy=False),
                       None if b is None else b.shape, stride, pads, dilation, groups)


def conv2d_forward(x: np.ndarray, W: np.ndarray, b, stride, pads, dilation=(1, 1), groups: int = 1):
    """Z[i, h, w, c] = sum(window(i, h, w) of c's group * W[..., c]) + b[c], block by block of the batch.

    x (m, n_H_prev, n_W_prev, n_C_prev), W (f_h, f_w, n_C_prev // groups, n_C), b None / (n_C,) / (1, 1, 1, n_C),
    stride (s_h, s_w), pads ((top, bottom), (left, right)), dilation int or (d_h, d_w), groups dividing n_C_prev
    and n_C (output channel c belongs to group c // (n_C // groups), as in PyTorch) -> (out (m, n_H, n_W, n_C), saved).
    """
    saved = conv2d_saved(x, W, b, stride, pads, dilation, groups)
    path, out = saved.path, np.empty(saved.out_shape, dtype=saved.W.dtype)
    b = None if b is None else b.astype(out.dtype, copy=False)
    blocks = batch_blocks(saved.x_shape[0], path.block)
    if path.keep_cols:  # at most one block: its im2col is the whole batch's, kept for dW
        for s in blocks:
            saved = saved._replace(cols=path.forward(saved.x[s], saved.W, b, *_geometry(saved), out[s])[1])
        return out, saved

    def forward_share(share):
        for s in blocks[share]:  # each block's im2col goes before the next one builds its own
            path.forward(saved.x[s], saved.W, b, *_geometry(saved), out[s])
    _run_blocks_shares(forward_share, blocks, saved)
    return out, saved


def _geometry(saved: ConvSaved) -> tuple:
    """(stride, pads, dilation) of a saved conv."""
    return saved.stride, saved.pads, saved.dilation


def _run_blocks_shares(fn, blocks: list, saved: ConvSaved) -> list:
    """[fn(share of blocks)]: on the calling thread, or from PARALLEL_BYTES of input with set_num_threads(n >= 2) in
    n shares on n threads, BLAS on one thread inside each (blocks.run_shares)."""
    return run_shares(fn, len(blocks), int(np.prod(saved.x_shape)) * saved.W.itemsize, PARALLEL_BYTES,
                      one_blas_thread=True)


def conv2d_cols(saved: ConvSaved) -> np.ndarray:
    """The im2col matrix of the whole saved input, as the chosen path builds it (kept, or built now); the padded
    input for a path without one (Winograd, depthwise)."""
    if saved.cols is not None:
        return saved.cols
    if saved.path.im2col is None:
        return pad_forward(saved.x, saved.pads)
    return saved.path.im2col(pad_forward(saved.x, saved.pads), saved.W.shape[:2], saved.stride, saved.dilation)


def conv2d_weight_grad(dZ: np.ndarray, saved: ConvSaved) -> np.ndarray:
    """dW like saved.W from dZ (m, n_H, n_W, n_C): summed over the blocks, each block's im2col built again."""
    path = saved.path
    if saved.cols is not None:
        return path.dW(saved.cols, dZ, saved.W.shape)
    if path.im2col is None:  # the kernel pads (or needs no padding) and walks the batch itself
        return path.dW(saved.x, dZ, saved.W.shape)
    blocks = batch_blocks(saved.x_shape[0], path.block)

    def dW_share(share):  # this share's blocks' dW, summed
        dW = np.zeros(saved.W.shape, dtype=saved.W.dtype)
        for s in blocks[share]:
            dW += path.dW(path.im2col(pad_forward(saved.x[s], saved.pads), saved.W.shape[:2], saved.stride,
                                      saved.dilation), dZ[s], saved.W.shape)
        return dW
    shares = _run_blocks_shares(dW_share, blocks, saved)
    return shares[0] if len(shares) == 1 else np.sum(shares, axis=0)


def conv2d_input_grad(dZ: np.ndarray, saved: ConvSaved) -> np.ndarray:
    """dx (saved.x_shape, C-contiguous) from dZ (m, n_H, n_W, n_C), block by block of the batch."""
    W, geometry = saved.W, _geometry(saved)
    blocks = batch_blocks(saved.x_shape[0], saved.path.dx_block)
    if len(blocks) == 1:  # the kernel's result is dx (copied only when it is a view into a padded buffer)
        return np.ascontiguousarray(saved.path.dA_prev(dZ, W, saved.x_shape, *geometry))
    dx = np.empty(saved.x_shape, dtype=dZ.dtype)

    def dx_share(share):
        for s in blocks[share]:
            dx[s] = saved.path.dA_prev(dZ[s], W, (s.stop - s.start, *saved.x_shape[1:]), *geometry)
    _run_blocks_shares(dx_share, blocks, saved)
    return dx


def conv2d_bias_grad(dZ: np.ndarray, saved: ConvSaved) -> np.ndarray:
    """db (n_C,) from dZ (m, n_H, n_W, n_C), in shares of images from PARALLEL_BYTES whatever the path (Winograd and
    depthwise too): BLAS on its threads would leave them spinning, holding the cores the next shares need."""
    shares = run_shares(lambda s: conv_db(dZ[s]), saved.x_shape[0], int(np.prod(saved.x_shape)) * saved.W.itemsize,
                        PARALLEL_BYTES, one_blas_thread=True)
    return shares[0] if len(shares) == 1 else np.sum(shares, axis=0)


def conv2d_backward(dout: np.ndarray, saved: ConvSaved, need_dx=True, need_dW=True, need_db=True):
    """dout (m, n_H, n_W, n_C) -> (dx like x, dW like W, db like b); None where not needed (or b is None)."""
    dZ = dense(dout).astype(saved.W.dtype, copy=False)  # the gradient of a sum is a broadcast view: copied once
    dx = conv2d_input_grad(dZ, saved) if need_dx else None
    dW = conv2d_weight_grad(dZ, saved) if need_dW else None
    db = conv2d_bias_grad(dZ, saved).reshape(saved.b_shape) if need_db and saved.b_shape is not None else None
    return dx, dW, db


# ---------------------------------------------------------------- 3. conv_transpose2d, conv2d's adjoint
# W (f_h, f_w, n_C_out // groups, n_C_in) is the weight of the conv2d that maps n_C_out channels to n_C_in, and
# conv_transpose2d scatters x through it as that conv2d's backward scatters dZ. So its forward is
# conv2d_input_grad, and its backward a conv2d forward (dx) and conv2d's dW with input and output swapped.


class ConvTransposeSaved(NamedTuple):
    """What conv_transpose2d_backward needs: the input and the forward's arguments."""
    x: np.ndarray           # (m, n_H_in, n_W_in, n_C_in)
    W: np.ndarray           # (f_h, f_w, n_C_out // groups, n_C_in)
    b_shape: tuple | None
    stride: tuple
    pads: tuple
    dilation: tuple
    groups: int


def conv_transpose2d_forward(x: np.ndarray, W: np.ndarray, b, stride, pads, output_padding=(0, 0),
                             dilation=(1, 1), groups: int = 1):
    """out = the dA_prev of the conv2d with weight W, stride, pads, dilation, groups, given dZ = x; plus b.

    x (m, n_H, n_W, n_C_in), W (f_h, f_w, n_C_out // groups, n_C_in), b None / (n_C_out,) / (1, 1, 1, n_C_out),
    stride (s_h, s_w), pads ((top, bottom), (left, right)), output_padding and dilation ints or pairs
    -> (out (m, H, W_out, n_C_out), saved), H = (n_H - 1) * s_h - (top + bottom) + d_h * (f_h - 1) + 1 + op_h.
    """
    dilation = as_positive_pair("conv_transpose2d", "dilation", dilation)
    output_padding = as_int_pair("conv_transpose2d", "output_padding", output_padding, 0)
    dtype = float_dtype(x, W)
    x, W = x.astype(dtype, copy=False), W.astype(dtype, copy=False)
    out_hw = conv_transpose2d_output_hw(x.shape, W.shape[:2], stride, pads, output_padding, dilation)
    as_conv = _conv_saved(None, (x.shape[0], *out_hw, W.shape[2] * groups), W, None, stride, pads, dilation, groups)
    out = conv2d_input_grad(x, as_conv)
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
        dW = conv2d_weight_grad(saved.x, as_conv)
    if need_db and saved.b_shape is not None:
        db = conv_db(dout).reshape(saved.b_shape)
    return dx, dW, db
