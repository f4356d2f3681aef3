"""Tensor.from_op, the public way to record an op: a user's op with its rule is recorded, checked by gradcheck and
drawn; each gradient its backward returns is checked against its input's shape, naming the op; its data follows the
dtype policy (ints never truncate a gradient); what from_op refuses.
"""

import numpy as np
import pytest

from tinygrad_cnn import Tensor, gradcheck, optim


def square_op(x: Tensor) -> Tensor:
    def _backward(g):
        return (2 * g * x.data,)
    return x.from_op(x.data ** 2, (x,), "square", _backward, rule="da = 2*g*a", power=2)


def test_from_op_records_a_user_op_that_gradcheck_and_the_drawing_accept():
    x = Tensor([1.0, -2.0, 3.0], requires_grad=True, name="x")
    y = square_op(x)
    assert (y.op, y.rule, y.op_label, y.parents) == ("square", "da = 2*g*a", "square power=2", (x,))
    assert gradcheck(square_op, x)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, -4.0, 6.0])
    assert "<i>da = 2*g*a</i>" in y.draw(show_rule=True).source


def test_from_op_needs_a_rule_and_tensor_parents():
    x = Tensor([1.0], requires_grad=True)
    with pytest.raises(TypeError, match="rule"):
        Tensor.from_op(x.data, (x,), "nothing", lambda g: (g,))
    with pytest.raises(TypeError, match=r"from_op: parents of 'twice' must be Tensors, got \['Tensor', 'ndarray'\]"):
        Tensor.from_op(x.data * 2, (x, np.ones(1)), "twice", lambda g: (g, None), rule="da = g")


def test_a_backward_that_returns_the_wrong_number_of_gradients_is_named():
    x = Tensor([1.0, 2.0], requires_grad=True)
    bare = Tensor.from_op(x.data * 2, (x,), "twice", lambda g: 2 * g, rule="da = 2*g")  # an array, not a tuple
    with pytest.raises(TypeError, match=r"backward of 'twice' must return a tuple of 1 gradients .* got ndarray"):
        bare.sum().backward()
    extra = Tensor.from_op(x.data * 2, (x,), "twice", lambda g: (2 * g, g), rule="da = 2*g")
    with pytest.raises(TypeError, match="must return a tuple of 1 gradients .* got tuple of 2"):
        extra.sum().backward()


def scale_rows(x: Tensor, bad_grad_shape=None) -> Tensor:
    """x (4, 3) times each row's index; backward returns a gradient of ``bad_grad_shape`` when given."""
    k = np.arange(4.0)[:, None]

    def backward(g):
        grad = g * k
        return (grad if bad_grad_shape is None else np.ones(bad_grad_shape),)
    return Tensor.from_op(x.data * k, (x,), "scale_rows", backward, rule="da = g*k")


@pytest.mark.parametrize("shape", [(4, 1), (5,), (3,), (2, 4, 1), (4, 3, 1)])
def test_a_gradient_of_the_wrong_shape_raises_naming_the_op(shape):
    W = Tensor(np.ones((4, 3)), requires_grad=True, name="W")
    with pytest.raises(ValueError, match=rf"backward of 'scale_rows' returned a gradient of shape "
                                         rf"{shape!r}".replace("(", r"\(").replace(")", r"\)")
                                         + r", which the input's shape \(4, 3\) does not broadcast to for its input 0"):
        scale_rows(W, shape).sum().backward()
    assert W.grad is None


def test_a_gradient_the_input_broadcasts_to_is_summed_back():
    W = Tensor(np.ones((4, 3)), requires_grad=True)
    scale_rows(W, (2, 4, 3)).sum().backward()
    assert W.grad.shape == (4, 3) and (W.grad == 2).all()


def test_sgd_never_sees_a_broadcast_gradient():
    W = Tensor(np.ones((4, 3)), requires_grad=True)
    opt = optim.SGD([W], lr=0.1)
    with pytest.raises(ValueError, match="scale_rows"):
        scale_rows(W, (4, 1)).sum().backward()
    opt.step()  # no gradient: nothing moves
    assert (W.data == 1).all()


@pytest.mark.parametrize("data, parent_dtype, dtype", [
    (np.arange(3), np.float64, np.float64), (np.arange(3), np.float32, np.float32),
    ([1, 2, 3], np.float64, np.float64), (np.array([True, False, True]), np.float32, np.float32),
    (np.arange(3, dtype=np.float16), np.float64, np.float64), ((1, 2, 3), np.float64, np.float64),
])
def test_data_follows_the_dtype_policy(data, parent_dtype, dtype):
    x = Tensor(np.array([0.5, 1.5, 2.5], parent_dtype), requires_grad=True)
    y = Tensor.from_op(data, (x,), "floor", lambda g: (g * 0.5,), rule="da = g*0.5")
    assert y.dtype == dtype and not y.data.flags.writeable
    (y * 1.25).sum().backward()
    assert x.grad.dtype == parent_dtype and np.allclose(x.grad, 0.625)  # not truncated to 0


def test_data_without_parents_takes_the_default_dtype():
    assert Tensor.from_op(np.arange(2), (), "const", lambda g: (), rule="none").dtype == np.float32


@pytest.mark.parametrize("requires_grad", [True, False])  # recorded, or a plain leaf
def test_a_users_array_stays_theirs_and_writable(requires_grad):
    """from_op keeps its own read-only copy of a user op's writable float array: the caller's buffer is not made
    read-only, and writing into it afterwards changes neither the tensor nor its gradient."""
    x = Tensor(np.ones(3), requires_grad=requires_grad)
    buf = np.zeros(3)
    y = Tensor.from_op(buf, (x,), "mine", lambda g: (g,), rule="da = g")
    assert buf.flags.writeable and not y.data.flags.writeable
    buf[0] = 1.0
    assert y.data.tolist() == [0.0, 0.0, 0.0]
    const = np.full(3, 2.0)
    z = Tensor.from_op(const, (), "const", lambda g: (), rule="none")
    const[0] = 5.0
    assert z.data.tolist() == [2.0, 2.0, 2.0]
