"""tinygrad_cnn.nn: gradients through each layer, parameter names, state dicts, init, errors, training."""

import re

import numpy as np
import pytest

from tinygrad_cnn import GradcheckError, Tensor, gradcheck, nn
from tinygrad_cnn.functional import cross_entropy
from tinygrad_cnn.optim import Adam


def _set_param(module, dotted, value):
    *path, last = dotted.split(".")
    for part in path:
        module = getattr(module, part)
    setattr(module, last, value)


def _gradcheck_layer(layer, x_shape, seed=0):
    """gradcheck the layer w.r.t. its input and every parameter (swapped in as float64 inputs)."""
    rng = np.random.default_rng(seed)
    named = list(layer.named_parameters())
    x = Tensor(rng.standard_normal(x_shape), requires_grad=True, name="x")
    params = [Tensor(p.data, requires_grad=True, name=n) for n, p in named]

    def fn(x, *ps):
        for (n, _), p in zip(named, ps, strict=True):
            _set_param(layer, n, p)
        return layer(x)
    return gradcheck(fn, x, *params)


# ----------------------------------------------------------------------------- gradients through layers
@pytest.mark.parametrize("layer, x_shape", [
    (nn.Linear(4, 3, seed=0), (2, 4)),
    (nn.Linear(4, 3, bias=False, init="glorot", seed=0), (5, 4)),
    (nn.Conv2d(2, 3, 3, stride=2, pad=1, seed=0), (2, 5, 5, 2)),
    (nn.Conv2d(2, 2, (2, 3), bias=False, seed=1), (1, 4, 5, 2)),
    (nn.MaxPool2d(2), (2, 4, 4, 2)),
    (nn.MaxPool2d(3, stride=1), (1, 5, 5, 2)),
    (nn.AvgPool2d(2, stride=1), (2, 3, 4, 2)),
    (nn.ReLU(), (3, 4)),
    (nn.Flatten(), (2, 3, 3, 2)),
], ids=repr)
def test_gradcheck_each_layer(layer, x_shape):
    assert _gradcheck_layer(layer, x_shape)


def test_gradcheck_small_cnn():
    net = nn.Sequential(conv1=nn.Conv2d(1, 2, 3, pad=1, seed=0), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
                        flat=nn.Flatten(), fc=nn.Linear(8, 3, seed=1))
    assert _gradcheck_layer(net, (2, 4, 4, 1))


def test_gradcheck_catches_a_wrong_layer():
    class Broken(nn.Linear):
        def forward(self, x):
            return x @ self.W + Tensor(self.b.data)  # b cut from the graph: its gradient is lost

    with pytest.raises(GradcheckError, match=r"input 2 \('b'\) of shape \(2,\)"):
        _gradcheck_layer(Broken(3, 2, seed=0), (4, 3))


# ----------------------------------------------------------------------------- names, tree, modes
def _net():
    return nn.Sequential(conv1=nn.Conv2d(1, 4, 3, pad=1, seed=0), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
                         flat=nn.Flatten(), fc=nn.Linear(16, 10, seed=1))


def test_named_parameters_are_dotted_and_ordered():
    net = _net()
    assert [n for n, _ in net.named_parameters()] == ["conv1.W", "conv1.b", "fc.W", "fc.b"]
    assert [p.shape for p in net.parameters()] == [(3, 3, 1, 4), (4,), (16, 10), (10,)]
    assert net.num_parameters() == 36 + 4 + 160 + 10


def test_parameter_tensor_names_follow_nesting():
    net = _net()
    assert [p.name for p in net.parameters()] == ["conv1.W", "conv1.b", "fc.W", "fc.b"]

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = Tensor(np.ones(1), requires_grad=True)
            self.features = _net()

        def forward(self, x):
            return self.features(x) * self.scale

    model = Model()
    names = [n for n, _ in model.named_parameters()]
    assert names == ["scale", "features.conv1.W", "features.conv1.b", "features.fc.W", "features.fc.b"]
    assert [p.name for p in model.parameters()] == names


def test_positional_sequential_names_by_index():
    seq = nn.Sequential(nn.Linear(3, 4, seed=0), nn.ReLU(), nn.Linear(4, 2, seed=1))
    assert [n for n, _ in seq.named_parameters()] == ["0.W", "0.b", "2.W", "2.b"]
    assert isinstance(seq[1], nn.ReLU) and seq[-1] is seq[2] and len(seq) == 3
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]


def test_names_show_in_the_drawn_graph():
    net = _net()
    loss = cross_entropy(net(Tensor(np.ones((2, 4, 4, 1)))), [1, 2])
    source = loss.draw().source
    for name in ("conv1.W", "conv1.b", "fc.W", "fc.b"):
        assert name in source


def test_repr_is_a_tree():
    text = repr(_net())
    assert text.splitlines() == [
        "Sequential(",
        "  (conv1): Conv2d(1, 4, f=3, pad=1)",
        "  (relu1): ReLU()",
        "  (pool1): MaxPool2d(f=2)",
        "  (flat): Flatten()",
        "  (fc): Linear(16, 10)",
        ")",
    ]
    nested = repr(nn.Sequential(block=nn.Sequential(nn.ReLU())))
    assert "  (block): Sequential(\n    (0): ReLU()\n  )" in nested


def test_zero_grad_train_eval():
    net = _net()
    loss = cross_entropy(net(Tensor(np.ones((2, 4, 4, 1)))), [0, 1])
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    assert net.eval() is net and not any(m.training for _, m in net.named_modules())
    net.train()
    assert all(m.training for _, m in net.named_modules())


def test_reassigning_an_attribute_replaces_the_parameter():
    lin = nn.Linear(2, 2, seed=0)
    lin.b = None
    assert [n for n, _ in lin.named_parameters()] == ["W"]
    del lin.W
    assert lin.parameters() == []


# ----------------------------------------------------------------------------- state dicts
def test_state_dict_is_a_copy_and_round_trips():
    a, b = _net(), nn.Sequential(conv1=nn.Conv2d(1, 4, 3, pad=1, seed=5), relu1=nn.ReLU(),
                                 pool1=nn.MaxPool2d(2), flat=nn.Flatten(), fc=nn.Linear(16, 10, seed=6))
    state = a.state_dict()
    assert list(state) == ["conv1.W", "conv1.b", "fc.W", "fc.b"]
    state["fc.b"][:] = 7.0  # writable, and a copy
    assert not np.any(a.fc.b.data == 7.0)
    b.load_state_dict(a.state_dict())
    x = Tensor(np.random.default_rng(0).random((3, 4, 4, 1)))
    np.testing.assert_array_equal(a(x).data, b(x).data)
    assert b.conv1.W.dtype == np.float32


def test_load_state_dict_casts_to_the_parameter_dtype():
    lin = nn.Linear(2, 3, seed=0)
    lin.load_state_dict({"W": np.ones((2, 3), np.float64), "b": Tensor(np.arange(3.0))})
    assert lin.W.dtype == np.float32 and lin.b.data.tolist() == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("change, error, words", [
    (lambda s: s.pop("fc.b"), ValueError, r"missing keys \['fc.b'\]"),
    (lambda s: s.update(extra=np.zeros(1)), ValueError, r"unexpected keys \['extra'\]"),
    (lambda s: s.update({"fc.W": np.zeros((10, 16))}), ValueError,
     r"key 'fc.W' has shape \(10, 16\), but the parameter has shape \(16, 10\)"),
    (lambda s: s.update({"fc.b": np.array(["a"] * 10)}), TypeError, r"key 'fc.b' holds dtype <U1"),
])
def test_load_state_dict_errors_change_nothing(change, error, words):
    net = _net()
    before = net.state_dict()
    state = {k: v + 1 for k, v in before.items()}
    change(state)
    with pytest.raises(error, match=words):
        net.load_state_dict(state)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_load_state_dict_needs_a_mapping():
    with pytest.raises(TypeError, match="expected a mapping name -> array, got list"):
        nn.Linear(2, 2).load_state_dict([np.zeros((2, 2))])


# ----------------------------------------------------------------------------- initialisation
def test_init_is_seeded_and_float32():
    a, b = nn.Conv2d(3, 8, 3, seed=42), nn.Conv2d(3, 8, 3, seed=42)
    np.testing.assert_array_equal(a.W.data, b.W.data)
    assert a.W.dtype == np.float32 and a.b.dtype == np.float32 and not a.b.data.any()
    assert a.W.requires_grad and a.b.requires_grad
    rng1, rng2 = np.random.default_rng(7), np.random.default_rng(7)
    np.testing.assert_array_equal(nn.Linear(5, 5, seed=rng1).W.data, nn.Linear(5, 5, seed=rng2).W.data)
    assert not np.array_equal(nn.Linear(5, 5, seed=rng1).W.data, nn.Linear(5, 5, seed=7).W.data)
    assert nn.Linear(2, 2, dtype=np.float64).W.dtype == np.float64


def test_he_and_glorot_scales():
    he = nn.Conv2d(16, 64, 3, seed=0).W.data  # fan_in 144
    assert abs(he.std() - np.sqrt(2 / 144)) < 0.05 * np.sqrt(2 / 144)
    limit = np.sqrt(6 / (200 + 300))
    glorot = nn.Linear(200, 300, init="glorot", seed=0).W.data
    assert np.abs(glorot).max() <= limit and np.abs(glorot).max() > 0.95 * limit


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("make, error, words", [
    (lambda: nn.Conv2d(0, 4, 3), TypeError, "Conv2d: in_channels must be a positive int, got 0"),
    (lambda: nn.Conv2d(3, 4.0, 3), TypeError, "Conv2d: out_channels must be a positive int, got 4.0"),
    (lambda: nn.Conv2d(3, 4, (3, 3, 3)), TypeError, r"Conv2d: f must be a positive int or a pair"),
    (lambda: nn.Conv2d(3, 4, 3, stride=0), TypeError, "Conv2d: stride must be a positive int, got 0"),
    (lambda: nn.Conv2d(3, 4, 3, init="lecun"), ValueError, r"Conv2d: init must be one of \('he', 'glorot'\)"),
    (lambda: nn.Conv2d(3, 4, 3, dtype=np.int32), TypeError, "Conv2d: dtype must be float32 or float64, got int32"),
    (lambda: nn.Linear(3, 4, dtype="banana"), TypeError, "Linear: dtype must be float32 or float64"),
    (lambda: nn.Linear(True, 4), TypeError, "Linear: in_features must be a positive int, got True"),
    (lambda: nn.Linear(3, 4, seed=1.5), TypeError, "Linear: seed must be None, an int or a numpy"),
    (lambda: nn.MaxPool2d(2, ties="last"), ValueError, "MaxPool2d: ties must be one of"),
    (lambda: nn.AvgPool2d(-1), TypeError, "AvgPool2d: f must be a positive int, got -1"),
    (lambda: nn.Sequential(nn.ReLU(), relu=nn.ReLU()), TypeError, "Sequential: give layers either all"),
    (lambda: nn.Sequential(nn.ReLU(), np.tanh), TypeError, "Sequential: layer '1' must be a Module, got ufunc"),
])
def test_bad_constructor_arguments(make, error, words):
    with pytest.raises(error, match=words):
        make()


@pytest.mark.parametrize("layer, x_shape, words", [
    (nn.Linear(4, 3), (2, 5), r"Linear\(4, 3\): input's last axis must have 4 features, got shape \(2, 5\)$"),
    (nn.Linear(4, 3), (2, 2, 2, 1), r"got shape \(2, 2, 2, 1\) \(images\? put a Flatten\(\) before this layer\)"),
    (nn.Conv2d(3, 8, 3), (2, 5, 5, 4), r"Conv2d\(3, 8, f=3\): input must have 3 channels .*got shape \(2, 5, 5, 4\)$"),
    (nn.Conv2d(3, 8, 3), (2, 3, 5, 5), r"it looks NCHW: pass x.transpose\(0, 2, 3, 1\)"),
    (nn.Conv2d(3, 8, 3), (5, 5, 3), r"input must be 4-D NHWC .*got shape \(5, 5, 3\) \(a single image\?"),
    (nn.MaxPool2d(2), (4, 4), r"MaxPool2d\(f=2\): input must be 4-D NHWC"),
    (nn.AvgPool2d(2, stride=1), (4,), r"AvgPool2d\(f=2, stride=1\): input must be 4-D NHWC"),
])
def test_bad_inputs_name_the_layer(layer, x_shape, words):
    with pytest.raises(ValueError, match=words):
        layer(Tensor(np.zeros(x_shape)))


def test_flatten_needs_a_batch_axis():
    for shape in [(), (3,)]:
        with pytest.raises(ValueError, match=r"Flatten: input must be \(m, ...\) with a batch axis and at least "
                           rf"one more, got shape {re.escape(str(shape))}"):
            nn.Flatten()(Tensor(np.zeros(shape)))


def test_module_misuse():
    class NoInit(nn.Module):
        def __init__(self):
            self.W = Tensor(1.0)

    with pytest.raises(RuntimeError, match=r"NoInit: call super\(\).__init__\(\) before setting attributes"):
        NoInit()
    with pytest.raises(NotImplementedError, match="Module must define forward"):
        nn.Module()(1)


# ----------------------------------------------------------------------------- training
def test_a_short_training_run_lowers_the_loss():
    """Two classes of 6x6 images (a bright top half vs a bright bottom half) plus noise."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 32)
    x = rng.normal(0, 0.3, (32, 6, 6, 1))
    x[y == 0, :3] += 1.0
    x[y == 1, 3:] += 1.0
    x = Tensor(x.astype(np.float32))
    net = nn.Sequential(conv1=nn.Conv2d(1, 4, 3, pad=1, seed=0), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
                        flat=nn.Flatten(), fc=nn.Linear(36, 2, init="glorot", seed=1))
    opt = Adam(net.parameters(), lr=0.02)
    losses = []
    for _ in range(25):
        opt.zero_grad()
        loss = cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]
    assert (net(x).argmax(axis=1) == y).mean() == 1.0
