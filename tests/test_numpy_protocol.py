"""Tensors in numpy's functions (ops/numpy_protocol.py): ufuncs, operators with an ndarray on the left and array
functions (np.sum, np.reshape, np.concatenate, ...) record the op of the method, keeping the graph; the calls with no
Tensor op and the arguments not supported say what to write; np.asarray and np.array give the data.
"""

import numpy as np
import pytest

from tests.helpers import leaf
from tinygrad_cnn import Tensor


def test_notebook_relu_with_np_maximum_keeps_the_graph():
    W = leaf([[1.0, -2.0], [0.5, 1.0]], name="W")
    x = Tensor(np.array([[1.0, 1.0]]))
    A = np.maximum(0, x @ W)                 # the notebook's ReLU on a Tensor
    assert isinstance(A, Tensor) and A.op == "maximum"
    np.testing.assert_array_equal(A.data, [[1.5, 0.0]])
    A.sum().backward()
    np.testing.assert_array_equal(W.grad, [[1.0, 0.0], [1.0, 0.0]])  # torch.maximum(tensor(0.), x @ W)


@pytest.mark.parametrize("ufunc, method", [
    (np.add, "__add__"), (np.subtract, "__sub__"), (np.multiply, "__mul__"), (np.divide, "__truediv__"),
    (np.true_divide, "__truediv__"), (np.power, "__pow__"), (np.maximum, "maximum"), (np.minimum, "minimum"),
    (np.matmul, "matmul"),
])
def test_binary_ufuncs_record_the_op_of_the_method(ufunc, method):
    a, b = leaf([[1.0, 2.0], [3.0, 0.5]]), leaf([[0.5, 2.0], [1.5, 3.0]])
    pairs = [(a, b), (a.data, b), (a, b.data)] + ([] if ufunc is np.matmul else [(2.0, b), (a, 3.0)])
    for left, right in pairs:
        out = ufunc(left, right)
        expected = getattr(Tensor.as_tensor(left), method)(right)
        assert isinstance(out, Tensor) and out.op == expected.op
        np.testing.assert_array_equal(out.data, expected.data)
    out = ufunc(a, b)
    out.sum().backward()
    ga, gb = a.grad.copy(), b.grad.copy()
    a.zero_grad(), b.zero_grad()
    getattr(a, method)(b).sum().backward()
    np.testing.assert_array_equal(a.grad, ga)
    np.testing.assert_array_equal(b.grad, gb)


@pytest.mark.parametrize("ufunc, method", [
    (np.negative, "__neg__"), (np.exp, "exp"), (np.log, "log"), (np.sqrt, "sqrt"), (np.abs, "abs"),
    (np.absolute, "abs"), (np.tanh, "tanh"),
])
def test_unary_ufuncs_record_the_op_of_the_method(ufunc, method):
    a = leaf([0.5, 2.0, 3.0])
    out = ufunc(a)
    assert isinstance(out, Tensor) and out.op == getattr(a, method)().op
    out.sum().backward()
    np.testing.assert_allclose(a.grad, {"__neg__": [-1, -1, -1], "exp": np.exp(a.data), "log": 1 / a.data,
                                        "sqrt": 0.5 / np.sqrt(a.data), "abs": [1, 1, 1],
                                        "tanh": 1 - np.tanh(a.data) ** 2}[method])


def test_ndarray_operators_with_a_tensor_on_the_right_keep_the_graph():
    b = leaf([1.0, 2.0])
    for out in (np.ones(2) + b, np.ones(2) - b, np.ones(2) * b, np.ones(2) / b, np.ones(2) ** b,
                np.ones((2, 2)) @ b):
        assert isinstance(out, Tensor) and out.requires_grad


def test_np_exp_then_backward_reaches_the_leaf():
    a = leaf([0.0, 1.0])
    np.exp(a).sum().backward()
    np.testing.assert_allclose(a.grad, [1.0, np.e])


@pytest.mark.parametrize("call, op", [
    (lambda t: np.sum(t), "sum"), (lambda t: np.sum(t, axis=0, keepdims=True), "sum"), (lambda t: np.sum(t, 1), "sum"),
    (lambda t: np.mean(t, axis=1), "mean"), (lambda t: np.max(t), "max"), (lambda t: np.amax(t, 0), "max"),
    (lambda t: np.min(t, axis=1), "min"), (lambda t: np.amin(t), "min"),
    (lambda t: np.reshape(t, (3, 2)), "reshape"), (lambda t: np.reshape(t, -1), "reshape"),
    (lambda t: np.transpose(t), "transpose"), (lambda t: np.transpose(t, (1, 0)), "transpose"),
    (lambda t: np.concatenate([t, t], axis=1), "concatenate"), (lambda t: np.concatenate((t, np.ones((2, 3)))),
                                                               "concatenate"),
    (lambda t: np.stack([t, t]), "stack"), (lambda t: np.clip(t, 0.0, 2.0), "clip"),
    (lambda t: np.clip(t, min=1.0), "clip"),
])
def test_numpy_functions_record_the_op(call, op):
    t = leaf([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]])
    out = call(t)
    assert isinstance(out, Tensor) and out.op == op
    out.sum().backward()
    assert t.grad is not None and t.grad.shape == (2, 3)


def test_np_sum_matches_the_method_value_and_gradient():
    t = leaf([[1.0, 2.0], [3.0, 4.0]])
    out = np.sum(t, axis=0)
    np.testing.assert_array_equal(out.data, [4.0, 6.0])
    out.backward(np.array([1.0, 2.0]))
    np.testing.assert_array_equal(t.grad, [[1.0, 2.0], [1.0, 2.0]])


@pytest.mark.parametrize("call, words", [
    (lambda t: np.sin(t), r"np\.sin.*no Tensor op.*np\.asarray\(t\)"),
    (lambda t: np.cumsum(t), r"np\.cumsum.*no Tensor op.*np\.asarray\(t\)"),
    (lambda t: np.dot(t, t), r"np\.dot.*t @ u.*np\.asarray\(t\)"),
    (lambda t: np.add.reduce(t), r"np\.add\.reduce.*t\.sum\(\).*np\.asarray\(t\)"),
    (lambda t: np.maximum.reduce(t), r"np\.maximum\.reduce.*t\.max\(\)"),
    (lambda t: np.square(t), r"np\.square.*t \* t"),
    (lambda t: np.where(t > 0, t, 0.0), r"np\.where.*np\.asarray\(t\)"),
])
def test_numpy_calls_without_a_tensor_op_raise_type_error(call, words):
    with pytest.raises(TypeError, match=words):
        call(leaf([1.0, 2.0]))


@pytest.mark.parametrize("call, words", [
    (lambda t: np.add(t, 1.0, out=np.empty(2)), r"np\.add: argument out= is not supported"),
    (lambda t: np.exp(t, where=np.array([True, False])), r"np\.exp: argument where= is not supported"),
    (lambda t: np.multiply(t, 2.0, dtype=np.float32), r"np\.multiply: argument dtype= is not supported"),
    (lambda t: np.sum(t, dtype=np.float32), r"np\.sum: argument dtype= is not supported"),
    (lambda t: np.sum(t, out=np.empty(())), r"np\.sum: argument out= is not supported"),
    (lambda t: np.mean(t, where=np.array([True, False])), r"np\.mean: argument where= is not supported"),
    (lambda t: np.max(t, initial=0.0), r"np\.max: argument initial= is not supported"),
])
def test_unsupported_numpy_arguments_raise_type_error(call, words):
    with pytest.raises(TypeError, match=words):
        call(leaf([1.0, 2.0]))


def test_numpy_functions_without_a_signature_bind_by_the_ops_names(monkeypatch):
    """numpy before 2.4 gives np.concatenate no signature (a C function): the op's own argument names are used, and
    any other keyword is still refused by name (what numpy 2.1-2.3 run; simulated here)."""
    from tinygrad_cnn.ops import numpy_protocol
    real = numpy_protocol.inspect.signature

    def no_builtin_signature(fn, *args, **kwargs):
        if fn is np.concatenate:
            raise ValueError("no signature found for builtin <built-in function concatenate>")
        return real(fn, *args, **kwargs)
    monkeypatch.setattr(numpy_protocol.inspect, "signature", no_builtin_signature)
    numpy_protocol._parameters.cache_clear()
    try:
        t = leaf([[1.0, 2.0]])
        assert np.concatenate([t, t], axis=1).shape == (1, 4) and np.concatenate((t, t)).op == "concatenate"
        with pytest.raises(TypeError, match=r"np\.concatenate: argument dtype= is not supported"):
            np.concatenate([t, t], dtype=np.float32)
    finally:
        numpy_protocol._parameters.cache_clear()


def test_in_place_ndarray_op_with_a_tensor_raises():
    arr = np.ones(2)
    with pytest.raises(TypeError, match=r"np\.add: argument out= is not supported"):
        arr += leaf([1.0, 2.0])


def test_asarray_and_array_still_give_the_data():
    t = leaf([1.0, 2.0])
    assert np.shares_memory(np.asarray(t), t.data) and not np.asarray(t).flags.writeable
    copied = np.array(t)
    assert isinstance(copied, np.ndarray) and copied.flags.writeable
    np.testing.assert_array_equal(copied, [1.0, 2.0])
    np.testing.assert_array_equal(np.asarray(t, dtype=np.float32), np.array([1.0, 2.0], np.float32))


def test_np_array_copies_and_np_asarray_casts():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    copied = np.array(x, copy=True)
    copied[0] = 9.0  # a copy is writable and leaves the tensor alone
    assert x.data[0] == 1.0
    assert np.asarray(x, dtype=np.float64).dtype == np.float64


def test_data_queries_work_through_numpy():
    t = leaf([[1.0, np.nan], [3.0, 0.0]])
    assert np.shape(t) == (2, 2) and np.ndim(t) == 2 and np.size(t) == 4
    np.testing.assert_array_equal(np.isnan(t), [[False, True], [False, False]])
    np.testing.assert_array_equal(np.argmax(Tensor([1.0, 3.0, 2.0])), 1)
    assert np.allclose(Tensor([1.0, 2.0]), [1.0, 2.0])
