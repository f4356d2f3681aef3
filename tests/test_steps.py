"""steps.py: the notebook's functions on the notebook's own inputs, against reference.py and the notebook's printed
numbers, plus the cases the notebook got wrong (pad=0 backward, pool stride 2, (1, 1, 1) bias)."""

import numpy as np
import pytest

from tests.helpers import assert_raises_naming
from tinygrad_cnn import reference, steps

TOL = 1e-10


def _pads(p):
    return ((p, p), (p, p))


def test_zero_pad_on_the_notebook_input():
    np.random.seed(1)
    x = np.random.randn(4, 3, 3, 2)
    x_pad = steps.zero_pad(x, 3)
    assert x_pad.shape == (4, 9, 9, 2)
    np.testing.assert_array_equal(x_pad[1, 1], np.zeros((9, 2)))
    np.testing.assert_array_equal(x_pad[:, 3:6, 3:6, :], x)
    np.testing.assert_array_equal(x_pad, reference.zero_pad(x, _pads(3)))


def test_zero_pad_of_zero_is_a_copy():
    x = np.ones((1, 2, 2, 1))
    x_pad = steps.zero_pad(x, 0)
    x_pad[...] = 0
    assert x.sum() == 4


def test_conv_single_step_on_the_notebook_input_with_a_111_bias():
    np.random.seed(1)
    a_slice_prev = np.random.randn(4, 4, 3)
    W = np.random.randn(4, 4, 3)
    b = np.random.randn(1, 1, 1)
    Z = steps.conv_single_step(a_slice_prev, W, b)
    assert np.ndim(Z) == 0
    assert Z == pytest.approx(-6.999089450680221, abs=TOL)
    assert Z == pytest.approx(reference.conv_single_step(a_slice_prev, W, b), abs=TOL)


def test_conv_forward_on_the_notebook_input():
    np.random.seed(1)
    A_prev = np.random.randn(2, 5, 7, 4)
    W = np.random.randn(3, 3, 4, 8)
    b = np.random.randn(1, 1, 1, 8)
    hparameters = {"pad": 1, "stride": 2}
    Z, cache = steps.conv_forward(A_prev, W, b, hparameters)
    assert Z.shape == (2, 3, 4, 8)
    assert np.mean(Z) == pytest.approx(0.5511276474566768, abs=TOL)
    np.testing.assert_allclose(Z[0, 2, 1], [-2.17796037, 8.07171329, -0.5772704, 3.36286738,
                                            4.48113645, -2.89198428, 10.99288867, 3.03171932], atol=1e-8)
    np.testing.assert_allclose(Z, reference.conv_forward(A_prev, W, b, (2, 2), _pads(1)), atol=TOL)
    assert cache[0] is A_prev and cache[1] is W and cache[2] is b and cache[3] is hparameters


@pytest.mark.parametrize("pad, stride", [(2, 2), (0, 1), (0, 2), (1, 1)])
def test_conv_backward_on_the_notebook_input(pad, stride):
    np.random.seed(1)
    A_prev = np.random.randn(10, 4, 4, 3)
    W = np.random.randn(2, 2, 3, 8)
    b = np.random.randn(1, 1, 1, 8)
    Z, cache = steps.conv_forward(A_prev, W, b, {"pad": pad, "stride": stride})
    dA, dW, db = steps.conv_backward(Z, cache)
    assert dA.shape == A_prev.shape and dW.shape == W.shape and db.shape == (1, 1, 1, 8)
    ref_dA, ref_dW, ref_db = reference.conv_backward(Z, A_prev, W, (stride,) * 2, _pads(pad))
    np.testing.assert_allclose(dA, ref_dA, atol=TOL)
    np.testing.assert_allclose(dW, ref_dW, atol=TOL)
    np.testing.assert_allclose(db.reshape(-1), ref_db, atol=TOL)
    if (pad, stride) == (2, 2):  # the notebook's printed means
        assert np.mean(dA) == pytest.approx(1.4524377775388075, abs=TOL)
        assert np.mean(dW) == pytest.approx(1.7269914583139097, abs=TOL)
        assert np.mean(db) == pytest.approx(7.839232564616838, abs=TOL)


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("f, stride", [(3, 1), (3, 2), (2, 2)])
def test_pool_forward_matches_reference(mode, f, stride):
    np.random.seed(1)
    A_prev = np.random.randn(2, 5, 5, 3)
    hparameters = {"stride": stride, "f": f}
    A, cache = steps.pool_forward(A_prev, hparameters, mode=mode)
    n = (5 - f) // stride + 1
    assert A.shape == (2, n, n, 3)
    np.testing.assert_allclose(A, reference.pool_forward(A_prev, (f, f), (stride, stride), mode), atol=TOL)
    assert cache[0] is A_prev and cache[1] is hparameters


def test_create_mask_from_window_on_the_notebook_input():
    np.random.seed(1)
    x = np.random.randn(2, 3)
    mask = steps.create_mask_from_window(x)
    np.testing.assert_array_equal(mask, [[True, False, False], [False, False, False]])
    np.testing.assert_array_equal(mask, reference.create_mask_from_window(x).astype(bool))


def test_create_mask_marks_every_tied_max():
    np.testing.assert_array_equal(steps.create_mask_from_window(np.array([[1, 3], [3, 2]])),
                                  [[False, True], [True, False]])


def test_distribute_value_on_the_notebook_input():
    a = steps.distribute_value(2, (2, 2))
    np.testing.assert_array_equal(a, np.full((2, 2), 0.5))
    np.testing.assert_array_equal(steps.distribute_value(3.0, (2, 3)), reference.distribute_value(3.0, (2, 3)))


@pytest.mark.parametrize("mode, expected", [
    ("max", [[0.0, 0.0], [5.05844394, -1.68282702], [0.0, 0.0]]),
    ("average", [[0.08485462, 0.2787552], [1.26461098, -0.25749373], [1.17975636, -0.53624893]]),
])
def test_pool_backward_on_the_notebook_input(mode, expected):
    np.random.seed(1)
    A_prev = np.random.randn(5, 5, 3, 2)
    hparameters = {"stride": 1, "f": 2}
    A, cache = steps.pool_forward(A_prev, hparameters)
    assert A.shape == (5, 4, 2, 2)
    dA = np.random.randn(5, 4, 2, 2)
    dA_prev = steps.pool_backward(dA, cache, mode=mode)
    np.testing.assert_allclose(dA_prev[1, 1], expected, atol=1e-8)
    np.testing.assert_allclose(dA_prev, reference.pool_backward(dA, A_prev, (2, 2), (1, 1), mode), atol=TOL)


@pytest.mark.parametrize("mode", ["max", "average"])
@pytest.mark.parametrize("f", [2, 3])
def test_pool_backward_uses_the_stride(mode, f):
    np.random.seed(1)
    A_prev = np.random.randn(2, 7, 6, 3)
    A, cache = steps.pool_forward(A_prev, {"stride": 2, "f": f}, mode=mode)
    dA = np.random.randn(*A.shape)
    dA_prev = steps.pool_backward(dA, cache, mode=mode)
    np.testing.assert_allclose(dA_prev, reference.pool_backward(dA, A_prev, (f, f), (2, 2), mode), atol=TOL)


@pytest.mark.parametrize("mode", ["max", "average"])
def test_integer_images_give_float64_like_the_notebook(mode):
    A_prev = np.arange(2 * 4 * 4 * 3).reshape(2, 4, 4, 3)
    A, cache = steps.pool_forward(A_prev, {"f": 2, "stride": 1}, mode=mode)
    assert A.dtype == np.float64
    np.testing.assert_array_equal(A, reference.pool_forward(A_prev, (2, 2), (1, 1), mode))
    dA_prev = steps.pool_backward(np.ones(A.shape), cache, mode=mode)
    np.testing.assert_array_equal(dA_prev, reference.pool_backward(np.ones(A.shape), A_prev, (2, 2), (1, 1), mode))
    Z, _ = steps.conv_forward(A_prev, np.ones((2, 2, 3, 1), dtype=int), np.zeros((1, 1, 1, 1)), {"pad": 1, "stride": 2})
    assert Z.dtype == np.float64


def test_pool_backward_max_passes_gradient_to_every_tied_max_like_the_notebook():
    A_prev = np.ones((1, 2, 2, 1))
    _, cache = steps.pool_forward(A_prev, {"stride": 2, "f": 2})
    np.testing.assert_array_equal(steps.pool_backward(np.ones((1, 1, 1, 1)), cache), A_prev)


ERRORS = [
    (lambda: steps.conv_single_step(np.ones((2, 2, 1)), np.ones((2, 2, 1)), np.ones((1, 1, 2))), ValueError,
     ["conv_single_step", "one number", "(1, 1, 2)"]),
    (lambda: steps.conv_forward(np.ones((1, 4, 4, 3)), np.ones((2, 2, 2, 5)), np.ones((1, 1, 1, 5)),
                                {"pad": 0, "stride": 1}), ValueError, ["x has 3 channels (axis 3)", "W expects 2"]),
    (lambda: steps.conv_forward(np.ones((1, 4, 4, 3)), np.ones((2, 2, 3, 5)), np.ones((1, 1, 1, 4)),
                                {"pad": 0, "stride": 1}), ValueError, ["b must have shape", "(1, 1, 1, 4)"]),
    (lambda: steps.conv_forward(np.ones((1, 4, 4, 3)), np.ones((2, 2, 3, 5)), None, {"pad": 0}), KeyError,
     ["conv_forward", "'stride'"]),
    (lambda: steps.conv_backward(np.ones((1, 2, 2, 5)),
                                 (np.ones((1, 4, 4, 3)), np.ones((2, 2, 3, 5)), None, {"pad": 0, "stride": 1})),
     ValueError, ["conv_backward", "dZ", "(1, 3, 3, 5)", "(1, 2, 2, 5)"]),
    (lambda: steps.pool_forward(np.ones((1, 4, 4, 3)), {"f": 2, "stride": 2}, mode="min"), ValueError,
     ["pool_forward", "unknown mode 'min'"]),
    (lambda: steps.pool_forward(np.ones((1, 4, 4, 3)), {"f": 5, "stride": 2}), ValueError,
     ["pool_forward", "window 5x5"]),
    (lambda: steps.pool_forward(np.ones((1, 4, 4, 3)), {"f": 2, "stride": 0}), TypeError, ["stride"]),
    (lambda: steps.pool_backward(np.ones((1, 3, 3, 3)), (np.ones((1, 4, 4, 3)), {"f": 2, "stride": 2})),
     ValueError, ["pool_backward", "dA", "(1, 2, 2, 3)"]),
    (lambda: steps.zero_pad(np.ones((4, 4, 3)), 1), ValueError, ["zero_pad", "4-D NHWC"]),
    (lambda: steps.zero_pad(np.ones((1, 4, 4, 3)), -1), ValueError, ["zero_pad", "pad must be >= 0"]),
]


@pytest.mark.parametrize("call, error, words", ERRORS)
def test_bad_inputs_raise_with_a_message_naming_the_problem(call, error, words):
    assert_raises_naming(call, error, words)
