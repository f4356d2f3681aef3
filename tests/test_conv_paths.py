"""conv2d's fast paths of issue 20 (kernels/conv_winograd.py, kernels/conv_depthwise.py) against the canonical
kernels (kernels/conv.py, the grouped ones in kernels/conv_fast.py) and the loops in reference.py, forward and
backward, float64 and float32, odd shapes; and the dispatch (conv.conv_path) that picks them."""

import random

import numpy as np
import pytest

from tinygrad_cnn import reference
from tinygrad_cnn.kernels import conv, conv_depthwise, conv_fast, conv_winograd

TOL = {np.float64: 1e-10, np.float32: 2e-4}  # float32: relative to the largest entry


def close(actual, expected, dtype):
    """actual equals expected (computed in float64) to dtype's tolerance, relative to the largest entry."""
    assert actual.dtype == dtype
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=TOL[dtype] * scale)


def conv2d_matches(kernel, args, dZ, float64_inputs, dtype):
    """conv2d_forward(*args) runs `kernel` and, with its backward of dZ, equals the loops on the float64 inputs.
    args: (x, W, b, stride, pads[, dilation, groups]) in dtype."""
    geometry = args[3:]
    Z, saved = conv.conv2d_forward(*args)
    assert saved.path.forward is kernel
    close(Z, reference.conv_forward(*float64_inputs, *geometry), dtype)
    dx, dW, db = conv.conv2d_backward(dZ.astype(dtype), saved)
    for grad, expected in zip((dx, dW, db), reference.conv_backward(dZ, *float64_inputs[:2], *geometry), strict=True):
        close(grad, expected, dtype)


def inputs(x_shape, W_shape, bias, dtype, seed):
    rng = np.random.default_rng(seed)
    x, W = rng.standard_normal(x_shape), rng.standard_normal(W_shape)
    b = rng.standard_normal(W_shape[3]) if bias else None
    return x, W, b, [a if a is None else a.astype(dtype) for a in (x, W, b)]


# ---------------------------------------------------------------- Winograd F(2x2, 3x3)

def winograd_grid(n_cases, seed=0):
    """(m, n_H, n_W, C, n_C, pads, bias): odd and even sizes, pads 0..2 on each side, one channel and more."""
    rng = random.Random(seed)
    cases = []
    for _ in range(n_cases):
        pads = tuple((rng.randint(0, 2), rng.randint(0, 2)) for _ in range(2))
        hw = [max(1, 3 - sum(p)) + rng.randint(0, 6) for p in pads]
        cases.append((rng.randint(1, 3), *hw, rng.randint(1, 5), rng.randint(1, 5), pads, rng.random() < 0.5))
    return cases


WINOGRAD_CASES = winograd_grid(40)


def test_winograd_grid_has_odd_and_even_outputs_and_asymmetric_pads():
    out_hw = [(n_H + sum(p[0]) - 2, n_W + sum(p[1]) - 2) for _, n_H, n_W, _, _, p, _ in WINOGRAD_CASES]
    assert sum(h % 2 == 1 for h, _ in out_hw) >= 10 and sum(w % 2 == 0 for _, w in out_hw) >= 10
    assert sum(p[0][0] != p[0][1] or p[1][0] != p[1][1] for *_, p, _ in WINOGRAD_CASES) >= 20


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", WINOGRAD_CASES)
def test_winograd_kernels_equal_the_canonical_ones_and_the_loops(case, dtype):
    m, n_H, n_W, C, n_C, pads, bias = case
    x64, W64, b64, (x, W, b) = inputs((m, n_H, n_W, C), (3, 3, C, n_C), bias, dtype, seed=len(str(case)))
    Z, cols = conv_winograd.winograd_forward(x, W, b, (1, 1), pads)
    assert cols is None and Z.flags.c_contiguous
    close(Z, reference.conv_forward(x64, W64, b64, (1, 1), pads), dtype)
    close(Z, conv.conv_forward(x64, W64, b64, (1, 1), pads)[0], dtype)
    dZ = np.random.default_rng(1).standard_normal(Z.shape)
    _, ref_dW, _ = reference.conv_backward(dZ, x64, W64, (1, 1), pads)
    dW = conv_winograd.winograd_dW(x, dZ.astype(dtype), W.shape, pads=pads)
    close(dW, ref_dW, dtype)
    close(dW, conv.conv_dW(conv.conv_forward(x64, W64, None, (1, 1), pads)[1], dZ, W.shape), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape, n_C, pads", [
    ((3, 7, 9, 32), 32, ((1, 1), (1, 1))),    # odd n_H, n_W: the last tiles half outside
    ((2, 6, 5, 33), 34, ((0, 2), (2, 0))),    # asymmetric pads, odd channel counts
    ((4, 4, 4, 32), 40, ((0, 0), (0, 0))),    # no padding
    ((1, 3, 3, 32), 32, ((0, 0), (1, 1))),    # a single output row
])
def test_conv2d_by_winograd_over_blocks_matches_the_loops(x_shape, n_C, pads, dtype, monkeypatch):
    """Through the dispatch (min(C, n_C) >= 32 picks Winograd), in blocks of one and two images, and whole."""
    x64, W64, b64, (x, W, b) = inputs(x_shape, (3, 3, x_shape[3], n_C), True, dtype, seed=3)
    dZ = np.random.default_rng(4).standard_normal(reference.conv_forward(x64, W64, b64, (1, 1), pads).shape)
    for images in (1, 2, None):  # a block of 1, of 2 (the last one shorter when m is odd), as BLOCK_BYTES gives
        if images is not None:
            monkeypatch.setattr(conv_winograd.Workspace, "images_per_block", lambda *_, k=images: k)
        else:
            monkeypatch.undo()
        conv2d_matches(conv_winograd.winograd_forward, (x, W, b, (1, 1), pads), dZ, (x64, W64, b64), dtype)


def test_the_filter_transform_and_its_adjoint_are_adjoint():
    """<G w G^T, u> = <w, G^T u G> for every w and u: dW = G^T dU G is the filter transform's backward."""
    rng = np.random.default_rng(5)
    w, u = rng.standard_normal((3, 3, 2, 3)), rng.standard_normal((4, 4, 2, 3))
    assert np.isclose(np.sum(conv_winograd.filter_transform(w) * u),
                      np.sum(w * conv_winograd.filter_transform_adjoint(u)))


# ---------------------------------------------------------------- depthwise by shift-and-accumulate

def depthwise_grid(n_cases, seed=1):
    """(m, n_H, n_W, C, f, stride, pads, dilation, bias): strides and dilations 1..3, pads 0..3 (some beyond the
    window's reach, where dA_prev scatters)."""
    rng = random.Random(seed)
    cases = []
    for _ in range(n_cases):
        f = (rng.randint(1, 4), rng.randint(1, 4))
        dilation = (rng.randint(1, 3), rng.randint(1, 2))
        pads = tuple((rng.randint(0, 3), rng.randint(0, 3)) for _ in range(2))
        span = [d * (k - 1) + 1 for k, d in zip(f, dilation, strict=True)]
        hw = [max(1, k - sum(p)) + rng.randint(0, 5) for k, p in zip(span, pads, strict=True)]
        stride = rng.choice([(1, 1), (1, 1), (2, 1), (1, 2), (2, 3)])
        cases.append((rng.randint(1, 3), *hw, rng.randint(2, 5), f, stride, pads, dilation, rng.random() < 0.5))
    return cases


DEPTHWISE_CASES = depthwise_grid(40)


def test_depthwise_grid_covers_rows_strided_columns_and_the_scatter():
    assert sum(c[5][1] == 1 for c in DEPTHWISE_CASES) >= 15 and sum(c[5][1] > 1 for c in DEPTHWISE_CASES) >= 8
    beyond_reach = [c for c in DEPTHWISE_CASES if c[5] == (1, 1) and any(
        p > d * (k - 1) for pair, k, d in zip(c[6], c[4], c[7], strict=True) for p in pair)]
    assert len(beyond_reach) >= 3


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", DEPTHWISE_CASES)
def test_depthwise_kernels_equal_the_grouped_ones_and_the_loops(case, dtype):
    m, n_H, n_W, C, f, stride, pads, dilation, bias = case
    x64, W64, b64, (x, W, b) = inputs((m, n_H, n_W, C), (*f, 1, C), bias, dtype, seed=len(str(case)))
    Z, cols = conv_depthwise.depthwise_forward(x, W, b, stride, pads, dilation)
    assert cols is None
    close(Z, reference.conv_forward(x64, W64, b64, stride, pads, dilation, C), dtype)
    close(Z, conv_fast.grouped_forward(x64, W64, b64, stride, pads, dilation, groups=C)[0], dtype)
    dZ = np.random.default_rng(2).standard_normal(Z.shape)
    ref_dx, ref_dW, _ = reference.conv_backward(dZ, x64, W64, stride, pads, dilation, C)
    dx = conv_depthwise.depthwise_dA_prev(dZ.astype(dtype), W, x.shape, stride, pads, dilation)
    close(dx, ref_dx, dtype)
    close(dx, conv_fast.grouped_dA_prev(dZ, W64, x.shape, stride, pads, dilation, groups=C), dtype)
    dW = conv_depthwise.depthwise_dW(x, dZ.astype(dtype), W.shape, stride=stride, pads=pads, dilation=dilation)
    close(dW, ref_dW, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv2d_depthwise_over_blocks_matches_the_loops(dtype, monkeypatch):
    x64, W64, b64, (x, W, b) = inputs((5, 9, 7, 6), (3, 3, 1, 6), True, dtype, seed=6)
    pads = ((1, 1), (2, 0))
    dZ = np.random.default_rng(7).standard_normal(reference.conv_forward(x64, W64, b64, (1, 1), pads, (1, 1), 6).shape)
    for block_bytes in (1, conv.BLOCK_BYTES):
        monkeypatch.setattr(conv, "BLOCK_BYTES", block_bytes)
        monkeypatch.setattr(conv_depthwise, "BLOCK_BYTES", block_bytes)
        conv2d_matches(conv_depthwise.depthwise_forward, (x, W, b, (1, 1), pads, (1, 1), 6), dZ, (x64, W64, b64),
                       dtype)


def test_depthwise_reads_a_non_contiguous_input():
    """A transposed (non-contiguous) input takes the per-channel einsum, not the row layout, with the same result."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((2, 4, 6, 5)).transpose(0, 2, 1, 3)  # (2, 6, 4, 5), strides not C-order
    W = rng.standard_normal((3, 3, 1, 5))
    Z, _ = conv_depthwise.depthwise_forward(x, W, None, (1, 1), ((0, 0), (0, 0)))
    np.testing.assert_allclose(Z, reference.conv_forward(x, W, None, (1, 1), ((0, 0), (0, 0)), (1, 1), 5), atol=1e-12)
    dW = conv_depthwise.depthwise_dW(x, np.ones(Z.shape), W.shape, stride=(1, 1), pads=((0, 0), (0, 0)),
                                     dilation=(1, 1))
    np.testing.assert_allclose(dW, reference.conv_backward(np.ones(Z.shape), x, W, (1, 1), ((0, 0), (0, 0)),
                                                           (1, 1), 5)[1], atol=1e-12)


# ---------------------------------------------------------------- the dispatch

def _kernel_of(path_kernel):
    return getattr(path_kernel, "func", path_kernel)


@pytest.mark.parametrize("x_shape, W_shape, stride, dilation, groups, forward", [
    ((2, 6, 6, 32), (3, 3, 32, 32), (1, 1), (1, 1), 1, conv_winograd.winograd_forward),
    ((2, 6, 6, 64), (3, 3, 64, 32), (1, 1), (1, 1), 1, conv_winograd.winograd_forward),
    ((2, 6, 6, 16), (3, 3, 16, 32), (1, 1), (1, 1), 1, conv.conv_forward),        # too few channels for Winograd
    ((2, 6, 6, 32), (3, 3, 32, 32), (2, 2), (1, 1), 1, conv.conv_forward),        # strided
    ((2, 6, 6, 32), (3, 3, 32, 32), (1, 1), (2, 2), 1, conv.conv_forward),        # dilated
    ((2, 6, 6, 32), (5, 5, 32, 32), (1, 1), (1, 1), 1, conv.conv_forward),        # 5x5
    ((2, 6, 6, 16), (3, 3, 1, 16), (1, 1), (1, 1), 16, conv_depthwise.depthwise_forward),
    ((2, 9, 9, 4), (3, 3, 1, 4), (2, 2), (2, 1), 4, conv_depthwise.depthwise_forward),
    ((2, 6, 6, 4), (3, 3, 1, 8), (1, 1), (1, 1), 4, conv_fast.grouped_forward),  # two filters per channel
    ((2, 6, 6, 8), (3, 3, 2, 8), (1, 1), (1, 1), 4, conv_fast.grouped_forward),
])
def test_conv_path_picks_the_fast_paths_where_documented(x_shape, W_shape, stride, dilation, groups, forward):
    rng = np.random.default_rng(9)
    x, W = rng.standard_normal(x_shape), rng.standard_normal(W_shape)
    pads = ((1, 1), (1, 1))
    out, saved = conv.conv2d_forward(x, W, None, stride, pads, dilation, groups)
    assert _kernel_of(saved.path.forward) is forward
    dout = rng.standard_normal(out.shape)
    dx, dW, _ = conv.conv2d_backward(dout, saved)
    ref_dx, ref_dW, _ = reference.conv_backward(dout, x, W, stride, pads, dilation, groups)
    np.testing.assert_allclose(out, reference.conv_forward(x, W, None, stride, pads, dilation, groups), atol=1e-10)
    np.testing.assert_allclose(dx, ref_dx, atol=1e-10)
    np.testing.assert_allclose(dW, ref_dW, atol=1e-10)
