"""Weights to and from PyTorch (interop.py, flatten_order.py): layouts and names, the Flatten -> Linear row order
through every path from a flatten of images to a Linear (exact, or refused naming the op in between), an exact round
trip and the errors without torch; with torch, a network of every layer type, and twins of models with each path,
give the same outputs, gradients and running statistics in PyTorch from the exported weights.
"""

import copy

import numpy as np
import pytest

from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.interop import from_torch_state_dict, to_torch_state_dict

SHAPE = (2, 8, 8, 3)  # NHWC batch


class Net(nn.Module):
    """Every layer type: dilated and grouped Conv2d, BatchNorm2d, ConvTranspose2d, Dropout, the activations, both
    pools, GlobalAvgPool2d, Flatten, Linear, Softmax; two heads (Flatten -> Linear and GlobalAvgPool2d -> Linear)."""

    def __init__(self, seed=0, dtype=np.float64):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, pad=2, dilation=2, seed=seed, dtype=dtype),
            nn.BatchNorm2d(8, dtype=dtype),
            nn.ReLU(),
            nn.Conv2d(8, 8, 3, pad=1, groups=4, seed=seed + 1, dtype=dtype),
            nn.LeakyReLU(0.1),
            nn.MaxPool2d(2),                                                            # 8x8 -> 4x4
            nn.ConvTranspose2d(8, 4, 3, stride=2, pad=1, output_padding=1, seed=seed + 2, dtype=dtype),  # -> 8x8
            nn.Tanh(),
            nn.AvgPool2d(2),                                                            # -> 4x4
            nn.Dropout(0.5, seed=seed),
            nn.Sigmoid(),
        )
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(4 * 4 * 4, 5, seed=seed + 3, dtype=dtype)
        self.gap = nn.GlobalAvgPool2d()
        self.gap_fc = nn.Linear(4, 5, seed=seed + 4, dtype=dtype)
        self.softmax = nn.Softmax()

    def forward(self, x):
        f = self.features(x)
        return self.softmax(self.fc(self.flatten(f)) + self.gap_fc(self.gap(f)))


def randomized(model, seed=0):
    """Non-trivial values everywhere, running statistics and biases included."""
    rng = np.random.default_rng(seed)
    state = {k: (rng.uniform(0.5, 1.5, v.shape) if "var" in k or k.endswith("gamma") else rng.standard_normal(v.shape))
             if v.dtype.kind == "f" else np.array(3) for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    return model


def test_layouts_and_names_are_pytorchs():
    model = randomized(Net())
    state = to_torch_state_dict(model, SHAPE)
    assert list(state) == [
        "features.0.weight", "features.0.bias", "features.1.weight", "features.1.bias", "features.1.running_mean",
        "features.1.running_var", "features.1.num_batches_tracked", "features.3.weight", "features.3.bias",
        "features.6.weight", "features.6.bias", "fc.weight", "fc.bias", "gap_fc.weight", "gap_fc.bias"]
    assert state["features.0.weight"].shape == (8, 3, 3, 3)
    assert state["features.3.weight"].shape == (8, 2, 3, 3)        # (n_C, n_C_prev / groups, f_h, f_w)
    assert state["features.6.weight"].shape == (8, 4, 3, 3)        # (n_C_in, n_C_out / groups, f_h, f_w)
    assert state["fc.weight"].shape == (5, 64) and state["gap_fc.weight"].shape == (5, 4)
    np.testing.assert_array_equal(state["gap_fc.weight"], model.gap_fc.W.data.T)  # not after a Flatten: plain .T
    np.testing.assert_array_equal(state["features.1.weight"], model.features[1].gamma.data)
    assert state["features.1.num_batches_tracked"].dtype == np.int64


def test_round_trip_is_exact():
    model = randomized(Net(dtype=np.float32))
    state = to_torch_state_dict(model, SHAPE)
    fresh = Net(seed=5, dtype=np.float32)
    from_torch_state_dict(fresh, state, SHAPE)
    for (name, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items(), strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b, err_msg=name)


class _NumpyLike:
    """Anything with .numpy(), as a torch tensor."""

    def __init__(self, a):
        self.a = a

    def numpy(self):
        return self.a


def test_values_with_a_numpy_method_are_accepted():
    model = nn.Sequential(nn.Linear(3, 2, seed=0))
    state = {k: _NumpyLike(v * 2) for k, v in to_torch_state_dict(model, (1, 3)).items()}
    before = model[0].W.data.copy()
    from_torch_state_dict(model, state, (1, 3))
    np.testing.assert_array_equal(model[0].W.data, before * 2)


@pytest.mark.parametrize("change, error, words", [
    (lambda s: s.pop("fc.bias"), ValueError, r"missing keys \['fc.bias'\]"),
    (lambda s: s.update({"fc.W": np.zeros(1)}), ValueError, r"unexpected keys \['fc.W'\]"),
    (lambda s: s.update({"fc.weight": np.zeros((64, 5))}), ValueError,
     r"key 'fc.weight' has shape \(64, 5\), but PyTorch's layout of 'fc.W' \(ours \(64, 5\)\) is \(5, 64\)"),
    (lambda s: s.update({"features.0.weight": np.zeros((3, 3, 3, 8))}), ValueError,
     r"'features.0.weight' has shape \(3, 3, 3, 8\).* is \(8, 3, 3, 3\)"),
])
def test_from_torch_state_dict_errors_change_nothing(change, error, words):
    model = randomized(Net())
    before = model.state_dict()
    state = to_torch_state_dict(model, SHAPE)
    change(state)
    with pytest.raises(error, match=words):
        from_torch_state_dict(model, state, SHAPE)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_unknown_layers_models_and_arguments_are_refused():
    class Scale(nn.Module):
        def __init__(self):
            super().__init__()
            self.s = Tensor(np.ones(1), requires_grad=True)

        def forward(self, x):
            return x * self.s

    with pytest.raises(TypeError, match=r"block \(Scale\) holds \['block.s'\], whose PyTorch layout is not known"):
        to_torch_state_dict(nn.Sequential(block=Scale()), (1, 2))
    with pytest.raises(TypeError, match="to_torch_state_dict: model must be a Module"):
        to_torch_state_dict({}, (1, 2))
    with pytest.raises(TypeError, match="to_torch_state_dict: input_shape must be a tuple of positive ints"):
        to_torch_state_dict(nn.Sequential(nn.Linear(2, 2)), 2)
    with pytest.raises(TypeError, match="from_torch_state_dict: state must be a mapping"):
        from_torch_state_dict(nn.Sequential(nn.Linear(2, 2)), [1], (1, 2))


# ----------------------------------------------------------------------------- a Linear after a flatten
@pytest.mark.parametrize("between", [[], [nn.ReLU()], [nn.Dropout(0.3), nn.LeakyReLU()]])
def test_linear_after_flatten_takes_rows_in_channels_first_order(between):
    model = nn.Sequential(nn.Conv2d(2, 3, 2, seed=0, dtype=np.float64), nn.Flatten(), *between,
                          nn.Linear(3 * 4 * 5, 2, seed=1, dtype=np.float64))
    x = np.random.default_rng(0).standard_normal((2, 5, 6, 2))
    weight = to_torch_state_dict(model, (1, 5, 6, 2))[f"{len(between) + 2}.weight"]
    features = model[0](x).data
    for layer in between:
        features = layer.eval()(features).data
    nchw_rows = features.transpose(0, 3, 1, 2).reshape(2, -1)  # PyTorch's Flatten of NCHW
    np.testing.assert_allclose(nchw_rows @ weight.T, features.reshape(2, -1) @ model[-1].W.data, rtol=1e-12)


class _Elementwise(nn.Module):
    """A custom step between Flatten and Linear that keeps each entry in its place: a scale, a residual sum."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


@pytest.mark.parametrize("fn", [lambda x: 0.5 * x, lambda x: x * 2.0 - 1.0, lambda x: x + x.relu(),
                                lambda x: (x / 3.0).maximum(x.tanh())],
                         ids=["scalar-times-x", "x-times-scalar-minus", "residual-sum", "two-branches"])
def test_linear_after_flatten_then_elementwise_arithmetic_takes_rows_in_channels_first_order(fn):
    # the flatten is a parent of mul/add/maximum, first or second: the row order is still (H, W, C)
    model = nn.Sequential(nn.Conv2d(2, 3, 2, seed=0, dtype=np.float64), nn.Flatten(), _Elementwise(fn),
                          nn.Linear(3 * 4 * 5, 2, seed=1, dtype=np.float64))
    x = np.random.default_rng(0).standard_normal((2, 5, 6, 2))
    weight = to_torch_state_dict(model, (1, 5, 6, 2))["3.weight"]
    features = model[0](x).data
    nchw_rows = fn(Tensor(features.transpose(0, 3, 1, 2).reshape(2, -1))).data  # PyTorch's Flatten of NCHW
    np.testing.assert_allclose(nchw_rows @ weight.T, model(Tensor(x)).data - model[-1].b.data, rtol=1e-12)


class _TwoImages(nn.Module):
    """A Linear fed by the sum of two flattens of images shaped differently, or called on each in turn (the second
    images: a relu of x reshaped, so images of their own)."""

    def __init__(self, mode):
        super().__init__()
        self.mode, self.fc = mode, nn.Linear(12, 2, seed=0)

    def forward(self, x):
        a, b = x.flatten(1), x.reshape(x.shape[0], 2, 2, 3).relu().flatten(1)
        return self.fc(a + b) if self.mode == "sum" else self.fc(a) + self.fc(b)


@pytest.mark.parametrize("mode,words", [
    ("sum", r"interop: Linear\(12, 2\)'s input row \d+ comes from a flatten of images \(H, W, C\) \((2, 3, 2|2, 2, "
            r"3)\) .* and from a flatten of images \(H, W, C\) \((2, 3, 2|2, 2, 3)\)"),
    ("twice", r"interop: Linear\(12, 2\) is called on inputs whose rows need different orders in PyTorch"),
])
def test_a_linear_fed_by_flattens_of_differently_shaped_images_is_refused(mode, words):
    with pytest.raises(ValueError, match=words):
        to_torch_state_dict(_TwoImages(mode), (1, 2, 3, 2))


FLATTEN_SHAPE = (2, 5, 6, 2)  # NHWC; the conv makes (2, 4, 5, 3) images: 60 rows when flattened


def swish(x):
    """A user's op: its row order is unknown to interop."""
    s = 1 / (1 + np.exp(-x.data))
    return Tensor.from_op(x.data * s, (x,), "swish", lambda g: (g * (s + x.data * s * (1 - s)),),
                          rule="da = g*(s + out*(1 - s))")


class Model(nn.Module):
    """A conv, then ``head(self, images, x)`` on its relu'd (m, 4, 5, 3) output; Linears named fc (and fc0)."""

    def __init__(self, head, fc_in, fc0_in=None):
        super().__init__()
        self.head = head
        self.conv = nn.Conv2d(2, 3, 2, seed=0, dtype=np.float64)
        if fc0_in is not None:
            self.fc0 = nn.Linear(fc0_in, 60, seed=2, dtype=np.float64)
        self.fc = nn.Linear(fc_in, 4, seed=1, dtype=np.float64)

    def forward(self, x):
        return self.head(self, self.conv(x).relu(), x)


def twin(model, torch):
    """PyTorch's twin of a Model: the same conv and Linears, with the exported weights loaded."""
    tm = torch.nn.Module()
    tm.conv = torch.nn.Conv2d(2, 3, 2).double()
    if hasattr(model, "fc0"):
        tm.fc0 = torch.nn.Linear(model.fc0.in_features, 60).double()
    tm.fc = torch.nn.Linear(model.fc.in_features, 4).double()
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in to_torch_state_dict(model, (1, *FLATTEN_SHAPE[1:])).items()})
    return tm


# (name, our head, the twin's head on NCHW tensors, the fc's input size)
EXACT = [
    ("flatten", lambda m, f, x: m.fc(f.flatten(1)), lambda t, f, x, torch: t.fc(f.flatten(1)), 60),
    ("concatenate [flatten, pooled]", lambda m, f, x: m.fc(Tensor.concatenate([f.flatten(1), x.mean(axis=(1, 2))], 1)),
     lambda t, f, x, torch: t.fc(torch.cat([f.flatten(1), x.mean((2, 3))], 1)), 62),
    ("concatenate [pooled, flatten]", lambda m, f, x: m.fc(Tensor.concatenate([x.mean(axis=(1, 2)), f.flatten(1)], 1)),
     lambda t, f, x, torch: t.fc(torch.cat([x.mean((2, 3)), f.flatten(1)], 1)), 62),
    ("concatenate [flatten, flatten of x]",
     lambda m, f, x: m.fc(Tensor.concatenate([f.flatten(1), x.flatten(1)], 1)),
     lambda t, f, x, torch: t.fc(torch.cat([f.flatten(1), x.flatten(1)], 1)), 120),
    ("flatten -> softmax", lambda m, f, x: m.fc(f.flatten(1).softmax(axis=1)),
     lambda t, f, x, torch: t.fc(torch.softmax(f.flatten(1), 1)), 60),
    ("flatten -> log_softmax -> relu", lambda m, f, x: m.fc(f.flatten(1).log_softmax(1).relu()),
     lambda t, f, x, torch: t.fc(torch.relu(torch.log_softmax(f.flatten(1), 1))), 60),
    ("transpose to NCHW, then flatten", lambda m, f, x: m.fc(f.transpose(0, 3, 1, 2).flatten(1)),
     lambda t, f, x, torch: t.fc(f.flatten(1)), 60),
    ("permute to NCHW, then reshape", lambda m, f, x: m.fc(f.permute(0, 3, 1, 2).reshape(f.shape[0], -1)),
     lambda t, f, x, torch: t.fc(f.reshape(f.shape[0], -1)), 60),
    ("two flattens summed", lambda m, f, x: m.fc(f.flatten(1) + (f * 2).flatten(1)),
     lambda t, f, x, torch: t.fc(f.flatten(1) + (f * 2).flatten(1)), 60),
    ("flatten, Linear, Linear", lambda m, f, x: m.fc(m.fc0(f.flatten(1)).tanh()),
     lambda t, f, x, torch: t.fc(torch.tanh(t.fc0(f.flatten(1)))), 60, 60),
]


@pytest.mark.parametrize("case", EXACT, ids=[c[0] for c in EXACT])
def test_the_exported_weights_make_pytorchs_twin_exact(case):
    torch = pytest.importorskip("torch")
    _, ours, theirs, fc_in, *fc0 = case
    model = Model(ours, fc_in, *fc0)
    x = np.random.default_rng(3).standard_normal(FLATTEN_SHAPE)
    tm = twin(model, torch)
    tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    expected = theirs(tm, torch.relu(tm.conv(tx)), tx, torch).detach().numpy()
    np.testing.assert_allclose(model(Tensor(x)).data, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", EXACT, ids=[c[0] for c in EXACT])
def test_the_round_trip_through_pytorchs_layout_is_exact(case):
    _, ours, _, fc_in, *fc0 = case
    model = Model(ours, fc_in, *fc0)
    state = to_torch_state_dict(model, (1, *FLATTEN_SHAPE[1:]))
    fresh = Model(ours, fc_in, *fc0)
    fresh.fc.W.data = np.zeros_like(fresh.fc.W.data)
    from_torch_state_dict(fresh, state, (1, *FLATTEN_SHAPE[1:]))
    np.testing.assert_array_equal(fresh.fc.W.data, model.fc.W.data)


REFUSED = [
    ("a flatten added to a Linear's output", lambda m, f, x: m.fc(f.flatten(1) + m.fc0(x.flatten(1))), 60, 60,
     r"interop: Linear\(60, 4\)'s input row \d+ comes from a flatten of images \(H, W, C\) \(4, 5, 3\) \(add <- "
     r"flatten start_dim=1\) and from .*\(add.*\), whose rows keep their order: .*no order of this Linear's "
     r"rows matches"),
    ("pairs of a flatten summed", lambda m, f, x: m.fc(f.flatten(1).reshape(-1, 30, 2).sum(axis=2)), 30, None,
     r"interop: Linear\(30, 4\)'s input comes from a flatten of images \(1, 4, 5, 3\) through 'sum axis=2', "
     r".*whose row order is unknown"),
    ("part of a flatten", lambda m, f, x: m.fc(f.flatten(1)[:, :10]), 10, None,
     r"interop: Linear\(10, 4\)'s input holds only part of a flatten of images \(H, W, C\) \(4, 5, 3\) "
     r"\(getitem <- flatten"),
    ("one pixel's channels", lambda m, f, x: m.fc(f[:, 0, 0, :]), 3, None,
     r"holds only part of a flatten of images \(H, W, C\) \(4, 5, 3\) \(getitem\)"),
    ("a flatten times a constant per row", lambda m, f, x: m.fc(f.flatten(1) * np.arange(60.0)), 60, None,
     r"row \d+ comes from a flatten of images .* and from a tensor of shape \(60,\) \(mul\)"),
    ("your own op after a flatten", lambda m, f, x: m.fc(swish(f.flatten(1))), 60, None,
     r"input comes from a flatten of images \(1, 4, 5, 3\) through 'swish', whose row order is unknown"),
    ("your own op on the images", lambda m, f, x: m.fc(swish(f).flatten(1)), 60, None, None),  # swish: 4-D, so images
    ("rows of two flattens interleaved", lambda m, f, x: m.fc(Tensor.stack([f.flatten(1), f.flatten(1)], 2)
                                                              .reshape(-1, 120)), 120, None,
     r"interleaves the rows of a flatten of images"),
    ("a flatten broadcast, one copy taken", lambda m, f, x: m.fc(f.flatten(1).broadcast_to((3, f.shape[0], 60))[1]),
     60, None, r"input comes from a flatten of images \(1, 4, 5, 3\) through 'broadcast_to"),
    ("one Linear on two different flattens", lambda m, f, x: m.fc(f.flatten(1)) + m.fc(f.transpose(0, 3, 1, 2)
                                                                                      .flatten(1)), 60, None,
     r"interop: Linear\(60, 4\) is called on inputs whose rows need different orders in PyTorch"),
]


@pytest.mark.parametrize("case", REFUSED, ids=[c[0] for c in REFUSED])
def test_paths_no_order_can_make_exact_are_refused_naming_the_ops(case):
    _, head, fc_in, fc0_in, message = case
    model = Model(head, fc_in, fc0_in)
    if message is None:  # swish(images) is images to interop (a 4-D source): exact, checked by the next test
        to_torch_state_dict(model, (1, *FLATTEN_SHAPE[1:]))
        return
    with pytest.raises(ValueError, match=message):
        to_torch_state_dict(model, (1, *FLATTEN_SHAPE[1:]))
    with pytest.raises(ValueError, match=message):
        from_torch_state_dict(model, {}, (1, *FLATTEN_SHAPE[1:]))


# ----------------------------------------------------------------------------- the same network in PyTorch
def torch_net(torch):
    tnn = torch.nn

    class TorchNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.features = tnn.Sequential(
                tnn.Conv2d(3, 8, 3, padding=2, dilation=2), tnn.BatchNorm2d(8), tnn.ReLU(),
                tnn.Conv2d(8, 8, 3, padding=1, groups=4), tnn.LeakyReLU(0.1), tnn.MaxPool2d(2),
                tnn.ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1), tnn.Tanh(), tnn.AvgPool2d(2),
                tnn.Dropout(0.5), tnn.Sigmoid())
            self.flatten = tnn.Flatten()
            self.fc = tnn.Linear(64, 5)
            self.gap = tnn.Sequential(tnn.AdaptiveAvgPool2d(1), tnn.Flatten())
            self.gap_fc = tnn.Linear(4, 5)
            self.softmax = tnn.Softmax(dim=-1)

        def forward(self, x):
            f = self.features(x)
            return self.softmax(self.fc(self.flatten(f)) + self.gap_fc(self.gap(f)))
    return TorchNet().double()


def grads_in_torch_layout(model):
    """Our parameter gradients, named and laid out as PyTorch's."""
    holder = copy.deepcopy(model)
    for (_, p), (_, q) in zip(model.named_parameters(), holder.named_parameters(), strict=True):
        q.data = p.grad
    return to_torch_state_dict(holder, SHAPE)


@pytest.mark.parametrize("training", [True, False])
def test_pytorch_model_with_the_exported_weights_matches_ours(training):
    torch = pytest.importorskip("torch")
    ours = randomized(Net())
    theirs = torch_net(torch)
    state = to_torch_state_dict(ours, SHAPE)
    assert list(state) == list(theirs.state_dict())
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    ours.train(training), theirs.train(training)
    ours.features[9].eval(), theirs.features[9].eval()  # dropout: eval (its masks are not torch's)
    rng = np.random.default_rng(1)
    x = rng.standard_normal(SHAPE)
    tx, torch_x = Tensor(x, requires_grad=True), torch.tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    out, torch_out = ours(tx), theirs(torch_x)
    np.testing.assert_allclose(out.data, torch_out.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(out.shape)
    out.backward(g)
    torch_out.backward(torch.tensor(g))
    np.testing.assert_allclose(tx.grad, torch_x.grad.numpy().transpose(0, 2, 3, 1), rtol=1e-9, atol=1e-12)
    grads = grads_in_torch_layout(ours)
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(grads[name], p.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=name)
    after = to_torch_state_dict(ours, SHAPE)  # running statistics (moved in training) and the batch count
    for name, value in theirs.state_dict().items():
        np.testing.assert_allclose(after[name], value.numpy(), rtol=1e-12, atol=1e-14, err_msg=name)
    from_torch_state_dict(ours, theirs.state_dict(), SHAPE)  # and back, from torch tensors
    for name, value in theirs.state_dict().items():
        np.testing.assert_array_equal(to_torch_state_dict(ours, SHAPE)[name], value.numpy())
