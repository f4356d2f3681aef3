"""Numeric holes and edge cases (issue 11): infinities, NaN, zeros to the power zero, empty shapes, a flag
changed between forward and backward. Expected numbers are PyTorch's (torch 2.13, float64), written in."""

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor

nan, inf = np.nan, np.inf


def param(values):
    return Tensor(np.array(values, dtype=np.float64), requires_grad=True)


# ----------------------------------------------------------------------------- numeric holes
@pytest.mark.parametrize("targets", [[2], np.array([[0.0, 0.0, 1.0]])])
def test_cross_entropy_with_a_minus_inf_logit_is_finite(targets):
    logits = param([[0.0, -inf, 1.0]])
    loss = F.cross_entropy(logits, targets)
    loss.backward()
    assert loss.item() == pytest.approx(0.31326168751822286, rel=1e-15)  # torch, class-index targets
    np.testing.assert_allclose(logits.grad, [[0.2689414213699951, 0.0, -0.2689414213699951]], rtol=1e-15)


def test_gradient_of_x_to_the_zero_at_zero_is_zero():
    x = param([0.0, 2.0])
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])
    x, e = param([0.0, 2.0]), param(0.0)
    (x ** e).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])
    assert e.grad == pytest.approx(0.6931471805599453, rel=1e-15)  # log 2; the 0 ** 0 term adds 0


@pytest.mark.filterwarnings("ignore:divide by zero encountered in power")  # numpy's, for the forward 0 ** -1
def test_gradient_of_zero_to_the_e_is_zero():
    e = param([0.0, 2.0, 0.5, -1.0])
    out = Tensor(np.float64(0.0)) ** e
    out.sum().backward()
    np.testing.assert_array_equal(out.data, [1.0, 0.0, 0.0, inf])
    np.testing.assert_array_equal(e.grad, [0.0, 0.0, 0.0, -inf])  # torch


def test_relu_passes_the_gradient_at_nan():
    x = param([nan, -1.0, 2.0])
    out = x.relu()
    out.backward(np.array([3.0, 3.0, 3.0]))
    np.testing.assert_array_equal(out.data, [nan, 0.0, 2.0])
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 3.0])  # torch


def test_abs_gradient_at_nan_is_zero():
    x = param([nan, -1.0, 0.0, 2.0])
    out = x.abs()
    out.backward(np.full(4, 3.0))
    np.testing.assert_array_equal(out.data, [nan, 1.0, 0.0, 2.0])
    np.testing.assert_array_equal(x.grad, [0.0, -3.0, 0.0, 3.0])  # torch


@pytest.mark.parametrize("ties", ["first", "split", "all"])
def test_max_pool_window_holding_nan_has_nan_max_and_sends_its_gradient_there(ties):
    x = param(np.array([[1.0, 2.0, 7.0], [nan, 5.0, 3.0], [0.0, 1.0, 2.0]])[None, :, :, None])
    out = x.max_pool2d(2, stride=1, ties=ties)
    out.backward(np.array([[1.0, 10.0], [100.0, 1000.0]])[None, :, :, None])
    np.testing.assert_array_equal(out.data[0, :, :, 0], [[nan, 7.0], [nan, 5.0]])
    np.testing.assert_array_equal(x.grad[0, :, :, 0], [[0.0, 0.0, 10.0], [101.0, 1000.0, 0.0], [0.0, 0.0, 0.0]])


@pytest.mark.parametrize("ties, expected", [
    ("first", [[0.0, 1.0], [0.0, 0.0]]),   # the first NaN in row-major order (torch: the last one)
    ("split", [[0.0, 0.5], [0.5, 0.0]]),
    ("all", [[0.0, 1.0], [1.0, 0.0]]),
])
def test_max_pool_window_with_several_nans_follows_the_tie_policy(ties, expected):
    x = param(np.array([[1.0, nan], [nan, 5.0]])[None, :, :, None])
    out = x.max_pool2d(2, ties=ties)
    out.sum().backward()
    assert np.isnan(out.item())
    np.testing.assert_array_equal(x.grad[0, :, :, 0], expected)


# ----------------------------------------------------------------------------- crashes and unclear errors
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


def test_conv2d_with_zero_filters_raises():
    with pytest.raises(ValueError, match=r"conv2d: W has 0 filters .*W.shape=\(3, 3, 2, 0\)"):
        Tensor.ones(1, 4, 4, 2).conv2d(Tensor.ones(3, 3, 2, 0))


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_over_an_empty_axis_is_empty(op):
    x = Tensor(np.ones((3, 0)), requires_grad=True)
    out = getattr(x, op)(axis=-1)
    assert out.shape == (3, 0)  # as torch
    out.sum().backward()
    assert x.grad.shape == (3, 0)


@pytest.mark.parametrize("targets", [[0, 0, 0], np.ones((3, 0))])
def test_cross_entropy_with_no_classes_raises(targets):
    with pytest.raises(ValueError, match=r"cross_entropy: logits have 0 classes \(shape \(3, 0\)\)"):
        F.cross_entropy(Tensor(np.ones((3, 0))), targets)


@pytest.mark.parametrize("op", ["sum", "mean", "max", "min"])
def test_reducing_axis_0_of_a_0d_tensor_raises(op):
    with pytest.raises(ValueError, match=rf"{op}: axis 0 is out of range for a tensor of shape \(\)"):
        getattr(Tensor(1.0), op)(axis=0)


def test_softmax_of_a_0d_tensor_raises():
    with pytest.raises(ValueError, match=r"softmax: axis -1 is out of range for a tensor of shape \(\)"):
        Tensor(1.0).softmax()
