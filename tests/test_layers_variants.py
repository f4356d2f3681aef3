"""The layers of issue 10: BatchNorm2d (parameters gamma/beta, buffers saved and loaded, train/eval), Dropout,
Conv2d with dilation and groups, ConvTranspose2d, LeakyReLU; buffers in state_dict, save/load and summary."""

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, io, nn, optim, reference


def images(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ----------------------------------------------------------------------------- BatchNorm2d and buffers
def test_batch_norm_layer_has_gamma_beta_parameters_and_running_buffers():
    bn = nn.BatchNorm2d(3)
    assert [name for name, _ in bn.named_parameters()] == ["gamma", "beta"]
    assert [name for name, _ in bn.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]
    assert list(bn.state_dict()) == ["gamma", "beta", "running_mean", "running_var", "num_batches_tracked"]
    np.testing.assert_array_equal(bn.gamma.data, 1)
    np.testing.assert_array_equal(bn.running_var, 1)
    assert bn.running_mean.dtype == np.float32 and bn.num_batches_tracked.dtype == np.int64
    assert repr(bn) == "BatchNorm2d(3)" and repr(nn.BatchNorm2d(2, eps=1e-3, momentum=0.2)) == \
        "BatchNorm2d(2, eps=0.001, momentum=0.2)"


def test_batch_norm_layer_train_updates_running_statistics_and_eval_uses_them():
    bn = nn.BatchNorm2d(2, momentum=0.25, dtype=np.float64)
    loop_mean, loop_var = np.zeros(2), np.ones(2)
    for step in range(4):
        x = images((3, 4, 2, 2), seed=step) * 3 + 1
        out = bn(x)
        expected, loop_mean, loop_var = reference.batch_norm_forward(x, np.ones(2), np.zeros(2), 1e-5, True,
                                                                     loop_mean, loop_var, 0.25)
        np.testing.assert_allclose(out.data, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(bn.running_mean, loop_mean, rtol=1e-12)
    np.testing.assert_allclose(bn.running_var, loop_var, rtol=1e-12)
    assert int(bn.num_batches_tracked) == 4
    bn.eval()
    x = images((2, 3, 3, 2), seed=9)
    expected, _, _ = reference.batch_norm_forward(x, np.ones(2), np.zeros(2), 1e-5, False, loop_mean, loop_var)
    np.testing.assert_allclose(bn(x).data, expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(bn.running_mean, loop_mean, rtol=1e-12)  # eval leaves them
    assert int(bn.num_batches_tracked) == 4


def test_optimizers_never_touch_the_buffers():
    model = nn.Sequential(nn.Conv2d(2, 3, 3, seed=0), nn.BatchNorm2d(3))
    assert len(model.parameters()) == 4  # W, b, gamma, beta
    opt = optim.Adam(model.parameters(), lr=0.1)
    model(images((2, 5, 5, 2), dtype=np.float32)).sum().backward()
    before = {name: b.copy() for name, b in model.named_buffers()}
    opt.step()
    for name, b in model.named_buffers():
        np.testing.assert_array_equal(b, before[name])


def test_buffers_round_trip_through_save_and_load(tmp_path):
    model = nn.Sequential(nn.Conv2d(2, 3, 3, seed=0), nn.BatchNorm2d(3))
    for step in range(3):
        model(images((2, 5, 5, 2), seed=step, dtype=np.float32))
    io.save(model, tmp_path / "w.npz")
    fresh = nn.Sequential(nn.Conv2d(2, 3, 3, seed=1), nn.BatchNorm2d(3))
    held = fresh[1].running_mean  # an op holding the buffer sees the loaded values: loaded in place
    fresh.load_state_dict(io.load(tmp_path / "w.npz"))
    for (name, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items(), strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert fresh[1].running_mean is held and int(fresh[1].num_batches_tracked) == 3
    fresh.eval(), model.eval()
    x = images((1, 5, 5, 2), seed=7, dtype=np.float32)
    np.testing.assert_array_equal(fresh(x).data, model(x).data)


def test_load_state_dict_checks_buffers_before_writing():
    bn = nn.BatchNorm2d(3)
    state = bn.state_dict()
    state["running_var"] = np.ones(4)
    with pytest.raises(ValueError, match="key 'running_var' has shape \\(4,\\), but the buffer has shape \\(3,\\)"):
        bn.load_state_dict(state)
    del state["num_batches_tracked"]
    with pytest.raises(ValueError, match=r"missing keys \['num_batches_tracked'\]"):
        bn.load_state_dict(state)


def test_register_buffer_and_replacing_a_buffer():
    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("count", np.zeros(2))

    c = Counter()
    c.count = np.ones(2)
    np.testing.assert_array_equal(c.state_dict()["count"], 1)
    assert c.parameters() == [] and len(c.buffers()) == 1
    with pytest.raises(TypeError, match="buffer 'count' must be a numpy array of numbers"):
        c.count = Tensor([1.0, 2.0])
    with pytest.raises(TypeError, match="register_buffer: name must be an identifier"):
        c.register_buffer("a.b", np.zeros(1))
    c.w = Tensor(np.zeros(1), requires_grad=True)
    with pytest.raises(KeyError, match="already has a parameter or child 'w'"):
        c.register_buffer("w", np.zeros(1))
    del c.count
    assert c.buffers() == []


def test_summary_counts_running_statistics_as_non_trainable_as_keras():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, pad=1), nn.BatchNorm2d(8))
    text = model.summary((1, 6, 6, 3), print_fn=None)
    assert "BatchNorm2d  (1, 6, 6, 8)      32" in text
    assert "Total params: 256" in text and "Trainable params: 240" in text and "Non-trainable params: 16" in text
    assert model.num_parameters() == 240  # PyTorch's count: parameters only


@pytest.mark.parametrize("make, error, words", [
    (lambda: nn.BatchNorm2d(0), TypeError, "BatchNorm2d: n_C must be a positive int"),
    (lambda: nn.BatchNorm2d(3, eps=0), ValueError, "BatchNorm2d: eps must be a number > 0"),
    (lambda: nn.BatchNorm2d(3, momentum=1.5), ValueError, r"BatchNorm2d: momentum must be a number in \[0, 1\]"),
    (lambda: nn.BatchNorm2d(3)(np.ones((2, 2, 2, 4))), ValueError, "BatchNorm2d\\(3\\): input must have 3 channels"),
    (lambda: nn.BatchNorm2d(3)(np.ones((2, 2, 3))), ValueError, "input must be 4-D NHWC"),
    (lambda: nn.Dropout(1.2), ValueError, r"dropout: p must be in \[0, 1\]"),
    (lambda: nn.Dropout(0.5, seed="x"), TypeError, "Dropout: seed must be None, an int or a numpy.random.Generator"),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError, "Conv2d: groups=4 must divide out_channels=6"),
    (lambda: nn.Conv2d(4, 6, 3, groups=0), TypeError, "Conv2d: groups must be a positive int"),
    (lambda: nn.Conv2d(4, 6, 3, dilation=0), TypeError, "Conv2d: dilation must be a positive int"),
    (lambda: nn.ConvTranspose2d(3, 4, 3, groups=2), ValueError, "ConvTranspose2d: groups=2 must divide in_channels=3"),
    (lambda: nn.ConvTranspose2d(3, 4, 2)(np.ones((1, 3, 3, 4))), ValueError, "ConvTranspose2d\\(3, 4, f=2\\): input"),
    (lambda: nn.ConvTranspose2d(3, 4, 2, stride=2, output_padding=2)(np.ones((1, 3, 3, 3))), ValueError,
     "output_padding=.* must be smaller than stride"),
    (lambda: nn.LeakyReLU("a"), TypeError, "LeakyReLU: slope must be a number"),
])
def test_layer_errors(make, error, words):
    with pytest.raises(error, match=words):
        make()


# ----------------------------------------------------------------------------- Dropout
def test_dropout_layer_reads_training_and_is_reproducible_with_a_seed():
    x = np.ones((50, 40))
    a, b = nn.Dropout(0.5, seed=3), nn.Dropout(0.5, seed=3)
    first = a(x).data
    np.testing.assert_array_equal(first, b(x).data)
    assert not np.array_equal(first, a(x).data)  # the layer's generator moves on
    assert set(np.unique(first)) == {0.0, 2.0}
    a.eval()
    t = Tensor(x)
    assert a(t) is t
    g = nn.Dropout(0.25, seed=np.random.default_rng(5))
    np.testing.assert_array_equal(g(x).data, F.dropout(x, 0.25, rng=np.random.default_rng(5)).data)
    assert repr(g) == "Dropout(p=0.25)"


# ----------------------------------------------------------------------------- convolutions and LeakyReLU
def test_conv2d_layer_with_dilation_and_groups():
    conv = nn.Conv2d(4, 6, 3, pad=2, dilation=2, groups=2, seed=0, dtype=np.float64)
    assert conv.W.shape == (3, 3, 2, 6) and repr(conv) == "Conv2d(4, 6, f=3, pad=2, dilation=2, groups=2)"
    assert abs(conv.W.data.std() - np.sqrt(2 / (3 * 3 * 2))) < 0.15  # he: fan_in = f*f*in_channels/groups
    x = images((2, 7, 7, 4))
    np.testing.assert_array_equal(conv(x).data, F.conv2d(x, conv.W, conv.b, pad=2, dilation=2, groups=2).data)
    depthwise = nn.Conv2d(4, 4, 3, groups=4, bias=False)
    assert depthwise.W.shape == (3, 3, 1, 4) and depthwise.num_parameters() == 36


def test_conv_transpose2d_layer():
    up = nn.ConvTranspose2d(6, 3, 2, stride=2, seed=0, dtype=np.float64)
    assert up.W.shape == (2, 2, 3, 6) and up.b.shape == (3,)
    assert repr(up) == "ConvTranspose2d(6, 3, f=2, stride=2)"
    x = images((2, 4, 5, 6))
    out = up(x)
    assert out.shape == (2, 8, 10, 3)
    np.testing.assert_array_equal(out.data, F.conv_transpose2d(x, up.W, up.b, stride=2).data)
    grouped = nn.ConvTranspose2d(4, 6, 3, stride=2, pad=1, output_padding=1, groups=2, bias=False)
    assert grouped.W.shape == (3, 3, 3, 4) and grouped(images((1, 3, 3, 4), dtype=np.float32)).shape == (1, 6, 6, 6)


def test_leaky_relu_layer():
    layer = nn.LeakyReLU(0.2)
    np.testing.assert_allclose(layer(np.array([-1.0, 2.0])).data, [-0.2, 2.0])
    assert repr(layer) == "LeakyReLU(slope=0.2)" and nn.LeakyReLU().slope == 0.01
