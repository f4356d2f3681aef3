"""Tensors among numpy and Python: numpy's protocols, comparisons, tensor indices, copies, iteration and
conversions. Each of these used to give a silent wrong answer (issue 11); expected numbers are PyTorch's."""

import copy
import pickle

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor


def param(values, name=None):
    return Tensor(np.array(values, dtype=np.float64), requires_grad=True, name=name)


# ----------------------------------------------------------------------------- numpy ufuncs keep the graph
def test_notebook_relu_with_np_maximum_keeps_the_graph():
    W = param([[1.0, -2.0], [0.5, 1.0]], name="W")
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
    a, b = param([[1.0, 2.0], [3.0, 0.5]]), param([[0.5, 2.0], [1.5, 3.0]])
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
    a = param([0.5, 2.0, 3.0])
    out = ufunc(a)
    assert isinstance(out, Tensor) and out.op == getattr(a, method)().op
    out.sum().backward()
    np.testing.assert_allclose(a.grad, {"__neg__": [-1, -1, -1], "exp": np.exp(a.data), "log": 1 / a.data,
                                        "sqrt": 0.5 / np.sqrt(a.data), "abs": [1, 1, 1],
                                        "tanh": 1 - np.tanh(a.data) ** 2}[method])


def test_ndarray_operators_with_a_tensor_on_the_right_keep_the_graph():
    b = param([1.0, 2.0])
    for out in (np.ones(2) + b, np.ones(2) - b, np.ones(2) * b, np.ones(2) / b, np.ones(2) ** b,
                np.ones((2, 2)) @ b):
        assert isinstance(out, Tensor) and out.requires_grad


def test_np_exp_then_backward_reaches_the_leaf():
    a = param([0.0, 1.0])
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
    t = param([[1.0, 2.0, 3.0], [0.5, -1.0, 4.0]])
    out = call(t)
    assert isinstance(out, Tensor) and out.op == op
    out.sum().backward()
    assert t.grad is not None and t.grad.shape == (2, 3)


def test_np_sum_matches_the_method_value_and_gradient():
    t = param([[1.0, 2.0], [3.0, 4.0]])
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
        call(param([1.0, 2.0]))


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
        call(param([1.0, 2.0]))


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
        t = param([[1.0, 2.0]])
        assert np.concatenate([t, t], axis=1).shape == (1, 4) and np.concatenate((t, t)).op == "concatenate"
        with pytest.raises(TypeError, match=r"np\.concatenate: argument dtype= is not supported"):
            np.concatenate([t, t], dtype=np.float32)
    finally:
        numpy_protocol._parameters.cache_clear()


def test_in_place_ndarray_op_with_a_tensor_raises():
    arr = np.ones(2)
    with pytest.raises(TypeError, match=r"np\.add: argument out= is not supported"):
        arr += param([1.0, 2.0])


def test_asarray_and_array_still_give_the_data():
    t = param([1.0, 2.0])
    assert np.shares_memory(np.asarray(t), t.data) and not np.asarray(t).flags.writeable
    copied = np.array(t)
    assert isinstance(copied, np.ndarray) and copied.flags.writeable
    np.testing.assert_array_equal(copied, [1.0, 2.0])
    np.testing.assert_array_equal(np.asarray(t, dtype=np.float32), np.array([1.0, 2.0], np.float32))


def test_data_queries_work_through_numpy():
    t = param([[1.0, np.nan], [3.0, 0.0]])
    assert np.shape(t) == (2, 2) and np.ndim(t) == 2 and np.size(t) == 4
    np.testing.assert_array_equal(np.isnan(t), [[False, True], [False, False]])
    np.testing.assert_array_equal(np.argmax(Tensor([1.0, 3.0, 2.0])), 1)
    assert np.allclose(Tensor([1.0, 2.0]), [1.0, 2.0])


# ----------------------------------------------------------------------------- maximum / minimum ops
def test_maximum_minimum_values_and_gradients_match_pytorch():
    nan = np.nan
    a, b = param([1.0, 2.0, nan, 3.0, 1.0]), param([1.0, 1.0, 0.0, nan, 2.0])
    out = a.maximum(b)
    np.testing.assert_array_equal(out.data, [1.0, 2.0, nan, nan, 2.0])
    out.backward(np.ones(5))
    np.testing.assert_array_equal(a.grad, [0.5, 1.0, 1.0, 1.0, 0.0])  # torch.maximum
    np.testing.assert_array_equal(b.grad, [0.5, 0.0, 1.0, 1.0, 1.0])
    a.zero_grad(), b.zero_grad()
    F.minimum(a, b).backward(np.ones(5))
    np.testing.assert_array_equal(a.grad, [0.5, 0.0, 1.0, 1.0, 1.0])  # torch.minimum
    np.testing.assert_array_equal(b.grad, [0.5, 1.0, 1.0, 1.0, 0.0])


def test_maximum_broadcasts_and_names_shapes_on_error():
    a = param([[1.0], [3.0]])
    out = F.maximum(a, [2.0, 0.0, 4.0])
    assert out.shape == (2, 3) and out.rule
    out.sum().backward()
    np.testing.assert_array_equal(a.grad, [[1.0], [2.0]])
    with pytest.raises(ValueError, match=r"maximum: .*\(2, 3\) and \(4,\)"):
        param(np.ones((2, 3))).maximum(np.ones(4))
    with pytest.raises(ValueError, match=r"minimum: .*\(2, 1\) and \(3, 2\)"):
        a.minimum(np.ones((3, 2)))


# ----------------------------------------------------------------------------- comparisons
def test_equality_is_elementwise_with_broadcasting():
    result = Tensor([1.0]) == Tensor([1.0])
    assert isinstance(result, np.ndarray) and result.dtype == bool
    np.testing.assert_array_equal(result, [True])
    pred, y = Tensor([[0.0, 2.0], [1.0, 1.0]]), np.array([0.0, 1.0])
    np.testing.assert_array_equal(pred == y, [[True, False], [False, True]])
    assert (Tensor([1.0, 2.0, 3.0]) == np.array([1.0, 0.0, 3.0])).mean() == pytest.approx(2 / 3)


@pytest.mark.parametrize("compare, expected", [
    (lambda a, b: a == b, [False, True, False]), (lambda a, b: a != b, [True, False, True]),
    (lambda a, b: a < b, [True, False, False]), (lambda a, b: a <= b, [True, True, False]),
    (lambda a, b: a > b, [False, False, True]), (lambda a, b: a >= b, [False, True, True]),
])
def test_comparisons_against_tensors_arrays_and_scalars(compare, expected):
    a = Tensor([1.0, 2.0, 3.0])
    for b in (Tensor([2.0, 2.0, 2.0]), np.array([2.0, 2.0, 2.0]), 2.0, 2, Tensor(2.0)):
        np.testing.assert_array_equal(compare(a, b), expected)
    reflected = compare(np.array([2.0, 2.0, 2.0]), a)  # ndarray on the left: the mirrored comparison
    np.testing.assert_array_equal(reflected, compare(Tensor([2.0, 2.0, 2.0]), a))
    assert isinstance(reflected, np.ndarray)


def test_comparison_shape_error_names_the_op():
    with pytest.raises(ValueError, match=r"==: .*\(2,\) and \(3,\)"):
        Tensor([1.0, 2.0]) == Tensor([1.0, 2.0, 3.0])  # noqa: B015


def test_comparison_is_not_differentiable_and_records_nothing():
    a = param([1.0, 2.0])
    assert type(a > 1.0) is np.ndarray


def test_hash_stays_identity_based():
    a, b = Tensor([1.0]), Tensor([1.0])
    assert hash(a) != hash(b) or a is not b
    seen = {a: "a", b: "b"}
    assert seen[a] == "a" and seen[b] == "b" and len({a, b, a}) == 2
    assert a in [a] and a in {a}


def test_library_code_tells_equal_valued_tensors_apart():
    # the optimizer, the layers and the drawing look tensors up by identity, never with ==
    from tinygrad_cnn import draw_graph, nn, optim
    a, b = param([1.0, 2.0]), param([1.0, 2.0])
    opt = optim.SGD([a, b], lr=0.1)  # equal values are not "a parameter that appears more than once"
    (a * b).sum().backward()
    opt.step()
    np.testing.assert_allclose(a.data, [0.9, 1.8])
    layer = nn.Module()
    layer.u, layer.v = Tensor([1.0], requires_grad=True), Tensor([1.0], requires_grad=True)
    assert [n for n, _ in layer.named_parameters()] == ["u", "v"]
    source = draw_graph(a * b, params={"a": a, "bee": b}).source
    assert source.count("<b>a</b>") == 1 and source.count("<b>bee</b>") == 1


# ----------------------------------------------------------------------------- tensors as indices
@pytest.mark.parametrize("index", [
    Tensor([0.7, 1.9]), Tensor(np.array([True, False])), Tensor(1.0), (slice(None), Tensor([0.0])),
])
def test_tensor_used_as_index_raises(index):
    x = param([[1.0, 2.0], [3.0, 4.0]])
    with pytest.raises(IndexError, match="index with a numpy integer or boolean array"):
        x[index]


def test_numpy_arrays_still_index():
    x = param([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(x[np.array([True, False])].data, [[1.0, 2.0]])
    np.testing.assert_array_equal(x[np.array([1, 1])].data, [[3.0, 4.0], [3.0, 4.0]])


# ----------------------------------------------------------------------------- copies and pickle
def leaf_with_grad():
    w = param([1.0, 2.0], name="w")
    (w * 3.0).sum().backward()
    return w


def test_deepcopy_of_a_leaf_keeps_read_only_data_name_flag_and_grad():
    w = leaf_with_grad()
    c = copy.deepcopy(w)
    assert c is not w and c.data is not w.data and not c.data.flags.writeable
    np.testing.assert_array_equal(c.data, w.data)
    assert c.name == "w" and c.requires_grad and c.is_leaf
    np.testing.assert_array_equal(c.grad, [3.0, 3.0])  # torch's deepcopy copies .grad
    assert c.grad is not w.grad
    with pytest.raises(ValueError, match="read-only"):
        c.data[0] = 5.0


def test_deepcopy_inside_a_structure_keeps_sharing():
    w = leaf_with_grad()
    a, b = copy.deepcopy([w, w])
    assert a is b


def test_pickle_of_a_leaf_keeps_read_only_data_name_flag_and_drops_grad():
    w = leaf_with_grad()
    p = pickle.loads(pickle.dumps(w))
    assert not p.data.flags.writeable and p.name == "w" and p.requires_grad
    assert p.grad is None  # as torch: pickling keeps no .grad
    np.testing.assert_array_equal(p.data, w.data)
    assert p.dtype == np.float64


def test_shallow_copy_of_a_leaf_shares_read_only_data():
    w = leaf_with_grad()
    s = copy.copy(w)
    assert s is not w and np.shares_memory(s.data, w.data)
    assert s.name == "w" and s.requires_grad and s.grad is None  # as torch


@pytest.mark.parametrize("how", [copy.deepcopy, copy.copy, pickle.dumps])
def test_copying_a_non_leaf_raises(how):
    y = param([1.0, 2.0]) * 2.0
    with pytest.raises(RuntimeError, match=r"'mul'.*detach\(\)"):
        how(y)


# ----------------------------------------------------------------------------- iteration and conversions
def test_iterating_a_0d_tensor_raises():
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        list(Tensor(1.0))


def test_iterating_yields_rows_in_the_graph():
    x = param([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    rows = list(x)
    assert len(rows) == 3 and all(isinstance(r, Tensor) and r.op == "getitem" for r in rows)
    np.testing.assert_array_equal(rows[1].data, [3.0, 4.0])
    (rows[0] * 2.0 + rows[2]).sum().backward()
    np.testing.assert_array_equal(x.grad, [[2.0, 2.0], [0.0, 0.0], [1.0, 1.0]])
    a, b, c = param([1.0, 2.0, 3.0])  # unpacking, as torch
    assert float(c) == 3.0


def test_membership_in_a_tensor_is_numpys():
    assert 2.0 in Tensor([[1.0, 2.0], [3.0, 4.0]]) and 5.0 not in Tensor([1.0, 2.0])


def test_float_and_int_of_one_element_tensors():
    assert float(Tensor([[2.5]])) == 2.5 and isinstance(float(Tensor(2.5)), float)
    assert int(Tensor(2.9)) == 2 and isinstance(int(Tensor([-1.5])), int)


@pytest.mark.parametrize("convert", [float, int])
def test_float_and_int_of_larger_tensors_raise(convert):
    with pytest.raises(ValueError, match=rf"{convert.__name__}: only a one-element tensor .* shape \(2,\)"):
        convert(Tensor([1.0, 2.0]))
