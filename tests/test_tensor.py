"""The core Tensor: forward values against numpy, gradients against central differences,
the backward semantics, and the error paths."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_cnn.functional as F
from tinygrad_cnn import GradcheckError, Tensor, gradcheck, no_grad, set_default_dtype
from tinygrad_cnn.tensor import get_default_dtype, topo_order


def rand(*shape, seed=0, positive=False, requires_grad=True, name=None):
    data = np.random.default_rng(seed).standard_normal(shape)
    if positive:
        data = np.abs(data) + 0.5
    return Tensor(data, requires_grad=requires_grad, name=name)


# ----------------------------------------------------------------------------- dtype policy
def test_dtype_policy():
    assert Tensor(np.zeros(3, np.float64)).dtype == np.float64
    assert Tensor(np.zeros(3, np.float32)).dtype == np.float32
    assert Tensor([1, 2, 3]).dtype == np.float32
    assert Tensor(3).dtype == np.float32
    assert Tensor(np.arange(3)).dtype == np.float32
    assert Tensor(np.array([True, False])).dtype == np.float32
    x = Tensor(np.ones(2, np.float64), requires_grad=True)
    (x * 2).sum().backward()
    assert x.grad.dtype == np.float64 and x.grad.shape == (2,)


def test_default_dtype_is_settable():
    try:
        set_default_dtype(np.float64)
        assert Tensor([1.0]).dtype == np.float64
    finally:
        set_default_dtype(np.float32)
    assert get_default_dtype() == np.float32
    with pytest.raises(TypeError, match="float32 or float64"):
        set_default_dtype(np.int32)


def test_python_scalar_takes_tensor_dtype():
    x = Tensor(np.array([1.0], np.float64))
    assert (x * 0.1).data[0] == 0.1  # not rounded through float32
    assert (Tensor(np.ones(1, np.float32)) * 0.1).dtype == np.float32
    assert (x + [0.1]).data[0] == 1.1  # a list operand, too, is not rounded through float32
    assert (x * np.ones(1, np.float32)).dtype == np.float64  # numpy's promotion otherwise


@pytest.mark.parametrize("bad", [np.array(["a"]), np.array([1 + 2j]), np.array([object()], dtype=object), "text"])
def test_unsupported_dtype_raises(bad):
    with pytest.raises(TypeError, match="Tensor: unsupported dtype"):
        Tensor(bad)


def test_ragged_list_raises():
    with pytest.raises(ValueError, match="rectangular"):
        Tensor([[1, 2], [3]])


# ----------------------------------------------------------------------------- attributes
def test_attributes_and_repr():
    x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, name="x")
    y = x * 2
    assert (x.shape, x.ndim, x.size, len(x)) == ((2, 2), 2, 4, 2)
    assert y.op == "mul" and y.parents[0] is x and x.op is None and x.is_leaf
    assert np.asarray(y).tolist() == [[2, 4], [6, 8]]
    assert np.shares_memory(y.numpy(), y.data)
    assert Tensor(3.5).item() == 3.5
    r = repr(y)
    assert "shape=(2, 2)" in r and "float32" in r and "op=mul" in r and "2." in r
    assert "name='x'" in repr(x)
    with pytest.raises(ValueError, match="one-element"):
        x.item()
    with pytest.raises(TypeError, match="0-d"):
        len(Tensor(1.0))


def test_op_label_shows_hyper_parameters():
    x = rand(2, 3)
    assert x.sum(axis=1).op_label == "sum axis=1"
    assert x.reshape(3, 2).op_label == "reshape shape=(3, 2)"
    assert x.op_label == ""


def test_constructors_are_seedable():
    a = Tensor.randn(2, 3, seed=1)
    b = Tensor.randn((2, 3), seed=np.random.default_rng(1))
    assert np.array_equal(a.data, b.data) and a.dtype == np.float32
    u = Tensor.uniform(100, low=-2, high=-1, seed=3)
    assert u.data.min() >= -2 and u.data.max() < -1
    assert Tensor.zeros(2, 2).data.sum() == 0 and Tensor.ones(3).data.sum() == 3
    assert Tensor.zeros_like(a).shape == (2, 3) and Tensor.ones_like(a).data.sum() == 6
    assert Tensor.zeros(2, dtype=np.float64).dtype == np.float64


# ----------------------------------------------------------------------------- forward vs numpy
BINARY = [
    (lambda a, b: a + b, np.add),
    (lambda a, b: a - b, np.subtract),
    (lambda a, b: a * b, np.multiply),
    (lambda a, b: a / b, np.divide),
]
SHAPE_PAIRS = [((3,), (3,)), ((2, 3), (3,)), ((2, 1), (1, 4)), ((4, 1, 3), (2, 3)), ((), (2, 2)), ((2, 3), ())]


@pytest.mark.parametrize("op,ref", BINARY)
@pytest.mark.parametrize("sa,sb", SHAPE_PAIRS)
def test_binary_ops_forward_and_gradcheck(op, ref, sa, sb):
    a, b = rand(*sa, seed=1), rand(*sb, seed=2, positive=True)
    np.testing.assert_allclose(op(a, b).data, ref(a.data, b.data))
    assert gradcheck(op, a, b)


@pytest.mark.parametrize("other", [2.0, 3, np.array([1.0, 2.0, 3.0])])
def test_reflected_ops_with_scalars_and_arrays(other):
    a = rand(3, positive=True)
    for fn, ref in [(lambda x: other + x, lambda x: other + x), (lambda x: other - x, lambda x: other - x),
                    (lambda x: other * x, lambda x: other * x), (lambda x: other / x, lambda x: other / x),
                    (lambda x: x ** 2, lambda x: x ** 2), (lambda x: 2.0 ** x, lambda x: 2.0 ** x)]:
        out = fn(a)
        assert isinstance(out, Tensor)
        np.testing.assert_allclose(out.data, ref(a.data), rtol=1e-12)
        assert gradcheck(fn, a)


def test_pow_tensor_exponent_and_neg():
    a, b = rand(2, 3, positive=True), rand(2, 3, seed=4)
    np.testing.assert_allclose((a ** b).data, a.data ** b.data)
    assert gradcheck(lambda a, b: a ** b, a, b)
    assert gradcheck(lambda a: -a, a)


@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 2)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)),
                                   ((5, 3, 4), (4, 2)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 3))])
def test_matmul(sa, sb):
    a, b = rand(*sa, seed=1), rand(*sb, seed=2)
    np.testing.assert_allclose((a @ b).data, np.matmul(a.data, b.data))
    assert gradcheck(lambda a, b: a @ b, a, b)
    assert gradcheck(lambda b: np.ones(sa) @ b, b)  # reflected


UNARY = [
    ("exp", lambda x: x.exp(), np.exp, False),
    ("log", lambda x: x.log(), np.log, True),
    ("sqrt", lambda x: x.sqrt(), np.sqrt, True),
    ("abs", lambda x: x.abs(), np.abs, False),
    ("relu", lambda x: x.relu(), lambda x: np.maximum(x, 0), False),
    ("sigmoid", lambda x: x.sigmoid(), lambda x: 1 / (1 + np.exp(-x)), False),
    ("tanh", lambda x: x.tanh(), np.tanh, False),
    ("clip", lambda x: x.clip(-0.5, 0.7), lambda x: np.clip(x, -0.5, 0.7), False),
]


@pytest.mark.parametrize("name,fn,ref,positive", UNARY, ids=[u[0] for u in UNARY])
@pytest.mark.parametrize("shape", [(), (5,), (3, 4), (2, 3, 4)])
def test_unary_ops(name, fn, ref, positive, shape):
    x = rand(*shape, seed=7, positive=positive)
    if name in ("abs", "relu", "clip"):  # keep away from the kinks
        x = Tensor(np.where(np.abs(x.data) < 0.05, 0.3, x.data), requires_grad=True)
        x = Tensor(np.where(np.abs(np.abs(x.data) - 0.6) < 0.05, 0.3, x.data), requires_grad=True)
    np.testing.assert_allclose(fn(x).data, ref(x.data), rtol=1e-12)
    assert gradcheck(fn, x)


def test_clip_takes_constant_tensor_bounds_and_refuses_bounds_that_require_grad():
    x = Tensor([0.0, 1.0, 2.0, 3.0], requires_grad=True)
    low, high = Tensor([0.5, 0.5, 0.5, 2.5]), Tensor(2.0)
    for out in (x.clip(low, high), np.clip(x, low, high), F.clip(x, low=low, high=high)):
        np.testing.assert_array_equal(out.data, np.clip(x.data, low.data, high.data))
    x.clip(low, high).sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0]
    with pytest.raises(TypeError, match="clip: high requires grad.*x.maximum\\(low\\).minimum\\(high\\)"):
        x.clip(0.0, Tensor(2.0, requires_grad=True))


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_softmax_and_log_softmax(axis):
    x = rand(3, 4)
    e = np.exp(x.data - x.data.max(axis=axis, keepdims=True))
    ref = e / e.sum(axis=axis, keepdims=True)
    np.testing.assert_allclose(x.softmax(axis).data, ref, rtol=1e-12)
    np.testing.assert_allclose(x.log_softmax(axis).data, np.log(ref), rtol=1e-12)
    assert gradcheck(lambda x: x.softmax(axis), x)
    assert gradcheck(lambda x: x.log_softmax(axis), x)


def test_softmax_is_stable_for_large_logits():
    x = Tensor([[1000.0, 0.0, -1000.0]], requires_grad=True)
    assert np.all(np.isfinite(x.softmax().data)) and np.all(np.isfinite(x.log_softmax().data))
    loss = F.cross_entropy(x, [0])
    loss.backward()
    assert np.isfinite(loss.item()) and abs(loss.item()) < 1e-6 and np.all(np.isfinite(x.grad))
    assert np.all(np.isfinite(Tensor([-1000.0, 1000.0]).sigmoid().data))


# ----------------------------------------------------------------------------- reductions
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


# ----------------------------------------------------------------------------- shape ops
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


def test_concatenate_and_stack():
    a, b = rand(2, 3, seed=1), rand(4, 3, seed=2)
    np.testing.assert_array_equal(Tensor.concatenate([a, b]).data, np.concatenate([a.data, b.data]))
    assert gradcheck(lambda a, b: F.concatenate([a, b], axis=0) * np.arange(18.0).reshape(6, 3), a, b)
    c = rand(4, 3, seed=3)
    np.testing.assert_array_equal(Tensor.stack([b, c], axis=1).data, np.stack([b.data, c.data], axis=1))
    assert gradcheck(lambda b, c: F.stack([b, c], axis=1) * np.arange(24.0).reshape(4, 2, 3), b, c)


# ----------------------------------------------------------------------------- losses
def test_mse_loss():
    p, t = rand(3, 2), np.random.default_rng(1).standard_normal((3, 2))
    np.testing.assert_allclose(F.mse_loss(p, t).item(), np.mean((p.data - t) ** 2))
    assert gradcheck(lambda p: F.mse_loss(p, t), p)


def test_cross_entropy_labels_and_one_hot_agree():
    logits = rand(4, 3)
    labels = np.array([0, 2, 1, 2])
    one_hot = np.eye(3)[labels]
    logp = logits.data - np.log(np.exp(logits.data).sum(axis=1, keepdims=True))
    ref = -logp[np.arange(4), labels].mean()
    np.testing.assert_allclose(F.cross_entropy(logits, labels).item(), ref)
    np.testing.assert_allclose(F.cross_entropy(logits, one_hot).item(), ref)
    assert gradcheck(lambda x: F.cross_entropy(x, labels), logits)
    assert gradcheck(lambda x: F.cross_entropy(x, one_hot), logits)
    soft = np.random.default_rng(2).dirichlet(np.ones(3), size=4)  # rows of probabilities
    np.testing.assert_allclose(F.cross_entropy(logits, soft).item(), -(soft * logp).sum(axis=1).mean())
    assert gradcheck(lambda x: F.cross_entropy(x, soft), logits)


def test_loss_bad_input():
    with pytest.raises(ValueError, match=r"mse_loss: pred has shape \(3,\) but target has shape \(2,\)"):
        F.mse_loss(rand(3), np.zeros(2))
    with pytest.raises(ValueError, match=r"cross_entropy: logits must be \(N, C\)"):
        F.cross_entropy(rand(3), [0])
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        F.cross_entropy(rand(2, 3), [0, 3])
    with pytest.raises(ValueError, match="targets must be labels of shape"):
        F.cross_entropy(rand(2, 3), [0, 1, 2])
    with pytest.raises(TypeError, match="class labels must be integers"):
        F.cross_entropy(rand(2, 3), np.array([0.5, 1.0]))


# ----------------------------------------------------------------------------- backward semantics
def test_tensor_used_twice_accumulates():
    x = Tensor([2.0], requires_grad=True)
    (x * x + x).sum().backward()
    assert x.grad.tolist() == [5.0]


def test_second_backward_doubles_leaves_exactly_and_not_interiors():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = x * 3  # interior used twice
    loss = (h * h).sum() + h.sum()
    loss.backward()
    first_leaf, first_h = x.grad.copy(), h.grad.copy()
    loss.backward()
    np.testing.assert_array_equal(x.grad, 2 * first_leaf)
    np.testing.assert_array_equal(h.grad, first_h)  # interior: latest backward only
    np.testing.assert_array_equal(first_leaf, 3 * (2 * 3 * x.data + 1))


def test_no_grad_for_tensors_that_do_not_require_it():
    x, c = Tensor([1.0], requires_grad=True), Tensor([3.0])
    y = x * c
    y.sum().backward()
    assert c.grad is None and x.grad.tolist() == [3.0]


def test_branch_without_grad_leaves_is_not_recorded():
    c = Tensor([1.0, 2.0])
    d = (c * 2).exp()
    assert not d.requires_grad and d.parents == () and d.op is None


def test_closure_not_called_for_constant_branches():
    x = Tensor([1.0], requires_grad=True)
    const = Tensor([2.0]) * 5
    called = []
    y = x * const
    original = y._backward
    y._backward = lambda g: called.append(1) or original(g)
    y.sum().backward()
    assert called == [1] and const.grad is None


def test_backward_needs_grad_for_non_scalar():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"one-element tensor.*shape \(2,\)"):
        (x * 2).backward()
    (x * 2).backward(np.array([1.0, 10.0]))
    assert x.grad.tolist() == [2.0, 20.0]
    with pytest.raises(ValueError, match=r"grad has shape \(3,\) but the tensor has shape \(2,\)"):
        (x * 2).backward(np.ones(3))


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (Tensor([1.0]) * 2).sum().backward()


def test_zero_grad_detach_requires_grad_():
    x = Tensor([1.0], requires_grad=True)
    (x * 2).sum().backward()
    x.zero_grad()
    assert x.grad is None
    d = (x * 2).detach()
    assert d.is_leaf and not d.requires_grad and d.data.tolist() == [2.0]
    (d * x).sum().backward()
    assert x.grad.tolist() == [2.0] and d.grad is None
    c = Tensor([1.0]).requires_grad_()
    assert c.requires_grad
    with pytest.raises(RuntimeError, match="only a leaf"):
        (x * 2).requires_grad_(False)


def test_no_grad_context_and_decorator():
    x = Tensor([1.0], requires_grad=True)
    with no_grad():
        y = x * 2
    assert not y.requires_grad and y.parents == ()

    @no_grad()
    def f(t):
        return t.exp()
    assert not f(x).requires_grad
    assert (x * 2).requires_grad  # restored

    @no_grad
    def g(t):
        return t.exp()
    assert not g(x).requires_grad and g.__name__ == "g"
    assert (x * 2).requires_grad


def test_chain_of_100000_ops_needs_no_recursion():
    x = Tensor(np.ones(1, np.float64), requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0001 ** 100_000], rtol=1e-9)
    assert len(topo_order(y)) == 1 + 2 * 100_000  # x, then each op and its constant


# ----------------------------------------------------------------------------- in-place writes
def test_data_is_read_only():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match="read-only"):
        x.data[0] = 5.0
    with pytest.raises(TypeError, match="does not support item assignment"):
        x[0] = 5.0


@pytest.mark.parametrize("op", ["+=", "-=", "*=", "/=", "**=", "@="])
def test_in_place_operators_raise_and_say_what_to_write(op):
    w = Tensor(np.ones((2, 2)), requires_grad=True)
    before = w
    with pytest.raises(TypeError, match=r"on a leaf that requires grad.*p.data = p.data - lr \* p.grad"):
        exec(f"w {op} Tensor(np.ones((2, 2)))")
    assert w is before and w.is_leaf and w.data.tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_tensor_owns_its_data():
    arr = np.ones(2)
    x = Tensor(arr)
    arr[0] = 7.0
    assert x.data[0] == 1.0


def test_replacing_data_of_a_used_tensor_is_caught_at_backward():
    w = Tensor([1.0, 2.0], requires_grad=True, name="w")
    loss = (w * w).sum()
    w.data = np.array([5.0, 5.0])
    with pytest.raises(RuntimeError, match=r"input 0 \('w'\) of 'mul' had its .data replaced"):
        loss.backward()
    assert w.grad is None  # nothing half-applied
    (w * w).sum().backward()  # a fresh forward is fine
    assert w.grad.tolist() == [10.0, 10.0]


# ----------------------------------------------------------------------------- bad input
def test_broadcast_mismatch_names_op_and_shapes():
    a = Tensor(np.ones((2, 3)), requires_grad=True)
    for fn, op in [(lambda: a + np.ones(4), "add"), (lambda: a * np.ones((3, 2)), "mul"),
                   (lambda: a - np.ones(2), "sub"), (lambda: a / np.ones(4), "div"),
                   (lambda: a ** np.ones(5), "pow")]:
        with pytest.raises(ValueError, match=rf"{op}: .*\(2, 3\) and \(\d.*\)"):
            fn()


def test_matmul_mismatch():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) do not align"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match="at least 1 dim"):
        Tensor(np.ones(3)) @ Tensor(2.0)


def test_shape_op_errors():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"reshape: cannot reshape shape \(2, 3\) \(6 elements\) into \(4,\)"):
        x.reshape(4)
    with pytest.raises(ValueError, match="transpose: axes"):
        x.transpose(0, 0)
    with pytest.raises(ValueError, match="sum: axis 2 is out of range"):
        x.sum(axis=2)
    with pytest.raises(ValueError, match=r"transpose: axes \(0, 3\) are not a permutation of the 2 axes"):
        x.transpose(0, 3)  # 3 % 2 == 1: numpy's own AxisError named no op
    for op in ("sum", "mean", "max", "min"):
        with pytest.raises(ValueError, match=rf"{op}: axis \(1, -1\) names axis 1 twice \(shape \(2, 3\)\)"):
            getattr(x, op)(axis=(1, -1))
    assert x.flatten(1, -1).shape == (2, 3) and Tensor([1.0, 2.0]).flatten().shape == (2,)  # start = end is fine
    with pytest.raises(IndexError, match=r"getitem: .*\(2, 3\)"):
        x[5]
    with pytest.raises(ValueError, match="concatenate: "):
        Tensor.concatenate([x, Tensor(np.ones((2, 2)))], axis=0)
    with pytest.raises(ValueError, match="max: cannot reduce an empty tensor"):
        Tensor(np.ones((0, 2))).max()


def test_failed_op_leaves_no_node_and_no_grad_change():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2
    with pytest.raises(ValueError):
        y + np.ones(4)
    y.sum().backward()
    assert [t.op for t in topo_order(y)] == [None, None, "mul"]  # x, the constant 2, y
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 2.0))


# ----------------------------------------------------------------------------- gradcheck itself
def test_gradcheck_names_the_failing_input_and_element():
    def wrong(x):  # forward x**2, backward claims 3x
        out = x.data ** 2
        return Tensor.from_op(out, (x,), "wrong", lambda g: (g * 3 * x.data,), rule="da = 3*g*a (wrong on purpose)")
    x = Tensor([1.0, 2.0], requires_grad=True, name="x")
    with pytest.raises(GradcheckError, match=r"input 0 \('x'\) of shape \(2,\), element \(0,\): analytic"):
        gradcheck(wrong, x)


# ----------------------------------------------------------------------------- random shapes
shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16))
def test_random_shapes_broadcast_against_row(shape, seed):
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal(shape), requires_grad=True)
    row = Tensor(rng.standard_normal(shape[-1:]), requires_grad=True)
    assert gradcheck(lambda x, r: (x * r + r).tanh().sum(axis=-1 if shape else None), x, row)


def test_remaining_error_paths():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"truth value of a tensor of shape \(2, 3\) is ambiguous"):
        bool(x)
    assert bool(Tensor([2.0]))
    with pytest.raises(ValueError, match="flatten: start_dim 1 comes after end_dim 0"):
        x.flatten(1, 0)
    with pytest.raises(ValueError, match="stack: needs at least one tensor"):
        Tensor.stack([])
    with pytest.raises(ValueError, match="concatenate: needs at least one tensor"):
        Tensor.concatenate([])
    with pytest.raises(ValueError, match=r"stack: .*\(2, 3\) and \(3, 2\)"):
        Tensor.stack([x, Tensor(np.ones((3, 2)))])
    with pytest.raises(TypeError, match="Tensor: dtype must be float32 or float64, got int64"):
        Tensor([1], dtype=np.int64)
    with pytest.raises(ValueError, match="softmax: axis 2 is out of range"):
        x.softmax(axis=2)
    with pytest.raises(ValueError, match="log_softmax: axis -3 is out of range"):
        x.log_softmax(axis=-3)
    with pytest.raises(TypeError, match="fn must return a Tensor"):
        gradcheck(lambda t: t.data, x)


def test_backward_restores_the_garbage_collector():
    import gc
    x = Tensor([1.0], requires_grad=True)
    (x * 2).sum().backward()
    assert gc.isenabled()
    w = Tensor([1.0], requires_grad=True)
    loss = (w * w).sum()
    w.data = np.array([2.0])
    with pytest.raises(RuntimeError):
        loss.backward()
    assert gc.isenabled()


def test_small_corners_of_the_api():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x[np.array([2, 0])]  # an integer array of indices (a Tensor index raises: tests/test_interop.py)
    y.sum().backward()
    assert y.data.tolist() == [3.0, 1.0] and x.grad.tolist() == [1.0, 0.0, 1.0]
    assert Tensor(5.0).flatten().shape == (1,)
    copied = np.array(x, copy=True)
    copied[0] = 9.0  # a copy is writable and leaves the tensor alone
    assert x.data[0] == 1.0
    assert np.asarray(x, dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "softmax", "log_softmax"])
def test_functional_forms_are_the_methods(name):
    x = rand(2, 3)
    np.testing.assert_array_equal(getattr(F, name)(x).data, getattr(x, name)().data)
    np.testing.assert_array_equal(getattr(F, name)(x.data).data, getattr(x, name)().data)  # arrays accepted
    np.testing.assert_array_equal(F.matmul(x, np.ones((3, 2))).data, (x @ np.ones((3, 2))).data)


def test_is_grad_enabled_and_tensor_from_tensor():
    from tinygrad_cnn import is_grad_enabled
    assert is_grad_enabled()
    with no_grad():
        assert not is_grad_enabled()
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = Tensor(x)  # a new leaf with a copy of the values, not part of x's graph
    assert y.data.tolist() == [1.0, 2.0] and not np.shares_memory(y.data, x.data) and not y.requires_grad
