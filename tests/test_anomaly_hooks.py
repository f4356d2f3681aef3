"""detect_anomaly(): the first op (forward) or backward closure that made NaN/inf is named with the user's line;
register_hook: PyTorch's semantics (leaf hooks before accumulation, replacements flow on), handles, errors."""

import threading
import warnings

import numpy as np
import pytest

from tinygrad_cnn import AnomalyError, Tensor, detect_anomaly, is_anomaly_enabled, no_grad


def line_of(marker: str) -> int:
    """The line of this file that holds ``marker`` (so the tests do not hard-code line numbers)."""
    lines = open(__file__).read().splitlines()
    return next(n for n, text in enumerate(lines, 1) if marker in text and "line_of(" not in text)


# ----------------------------------------------------------------------------- detect_anomaly
def test_forward_names_the_op_the_line_and_what_its_input_held():
    p = Tensor(np.array([[0.5, 0.2, 0.3, 0.0], [0.1, 0.1, 0.4, 0.4]]), requires_grad=True, name="probs")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning from numpy would fail the test: the error replaces it
        with detect_anomaly(), pytest.raises(AnomalyError) as info:
            p.log()  # <- log of zero
    message = str(info.value)
    assert message.startswith("log made non-finite values from finite inputs, at ")
    assert f"{__file__}:{line_of('# <- log of zero')}" in message
    assert "log(probs), shape (2, 4), has 1 of 8 entries NaN or inf, the first -inf at (0, 3)" in message
    assert message.endswith("log got 0.0 at (0, 3)")


def test_forward_with_two_inputs_says_what_each_held_there():
    a = Tensor(np.ones((2, 3)), requires_grad=True, name="a")
    b = Tensor(np.array([1.0, 0.0, 2.0]), name="b")
    with detect_anomaly(), pytest.raises(AnomalyError, match=r"div got a=1.0, b=0.0 at \(0, 1\)"):
        a / b
    W = Tensor(np.full((3, 2), 1e200), requires_grad=True)
    with detect_anomaly(), pytest.raises(AnomalyError, match=r"matmul got a \(2, 3\) in \[.*\], b \(3, 2\) in "):
        (a * 1e200) @ W


def test_non_finite_inputs_do_not_raise_only_the_first_op_does():
    x = Tensor(np.array([np.nan, 1.0]), requires_grad=True)
    with detect_anomaly():
        y = (x * 2).exp()  # NaN in, NaN out: not the first anomaly
    assert np.isnan(y.data[0])


def test_backward_names_the_input_of_the_op_and_the_line_that_created_it():
    x = Tensor(np.array([0.0, 4.0]), requires_grad=True, name="x")
    with detect_anomaly():
        y = x.sqrt()  # <- sqrt made here
        loss = y.sum()
        with pytest.raises(AnomalyError) as info:
            loss.backward()
    message = str(info.value)
    assert message.startswith("backward of sqrt returned a non-finite gradient for its input 0 ('x'), shape (2,)")
    assert "1 of 2 entries NaN or inf, the first inf at (0,), where the input held 0.0" in message
    assert message.endswith(f"the op was created at {__file__}:{line_of('# <- sqrt made here')}")


def test_an_op_made_outside_the_mode_says_its_line_was_not_recorded():
    x = Tensor(np.array([0.0]), requires_grad=True)
    y = x.sqrt()
    with detect_anomaly(), pytest.raises(AnomalyError, match=r"created at a line not recorded \(the op was made "
                                                             r"outside detect_anomaly\(\)\)"):
        y.sum().backward()


def test_outside_the_mode_nothing_is_checked_nor_recorded():
    x = Tensor(np.array([0.0]), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        y = x.log()
    assert np.isneginf(y.data[0]) and y._where is None and not is_anomaly_enabled()
    with detect_anomaly():
        z = x * 2
        assert is_anomaly_enabled()
    assert z._where.startswith(f"{__file__}:")


def test_users_own_numpy_warnings_still_warn_inside_the_mode():
    with detect_anomaly(), pytest.warns(RuntimeWarning, match="divide by zero"):
        np.log(np.zeros(1))


def test_the_mode_is_a_decorator_per_thread_and_nests():
    @detect_anomaly
    def bare():
        return is_anomaly_enabled()

    @detect_anomaly()
    def called():
        return is_anomaly_enabled()
    assert bare() and called() and not is_anomaly_enabled()
    seen = []
    with detect_anomaly():
        with detect_anomaly():
            pass
        assert is_anomaly_enabled()
        thread = threading.Thread(target=lambda: seen.append(is_anomaly_enabled()))
        thread.start()
        thread.join(timeout=30)
    assert seen == [False] and not is_anomaly_enabled()


def test_ops_in_no_grad_are_checked_too():
    with no_grad(), detect_anomaly(), pytest.raises(AnomalyError, match="log made non-finite"):
        Tensor([0.0]).log()


# ----------------------------------------------------------------------------- register_hook
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
