"""Batch norm on an empty batch (issue 21, item 4): in training mode an empty result, gradients of zeros and the
running statistics untouched, as PyTorch."""

import numpy as np
import pytest

from tinygrad_cnn import Tensor, nn


@pytest.mark.parametrize("shape", [(0, 4, 4, 3), (2, 0, 4, 3), (0, 0, 0, 3)])
def test_training_batch_norm_on_an_empty_batch_returns_an_empty_result(shape):
    layer = nn.BatchNorm2d(3, dtype=np.float64)
    x = Tensor(np.zeros(shape), requires_grad=True)
    out = layer(x)
    assert out.shape == shape and out.dtype == np.float64
    out.sum().backward()
    assert x.grad.shape == shape
    assert layer.gamma.grad.tolist() == [0.0, 0.0, 0.0] and layer.beta.grad.tolist() == [0.0, 0.0, 0.0]
    assert layer.running_mean.tolist() == [0.0, 0.0, 0.0] and layer.running_var.tolist() == [1.0, 1.0, 1.0]
    assert int(layer.num_batches_tracked) == 1


def test_matches_pytorch():
    torch = pytest.importorskip("torch")
    layer, theirs = nn.BatchNorm2d(3, dtype=np.float64), torch.nn.BatchNorm2d(3).double()
    out = layer(Tensor(np.zeros((0, 4, 4, 3))))
    tout = theirs(torch.zeros(0, 3, 4, 4, dtype=torch.float64))
    assert out.shape == tuple(tout.permute(0, 2, 3, 1).shape)
    np.testing.assert_array_equal(layer.running_mean, theirs.running_mean.numpy())
    np.testing.assert_array_equal(layer.running_var, theirs.running_var.numpy())


def test_one_value_per_channel_still_raises():
    with pytest.raises(ValueError, match="training needs more than one value per channel"):
        nn.BatchNorm2d(3)(Tensor(np.zeros((1, 1, 1, 3))))
