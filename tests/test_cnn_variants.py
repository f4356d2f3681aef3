"""The Tensor ops of issue 10 (conv2d with dilation and groups, conv_transpose2d, batch_norm2d, dropout,
leaky_relu): against the loop references in float64 over the kernels' grids, gradcheck, labels and errors."""

import numpy as np
import pytest
from test_kernels_variants import GROUPED_CASES, TRANSPOSE_CASES, grouped_conv_inputs, transpose_inputs

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, gradcheck, no_grad, reference

TOL = 1e-10


def leaf(a, name=None):
    return Tensor(np.asarray(a, np.float64), requires_grad=True, name=name)


def backprop(out, seed=0):
    """Backward a random output gradient; return it."""
    g = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(g)
    return g


# ----------------------------------------------------------------------------- conv2d: dilation, groups
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


def test_conv2d_label_shows_dilation_and_groups_only_when_not_one():
    x, W = leaf(np.ones((1, 6, 6, 4))), leaf(np.ones((3, 3, 2, 4)))
    assert x.conv2d(leaf(np.ones((3, 3, 4, 4))), pad=1).op_label == "conv2d stride=1 pad=1"
    assert x.conv2d(W, dilation=2, groups=2).op_label == "conv2d stride=1 pad=0 dilation=2 groups=2"
    assert x.conv2d(W, dilation=(1, 2), groups=2).op_args["dilation"] == (1, 2)


def test_conv2d_weight_grad_after_requires_grad_later_with_dilation_and_groups():
    rng = np.random.default_rng(3)
    x, W = leaf(rng.standard_normal((2, 7, 7, 4))), Tensor(rng.standard_normal((3, 3, 2, 6)))
    out = x.conv2d(W, stride=2, pad=1, dilation=2, groups=2)
    W.requires_grad_()
    g = backprop(out)
    _, dW, _ = reference.conv_backward(g, x.data, W.data, (2, 2), ((1, 1), (1, 1)), (2, 2), 2)
    np.testing.assert_allclose(W.grad, dW, rtol=TOL, atol=TOL)


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


# ----------------------------------------------------------------------------- conv_transpose2d
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


# ----------------------------------------------------------------------------- batch_norm2d
BN_SHAPES = [(2, 3, 4, 3), (1, 2, 2, 1), (4, 1, 1, 5), (3, 5, 2, 2)]


def bn_arrays(shape, seed=0):
    rng = np.random.default_rng(seed)
    n_C = shape[3]
    return (rng.standard_normal(shape) * 2 + 1, rng.uniform(0.5, 2, n_C), rng.standard_normal(n_C),
            rng.standard_normal(n_C), rng.uniform(0.5, 2, n_C))


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batch_norm2d_output_and_gradients_match_the_loops(shape, training):
    x, gamma, beta, mean, var = bn_arrays(shape)
    tx, tg, tb = leaf(x), leaf(gamma), leaf(beta)
    running_mean, running_var = mean.copy(), var.copy()
    out = tx.batch_norm2d(tg, tb, running_mean=running_mean, running_var=running_var, training=training, momentum=0.2,
                          eps=1e-3)
    expected, new_mean, new_var = reference.batch_norm_forward(x, gamma, beta, 1e-3, training, mean, var, 0.2)
    np.testing.assert_allclose(out.data, expected, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(running_mean, new_mean, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(running_var, new_var, rtol=TOL, atol=TOL)
    g = backprop(out)
    dx, dgamma, dbeta = reference.batch_norm_backward(g, x, gamma, 1e-3, training, mean, var)
    for got, want in ((tx.grad, dx), (tg.grad, dgamma), (tb.grad, dbeta)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=TOL)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm2d_gradcheck(training):
    x, gamma, beta, mean, var = bn_arrays((2, 3, 2, 3), seed=1)
    assert gradcheck(lambda x, g, b: x.batch_norm2d(g, b, running_mean=mean, running_var=var, training=False)
                     if not training else x.batch_norm2d(g, b), leaf(x), leaf(gamma), leaf(beta))


def test_batch_norm2d_running_statistics_after_several_steps_match_the_loop():
    running_mean, running_var = np.zeros(3), np.ones(3)
    loop_mean, loop_var = np.zeros(3), np.ones(3)
    for step in range(5):
        x, gamma, beta, _, _ = bn_arrays((4, 3, 2, 3), seed=step)
        F.batch_norm2d(x, gamma, beta, running_mean=running_mean, running_var=running_var, momentum=0.3)
        _, loop_mean, loop_var = reference.batch_norm_forward(x, gamma, beta, 1e-5, True, loop_mean, loop_var, 0.3)
    np.testing.assert_allclose(running_mean, loop_mean, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(running_var, loop_var, rtol=TOL, atol=TOL)
    x, gamma, beta, _, _ = bn_arrays((2, 2, 2, 3), seed=9)
    before = running_mean.copy()
    with no_grad():
        out = F.batch_norm2d(x, gamma, beta, running_mean=running_mean, running_var=running_var, training=False)
    np.testing.assert_array_equal(running_mean, before)  # eval leaves them
    expected, _, _ = reference.batch_norm_forward(x, gamma, beta, 1e-5, False, loop_mean, loop_var)
    np.testing.assert_allclose(out.data, expected, rtol=TOL, atol=TOL)


def test_batch_norm2d_label_and_float32():
    x, gamma, beta, mean, var = (a.astype(np.float32) for a in bn_arrays((2, 2, 2, 3)))
    out = Tensor(x, requires_grad=True).batch_norm2d(gamma, beta, running_mean=mean, running_var=var, training=False,
                                                     eps=1e-3)
    assert out.dtype == np.float32 and out.op_label == "batch_norm2d training=False eps=0.001"
    assert Tensor(x, requires_grad=True).batch_norm2d(gamma, beta).op_label == "batch_norm2d"


@pytest.mark.parametrize("call, error, words", [
    (lambda x, g, b: x.batch_norm2d(g, b, training=False), ValueError, "eval mode needs the running statistics"),
    (lambda x, g, b: x.batch_norm2d(g[:2], b), ValueError, r"gamma must be an array of shape \(3,\)"),
    (lambda x, g, b: x.batch_norm2d(g, b, running_mean=np.zeros(3)), ValueError,
     "give both running_mean and running_var"),
    (lambda x, g, b: x.batch_norm2d(g, b, running_mean=np.zeros(3), running_var=np.ones(3), momentum=2), ValueError,
     "momentum must be"),
    (lambda x, g, b: x.batch_norm2d(g, b, eps=0), ValueError, "eps must be a number > 0"),
    (lambda x, g, b: x.batch_norm2d(g, b, running_mean=np.zeros(3, int), running_var=np.ones(3)), ValueError,
     "running_mean must be a writable float array"),
    (lambda x, g, b: x.batch_norm2d(g, b, running_mean=Tensor(np.zeros(3)).data, running_var=np.ones(3)), ValueError,
     "running_mean must be a writable float array"),
    (lambda x, g, b: x[:1, :1, :1].batch_norm2d(g, b), ValueError, "training needs more than one value"),
])
def test_batch_norm2d_errors(call, error, words):
    x, gamma, beta, _, _ = bn_arrays((2, 2, 2, 3))
    with pytest.raises(error, match=words):
        call(leaf(x), gamma, beta)


# ----------------------------------------------------------------------------- dropout
def test_dropout_drops_a_binomial_fraction_and_scales_the_survivors():
    p, n = 0.3, 200_000
    out = Tensor(np.ones(n)).dropout(p, rng=0)
    dropped = np.count_nonzero(out.data == 0)
    assert abs(dropped - p * n) <= 5 * np.sqrt(n * p * (1 - p))  # 5 sigma
    np.testing.assert_allclose(out.data[out.data != 0], 1 / (1 - p))


def test_dropout_is_reproducible_with_a_seed_or_generator():
    x = np.arange(1.0, 101.0)
    np.testing.assert_array_equal(F.dropout(x, 0.5, rng=7).data, F.dropout(x, 0.5, rng=7).data)
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    first, second = F.dropout(x, 0.5, rng=a).data, F.dropout(x, 0.5, rng=a).data
    assert not np.array_equal(first, second)  # the generator moves on
    np.testing.assert_array_equal(F.dropout(x, 0.5, rng=b).data, first)


def test_dropout_eval_and_p_zero_are_the_identity():
    x = leaf(np.arange(6.0))
    assert x.dropout(0.5, training=False) is x and x.dropout(0.0) is x


def test_dropout_gradient_flows_only_through_kept_entries():
    x = leaf(np.arange(1.0, 1001.0))
    out = x.dropout(0.4, rng=1)
    assert out.op_label == "dropout p=0.4"
    g = backprop(out)
    kept = out.data != 0
    np.testing.assert_array_equal(x.grad[~kept], 0)
    np.testing.assert_allclose(x.grad[kept], g[kept] / 0.6)
    assert gradcheck(lambda x: x.dropout(0.5, rng=2), leaf(np.random.default_rng(0).standard_normal((3, 4))))


def test_dropout_p_one_drops_everything():
    x = leaf(np.ones((2, 3)))
    out = x.dropout(1.0)
    backprop(out)
    np.testing.assert_array_equal(out.data, 0)
    np.testing.assert_array_equal(x.grad, 0)


@pytest.mark.parametrize("p, training, error, words", [
    (1.5, True, ValueError, r"p must be in \[0, 1\]"), (-0.1, False, ValueError, r"p must be in \[0, 1\]"),
    ("0.5", True, TypeError, "p must be a number"),
])
def test_dropout_errors(p, training, error, words):
    with pytest.raises(error, match=words):
        leaf(np.ones(3)).dropout(p, training=training)


# ----------------------------------------------------------------------------- leaky_relu
def test_leaky_relu_values_gradient_and_label():
    x = leaf([-2.0, -0.5, 0.0, 1.5, np.nan])
    out = x.leaky_relu(0.1)
    np.testing.assert_allclose(out.data, [-0.2, -0.05, 0.0, 1.5, np.nan])
    out.backward(np.ones(5))
    np.testing.assert_allclose(x.grad, [0.1, 0.1, 0.1, 1.0, 0.1])  # PyTorch: slope at 0 and at NaN
    assert out.op_label == "leaky_relu slope=0.1"
    assert F.leaky_relu(np.array([-1.0], np.float32)).dtype == np.float32
    assert gradcheck(lambda x: x.leaky_relu(0.2), leaf(np.random.default_rng(0).standard_normal((3, 4))))


def test_leaky_relu_slope_must_be_a_number():
    with pytest.raises(TypeError, match="leaky_relu: slope must be a number"):
        leaf([1.0]).leaky_relu("0.1")
