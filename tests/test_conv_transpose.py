"""conv_transpose2d, the input gradient of a conv2d made an op (upsampling): its kernel (kernels/conv.py) against
the scatter loop of reference.py on a sampled grid in float64 to 1e-10 and against central differences, output
sizes, the argument checks, the Tensor op (its gradients are conv2d's, gradcheck, labels, errors) and against
PyTorch.
"""

import random

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tests.helpers import (
    SEEDS,
    TF,
    assert_conv_matches_torch,
    assert_raises_naming,
    backprop,
    conv_arrays,
    leaf,
    nchw,
    nhwc,
    numeric_grads,
    same_program,
)
from tinygrad_cnn import Tensor, gradcheck, reference
from tinygrad_cnn.kernels import checks, conv

TOL = 1e-10


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
    return conv_arrays(case, (m, n_H, n_W, groups * C_in_g), (*f, C_out_g, groups * C_in_g),
                         groups * C_out_g if bias else None, dtype)


TRANSPOSE_CASES = transpose_grid(80)


# ----------------------------------------------------------------------------- the kernel
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


# ----------------------------------------------------------------------------- the argument checks
def _z(*shape):
    return np.zeros(shape)


BAD_INPUTS = [
    # (call, exception type, words the message must contain)
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
]


@pytest.mark.parametrize("call, error, words", BAD_INPUTS)
def test_bad_inputs_raise_with_a_message_naming_the_problem(call, error, words):
    assert_raises_naming(call, error, words)


def test_good_inputs_normalize():
    assert checks.check_conv_transpose2d_args(_z(2, 5, 5, 4), _z(3, 3, 2, 4), _z(1, 1, 1, 4), (2, 3), (1, 0),
                                               (1, 2), 2, 2) == ((2, 3), ((1, 1), (0, 0)), (1, 2))
    assert checks.check_conv_transpose2d_args(_z(2, 5, 5, 4), _z(3, 3, 2, 4), None, 1, "valid") == \
        ((1, 1), ((0, 0), (0, 0)), (0, 0))


# ----------------------------------------------------------------------------- the Tensor op
@pytest.mark.parametrize("case", TRANSPOSE_CASES[::3])
def test_conv_transpose2d_matches_the_scatter_loop_and_its_gradients_the_conv2d(case):
    groups, stride, pads, output_padding, dilation = case[3], case[7], case[8], case[9], case[10]
    x, W, b = transpose_inputs(case)
    tx, tW = leaf(x), leaf(W)
    tb = None if b is None else leaf(b)
    out = tx.conv_transpose2d(tW, tb, stride=stride, pad=pads, output_padding=output_padding, dilation=dilation,
                              groups=groups)
    np.testing.assert_allclose(out.data, reference.conv_transpose_forward(x, W, b, stride, pads, output_padding,
                                                                          dilation, groups), rtol=TOL, atol=TOL)
    g = backprop(out)
    # conv_transpose2d is the input gradient of the conv2d with W: its own gradients are that conv2d's forward
    # (dx) and that conv2d's weight gradient for input g and output gradient x (dW)
    np.testing.assert_allclose(tx.grad, reference.conv_forward(g, W, None, stride, pads, dilation, groups),
                               rtol=TOL, atol=TOL)
    _, dW, _ = reference.conv_backward(x, g, W, stride, pads, dilation, groups)
    np.testing.assert_allclose(tW.grad, dW, rtol=TOL, atol=TOL)
    if b is not None:
        np.testing.assert_allclose(tb.grad, g.sum(axis=(0, 1, 2)), rtol=TOL, atol=TOL)


def test_conv_transpose2d_of_dZ_is_the_conv2d_input_gradient():
    rng = np.random.default_rng(4)
    A, W = leaf(rng.standard_normal((2, 7, 6, 3))), Tensor(rng.standard_normal((3, 3, 3, 5)))
    Z = A.conv2d(W, stride=2, pad=1)
    dZ = backprop(Z)
    np.testing.assert_allclose(F.conv_transpose2d(dZ, W, stride=2, pad=1, output_padding=(0, 1)).data, A.grad,
                               rtol=TOL, atol=TOL)


@pytest.mark.parametrize("stride, pad, output_padding, dilation, groups", [
    (1, 0, 0, 1, 1), (2, 1, 1, 1, 1), ((2, 3), ((1, 0), (0, 2)), (1, 2), 1, 2), (2, 0, 0, 2, 2)])
def test_conv_transpose2d_gradcheck(stride, pad, output_padding, dilation, groups):
    rng = np.random.default_rng(5)
    x, W, b = rng.standard_normal((2, 3, 3, 4)), rng.standard_normal((3, 2, 6 // groups, 4)), rng.standard_normal(6)
    assert gradcheck(lambda x, W, b: x.conv_transpose2d(W, b, stride=stride, pad=pad, output_padding=output_padding,
                                                        dilation=dilation, groups=groups), leaf(x), leaf(W), leaf(b))


def test_conv_transpose2d_output_size_and_label():
    x = leaf(np.ones((1, 4, 5, 3)))
    out = x.conv_transpose2d(leaf(np.ones((3, 3, 2, 3))), stride=2, pad=1, output_padding=1)
    assert out.shape == (1, (4 - 1) * 2 - 2 + 3 + 1, (5 - 1) * 2 - 2 + 3 + 1, 2)
    assert out.op_label == "conv_transpose2d stride=2 pad=1 output_padding=1"


@pytest.mark.parametrize("call, error, words", [
    (lambda x: x.conv_transpose2d(np.ones((3, 3, 2, 4))), ValueError, "x has 3 channels .* W expects 4"),
    (lambda x: x.conv_transpose2d(np.ones((3, 3, 2, 3)), stride=2, output_padding=2), ValueError,
     "output_padding=.* must be smaller than stride"),
    (lambda x: x.conv_transpose2d(np.ones((3, 3, 2, 3)), pad="same"), ValueError, "pad='same' is not supported"),
    (lambda x: x.conv_transpose2d(np.ones((3, 3, 2, 3)), np.ones(3)), ValueError, r"b must have shape \(2,\)"),
    (lambda x: x.conv_transpose2d(np.ones((3, 3, 2, 3)), groups=2), ValueError, "groups=2 does not divide n_C_in=3"),
    (lambda x: x.conv_transpose2d(np.ones((3, 3, 2))), ValueError, "W must be a 4-D array"),
])
def test_conv_transpose2d_errors_name_the_argument_and_shapes(call, error, words):
    with pytest.raises(error, match=words):
        call(leaf(np.ones((1, 4, 4, 3))))


# ----------------------------------------------------------------------------- against PyTorch
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
    assert_conv_matches_torch(torch_op, x, W, b, out, conv.conv_transpose2d_backward, saved)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("stride, pad, output_padding, dilation, groups", [
    (1, 0, 0, 1, 1), (2, 1, 1, 1, 1), ((2, 3), (0, 1), (1, 2), 1, 2), (2, 1, 0, 2, 2), (3, 0, 2, (1, 2), 1)])
def test_conv_transpose2d_matches_pytorch(stride, pad, output_padding, dilation, groups, seed):
    rng = np.random.default_rng(seed)
    x, W, b = rng.standard_normal((2, 4, 3, 4)), rng.standard_normal((3, 2, 6 // groups, 4)), rng.standard_normal(6)
    same_program(lambda x, W, b: x.conv_transpose2d(W, b, stride=stride, pad=pad, output_padding=output_padding,
                                                    dilation=dilation, groups=groups),
                 lambda x, W, b: nhwc(TF.conv_transpose2d(nchw(x), W.permute(3, 2, 0, 1), b, stride=stride,
                                                          padding=pad, output_padding=output_padding,
                                                          dilation=dilation, groups=groups)), x, W, b, seed=seed)
