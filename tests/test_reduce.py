"""Reductions (ops/reduce.py): sum, mean, max, min and argmax: values against numpy, gradients against central
differences and against PyTorch (tied extremes share the gradient, as amax), errors.
"""

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tests.helpers import rand, same_program
from tinygrad_cnn import Tensor, gradcheck


@pytest.mark.parametrize("method", ["sum", "mean", "max", "min"])
@pytest.mark.parametrize("axis", [None, 0, 1, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_reductions(method, axis, keepdims):
    x = rand(2, 3, 4, seed=11)
    out = getattr(x, method)(axis=axis, keepdims=keepdims)
    ref = getattr(np, method)(x.data, axis=axis, keepdims=keepdims)
    assert out.shape == np.shape(ref)
    np.testing.assert_allclose(out.data, ref, rtol=1e-12)
    assert gradcheck(lambda x: getattr(x, method)(axis=axis, keepdims=keepdims), x)


def test_max_ties_share_the_gradient():
    x = Tensor([1.0, 3.0, 3.0], requires_grad=True)
    x.max().backward()
    assert x.grad.tolist() == [0.0, 0.5, 0.5]


def test_argmax_is_plain_numpy():
    assert Tensor([[1.0, 5.0], [7.0, 0.0]]).argmax(axis=1).tolist() == [1, 0]


def test_reduction_axis_errors():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match="sum: axis 2 is out of range"):
        x.sum(axis=2)
    for op in ("sum", "mean", "max", "min"):
        with pytest.raises(ValueError, match=rf"{op}: axis \(1, -1\) names axis 1 twice \(shape \(2, 3\)\)"):
            getattr(x, op)(axis=(1, -1))
    with pytest.raises(ValueError, match="max: cannot reduce an empty tensor"):
        Tensor(np.ones((0, 2))).max()


@pytest.mark.parametrize("op", ["sum", "mean", "max", "min"])
def test_reducing_axis_0_of_a_0d_tensor_raises(op):
    with pytest.raises(ValueError, match=rf"{op}: axis 0 is out of range for a tensor of shape \(\)"):
        getattr(Tensor(1.0), op)(axis=0)


# ----------------------------------------------------------------------------- against PyTorch (float64, 1e-9)
def all_axes(a, axis):
    return tuple(range(a.ndim)) if axis is None else axis


REDUCTIONS = {
    "sum": (lambda a, ax, k: a.sum(ax, k), lambda a, ax, k: a.sum(all_axes(a, ax), keepdim=k)),
    "mean": (lambda a, ax, k: np.mean(a, ax, keepdims=k), lambda a, ax, k: a.mean(all_axes(a, ax), keepdim=k)),
    "max": (lambda a, ax, k: a.max(ax, k), lambda a, ax, k: a.amax(all_axes(a, ax), keepdim=k)),
    "min": (lambda a, ax, k: F.min(a, ax, k), lambda a, ax, k: a.amin(all_axes(a, ax), keepdim=k)),
}


@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reductions_match_pytorch(name, axis, keepdims):
    ours, theirs = REDUCTIONS[name]
    rng = np.random.default_rng(3)
    same_program(lambda a: ours(a, axis, keepdims), lambda a: theirs(a, axis, keepdims), rng.standard_normal((3, 4, 2)))


@pytest.mark.parametrize("name", ["max", "min"])
def test_tied_extremes_share_the_gradient_as_amax(name):
    ours, theirs = REDUCTIONS[name]
    x = np.array([[1.0, 3.0, 3.0], [-2.0, -2.0, 0.0]])
    same_program(lambda a: ours(a, 1, False), lambda a: theirs(a, 1, False), x)
    same_program(lambda a: ours(a, (0, 1), True), lambda a: theirs(a, (0, 1), True), x)
