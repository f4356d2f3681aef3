"""The methods a PyTorch user reaches for, against PyTorch: unsqueeze, squeeze, view, swapaxes (ops/shape.py), var and
std (ops/reduce.py), tolist, and the constructors full, arange, eye (creation.py): forward and backward, gradcheck,
gradients of gradients, what each records, errors. One module, not one per unit: the three checks run over one
table of these methods.
"""

import numpy as np
import pytest

from tinygrad_cnn import Tensor, gradcheck, gradgradcheck
from tinygrad_cnn.graph import topo_order

RNG = np.random.default_rng(0)
X3 = RNG.normal(size=(2, 1, 3))

# (name, our fn, torch fn, input, the ops it records)
CASES = [
    ("unsqueeze(1)", lambda x: x.unsqueeze(1), lambda t: t.unsqueeze(1), X3, {"reshape"}),
    ("unsqueeze(-1)", lambda x: x.unsqueeze(-1), lambda t: t.unsqueeze(-1), X3, {"reshape"}),
    ("unsqueeze(0)", lambda x: x.unsqueeze(0), lambda t: t.unsqueeze(0), X3, {"reshape"}),
    ("squeeze()", lambda x: x.squeeze(), lambda t: t.squeeze(), RNG.normal(size=(2, 1, 3, 1)), {"reshape"}),
    ("squeeze(1)", lambda x: x.squeeze(1), lambda t: t.squeeze(1), RNG.normal(size=(2, 1, 3, 1)), {"reshape"}),
    ("squeeze(0) of length 2", lambda x: x.squeeze(0), lambda t: t.squeeze(0), X3, {"reshape"}),
    ("squeeze((1, 3))", lambda x: x.squeeze((1, 3)), lambda t: t.squeeze((1, 3)), RNG.normal(size=(2, 1, 3, 1)),
     {"reshape"}),
    ("view(3, 2)", lambda x: x.view(3, 2), lambda t: t.view(3, 2), X3, {"reshape"}),
    ("view(-1)", lambda x: x.view(-1), lambda t: t.view(-1), X3, {"reshape"}),
    ("swapaxes(0, 2)", lambda x: x.swapaxes(0, 2), lambda t: t.transpose(0, 2), X3, {"transpose"}),
    ("swapaxes(-1, 0)", lambda x: x.swapaxes(-1, 0), lambda t: t.swapaxes(-1, 0), RNG.normal(size=(2, 3, 4)),
     {"transpose"}),
    ("var()", lambda x: x.var(), lambda t: t.var(), RNG.normal(size=(3, 4)), {"sub", "mul", "sum", "mean", "div"}),
    ("var(1)", lambda x: x.var(1), lambda t: t.var(1), RNG.normal(size=(3, 4)), {"sub", "mul", "sum", "mean", "div"}),
    ("var((0, 2), keepdims)", lambda x: x.var((0, 2), keepdims=True), lambda t: t.var((0, 2), keepdim=True),
     RNG.normal(size=(2, 3, 4)), {"sub", "mul", "sum", "mean", "div"}),
    ("var(0, correction=0)", lambda x: x.var(0, correction=0), lambda t: t.var(0, correction=0),
     RNG.normal(size=(3, 4)), {"sub", "mul", "sum", "mean", "div"}),
    ("std()", lambda x: x.std(), lambda t: t.std(), RNG.normal(size=(3, 4)), {"sqrt", "div", "sum"}),
    ("std(0, keepdims)", lambda x: x.std(0, keepdims=True), lambda t: t.std(0, keepdim=True), RNG.normal(size=(3, 4)),
     {"sqrt"}),
    ("std(1, correction=0)", lambda x: x.std(1, correction=0), lambda t: t.std(1, correction=0),
     RNG.normal(size=(3, 4)), {"sqrt"}),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize("name, ours, theirs, x, ops", CASES, ids=IDS)
def test_forward_and_backward_match_pytorch(name, ours, theirs, x, ops):
    torch = pytest.importorskip("torch")
    t = Tensor(x, requires_grad=True)
    out = ours(t)
    weights = np.random.default_rng(1).normal(size=out.shape)
    (out * weights).sum().backward()
    tt = torch.tensor(x, requires_grad=True)
    tout = theirs(tt)
    (tout * torch.tensor(weights)).sum().backward()
    assert out.shape == tuple(tout.shape)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-12, atol=1e-14)
    assert ops <= {u.op for u in topo_order(out) if u.op}, name


@pytest.mark.parametrize("name, ours, theirs, x, ops", CASES, ids=IDS)
def test_gradcheck(name, ours, theirs, x, ops):
    assert gradcheck(ours, Tensor(x, requires_grad=True))


@pytest.mark.parametrize("name, ours, theirs, x, ops", CASES, ids=IDS)
def test_gradients_of_gradients(name, ours, theirs, x, ops):
    """They are made of library ops, so create_graph=True records their backward too."""
    assert gradgradcheck(lambda t: ours(t) * ours(t), Tensor(x, requires_grad=True))


def test_tolist_gives_python_numbers_as_pytorch():
    x = Tensor([[1.0, 2.0], [3.0, 4.5]])
    assert x.tolist() == [[1.0, 2.0], [3.0, 4.5]] and type(x.tolist()[0][0]) is float
    assert Tensor(2.5).tolist() == 2.5


def test_full_arange_eye_match_pytorch_and_follow_the_default_dtype():
    torch = pytest.importorskip("torch")
    pairs = [
        (Tensor.full((2, 3), 1.5), torch.full((2, 3), 1.5)),
        (Tensor.full(4, -2), torch.full((4,), -2.0)),
        (Tensor.arange(5), torch.arange(5.0)),
        (Tensor.arange(1, 7, 2), torch.arange(1.0, 7.0, 2.0)),
        (Tensor.arange(0, 1, 0.25), torch.arange(0, 1, 0.25)),
        (Tensor.eye(3), torch.eye(3)),
        (Tensor.eye(2, 4), torch.eye(2, 4)),
    ]
    for ours, theirs in pairs:
        assert ours.dtype == np.float32 and ours.shape == tuple(theirs.shape)
        np.testing.assert_array_equal(ours.data, theirs.numpy())
    x = Tensor.arange(3, dtype=np.float64, requires_grad=True, name="x")
    assert x.dtype == np.float64 and x.requires_grad and x.name == "x" and x.is_leaf
    assert Tensor.full((2,), 3.0, requires_grad=True).requires_grad


@pytest.mark.parametrize("call, error, message", [
    (lambda x: x.unsqueeze(4), ValueError, r"unsqueeze: axis 4 is out of range for a tensor of shape \(2, 1, 3\) \(a "
     r"new axis goes at -4\.\.3\)"),
    (lambda x: x.squeeze(3), ValueError, r"squeeze: axis 3 is out of range for a tensor of shape \(2, 1, 3\)"),
    (lambda x: x.view(4, 2), ValueError, r"reshape: cannot reshape shape \(2, 1, 3\)"),
    (lambda x: x.swapaxes(0, 3), ValueError, r"swapaxes: axis 3 is out of range for a tensor of shape \(2, 1, 3\)"),
    (lambda x: x.var(1, True), TypeError, r"var: .*PyTorch's 2nd is unbiased, which is not supported here: write "
     r"correction=1"),
    (lambda x: x.var(unbiased=False), TypeError, r"var: unbiased= \(PyTorch's\) is not supported here: write "
     r"correction="),
    (lambda x: x.std(ddof=1), TypeError, r"std: ddof= is PyTorch's spelling; here it is correction="),
    (lambda x: x.var(correction="1"), TypeError, r"var: correction must be a number"),
    (lambda x: x.unsqueeze(dim=0), TypeError, r"unsqueeze: dim= .* axis="),
    (lambda x: x.swapaxes(dim0=0, dim1=1), TypeError, r"swapaxes: dim0= .* axis1="),
])
def test_errors_name_the_method_and_what_to_write(call, error, message):
    with pytest.raises(error, match=message):
        call(Tensor(X3))
