"""kernels.py against the loop oracle in reference.py: forward and backward, a sampled grid of shapes."""

import random

import numpy as np
import pytest
from errors import assert_raises_naming

from tinygrad_cnn import kernels, reference

TOL = 1e-10


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


def _pool_grid(n_cases, seed=1):
    """Sampled pool configs: (m, n_H, n_W, C, f, stride); includes overlapping windows (stride < f)."""
    rng = random.Random(seed)
    cases = []
    for _ in range(n_cases):
        f = (rng.randint(1, 4), rng.randint(1, 4))
        stride = rng.choice([f, (rng.randint(1, 3), rng.randint(1, 3))])
        hw = tuple(k + rng.randint(0, 5) for k in f)
        cases.append((rng.randint(1, 3), *hw, rng.randint(1, 5), f, stride))
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


def test_conv_grid_covers_both_col2im_layouts():
    channels_first = [c for c in CONV_CASES if c[6][1] > 1 and c[3] < 8]
    strided_channels_last = [c for c in CONV_CASES if c[6][1] > 1 and c[3] >= 8]
    assert len(channels_first) >= 20 and len(strided_channels_last) >= 5


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_forward_and_backward_match_reference(case):
    x, W, b = conv_inputs(case, seed=len(str(case)))
    stride, pads = case[6], case[7]
    out, saved = kernels.conv2d_forward(x, W, b, stride, pads)
    np.testing.assert_allclose(out, reference.conv_forward(x, W, b, stride, pads), rtol=0, atol=TOL)

    dout = np.random.default_rng(1).standard_normal(out.shape)
    dx, dW, db = kernels.conv2d_backward(dout, saved)
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
    out, saved = kernels.conv2d_forward(x, W, b, (2, 1), ((1, 0), (1, 1)))
    dout = np.ones_like(out)
    dx, dW, db = kernels.conv2d_backward(dout, saved, need_dx=False, need_db=False)
    assert dx is None and db is None
    np.testing.assert_allclose(dW, reference.conv_backward(dout, x, W, (2, 1), ((1, 0), (1, 1)))[1], atol=TOL)
    dx, dW, db = kernels.conv2d_backward(dout, saved, need_dW=False)
    assert dW is None and dx.shape == x.shape and db.shape == (4,)


@pytest.mark.parametrize("n, f, s", [(7, 3, 1), (8, 3, 2), (5, 1, 3), (6, 4, 2), (9, 5, 3), (4, 2, 1)])
def test_same_padding_keeps_ceil_n_over_stride(n, f, s):
    x, W, b = conv_inputs((1, n, n + 1, 2, 3, (f, f), None, None, None), seed=n)
    stride, pads = kernels.check_conv2d_args(x, W, b, s, "same")
    out, _ = kernels.conv2d_forward(x, W, b, stride, pads)
    assert out.shape == (1, -(-n // s), -(-(n + 1) // s), 3)
    np.testing.assert_allclose(out, reference.conv_forward(x, W, b, stride, pads), atol=TOL)
    if s == 1 and f % 2 == 1:
        assert pads == (((f - 1) // 2,) * 2,) * 2


def test_valid_padding_is_zero():
    x, W, b = conv_inputs((1, 5, 5, 2, 3, (3, 3), None, None, None), seed=0)
    assert kernels.check_conv2d_args(x, W, b, 1, "valid") == ((1, 1), ((0, 0), (0, 0)))


@pytest.mark.parametrize("case", _pool_grid(80))
def test_max_pool_matches_reference_for_each_ties_policy(case):
    m, n_H, n_W, C, f, stride = case
    # few distinct values, so windows have tied maxima
    x = np.random.default_rng(len(str(case))).integers(0, 3, (m, n_H, n_W, C)).astype(np.float64)
    for ties in kernels.TIES:
        out, saved = kernels.max_pool_forward(x, f, stride, ties)
        np.testing.assert_array_equal(out, reference.pool_forward(x, f, stride, "max"))
        dout = np.random.default_rng(2).standard_normal(out.shape)
        np.testing.assert_allclose(kernels.max_pool_backward(dout, saved),
                                   reference.pool_backward(dout, x, f, stride, "max", ties), rtol=0, atol=TOL)


@pytest.mark.parametrize("case", _pool_grid(80, seed=2))
def test_avg_pool_matches_reference(case):
    m, n_H, n_W, C, f, stride = case
    x = np.random.default_rng(len(str(case))).standard_normal((m, n_H, n_W, C))
    out, saved = kernels.avg_pool_forward(x, f, stride)
    np.testing.assert_allclose(out, reference.pool_forward(x, f, stride, "average"), rtol=0, atol=TOL)
    dout = np.random.default_rng(3).standard_normal(out.shape)
    np.testing.assert_allclose(kernels.avg_pool_backward(dout, saved),
                               reference.pool_backward(dout, x, f, stride, "average"), rtol=0, atol=TOL)


@pytest.mark.parametrize("ties, expected", [
    ("first", [[1.0, 0.0], [0.0, 0.0]]),
    ("split", [[0.25, 0.25], [0.25, 0.25]]),
    ("all", [[1.0, 1.0], [1.0, 1.0]]),
])
def test_max_pool_ties_on_a_constant_window(ties, expected):
    x = np.full((1, 2, 2, 1), 5.0)
    out, saved = kernels.max_pool_forward(x, (2, 2), (2, 2), ties)
    dx = kernels.max_pool_backward(np.ones_like(out), saved)
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)


def test_max_pool_first_picks_row_major_first_max_in_overlapping_windows():
    x = np.array([[0, 2, 2], [2, 1, 0], [0, 0, 0]], dtype=np.float64)[None, :, :, None]
    out, saved = kernels.max_pool_forward(x, (2, 2), (1, 1), "first")
    dx = kernels.max_pool_backward(np.ones_like(out), saved)[0, :, :, 0]
    # windows: top-left -> (0, 1); top-right -> (0, 1); bottom-left -> (1, 0); bottom-right -> (1, 1)
    np.testing.assert_array_equal(dx, [[0, 2, 0], [1, 1, 0], [0, 0, 0]])
    assert dx.sum() == out.size  # "first" passes exactly the gradient it received


def test_max_pool_split_conserves_gradient_and_all_does_not():
    x = np.zeros((2, 4, 4, 3))
    for ties, total in [("split", 2 * 3 * 9), ("all", 2 * 3 * 9 * 4)]:
        out, saved = kernels.max_pool_forward(x, (2, 2), (1, 1), ties)
        assert kernels.max_pool_backward(np.ones_like(out), saved).sum() == pytest.approx(total)


def test_float32_keeps_dtype():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    W = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    out, saved = kernels.conv2d_forward(x, W, b, (1, 1), ((1, 1), (1, 1)))
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in kernels.conv2d_backward(np.ones_like(out), saved))
    np.testing.assert_allclose(out, reference.conv_forward(x, W, b, (1, 1), ((1, 1), (1, 1))), rtol=1e-4, atol=1e-4)
    for forward, backward in [(kernels.max_pool_forward, kernels.max_pool_backward),
                              (kernels.avg_pool_forward, kernels.avg_pool_backward)]:
        out, saved = forward(x, (3, 3), (2, 2))
        assert out.dtype == np.float32 and backward(np.ones_like(out), saved).dtype == np.float32
    assert kernels.pad_forward(x, ((1, 2), (0, 1)), 1.0).dtype == np.float32


def test_pad_forward_fills_value_and_unpad_undoes_it():
    x = np.arange(2 * 3 * 4 * 2, dtype=np.float64).reshape(2, 3, 4, 2)
    pads = ((1, 2), (0, 3))
    xp = kernels.pad_forward(x, pads, -7.0)
    assert xp.shape == (2, 6, 7, 2)
    assert (xp[:, 0] == -7).all() and (xp[:, -2:] == -7).all() and (xp[:, :, -3:] == -7).all()
    np.testing.assert_array_equal(kernels.unpad(xp, pads), x)
    np.testing.assert_array_equal(xp, reference.zero_pad(x, pads) + np.pad(np.zeros_like(x), ((0, 0), *pads, (0, 0)),
                                                                             constant_values=-7.0))


@pytest.mark.parametrize("pad, expected", [
    (0, ((0, 0), (0, 0))), (2, ((2, 2), (2, 2))), ((1, 3), ((1, 1), (3, 3))),
    (((0, 1), (2, 3)), ((0, 1), (2, 3))), (np.int64(1), ((1, 1), (1, 1))),
])
def test_as_pads_normalizes(pad, expected):
    assert kernels.as_pads("op", pad) == expected


def test_output_size_is_the_notebook_formula():
    assert kernels.output_size(5, 3, 2, 2) == 3
    assert kernels.output_size(4, 2, 0, 2) == 2
    assert kernels.output_size(7, 3, 0, 3) == 2


def _x(shape=(2, 5, 5, 3)):
    return np.zeros(shape)


def _W(shape=(3, 3, 3, 4)):
    return np.zeros(shape)


BAD_INPUTS = [
    # (call, exception type, words the message must contain)
    (lambda: kernels.check_conv2d_args(_x((2, 5, 5, 4)), _W((3, 3, 3, 8)), None, 1, 0), ValueError,
     ["conv2d", "x has 4 channels (axis 3)", "W expects 3", "W.shape=(3, 3, 3, 8)"]),
    (lambda: kernels.check_conv2d_args(_x((2, 3, 9, 9)), _W((3, 3, 3, 8)), None, 1, 0), ValueError,
     ["conv2d", "NCHW", "transpose(0, 2, 3, 1)"]),
    (lambda: kernels.check_conv2d_args(_x((5, 5, 3)), _W(), None, 1, 0), ValueError,
     ["conv2d", "4-D NHWC", "(5, 5, 3)", "x[None]"]),
    (lambda: kernels.check_conv2d_args(_x(), _W((3, 3, 3)), None, 1, 0), ValueError,
     ["conv2d", "W must be a 4-D", "(f_h, f_w, n_C_prev, n_C)"]),
    (lambda: kernels.check_conv2d_args(_x(), _W(), np.zeros(5), 1, 0), ValueError,
     ["conv2d", "b must have shape (4,) or (1, 1, 1, 4)", "(5,)"]),
    (lambda: kernels.check_conv2d_args(_x(), _W(), np.zeros((1, 4)), 1, 0), ValueError, ["b must have shape"]),
    (lambda: kernels.check_conv2d_args(_x((1, 2, 2, 3)), _W((5, 5, 3, 1)), None, 1, 1), ValueError,
     ["conv2d", "window 5x5 is larger than the padded input 4x4"]),
    (lambda: kernels.check_conv2d_args(_x(), _W(), None, 0, 0), TypeError, ["conv2d", "stride", "positive int"]),
    (lambda: kernels.check_conv2d_args(_x(), _W(), None, True, 0), TypeError, ["conv2d", "stride", "True"]),
    (lambda: kernels.check_conv2d_args(_x(), _W(), None, 1.0, 0), TypeError, ["stride"]),
    (lambda: kernels.check_conv2d_args(_x(), _W(), None, (1, 2, 3), 0), TypeError, ["stride", "pair"]),
    (lambda: kernels.check_conv2d_args(_x(), _W(), None, 1, -1), ValueError, ["conv2d", "pad must be >= 0"]),
    (lambda: kernels.check_conv2d_args(_x(), _W(), None, 1, ((0, -1), (0, 0))), ValueError, ["pad must be >= 0"]),
    (lambda: kernels.check_conv2d_args(_x(), _W(), None, 1, 1.5), TypeError, ["conv2d", "pad must be"]),
    (lambda: kernels.check_conv2d_args(_x(), _W(), None, 1, (1, 2, 3)), TypeError, ["pad must be"]),
    (lambda: kernels.check_conv2d_args(_x(), _W(), None, 1, "full"), ValueError,
     ["conv2d", "unknown pad mode 'full'", "same", "valid"]),
    (lambda: kernels.check_conv2d_args([[1.0]], _W(), None, 1, 0), TypeError, ["conv2d", "x must be a numpy array"]),
    (lambda: kernels.check_conv2d_args(_x().astype(bool), _W(), None, 1, 0), TypeError, ["real numbers", "bool"]),
    (lambda: kernels.check_pool2d_args("max_pool2d", _x(), 6, None), ValueError,
     ["max_pool2d", "window 6x6 is larger than the padded input 5x5"]),
    (lambda: kernels.check_pool2d_args("max_pool2d", _x(), 0, None), TypeError, ["max_pool2d", "f", "positive"]),
    (lambda: kernels.check_pool2d_args("avg_pool2d", _x(), 2, False), TypeError, ["avg_pool2d", "stride"]),
    (lambda: kernels.check_pool2d_args("max_pool2d", _x(), 2, 2, ties="last"), ValueError,
     ["max_pool2d", "unknown ties policy 'last'", "first"]),
    (lambda: kernels.check_pool2d_args("avg_pool2d", _x((5, 5)), 2, 2), ValueError, ["avg_pool2d", "4-D NHWC"]),
]


@pytest.mark.parametrize("call, error, words", BAD_INPUTS)
def test_bad_inputs_raise_with_a_message_naming_the_problem(call, error, words):
    assert_raises_naming(call, error, words)


def test_good_inputs_normalize():
    assert kernels.check_conv2d_args(_x(), _W(), np.zeros((1, 1, 1, 4)), (2, 1), (1, 0)) == \
        ((2, 1), ((1, 1), (0, 0)))
    assert kernels.check_pool2d_args("max_pool2d", _x(), (3, 2), None, "split") == ((3, 2), (3, 2))


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
    out, saved = kernels.conv2d_forward(x, W, None, (1, 1), pads, dilation)
    dout = rng.standard_normal(out.shape)
    dx, _, _ = kernels.conv2d_backward(dout, saved, need_dW=False, need_db=False)
    np.testing.assert_allclose(dx, reference.conv_backward(dout, x, W, (1, 1), pads, dilation)[0], atol=TOL)
