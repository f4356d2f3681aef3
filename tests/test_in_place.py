"""In-place writes (tensor.py, arrays.py): ``x += y`` rebinds x to a new tensor (micrograd's and JAX's meaning) except
on a leaf that requires grad, which refuses (even inside no_grad(), where PyTorch updates it in place: a
deliberate difference); a tensor's values and a hook's gradient are read-only, and
an in-place edit of either says what to write instead; replacing ``.data`` of a tensor an op used is caught at
backward.
"""

import pickle
import re

import numpy as np
import pytest

from tinygrad_cnn import Tensor, gradcheck, nn, no_grad


# ----------------------------------------------------------------------------- augmented assignment
def value(v):
    """micrograd's Value(v): a scalar leaf that gets a gradient."""
    return Tensor(v, requires_grad=True, dtype=np.float64)


def test_micrograd_style_expressions_with_augmented_assignment_match_pytorch():
    """micrograd's own test suite writes ``c += c + 1`` on interior values; here the same kind of expression, each
    result and gradient compared with PyTorch's (where ``+=`` on a non-leaf also works)."""
    torch = pytest.importorskip("torch")

    def program(a, b, relu):
        c = a * b + b ** 2
        c += c + 1
        c += 2 + c + (-a)
        d = a - b * 3
        d *= d + relu(a + b)
        d -= 0.5 * c
        e = (c - d) ** 2
        e /= 4.0
        e += 7.0 / e
        return e

    a, b = value(-3.0), value(1.5)
    ours = program(a, b, lambda t: t.relu())
    ours.backward()
    ta = torch.tensor(-3.0, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    theirs = program(ta, tb, torch.relu)
    theirs.backward()
    assert abs(float(ours.data) - theirs.item()) < 1e-9 * abs(theirs.item())
    assert abs(float(a.grad) - ta.grad.item()) < 1e-9 * abs(ta.grad.item())
    assert abs(float(b.grad) - tb.grad.item()) < 1e-9 * abs(tb.grad.item())


def test_augmented_assignment_builds_a_new_tensor_and_the_gradient_flows_through_it():
    x = value(2.0)
    y = x * 3
    alias = y
    y += x  # y = y + x: a new tensor; alias still names the old one
    assert y is not alias and y.op == "add" and alias.op == "mul"
    assert float(y.data) == 8.0 and float(alias.data) == 6.0
    y.backward()
    assert float(x.grad) == 4.0
    assert gradcheck(lambda t: _chain(t), Tensor(np.array([0.5, -1.0]), requires_grad=True))


def _chain(t):
    c = t * 2
    c += t
    c -= 1
    c *= t
    c /= 3
    c **= 2
    return c


class ResidualBlock(nn.Module):
    """conv-relu-conv, then out += identity, relu: the course's identity block written PyTorch's way."""

    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, pad=1, seed=0)
        self.conv2 = nn.Conv2d(channels, channels, 3, pad=1, seed=1)

    def forward(self, x):
        identity = x
        out = self.conv1(x).relu()
        out = self.conv2(out)
        out += identity
        return out.relu()


def test_a_residual_blocks_out_plus_equals_identity_matches_pytorch():
    torch = pytest.importorskip("torch")
    block = ResidualBlock(3)
    x = Tensor(np.random.default_rng(2).normal(size=(2, 5, 5, 3)), requires_grad=True)
    block(x).sum().backward()

    conv1, conv2 = (torch.nn.Conv2d(3, 3, 3, padding=1).double() for _ in range(2))
    with torch.no_grad():
        for theirs, ours in ((conv1, block.conv1), (conv2, block.conv2)):
            theirs.weight.copy_(torch.from_numpy(ours.W.data.transpose(3, 2, 0, 1).astype(np.float64)))
            theirs.bias.copy_(torch.from_numpy(ours.b.data.astype(np.float64)))
    tx = torch.tensor(x.data.transpose(0, 3, 1, 2).astype(np.float64), requires_grad=True)
    identity = tx
    out = conv2(torch.relu(conv1(tx)))
    out += identity
    torch.relu(out).sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(block.conv1.W.grad, conv1.weight.grad.numpy().transpose(2, 3, 1, 0), rtol=1e-4,
                               atol=1e-4)


@pytest.mark.parametrize("op", ["+=", "-=", "*=", "/=", "**=", "@="])
def test_a_leaf_that_requires_grad_still_refuses_and_says_what_to_write(op):
    w = Tensor(np.ones((2, 2)), requires_grad=True)
    before = w
    message = (rf"{re.escape(op)} on a leaf that requires grad \(a parameter\) is refused, even inside no_grad\(\) "
               r"\(PyTorch updates it in place there; here there are no in-place ops\): .*silently stop\. To update a "
               r"parameter's values write p\.data = p\.data - lr \* p\.grad")
    with pytest.raises(TypeError, match=message):
        exec(f"w {op} Tensor(np.ones((2, 2)))")
    with pytest.raises(TypeError, match=message), no_grad():
        exec(f"w {op} Tensor(np.ones((2, 2)))")
    assert w is before and w.is_leaf


@pytest.mark.parametrize("op", ["+=", "-=", "*=", "/=", "**=", "@="])
def test_in_place_operators_raise_and_say_what_to_write(op):
    w = Tensor(np.ones((2, 2)), requires_grad=True)
    before = w
    with pytest.raises(TypeError, match=r"on a leaf that requires grad.*p.data = p.data - lr \* p.grad"):
        exec(f"w {op} Tensor(np.ones((2, 2)))")
    assert w is before and w.is_leaf and w.data.tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_a_constant_leaf_rebinds():
    c = Tensor([1.0, 2.0])
    c += 1
    assert c.data.tolist() == [2.0, 3.0] and not c.requires_grad


# ----------------------------------------------------------------------------- read-only values and gradients
def test_data_is_read_only():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match="read-only"):
        x.data[0] = 5.0
    with pytest.raises(TypeError, match="does not support item assignment"):
        x[0] = 5.0


def test_writing_into_numpy_says_it_is_read_only_here_unlike_pytorch():
    """PyTorch's t.numpy() is a writable view sharing memory; here it is read-only and the error says what to do."""
    p = Tensor(np.ones(3), requires_grad=True)
    with pytest.raises(ValueError, match=r"t\.numpy\(\) is read-only here \(PyTorch's shares memory and writes through"
                                         r"\).*a = t\.numpy\(\)\.copy\(\); a\[i\] = value; t\.data = a"):
        p.numpy()[0] = 5.0
    with pytest.raises(ValueError, match=r"t\.numpy\(\) is read-only here.*t\.data = t\.data \* value"):
        p.numpy()[...] *= 2.0
    a = p.numpy().copy()
    a[0] = 5.0
    p.data = a
    assert p.numpy().tolist() == [5.0, 1.0, 1.0] and isinstance(p.numpy(), np.ndarray)


@pytest.mark.parametrize("protocol", range(2, pickle.HIGHEST_PROTOCOL + 1))
def test_the_read_only_views_pickle_as_plain_arrays(protocol):
    """t.numpy() and t.data pickle as numpy's own ndarray (as PyTorch's t.numpy()): loading one needs numpy only, not
    tinygrad_cnn (numpy keeps a read-only array read-only through protocol 5)."""
    t = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    for view in (t.numpy(), t.data, t.numpy()[:, 1:]):
        data = pickle.dumps(view, protocol=protocol)
        assert b"tinygrad_cnn" not in data
        loaded = pickle.loads(data)
        assert type(loaded) is np.ndarray
        np.testing.assert_array_equal(loaded, view)


def test_tensor_owns_its_data():
    arr = np.ones(2)
    x = Tensor(arr)
    arr[0] = 7.0
    assert x.data[0] == 1.0


def test_editing_data_in_place_is_told_to_assign_a_new_array():
    p = Tensor(np.ones(3), requires_grad=True)
    p.grad = np.full(3, 2.0)
    with pytest.raises(ValueError, match=r"t\.data is read-only: '-=' would write into values .* Assign a new array "
                                         r"instead: t\.data = t\.data - value \(a parameter's update: p\.data = "
                                         r"p\.data - lr \* p\.grad\)"):
        p.data -= 0.1 * p.grad
    with pytest.raises(ValueError, match=r"t\.data is read-only .*a = t\.data\.copy\(\); a\[i\] = value; t\.data = a"):
        p.data[0] = 5.0
    p.data = p.data - 0.1 * p.grad
    assert p.data.tolist() == [0.8, 0.8, 0.8]


def test_data_is_still_an_ndarray_for_everything_else():
    t = Tensor([[1.0, 2.0], [3.0, 4.0]], dtype=np.float64)
    d = t.data
    assert isinstance(d, np.ndarray) and not d.flags.writeable and repr(d) == "array([[1., 2.],\n       [3., 4.]])"
    doubled = d * 2
    doubled += 1  # an array computed from it is writable
    assert doubled.tolist() == [[3.0, 5.0], [7.0, 9.0]]
    assert type(np.ones(2) * d[0]) is np.ndarray and np.shares_memory(d, np.asarray(t))


def test_a_hook_that_edits_its_gradient_in_place_is_told_to_return_it():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)

    def halve(g):
        g *= 0.5
    x.register_hook(halve)
    with pytest.raises(ValueError, match=r"a hook's gradient is read-only: 'g \*= \.\.\.' edits it in place\. Return "
                                         r"the new gradient instead: return g \* \.\.\. \(e\.g\. return g \* 0\.5\)"):
        (x * 1).sum().backward()


def test_a_hook_that_returns_a_new_gradient_works():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    x.register_hook(lambda g: g * 0.5)
    (x * 3).sum().backward()
    assert x.grad.tolist() == [1.5, 1.5] and type(x.grad) is np.ndarray


def test_replacing_data_of_a_used_tensor_is_caught_at_backward():
    w = Tensor([1.0, 2.0], requires_grad=True, name="w")
    loss = (w * w).sum()
    w.data = np.array([5.0, 5.0])
    with pytest.raises(RuntimeError, match=r"input 0 \('w'\) of 'mul' had its .data replaced"):
        loss.backward()
    assert w.grad is None  # nothing half-applied
    (w * w).sum().backward()  # a fresh forward is fine
    assert w.grad.tolist() == [10.0, 10.0]
