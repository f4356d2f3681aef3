"""Shape ops (ops/shape.py): reshape, flatten, transpose and permute (numpy's meaning), indexing (repeated indices
accumulate; a tensor is no index), concatenate and stack: values, gradients against central differences and against
PyTorch, errors.
"""

import warnings

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tests.helpers import leaf, rand, same_program, torch
from tinygrad_cnn import Tensor, gradcheck


def test_reshape_transpose_flatten():
    x = rand(2, 3, 4)
    assert x.reshape(6, 4).shape == (6, 4) and x.reshape((4, -1)).shape == (4, 6)
    assert x.transpose().shape == (4, 3, 2) and x.permute(1, 0, 2).shape == (3, 2, 4)
    assert x.T.shape == (4, 3, 2)
    assert x.flatten().shape == (24,) and x.flatten(1).shape == (2, 12) and x.flatten(0, 1).shape == (6, 4)
    np.testing.assert_array_equal(x.permute(2, 0, 1).data, np.transpose(x.data, (2, 0, 1)))
    assert gradcheck(lambda x: x.reshape(4, 6) * np.arange(24.0).reshape(4, 6), x)
    assert gradcheck(lambda x: x.permute(2, 0, 1) * np.arange(24.0).reshape(4, 2, 3), x)
    assert gradcheck(lambda x: x.flatten(1), x)


def test_transpose_with_the_identity_order_warns_and_points_to_swapaxes():
    x = Tensor.randn(3, 4, seed=0, requires_grad=True)
    with pytest.warns(UserWarning, match=r"transpose\(0, 1\) on a 2-D tensor changes nothing: numpy's transpose takes "
                                         r"all axes in their new order\. To swap two axes write x\.swapaxes\(0, 1\) "
                                         r"\(or x\.T for 2-D\)"):
        y = x.transpose(0, 1)
    assert y.shape == (3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert x.T.shape == x.transpose().shape == x.transpose(1, 0).shape == x.swapaxes(0, 1).shape == (4, 3)
        assert x.permute(0, 1).shape == (3, 4)  # PyTorch's permute means the same as numpy's transpose: no warning


@pytest.mark.parametrize("axes", [(-2, -1), (0, -1), (-2, 1)])
def test_transpose_with_negative_axes_of_the_identity_order_warns_too(axes):
    """PyTorch's k.transpose(-2, -1) swaps; numpy's is the identity on 2-D: warned, never silently nothing."""
    x = Tensor.randn(3, 4, seed=0)
    given = ", ".join(str(a) for a in axes)
    with pytest.warns(UserWarning, match=rf"transpose\({given}\) on a 2-D tensor changes nothing: .* write "
                                         rf"x\.swapaxes\({given}\) \(or x\.T for 2-D\)"):
        assert x.transpose(*axes).shape == (3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert x.transpose(-1, -2).shape == x.transpose(-1, 0).shape == (4, 3)


def test_transpose_of_two_axes_of_a_3d_tensor_says_numpys_meaning():
    x = Tensor.randn(2, 3, 4, seed=0)
    with pytest.raises(ValueError, match=r"transpose: axes \(0, 1\) are not a permutation of the 3 axes of shape "
                                         r"\(2, 3, 4\) \(numpy's transpose takes all axes in their new order; to "
                                         r"swap two axes write x\.swapaxes\(0, 1\)\)"):
        x.transpose(0, 1)


# ----------------------------------------------------------------------------- indexing
@pytest.mark.parametrize("index", [
    0, -1, slice(1, None), (slice(None), 1), (Ellipsis, slice(0, 3, 2)), (None, 1),
    np.array([0, 0, 1]), ([0, 1, 1], [2, 2, 2]), (slice(None), [3, 3, 0]), np.array([True, False]),
])
def test_getitem(index):
    x = rand(2, 4, seed=5)
    np.testing.assert_array_equal(x[index].data, x.data[index])
    weights = np.random.default_rng(0).uniform(size=x.data[index].shape)
    assert gradcheck(lambda x: x[index] * weights, x)


def test_getitem_repeated_indices_accumulate():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[[0, 0, 2, 0]].sum().backward()
    assert x.grad.tolist() == [3.0, 0.0, 1.0]


@pytest.mark.parametrize("index", [((0, 0, 2, 0),), (range(2), ((1, 1), (0, 0))), ((0, 0), slice(None))])
def test_getitem_repeated_indices_given_as_tuples_or_ranges_accumulate(index):
    # numpy reads a tuple (or range) inside the index tuple as an integer array, repeats included
    x = rand(3, 4, seed=6) if len(index) == 2 else Tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[index].sum().backward()
    expected = np.zeros(x.shape)
    np.add.at(expected, index, 1.0)
    np.testing.assert_array_equal(x.grad, expected)


@pytest.mark.parametrize("kind", ["array", "mask", "list", "tuple of arrays"])
def test_getitem_backward_uses_the_index_of_the_forward(kind):
    """The index's arrays and lists are copied at forward time: editing them before backward() does not move the
    gradient (PyTorch saves the indices too)."""
    x = Tensor(np.arange(4.0), requires_grad=True)
    idx = {"array": np.array([0, 1]), "mask": np.array([True, True, False, False]), "list": [0, 1],
           "tuple of arrays": (np.array([0, 1]),)}[kind]
    v = Tensor([5.0, 6.0], requires_grad=True)
    y, z = x[idx], v.getitem_backward(idx, (4,))  # z: zeros(4) with v placed at idx
    if kind == "mask":
        idx[:] = [False, False, True, True]
    elif kind == "tuple of arrays":
        idx[0][0] = 3
    else:
        idx[0] = 3
    (y * Tensor(np.array([10.0, 1.0]))).sum().backward()
    np.testing.assert_array_equal(x.grad, [10.0, 1.0, 0.0, 0.0])
    (z * Tensor(np.arange(1.0, 5.0))).sum().backward()
    np.testing.assert_array_equal(v.grad, [1.0, 2.0])  # the weights at the forward's idx, [0, 1]


def test_an_integer_array_index_and_the_flatten_of_a_0d_tensor():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x[np.array([2, 0])]  # an integer array of indices (a Tensor index raises: test_tensor_used_as_index_raises)
    y.sum().backward()
    assert y.data.tolist() == [3.0, 1.0] and x.grad.tolist() == [1.0, 0.0, 1.0]
    assert Tensor(5.0).flatten().shape == (1,)


@pytest.mark.parametrize("index", [
    Tensor([0.7, 1.9]), Tensor(np.array([True, False])), Tensor(1.0), (slice(None), Tensor([0.0])),
])
def test_tensor_used_as_index_raises(index):
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(IndexError, match="index with a numpy integer or boolean array"):
        x[index]


def test_numpy_arrays_still_index():
    x = leaf([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(x[np.array([True, False])].data, [[1.0, 2.0]])
    np.testing.assert_array_equal(x[np.array([1, 1])].data, [[3.0, 4.0], [3.0, 4.0]])


# ----------------------------------------------------------------------------- concatenate and stack
def test_concatenate_and_stack():
    a, b = rand(2, 3, seed=1), rand(4, 3, seed=2)
    np.testing.assert_array_equal(Tensor.concatenate([a, b]).data, np.concatenate([a.data, b.data]))
    assert gradcheck(lambda a, b: F.concatenate([a, b], axis=0) * np.arange(18.0).reshape(6, 3), a, b)
    c = rand(4, 3, seed=3)
    np.testing.assert_array_equal(Tensor.stack([b, c], axis=1).data, np.stack([b.data, c.data], axis=1))
    assert gradcheck(lambda b, c: F.stack([b, c], axis=1) * np.arange(24.0).reshape(4, 2, 3), b, c)


# ----------------------------------------------------------------------------- errors
def test_shape_op_errors():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"reshape: cannot reshape shape \(2, 3\) \(6 elements\) into \(4,\)"):
        x.reshape(4)
    with pytest.raises(ValueError, match="transpose: axes"):
        x.transpose(0, 0)
    with pytest.raises(ValueError, match=r"transpose: axes \(0, 3\) are not a permutation of the 2 axes"):
        x.transpose(0, 3)  # 3 % 2 == 1: numpy's own AxisError named no op
    assert x.flatten(1, -1).shape == (2, 3) and Tensor([1.0, 2.0]).flatten().shape == (2,)  # start = end is fine
    with pytest.raises(IndexError, match=r"getitem: .*\(2, 3\)"):
        x[5]
    with pytest.raises(ValueError, match="concatenate: "):
        Tensor.concatenate([x, Tensor(np.ones((2, 2)))], axis=0)


def test_flatten_stack_and_concatenate_errors():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match="flatten: start_dim 1 comes after end_dim 0"):
        x.flatten(1, 0)
    with pytest.raises(ValueError, match="stack: needs at least one tensor"):
        Tensor.stack([])
    with pytest.raises(ValueError, match="concatenate: needs at least one tensor"):
        Tensor.concatenate([])
    with pytest.raises(ValueError, match=r"stack: .*\(2, 3\) and \(3, 2\)"):
        Tensor.stack([x, Tensor(np.ones((3, 2)))])


# ----------------------------------------------------------------------------- against PyTorch (float64, 1e-9)
@pytest.mark.parametrize("ours, theirs", [
    (lambda a: a.reshape(4, -1), lambda a: a.reshape(4, -1)),
    (lambda a: a.flatten(1), lambda a: a.flatten(1)),
    (lambda a: a.flatten(), lambda a: a.flatten()),
    (lambda a: a.transpose(2, 0, 1), lambda a: a.permute(2, 0, 1)),
    (lambda a: a.permute(1, 0, 2), lambda a: a.permute(1, 0, 2)),
    (lambda a: a.T, lambda a: a.permute(2, 1, 0)),
    (lambda a: a[1:, ::2, -1], lambda a: a[1:, ::2, -1]),
    (lambda a: a[np.array([2, 0, 2])], lambda a: a[torch.tensor([2, 0, 2])]),
    (lambda a: a[:, np.array([True, False, True, True])], lambda a: a[:, torch.tensor([True, False, True, True])]),
    (lambda a: a[None, ..., 0], lambda a: a[None, ..., 0]),
    (lambda a: Tensor.concatenate([a, a * 2.0], axis=1), lambda a: torch.cat([a, a * 2.0], dim=1)),
    (lambda a: F.stack([a, a.exp()], axis=-1), lambda a: torch.stack([a, a.exp()], dim=-1)),
    (lambda a: np.concatenate([a, a], axis=0), lambda a: torch.cat([a, a], dim=0)),
    (lambda a: list(a)[1] * list(a)[2], lambda a: list(a)[1] * list(a)[2]),
])
def test_shape_ops_match_pytorch(ours, theirs):
    same_program(ours, theirs, np.random.default_rng(4).standard_normal((3, 4, 2)))
