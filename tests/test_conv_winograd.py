"""Winograd F(2x2, 3x3) (kernels/conv_winograd.py), the fast path of 3x3 stride-1 convs: its kernels against the
canonical ones (kernels/conv.py) and the loops in reference.py, forward and backward, float64 and float32, odd
sizes and pads; through conv2d in blocks of one, two and all images; and against PyTorch."""

import random

import numpy as np
import pytest

from tests.helpers import TF, assert_close_to, assert_conv2d_path_matches, assert_conv_matches_torch, fast_path_arrays
from tinygrad_cnn import reference
from tinygrad_cnn.kernels import conv, conv_winograd


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
    x64, W64, b64, (x, W, b) = fast_path_arrays((m, n_H, n_W, C), (3, 3, C, n_C), bias, dtype, seed=len(str(case)))
    Z, cols = conv_winograd.winograd_forward(x, W, b, (1, 1), pads)
    assert cols is None and Z.flags.c_contiguous
    assert_close_to(Z, reference.conv_forward(x64, W64, b64, (1, 1), pads), dtype)
    assert_close_to(Z, conv.conv_forward(x64, W64, b64, (1, 1), pads)[0], dtype)
    dZ = np.random.default_rng(1).standard_normal(Z.shape)
    _, ref_dW, _ = reference.conv_backward(dZ, x64, W64, (1, 1), pads)
    dW = conv_winograd.winograd_dW(x, dZ.astype(dtype), W.shape, pads=pads)
    assert_close_to(dW, ref_dW, dtype)
    assert_close_to(dW, conv.conv_dW(conv.conv_forward(x64, W64, None, (1, 1), pads)[1], dZ, W.shape), dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("x_shape, n_C, pads", [
    ((3, 7, 9, 32), 32, ((1, 1), (1, 1))),    # odd n_H, n_W: the last tiles half outside
    ((2, 6, 5, 33), 34, ((0, 2), (2, 0))),    # asymmetric pads, odd channel counts
    ((4, 4, 4, 32), 40, ((0, 0), (0, 0))),    # no padding
    ((1, 3, 3, 32), 32, ((0, 0), (1, 1))),    # a single output row
])
def test_conv2d_by_winograd_over_blocks_matches_the_loops(x_shape, n_C, pads, dtype, monkeypatch):
    """Through the dispatch (min(C, n_C) >= 32 picks Winograd), in blocks of one and two images, and whole."""
    x64, W64, b64, (x, W, b) = fast_path_arrays(x_shape, (3, 3, x_shape[3], n_C), True, dtype, seed=3)
    dZ = np.random.default_rng(4).standard_normal(reference.conv_forward(x64, W64, b64, (1, 1), pads).shape)
    for images in (1, 2, None):  # a block of 1, of 2 (the last one shorter when m is odd), as BLOCK_BYTES gives
        if images is not None:
            monkeypatch.setattr(conv_winograd.Workspace, "images_per_block", lambda *_, k=images: k)
        else:
            monkeypatch.undo()
        assert_conv2d_path_matches(conv_winograd.winograd_forward, (x, W, b, (1, 1), pads), dZ, (x64, W64, b64), dtype)


def test_the_filter_transform_and_its_adjoint_are_adjoint():
    """<G w G^T, u> = <w, G^T u G> for every w and u: dW = G^T dU G is the filter transform's backward."""
    rng = np.random.default_rng(5)
    w, u = rng.standard_normal((3, 3, 2, 3)), rng.standard_normal((4, 4, 2, 3))
    assert np.isclose(np.sum(conv_winograd.filter_transform(w) * u),
                      np.sum(w * conv_winograd.filter_transform_adjoint(u)))


@pytest.mark.parametrize("x_shape, n_C, pads", [((2, 7, 6, 32), 33, ((1, 1), (1, 1))),
                                                ((1, 5, 8, 40), 32, ((0, 2), (1, 0)))])
def test_conv2d_by_winograd_matches_torch(x_shape, n_C, pads):
    x, W, b, _ = fast_path_arrays(x_shape, (3, 3, x_shape[3], n_C), True, np.float64, seed=9)
    out, saved = conv.conv2d_forward(x, W, b, (1, 1), pads)
    assert saved.path.forward is conv_winograd.winograd_forward
    torch_pads = (pads[1][0], pads[1][1], pads[0][0], pads[0][1])
    assert_conv_matches_torch(lambda tx, tW, tb: TF.conv2d(TF.pad(tx, torch_pads), tW, tb), x, W, b, out,
                              conv.conv2d_backward, saved)
