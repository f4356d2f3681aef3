"""The kernels of issue 10 against reference.py's loops, central differences and (when installed) PyTorch:
conv2d with dilation and groups, conv_transpose2d, batch norm, the dropout mask."""

import random

import numpy as np
import pytest
from errors import assert_raises_naming

from tinygrad_cnn import reference
from tinygrad_cnn.kernels import checks, conv, norm

TOL = 1e-10


def numeric_grads(fn, arrays, weights, eps=1e-6):
    """Central differences of sum(fn(*arrays) * weights) for every element of every array (float64)."""
    grads = []
    for k, a in enumerate(arrays):
        grad = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            values = []
            for step in (eps, -eps):
                moved = [x.copy() for x in arrays]
                moved[k][idx] += step
                values.append(np.sum(fn(*moved) * weights))
            grad[idx] = (values[0] - values[1]) / (2 * eps)
        grads.append(grad)
    return grads


# ---------------------------------------------------------------- conv2d: dilation and groups


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


def random_inputs(case, x_shape, W_shape, b_size, dtype):
    """Standard normal x, W and b (None when b_size is None), seeded by the case."""
    rng = np.random.default_rng(len(str(case)))
    x = rng.standard_normal(x_shape).astype(dtype)
    W = rng.standard_normal(W_shape).astype(dtype)
    return x, W, None if b_size is None else rng.standard_normal(b_size).astype(dtype)


def grouped_conv_inputs(case, dtype=np.float64):
    """x (m, n_H, n_W, groups * C_g), W (f_h, f_w, C_g, groups * n_C_g), b (n_C,) or None."""
    m, n_H, n_W, groups, C_g, n_C_g, f, _, _, _, bias = case
    return random_inputs(case, (m, n_H, n_W, groups * C_g), (*f, C_g, groups * n_C_g),
                         groups * n_C_g if bias else None, dtype)


GROUPED_CASES = grouped_conv_grid(100)


def test_grouped_grid_covers_the_variants():
    assert sum(c[3] > 1 and c[4] == 1 for c in GROUPED_CASES) >= 10  # depthwise
    assert sum(c[3] > 1 and c[4] > 1 for c in GROUPED_CASES) >= 10  # grouped
    assert sum(max(c[9]) > 1 and c[3] == 1 and c[7][1] > 1 and c[4] < 8 for c in GROUPED_CASES) >= 5  # channels-first
    assert sum(c[6][0] != c[6][1] for c in GROUPED_CASES) >= 30  # rectangular kernels


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


# ---------------------------------------------------------------- conv_transpose2d


def transpose_grid(n_cases, seed=3):
    """Sampled configs: (m, n_H, n_W, groups, C_out per group, C_in per group, f, stride, pads, output_padding,
    dilation, bias?)."""
    rng = random.Random(seed)
    cases = []
    for _ in range(n_cases):
        f = (rng.randint(1, 4), rng.randint(1, 4))
        stride = (rng.randint(1, 3), rng.randint(1, 3))
        dilation = rng.choice([(1, 1), (1, 1), (2, 1), (2, 3)])
        output_padding = tuple(rng.randint(0, s - 1) for s in stride)
        hw = (rng.randint(1, 4), rng.randint(1, 4))
        # pads no larger than the uncropped output allows
        pads = tuple((rng.randint(0, 1), rng.randint(0, 1)) if (n - 1) * s + d * (k - 1) >= 2 else (0, 0)
                     for n, s, d, k in zip(hw, stride, dilation, f, strict=True))
        cases.append((rng.randint(1, 2), *hw, rng.choice([1, 1, 2, 3]), rng.randint(1, 3), rng.randint(1, 3), f,
                      stride, pads, output_padding, dilation, rng.random() < 0.5))
    return cases


def transpose_inputs(case, dtype=np.float64):
    """x (m, n_H, n_W, n_C_in), W (f_h, f_w, C_out_g, n_C_in), b (n_C_out,) or None."""
    m, n_H, n_W, groups, C_out_g, C_in_g, f, *_, bias = case
    return random_inputs(case, (m, n_H, n_W, groups * C_in_g), (*f, C_out_g, groups * C_in_g),
                         groups * C_out_g if bias else None, dtype)


TRANSPOSE_CASES = transpose_grid(80)


@pytest.mark.parametrize("case", TRANSPOSE_CASES)
def test_conv_transpose2d_matches_the_scatter_loop(case):
    x, W, b = transpose_inputs(case)
    groups, stride, pads, output_padding, dilation = case[3], case[7], case[8], case[9], case[10]
    assert checks.check_conv_transpose2d_args(x, W, b, stride, pads, output_padding, dilation, groups) == \
        (stride, pads, output_padding)
    out, _ = conv.conv_transpose2d_forward(x, W, b, stride, pads, output_padding, dilation, groups)
    expected = reference.conv_transpose_forward(x, W, b, stride, pads, output_padding, dilation, groups)
    assert out.shape == expected.shape
    np.testing.assert_allclose(out, expected, rtol=0, atol=TOL)


@pytest.mark.parametrize("case", TRANSPOSE_CASES[:30])
def test_conv_transpose2d_backward_matches_central_differences(case):
    x, W, b = transpose_inputs(case)
    args = case[7:11] + (case[3],)  # stride, pads, output_padding, dilation, groups
    out, saved = conv.conv_transpose2d_forward(x, W, b, *args)
    dout = np.random.default_rng(2).standard_normal(out.shape)
    dx, dW, db = conv.conv_transpose2d_backward(dout, saved)
    arrays = [x, W] if b is None else [x, W, b]
    expected = numeric_grads(lambda *a: conv.conv_transpose2d_forward(*a[:2], a[2] if len(a) > 2 else None,
                                                                         *args)[0], arrays, dout)
    for got, want in zip((dx, dW, db), expected, strict=False):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert db is None if b is None else db.shape == b.shape


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


def test_conv_transpose2d_output_size():
    x = np.zeros((2, 5, 4, 3))
    W = np.zeros((3, 2, 6, 3))
    out, _ = conv.conv_transpose2d_forward(x, W, None, (2, 3), ((1, 0), (0, 2)), (1, 2))
    # (n - 1) * stride - pads + f + output_padding
    assert out.shape == (2, 4 * 2 - 1 + 3 + 1, 3 * 3 - 2 + 2 + 2, 6)
    out, _ = conv.conv_transpose2d_forward(x, W, None, (2, 2), ((0, 0), (0, 0)), 1, dilation=2)
    assert out.shape == (2, 4 * 2 + 2 * 2 + 1 + 1, 3 * 2 + 2 * 1 + 1 + 1, 6)


def test_conv_transpose2d_backward_skips_what_is_not_needed():
    x, W, b = transpose_inputs((2, 3, 4, 1, 2, 3, (3, 2), None, None, None, None, True))
    out, saved = conv.conv_transpose2d_forward(x, W, b, (2, 2), ((1, 1), (0, 1)), (1, 0))
    dout = np.random.default_rng(0).standard_normal(out.shape)
    full = conv.conv_transpose2d_backward(dout, saved)
    only_dW = conv.conv_transpose2d_backward(dout, saved, need_dx=False, need_db=False)
    assert only_dW[0] is None and only_dW[2] is None
    np.testing.assert_array_equal(only_dW[1], full[1])
    only_dx = conv.conv_transpose2d_backward(dout, saved, need_dW=False)
    assert only_dx[1] is None
    np.testing.assert_array_equal(only_dx[0], full[0])


def test_conv_transpose2d_float32_keeps_dtype():
    x, W, b = transpose_inputs((2, 4, 4, 2, 2, 1, (3, 3), None, None, None, None, True), dtype=np.float32)
    out, saved = conv.conv_transpose2d_forward(x, W, b, (2, 2), ((1, 1), (1, 1)), (1, 1), groups=2)
    assert out.dtype == np.float32 and out.flags.c_contiguous
    assert all(g.dtype == np.float32 for g in conv.conv_transpose2d_backward(np.ones_like(out), saved))


# ---------------------------------------------------------------- batch norm

BN_SHAPES = [(2, 3, 4, 3), (1, 2, 2, 1), (4, 1, 1, 5), (3, 5, 2, 2)]


def bn_inputs(shape, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    n_C = shape[3]
    x = (rng.standard_normal(shape) * 3 + rng.standard_normal(n_C)).astype(dtype)
    gamma = rng.uniform(0.5, 2.0, n_C).astype(dtype)
    beta = rng.standard_normal(n_C).astype(dtype)
    running = (rng.standard_normal(n_C), rng.uniform(0.5, 2.0, n_C))
    return x, gamma, beta, running


@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_reference(shape, training):
    x, gamma, beta, (mean, var) = bn_inputs(shape)
    out, saved, new_mean, new_var = norm.batch_norm_forward(x, gamma, beta, 1e-5, training, mean, var, 0.3)
    ref_out, ref_mean, ref_var = reference.batch_norm_forward(x, gamma, beta, 1e-5, training, mean, var, 0.3)
    np.testing.assert_allclose(out, ref_out, rtol=0, atol=TOL)
    np.testing.assert_allclose(new_mean, ref_mean, rtol=0, atol=TOL)
    np.testing.assert_allclose(new_var, ref_var, rtol=0, atol=TOL)
    if not training:
        assert new_mean is mean and new_var is var

    dout = np.random.default_rng(1).standard_normal(shape)
    grads = norm.batch_norm_backward(dout, saved)
    ref_grads = reference.batch_norm_backward(dout, x, gamma, 1e-5, training, mean, var)
    for got, want in zip(grads, ref_grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_backward_matches_central_differences(training):
    x, gamma, beta, (mean, var) = bn_inputs((2, 3, 2, 3), seed=4)
    out, saved, _, _ = norm.batch_norm_forward(x, gamma, beta, 1e-5, training, mean, var)
    dout = np.random.default_rng(2).standard_normal(out.shape)
    expected = numeric_grads(lambda *a: norm.batch_norm_forward(*a, 1e-5, training, mean, var)[0],
                             [x, gamma, beta], dout)
    for got, want in zip(norm.batch_norm_backward(dout, saved), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_batch_norm_training_normalizes_each_channel():
    x, _, _, _ = bn_inputs((4, 5, 6, 3), seed=2)
    out, *_ = norm.batch_norm_forward(x, np.ones(3), np.zeros(3), 0.0 + 1e-12, True)
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 1, 2)), 1, atol=1e-9)


def test_batch_norm_running_statistics_after_several_steps():
    mean, var = np.zeros(3), np.ones(3)
    ref_mean, ref_var = mean, var
    for step in range(5):
        x, gamma, beta, _ = bn_inputs((3, 4, 2, 3), seed=10 + step)
        _, _, mean, var = norm.batch_norm_forward(x, gamma, beta, 1e-5, True, mean, var, 0.1)
        _, ref_mean, ref_var = reference.batch_norm_forward(x, gamma, beta, 1e-5, True, ref_mean, ref_var, 0.1)
    np.testing.assert_allclose(mean, ref_mean, rtol=0, atol=TOL)
    np.testing.assert_allclose(var, ref_var, rtol=0, atol=TOL)
    # eval afterwards uses exactly those statistics
    x, gamma, beta, _ = bn_inputs((2, 2, 2, 3), seed=99)
    out, *_ = norm.batch_norm_forward(x, gamma, beta, 1e-5, False, mean, var)
    np.testing.assert_allclose(out, gamma * (x - mean) / np.sqrt(var + 1e-5) + beta, rtol=0, atol=TOL)


def test_batch_norm_training_without_running_statistics():
    x, gamma, beta, _ = bn_inputs((2, 3, 3, 2))
    out, _, mean, var = norm.batch_norm_forward(x, gamma, beta, 1e-5, True)
    assert mean is None and var is None
    np.testing.assert_allclose(out, reference.batch_norm_forward(x, gamma, beta, 1e-5, True)[0], rtol=0, atol=TOL)


def test_batch_norm_float32_keeps_dtype():
    x, gamma, beta, (mean, var) = bn_inputs((4, 5, 5, 3), dtype=np.float32)
    mean, var = mean.astype(np.float32), var.astype(np.float32)
    out, saved, new_mean, new_var = norm.batch_norm_forward(x, gamma, beta, 1e-5, True, mean, var)
    assert out.dtype == new_mean.dtype == new_var.dtype == np.float32
    assert all(g.dtype == np.float32 for g in norm.batch_norm_backward(np.ones_like(out), saved))
    ref_out = reference.batch_norm_forward(x, gamma, beta, 1e-5, True, mean, var)[0]
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- dropout


def test_dropout_mask_fraction_is_within_a_binomial_bound():
    n, p = 1_000_000, 0.3
    mask = norm.dropout_mask((100, 100, 100), p, np.random.default_rng(0))
    dropped = np.count_nonzero(mask == 0)
    assert abs(dropped - n * p) < 5 * np.sqrt(n * p * (1 - p))  # 5 standard deviations
    assert set(np.unique(mask)) == {0.0, 1 / (1 - p)}
    assert abs(mask.mean() - 1) < 0.01


def test_dropout_mask_is_reproducible_with_a_seed():
    a = norm.dropout_mask((4, 5, 6, 7), 0.5, 123)
    b = norm.dropout_mask((4, 5, 6, 7), 0.5, np.random.default_rng(123))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, norm.dropout_mask((4, 5, 6, 7), 0.5, 124))
    rng = np.random.default_rng(7)
    first, second = norm.dropout_mask(1000, 0.5, rng), norm.dropout_mask(1000, 0.5, rng)
    assert not np.array_equal(first, second)  # a Generator moves on


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_mask_dtype_and_edge_probabilities(dtype):
    mask = norm.dropout_mask((3, 4), 0.25, 0, dtype)
    assert mask.dtype == dtype and mask.shape == (3, 4)
    np.testing.assert_array_equal(norm.dropout_mask((3, 4), 0, 0, dtype), np.ones((3, 4)))
    np.testing.assert_array_equal(norm.dropout_mask((3, 4), 1, 0, dtype), np.zeros((3, 4)))
    assert norm.dropout_mask((3, 4), 1.0, 0, dtype).dtype == dtype


# ---------------------------------------------------------------- errors


def _z(*shape):
    return np.zeros(shape)


BAD_INPUTS = [
    # (call, exception type, words the message must contain)
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
    (lambda: checks.check_conv_transpose2d_args(_z(2, 5, 5, 4), _z(3, 3, 2, 3), None, 1, 0), ValueError,
     ["conv_transpose2d", "x has 4 channels (axis 3) but W expects 3", "n_C_in"]),
    (lambda: checks.check_conv_transpose2d_args(_z(2, 5, 5, 4), _z(3, 3), None, 1, 0), ValueError,
     ["conv_transpose2d", "W must be a 4-D array (f_h, f_w, n_C_out // groups, n_C_in)"]),
    (lambda: checks.check_conv_transpose2d_args(_z(2, 5, 5, 4), _z(3, 3, 2, 4), None, 1, 0, groups=3), ValueError,
     ["conv_transpose2d: groups=3 does not divide n_C_in=4", "W.shape=(3, 3, 2, 4)"]),
    (lambda: checks.check_conv_transpose2d_args(_z(2, 5, 5, 4), _z(3, 3, 2, 4), None, 1, 0, groups=-1), TypeError,
     ["conv_transpose2d", "groups must be a positive int"]),
    (lambda: checks.check_conv_transpose2d_args(_z(2, 5, 5, 4), _z(3, 3, 2, 4), _z(2), 1, 0, groups=2), ValueError,
     ["conv_transpose2d", "b must have shape (4,) or (1, 1, 1, 4)", "n_C_out = W.shape[2] * groups = 4", "(2,)"]),
    (lambda: checks.check_conv_transpose2d_args(_z(2, 5, 5, 4), _z(3, 3, 2, 4), _z(3), 1, 0), ValueError,
     ["conv_transpose2d", "b must have shape (2,)", "(3,)"]),
    (lambda: checks.check_conv_transpose2d_args(_z(2, 5, 5, 4), _z(3, 3, 2, 4), None, 2, 0, 2), ValueError,
     ["conv_transpose2d", "output_padding=(2, 2) must be smaller than stride=(2, 2)"]),
    (lambda: checks.check_conv_transpose2d_args(_z(2, 5, 5, 4), _z(3, 3, 2, 4), None, 1, 0, 1), ValueError,
     ["conv_transpose2d", "output_padding=(1, 1) must be smaller than stride=(1, 1)"]),
    (lambda: checks.check_conv_transpose2d_args(_z(2, 5, 5, 4), _z(3, 3, 2, 4), None, 2, 0, -1), TypeError,
     ["conv_transpose2d", "output_padding must be an int >= 0 or a pair of them", "-1"]),
    (lambda: checks.check_conv_transpose2d_args(_z(2, 5, 5, 4), _z(3, 3, 2, 4), None, 2, 0, ((0, 1), (0, 0))),
     TypeError, ["conv_transpose2d", "output_padding must be an int >= 0 or a pair"]),
    (lambda: checks.check_conv_transpose2d_args(_z(2, 1, 1, 4), _z(1, 1, 2, 4), None, 1, 1), ValueError,
     ["conv_transpose2d", "output size (-1, -1) is not positive", "x.shape=(2, 1, 1, 4)"]),
    (lambda: checks.check_conv_transpose2d_args(_z(2, 5, 5, 4), _z(3, 3, 2, 4), None, 1, "same"), ValueError,
     ["conv_transpose2d", "pad='same' is not supported"]),
    (lambda: checks.check_conv_transpose2d_args(_z(2, 5, 5, 4), _z(3, 3, 2, 4), None, 0, 0), TypeError,
     ["conv_transpose2d", "stride must be a positive int"]),
    (lambda: checks.check_conv_transpose2d_args(_z(2, 5, 5, 4), _z(3, 3, 2, 4), None, 1, 0, 0, (0, 1)), TypeError,
     ["conv_transpose2d", "dilation must be a positive int"]),
    (lambda: checks.check_conv_transpose2d_args(_z(5, 5, 4), _z(3, 3, 2, 4), None, 1, 0), ValueError,
     ["conv_transpose2d", "4-D NHWC"]),
    (lambda: checks.check_batch_norm_args(_z(2, 3, 3, 4), _z(3), _z(4), None, None, 1e-5, 0.1, True), ValueError,
     ["batch_norm2d", "gamma must be an array of shape (4,)", "x.shape=(2, 3, 3, 4)", "got (3,)"]),
    (lambda: checks.check_batch_norm_args(_z(2, 3, 3, 4), _z(4), [0.0] * 4, None, None, 1e-5, 0.1, True),
     ValueError, ["batch_norm2d", "beta must be an array of shape (4,)", "got list"]),
    (lambda: checks.check_batch_norm_args(_z(2, 3, 3, 4), _z(4), _z(4), None, None, 1e-5, 0.1, False), ValueError,
     ["batch_norm2d", "running_mean must be an array of shape (4,)", "eval mode needs the running statistics"]),
    (lambda: checks.check_batch_norm_args(_z(2, 3, 3, 4), _z(4), _z(4), _z(4), _z(2), 1e-5, 0.1, True), ValueError,
     ["batch_norm2d", "running_var must be an array of shape (4,)", "got (2,)"]),
    (lambda: checks.check_batch_norm_args(_z(2, 3, 3, 4), _z(4), _z(4), _z(4), None, 1e-5, 0.1, True), ValueError,
     ["batch_norm2d", "both running_mean and running_var or neither"]),
    (lambda: checks.check_batch_norm_args(_z(2, 3, 3, 4), _z(4), _z(4), None, None, 0.0, 0.1, True), ValueError,
     ["batch_norm2d", "eps must be a number > 0", "0.0"]),
    (lambda: checks.check_batch_norm_args(_z(2, 3, 3, 4), _z(4), _z(4), None, None, 1e-5, 1.5, True), ValueError,
     ["batch_norm2d", "momentum must be a number in [0, 1]", "1.5"]),
    (lambda: checks.check_batch_norm_args(_z(2, 3, 3, 4), _z(4), _z(4), None, None, 1e-5, None, True), ValueError,
     ["batch_norm2d", "momentum", "None"]),
    (lambda: checks.check_batch_norm_args(_z(1, 1, 1, 4), _z(4), _z(4), None, None, 1e-5, 0.1, True), ValueError,
     ["batch_norm2d", "more than one value per channel", "(1, 1, 1, 4)"]),
    (lambda: checks.check_batch_norm_args(_z(3, 4), _z(4), _z(4), None, None, 1e-5, 0.1, True), ValueError,
     ["batch_norm2d", "4-D NHWC"]),
    (lambda: norm.dropout_mask((3,), 1.5, 0), ValueError, ["dropout", "p must be in [0, 1]", "1.5"]),
    (lambda: norm.dropout_mask((3,), -0.1, 0), ValueError, ["dropout", "p must be in [0, 1]", "-0.1"]),
    (lambda: norm.dropout_mask((3,), float("nan"), 0), ValueError, ["dropout", "p must be in [0, 1]", "nan"]),
    (lambda: norm.dropout_mask((3,), "0.5", 0), TypeError, ["dropout", "p must be a number", "'0.5'"]),
    (lambda: norm.dropout_mask((3,), True, 0), TypeError, ["dropout", "p must be a number", "True"]),
    (lambda: norm.dropout_mask((3,), 0.5, 0, np.int64), TypeError, ["dropout", "float32 or float64", "int64"]),
]


@pytest.mark.parametrize("call, error, words", BAD_INPUTS)
def test_bad_inputs_raise_with_a_message_naming_the_problem(call, error, words):
    assert_raises_naming(call, error, words)


def test_good_inputs_pass_the_checks():
    assert checks.check_conv_transpose2d_args(_z(2, 5, 5, 4), _z(3, 3, 2, 4), _z(1, 1, 1, 4), (2, 3), (1, 0),
                                               (1, 2), 2, 2) == ((2, 3), ((1, 1), (0, 0)), (1, 2))
    assert checks.check_conv_transpose2d_args(_z(2, 5, 5, 4), _z(3, 3, 2, 4), None, 1, "valid") == \
        ((1, 1), ((0, 0), (0, 0)), (0, 0))
    assert checks.check_batch_norm_args(_z(2, 3, 3, 4), _z(4), _z(4), _z(4), _z(4), 1e-5, 0.1, False) is None
    assert checks.check_batch_norm_args(_z(1, 1, 1, 4), _z(4), _z(4), _z(4), _z(4), 1e-5, 0, False) is None


# ---------------------------------------------------------------- against PyTorch


def _nchw(a):
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def assert_conv_matches_torch(torch, torch_op, x, W, b, out, backward, saved):
    """torch_op(x, weight, bias) on NCHW copies gives our out, and its gradients ours (backward(dout, saved)).

    Both conv layouts map to PyTorch's weight by W.transpose(3, 2, 0, 1): (n_C, n_C_prev // groups, f_h, f_w) for
    conv2d, (n_C_in, n_C_out // groups, f_h, f_w) for conv_transpose2d.
    """
    dout = np.random.default_rng(1).standard_normal(out.shape)
    tx = torch.tensor(_nchw(x), requires_grad=True)
    tW = torch.tensor(np.ascontiguousarray(W.transpose(3, 2, 0, 1)), requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    t_out = torch_op(tx, tW, tb)
    t_out.backward(torch.tensor(_nchw(dout)))
    np.testing.assert_allclose(out, t_out.detach().numpy().transpose(0, 2, 3, 1), rtol=0, atol=TOL)
    dx, dW, db = backward(dout, saved)
    np.testing.assert_allclose(dx, tx.grad.numpy().transpose(0, 2, 3, 1), rtol=0, atol=TOL)
    np.testing.assert_allclose(dW, tW.grad.numpy().transpose(2, 3, 1, 0), rtol=0, atol=TOL)
    if b is not None:
        np.testing.assert_allclose(db, tb.grad.numpy(), rtol=0, atol=TOL)


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
    assert_conv_matches_torch(torch, torch_op, x, W, b, out, conv.conv2d_backward, saved)


@pytest.mark.parametrize("case", [c for c in TRANSPOSE_CASES if c[8][0][0] == c[8][0][1] and
                                  c[8][1][0] == c[8][1][1]][:40])
def test_conv_transpose2d_matches_torch(case):
    torch = pytest.importorskip("torch")
    x, W, b = transpose_inputs(case)
    groups, stride, pads, output_padding, dilation = case[3], case[7], case[8], case[9], case[10]
    out, saved = conv.conv_transpose2d_forward(x, W, b, stride, pads, output_padding, dilation, groups)

    def torch_op(tx, tW, tb):
        return torch.nn.functional.conv_transpose2d(tx, tW, tb, stride, (pads[0][0], pads[1][0]), output_padding,
                                                    groups, dilation)
    assert_conv_matches_torch(torch, torch_op, x, W, b, out, conv.conv_transpose2d_backward, saved)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch(training):
    torch = pytest.importorskip("torch")
    x, gamma, beta, (mean, var) = bn_inputs((4, 3, 5, 3), seed=8)
    out, saved, new_mean, new_var = norm.batch_norm_forward(x, gamma, beta, 1e-5, training, mean, var, 0.2)
    dout = np.random.default_rng(3).standard_normal(out.shape)
    t_mean, t_var = torch.tensor(mean), torch.tensor(var)
    tx = torch.tensor(_nchw(x), requires_grad=True)
    tg, tb = torch.tensor(gamma, requires_grad=True), torch.tensor(beta, requires_grad=True)
    t_out = torch.nn.functional.batch_norm(tx, t_mean, t_var, tg, tb, training, 0.2, 1e-5)
    t_out.backward(torch.tensor(_nchw(dout)))
    np.testing.assert_allclose(out, t_out.detach().numpy().transpose(0, 2, 3, 1), rtol=0, atol=TOL)
    np.testing.assert_allclose(new_mean, t_mean.numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(new_var, t_var.numpy(), rtol=0, atol=TOL)
    dx, dgamma, dbeta = norm.batch_norm_backward(dout, saved)
    np.testing.assert_allclose(dx, tx.grad.numpy().transpose(0, 2, 3, 1), rtol=0, atol=1e-9)
    np.testing.assert_allclose(dgamma, tg.grad.numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(dbeta, tb.grad.numpy(), rtol=0, atol=1e-9)
