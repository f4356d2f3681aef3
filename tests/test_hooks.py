"""register_hook: PyTorch's semantics (leaf hooks run before accumulation, an interior hook's replacement flows on, once
with the summed gradient), chaining and handles, the gradient a hook gets is read-only, errors.
"""

import numpy as np
import pytest

from tinygrad_cnn import Tensor


def test_a_leaf_hook_runs_before_accumulation_and_its_result_is_accumulated():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    seen = []

    def double(g):
        seen.append(g.copy())
        return g * 2
    x.register_hook(double)
    (x * 3).sum().backward()
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [12.0, 12.0])  # 2 * 3, twice
    assert [list(g) for g in seen] == [[3.0, 3.0], [3.0, 3.0]]  # the gradient of that backward, not .grad


def test_an_interior_hook_replaces_the_gradient_that_flows_on_and_runs_once_with_the_sum():
    x = Tensor(np.array([1.0, -2.0]), requires_grad=True)
    y = x * 2
    calls = []
    y.register_hook(lambda g: calls.append(g.copy()) or np.clip(g, -1, 1))
    (y * y).sum().backward()  # y feeds mul twice: the hook sees the summed gradient 2y = [4, -8]
    np.testing.assert_array_equal(calls[0], [4.0, -8.0])
    np.testing.assert_array_equal(y.grad, [1.0, -1.0])
    np.testing.assert_array_equal(x.grad, [2.0, -2.0])
    assert len(calls) == 1


def test_hooks_chain_in_order_and_remove_takes_one_off():
    x = Tensor(np.array([1.0]), requires_grad=True)
    order = []
    first = x.register_hook(lambda g: order.append("first") or g + 1)
    x.register_hook(lambda g: order.append(("second", float(g[0]))))
    (x * 1).sum().backward()
    assert order == ["first", ("second", 2.0)] and x.grad[0] == 2.0
    first.remove()
    first.remove()  # twice is harmless
    x.zero_grad()
    (x * 1).sum().backward()
    assert x.grad[0] == 1.0 and order[-1] == ("second", 1.0)


def test_a_hook_gets_a_read_only_gradient():
    x = Tensor(np.array([1.0]), requires_grad=True)

    def scribble(g):
        g[0] = 5
    x.register_hook(scribble)
    with pytest.raises(ValueError, match="read-only"):
        (x * 1).sum().backward()


def test_a_hook_that_returns_the_wrong_shape_or_dtype_is_named():
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)

    def bad_shape(g):
        return g[:1]
    handle = x.register_hook(bad_shape)
    with pytest.raises(RuntimeError, match=r"hook .*bad_shape returned ndarray of shape \(1,\) and dtype float64, "
                                           r"but the gradient it replaces has shape \(2,\) and dtype float64"):
        (x * 1).sum().backward()
    handle.remove()
    x.register_hook(lambda g: g.astype(np.float32))
    with pytest.raises(RuntimeError, match="dtype float32, but the gradient it replaces has .* dtype float64"):
        (x * 1).sum().backward()
    assert x.grad is None  # a failed hook leaves the leaf's grad untouched


def test_a_hook_on_a_0d_tensor_may_return_numpys_scalar():
    # arithmetic on a 0-d array gives a numpy scalar (np.float64), not an ndarray: it must count as the gradient
    w = Tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    loss.register_hook(lambda g: g * 3)
    loss.backward()
    assert w.grad.tolist() == [6.0, 12.0] and loss.grad.shape == () and type(loss.grad) is np.ndarray


def test_register_hook_errors():
    with pytest.raises(RuntimeError, match="register_hook: this tensor does not require grad"):
        Tensor([1.0]).register_hook(lambda g: g)
    with pytest.raises(TypeError, match="register_hook: hook must be callable, got int"):
        Tensor([1.0], requires_grad=True).register_hook(3)


def test_hooks_match_pytorch():
    torch = pytest.importorskip("torch")
    data = np.array([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]])
    x = Tensor(data, requires_grad=True)
    h = x.tanh()
    h.register_hook(lambda g: g * 3)
    x.register_hook(lambda g: g + 1)
    (h * h).sum().backward()
    tx = torch.tensor(data, requires_grad=True)
    th = tx.tanh()
    th.register_hook(lambda g: g * 3)
    tx.register_hook(lambda g: g + 1)
    (th * th).sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12)
