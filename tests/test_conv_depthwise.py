"""Depthwise conv2d by shift-and-accumulate (kernels/conv_depthwise.py), the fast path of one filter per channel: its
kernels against the grouped ones (kernels/conv_fast.py) and the loops in reference.py, forward and backward,
float64 and float32, strides, dilations and pads beyond the window's reach; through conv2d in blocks; a
non-contiguous input; and against PyTorch."""

import random

import numpy as np
import pytest

from tests.helpers import TF, assert_close_to, assert_conv2d_path_matches, assert_conv_matches_torch, fast_path_arrays
from tinygrad_cnn import reference
from tinygrad_cnn.kernels import conv, conv_depthwise, conv_fast


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
    x64, W64, b64, (x, W, b) = fast_path_arrays((m, n_H, n_W, C), (*f, 1, C), bias, dtype, seed=len(str(case)))
    Z, cols = conv_depthwise.depthwise_forward(x, W, b, stride, pads, dilation)
    assert cols is None
    assert_close_to(Z, reference.conv_forward(x64, W64, b64, stride, pads, dilation, C), dtype)
    assert_close_to(Z, conv_fast.grouped_forward(x64, W64, b64, stride, pads, dilation, groups=C)[0], dtype)
    dZ = np.random.default_rng(2).standard_normal(Z.shape)
    ref_dx, ref_dW, _ = reference.conv_backward(dZ, x64, W64, stride, pads, dilation, C)
    dx = conv_depthwise.depthwise_dA_prev(dZ.astype(dtype), W, x.shape, stride, pads, dilation)
    assert_close_to(dx, ref_dx, dtype)
    assert_close_to(dx, conv_fast.grouped_dA_prev(dZ, W64, x.shape, stride, pads, dilation, groups=C), dtype)
    dW = conv_depthwise.depthwise_dW(x, dZ.astype(dtype), W.shape, stride=stride, pads=pads, dilation=dilation)
    assert_close_to(dW, ref_dW, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_conv2d_depthwise_over_blocks_matches_the_loops(dtype, monkeypatch):
    x64, W64, b64, (x, W, b) = fast_path_arrays((5, 9, 7, 6), (3, 3, 1, 6), True, dtype, seed=6)
    pads = ((1, 1), (2, 0))
    dZ = np.random.default_rng(7).standard_normal(reference.conv_forward(x64, W64, b64, (1, 1), pads, (1, 1), 6).shape)
    for block_bytes in (1, conv.BLOCK_BYTES):
        monkeypatch.setattr(conv, "BLOCK_BYTES", block_bytes)
        monkeypatch.setattr(conv_depthwise, "BLOCK_BYTES", block_bytes)
        assert_conv2d_path_matches(conv_depthwise.depthwise_forward, (x, W, b, (1, 1), pads, (1, 1), 6), dZ,
                                   (x64, W64, b64), dtype)


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


@pytest.mark.parametrize("stride, dilation", [((1, 1), (1, 1)), ((2, 1), (1, 2)), ((2, 2), (2, 2))])
def test_conv2d_depthwise_matches_torch(stride, dilation):
    x, W, b, _ = fast_path_arrays((2, 9, 10, 5), (3, 3, 1, 5), True, np.float64, seed=10)
    out, saved = conv.conv2d_forward(x, W, b, stride, ((1, 1), (2, 2)), dilation, groups=5)
    assert saved.path.forward is conv_depthwise.depthwise_forward
    assert_conv_matches_torch(lambda tx, tW, tb: TF.conv2d(tx, tW, tb, stride, (1, 2), dilation, 5), x, W, b, out,
                              conv.conv2d_backward, saved)
