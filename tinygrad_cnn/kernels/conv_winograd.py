"""conv2d by Winograd's minimal filtering F(2x2, 3x3): a fast path conv.conv_path may pick for 3x3 stride-1 convs.

A 3x3 conv makes each 2x2 tile of Z from the 4x4 tile d of the padded input under it: 36 multiplies per tile and
channel pair. Winograd's F(2x2, 3x3) makes the same four numbers with 16 (Lavin and Gray, 2015):

    Z_tile = A^T [ (G w G^T) * (B^T d B) ] A        (* elementwise, summed over the input channels)

    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]    the input transform, V = B^T d B
    G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]      the filter transform, U = G w G^T
    A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]                                 the output transform

Over a batch, each entry (a, b) of the 4x4 transformed tiles is one GEMM, M[a, b] = V[a, b] @ U[a, b], with V[a, b]
(tiles, n_C_prev) and U[a, b] (n_C_prev, n_C): 16 GEMMs of 1/2.25 the multiplies of im2col's one. The transforms are
slicing adds. The arithmetic is exact; only the rounding differs from the im2col GEMM.

The backward is the forward's adjoint, read right to left: with dM = A dZ_tile A^T (the output transform's
adjoint), dU[a, b] = V[a, b]^T @ dM[a, b] and dW = G^T dU G. dA_prev is, as for any stride-1 conv, the conv of dZ
with the flipped kernel, which conv.py runs through conv_path again (and so through this module).

Both walk the batch a block of images at a time and, per block, one transformed column b at a time: B^T d B's
column b, the four GEMMs of that column, then its share of A^T M A (or of dU). Their buffers (Workspace, and the
padded block) are allocated once per call: fresh memory costs a page fault per page, as much as a pass over it.

    winograd_forward(A_prev, W, b, stride, pads, dilation, Z)   -> (Z, None): conv.conv_forward's role
    winograd_dW(A_prev, dZ, W_shape, pads=pads)                 -> dW: conv.conv_dW's role, from A_prev itself
    applies(W_shape, stride, dilation, groups)                  the geometry this module computes

Names as in conv.py: A_prev (m, n_H_prev, n_W_prev, n_C_prev), W (3, 3, n_C_prev, n_C), Z and dZ (m, n_H, n_W, n_C).
Tiles: T_h = ceil(n_H / 2) rows and T_w = ceil(n_W / 2) columns of them per image; the padded input is extended
with zeros to 2 T_h + 2 rows and 2 T_w + 2 columns, and the tiles' outputs past n_H, n_W are dropped.
May import: numpy and the sibling kernel modules blocks and checks.
"""

from __future__ import annotations

import numpy as np

from .blocks import batch_blocks, images_per_block, run_shares
from .checks import output_hw

BLOCK_BYTES = 1 << 20  # a block of images: about this much of Workspace
# set_num_threads(n >= 2): the batch on n threads from this much input (blocks.run_shares), each share's GEMMs on
# BLAS's threads as set (one BLAS thread per share measured the same); below it, the calling thread was faster.
PARALLEL_BYTES = 1 << 19

G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
GG = np.kron(G, G)  # (16, 9): entry (4 a + b, 3 i + j) is G[a, i] G[b, j], so U[a, b] = sum G[a, i] w[i, j] G[b, j]


def applies(W_shape, stride, dilation, groups: int) -> bool:
    """The geometry F(2x2, 3x3) computes: a 3x3 window, stride 1, no dilation, one group."""
    return tuple(W_shape[:2]) == (3, 3) and tuple(stride) == (1, 1) and tuple(dilation) == (1, 1) and groups == 1


def tiles_of(out_hw) -> tuple[int, int]:
    """(T_h, T_w): the 2x2 output tiles covering (n_H, n_W)."""
    return -(-out_hw[0] // 2), -(-out_hw[1] // 2)


def filter_transform(W: np.ndarray) -> np.ndarray:
    """U = G w G^T for every filter and channel: W (3, 3, n_C_prev, n_C) -> (4, 4, n_C_prev, n_C); one small GEMM,
    (G kron G) (16, 9) @ W's 9 taps."""
    return (GG.astype(W.dtype) @ W.reshape(9, -1)).reshape(4, 4, *W.shape[2:])


def filter_transform_adjoint(dU: np.ndarray) -> np.ndarray:
    """dW = G^T dU G: dU (4, 4, n_C_prev, n_C) -> (3, 3, n_C_prev, n_C), filter_transform's adjoint."""
    return (GG.T.astype(dU.dtype) @ dU.reshape(16, -1)).reshape(3, 3, *dU.shape[2:])


class Workspace:
    """The buffers of one block of images, reused by every block of a kernel call."""

    def __init__(self, images: int, out_hw, C: int, n_C: int, dtype):
        T_h, T_w = tiles_of(out_hw)
        self.T_h, self.T_w, self.images = T_h, T_w, images
        self.d_col = np.empty((images, 2 * T_h + 2, T_w, C), dtype)  # column b of d B for every tile
        self.V_col = np.empty((4, images * T_h * T_w, C), dtype)     # V[:, b]
        self.M_col = np.empty((4, images * T_h * T_w, n_C), dtype)   # M[:, b] (or dM[:, b])
        self.MA = np.empty((2, 4, images * T_h * T_w, n_C), dtype)   # [s, a]: (M A^T)[a, s] (or dM[:, 0], dM[:, 3])

    @staticmethod
    def images_per_block(out_hw, C: int, n_C: int, itemsize: int) -> int:
        """Images per block: the Workspace and the block's padded input about BLOCK_BYTES."""
        T_h, T_w = tiles_of(out_hw)
        per_image = ((2 * T_h + 2) * (3 * T_w + 2) * C + 4 * T_h * T_w * (C + 3 * n_C)) * itemsize
        return images_per_block(per_image, BLOCK_BYTES)

    def part(self, buffer: np.ndarray, images: int) -> np.ndarray:
        """The first `images` images' share of a buffer whose tile rows are (image, row, column)."""
        if buffer is self.d_col:
            return buffer[:images]
        return buffer[..., :images * self.T_h * self.T_w, :]


# Column b of d B, b = 0..3: (+ d_0 - d_2), (+ d_1 + d_2), (- d_1 + d_2), (+ d_1 - d_3); each a (first, second, op).
B_COLUMNS = ((0, 2, np.subtract), (1, 2, np.add), (2, 1, np.subtract), (1, 3, np.subtract))


def input_column(padded: np.ndarray, b: int, work: Workspace) -> np.ndarray:
    """V[:, b] = (B^T d B)[:, b] for every 4x4 tile d (placed 2 apart) and channel: padded (m, 2 T_h + 2, 2 T_w + 2,
    C) -> (4, m * T_h * T_w, C) in work's buffer. B along the columns (strided reads), then B^T along the rows."""
    m, T_h, T_w = padded.shape[0], work.T_h, work.T_w
    first, second, combine = B_COLUMNS[b]
    d_col = work.part(work.d_col, m)
    combine(padded[:, :, first:first + 2 * T_w:2], padded[:, :, second:second + 2 * T_w:2], out=d_col)
    rows = [d_col[:, p:p + 2 * T_h:2] for p in range(4)]
    V = work.part(work.V_col, m).reshape(4, m, T_h, T_w, -1)
    for a, (first, second, combine) in enumerate(B_COLUMNS):  # B^T's rows are B's columns
        combine(rows[first], rows[second], out=V[a])
    return V.reshape(4, m * T_h * T_w, -1)


def output_rows(MA: np.ndarray, Z: np.ndarray, work: Workspace) -> None:
    """Z = A^T (M A): MA (2, 4, m * T_h * T_w, n_C), [s, a] = (M A)[a, s] -> Z (m, n_H, n_W, n_C), written in place,
    outputs past n_H, n_W dropped. Row 0 of A^T is (1, 1, 1, 0), row 1 (0, 1, -1, -1)."""
    MA = MA.reshape(2, 4, Z.shape[0], work.T_h, work.T_w, -1)
    for s in range(2):
        for r in range(2):
            target = Z[:, r::2, s::2]
            P = MA[s, :, :, :target.shape[1], :target.shape[2]]
            if r == 0:
                np.add(P[0], P[1], out=target)
                target += P[2]
            else:
                np.subtract(P[1], P[2], out=target)
                target -= P[3]


class PaddedBlock:
    """One block of images padded and extended with zeros to whole tiles, (images, 2 T_h + 2, 2 T_w + 2, C): its
    border is zeroed once, then each block of A_prev is copied into its interior."""

    def __init__(self, images: int, work: Workspace, C: int, pads, dtype):
        self.buffer = np.zeros((images, 2 * work.T_h + 2, 2 * work.T_w + 2, C), dtype=dtype)
        self.top, self.left = pads[0][0], pads[1][0]

    def fill(self, A_prev_block: np.ndarray) -> np.ndarray:
        """A_prev_block (n, H, W, C), n <= images, copied in: -> the padded (n, ...) view."""
        n, H, W = A_prev_block.shape[:3]
        self.buffer[:n, self.top:self.top + H, self.left:self.left + W] = A_prev_block
        return self.buffer[:n]


def _setup(A_prev_shape, out_hw, C: int, n_C: int, pads, dtype):
    """The Workspace and PaddedBlock of one kernel call on A_prev_shape (m, H, W, C)."""
    m = A_prev_shape[0]
    per_block = max(1, min(m, Workspace.images_per_block(out_hw, C, n_C, np.dtype(dtype).itemsize)))  # m = 0: 1
    work = Workspace(per_block, out_hw, C, n_C, dtype)
    return work, PaddedBlock(work.images, work, C, pads, dtype)


def winograd_forward(A_prev: np.ndarray, W: np.ndarray, b, stride, pads, dilation=(1, 1), Z=None):
    """conv.conv_forward for a 3x3 stride-1 window by F(2x2, 3x3) -> (Z (m, n_H, n_W, n_C), None); no cols kept
    (winograd_dW transforms the input again). From PARALLEL_BYTES of input with set_num_threads(n >= 2), the batch
    in n shares on n threads (blocks.run_shares), each with its own buffers."""
    m, H, W_in, _ = A_prev.shape
    out_hw = output_hw((m, H + sum(pads[0]), W_in + sum(pads[1])), (3, 3), (1, 1))
    U = filter_transform(W)
    if Z is None:
        Z = np.empty((m, *out_hw, W.shape[3]), dtype=U.dtype)
    run_shares(lambda s: _forward_share(A_prev[s], U, b, pads, Z[s]), m, A_prev.nbytes, PARALLEL_BYTES)
    return Z, None


def _forward_share(A_prev: np.ndarray, U: np.ndarray, b, pads, Z: np.ndarray) -> None:
    """Z (m, n_H, n_W, n_C), written in place, from A_prev (m, H, W, C) and U (4, 4, C, n_C): a block at a time."""
    work, padded = _setup(A_prev.shape, Z.shape[1:3], A_prev.shape[3], U.shape[3], pads, U.dtype)
    for s in batch_blocks(A_prev.shape[0], work.images):
        d, n = padded.fill(A_prev[s]), s.stop - s.start
        MA, M = work.part(work.MA, n), work.part(work.M_col, n)
        # (M A)[a, 0] = M[a, 0] + M[a, 1] + M[a, 2] and (M A)[a, 1] = M[a, 1] - M[a, 2] - M[a, 3], column by column
        np.matmul(input_column(d, 0, work), U[:, 0], out=MA[0])
        np.matmul(input_column(d, 1, work), U[:, 1], out=MA[1])
        if b is not None:  # M[1, 1] reaches all four outputs with weight +1
            MA[1, 1] += b.reshape(-1)
        MA[0] += MA[1]
        np.matmul(input_column(d, 2, work), U[:, 2], out=M)
        MA[0] += M
        MA[1] -= M
        MA[1] -= np.matmul(input_column(d, 3, work), U[:, 3], out=M)
        output_rows(MA, Z[s], work)


# dM = A dz A^T with A's rows (1, 0), (1, 1), (1, -1), (0, -1). Written with sums and differences only, slot (a, b)
# holds SIGNS[a, b] * dM[a, b]: along the rows, slot a of a tile column holds t_0, t_0 + t_1, t_0 - t_1 and t_1
# (= -dM, sign -1) of its two entries t; along the columns likewise, slot column 3 holding minus dM[:, 3].
SIGNS = np.outer([1, 1, 1, -1], [1, 1, 1, -1])[:, :, None, None]


def output_rows_adjoint(dZ: np.ndarray, work: Workspace) -> np.ndarray:
    """The slots of dM's columns 0 and 3 (A dz, rows combined): dZ (m, n_H, n_W, n_C), zeros past n_H, n_W ->
    (2, 4, m * T_h * T_w, n_C) in work's buffer MA, [0, a] slot (a, 0) and [1, a] slot (a, 3)."""
    m, n_H, n_W, _ = dZ.shape
    slots = work.part(work.MA, m).reshape(2, 4, m, work.T_h, work.T_w, -1)
    if n_H % 2 or n_W % 2:
        slots[:] = 0
    for s in range(2):
        for r, a in ((0, 0), (1, 3)):  # tile row 0 is slot 0, tile row 1 slot 3
            part = dZ[:, r::2, s::2]
            slots[s, a, :, :part.shape[1], :part.shape[2]] = part
        np.add(slots[s, 0], slots[s, 3], out=slots[s, 1])
        np.subtract(slots[s, 0], slots[s, 3], out=slots[s, 2])
    return slots.reshape(2, 4, m * work.T_h * work.T_w, -1)


def winograd_dW(A_prev: np.ndarray, dZ: np.ndarray, W_shape, *, pads) -> np.ndarray:
    """conv.conv_dW from the input A_prev (m, n_H_prev, n_W_prev, n_C_prev) (padded here, a block at a time) and
    dZ (m, n_H, n_W, n_C): dU[a, b] = V[a, b]^T dM[a, b] summed over blocks of images, then dW = G^T dU G. From
    PARALLEL_BYTES of input with set_num_threads(n >= 2), each of n threads sums the dU of its share of the batch."""
    shares = run_shares(lambda s: _dU_share(A_prev[s], dZ[s], W_shape, pads), dZ.shape[0], A_prev.nbytes,
                        PARALLEL_BYTES)
    dU = shares[0] if len(shares) == 1 else np.sum(shares, axis=0)
    dU *= SIGNS.astype(dU.dtype)
    return filter_transform_adjoint(dU).reshape(W_shape)


def _dU_share(A_prev: np.ndarray, dZ: np.ndarray, W_shape, pads) -> np.ndarray:
    """The slots of dU (4, 4, C, n_C), SIGNS not yet applied, summed over the images of A_prev and dZ."""
    m, C, n_C = dZ.shape[0], W_shape[2], W_shape[3]
    work, padded = _setup(A_prev.shape, dZ.shape[1:3], C, n_C, pads, dZ.dtype)
    dU, product = np.zeros((4, 4, C, n_C), dtype=dZ.dtype), np.empty((4, C, n_C), dtype=dZ.dtype)
    for s in batch_blocks(m, work.images):
        d = padded.fill(A_prev[s])
        slots, dM = output_rows_adjoint(dZ[s], work), work.part(work.M_col, s.stop - s.start)
        for b in range(4):  # the slots of dM's column b: column 0, 0 + 3, 0 - 3, 3
            dM_b = slots[b // 3] if b in (0, 3) else (np.add if b == 1 else np.subtract)(slots[0], slots[1], out=dM)
            dU[:, b] += np.matmul(input_column(d, b, work).transpose(0, 2, 1), dM_b, out=product)
    return dU
