"""The CNN Tensor ops: gradcheck on a sample of shapes, values against the loop reference, graph records."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_kernels import conv_grid, conv_inputs

import tinygrad_cnn.functional as cnn
from tinygrad_cnn import Tensor, gradcheck, no_grad, reference
from tinygrad_cnn.kernels import checks, pad
from tinygrad_cnn.ops import cnn as cnn_ops


def _tensor(shape, seed, requires_grad=True, dtype=np.float64):
    return Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=requires_grad, dtype=dtype)


@pytest.mark.parametrize("case", conv_grid(12, seed=3, max_f=3, max_extra=2, max_batch=2, max_channels=3))
def test_conv2d_gradcheck_and_reference(case):
    stride, pads = case[6], case[7]
    x, W, b = (None if a is None else Tensor(a, requires_grad=True) for a in conv_inputs(case, seed=0))
    out = cnn.conv2d(x, W, b, stride=stride, pad=pads)
    np.testing.assert_allclose(out.data, reference.conv_forward(x.data, W.data, None if b is None else b.data,
                                                                stride, pads), atol=1e-10)
    inputs = (x, W) if b is None else (x, W, b)
    assert gradcheck(lambda *t: cnn.conv2d(t[0], t[1], t[2] if len(t) > 2 else None, stride=stride, pad=pads),
                     *inputs)


@pytest.mark.parametrize("f, stride", [(2, None), (3, 2), ((2, 3), (1, 2)), (3, 1), (1, 1)])
def test_pools_gradcheck_and_reference(f, stride):
    x = _tensor((2, 5, 6, 2), 3)
    f_pair = checks.as_positive_pair("test", "f", f)
    s_pair = f_pair if stride is None else checks.as_positive_pair("test", "stride", stride)
    for op, mode in [(cnn.max_pool2d, "max"), (cnn.avg_pool2d, "average")]:
        out = op(x, f, stride)
        np.testing.assert_allclose(out.data, reference.pool_forward(x.data, f_pair, s_pair, mode), atol=1e-12)
        assert gradcheck(lambda t, op=op: op(t, f, stride), x)


def test_pad2d_gradcheck_and_values():
    x = _tensor((2, 3, 4, 2), 4)
    pads = ((1, 0), (2, 1))
    out = cnn.pad2d(x, pads, value=-1.0)
    assert out.shape == (2, 4, 7, 2) and out.data[0, 0, 0, 0] == -1.0
    np.testing.assert_array_equal(pad.unpad(out.data, pads), x.data)
    assert gradcheck(lambda t: cnn.pad2d(t, pads, value=2.0), x)


@pytest.mark.parametrize("ties", checks.TIES)
def test_max_pool2d_ties_through_the_tensor_op(ties):
    data = np.random.default_rng(5).integers(0, 2, (2, 5, 5, 3)).astype(np.float64)
    x = Tensor(data, requires_grad=True)
    out = cnn.max_pool2d(x, 3, 2, ties=ties)
    g = np.random.default_rng(6).standard_normal(out.shape)
    out.backward(g)
    np.testing.assert_allclose(x.grad, reference.pool_backward(g, data, (3, 3), (2, 2), "max", ties), atol=1e-12)


def test_same_padding_and_tensor_methods_agree():
    x, W = _tensor((2, 7, 8, 3), 7), _tensor((3, 3, 3, 4), 8)
    out = x.conv2d(W, stride=2, pad="same")
    assert out.shape == (2, 4, 4, 4)
    np.testing.assert_array_equal(out.data, cnn.conv2d(x, W, stride=2, pad="same").data)


def test_op_labels_show_the_hyper_parameters():
    x, W = _tensor((2, 5, 7, 4), 0), _tensor((3, 3, 4, 8), 1)
    assert cnn.conv2d(x, W, stride=2, pad=1).op_label == "conv2d stride=2 pad=1"
    assert cnn.conv2d(x, W, stride=(2, 1), pad=((1, 0), (1, 1))).op_label == \
        "conv2d stride=(2, 1) pad=((1, 0), (1, 1))"
    assert cnn.max_pool2d(x, 3, 2).op_label == "max_pool2d f=3 stride=2"
    assert cnn.max_pool2d(x, 2, ties="split").op_label == "max_pool2d f=2 stride=2 ties=split"
    assert cnn.avg_pool2d(x, (2, 3)).op_label == "avg_pool2d f=(2, 3) stride=(2, 3)"


def test_conv2d_skips_gradients_nobody_needs(monkeypatch):
    calls = []
    real_backward = cnn_ops.conv2d_backward

    def spy(dout, saved, **need):
        calls.append(need)
        return real_backward(dout, saved, **need)
    monkeypatch.setattr(cnn_ops, "conv2d_backward", spy)
    images = _tensor((2, 5, 5, 3), 0, requires_grad=False)
    W, b = _tensor((3, 3, 3, 4), 1), _tensor((4,), 2)
    out = cnn.conv2d(images, W, b, pad=1)
    out.backward(np.ones(out.shape))
    assert calls == [{"need_dx": False, "need_dW": True, "need_db": True}]
    assert images.grad is None and W.grad.shape == W.shape and b.grad.shape == (4,)
    np.testing.assert_allclose(b.grad, np.full(4, 2 * 5 * 5))


def test_a_plain_array_weight_is_a_constant():
    x = _tensor((1, 4, 4, 2), 0)
    out = cnn.conv2d(x, np.ones((2, 2, 2, 3)))
    out.backward(np.ones(out.shape))
    assert x.grad.shape == x.shape and out.parents[1].grad is None


def test_float32_stays_float32():
    x = _tensor((2, 6, 6, 3), 0, dtype=np.float32)
    W = _tensor((3, 3, 3, 4), 1, dtype=np.float32)
    y = cnn.avg_pool2d(cnn.max_pool2d(cnn.conv2d(cnn.pad2d(x, 1), W, pad=1), 2, 1), 2)
    assert y.dtype == np.float32
    y.backward(np.ones(y.shape, dtype=np.float32))
    assert x.grad.dtype == np.float32 and W.grad.dtype == np.float32


def test_no_grad_records_nothing():
    x, W = _tensor((1, 4, 4, 2), 0), _tensor((2, 2, 2, 3), 1)
    with no_grad():
        out = cnn.max_pool2d(cnn.conv2d(x, W), 2, 1)
    assert out.parents == () and out.op is None and not out.requires_grad


BAD_CALLS = [
    (lambda x, W: cnn.conv2d(x, Tensor(np.zeros((3, 3, 4, 8)))), ValueError, "x has 3 channels (axis 3)"),
    (lambda x, W: cnn.conv2d(x, W, Tensor(np.zeros(3))), ValueError, "b must have shape (4,)"),
    (lambda x, W: cnn.conv2d(x, W, stride=0), TypeError, "stride"),
    (lambda x, W: cnn.conv2d(x, W, pad=-1), ValueError, "pad must be >= 0"),
    (lambda x, W: cnn.max_pool2d(x, 9), ValueError, "window 9x9 is larger"),
    (lambda x, W: cnn.max_pool2d(x, 2, ties="random"), ValueError, "unknown ties policy"),
    (lambda x, W: cnn.avg_pool2d(x, 2, stride=True), TypeError, "avg_pool2d: stride"),
    (lambda x, W: cnn.pad2d(x, "same"), ValueError, "pad2d: unknown pad mode"),
    (lambda x, W: cnn.pad2d(x, 1, value="zero"), TypeError, "pad2d: value must be a real number"),
    (lambda x, W: cnn.conv2d(Tensor(np.zeros((5, 5, 3)), requires_grad=True), W), ValueError, "4-D NHWC"),
]


@pytest.mark.parametrize("call, error, words", BAD_CALLS)
def test_bad_inputs_raise_before_anything_is_recorded(monkeypatch, call, error, words):
    x, W = _tensor((2, 5, 5, 3), 0), _tensor((3, 3, 3, 4), 1)
    recorded = []
    real_from_op = Tensor.from_op
    monkeypatch.setattr(Tensor, "from_op", classmethod(
        lambda cls, *args, **kwargs: recorded.append(args[2]) or real_from_op(*args, **kwargs)))
    with pytest.raises(error, match=None) as info:
        call(x, W)
    assert words in str(info.value)
    assert recorded == []


@st.composite
def conv_pool_configs(draw):
    """Random (x shape, W shape, stride, pad, pool f, pool stride) whose windows fit."""
    f = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pad = draw(st.integers(0, 2))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    n_hw = [draw(st.integers(max(1, k - 2 * pad), k - 2 * pad + 4)) for k in f]
    out_hw = [(n + 2 * pad - k) // s + 1 for n, k, s in zip(n_hw, f, stride, strict=True)]
    pool_f = draw(st.integers(1, min(out_hw)))
    pool_stride = draw(st.one_of(st.none(), st.integers(1, 2)))
    channels = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    x_shape = (draw(st.integers(1, 2)), *n_hw, channels[0])
    return x_shape, (*f, *channels), stride, pad, pool_f, pool_stride


@settings(max_examples=25, deadline=None)
@given(config=conv_pool_configs(), seed=st.integers(0, 2**16), pool=st.sampled_from(["max", "avg"]))
def test_random_conv_relu_pool_chains_pass_gradcheck(config, seed, pool):
    x_shape, W_shape, stride, pad, pool_f, pool_stride = config
    rng = np.random.default_rng(seed)
    x = Tensor(rng.standard_normal(x_shape), requires_grad=True, name="x")
    W = Tensor(rng.standard_normal(W_shape), requires_grad=True, name="W")
    b = Tensor(rng.standard_normal(W_shape[3]), requires_grad=True, name="b")

    def net(x, W, b):
        z = cnn.conv2d(x, W, b, stride=stride, pad=pad).tanh()  # tanh: smooth, so no kinks for the differences
        return cnn.max_pool2d(z, pool_f, pool_stride) if pool == "max" else cnn.avg_pool2d(z, pool_f, pool_stride)
    assert gradcheck(net, x, W, b)


def test_functional_forms_are_the_methods():
    import tinygrad_cnn.functional as F
    x = _tensor((1, 4, 4, 2), 9)
    np.testing.assert_array_equal(F.pad2d(x, 1).data, x.pad2d(1).data)
    np.testing.assert_array_equal(F.avg_pool2d(x.data, 2).data, x.avg_pool2d(2).data)  # arrays accepted
    np.testing.assert_array_equal(F.max_pool2d(x, 2, ties="split").data, x.max_pool2d(2).data)


@pytest.mark.parametrize("pad", [((1, 2, 3), (0, 0)), (1.5, 1), ((1, 0), "a")])
def test_malformed_pad_pairs_are_named(pad):
    with pytest.raises(TypeError, match=r"conv2d: pad must be an int, \(p_h, p_w\) or \(\(top, bottom\)"):
        _tensor((1, 4, 4, 2), 0).conv2d(_tensor((2, 2, 2, 1), 1), pad=pad)
