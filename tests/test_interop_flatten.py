"""interop is exact or refuses (issue 21, item 3): every path from a flatten of images to a Linear is reordered so
that PyTorch's twin model (the same layers on NCHW images) computes the same outputs, or to_torch_state_dict raises
naming the op in between."""

import numpy as np
import pytest

from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.interop import from_torch_state_dict, to_torch_state_dict

SHAPE = (2, 5, 6, 2)  # NHWC; the conv makes (2, 4, 5, 3) images: 60 rows when flattened


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
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in to_torch_state_dict(model, (1, *SHAPE[1:])).items()})
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
    x = np.random.default_rng(3).standard_normal(SHAPE)
    tm = twin(model, torch)
    tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    expected = theirs(tm, torch.relu(tm.conv(tx)), tx, torch).detach().numpy()
    np.testing.assert_allclose(model(Tensor(x)).data, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("case", EXACT, ids=[c[0] for c in EXACT])
def test_the_round_trip_through_pytorchs_layout_is_exact(case):
    _, ours, _, fc_in, *fc0 = case
    model = Model(ours, fc_in, *fc0)
    state = to_torch_state_dict(model, (1, *SHAPE[1:]))
    fresh = Model(ours, fc_in, *fc0)
    fresh.fc.W.data = np.zeros_like(fresh.fc.W.data)
    from_torch_state_dict(fresh, state, (1, *SHAPE[1:]))
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
        to_torch_state_dict(model, (1, *SHAPE[1:]))
        return
    with pytest.raises(ValueError, match=message):
        to_torch_state_dict(model, (1, *SHAPE[1:]))
    with pytest.raises(ValueError, match=message):
        from_torch_state_dict(model, {}, (1, *SHAPE[1:]))
