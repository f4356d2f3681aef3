"""Losses (losses.py): mse_loss and cross_entropy (labels, one-hot, probabilities; reduction "mean", "sum" or "none"):
values, gradients against central differences and against PyTorch, their second derivatives, a -inf logit, errors.
"""

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tests.helpers import TF, leaf, rand, same_program, torch
from tinygrad_cnn import Tensor, gradcheck, gradgradcheck
from tinygrad_cnn.functional import cross_entropy, mse_loss


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


@pytest.mark.parametrize("targets", [[2], np.array([[0.0, 0.0, 1.0]])])
def test_cross_entropy_with_a_minus_inf_logit_is_finite(targets):
    logits = leaf([[0.0, -np.inf, 1.0]])
    loss = F.cross_entropy(logits, targets)
    loss.backward()
    assert loss.item() == pytest.approx(0.31326168751822286, rel=1e-15)  # torch, class-index targets
    np.testing.assert_allclose(logits.grad, [[0.2689414213699951, 0.0, -0.2689414213699951]], rtol=1e-15)


def test_the_default_stays_the_mean():
    x = Tensor(LOGITS)
    assert float(cross_entropy(x, LABELS)) == pytest.approx(float(cross_entropy(x, LABELS, reduction="sum")) / 5)
    assert float(mse_loss(PRED, TARGET)) == pytest.approx(((PRED - TARGET) ** 2).mean())


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


@pytest.mark.parametrize("targets", [[0, 0, 0], np.ones((3, 0))])
def test_cross_entropy_with_no_classes_raises(targets):
    with pytest.raises(ValueError, match=r"cross_entropy: logits have 0 classes \(shape \(3, 0\)\)"):
        F.cross_entropy(Tensor(np.ones((3, 0))), targets)


@pytest.mark.parametrize("call, error, message", [
    (lambda: cross_entropy(LOGITS, LABELS, reduction="avg"), ValueError,
     r"cross_entropy: reduction must be 'mean', 'sum' or 'none', got 'avg'"),
    (lambda: mse_loss(PRED, TARGET, reduction=None), ValueError, r"mse_loss: reduction must be"),
    (lambda: mse_loss(PRED, TARGET, size_average=False), TypeError, r"mse_loss: size_average= \(PyTorch's\) is not "
                                                                    r"supported here: write reduction="),
    (lambda: cross_entropy(input=LOGITS, target=LABELS), TypeError, r"cross_entropy: input= is PyTorch's spelling; "
                                                                    r"here it is logits="),
])
def test_reduction_and_pytorchs_arguments_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ----------------------------------------------------------------------------- the reductions, against PyTorch
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
def test_gradients_of_gradients_of_each_reduction(reduction):
    assert gradgradcheck(lambda t: cross_entropy(t, SOFT, reduction=reduction), Tensor(LOGITS, requires_grad=True))
    assert gradgradcheck(lambda t: mse_loss(t, TARGET, reduction=reduction), Tensor(PRED, requires_grad=True))


def test_mse_loss_backpropagates_as_pytorch():
    rng = np.random.default_rng(8)
    same_program(F.mse_loss, TF.mse_loss, rng.standard_normal((4, 3)), rng.standard_normal((4, 3)))


def test_cross_entropy_with_labels_and_with_probabilities_backpropagates_as_pytorch():
    rng = np.random.default_rng(9)
    labels = np.array([2, 0, 4, 1])
    same_program(lambda x: F.cross_entropy(x, labels), lambda x: TF.cross_entropy(x, torch.tensor(labels)),
                 rng.standard_normal((4, 5)) * 3)
    probs = rng.dirichlet(np.ones(5), size=4)  # a constant here: our targets get no gradient (torch's do)
    same_program(lambda x: F.cross_entropy(x, probs), lambda x: TF.cross_entropy(x, torch.tensor(probs)),
                 rng.standard_normal((4, 5)))
