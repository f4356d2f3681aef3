"""The kernels (tinygrad_cnn/kernels/) against the loop oracle in reference.py, forward and backward, on a sampled
grid of shapes."""

import random
import tracemalloc

import numpy as np
import pytest
from errors import assert_raises_naming

from tinygrad_cnn import reference
from tinygrad_cnn.kernels import checks, conv, conv_fast, pad, pool

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


@pytest.mark.parametrize("case", _pool_grid(80))
def test_max_pool_matches_reference_for_each_ties_policy(case):
    m, n_H, n_W, C, f, stride = case
    # few distinct values, so windows have tied maxima
    x = np.random.default_rng(len(str(case))).integers(0, 3, (m, n_H, n_W, C)).astype(np.float64)
    for ties in checks.TIES:
        out, saved = pool.max_pool_forward(x, f, stride, ties)
        np.testing.assert_array_equal(out, reference.pool_forward(x, f, stride, "max"))
        dout = np.random.default_rng(2).standard_normal(out.shape)
        np.testing.assert_allclose(pool.max_pool_backward(dout, saved),
                                   reference.pool_backward(dout, x, f, stride, "max", ties), rtol=0, atol=TOL)


@pytest.mark.parametrize("case", _pool_grid(80, seed=2))
def test_avg_pool_matches_reference(case):
    m, n_H, n_W, C, f, stride = case
    x = np.random.default_rng(len(str(case))).standard_normal((m, n_H, n_W, C))
    out, saved = pool.avg_pool_forward(x, f, stride)
    np.testing.assert_allclose(out, reference.pool_forward(x, f, stride, "average"), rtol=0, atol=TOL)
    dout = np.random.default_rng(3).standard_normal(out.shape)
    np.testing.assert_allclose(pool.avg_pool_backward(dout, saved),
                               reference.pool_backward(dout, x, f, stride, "average"), rtol=0, atol=TOL)


@pytest.mark.parametrize("ties, expected", [
    ("first", [[1.0, 0.0], [0.0, 0.0]]),
    ("split", [[0.25, 0.25], [0.25, 0.25]]),
    ("all", [[1.0, 1.0], [1.0, 1.0]]),
])
def test_max_pool_ties_on_a_constant_window(ties, expected):
    x = np.full((1, 2, 2, 1), 5.0)
    out, saved = pool.max_pool_forward(x, (2, 2), (2, 2), ties)
    dx = pool.max_pool_backward(np.ones_like(out), saved)
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)


def test_max_pool_first_picks_row_major_first_max_in_overlapping_windows():
    x = np.array([[0, 2, 2], [2, 1, 0], [0, 0, 0]], dtype=np.float64)[None, :, :, None]
    out, saved = pool.max_pool_forward(x, (2, 2), (1, 1), "first")
    dx = pool.max_pool_backward(np.ones_like(out), saved)[0, :, :, 0]
    # windows: top-left -> (0, 1); top-right -> (0, 1); bottom-left -> (1, 0); bottom-right -> (1, 1)
    np.testing.assert_array_equal(dx, [[0, 2, 0], [1, 1, 0], [0, 0, 0]])
    assert dx.sum() == out.size  # "first" passes exactly the gradient it received


def test_max_pool_split_conserves_gradient_and_all_does_not():
    x = np.zeros((2, 4, 4, 3))
    for ties, total in [("split", 2 * 3 * 9), ("all", 2 * 3 * 9 * 4)]:
        out, saved = pool.max_pool_forward(x, (2, 2), (1, 1), ties)
        assert pool.max_pool_backward(np.ones_like(out), saved).sum() == pytest.approx(total)


def test_float32_keeps_dtype():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 6, 3)).astype(np.float32)
    W = rng.standard_normal((3, 3, 3, 4)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    out, saved = conv.conv2d_forward(x, W, b, (1, 1), ((1, 1), (1, 1)))
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in conv.conv2d_backward(np.ones_like(out), saved))
    np.testing.assert_allclose(out, reference.conv_forward(x, W, b, (1, 1), ((1, 1), (1, 1))), rtol=1e-4, atol=1e-4)
    for forward, backward in [(pool.max_pool_forward, pool.max_pool_backward),
                              (pool.avg_pool_forward, pool.avg_pool_backward)]:
        out, saved = forward(x, (3, 3), (2, 2))
        assert out.dtype == np.float32 and backward(np.ones_like(out), saved).dtype == np.float32
    assert pad.pad_forward(x, ((1, 2), (0, 1)), 1.0).dtype == np.float32


def test_pad_forward_fills_value_and_unpad_undoes_it():
    x = np.arange(2 * 3 * 4 * 2, dtype=np.float64).reshape(2, 3, 4, 2)
    pads = ((1, 2), (0, 3))
    xp = pad.pad_forward(x, pads, -7.0)
    assert xp.shape == (2, 6, 7, 2)
    assert (xp[:, 0] == -7).all() and (xp[:, -2:] == -7).all() and (xp[:, :, -3:] == -7).all()
    np.testing.assert_array_equal(pad.unpad(xp, pads), x)
    np.testing.assert_array_equal(xp, reference.zero_pad(x, pads) + np.pad(np.zeros_like(x), ((0, 0), *pads, (0, 0)),
                                                                             constant_values=-7.0))


@pytest.mark.parametrize("pad, expected", [
    (0, ((0, 0), (0, 0))), (2, ((2, 2), (2, 2))), ((1, 3), ((1, 1), (3, 3))),
    (((0, 1), (2, 3)), ((0, 1), (2, 3))), (np.int64(1), ((1, 1), (1, 1))),
])
def test_as_pads_normalizes(pad, expected):
    assert checks.as_pads("op", pad) == expected


def test_output_size_is_the_notebook_formula():
    assert checks.output_size(5, 3, 2, 2) == 3
    assert checks.output_size(4, 2, 0, 2) == 2
    assert checks.output_size(7, 3, 0, 3) == 2


def _x(shape=(2, 5, 5, 3)):
    return np.zeros(shape)


def _W(shape=(3, 3, 3, 4)):
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
    (lambda: checks.check_pool2d_args("max_pool2d", _x(), 6, None), ValueError,
     ["max_pool2d", "window 6x6 is larger than the padded input 5x5"]),
    (lambda: checks.check_pool2d_args("max_pool2d", _x(), 0, None), TypeError, ["max_pool2d", "f", "positive"]),
    (lambda: checks.check_pool2d_args("avg_pool2d", _x(), 2, False), TypeError, ["avg_pool2d", "stride"]),
    (lambda: checks.check_pool2d_args("max_pool2d", _x(), 2, 2, ties="last"), ValueError,
     ["max_pool2d", "unknown ties policy 'last'", "first"]),
    (lambda: checks.check_pool2d_args("avg_pool2d", _x((5, 5)), 2, 2), ValueError, ["avg_pool2d", "4-D NHWC"]),
]


@pytest.mark.parametrize("call, error, words", BAD_INPUTS)
def test_bad_inputs_raise_with_a_message_naming_the_problem(call, error, words):
    assert_raises_naming(call, error, words)


def test_good_inputs_normalize():
    assert checks.check_conv2d_args(_x(), _W(), np.zeros((1, 1, 1, 4)), (2, 1), (1, 0)) == \
        ((2, 1), ((1, 1), (0, 0)))
    assert checks.check_pool2d_args("max_pool2d", _x(), (3, 2), None, "split") == ((3, 2), (3, 2))


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


# ---------------------------------------------------------------- the canonical conv and the one dispatch


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
    ((2, 9, 9, 4), (3, 3, 1, 4), (2, 2), ((1, 1), (1, 1)), 4, "grouped"),         # depthwise, strided
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


def test_a_batch_larger_than_a_block_keeps_no_im2col(monkeypatch):
    monkeypatch.setattr(conv, "BLOCK_BYTES", 1)
    rng = np.random.default_rng(10)
    x, W = rng.standard_normal((3, 5, 5, 2)), rng.standard_normal((3, 3, 2, 4))
    out, saved = conv.conv2d_forward(x, W, None, (1, 1), ((1, 1), (1, 1)))
    assert saved.path.block == 1 and not saved.path.keep_cols and saved.cols is None
    np.testing.assert_allclose(conv.conv2d_cols(saved), conv.conv_forward(x, W, None, (1, 1), ((1, 1), (1, 1)))[1])


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
