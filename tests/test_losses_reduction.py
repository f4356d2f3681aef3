"""reduction="mean" | "sum" | "none" on cross_entropy and mse_loss (issue 21, item 5): values and gradients against
PyTorch, gradcheck, the rule and label, errors."""

import numpy as np
import pytest

from tinygrad_cnn import Tensor, gradcheck, gradgradcheck
from tinygrad_cnn.functional import cross_entropy, mse_loss

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(5, 4)) * 3
LABELS = np.array([0, 3, 1, 1, 2])
SOFT = RNG.dirichlet(np.ones(4), size=5)
PRED, TARGET = RNG.normal(size=(3, 2, 4)), RNG.normal(size=(3, 2, 4))


def _same_as_pytorch(ours, theirs, x: np.ndarray, seed: int):
    """Our loss and gradient of sum(loss * w) against PyTorch's, w random of the loss's shape; returns our loss."""
    torch = pytest.importorskip("torch")
    t = Tensor(x, requires_grad=True)
    loss = ours(t)
    weights = np.random.default_rng(seed).normal(size=loss.shape)
    (loss * weights).sum().backward()
    tt = torch.tensor(x, requires_grad=True)
    tloss = theirs(tt, torch)
    (tloss * torch.tensor(weights)).sum().backward()
    assert loss.shape == tuple(tloss.shape)
    np.testing.assert_allclose(loss.data, tloss.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(t.grad, tt.grad.numpy(), rtol=1e-10, atol=1e-14)
    return loss


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("targets", ["labels", "probabilities"])
def test_cross_entropy_matches_pytorch(reduction, targets):
    y = LABELS if targets == "labels" else SOFT
    loss = _same_as_pytorch(lambda t: cross_entropy(t, y, reduction=reduction),
                            lambda t, torch: torch.nn.functional.cross_entropy(t, torch.tensor(y), reduction=reduction),
                            LOGITS, seed=1)
    assert loss.shape == ((5,) if reduction == "none" else ())
    assert gradcheck(lambda t: cross_entropy(t, y, reduction=reduction), Tensor(LOGITS, requires_grad=True))
    assert loss.op_label == ("cross_entropy" if reduction == "mean" else f"cross_entropy reduction={reduction}")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_pytorch(reduction):
    _same_as_pytorch(lambda t: mse_loss(t, TARGET, reduction=reduction),
                     lambda t, torch: torch.nn.functional.mse_loss(t, torch.tensor(TARGET), reduction=reduction),
                     PRED, seed=2)
    assert gradcheck(lambda t: mse_loss(t, TARGET, reduction=reduction), Tensor(PRED, requires_grad=True))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_gradients_of_gradients(reduction):
    assert gradgradcheck(lambda t: cross_entropy(t, SOFT, reduction=reduction), Tensor(LOGITS, requires_grad=True))
    assert gradgradcheck(lambda t: mse_loss(t, TARGET, reduction=reduction), Tensor(PRED, requires_grad=True))


def test_the_default_stays_the_mean():
    x = Tensor(LOGITS)
    assert float(cross_entropy(x, LABELS)) == pytest.approx(float(cross_entropy(x, LABELS, reduction="sum")) / 5)
    assert float(mse_loss(PRED, TARGET)) == pytest.approx(((PRED - TARGET) ** 2).mean())


@pytest.mark.parametrize("call, error, message", [
    (lambda: cross_entropy(LOGITS, LABELS, reduction="avg"), ValueError,
     r"cross_entropy: reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    (lambda: mse_loss(PRED, TARGET, reduction=None), ValueError, r"mse_loss: reduction must be"),
    (lambda: mse_loss(PRED, TARGET, size_average=False), TypeError, r"mse_loss: size_average= \(PyTorch's\) is not "
                                                                    r"supported here: write reduction="),
    (lambda: cross_entropy(input=LOGITS, target=LABELS), TypeError, r"cross_entropy: input= is PyTorch's spelling; "
                                                                    r"here it is logits="),
])
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
