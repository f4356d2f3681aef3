"""nn.utils (nn/utils.py): clip_grad_norm_ and clip_grad_value_, the gradients after clipping and the total norm
returned, against torch.nn.utils; errors.
"""

import itertools
import math

import numpy as np
import pytest

from tinygrad_cnn import Tensor, grad, nn


def _params(dtype, scale, seed=0):
    rng = np.random.default_rng(seed)
    params = [Tensor(rng.normal(size=s).astype(dtype), requires_grad=True) for s in [(3, 4), (4,), (2, 2, 3)]]
    for p in params[:2]:
        p.grad = (rng.normal(size=p.shape) * scale).astype(dtype)
    return params  # the last one has no gradient


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-6)])
@pytest.mark.parametrize("max_norm, norm_type", [(1.0, 2.0), (100.0, 2.0), (0.5, 1.0), (0.3, math.inf), (2.0, 3.0)])
@pytest.mark.parametrize("scale", [0.01, 10.0])
def test_clip_grad_norm_matches_pytorch(dtype, rtol, max_norm, norm_type, scale):
    torch = pytest.importorskip("torch")
    ours = _params(dtype, scale)
    theirs = [torch.tensor(p.data, requires_grad=True) for p in ours]
    for t, p in zip(theirs, ours, strict=True):
        t.grad = None if p.grad is None else torch.tensor(p.grad)
    total = nn.utils.clip_grad_norm_(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert isinstance(total, Tensor) and total.shape == () and total.dtype == dtype
    np.testing.assert_allclose(float(total), expected.item(), rtol=rtol)
    for p, t in zip(ours, theirs, strict=True):
        if p.grad is None:
            assert t.grad is None
        else:
            assert p.grad.dtype == dtype
            np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=rtol, atol=1e-7 * rtol)


def test_clip_grad_value_matches_pytorch_and_returns_none():
    torch = pytest.importorskip("torch")
    ours = _params(np.float64, 3.0)
    theirs = [torch.tensor(p.data, requires_grad=True) for p in ours]
    for t, p in zip(theirs, ours, strict=True):
        t.grad = None if p.grad is None else torch.tensor(p.grad)
    assert nn.utils.clip_grad_value_(ours, 0.7) is None
    torch.nn.utils.clip_grad_value_(theirs, 0.7)
    for p, t in zip(ours[:2], theirs[:2], strict=True):
        np.testing.assert_array_equal(p.grad, t.grad.numpy())
        assert np.abs(p.grad).max() <= 0.7


def test_a_model_a_single_tensor_and_no_gradients():
    model = nn.Linear(3, 2, seed=0)
    model(Tensor.ones(4, 3)).sum().backward()
    total = nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    grads = np.concatenate([p.grad.ravel() for p in model.parameters()])
    assert float(total) > 1 and np.linalg.norm(grads) == pytest.approx(1.0, rel=1e-5)
    w = Tensor([3.0, 4.0], requires_grad=True)
    w.grad = np.array([3.0, 4.0])
    assert float(nn.utils.clip_grad_norm_(w, 10.0)) == 5.0 and w.grad.tolist() == [3.0, 4.0]
    assert float(nn.utils.clip_grad_norm_([Tensor([1.0], requires_grad=True)], 1.0)) == 0.0


@pytest.mark.parametrize("call, error, message", [
    (lambda p: nn.utils.clip_grad_norm_(p, 1.0, error_if_nonfinite=True), RuntimeError,
     r"clip_grad_norm_: the total norm of order 2.0 of the gradients is (nan|inf)"),
    (lambda p: nn.utils.clip_grad_norm_(p, "1"), TypeError, r"clip_grad_norm_: max_norm must be a number"),
    (lambda p: nn.utils.clip_grad_norm_(p, 1.0, 0), ValueError, r"norm_type must be > 0 or math.inf"),
    (lambda p: nn.utils.clip_grad_norm_(nn.Linear(2, 2), 1.0), TypeError, r"parameters must be a Tensor or an "
                                                                            r"iterable of Tensors"),
    (lambda p: nn.utils.clip_grad_norm_([np.ones(2)], 1.0), TypeError, r"parameters\[0\] must be a Tensor"),
    (lambda p: nn.utils.clip_grad_norm_(p, max_norm=1.0, foreach=True), TypeError, r"clip_grad_norm_: foreach= "
                                                                                     r"\(PyTorch's\) is not supported"),
    (lambda p: nn.utils.clip_grad_value_(p, None), TypeError, r"clip_value must be a number"),
])
def test_errors(call, error, message):
    p = Tensor([1.0, 2.0], requires_grad=True)
    p.grad = np.array([np.inf, 1.0])
    with pytest.raises(error, match=message):
        call([p])


def test_clip_grad_norm_clips_when_given_a_generator():
    """PyTorch users pass model.parameters() or itertools.chain(a.parameters(), b.parameters()): an iterator is read
    once (reading it twice saw it exhausted the second time and clipped nothing)."""
    a, b = nn.Linear(3, 2, seed=0), nn.Linear(2, 1, seed=1)
    (b(a(Tensor(np.ones((4, 3))))) * 100).sum().backward()
    total = float(nn.utils.clip_grad_norm_(itertools.chain(a.parameters(), b.parameters()), max_norm=1.0))
    params = [*a.parameters(), *b.parameters()]
    after = np.sqrt(sum(float((p.grad.astype(np.float64) ** 2).sum()) for p in params))
    assert total > 1.0
    assert after == pytest.approx(1.0, rel=1e-4)
    for p in params:
        p.grad = np.full(p.shape, 2.0, p.dtype)
    nn.utils.clip_grad_value_((p for p in params), 0.5)
    assert all((p.grad == 0.5).all() for p in params)


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True:UserWarning")  # torch's, on the cycle
@pytest.mark.parametrize("clip", ["norm", "value"])
def test_clipping_a_gradient_tensor_of_create_graph_keeps_it_in_the_graph(clip):
    """After backward(create_graph=True) .grad is a Tensor: clipping replaces it with the clipped Tensor, recorded (the
    norm's scale is a constant, as PyTorch computes it under no_grad), so it can still be differentiated; the values
    are PyTorch's."""
    torch = pytest.importorskip("torch")
    w0 = np.array([1.0, -2.0, 0.5])
    W = Tensor(w0, requires_grad=True)
    (W * W * 5).sum().backward(create_graph=True)  # W.grad = 10 W
    Wt = torch.tensor(w0, requires_grad=True)
    (Wt * Wt * 5).sum().backward(create_graph=True)
    if clip == "norm":
        total = nn.utils.clip_grad_norm_([W], 1.0)
        np.testing.assert_allclose(float(total), torch.nn.utils.clip_grad_norm_([Wt], 1.0).item(), rtol=1e-12)
        expected_d = 10 / (np.linalg.norm(10 * w0) + 1e-6)  # d sum(scale * 10 W) / dW, scale a constant
        expected_d = np.full(3, expected_d)
    else:
        assert nn.utils.clip_grad_value_([W], 4.0) is None
        torch.nn.utils.clip_grad_value_([Wt], 4.0)
        expected_d = np.where(np.abs(10 * w0) <= 4.0, 10.0, 0.0)  # the gradient passes where not clipped
    assert isinstance(W.grad, Tensor) and W.grad.requires_grad
    np.testing.assert_allclose(W.grad.data, Wt.grad.detach().numpy(), rtol=1e-12)
    (d,) = grad(W.grad.sum(), W)
    np.testing.assert_allclose(d.data, expected_d, rtol=1e-12)
