"""Every op of the library as a second-order case: random float64 inputs (random shapes and hyper-parameters per
seed), our program on Tensors and, where PyTorch has the op, the same program on torch tensors (NCHW there).

CASES[name](rng) -> (arrays, ours, theirs): ours(*Tensors) and theirs(*torch tensors) on the same arrays; theirs is
None for an op PyTorch has no public counterpart of (the backward ops, the ties policies "split" and "all"): those
are checked numerically only (tests/test_second_order.py) and, through the ops that record them, against PyTorch.
The torch programs import torch lazily, so the numerical checks run without it.
"""

import numpy as np

import tinygrad_cnn.functional as F
from tests.helpers import nchw, nhwc
from tinygrad_cnn import Tensor


def _torch():
    import torch
    return torch, torch.nn.functional


def shape(rng, ndim):
    return tuple(int(n) for n in rng.integers(1, 4, size=ndim))


def pick(rng, options):
    return options[int(rng.integers(len(options)))]


def positive(rng, shape_):
    return rng.uniform(0.5, 2.0, shape_)


def binary(ours, theirs, positive_inputs=False):
    def case(rng):
        a = shape(rng, int(rng.integers(1, 4)))
        b = tuple(1 if rng.random() < 0.3 else n for n in a[int(rng.integers(0, len(a))):])
        sa, sb = (a, b) if rng.random() < 0.5 else (b, a)
        make = positive if positive_inputs else (lambda r, s: r.standard_normal(s))
        return [make(rng, sa), make(rng, sb)], ours, theirs
    return case


def unary(ours, theirs, make=None):
    def case(rng):
        x = (make or (lambda r, s: r.standard_normal(s)))(rng, shape(rng, int(rng.integers(1, 4))))
        return [x], ours, theirs
    return case


def _matmul(rng):
    n, k, m, batch = (int(v) for v in rng.integers(1, 4, size=4))
    a_shape, b_shape = pick(rng, [((n, k), (k, m)), ((batch, n, k), (k, m)), ((k,), (batch, k, m)),
                                  ((batch, n, k), (k,)), ((k,), (k,)), ((2, 1, n, k), (batch, k, m))])
    return [rng.standard_normal(a_shape), rng.standard_normal(b_shape)], lambda a, b: a @ b, lambda a, b: a @ b


def _reduction(method, torch_name):
    def case(rng):
        x = rng.standard_normal(shape(rng, 3))
        axis, keepdims = pick(rng, [None, 0, 2, (0, 1), -1]), bool(rng.integers(2))

        def theirs(t):
            dims = tuple(range(t.ndim)) if axis is None else axis
            return getattr(_torch()[0], torch_name)(t * t, dim=dims, keepdim=keepdims)
        return [x], lambda t: getattr(t * t, method)(axis=axis, keepdims=keepdims), theirs
    return case


def _softmax(method):
    def case(rng):
        axis = pick(rng, [0, 1, -1])
        return ([rng.standard_normal(shape(rng, 2))], lambda t: getattr(t, method)(axis),
                lambda t: getattr(_torch()[1], method)(t, dim=axis))
    return case


def _getitem(rng):
    """Basic and advanced indexing (repeated rows accumulate their gradients), times the input: a product of two
    uses of x, so its second derivative is not 0."""
    index = pick(rng, [(slice(1, 3),), (np.array([0, 2, 0, 1]),), (1, slice(None, None, 2)), (Ellipsis, 0),
                       (np.array([[True, False, True], [False, True, True], [True, True, False],
                                  [False, False, True]]),)])

    def theirs(t):
        torch, _ = _torch()
        return t[tuple(torch.tensor(i) if isinstance(i, np.ndarray) else i for i in index)] ** 2
    return [rng.standard_normal((4, 3))], lambda t: t[index] ** 2, theirs


def _concatenate(rng):
    axis = int(rng.integers(2))
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((2, 3) if axis else (1, 3))
    return ([a, b], lambda a, b: Tensor.concatenate([a, b, a], axis=axis),
            lambda a, b: _torch()[0].cat([a, b, a], dim=axis))


def _stack(rng):
    axis = int(rng.integers(3))
    return ([rng.standard_normal((2, 3)), rng.standard_normal((2, 3))], lambda a, b: Tensor.stack([a, b, b], axis=axis),
            lambda a, b: _torch()[0].stack([a, b, b], dim=axis))


def _pads(rng):
    return pick(rng, [0, 1, ((1, 0), (0, 2)), ((0, 2), (1, 1))])


def _torch_pads(pad):
    """Our pad (int or ((top, bottom), (left, right))) as TF.pad's (left, right, top, bottom)."""
    (top, bottom), (left, right) = ((pad, pad), (pad, pad)) if isinstance(pad, int) else pad
    return left, right, top, bottom


def _conv2d(rng, **fixed):
    """fixed: hyper-parameters to use instead of the drawn ones (drawn all the same, so a seed's draws stay)."""
    drawn = {"groups": pick(rng, [1, 2]), "stride": pick(rng, [1, 2, (2, 1)]), "dilation": pick(rng, [1, 2, (1, 2)]),
             "pad": _pads(rng), "n_C": pick(rng, [2, 4]), "f": (int(rng.integers(1, 3)), int(rng.integers(1, 4)))}
    groups, stride, dilation, pad, n_C, f = (drawn | fixed).values()
    C = 2 * groups
    x = rng.standard_normal((2, 5, 6, C))
    W, b = rng.standard_normal((*f, C // groups, n_C)), rng.standard_normal(n_C)

    def theirs(x, W, b):
        _, TF = _torch()
        xp = TF.pad(nchw(x), _torch_pads(pad))
        return nhwc(TF.conv2d(xp, W.permute(3, 2, 0, 1), b, stride=stride, dilation=dilation, groups=groups))
    return ([x, W, b], lambda x, W, b: x.conv2d(W, b, stride=stride, pad=pad, dilation=dilation, groups=groups),
            theirs)


def _conv_transpose2d(rng, **fixed):
    drawn = {"groups": pick(rng, [1, 2]), "stride": pick(rng, [1, 2, (2, 1)]), "dilation": pick(rng, [1, 2]),
             "pad": pick(rng, [0, 1])}
    groups, stride, dilation, pad = (drawn | fixed).values()
    s = stride if isinstance(stride, tuple) else (stride, stride)
    output_padding = tuple(int(rng.integers(0, k)) for k in s)
    x, W, b = rng.standard_normal((2, 3, 3, 4)), rng.standard_normal((2, 3, 4 // groups, 4)), rng.standard_normal(4)

    def ours(x, W, b):
        return x.conv_transpose2d(W, b, stride=stride, pad=pad, output_padding=output_padding, dilation=dilation,
                                  groups=groups)

    def theirs(x, W, b):
        return nhwc(_torch()[1].conv_transpose2d(nchw(x), W.permute(3, 2, 0, 1), b, stride=stride, padding=pad,
                                                 output_padding=output_padding, dilation=dilation, groups=groups))
    return [x, W, b], ours, theirs


def _pad2d(rng):
    pad, value = _pads(rng), pick(rng, [0.0, 0.5])
    return ([rng.standard_normal((2, 3, 2, 2))], lambda x: x.pad2d(pad, value=value),
            lambda x: nhwc(_torch()[1].pad(nchw(x), _torch_pads(pad), value=value)))


def _pool_args(rng):
    return pick(rng, [(2, None), (3, 2), ((2, 3), (1, 2)), (2, 1)])


def _max_pool2d(rng):
    f, stride = _pool_args(rng)
    return ([rng.standard_normal((2, 5, 6, 2))], lambda x: x.max_pool2d(f, stride),
            lambda x: nhwc(_torch()[1].max_pool2d(nchw(x), f, stride)))


def _tied_image(rng):
    """An image of small ints: windows with several maxima, where the ties policy decides the gradient."""
    return rng.integers(0, 3, size=(2, 5, 6, 2)).astype(np.float64)


def _max_pool2d_ties(rng):
    """PyTorch's ties policy ("first") on tied windows. A max is not differentiable at a tie, so this case has no
    numerical check; the scatter and gather of every policy are checked numerically as max_pool2d_backward and
    max_pool2d_gather below, with the tied image a constant."""
    f, stride = _pool_args(rng)
    return ([_tied_image(rng)], lambda x: x.max_pool2d(f, stride, ties="first"),
            lambda x: nhwc(_torch()[1].max_pool2d(nchw(x), f, stride)))


def _max_pool2d_tied_copies(ties: str):
    return lambda rng: _max_pool2d_tied_copies_case(rng, ties)


def _max_pool2d_tied_copies_case(rng, ties: str):
    """Each entry of v repeated over a 2 x 2 block, then pooled: its copies tie in every window they share, and
    still tie when v moves (all copies move together), so the ties policy is checked numerically too. Squared, so
    the second derivative with respect to v goes through the recorded backward. PyTorch's policy is "first".
    "all" is not squared: it gives each of k tied copies the whole gradient, so its first gradient is k times the
    derivative (the notebook's mask), and the square's second derivative would apply that rule again (k * k)
    where central differences of the first gradient see k."""
    f, stride = _pool_args(rng)
    power = 1 if ties == "all" else 2

    def ours(v):
        copies = v.reshape(2, 3, 1, 3, 1, 2).broadcast_to(2, 3, 2, 3, 2, 2).reshape(2, 6, 6, 2)
        return copies.max_pool2d(f, stride, ties=ties) ** power

    def theirs(v):
        copies = v[:, :, None, :, None, :].expand(2, 3, 2, 3, 2, 2).reshape(2, 6, 6, 2)
        return nhwc(_torch()[1].max_pool2d(nchw(copies), f, stride)) ** power
    return [rng.standard_normal((2, 3, 3, 2))], ours, theirs if ties == "first" else None


def _avg_pool2d(rng):
    f, stride = _pool_args(rng)
    return ([rng.standard_normal((2, 5, 6, 2))], lambda x: x.avg_pool2d(f, stride),
            lambda x: nhwc(_torch()[1].avg_pool2d(nchw(x), f, stride)))


def torch_batch_norm(x, running_mean, running_var, gamma, beta, training: bool):
    """PyTorch's batch norm of NCHW x (the fused op); the third-order test swaps in batch_norm_from_primitives."""
    return _torch()[1].batch_norm(x, running_mean, running_var, gamma, beta, training=training)


def batch_norm_from_primitives(x, running_mean, running_var, gamma, beta, training: bool, eps: float = 1e-5):
    """The same batch norm made of PyTorch's elementary ops. The fused op's third derivatives in training are wrong
    (its double backward takes the batch statistics as constants: pytorch/pytorch#186256, torch 2.13 included)."""
    mean = x.mean((0, 2, 3), keepdim=True) if training else running_mean.view(1, -1, 1, 1)
    var = ((x - mean) ** 2).mean((0, 2, 3), keepdim=True) if training else running_var.view(1, -1, 1, 1)
    return (x - mean) / (var + eps).sqrt() * gamma.view(1, -1, 1, 1) + beta.view(1, -1, 1, 1)


def _batch_norm2d(training: bool):
    return lambda rng: _batch_norm2d_case(rng, training)


def _batch_norm2d_case(rng, training: bool):
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)

    def ours(x, gamma, beta):  # fresh copies each call: training updates the running statistics in place
        return x.batch_norm2d(gamma, beta, running_mean=mean.copy(), running_var=var.copy(), training=training)

    def theirs(x, gamma, beta):
        torch = _torch()[0]
        return nhwc(torch_batch_norm(nchw(x), torch.tensor(mean), torch.tensor(var), gamma, beta, training))
    return [rng.standard_normal((3, 2, 3, 3)) * 2 + 1, positive(rng, 3), rng.standard_normal(3)], ours, theirs


def _dropout(rng):
    seed, p = int(rng.integers(1000)), pick(rng, [0.3, 0.5])
    x = rng.standard_normal(shape(rng, 2))
    mask = F.dropout(np.ones_like(x), p, rng=seed).data
    return [x], lambda t: t.dropout(p, rng=seed), lambda t: t * _torch()[0].tensor(mask)


def _cross_entropy(rng):
    n, c = int(rng.integers(2, 5)), int(rng.integers(2, 5))
    targets = pick(rng, [rng.integers(0, c, size=n), rng.dirichlet(np.ones(c), size=n)])
    return ([rng.standard_normal((n, c)) * 2], lambda x: F.cross_entropy(x, targets),
            lambda x: _torch()[1].cross_entropy(x, _torch()[0].tensor(targets)))


def _mse_loss(rng):
    s = shape(rng, 2)
    return [rng.standard_normal(s), rng.standard_normal(s)], F.mse_loss, lambda a, b: _torch()[1].mse_loss(a, b)


def _conv_pool_norm_loss(rng):
    """conv -> relu -> max pool -> batch norm -> flatten -> matmul -> cross-entropy: a chain of the CNN ops."""
    labels = rng.integers(0, 3, size=3)
    stride, pad = pick(rng, [(1, 1), (2, 1), (1, 0)])

    def ours(x, W, b, gamma, beta, V):
        a = x.conv2d(W, b, stride=stride, pad=pad).tanh().max_pool2d(2).batch_norm2d(gamma, beta)
        return F.cross_entropy(a.flatten(1) @ V, labels)

    def theirs(x, W, b, gamma, beta, V):
        torch, TF = _torch()
        a = torch.tanh(TF.conv2d(nchw(x), W.permute(3, 2, 0, 1), b, stride=stride, padding=pad))
        a = torch_batch_norm(TF.max_pool2d(a, 2), None, None, gamma, beta, True)
        return TF.cross_entropy(nhwc(a).flatten(1) @ V, torch.tensor(labels))
    n = (6 + 2 * pad - 3) // stride + 1
    return ([rng.standard_normal((3, 6, 6, 2)), rng.standard_normal((3, 3, 2, 3)), rng.standard_normal(3),
             positive(rng, 3), rng.standard_normal(3), rng.standard_normal(((n // 2) ** 2 * 3, 3))], ours, theirs)


def _transpose_conv_pool_norm_loss(rng):
    """conv_transpose (stride 2) -> tanh -> conv (dilation 2, groups 2) -> avg pool -> batch norm (eval) -> dropout ->
    flatten -> matmul -> cross-entropy with probabilities: the other ops of a CNN, chained."""
    mean, var, targets = rng.standard_normal(4), rng.uniform(0.5, 2, 4), rng.dirichlet(np.ones(3), size=2)
    seed = int(rng.integers(1000))
    mask = F.dropout(np.ones((2, 2, 2, 4)), 0.5, rng=seed).data

    def ours(x, Wt, W, gamma, beta, V):
        a = x.conv_transpose2d(Wt, stride=2).tanh().conv2d(W, dilation=2, groups=2).avg_pool2d(2)
        a = a.batch_norm2d(gamma, beta, running_mean=mean.copy(), running_var=var.copy(), training=False)
        return F.cross_entropy(a.dropout(0.5, rng=seed).flatten(1) @ V, targets)

    def theirs(x, Wt, W, gamma, beta, V):
        torch, TF = _torch()
        a = torch.tanh(TF.conv_transpose2d(nchw(x), Wt.permute(3, 2, 0, 1), stride=2))
        a = TF.avg_pool2d(TF.conv2d(a, W.permute(3, 2, 0, 1), dilation=2, groups=2), 2)
        a = torch_batch_norm(a, torch.tensor(mean), torch.tensor(var), gamma, beta, False)
        return TF.cross_entropy((nhwc(a) * torch.tensor(mask)).flatten(1) @ V, torch.tensor(targets))
    return ([rng.standard_normal((2, 3, 3, 2)), rng.standard_normal((2, 2, 4, 2)), rng.standard_normal((2, 2, 2, 4)),
             positive(rng, 4), rng.standard_normal(4), rng.standard_normal((16, 3))], ours, theirs)


def _conv2d_weight_grad(rng):
    stride, pad, dilation = pick(rng, [1, 2]), pick(rng, [0, 1]), pick(rng, [1, 2])
    groups = pick(rng, [1, 2])
    n_H = (5 + 2 * pad - dilation * 1 - 1) // stride + 1
    n_W = (4 + 2 * pad - dilation * 2 - 1) // stride + 1
    return ([rng.standard_normal((2, 5, 4, 2)), rng.standard_normal((2, n_H, n_W, 4))],
            lambda x, dZ: x.conv2d_weight_grad(dZ, (2, 3), stride, pad, dilation, groups), None)


TIES = ("first", "split", "all")


def _max_pool2d_backward(rng):
    """Every ties policy, on a tied image: products of scatters, so the second derivative is not 0."""
    f, stride = _pool_args(rng)
    x = Tensor(_tied_image(rng))
    dA = rng.standard_normal(x.max_pool2d(f, stride).shape)

    def ours(dA):
        first, split, all_ = (dA.max_pool2d_backward(x, f, stride, ties) for ties in TIES)
        return first * split + all_ * all_
    return [dA], ours, None


def _max_pool2d_gather(rng):
    f, stride = _pool_args(rng)
    x = Tensor(_tied_image(rng))
    return [rng.standard_normal(x.shape)], lambda a: sum(a.max_pool2d_gather(x, f, stride, t) ** 2 for t in TIES), None


def _avg_pool2d_backward(rng):
    f, stride = _pool_args(rng)
    pooled = Tensor(np.zeros((2, 5, 6, 2))).avg_pool2d(f, stride).shape
    return [rng.standard_normal(pooled)], lambda dA: dA.avg_pool2d_backward((5, 6), f, stride), None


def _getitem_backward(rng):
    index = pick(rng, [(slice(1, 3),), (np.array([0, 2, 0, 1]),), (1,)])
    values = np.zeros((4, 3))[index]
    return [rng.standard_normal(values.shape)], lambda t: t.getitem_backward(index, (4, 3)), None


def _broadcast_to(rng):
    return ([rng.standard_normal((3, 1))], lambda t: t.broadcast_to(2, 3, 4),
            lambda t: t.broadcast_to(2, 3, 4))


def _astype(rng):
    return [rng.standard_normal((2, 3))], lambda t: t.astype(np.float32).astype(np.float64) * t, None


# gradgradcheck's options where the defaults do not fit: the float32 round trip moves x by up to 6e-8 relative, so
# its central differences need a larger step (the program is quadratic, so a large step is exact)
NUMERIC_OPTIONS = {"astype": {"eps": 1e-2}}
NOT_NUMERIC = {"max_pool2d ties first"}  # not differentiable at its ties (see _max_pool2d_ties)


def _torch_fn(name):
    return lambda *ts: getattr(_torch()[0], name)(*ts)


CASES = {
    "add": binary(lambda a, b: a + b, lambda a, b: a + b),
    "sub": binary(lambda a, b: a - b, lambda a, b: a - b),
    "mul": binary(lambda a, b: a * b, lambda a, b: a * b),
    "div": binary(lambda a, b: a / b, lambda a, b: a / b, positive_inputs=True),
    "pow": binary(lambda a, b: a ** b, lambda a, b: a ** b, positive_inputs=True),
    "maximum": binary(lambda a, b: a.maximum(b), _torch_fn("maximum")),
    "minimum": binary(lambda a, b: a.minimum(b), _torch_fn("minimum")),
    "neg": unary(lambda a: -a, lambda a: -a),
    "matmul": _matmul,
    "exp": unary(lambda a: a.exp(), _torch_fn("exp")),
    "log": unary(lambda a: a.log(), _torch_fn("log"), positive),
    "sqrt": unary(lambda a: a.sqrt(), _torch_fn("sqrt"), positive),
    "abs": unary(lambda a: a.abs() * a, lambda a: a.abs() * a),
    "clip": unary(lambda a: a.clip(-0.5, 0.7) * a, lambda a: a.clamp(-0.5, 0.7) * a),
    "relu": unary(lambda a: a.relu() * a, lambda a: _torch()[0].relu(a) * a),
    "leaky_relu": unary(lambda a: a.leaky_relu(0.2) * a, lambda a: _torch()[1].leaky_relu(a, 0.2) * a),
    "sigmoid": unary(lambda a: a.sigmoid(), _torch_fn("sigmoid")),
    "tanh": unary(lambda a: a.tanh(), _torch_fn("tanh")),
    "softmax": _softmax("softmax"),
    "log_softmax": _softmax("log_softmax"),
    "astype": _astype,
    "sum": _reduction("sum", "sum"),
    "mean": _reduction("mean", "mean"),
    "max": _reduction("max", "amax"),
    "min": _reduction("min", "amin"),
    "reshape": unary(lambda a: a.reshape(-1) * a.reshape(-1).exp(), lambda a: a.reshape(-1) * a.reshape(-1).exp()),
    "flatten": lambda rng: ([rng.standard_normal((2, 3, 2))], lambda a: a.flatten(1).tanh(),
                            lambda a: a.flatten(1).tanh()),
    "transpose": lambda rng: ([rng.standard_normal((2, 3, 4))], lambda a: a.transpose(2, 0, 1) * a.transpose(2, 0, 1),
                              lambda a: a.permute(2, 0, 1) * a.permute(2, 0, 1)),
    "getitem": _getitem,
    "concatenate": _concatenate,
    "stack": _stack,
    "broadcast_to": _broadcast_to,
    "pad2d": _pad2d,
    "conv2d": _conv2d,
    "conv2d strided, dilated, grouped": lambda rng: _conv2d(rng, groups=2, stride=(2, 1), dilation=(2, 2),
                                                            pad=((1, 0), (0, 2)), f=(2, 3)),
    "conv_transpose2d": _conv_transpose2d,
    "conv_transpose2d strided, dilated, grouped": lambda rng: _conv_transpose2d(rng, groups=2, stride=(2, 1),
                                                                                dilation=2, pad=1),
    "max_pool2d": _max_pool2d,
    "max_pool2d ties first": _max_pool2d_ties,
    "max_pool2d tied copies, first": _max_pool2d_tied_copies("first"),
    "max_pool2d tied copies, split": _max_pool2d_tied_copies("split"),
    "max_pool2d tied copies, all": _max_pool2d_tied_copies("all"),
    "avg_pool2d": _avg_pool2d,
    "batch_norm2d training": _batch_norm2d(True),
    "batch_norm2d eval": _batch_norm2d(False),
    "dropout": _dropout,
    "cross_entropy": _cross_entropy,
    "mse_loss": _mse_loss,
    "conv, pool, batch norm, cross-entropy": _conv_pool_norm_loss,
    "conv_transpose, dilated grouped conv, avg pool, batch norm eval, dropout, cross-entropy":
        _transpose_conv_pool_norm_loss,
    "conv2d_weight_grad": _conv2d_weight_grad,
    "max_pool2d_backward": _max_pool2d_backward,
    "max_pool2d_gather": _max_pool2d_gather,
    "avg_pool2d_backward": _avg_pool2d_backward,
    "getitem_backward": _getitem_backward,
}
