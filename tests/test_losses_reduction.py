"""reduction="mean" | "sum" | "none" on cross_entropy and mse_loss (issue 21, item 5): values and gradients against
PyTorch, gradcheck, the rule and label, errors."""

import numpy as np
import pytest

from tinygrad_cnn import Tensor, gradcheck
from tinygrad_cnn.functional import cross_entropy, mse_loss

RNG = np.random.default_rng(0)
LOGITS = RNG.normal(size=(5, 4)) * 3
LABELS = np.array([0, 3, 1, 1, 2])
SOFT = RNG.dirichlet(np.ones(4), size=5)
PRED, TARGET = RNG.normal(size=(3, 2, 4)), RNG.normal(size=(3, 2, 4))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("targets", ["labels", "probabilities"])
def test_cross_entropy_matches_pytorch(reduction, targets):
    torch = pytest.importorskip("torch")
    y = LABELS if targets == "labels" else SOFT
    x = Tensor(LOGITS, requires_grad=True)
    loss = cross_entropy(x, y, reduction=reduction)
    weights = np.random.default_rng(1).normal(size=loss.shape)
    (loss * weights).sum().backward()
    tx = torch.tensor(LOGITS, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(tx, torch.tensor(y), reduction=reduction)
    (tloss * torch.tensor(weights)).sum().backward()
    assert loss.shape == tuple(tloss.shape) == ((5,) if reduction == "none" else ())
    np.testing.assert_allclose(loss.data, tloss.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-14)
    assert gradcheck(lambda t: cross_entropy(t, y, reduction=reduction), Tensor(LOGITS, requires_grad=True))
    assert loss.op_label == ("cross_entropy" if reduction == "mean" else f"cross_entropy reduction={reduction}")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_pytorch(reduction):
    torch = pytest.importorskip("torch")
    p = Tensor(PRED, requires_grad=True)
    loss = mse_loss(p, TARGET, reduction=reduction)
    weights = np.random.default_rng(2).normal(size=loss.shape)
    (loss * weights).sum().backward()
    tp = torch.tensor(PRED, requires_grad=True)
    tloss = torch.nn.functional.mse_loss(tp, torch.tensor(TARGET), reduction=reduction)
    (tloss * torch.tensor(weights)).sum().backward()
    assert loss.shape == tuple(tloss.shape)
    np.testing.assert_allclose(loss.data, tloss.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-12)
    assert gradcheck(lambda t: mse_loss(t, TARGET, reduction=reduction), Tensor(PRED, requires_grad=True))


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
