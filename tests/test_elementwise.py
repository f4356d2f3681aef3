"""Elementwise ops and matmul (ops/elementwise.py): values against numpy, gradients against central differences and
against PyTorch, broadcasting, the numeric holes PyTorch fills (0 ** 0, NaN into relu and abs), softmax, errors.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_cnn.functional as F
from tests.helpers import SEEDS, TF, broadcast_pair, leaf, rand, randn, random_shape, same_program, torch
from tinygrad_cnn import Tensor, gradcheck

# ----------------------------------------------------------------------------- arithmetic and broadcasting
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


def test_gradient_of_x_to_the_zero_at_zero_is_zero():
    x = leaf([0.0, 2.0])
    (x ** 0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])
    x, e = leaf([0.0, 2.0]), leaf(0.0)
    (x ** e).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0])
    assert e.grad == pytest.approx(0.6931471805599453, rel=1e-15)  # log 2; the 0 ** 0 term adds 0


@pytest.mark.filterwarnings("ignore:divide by zero encountered in power")  # numpy's, for the forward 0 ** -1
def test_gradient_of_zero_to_the_e_is_zero():
    e = leaf([0.0, 2.0, 0.5, -1.0])
    out = Tensor(np.float64(0.0)) ** e
    out.sum().backward()
    np.testing.assert_array_equal(out.data, [1.0, 0.0, 0.0, np.inf])
    np.testing.assert_array_equal(e.grad, [0.0, 0.0, 0.0, -np.inf])  # torch


shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)


@settings(max_examples=30, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**16))
def test_random_shapes_broadcast_against_row(shape, seed):
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal(shape), requires_grad=True)
    row = Tensor(rng.standard_normal(shape[-1:]), requires_grad=True)
    assert gradcheck(lambda x, r: (x * r + r).tanh().sum(axis=-1 if shape else None), x, row)


def test_broadcast_mismatch_names_op_and_shapes():
    a = Tensor(np.ones((2, 3)), requires_grad=True)
    for fn, op in [(lambda: a + np.ones(4), "add"), (lambda: a * np.ones((3, 2)), "mul"),
                   (lambda: a - np.ones(2), "sub"), (lambda: a / np.ones(4), "div"),
                   (lambda: a ** np.ones(5), "pow")]:
        with pytest.raises(ValueError, match=rf"{op}: .*\(2, 3\) and \(\d.*\)"):
            fn()


def test_maximum_minimum_values_and_gradients_match_pytorch():
    nan = np.nan
    a, b = leaf([1.0, 2.0, nan, 3.0, 1.0]), leaf([1.0, 1.0, 0.0, nan, 2.0])
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
    a = leaf([[1.0], [3.0]])
    out = F.maximum(a, [2.0, 0.0, 4.0])
    assert out.shape == (2, 3) and out.rule
    out.sum().backward()
    np.testing.assert_array_equal(a.grad, [[1.0], [2.0]])
    with pytest.raises(ValueError, match=r"maximum: .*\(2, 3\) and \(4,\)"):
        leaf(np.ones((2, 3))).maximum(np.ones(4))
    with pytest.raises(ValueError, match=r"minimum: .*\(2, 1\) and \(3, 2\)"):
        a.minimum(np.ones((3, 2)))


# ----------------------------------------------------------------------------- matmul
@pytest.mark.parametrize("sa,sb", [((3, 4), (4, 2)), ((4,), (4, 2)), ((3, 4), (4,)), ((4,), (4,)),
                                   ((5, 3, 4), (4, 2)), ((2, 1, 3, 4), (5, 4, 2)), ((4,), (2, 4, 3))])
def test_matmul(sa, sb):
    a, b = rand(*sa, seed=1), rand(*sb, seed=2)
    np.testing.assert_allclose((a @ b).data, np.matmul(a.data, b.data))
    assert gradcheck(lambda a, b: a @ b, a, b)
    assert gradcheck(lambda b: np.ones(sa) @ b, b)  # reflected


def test_matmul_mismatch():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) do not align"):
        Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 5)))
    with pytest.raises(ValueError, match="at least 1 dim"):
        Tensor(np.ones(3)) @ Tensor(2.0)


# ----------------------------------------------------------------------------- unary ops
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


def test_relu_passes_the_gradient_at_nan():
    x = leaf([np.nan, -1.0, 2.0])
    out = x.relu()
    out.backward(np.array([3.0, 3.0, 3.0]))
    np.testing.assert_array_equal(out.data, [np.nan, 0.0, 2.0])
    np.testing.assert_array_equal(x.grad, [3.0, 0.0, 3.0])  # torch


def test_abs_gradient_at_nan_is_zero():
    x = leaf([np.nan, -1.0, 0.0, 2.0])
    out = x.abs()
    out.backward(np.full(4, 3.0))
    np.testing.assert_array_equal(out.data, [np.nan, 1.0, 0.0, 2.0])
    np.testing.assert_array_equal(x.grad, [0.0, -3.0, 0.0, 3.0])  # torch


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


@pytest.mark.parametrize("name", ["relu", "sigmoid", "tanh", "softmax", "log_softmax"])
def test_functional_forms_are_the_methods(name):
    x = rand(2, 3)
    np.testing.assert_array_equal(getattr(F, name)(x).data, getattr(x, name)().data)
    np.testing.assert_array_equal(getattr(F, name)(x.data).data, getattr(x, name)().data)  # arrays accepted
    np.testing.assert_array_equal(F.matmul(x, np.ones((3, 2))).data, (x @ np.ones((3, 2))).data)


# ----------------------------------------------------------------------------- softmax
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


def test_softmax_axis_out_of_range_is_named():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match="softmax: axis 2 is out of range"):
        x.softmax(axis=2)
    with pytest.raises(ValueError, match="log_softmax: axis -3 is out of range"):
        x.log_softmax(axis=-3)


@pytest.mark.parametrize("op", ["softmax", "log_softmax"])
def test_softmax_over_an_empty_axis_is_empty(op):
    x = Tensor(np.ones((3, 0)), requires_grad=True)
    out = getattr(x, op)(axis=-1)
    assert out.shape == (3, 0)  # as torch
    out.sum().backward()
    assert x.grad.shape == (3, 0)


def test_softmax_of_a_0d_tensor_raises():
    with pytest.raises(ValueError, match=r"softmax: axis -1 is out of range for a tensor of shape \(\)"):
        Tensor(1.0).softmax()


# ----------------------------------------------------------------------------- against PyTorch (float64, 1e-9)
TORCH_BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, False),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, False),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, False),
    "div": (lambda a, b: a / b, lambda a, b: a / b, True),
    "pow": (lambda a, b: a ** b, lambda a, b: a ** b, True),
    "maximum": (lambda a, b: a.maximum(b), lambda a, b: torch.maximum(a, b), False),
    "minimum": (lambda a, b: F.minimum(a, b), lambda a, b: torch.minimum(a, b), False),
    "np.maximum": (lambda a, b: np.maximum(a, b), lambda a, b: torch.maximum(a, b), False),
    "np.add": (lambda a, b: np.add(a, b), lambda a, b: a + b, False),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", TORCH_BINARY)
def test_binary_ops_match_pytorch(name, seed):
    ours, theirs, positive = TORCH_BINARY[name]
    rng = np.random.default_rng(seed)
    sa, sb = broadcast_pair(rng)
    same_program(ours, theirs, randn(rng, sa, positive), randn(rng, sb, positive), seed=seed)


def test_binary_ops_with_constants_on_either_side_match_pytorch():
    rng = np.random.default_rng(0)
    c = rng.standard_normal(3)
    same_program(lambda a: (2.0 - a) * c / (1.5 + a * a) + c ** 2 - a ** 3 + 2.0 ** a,
                 lambda a: (2.0 - a) * torch.tensor(c) / (1.5 + a * a) + torch.tensor(c) ** 2 - a ** 3 + 2.0 ** a,
                 rng.standard_normal((2, 3)))


TORCH_UNARY = {
    "neg": (lambda a: -a, lambda a: -a, False),
    "exp": (lambda a: a.exp(), lambda a: torch.exp(a), False),
    "log": (lambda a: a.log(), lambda a: torch.log(a), True),
    "sqrt": (lambda a: F.sqrt(a), lambda a: torch.sqrt(a), True),
    "abs": (lambda a: a.abs(), lambda a: torch.abs(a), False),
    "clip": (lambda a: a.clip(-0.5, 0.7), lambda a: torch.clamp(a, -0.5, 0.7), False),
    "relu": (lambda a: a.relu(), lambda a: torch.relu(a), False),
    "sigmoid": (lambda a: a.sigmoid(), lambda a: torch.sigmoid(a), False),
    "tanh": (lambda a: np.tanh(a), lambda a: torch.tanh(a), False),
    "softmax": (lambda a: a.softmax(axis=0), lambda a: torch.softmax(a, dim=0), False),
    "log_softmax": (lambda a: F.log_softmax(a), lambda a: torch.log_softmax(a, dim=-1), False),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", TORCH_UNARY)
def test_unary_ops_match_pytorch(name, seed):
    ours, theirs, positive = TORCH_UNARY[name]
    rng = np.random.default_rng(seed)
    same_program(ours, theirs, randn(rng, random_shape(rng), positive) * 2, seed=seed)


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
                                    ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2))])
def test_matmul_matches_pytorch(shapes):
    rng = np.random.default_rng(len(shapes[0]))
    same_program(lambda a, b: a @ b, torch.matmul, *(rng.standard_normal(s) for s in shapes))


@pytest.mark.parametrize("slope", [0.01, 0.2, -0.5])
def test_leaky_relu_matches_pytorch(slope):
    same_program(lambda x: x.leaky_relu(slope), lambda x: TF.leaky_relu(x, slope),
                 np.random.default_rng(11).standard_normal((3, 4, 5)))
