"""conv2d (stride, pads, "same", dilation, groups): its kernels (kernels/conv.py, conv_fast.py) against reference.py's
loops on sampled grids in float64 to 1e-10, the one dispatch that picks a kernel, the memory a batch takes, the
argument checks, the Tensor op (gradcheck, labels, the gradients nobody needs skipped, a weight in PyTorch's layout),
convs in a network, and all of it against PyTorch. conv_transpose2d: tests/test_conv_transpose.py.
"""

import random
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_cnn.functional as F
from tests.helpers import (
    SEEDS,
    TF,
    assert_conv_matches_torch,
    assert_raises_naming,
    assert_raises_recording_nothing,
    backprop,
    conv_arrays,
    leaf,
    nchw,
    nhwc,
    rand,
    same_program,
    torch,
)
from tinygrad_cnn import Tensor, gradcheck, nn, no_grad, reference
from tinygrad_cnn.kernels import checks, conv, conv_depthwise, conv_fast, conv_winograd
from tinygrad_cnn.ops import cnn as cnn_ops

TOL = 1e-10


# ----------------------------------------------------------------------------- the sampled grids
def conv_grid(n_cases, seed=0, max_f=5, max_extra=5, max_batch=3, max_channels=5):
    """Sampled conv configs: (m, n_H, n_W, C, n_C, f, stride, pads, bias shape); the window always fits."""
    rng = random.Random(seed)
    cases = []
    for _ in range(n_cases):
        f = (rng.randint(1, max_f), rng.randint(1, max_f))
        pads = tuple((rng.randint(0, 2), rng.randint(0, 2)) for _ in range(2))
        hw = tuple(max(1, k - sum(p)) + rng.randint(0, max_extra) for k, p in zip(f, pads, strict=True))
        n_C = rng.randint(1, 4)
        bias = rng.choice([None, (n_C,), (1, 1, 1, n_C)])
        cases.append((rng.randint(1, max_batch), *hw, rng.randint(1, max_channels), n_C, f,
                      (rng.randint(1, 3), rng.randint(1, 3)), pads, bias))
    return cases


def conv_inputs(case, seed, dtype=np.float64):
    m, n_H, n_W, C, n_C, f, _, _, bias = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((m, n_H, n_W, C)).astype(dtype)
    W = rng.standard_normal((*f, C, n_C)).astype(dtype)
    b = None if bias is None else rng.standard_normal(bias).astype(dtype)
    return x, W, b


# up to 12 channels too: conv2d_input_grad scatters channels-first when the column stride is > 1 and C < 8
CONV_CASES = conv_grid(120) + conv_grid(40, seed=7, max_channels=12)


def grouped_conv_grid(n_cases, seed=0, max_f=4, max_extra=4):
    """Sampled configs: (m, n_H, n_W, groups, C per group, n_C per group, f, stride, pads, dilation, bias?)."""
    rng = random.Random(seed)
    cases = []
    for _ in range(n_cases):
        f = (rng.randint(1, max_f), rng.randint(1, max_f))
        dilation = (rng.randint(1, 3), rng.randint(1, 3))
        pads = tuple((rng.randint(0, 2), rng.randint(0, 2)) for _ in range(2))
        span = checks.dilated_size(f, dilation)
        hw = tuple(max(1, k - sum(p)) + rng.randint(0, max_extra) for k, p in zip(span, pads, strict=True))
        groups = rng.choice([1, 1, 2, 3, 4])
        per_group = rng.choice([1, 1, 2, 3])  # 1: depthwise when groups = n_C_prev
        cases.append((rng.randint(1, 2), *hw, groups, per_group, rng.randint(1, 3), f,
                      (rng.randint(1, 3), rng.randint(1, 3)), pads, dilation, rng.random() < 0.5))
    return cases


def grouped_conv_inputs(case, dtype=np.float64):
    """x (m, n_H, n_W, groups * C_g), W (f_h, f_w, C_g, groups * n_C_g), b (n_C,) or None."""
    m, n_H, n_W, groups, C_g, n_C_g, f, _, _, _, bias = case
    return conv_arrays(case, (m, n_H, n_W, groups * C_g), (*f, C_g, groups * n_C_g),
                         groups * n_C_g if bias else None, dtype)


GROUPED_CASES = grouped_conv_grid(100)


def test_conv_grid_covers_both_col2im_layouts():
    channels_first = [c for c in CONV_CASES if c[6][1] > 1 and c[3] < 8]
    strided_channels_last = [c for c in CONV_CASES if c[6][1] > 1 and c[3] >= 8]
    assert len(channels_first) >= 20 and len(strided_channels_last) >= 5


def test_grouped_grid_covers_the_variants():
    assert sum(c[3] > 1 and c[4] == 1 for c in GROUPED_CASES) >= 10  # depthwise
    assert sum(c[3] > 1 and c[4] > 1 for c in GROUPED_CASES) >= 10  # grouped
    assert sum(max(c[9]) > 1 and c[3] == 1 and c[7][1] > 1 and c[4] < 8 for c in GROUPED_CASES) >= 5  # channels-first
    assert sum(c[6][0] != c[6][1] for c in GROUPED_CASES) >= 30  # rectangular kernels


# ----------------------------------------------------------------------------- conv2d's kernels against the loops
@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_forward_and_backward_match_reference(case):
    x, W, b = conv_inputs(case, seed=len(str(case)))
    stride, pads = case[6], case[7]
    out, saved = conv.conv2d_forward(x, W, b, stride, pads)
    np.testing.assert_allclose(out, reference.conv_forward(x, W, b, stride, pads), rtol=0, atol=TOL)

    dout = np.random.default_rng(1).standard_normal(out.shape)
    dx, dW, db = conv.conv2d_backward(dout, saved)
    ref_dx, ref_dW, ref_db = reference.conv_backward(dout, x, W, stride, pads)
    np.testing.assert_allclose(dx, ref_dx, rtol=0, atol=TOL)
    np.testing.assert_allclose(dW, ref_dW, rtol=0, atol=TOL)
    if b is None:
        assert db is None
    else:
        assert db.shape == b.shape
        np.testing.assert_allclose(db.reshape(-1), ref_db, rtol=0, atol=TOL)


def test_conv2d_backward_skips_what_is_not_needed():
    x, W, b = conv_inputs((2, 6, 5, 3, 4, (3, 2), None, None, (4,)), seed=3)
    out, saved = conv.conv2d_forward(x, W, b, (2, 1), ((1, 0), (1, 1)))
    dout = np.ones_like(out)
    dx, dW, db = conv.conv2d_backward(dout, saved, need_dx=False, need_db=False)
    assert dx is None and db is None
    np.testing.assert_allclose(dW, reference.conv_backward(dout, x, W, (2, 1), ((1, 0), (1, 1)))[1], atol=TOL)
    dx, dW, db = conv.conv2d_backward(dout, saved, need_dW=False)
    assert dW is None and dx.shape == x.shape and db.shape == (4,)


@pytest.mark.parametrize("n, f, s", [(7, 3, 1), (8, 3, 2), (5, 1, 3), (6, 4, 2), (9, 5, 3), (4, 2, 1)])
def test_same_padding_keeps_ceil_n_over_stride(n, f, s):
    x, W, b = conv_inputs((1, n, n + 1, 2, 3, (f, f), None, None, None), seed=n)
    stride, pads = checks.check_conv2d_args(x, W, b, s, "same")
    out, _ = conv.conv2d_forward(x, W, b, stride, pads)
    assert out.shape == (1, -(-n // s), -(-(n + 1) // s), 3)
    np.testing.assert_allclose(out, reference.conv_forward(x, W, b, stride, pads), atol=TOL)
    if s == 1 and f % 2 == 1:
        assert pads == (((f - 1) // 2,) * 2,) * 2


def test_valid_padding_is_zero():
    x, W, b = conv_inputs((1, 5, 5, 2, 3, (3, 3), None, None, None), seed=0)
    assert checks.check_conv2d_args(x, W, b, 1, "valid") == ((1, 1), ((0, 0), (0, 0)))


def test_output_size_is_the_notebook_formula():
    assert checks.output_size(5, 3, 2, 2) == 3
    assert checks.output_size(4, 2, 0, 2) == 2
    assert checks.output_size(7, 3, 0, 3) == 2


def test_float32_keeps_dtype():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    W = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    out, saved = conv.conv2d_forward(x, W, b, (1, 1), ((1, 1), (1, 1)))
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in conv.conv2d_backward(np.ones_like(out), saved))
    np.testing.assert_allclose(out, reference.conv_forward(x, W, b, (1, 1), ((1, 1), (1, 1))), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("C, n_C, f, dilation, pads", [
    (4, 3, (3, 2), (1, 1), ((1, 0), (0, 1))),  # n_C <= C: dx as a conv of dout
    (8, 16, (3, 3), (2, 1), ((2, 0), (1, 1))),  # C = 8, n_C = 2C, dilated: as a conv
    (3, 3, (2, 3), (1, 2), ((0, 0), (0, 0))),  # no padding
    (2, 5, (3, 3), (1, 1), ((1, 1), (1, 1))),  # n_C > 2C: col2im
    (4, 3, (2, 2), (1, 1), ((2, 0), (0, 0))),  # a pad wider than the window's reach: col2im
])
def test_conv2d_input_grad_stride_one_both_ways(C, n_C, f, dilation, pads):
    rng = np.random.default_rng(C * n_C)
    x, W = rng.standard_normal((2, 6, 7, C)), rng.standard_normal((*f, C, n_C))
    out, saved = conv.conv2d_forward(x, W, None, (1, 1), pads, dilation)
    dout = rng.standard_normal(out.shape)
    dx, _, _ = conv.conv2d_backward(dout, saved, need_dW=False, need_db=False)
    np.testing.assert_allclose(dx, reference.conv_backward(dout, x, W, (1, 1), pads, dilation)[0], atol=TOL)


# ----------------------------------------------------------------------------- dilation and groups
@pytest.mark.parametrize("case", GROUPED_CASES)
def test_conv2d_dilation_groups_match_reference(case):
    x, W, b = grouped_conv_inputs(case)
    groups, stride, pad, dilation = case[3], case[7], case[8], case[9]
    assert checks.check_conv2d_args(x, W, b, stride, pad, dilation, groups) == (stride, pad)
    out, saved = conv.conv2d_forward(x, W, b, stride, pad, dilation=dilation, groups=groups)
    np.testing.assert_allclose(out, reference.conv_forward(x, W, b, stride, pad, dilation, groups), rtol=0, atol=TOL)

    dout = np.random.default_rng(1).standard_normal(out.shape)
    dx, dW, db = conv.conv2d_backward(dout, saved)
    ref_dx, ref_dW, ref_db = reference.conv_backward(dout, x, W, stride, pad, dilation, groups)
    np.testing.assert_allclose(dx, ref_dx, rtol=0, atol=TOL)
    np.testing.assert_allclose(dW, ref_dW, rtol=0, atol=TOL)
    if b is not None:
        np.testing.assert_allclose(db, ref_db, rtol=0, atol=TOL)


def test_conv2d_output_size_with_dilation():
    x = np.zeros((1, 11, 9, 2))
    W = np.zeros((3, 2, 2, 1))
    out, _ = conv.conv2d_forward(x, W, None, (2, 1), ((1, 0), (0, 2)), dilation=(3, 2))
    # floor((n + pads - dilation * (f - 1) - 1) / stride) + 1
    assert out.shape == (1, (11 + 1 - 6 - 1) // 2 + 1, (9 + 2 - 2 - 1) // 1 + 1, 1)


def test_conv2d_int_dilation_is_a_pair():
    x, W, b = grouped_conv_inputs((2, 7, 8, 1, 2, 2, (3, 2), None, None, None, True))
    out_int, _ = conv.conv2d_forward(x, W, b, (1, 1), ((0, 0), (0, 0)), dilation=2)
    out_pair, _ = conv.conv2d_forward(x, W, b, (1, 1), ((0, 0), (0, 0)), dilation=(2, 2))
    np.testing.assert_array_equal(out_int, out_pair)


@pytest.mark.parametrize("n, f, s, d", [(9, 3, 1, 2), (8, 3, 2, 2), (10, 2, 1, 3), (7, 3, 3, 2), (12, 4, 2, 3)])
def test_same_padding_uses_the_dilated_window(n, f, s, d):
    x, W, b = grouped_conv_inputs((1, n, n + 1, 2, 1, 1, (f, f), None, None, None, False))
    stride, pads = checks.check_conv2d_args(x, W, b, s, "same", dilation=d, groups=2)
    assert pads == checks.same_pads((n, n + 1), (d * (f - 1) + 1,) * 2, (s, s))
    out, _ = conv.conv2d_forward(x, W, b, stride, pads, dilation=d, groups=2)
    assert out.shape == (1, -(-n // s), -(-(n + 1) // s), 2)
    np.testing.assert_allclose(out, reference.conv_forward(x, W, b, stride, pads, (d, d), 2), rtol=0, atol=TOL)


def test_conv2d_groups_split_the_channels():
    """groups=2 is two independent convolutions, one per half of the channels, outputs side by side."""
    x, W, b = grouped_conv_inputs((2, 6, 5, 2, 3, 2, (3, 3), None, None, None, True))
    pads = ((1, 1), (1, 1))
    out, _ = conv.conv2d_forward(x, W, b, (1, 1), pads, groups=2)
    first, _ = conv.conv2d_forward(x[..., :3], W[..., :2], b[:2], (1, 1), pads)
    second, _ = conv.conv2d_forward(x[..., 3:], W[..., 2:], b[2:], (1, 1), pads)
    np.testing.assert_allclose(out, np.concatenate([first, second], axis=3), rtol=0, atol=TOL)


def test_grouped_conv2d_float32_keeps_dtype():
    x, W, b = grouped_conv_inputs((2, 8, 8, 4, 1, 2, (3, 3), None, None, None, True), dtype=np.float32)
    out, saved = conv.conv2d_forward(x, W, b, (2, 2), ((1, 1), (1, 1)), dilation=2, groups=4)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    assert all(g.dtype == np.float32 for g in conv.conv2d_backward(np.ones_like(out), saved))


# ----------------------------------------------------------------------------- the canonical conv and the one dispatch
def _kernel_of(path_kernel):
    """The function behind a ConvPath entry (a functools.partial for the grouped kernels)."""
    return getattr(path_kernel, "func", path_kernel)


@pytest.mark.parametrize("case", CONV_CASES[::4])
def test_the_canonical_conv_matches_reference(case):
    """conv.py's canonical kernels alone, whatever conv_path would pick: Z = im2col @ W + b, dW = cols.T @ dZ,
    db = the sum of dZ, dA_prev by col2im."""
    x, W, b = conv_inputs(case, seed=len(str(case)) + 1)
    stride, pads = case[6], case[7]
    Z, cols = conv.conv_forward(x, W, b, stride, pads)
    np.testing.assert_allclose(Z, reference.conv_forward(x, W, b, stride, pads), rtol=0, atol=TOL)
    dZ = np.random.default_rng(2).standard_normal(Z.shape)
    ref_dx, ref_dW, ref_db = reference.conv_backward(dZ, x, W, stride, pads)
    np.testing.assert_allclose(conv.conv_dA_prev(dZ, W, x.shape, stride, pads), ref_dx, rtol=0, atol=TOL)
    np.testing.assert_allclose(conv.conv_dW(cols, dZ, W.shape), ref_dW, rtol=0, atol=TOL)
    np.testing.assert_allclose(conv.conv_db(dZ), ref_db.reshape(-1), rtol=0, atol=TOL)


@pytest.mark.parametrize("case", CONV_CASES[1::4])
def test_the_channels_first_col2im_equals_the_canonical_one_everywhere(case):
    """The fast dA_prev kernel computes what conv_dA_prev computes, also where the dispatch would not pick it."""
    x, W, _ = conv_inputs(case, seed=5)
    stride, pads = case[6], case[7]
    Z, _ = conv.conv_forward(x, W, None, stride, pads)
    dZ = np.random.default_rng(3).standard_normal(Z.shape)
    np.testing.assert_allclose(conv_fast.dA_prev_channels_first(dZ, W, x.shape, stride, pads),
                               conv.conv_dA_prev(dZ, W, x.shape, stride, pads), rtol=0, atol=TOL)


@pytest.mark.parametrize("x_shape, W_shape, stride, pads, groups, dx_kernel", [
    ((2, 6, 6, 8), (3, 3, 8, 8), (1, 1), ((1, 1), (1, 1)), 1, "as conv"),         # stride 1, n_C <= C
    ((2, 6, 6, 4), (3, 3, 4, 8), (1, 1), ((1, 1), (1, 1)), 1, "as conv"),         # C <= 8, n_C <= 2C
    ((2, 6, 6, 4), (3, 3, 4, 9), (1, 1), ((1, 1), (1, 1)), 1, "canonical"),       # n_C > 2C
    ((2, 6, 6, 4), (2, 2, 4, 4), (1, 1), ((2, 0), (0, 0)), 1, "canonical"),       # a pad wider than the reach
    ((2, 9, 9, 3), (3, 3, 3, 8), (2, 2), ((1, 1), (1, 1)), 1, "channels first"),  # column stride 2, C < 8
    ((2, 9, 9, 3), (3, 3, 3, 8), (2, 1), ((1, 1), (1, 1)), 1, "canonical"),       # column stride 1
    ((2, 9, 9, 8), (3, 3, 8, 8), (2, 2), ((1, 1), (1, 1)), 1, "canonical"),       # C >= 8
    ((2, 6, 6, 8), (3, 3, 2, 8), (1, 1), ((1, 1), (1, 1)), 4, "grouped"),
    ((2, 9, 9, 4), (3, 3, 2, 4), (2, 2), ((1, 1), (1, 1)), 2, "grouped"),         # strided (depthwise: its own)
])
def test_conv_path_picks_each_kernel_where_documented(x_shape, W_shape, stride, pads, groups, dx_kernel):
    rng = np.random.default_rng(9)
    x, W = rng.standard_normal(x_shape), rng.standard_normal(W_shape)
    out, saved = conv.conv2d_forward(x, W, None, stride, pads, groups=groups)
    path = saved.path
    grouped = groups > 1
    assert _kernel_of(path.forward) is (conv_fast.grouped_forward if grouped else conv.conv_forward)
    assert _kernel_of(path.dW) is (conv_fast.grouped_dW if grouped else conv.conv_dW)
    assert _kernel_of(path.im2col) is (conv_fast.grouped_im2col if grouped else conv.im2col)
    expected = {"as conv": conv._dA_prev_as_conv, "canonical": conv.conv_dA_prev, "grouped": conv_fast.grouped_dA_prev,
                "channels first": conv_fast.dA_prev_channels_first}[dx_kernel]
    assert _kernel_of(path.dA_prev) is expected
    assert path.keep_cols and saved.cols is not None  # a tiny batch is one block: its im2col kept for dW
    dout = rng.standard_normal(out.shape)
    dx, dW, _ = conv.conv2d_backward(dout, saved)
    ref_dx, ref_dW, _ = reference.conv_backward(dout, x, W, stride, pads, (1, 1), groups)
    np.testing.assert_allclose(dx, ref_dx, rtol=0, atol=TOL)
    np.testing.assert_allclose(dW, ref_dW, rtol=0, atol=TOL)


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


def test_each_choice_of_conv_path_says_when_and_why_in_one_line():
    """Every branch of the one dispatch (each `if` / `elif`) opens with one comment line, on the `if` line or alone
    above its body: when the fast path is chosen, and why it is faster there."""
    import ast
    import inspect
    lines = inspect.getsource(conv.conv_path).splitlines()
    branches = [n for n in ast.walk(ast.parse("\n".join(lines))) if isinstance(n, ast.If)]
    assert len(branches) >= 5
    for branch in branches:
        header, between = lines[branch.lineno - 1], lines[branch.lineno:branch.body[0].lineno - 1]
        comments = [line.strip() for line in between] + ([header[header.index("#"):]] if "#" in header else [])
        assert len(comments) == 1 and comments[0].startswith("# ") and ": " in comments[0], (header, between)


def test_a_batch_larger_than_a_block_keeps_no_im2col(monkeypatch):
    monkeypatch.setattr(conv, "BLOCK_BYTES", 1)
    rng = np.random.default_rng(10)
    x, W = rng.standard_normal((3, 5, 5, 2)), rng.standard_normal((3, 3, 2, 4))
    out, saved = conv.conv2d_forward(x, W, None, (1, 1), ((1, 1), (1, 1)))
    assert saved.path.block == 1 and not saved.path.keep_cols and saved.cols is None
    np.testing.assert_allclose(conv.conv2d_cols(saved), conv.conv_forward(x, W, None, (1, 1), ((1, 1), (1, 1)))[1])


@pytest.mark.slow
@pytest.mark.parametrize("x_shape, W_shape, stride, pad, groups", [
    ((32, 28, 28, 8), (3, 3, 8, 16), 1, 1, 1),     # dA_prev as a conv
    ((32, 16, 16, 32), (3, 3, 32, 64), 1, 1, 1),   # canonical col2im
    ((16, 64, 64, 3), (5, 5, 3, 32), 2, 2, 1),     # channels-first col2im
    ((32, 16, 16, 32), (3, 3, 8, 32), 2, 1, 4),    # grouped
])
def test_conv_memory_beyond_its_arrays_stays_about_one_block_whatever_the_batch(x_shape, W_shape, stride, pad,
                                                                                 groups):
    """Forward + backward of a scalar loss hold out, the dense dZ and dx; the rest (im2col, padded buffers) is
    about one block, for a batch of m or 4m images."""
    rng = np.random.default_rng(11)
    for m in (x_shape[0], 4 * x_shape[0]):
        x = rng.standard_normal((m, *x_shape[1:])).astype(np.float32)
        W = rng.standard_normal(W_shape).astype(np.float32)
        tracemalloc.start()
        out, saved = conv.conv2d_forward(x, W, None, (stride, stride), ((pad, pad), (pad, pad)), groups=groups)
        dx, _, _ = conv.conv2d_backward(np.broadcast_to(np.ones((), np.float32), out.shape), saved)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert peak - 2 * out.nbytes - dx.nbytes <= 2 * conv.BLOCK_BYTES, (m, peak / 2 ** 20)


# ----------------------------------------------------------------------------- dA_prev is a conv_transpose2d
@pytest.mark.parametrize("case", GROUPED_CASES[:40])
def test_conv_transpose2d_is_conv2d_input_gradient(case):
    """conv_transpose2d(dZ, W, stride, pad) is the dA_prev of conv2d(A_prev, W, stride, pad)."""
    x, W, _ = grouped_conv_inputs(case)
    groups, stride, pads, dilation = case[3], case[7], case[8], case[9]
    out, saved = conv.conv2d_forward(x, W, None, stride, pads, dilation, groups)
    dZ = np.random.default_rng(5).standard_normal(out.shape)
    dA_prev = conv.conv2d_backward(dZ, saved)[0]
    # the output_padding that gives back x's size (several input sizes map to the same conv2d output size)
    output_padding = tuple(n - ((o - 1) * s - sum(p) + d * (k - 1) + 1) for n, o, s, p, d, k in
                           zip(x.shape[1:3], out.shape[1:3], stride, pads, dilation, W.shape[:2], strict=True))
    transposed, _ = conv.conv_transpose2d_forward(dZ, W, None, stride, pads, output_padding, dilation, groups)
    np.testing.assert_allclose(transposed, dA_prev, rtol=0, atol=TOL)
    np.testing.assert_allclose(transposed, reference.conv_backward(dZ, x, W, stride, pads, dilation, groups)[0],
                               rtol=0, atol=TOL)


# ----------------------------------------------------------------------------- the argument checks
def _x(shape=(2, 5, 5, 3)):
    return np.zeros(shape)


def _W(shape=(3, 3, 3, 4)):
    return np.zeros(shape)


def _z(*shape):
    return np.zeros(shape)


BAD_INPUTS = [
    # (call, exception type, words the message must contain)
    (lambda: checks.check_conv2d_args(_x((2, 5, 5, 4)), _W((3, 3, 3, 8)), None, 1, 0), ValueError,
     ["conv2d", "x has 4 channels (axis 3)", "W expects 3", "W.shape=(3, 3, 3, 8)"]),
    (lambda: checks.check_conv2d_args(_x((2, 3, 9, 9)), _W((3, 3, 3, 8)), None, 1, 0), ValueError,
     ["conv2d", "NCHW", "transpose(0, 2, 3, 1)"]),
    (lambda: checks.check_conv2d_args(_x((5, 5, 3)), _W(), None, 1, 0), ValueError,
     ["conv2d", "4-D NHWC", "(5, 5, 3)", "x[None]"]),
    (lambda: checks.check_conv2d_args(_x(), _W((3, 3, 3)), None, 1, 0), ValueError,
     ["conv2d", "W must be a 4-D", "(f_h, f_w, n_C_prev, n_C)"]),
    (lambda: checks.check_conv2d_args(_x(), _W(), np.zeros(5), 1, 0), ValueError,
     ["conv2d", "b must have shape (4,) or (1, 1, 1, 4)", "(5,)"]),
    (lambda: checks.check_conv2d_args(_x(), _W(), np.zeros((1, 4)), 1, 0), ValueError, ["b must have shape"]),
    (lambda: checks.check_conv2d_args(_x((1, 2, 2, 3)), _W((5, 5, 3, 1)), None, 1, 1), ValueError,
     ["conv2d", "window 5x5 is larger than the padded input 4x4"]),
    (lambda: checks.check_conv2d_args(_x(), _W(), None, 0, 0), TypeError, ["conv2d", "stride", "positive int"]),
    (lambda: checks.check_conv2d_args(_x(), _W(), None, True, 0), TypeError, ["conv2d", "stride", "True"]),
    (lambda: checks.check_conv2d_args(_x(), _W(), None, 1.0, 0), TypeError, ["stride"]),
    (lambda: checks.check_conv2d_args(_x(), _W(), None, (1, 2, 3), 0), TypeError, ["stride", "pair"]),
    (lambda: checks.check_conv2d_args(_x(), _W(), None, 1, -1), ValueError, ["conv2d", "pad must be >= 0"]),
    (lambda: checks.check_conv2d_args(_x(), _W(), None, 1, ((0, -1), (0, 0))), ValueError, ["pad must be >= 0"]),
    (lambda: checks.check_conv2d_args(_x(), _W(), None, 1, 1.5), TypeError, ["conv2d", "pad must be"]),
    (lambda: checks.check_conv2d_args(_x(), _W(), None, 1, (1, 2, 3)), TypeError, ["pad must be"]),
    (lambda: checks.check_conv2d_args(_x(), _W(), None, 1, "full"), ValueError,
     ["conv2d", "unknown pad mode 'full'", "same", "valid"]),
    (lambda: checks.check_conv2d_args([[1.0]], _W(), None, 1, 0), TypeError, ["conv2d", "x must be a numpy array"]),
    (lambda: checks.check_conv2d_args(_x().astype(bool), _W(), None, 1, 0), TypeError, ["real numbers", "bool"]),
    (lambda: checks.check_conv2d_args(_z(2, 5, 5, 4), _z(3, 3, 1, 6), None, 1, 0, groups=3), ValueError,
     ["conv2d: groups=3 does not divide n_C_prev=4", "x.shape=(2, 5, 5, 4)", "W.shape=(3, 3, 1, 6)"]),
    (lambda: checks.check_conv2d_args(_z(2, 5, 5, 4), _z(3, 3, 2, 3), None, 1, 0, groups=2), ValueError,
     ["conv2d: groups=2 does not divide n_C=3", "W.shape=(3, 3, 2, 3)"]),
    (lambda: checks.check_conv2d_args(_z(2, 5, 5, 4), _z(3, 3, 1, 4), None, 1, 0, groups=2), ValueError,
     ["conv2d", "x has 4 channels (axis 3) but W expects 2", "W.shape[2] * groups = 1 * 2"]),
    (lambda: checks.check_conv2d_args(_z(2, 5, 5, 4), _z(3, 3, 1, 4), None, 1, 0, groups=0), TypeError,
     ["conv2d", "groups must be a positive int", "0"]),
    (lambda: checks.check_conv2d_args(_z(2, 5, 5, 4), _z(3, 3, 1, 4), None, 1, 0, groups=2.0), TypeError,
     ["conv2d", "groups must be a positive int", "2.0"]),
    (lambda: checks.check_conv2d_args(_z(2, 5, 5, 4), _z(3, 3, 4, 4), None, 1, 0, dilation=0), TypeError,
     ["conv2d", "dilation must be a positive int or a pair", "0"]),
    (lambda: checks.check_conv2d_args(_z(2, 5, 5, 4), _z(3, 3, 4, 4), None, 1, 0, dilation=(1, 2, 3)), TypeError,
     ["conv2d", "dilation"]),
    (lambda: checks.check_conv2d_args(_z(2, 5, 5, 4), _z(3, 3, 4, 4), None, 1, 0, dilation=3), ValueError,
     ["conv2d", "window 7x7 is larger than the padded input 5x5"]),
    (lambda: checks.check_conv2d_args(_z(2, 5, 5, 4), _z(3, 3), None, 1, 0), ValueError,
     ["conv2d", "W must be a 4-D", "n_C_prev // groups"]),
]


@pytest.mark.parametrize("call, error, words", BAD_INPUTS)
def test_bad_inputs_raise_with_a_message_naming_the_problem(call, error, words):
    assert_raises_naming(call, error, words)


def test_good_inputs_normalize():
    assert checks.check_conv2d_args(_x(), _W(), np.zeros((1, 1, 1, 4)), (2, 1), (1, 0)) == \
        ((2, 1), ((1, 1), (0, 0)))


# ----------------------------------------------------------------------------- conv2d, the Tensor op
@pytest.mark.filterwarnings("ignore:conv2d. W of shape:UserWarning")  # drawn shapes that fit PyTorch's layout too
@pytest.mark.parametrize("case", conv_grid(12, seed=3, max_f=3, max_extra=2, max_batch=2, max_channels=3))
def test_conv2d_gradcheck_and_reference(case):
    stride, pads = case[6], case[7]
    x, W, b = (None if a is None else Tensor(a, requires_grad=True) for a in conv_inputs(case, seed=0))
    out = F.conv2d(x, W, b, stride=stride, pad=pads)
    np.testing.assert_allclose(out.data, reference.conv_forward(x.data, W.data, None if b is None else b.data,
                                                                stride, pads), atol=1e-10)
    inputs = (x, W) if b is None else (x, W, b)
    assert gradcheck(lambda *t: F.conv2d(t[0], t[1], t[2] if len(t) > 2 else None, stride=stride, pad=pads),
                     *inputs)


def test_same_padding_and_tensor_methods_agree():
    x, W = rand(2, 7, 8, 3, seed=7), rand(3, 3, 3, 4, seed=8)
    out = x.conv2d(W, stride=2, pad="same")
    assert out.shape == (2, 4, 4, 4)
    np.testing.assert_array_equal(out.data, F.conv2d(x, W, stride=2, pad="same").data)


def test_conv2d_labels_show_the_hyper_parameters():
    x, W = rand(2, 5, 7, 4, seed=0), rand(3, 3, 4, 8, seed=1)
    assert F.conv2d(x, W, stride=2, pad=1).op_label == "conv2d stride=2 pad=1"
    assert F.conv2d(x, W, stride=(2, 1), pad=((1, 0), (1, 1))).op_label == \
        "conv2d stride=(2, 1) pad=((1, 0), (1, 1))"


def test_conv2d_label_shows_dilation_and_groups_only_when_not_one():
    x, W = leaf(np.ones((1, 6, 6, 4))), leaf(np.ones((3, 3, 2, 4)))
    assert x.conv2d(leaf(np.ones((3, 3, 4, 4))), pad=1).op_label == "conv2d stride=1 pad=1"
    assert x.conv2d(W, dilation=2, groups=2).op_label == "conv2d stride=1 pad=0 dilation=2 groups=2"
    assert x.conv2d(W, dilation=(1, 2), groups=2).op_args["dilation"] == (1, 2)


def test_conv2d_skips_gradients_nobody_needs(monkeypatch):
    calls = []
    real_backward = cnn_ops.conv2d_backward

    def spy(dout, saved, **need):
        calls.append(need)
        return real_backward(dout, saved, **need)
    monkeypatch.setattr(cnn_ops, "conv2d_backward", spy)
    images = rand(2, 5, 5, 3, seed=0, requires_grad=False)
    W, b = rand(3, 3, 3, 4, seed=1), rand(4, seed=2)
    out = F.conv2d(images, W, b, pad=1)
    out.backward(np.ones(out.shape))
    assert calls == [{"need_dx": False, "need_dW": True, "need_db": True}]
    assert images.grad is None and W.grad.shape == W.shape and b.grad.shape == (4,)
    np.testing.assert_allclose(b.grad, np.full(4, 2 * 5 * 5))


def test_a_plain_array_weight_is_a_constant():
    x = rand(1, 4, 4, 2, seed=0)
    out = F.conv2d(x, np.ones((2, 2, 2, 3)))
    out.backward(np.ones(out.shape))
    assert x.grad.shape == x.shape and out.parents[1].grad is None


def test_conv2d_weight_flag_turned_on_between_forward_and_backward():
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 5, 5, 3)), requires_grad=True)
    W = Tensor(rng.standard_normal((3, 3, 3, 4)))
    out = x.conv2d(W, stride=2, pad=1)
    W.requires_grad_()
    out.sum().backward()
    W_ref = Tensor(W.data, requires_grad=True)
    x.conv2d(W_ref, stride=2, pad=1).sum().backward()
    np.testing.assert_allclose(W.grad, W_ref.grad, rtol=1e-12)


def test_conv2d_weight_grad_after_requires_grad_later_with_dilation_and_groups():
    rng = np.random.default_rng(3)
    x, W = leaf(rng.standard_normal((2, 7, 7, 4))), Tensor(rng.standard_normal((3, 3, 2, 6)))
    out = x.conv2d(W, stride=2, pad=1, dilation=2, groups=2)
    W.requires_grad_()
    g = backprop(out)
    _, dW, _ = reference.conv_backward(g, x.data, W.data, (2, 2), ((1, 1), (1, 1)), (2, 2), 2)
    np.testing.assert_allclose(W.grad, dW, rtol=TOL, atol=TOL)


def test_float32_stays_float32():
    x = rand(2, 6, 6, 3, seed=0, dtype=np.float32)
    W = rand(3, 3, 3, 4, seed=1, dtype=np.float32)
    y = F.avg_pool2d(F.max_pool2d(F.conv2d(F.pad2d(x, 1), W, pad=1), 2, 1), 2)
    assert y.dtype == np.float32
    y.backward(np.ones(y.shape, dtype=np.float32))
    assert x.grad.dtype == np.float32 and W.grad.dtype == np.float32


def test_no_grad_records_nothing():
    x, W = rand(1, 4, 4, 2, seed=0), rand(2, 2, 2, 3, seed=1)
    with no_grad():
        out = F.max_pool2d(F.conv2d(x, W), 2, 1)
    assert out.parents == () and out.op is None and not out.requires_grad


@pytest.mark.parametrize("case", GROUPED_CASES[::3])
def test_conv2d_dilation_groups_match_the_loops(case):
    groups, stride, pads, dilation = case[3], case[7], case[8], case[9]
    x, W, b = grouped_conv_inputs(case)
    tx, tW = leaf(x), leaf(W)
    tb = None if b is None else leaf(b)
    out = tx.conv2d(tW, tb, stride=stride, pad=pads, dilation=dilation, groups=groups)
    np.testing.assert_allclose(out.data, reference.conv_forward(x, W, b, stride, pads, dilation, groups),
                               rtol=TOL, atol=TOL)
    g = backprop(out)
    dx, dW, db = reference.conv_backward(g, x, W, stride, pads, dilation, groups)
    np.testing.assert_allclose(tx.grad, dx, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(tW.grad, dW, rtol=TOL, atol=TOL)
    if b is not None:
        np.testing.assert_allclose(tb.grad, db, rtol=TOL, atol=TOL)


@pytest.mark.parametrize("dilation, groups", [(2, 1), ((1, 2), 2), (1, 4), (2, 4)])
def test_conv2d_dilation_groups_gradcheck(dilation, groups):
    rng = np.random.default_rng(1)
    x, W, b = rng.standard_normal((2, 6, 5, 4)), rng.standard_normal((3, 2, 4 // groups, 4)), rng.standard_normal(4)
    assert gradcheck(lambda x, W, b: x.conv2d(W, b, stride=(2, 1), pad=1, dilation=dilation, groups=groups),
                     leaf(x), leaf(W), leaf(b))


def test_depthwise_conv2d_is_one_filter_per_channel():
    rng = np.random.default_rng(2)
    x, W = rng.standard_normal((2, 5, 5, 3)), rng.standard_normal((3, 3, 1, 3))
    out = F.conv2d(x, W, pad=1, groups=3)
    for c in range(3):
        np.testing.assert_allclose(out.data[..., c:c + 1], F.conv2d(x[..., c:c + 1], W[..., c:c + 1], pad=1).data,
                                   rtol=TOL, atol=TOL)


BAD_CALLS = [
    (lambda x, W: F.conv2d(x, Tensor(np.zeros((3, 3, 4, 8)))), ValueError, "x has 3 channels (axis 3)"),
    (lambda x, W: F.conv2d(x, W, Tensor(np.zeros(3))), ValueError, "b must have shape (4,)"),
    (lambda x, W: F.conv2d(x, W, stride=0), TypeError, "stride"),
    (lambda x, W: F.conv2d(x, W, pad=-1), ValueError, "pad must be >= 0"),
    (lambda x, W: F.conv2d(Tensor(np.zeros((5, 5, 3)), requires_grad=True), W), ValueError, "4-D NHWC"),
]


@pytest.mark.parametrize("call, error, words", BAD_CALLS)
def test_bad_inputs_raise_before_anything_is_recorded(monkeypatch, call, error, words):
    assert_raises_recording_nothing(monkeypatch, call, error, words)


@pytest.mark.parametrize("pad", [((1, 2, 3), (0, 0)), (1.5, 1), ((1, 0), "a")])
def test_malformed_pad_pairs_are_named(pad):
    with pytest.raises(TypeError, match=r"conv2d: pad must be an int, \(p_h, p_w\) or \(\(top, bottom\)"):
        rand(1, 4, 4, 2, seed=0).conv2d(rand(2, 2, 2, 1, seed=1), pad=pad)


@pytest.mark.parametrize("call, error, words", [
    (lambda x: x.conv2d(np.ones((3, 3, 2, 6)), groups=3), ValueError, "groups=3 does not divide n_C_prev=4"),
    (lambda x: x.conv2d(np.ones((3, 3, 2, 5)), groups=2), ValueError, "groups=2 does not divide n_C=5"),
    (lambda x: x.conv2d(np.ones((3, 3, 2, 4)), groups=0), TypeError, "groups must be a positive int"),
    (lambda x: x.conv2d(np.ones((3, 3, 4, 4)), dilation=0), TypeError, "dilation must be a positive int"),
    (lambda x: x.conv2d(np.ones((3, 3, 4, 4)), dilation=3), ValueError, r"window 7x7 is larger than the padded"),
    (lambda x: x.conv2d(np.ones((3, 3, 3, 4)), groups=1), ValueError, "x has 4 channels"),
])
def test_conv2d_errors_name_the_argument_and_shapes(call, error, words):
    with pytest.raises(error, match=words):
        call(leaf(np.ones((1, 6, 6, 4))))


def test_conv2d_with_zero_filters_raises():
    with pytest.raises(ValueError, match=r"conv2d: W has 0 filters .*W.shape=\(3, 3, 2, 0\)"):
        Tensor.ones(1, 4, 4, 2).conv2d(Tensor.ones(3, 3, 2, 0))


def test_a_weight_only_in_pytorchs_layout_raises_naming_both_layouts_and_the_transpose():
    x = Tensor.randn(1, 8, 8, 3, seed=0)
    W = np.zeros((8, 3, 5, 5))  # PyTorch: 8 filters of 5x5 over 3 channels
    with pytest.raises(ValueError, match=r"conv2d: W has shape \(8, 3, 5, 5\), PyTorch's layout \(C_out, C_in, f_h, "
                                         r"f_w\) for x's 3 channels; ours is \(f_h, f_w, C_in, C_out\): pass "
                                         r"W\.transpose\(2, 3, 1, 0\) \(shape \(5, 5, 3, 8\)\)"):
        x.conv2d(W)
    x4 = Tensor.randn(1, 4, 4, 8, seed=0)
    Wt = np.zeros((8, 2, 5, 5))  # PyTorch's ConvTranspose2d(8, 2, 5): (C_in, C_out // groups, f_h, f_w)
    with pytest.raises(ValueError, match=r"conv_transpose2d: W has shape \(8, 2, 5, 5\), PyTorch's layout \(C_in, "
                                         r"C_out // groups, f_h, f_w\) for x's 8 channels; ours is \(f_h, f_w, "
                                         r"C_out // groups, C_in\): pass W\.transpose\(2, 3, 1, 0\)"):
        x4.conv_transpose2d(Wt)


def test_a_weight_that_fits_both_layouts_warns():
    x = Tensor.randn(1, 10, 10, 3, seed=0)
    with pytest.warns(UserWarning, match=r"conv2d: W of shape \(8, 3, 3, 3\) is read as ours \(f_h, f_w, C_in, "
                                         r"C_out\): a 8x3 window, 3 filters; in PyTorch's layout it would be 8 "
                                         r"filters of 3x3: then pass W\.transpose\(2, 3, 1, 0\)"):
        out = x.conv2d(np.zeros((8, 3, 3, 3)))
    assert out.shape == (1, 3, 8, 3)
    with warnings.catch_warnings():  # our own layout, square windows: silent
        warnings.simplefilter("error")
        x.conv2d(np.zeros((3, 3, 3, 8)))
        x.conv2d(np.zeros((3, 3, 3, 3)))
        nn.Conv2d(3, 3, 3)(x)



def test_a_weight_whose_window_only_fits_in_pytorchs_layout_says_so():
    """(8, 3, 3, 3) on a 5x5 image: our 8x3 window does not fit, PyTorch's 3x3 does: the error names both layouts."""
    x = Tensor.randn(1, 5, 5, 3, seed=0)
    with pytest.raises(ValueError, match=r"conv2d: window 8x3 is larger than the padded input 5x5 .*; conv2d: W of "
                                         r"shape \(8, 3, 3, 3\) is read as ours .* in PyTorch's layout it would be "
                                         r"8 filters of 3x3: then pass W\.transpose\(2, 3, 1, 0\)"):
        x.conv2d(np.zeros((8, 3, 3, 3)))


def test_the_layout_warning_is_back_after_a_create_graph_walk_that_raised():
    """The walk marks itself in a per-thread switch (modes.recording_walk), restored when it ends, even by an error."""
    from tinygrad_cnn.modes import recording_walk
    x = Tensor.randn(1, 4, 5, 3, seed=0, requires_grad=True)

    def fail(g):
        assert recording_walk.enabled
        raise KeyError("a hook failed")
    x.register_hook(fail)
    with pytest.raises(KeyError, match="a hook failed"):
        x.conv2d(Tensor.randn(3, 3, 3, 2, seed=1)).sum().backward(create_graph=True)
    assert not recording_walk.enabled
    with pytest.warns(UserWarning, match="PyTorch's layout"):
        x.conv2d(Tensor.randn(1, 3, 3, 3, seed=1))


def test_the_layout_warning_is_for_the_users_forward_not_the_librarys_own_backward_ops():
    """The create_graph walk runs conv_transpose2d and conv2d of the user's weight and of gradients itself: a
    weight that only those internal readings find ambiguous (W (2, 1, 2, 2) read by conv_transpose2d) gives no
    warning; one that fits both layouts at the user's conv2d warns once, there."""
    from tinygrad_cnn import grad
    for W_shape, warned in (((2, 1, 2, 2), 0), ((1, 3, 3, 3), 1)):
        x = Tensor.randn(1, 4, 5, W_shape[2], seed=0, requires_grad=True)
        W = Tensor.randn(*W_shape, seed=1, requires_grad=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dx, dW = grad(x.conv2d(W).sum(), (x, W), create_graph=True)
            grad((dx * dx).sum() + (dW * dW).sum(), (x, W))
        layout = [w for w in caught if "PyTorch's layout" in str(w.message)]
        assert len(layout) == warned and all(w.filename == __file__ for w in layout), [str(w.message) for w in caught]


# ----------------------------------------------------------------------------- convs in a network
@st.composite
def conv_pool_configs(draw):
    """Random (x shape, W shape, stride, pad, pool f, pool stride) whose windows fit."""
    f = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pad = draw(st.integers(0, 2))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    n_hw = [draw(st.integers(max(1, k - 2 * pad), k - 2 * pad + 4)) for k in f]
    out_hw = [(n + 2 * pad - k) // s + 1 for n, k, s in zip(n_hw, f, stride, strict=True)]
    pool_f = draw(st.integers(1, min(out_hw)))
    pool_stride = draw(st.one_of(st.none(), st.integers(1, 2)))
    channels = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    x_shape = (draw(st.integers(1, 2)), *n_hw, channels[0])
    return x_shape, (*f, *channels), stride, pad, pool_f, pool_stride


@pytest.mark.filterwarnings("ignore:conv2d. W of shape:UserWarning")  # drawn shapes that fit PyTorch's layout too
@settings(max_examples=25, deadline=None)
@given(config=conv_pool_configs(), seed=st.integers(0, 2**16), pool=st.sampled_from(["max", "avg"]))
def test_random_conv_relu_pool_chains_pass_gradcheck(config, seed, pool):
    x_shape, W_shape, stride, pad, pool_f, pool_stride = config
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal(x_shape), requires_grad=True, name="x")
    W = Tensor(rng.standard_normal(W_shape), requires_grad=True, name="W")
    b = Tensor(rng.standard_normal(W_shape[3]), requires_grad=True, name="b")

    def net(x, W, b):
        z = F.conv2d(x, W, b, stride=stride, pad=pad).tanh()  # tanh: smooth, so no kinks for the differences
        return F.max_pool2d(z, pool_f, pool_stride) if pool == "max" else F.avg_pool2d(z, pool_f, pool_stride)
    assert gradcheck(net, x, W, b)


# ----------------------------------------------------------------------------- against PyTorch
@pytest.mark.parametrize("case", GROUPED_CASES[:40])
def test_conv2d_dilation_groups_match_torch(case):
    torch = pytest.importorskip("torch")
    x, W, b = grouped_conv_inputs(case)
    groups, stride, pads, dilation = case[3], case[7], case[8], case[9]
    out, saved = conv.conv2d_forward(x, W, b, stride, pads, dilation, groups)
    (top, bottom), (left, right) = pads  # PyTorch pads both sides alike: pad explicitly

    def torch_op(tx, tW, tb):
        return torch.nn.functional.conv2d(torch.nn.functional.pad(tx, (left, right, top, bottom)), tW, tb, stride,
                                          0, dilation, groups)
    assert_conv_matches_torch(torch_op, x, W, b, out, conv.conv2d_backward, saved)


def torch_conv(x, W, b, stride, pads):
    """NHWC x, (f_h, f_w, C_prev, C) W as ours; pads ((top, bottom), (left, right))."""
    (top, bottom), (left, right) = pads
    xp = TF.pad(nchw(x), (left, right, top, bottom))
    return nhwc(TF.conv2d(xp, W.permute(3, 2, 0, 1), b, stride=stride))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("stride, pad", [(1, 0), (2, 1), ((2, 1), (1, 2)), (1, ((1, 0), (2, 1))), (3, 2)])
def test_conv2d_matches_pytorch(stride, pad, seed):
    rng = np.random.default_rng(seed)
    m, c_prev, c = (int(n) for n in rng.integers(1, 4, size=3))
    f = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    x = rng.standard_normal((m, int(rng.integers(f[0], 8)), int(rng.integers(f[1], 8)), c_prev))
    W, b = rng.standard_normal((*f, c_prev, c)), rng.standard_normal(c)
    pads = pad if isinstance(pad, tuple) and isinstance(pad[0], tuple) else (
        ((pad, pad), (pad, pad)) if isinstance(pad, int) else ((pad[0], pad[0]), (pad[1], pad[1])))
    s = stride if isinstance(stride, tuple) else (stride, stride)
    same_program(lambda x, W, b: x.conv2d(W, b, stride=stride, pad=pad),
                 lambda x, W, b: torch_conv(x, W, b, s, pads), x, W, b, seed=seed)


def test_conv2d_same_padding_without_bias_matches_pytorch():
    rng = np.random.default_rng(5)
    same_program(lambda x, W: F.conv2d(x, W, pad="same"), lambda x, W: torch_conv(x, W, None, (1, 1), ((1, 1), (1, 1))),
                 rng.standard_normal((2, 5, 6, 3)), rng.standard_normal((3, 3, 3, 4)))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("stride, pad, dilation, groups", [
    (1, 0, 2, 1), (2, 1, (1, 2), 2), (1, 1, 1, 4), ((2, 1), (2, 1), 2, 4), (1, 2, 3, 2)])
def test_conv2d_dilation_groups_match_pytorch(stride, pad, dilation, groups, seed):
    rng = np.random.default_rng(seed)
    x, W, b = rng.standard_normal((2, 9, 8, 4)), rng.standard_normal((3, 2, 4 // groups, 8)), rng.standard_normal(8)
    same_program(lambda x, W, b: x.conv2d(W, b, stride=stride, pad=pad, dilation=dilation, groups=groups),
                 lambda x, W, b: nhwc(TF.conv2d(nchw(x), W.permute(3, 2, 0, 1), b, stride=stride, padding=pad,
                                                dilation=dilation, groups=groups)), x, W, b, seed=seed)


def test_a_small_cnn_end_to_end_matches_pytorch():
    rng = np.random.default_rng(10)
    labels = np.array([1, 0, 2])

    def ours(x, W1, b1, W2, b2):
        a = np.maximum(0, x.conv2d(W1, b1, stride=1, pad=1)).max_pool2d(2)
        return F.cross_entropy(a.flatten(1) @ W2 + b2, labels)

    def theirs(x, W1, b1, W2, b2):
        a = TF.max_pool2d(torch.relu(TF.conv2d(nchw(x), W1.permute(3, 2, 0, 1), b1, padding=1)), 2)
        return TF.cross_entropy(nhwc(a).flatten(1) @ W2 + b2, torch.tensor(labels))

    same_program(ours, theirs, rng.standard_normal((3, 6, 6, 2)), rng.standard_normal((3, 3, 2, 4)),
                 rng.standard_normal(4), rng.standard_normal((36, 3)), rng.standard_normal(3))


@pytest.mark.parametrize("C, n_C, groups", [(3, 4, 1), (32, 32, 1), (8, 8, 8)])  # canonical, Winograd, depthwise
def test_conv2d_of_an_empty_batch_gives_empty_outputs_and_zero_gradients(C, n_C, groups):
    """A batch of 0 images, as PyTorch: an empty output, dW and db zero (the Winograd dW split 0 images into blocks
    of 0)."""
    x = Tensor(np.zeros((0, 6, 6, C)), requires_grad=True)
    W = Tensor(np.ones((3, 3, C // groups, n_C)), requires_grad=True)
    b = Tensor(np.ones(n_C), requires_grad=True)
    out = x.conv2d(W, b, pad=1, groups=groups)
    out.sum().backward()
    assert out.shape == (0, 6, 6, n_C) and x.grad.shape == x.shape
    np.testing.assert_array_equal(W.grad, np.zeros(W.shape))
    np.testing.assert_array_equal(b.grad, np.zeros(n_C))
