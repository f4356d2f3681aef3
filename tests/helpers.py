"""What the test modules share (no tests here): the repository's paths, tensors and arrays to test with, the check of
an error table, central differences on arrays, a layer's gradcheck, and the comparison with PyTorch.

PyTorch is optional: ``torch`` and ``TF`` below stand for ``torch`` and ``torch.nn.functional`` and import it at the
first attribute a test reads, so a test module imports without it and only its PyTorch tests skip.
"""

import importlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tinygrad_cnn import Tensor, gradcheck

ROOT = Path(__file__).resolve().parent.parent  # the repository
EXAMPLES = ROOT / "examples"


def load_file(path: Path, name: str):
    """The Python file at ``path`` (a tool or the benchmark, outside the package) imported as module ``name``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- tensors and arrays
def leaf(values, name=None) -> Tensor:
    """A float64 leaf that requires grad, holding ``values``."""
    return Tensor(np.asarray(values, np.float64), requires_grad=True, name=name)


def rand(*shape, seed=0, positive=False, requires_grad=True, name=None, dtype=None) -> Tensor:
    """A standard normal float64 tensor of ``shape`` (``positive``: |x| + 0.5), cast to ``dtype`` when given."""
    data = np.random.default_rng(seed).standard_normal(shape)
    if positive:
        data = np.abs(data) + 0.5
    return Tensor(data, requires_grad=requires_grad, name=name, dtype=dtype)


def random_images(shape, seed=0, dtype=np.float64) -> np.ndarray:
    """Standard normal images (m, n_H, n_W, n_C): a plain array."""
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def conv_arrays(case, x_shape, W_shape, b_size, dtype):
    """Standard normal x, W and b (None when b_size is None), seeded by the case."""
    rng = np.random.default_rng(len(str(case)))
    x = rng.standard_normal(x_shape).astype(dtype)
    W = rng.standard_normal(W_shape).astype(dtype)
    return x, W, None if b_size is None else rng.standard_normal(b_size).astype(dtype)


FAST_PATH_TOL = {np.float64: 1e-10, np.float32: 2e-4}  # float32: relative to the largest entry


def fast_path_arrays(x_shape, W_shape, bias, dtype, seed):
    """(x, W, b) standard normal in float64 (b None without bias), and the three in dtype."""
    rng = np.random.default_rng(seed)
    x, W = rng.standard_normal(x_shape), rng.standard_normal(W_shape)
    b = rng.standard_normal(W_shape[3]) if bias else None
    return x, W, b, [a if a is None else a.astype(dtype) for a in (x, W, b)]


def assert_close_to(actual, expected, dtype) -> None:
    """actual, of dtype, equals expected (computed in float64) to dtype's tolerance, relative to the largest entry."""
    assert actual.dtype == dtype
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=FAST_PATH_TOL[dtype] * scale)


def assert_conv2d_path_matches(kernel, args, dZ, float64_inputs, dtype) -> None:
    """kernels.conv.conv2d_forward(*args) runs ``kernel`` and, with its backward of dZ, equals reference.py's loops on
    the float64 inputs. args: (x, W, b, stride, pads[, dilation, groups]) in dtype."""
    from tinygrad_cnn import reference
    from tinygrad_cnn.kernels import conv

    geometry = args[3:]
    Z, saved = conv.conv2d_forward(*args)
    assert saved.path.forward is kernel
    assert_close_to(Z, reference.conv_forward(*float64_inputs, *geometry), dtype)
    grads = conv.conv2d_backward(dZ.astype(dtype), saved)
    for grad, expected in zip(grads, reference.conv_backward(dZ, *float64_inputs[:2], *geometry), strict=True):
        assert_close_to(grad, expected, dtype)


def backprop(out: Tensor, seed=0) -> np.ndarray:
    """Backward a random output gradient through ``out``; return that gradient."""
    g = np.random.default_rng(seed).standard_normal(out.shape)
    out.backward(g)
    return g


# ----------------------------------------------------------------------------- checks
def assert_raises_naming(call, error, words) -> None:
    """``call()`` raises ``error`` and its message holds every one of ``words`` (an error table's row)."""
    with pytest.raises(error) as info:
        call()
    for word in words:
        assert word in str(info.value), (word, str(info.value))


def assert_raises_recording_nothing(monkeypatch, call, error, words: str) -> None:
    """call(x, W), on x (2, 5, 5, 3) and W (3, 3, 3, 4), raises ``error`` whose message holds ``words``, before any
    op is recorded (Tensor.from_op is never reached)."""
    x, W = rand(2, 5, 5, 3, seed=0), rand(3, 3, 3, 4, seed=1)
    recorded = []
    real_from_op = Tensor.from_op
    monkeypatch.setattr(Tensor, "from_op", classmethod(
        lambda cls, *args, **kwargs: recorded.append(args[2]) or real_from_op(*args, **kwargs)))
    with pytest.raises(error) as info:
        call(x, W)
    assert words in str(info.value)
    assert recorded == []


def numeric_grads(fn, arrays, weights, eps=1e-6) -> list:
    """Central differences of sum(fn(*arrays) * weights) for every element of every array (float64)."""
    grads = []
    for k, a in enumerate(arrays):
        grad = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            values = []
            for step in (eps, -eps):
                moved = [x.copy() for x in arrays]
                moved[k][idx] += step
                values.append(np.sum(fn(*moved) * weights))
            grad[idx] = (values[0] - values[1]) / (2 * eps)
        grads.append(grad)
    return grads


def _set_param(module, dotted, value):
    *path, last = dotted.split(".")
    for part in path:
        module = getattr(module, part)
    setattr(module, last, value)


def gradcheck_layer(layer, x_shape, seed=0) -> bool:
    """gradcheck the layer with respect to its input and every parameter (swapped in as float64 inputs)."""
    rng = np.random.default_rng(seed)
    named = list(layer.named_parameters())
    x = Tensor(rng.standard_normal(x_shape), requires_grad=True, name="x")
    params = [Tensor(p.data, requires_grad=True, name=n) for n, p in named]

    def fn(x, *ps):
        for (n, _), p in zip(named, ps, strict=True):
            _set_param(layer, n, p)
        return layer(x)
    return gradcheck(fn, x, *params)


# ----------------------------------------------------------------------------- PyTorch, where it is installed
class OptionalTorch:
    """Stands for the module ``name`` (torch or one of its submodules): imports it at the first attribute a test
    reads, and skips that test when PyTorch is not installed."""

    def __init__(self, name: str):
        self._name = name

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        pytest.importorskip("torch")
        return getattr(importlib.import_module(self._name), attr)


torch = OptionalTorch("torch")
TF = OptionalTorch("torch.nn.functional")
SEEDS = [0, 1, 2]  # the random draws of each comparison with PyTorch
TORCH_TOL = 1e-9  # float64 against float64: our results and PyTorch's agree to this, relative and absolute


def same_program(ours, theirs, *arrays, seed=0):
    """ours(*Tensors) and theirs(*torch tensors) on the same float64 arrays; the same random gradient backpropagated
    through both: the outputs and every input's gradient agree to TORCH_TOL."""
    xs = [Tensor(np.asarray(a, np.float64), requires_grad=True) for a in arrays]
    ts = [torch.tensor(np.asarray(a, np.float64), requires_grad=True) for a in arrays]
    out, ref = ours(*xs), theirs(*ts)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=TORCH_TOL, atol=TORCH_TOL)
    g = np.random.default_rng(seed + 100).standard_normal(out.shape)
    out.backward(g)
    ref.backward(torch.tensor(g))
    for i, (x, t) in enumerate(zip(xs, ts, strict=True)):
        expected = np.zeros(x.shape) if t.grad is None else t.grad.numpy()
        got = np.zeros(x.shape) if x.grad is None else x.grad
        np.testing.assert_allclose(got, expected, rtol=TORCH_TOL, atol=TORCH_TOL, err_msg=f"gradient of input {i}")


def nchw(x):
    """An NHWC torch tensor as PyTorch's NCHW."""
    return x.permute(0, 3, 1, 2)


def nhwc(x):
    """An NCHW torch tensor back as NHWC."""
    return x.permute(0, 2, 3, 1)


def nchw_array(a: np.ndarray) -> np.ndarray:
    """An NHWC array as a contiguous NCHW one (PyTorch's layout)."""
    return np.ascontiguousarray(a.transpose(0, 3, 1, 2))


def random_shape(rng, ndim=None) -> tuple:
    """1 to 3 axes (or ``ndim``) of 1 to 4 entries each."""
    return tuple(int(n) for n in rng.integers(1, 5, size=ndim or int(rng.integers(1, 4))))


def broadcast_pair(rng) -> tuple:
    """Two shapes that broadcast: the second drops leading axes and has some axes set to 1."""
    a = random_shape(rng, int(rng.integers(1, 4)))
    b = tuple(1 if rng.random() < 0.3 else n for n in a[int(rng.integers(0, len(a))):])
    return (a, b) if rng.random() < 0.5 else (b, a)


def randn(rng, shape, positive=False) -> np.ndarray:
    """Standard normal values of ``shape`` (``positive``: |x| + 0.5)."""
    x = rng.standard_normal(shape)
    return np.abs(x) + 0.5 if positive else x


def assert_conv_matches_torch(torch_op, x, W, b, out, backward, saved):
    """torch_op(x, weight, bias) on NCHW copies gives our out, and its gradients ours (backward(dout, saved)).

    Both conv layouts map to PyTorch's weight by W.transpose(3, 2, 0, 1): (n_C, n_C_prev // groups, f_h, f_w) for
    conv2d, (n_C_in, n_C_out // groups, f_h, f_w) for conv_transpose2d.
    """
    dout = np.random.default_rng(1).standard_normal(out.shape)
    tx = torch.tensor(nchw_array(x), requires_grad=True)
    tW = torch.tensor(np.ascontiguousarray(W.transpose(3, 2, 0, 1)), requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    t_out = torch_op(tx, tW, tb)
    t_out.backward(torch.tensor(nchw_array(dout)))
    np.testing.assert_allclose(out, t_out.detach().numpy().transpose(0, 2, 3, 1), rtol=0, atol=1e-10)
    dx, dW, db = backward(dout, saved)
    np.testing.assert_allclose(dx, tx.grad.numpy().transpose(0, 2, 3, 1), rtol=0, atol=1e-10)
    np.testing.assert_allclose(dW, tW.grad.numpy().transpose(2, 3, 1, 0), rtol=0, atol=1e-10)
    if b is not None:
        np.testing.assert_allclose(db, tb.grad.numpy(), rtol=0, atol=1e-10)
