"""Every op of the library against PyTorch, forward and backward, in float64 to 1e-9, on random shapes.

``same_program`` runs one program on Tensors and on torch tensors made from the same arrays, backpropagates the
same random output gradient through both, and compares the outputs and every input's gradient. CNN ops run in
NHWC here and NCHW in torch (permuted in the torch program). PyTorch is not a dependency: skipped without it.
"""

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor

torch = pytest.importorskip("torch")
TF = torch.nn.functional
TOL = 1e-9
SEEDS = [0, 1, 2]


def same_program(ours, theirs, *arrays, seed=0):
    """ours(*Tensors) and theirs(*torch tensors) on the same float64 arrays: outputs and gradients must agree."""
    xs = [Tensor(np.asarray(a, np.float64), requires_grad=True) for a in arrays]
    ts = [torch.tensor(np.asarray(a, np.float64), requires_grad=True) for a in arrays]
    out, ref = ours(*xs), theirs(*ts)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=TOL, atol=TOL)
    g = np.random.default_rng(seed + 100).standard_normal(out.shape)
    out.backward(g)
    ref.backward(torch.tensor(g))
    for i, (x, t) in enumerate(zip(xs, ts, strict=True)):
        expected = np.zeros(x.shape) if t.grad is None else t.grad.numpy()
        got = np.zeros(x.shape) if x.grad is None else x.grad
        np.testing.assert_allclose(got, expected, rtol=TOL, atol=TOL, err_msg=f"gradient of input {i}")


def random_shape(rng, ndim=None):
    return tuple(int(n) for n in rng.integers(1, 5, size=ndim or int(rng.integers(1, 4))))


def broadcast_pair(rng):
    """Two shapes that broadcast: the second drops leading axes and has some axes set to 1."""
    a = random_shape(rng, int(rng.integers(1, 4)))
    b = tuple(1 if rng.random() < 0.3 else n for n in a[int(rng.integers(0, len(a))):])
    return (a, b) if rng.random() < 0.5 else (b, a)


def randn(rng, shape, positive=False):
    x = rng.standard_normal(shape)
    return np.abs(x) + 0.5 if positive else x


# ----------------------------------------------------------------------------- elementwise
BINARY = {
    "add": (lambda a, b: a + b, lambda a, b: a + b, False),
    "sub": (lambda a, b: a - b, lambda a, b: a - b, False),
    "mul": (lambda a, b: a * b, lambda a, b: a * b, False),
    "div": (lambda a, b: a / b, lambda a, b: a / b, True),
    "pow": (lambda a, b: a ** b, lambda a, b: a ** b, True),
    "maximum": (lambda a, b: a.maximum(b), torch.maximum, False),
    "minimum": (lambda a, b: F.minimum(a, b), torch.minimum, False),
    "np.maximum": (lambda a, b: np.maximum(a, b), torch.maximum, False),
    "np.add": (lambda a, b: np.add(a, b), lambda a, b: a + b, False),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", BINARY)
def test_binary_ops(name, seed):
    ours, theirs, positive = BINARY[name]
    rng = np.random.default_rng(seed)
    sa, sb = broadcast_pair(rng)
    same_program(ours, theirs, randn(rng, sa, positive), randn(rng, sb, positive), seed=seed)


def test_binary_ops_with_constants_on_either_side():
    rng = np.random.default_rng(0)
    c = rng.standard_normal(3)
    same_program(lambda a: (2.0 - a) * c / (1.5 + a * a) + c ** 2 - a ** 3 + 2.0 ** a,
                 lambda a: (2.0 - a) * torch.tensor(c) / (1.5 + a * a) + torch.tensor(c) ** 2 - a ** 3 + 2.0 ** a,
                 rng.standard_normal((2, 3)))


UNARY = {
    "neg": (lambda a: -a, lambda a: -a, False),
    "exp": (lambda a: a.exp(), torch.exp, False),
    "log": (lambda a: a.log(), torch.log, True),
    "sqrt": (lambda a: F.sqrt(a), torch.sqrt, True),
    "abs": (lambda a: a.abs(), torch.abs, False),
    "clip": (lambda a: a.clip(-0.5, 0.7), lambda a: torch.clamp(a, -0.5, 0.7), False),
    "relu": (lambda a: a.relu(), torch.relu, False),
    "sigmoid": (lambda a: a.sigmoid(), torch.sigmoid, False),
    "tanh": (lambda a: np.tanh(a), torch.tanh, False),
    "softmax": (lambda a: a.softmax(axis=0), lambda a: torch.softmax(a, dim=0), False),
    "log_softmax": (lambda a: F.log_softmax(a), lambda a: torch.log_softmax(a, dim=-1), False),
}


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", UNARY)
def test_unary_ops(name, seed):
    ours, theirs, positive = UNARY[name]
    rng = np.random.default_rng(seed)
    same_program(ours, theirs, randn(rng, random_shape(rng), positive) * 2, seed=seed)


@pytest.mark.parametrize("shapes", [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
                                    ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2))])
def test_matmul(shapes):
    rng = np.random.default_rng(len(shapes[0]))
    same_program(lambda a, b: a @ b, torch.matmul, *(rng.standard_normal(s) for s in shapes))


# ----------------------------------------------------------------------------- reductions
def all_axes(a, axis):
    return tuple(range(a.ndim)) if axis is None else axis


REDUCTIONS = {
    "sum": (lambda a, ax, k: a.sum(ax, k), lambda a, ax, k: a.sum(all_axes(a, ax), keepdim=k)),
    "mean": (lambda a, ax, k: np.mean(a, ax, keepdims=k), lambda a, ax, k: a.mean(all_axes(a, ax), keepdim=k)),
    "max": (lambda a, ax, k: a.max(ax, k), lambda a, ax, k: a.amax(all_axes(a, ax), keepdim=k)),
    "min": (lambda a, ax, k: F.min(a, ax, k), lambda a, ax, k: a.amin(all_axes(a, ax), keepdim=k)),
}


@pytest.mark.parametrize("axis", [None, 0, -1, (0, 2)])
@pytest.mark.parametrize("keepdims", [False, True])
@pytest.mark.parametrize("name", REDUCTIONS)
def test_reductions(name, axis, keepdims):
    ours, theirs = REDUCTIONS[name]
    rng = np.random.default_rng(3)
    same_program(lambda a: ours(a, axis, keepdims), lambda a: theirs(a, axis, keepdims), rng.standard_normal((3, 4, 2)))


@pytest.mark.parametrize("name", ["max", "min"])
def test_tied_extremes_share_the_gradient_as_amax(name):
    ours, theirs = REDUCTIONS[name]
    x = np.array([[1.0, 3.0, 3.0], [-2.0, -2.0, 0.0]])
    same_program(lambda a: ours(a, 1, False), lambda a: theirs(a, 1, False), x)
    same_program(lambda a: ours(a, (0, 1), True), lambda a: theirs(a, (0, 1), True), x)


# ----------------------------------------------------------------------------- shape
@pytest.mark.parametrize("ours, theirs", [
    (lambda a: a.reshape(4, -1), lambda a: a.reshape(4, -1)),
    (lambda a: a.flatten(1), lambda a: a.flatten(1)),
    (lambda a: a.flatten(), lambda a: a.flatten()),
    (lambda a: a.transpose(2, 0, 1), lambda a: a.permute(2, 0, 1)),
    (lambda a: a.permute(1, 0, 2), lambda a: a.permute(1, 0, 2)),
    (lambda a: a.T, lambda a: a.permute(2, 1, 0)),
    (lambda a: a[1:, ::2, -1], lambda a: a[1:, ::2, -1]),
    (lambda a: a[np.array([2, 0, 2])], lambda a: a[torch.tensor([2, 0, 2])]),
    (lambda a: a[:, np.array([True, False, True, True])], lambda a: a[:, torch.tensor([True, False, True, True])]),
    (lambda a: a[None, ..., 0], lambda a: a[None, ..., 0]),
    (lambda a: Tensor.concatenate([a, a * 2.0], axis=1), lambda a: torch.cat([a, a * 2.0], dim=1)),
    (lambda a: F.stack([a, a.exp()], axis=-1), lambda a: torch.stack([a, a.exp()], dim=-1)),
    (lambda a: np.concatenate([a, a], axis=0), lambda a: torch.cat([a, a], dim=0)),
    (lambda a: list(a)[1] * list(a)[2], lambda a: list(a)[1] * list(a)[2]),
])
def test_shape_ops(ours, theirs):
    same_program(ours, theirs, np.random.default_rng(4).standard_normal((3, 4, 2)))


# ----------------------------------------------------------------------------- CNN ops (NHWC here, NCHW in torch)
def nchw(x):
    return x.permute(0, 3, 1, 2)


def nhwc(x):
    return x.permute(0, 2, 3, 1)


def torch_conv(x, W, b, stride, pads):
    """NHWC x, (f_h, f_w, C_prev, C) W as ours; pads ((top, bottom), (left, right))."""
    (top, bottom), (left, right) = pads
    xp = TF.pad(nchw(x), (left, right, top, bottom))
    return nhwc(TF.conv2d(xp, W.permute(3, 2, 0, 1), b, stride=stride))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("stride, pad", [(1, 0), (2, 1), ((2, 1), (1, 2)), (1, ((1, 0), (2, 1))), (3, 2)])
def test_conv2d(stride, pad, seed):
    rng = np.random.default_rng(seed)
    m, c_prev, c = (int(n) for n in rng.integers(1, 4, size=3))
    f = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    x = rng.standard_normal((m, int(rng.integers(f[0], 8)), int(rng.integers(f[1], 8)), c_prev))
    W, b = rng.standard_normal((*f, c_prev, c)), rng.standard_normal(c)
    pads = pad if isinstance(pad, tuple) and isinstance(pad[0], tuple) else (
        ((pad, pad), (pad, pad)) if isinstance(pad, int) else ((pad[0], pad[0]), (pad[1], pad[1])))
    s = stride if isinstance(stride, tuple) else (stride, stride)
    same_program(lambda x, W, b: x.conv2d(W, b, stride=stride, pad=pad),
                 lambda x, W, b: torch_conv(x, W, b, s, pads), x, W, b, seed=seed)


def test_conv2d_same_padding_without_bias():
    rng = np.random.default_rng(5)
    same_program(lambda x, W: F.conv2d(x, W, pad="same"), lambda x, W: torch_conv(x, W, None, (1, 1), ((1, 1), (1, 1))),
                 rng.standard_normal((2, 5, 6, 3)), rng.standard_normal((3, 3, 3, 4)))


def test_pad2d():
    rng = np.random.default_rng(6)
    same_program(lambda x: x.pad2d(((1, 2), (0, 3)), value=0.5),
                 lambda x: nhwc(TF.pad(nchw(x), (0, 3, 1, 2), value=0.5)), rng.standard_normal((2, 3, 4, 2)))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("f, stride", [(2, None), (3, 2), ((2, 3), (1, 2)), (2, 1)])
def test_max_pool2d(f, stride, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 7, 8, 3))
    same_program(lambda x: x.max_pool2d(f, stride), lambda x: nhwc(TF.max_pool2d(nchw(x), f, stride)), x, seed=seed)


@pytest.mark.parametrize("f, stride", [(2, None), (3, 1), (2, 1)])
def test_max_pool2d_ties_first_is_torchs(f, stride):
    x = np.random.default_rng(7).integers(0, 3, size=(2, 6, 6, 2)).astype(np.float64)  # many ties
    same_program(lambda x: x.max_pool2d(f, stride, ties="first"),
                 lambda x: nhwc(TF.max_pool2d(nchw(x), f, stride)), x)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("f, stride", [(2, None), (3, 2), ((2, 3), (1, 2))])
def test_avg_pool2d(f, stride, seed):
    rng = np.random.default_rng(seed)
    same_program(lambda x: F.avg_pool2d(x, f, stride), lambda x: nhwc(TF.avg_pool2d(nchw(x), f, stride)),
                 rng.standard_normal((2, 7, 8, 3)), seed=seed)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("stride, pad, dilation, groups", [
    (1, 0, 2, 1), (2, 1, (1, 2), 2), (1, 1, 1, 4), ((2, 1), (2, 1), 2, 4), (1, 2, 3, 2)])
def test_conv2d_dilation_groups(stride, pad, dilation, groups, seed):
    rng = np.random.default_rng(seed)
    x, W, b = rng.standard_normal((2, 9, 8, 4)), rng.standard_normal((3, 2, 4 // groups, 8)), rng.standard_normal(8)
    same_program(lambda x, W, b: x.conv2d(W, b, stride=stride, pad=pad, dilation=dilation, groups=groups),
                 lambda x, W, b: nhwc(TF.conv2d(nchw(x), W.permute(3, 2, 0, 1), b, stride=stride, padding=pad,
                                                dilation=dilation, groups=groups)), x, W, b, seed=seed)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("stride, pad, output_padding, dilation, groups", [
    (1, 0, 0, 1, 1), (2, 1, 1, 1, 1), ((2, 3), (0, 1), (1, 2), 1, 2), (2, 1, 0, 2, 2), (3, 0, 2, (1, 2), 1)])
def test_conv_transpose2d(stride, pad, output_padding, dilation, groups, seed):
    rng = np.random.default_rng(seed)
    x, W, b = rng.standard_normal((2, 4, 3, 4)), rng.standard_normal((3, 2, 6 // groups, 4)), rng.standard_normal(6)
    same_program(lambda x, W, b: x.conv_transpose2d(W, b, stride=stride, pad=pad, output_padding=output_padding,
                                                    dilation=dilation, groups=groups),
                 lambda x, W, b: nhwc(TF.conv_transpose2d(nchw(x), W.permute(3, 2, 0, 1), b, stride=stride,
                                                          padding=pad, output_padding=output_padding,
                                                          dilation=dilation, groups=groups)), x, W, b, seed=seed)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("seed", SEEDS)
def test_batch_norm2d_and_its_running_statistics(training, seed):
    rng = np.random.default_rng(seed)
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    ours_stats, torch_stats = (mean.copy(), var.copy()), (torch.tensor(mean), torch.tensor(var))
    same_program(lambda x, g, b: x.batch_norm2d(g, b, running_mean=ours_stats[0], running_var=ours_stats[1],
                                                training=training, momentum=0.3),
                 lambda x, g, b: nhwc(TF.batch_norm(nchw(x), *torch_stats, g, b, training=training, momentum=0.3)),
                 rng.standard_normal((4, 3, 5, 3)) * 2 + 1, rng.uniform(0.5, 2, 3), rng.standard_normal(3),
                 seed=seed)
    for ours, theirs in zip(ours_stats, torch_stats, strict=True):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=TOL, atol=TOL)


@pytest.mark.parametrize("slope", [0.01, 0.2, -0.5])
def test_leaky_relu(slope):
    same_program(lambda x: x.leaky_relu(slope), lambda x: TF.leaky_relu(x, slope),
                 np.random.default_rng(11).standard_normal((3, 4, 5)))


def test_dropout_with_the_same_mask_is_torchs_and_eval_is_the_identity():
    x = np.random.default_rng(12).standard_normal((20, 30))
    mask = F.dropout(np.ones_like(x), 0.3, rng=5).data  # our mask: 0 or 1 / (1 - p)
    same_program(lambda x: x.dropout(0.3, rng=5), lambda x: x * torch.tensor(mask), x)
    t = torch.tensor(x)
    torch_dropped = TF.dropout(t, 0.3, training=True)  # torch's survivors are scaled as ours: x / (1 - p)
    np.testing.assert_allclose(torch_dropped[torch_dropped != 0].numpy(), (t[torch_dropped != 0] / 0.7).numpy())
    same_program(lambda x: x.dropout(0.3, training=False), lambda x: TF.dropout(x, 0.3, training=False), x)


# ----------------------------------------------------------------------------- losses and a whole network
def test_mse_loss():
    rng = np.random.default_rng(8)
    same_program(F.mse_loss, TF.mse_loss, rng.standard_normal((4, 3)), rng.standard_normal((4, 3)))


def test_cross_entropy_with_labels_and_with_probabilities():
    rng = np.random.default_rng(9)
    labels = np.array([2, 0, 4, 1])
    same_program(lambda x: F.cross_entropy(x, labels), lambda x: TF.cross_entropy(x, torch.tensor(labels)),
                 rng.standard_normal((4, 5)) * 3)
    probs = rng.dirichlet(np.ones(5), size=4)  # a constant here: our targets get no gradient (torch's do)
    same_program(lambda x: F.cross_entropy(x, probs), lambda x: TF.cross_entropy(x, torch.tensor(probs)),
                 rng.standard_normal((4, 5)))


def test_small_cnn_end_to_end():
    rng = np.random.default_rng(10)
    labels = np.array([1, 0, 2])

    def ours(x, W1, b1, W2, b2):
        a = np.maximum(0, x.conv2d(W1, b1, stride=1, pad=1)).max_pool2d(2)
        return F.cross_entropy(a.flatten(1) @ W2 + b2, labels)

    def theirs(x, W1, b1, W2, b2):
        a = TF.max_pool2d(torch.relu(TF.conv2d(nchw(x), W1.permute(3, 2, 0, 1), b1, padding=1)), 2)
        return TF.cross_entropy(nhwc(a).flatten(1) @ W2 + b2, torch.tensor(labels))

    same_program(ours, theirs, rng.standard_normal((3, 6, 6, 2)), rng.standard_normal((3, 3, 2, 4)),
                 rng.standard_normal(4), rng.standard_normal((36, 3)), rng.standard_normal(3))
