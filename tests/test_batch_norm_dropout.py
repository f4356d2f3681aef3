"""Batch norm and dropout: their kernels (kernels/norm.py, against reference.py's loops and central differences), the
running statistics over several steps, an empty batch, the argument checks, the Tensor ops batch_norm2d and dropout
(gradcheck, labels, errors) and against PyTorch.
"""

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tests.helpers import (
    SEEDS,
    TF,
    TORCH_TOL,
    assert_raises_naming,
    backprop,
    leaf,
    nchw,
    nchw_array,
    nhwc,
    numeric_grads,
    same_program,
    torch,
)
from tinygrad_cnn import Tensor, gradcheck, nn, no_grad, reference
from tinygrad_cnn.kernels import checks, norm

TOL = 1e-10


BN_SHAPES = [(2, 3, 4, 3), (1, 2, 2, 1), (4, 1, 1, 5), (3, 5, 2, 2)]


def bn_inputs(shape, seed=0, dtype=np.float64):
    """x (shape), gamma and beta (n_C,) in ``dtype``; running mean and variance (n_C,) in float64."""
    rng = np.random.default_rng(seed)
    n_C = shape[3]
    x = (rng.standard_normal(shape) * 3 + rng.standard_normal(n_C)).astype(dtype)
    gamma = rng.uniform(0.5, 2.0, n_C).astype(dtype)
    beta = rng.standard_normal(n_C).astype(dtype)
    return x, gamma, beta, rng.standard_normal(n_C), rng.uniform(0.5, 2.0, n_C)


# ----------------------------------------------------------------------------- batch norm's kernels
@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_reference(shape, training):
    x, gamma, beta, mean, var = bn_inputs(shape)
    out, saved, new_mean, new_var = norm.batch_norm_forward(x, gamma, beta, 1e-5, training, mean, var, 0.3)
    ref_out, ref_mean, ref_var = reference.batch_norm_forward(x, gamma, beta, 1e-5, training, mean, var, 0.3)
    np.testing.assert_allclose(out, ref_out, rtol=0, atol=TOL)
    np.testing.assert_allclose(new_mean, ref_mean, rtol=0, atol=TOL)
    np.testing.assert_allclose(new_var, ref_var, rtol=0, atol=TOL)
    if not training:
        assert new_mean is mean and new_var is var

    dout = np.random.default_rng(1).standard_normal(shape)
    grads = norm.batch_norm_backward(dout, saved)
    ref_grads = reference.batch_norm_backward(dout, x, gamma, 1e-5, training, mean, var)
    for got, want in zip(grads, ref_grads, strict=True):
        np.testing.assert_allclose(got, want, rtol=0, atol=TOL)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_backward_matches_central_differences(training):
    x, gamma, beta, mean, var = bn_inputs((2, 3, 2, 3), seed=4)
    out, saved, _, _ = norm.batch_norm_forward(x, gamma, beta, 1e-5, training, mean, var)
    dout = np.random.default_rng(2).standard_normal(out.shape)
    expected = numeric_grads(lambda *a: norm.batch_norm_forward(*a, 1e-5, training, mean, var)[0],
                             [x, gamma, beta], dout)
    for got, want in zip(norm.batch_norm_backward(dout, saved), expected, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_batch_norm_training_normalizes_each_channel():
    x, *_ = bn_inputs((4, 5, 6, 3), seed=2)
    out, *_ = norm.batch_norm_forward(x, np.ones(3), np.zeros(3), 0.0 + 1e-12, True)
    np.testing.assert_allclose(out.mean(axis=(0, 1, 2)), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=(0, 1, 2)), 1, atol=1e-9)


def test_batch_norm_running_statistics_after_several_steps():
    mean, var = np.zeros(3), np.ones(3)
    ref_mean, ref_var = mean, var
    for step in range(5):
        x, gamma, beta, *_ = bn_inputs((3, 4, 2, 3), seed=10 + step)
        _, _, mean, var = norm.batch_norm_forward(x, gamma, beta, 1e-5, True, mean, var, 0.1)
        _, ref_mean, ref_var = reference.batch_norm_forward(x, gamma, beta, 1e-5, True, ref_mean, ref_var, 0.1)
    np.testing.assert_allclose(mean, ref_mean, rtol=0, atol=TOL)
    np.testing.assert_allclose(var, ref_var, rtol=0, atol=TOL)
    # eval afterwards uses exactly those statistics
    x, gamma, beta, *_ = bn_inputs((2, 2, 2, 3), seed=99)
    out, *_ = norm.batch_norm_forward(x, gamma, beta, 1e-5, False, mean, var)
    np.testing.assert_allclose(out, gamma * (x - mean) / np.sqrt(var + 1e-5) + beta, rtol=0, atol=TOL)


def test_batch_norm_training_without_running_statistics():
    x, gamma, beta, *_ = bn_inputs((2, 3, 3, 2))
    out, _, mean, var = norm.batch_norm_forward(x, gamma, beta, 1e-5, True)
    assert mean is None and var is None
    np.testing.assert_allclose(out, reference.batch_norm_forward(x, gamma, beta, 1e-5, True)[0], rtol=0, atol=TOL)


def test_batch_norm_float32_keeps_dtype():
    x, gamma, beta, mean, var = bn_inputs((4, 5, 5, 3), dtype=np.float32)
    mean, var = mean.astype(np.float32), var.astype(np.float32)
    out, saved, new_mean, new_var = norm.batch_norm_forward(x, gamma, beta, 1e-5, True, mean, var)
    assert out.dtype == new_mean.dtype == new_var.dtype == np.float32
    assert all(g.dtype == np.float32 for g in norm.batch_norm_backward(np.ones_like(out), saved))
    ref_out = reference.batch_norm_forward(x, gamma, beta, 1e-5, True, mean, var)[0]
    np.testing.assert_allclose(out, ref_out, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------- dropout's mask
def test_dropout_mask_fraction_is_within_a_binomial_bound():
    n, p = 1_000_000, 0.3
    mask = norm.dropout_mask((100, 100, 100), p, np.random.default_rng(0))
    dropped = np.count_nonzero(mask == 0)
    assert abs(dropped - n * p) < 5 * np.sqrt(n * p * (1 - p))  # 5 standard deviations
    assert set(np.unique(mask)) == {0.0, 1 / (1 - p)}
    assert abs(mask.mean() - 1) < 0.01


def test_dropout_mask_is_reproducible_with_a_seed():
    a = norm.dropout_mask((4, 5, 6, 7), 0.5, 123)
    b = norm.dropout_mask((4, 5, 6, 7), 0.5, np.random.default_rng(123))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, norm.dropout_mask((4, 5, 6, 7), 0.5, 124))
    rng = np.random.default_rng(7)
    first, second = norm.dropout_mask(1000, 0.5, rng), norm.dropout_mask(1000, 0.5, rng)
    assert not np.array_equal(first, second)  # a Generator moves on


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dropout_mask_dtype_and_edge_probabilities(dtype):
    mask = norm.dropout_mask((3, 4), 0.25, 0, dtype)
    assert mask.dtype == dtype and mask.shape == (3, 4)
    np.testing.assert_array_equal(norm.dropout_mask((3, 4), 0, 0, dtype), np.ones((3, 4)))
    np.testing.assert_array_equal(norm.dropout_mask((3, 4), 1, 0, dtype), np.zeros((3, 4)))
    assert norm.dropout_mask((3, 4), 1.0, 0, dtype).dtype == dtype


# ----------------------------------------------------------------------------- the argument checks
def _z(*shape):
    return np.zeros(shape)


BAD_INPUTS = [
    # (call, exception type, words the message must contain)
    (lambda: checks.check_batch_norm_args(_z(2, 3, 3, 4), _z(3), _z(4), None, None, 1e-5, 0.1, True), ValueError,
     ["batch_norm2d", "gamma must be an array of shape (4,)", "x.shape=(2, 3, 3, 4)", "got (3,)"]),
    (lambda: checks.check_batch_norm_args(_z(2, 3, 3, 4), _z(4), [0.0] * 4, None, None, 1e-5, 0.1, True),
     ValueError, ["batch_norm2d", "beta must be an array of shape (4,)", "got list"]),
    (lambda: checks.check_batch_norm_args(_z(2, 3, 3, 4), _z(4), _z(4), None, None, 1e-5, 0.1, False), ValueError,
     ["batch_norm2d", "running_mean must be an array of shape (4,)", "eval mode needs the running statistics"]),
    (lambda: checks.check_batch_norm_args(_z(2, 3, 3, 4), _z(4), _z(4), _z(4), _z(2), 1e-5, 0.1, True), ValueError,
     ["batch_norm2d", "running_var must be an array of shape (4,)", "got (2,)"]),
    (lambda: checks.check_batch_norm_args(_z(2, 3, 3, 4), _z(4), _z(4), _z(4), None, 1e-5, 0.1, True), ValueError,
     ["batch_norm2d", "both running_mean and running_var or neither"]),
    (lambda: checks.check_batch_norm_args(_z(2, 3, 3, 4), _z(4), _z(4), None, None, 0.0, 0.1, True), ValueError,
     ["batch_norm2d", "eps must be a number > 0", "0.0"]),
    (lambda: checks.check_batch_norm_args(_z(2, 3, 3, 4), _z(4), _z(4), None, None, 1e-5, 1.5, True), ValueError,
     ["batch_norm2d", "momentum must be a number in [0, 1]", "1.5"]),
    (lambda: checks.check_batch_norm_args(_z(2, 3, 3, 4), _z(4), _z(4), None, None, 1e-5, None, True), ValueError,
     ["batch_norm2d", "momentum", "None"]),
    (lambda: checks.check_batch_norm_args(_z(1, 1, 1, 4), _z(4), _z(4), None, None, 1e-5, 0.1, True), ValueError,
     ["batch_norm2d", "more than one value per channel", "(1, 1, 1, 4)"]),
    (lambda: checks.check_batch_norm_args(_z(3, 4), _z(4), _z(4), None, None, 1e-5, 0.1, True), ValueError,
     ["batch_norm2d", "4-D NHWC"]),
    (lambda: norm.dropout_mask((3,), 1.5, 0), ValueError, ["dropout", "p must be in [0, 1]", "1.5"]),
    (lambda: norm.dropout_mask((3,), -0.1, 0), ValueError, ["dropout", "p must be in [0, 1]", "-0.1"]),
    (lambda: norm.dropout_mask((3,), float("nan"), 0), ValueError, ["dropout", "p must be in [0, 1]", "nan"]),
    (lambda: norm.dropout_mask((3,), "0.5", 0), TypeError, ["dropout", "p must be a number", "'0.5'"]),
    (lambda: norm.dropout_mask((3,), True, 0), TypeError, ["dropout", "p must be a number", "True"]),
    (lambda: norm.dropout_mask((3,), 0.5, 0, np.int64), TypeError, ["dropout", "float32 or float64", "int64"]),
]


@pytest.mark.parametrize("call, error, words", BAD_INPUTS)
def test_bad_inputs_raise_with_a_message_naming_the_problem(call, error, words):
    assert_raises_naming(call, error, words)


def test_good_inputs_pass_the_checks():
    assert checks.check_batch_norm_args(_z(2, 3, 3, 4), _z(4), _z(4), _z(4), _z(4), 1e-5, 0.1, False) is None
    assert checks.check_batch_norm_args(_z(1, 1, 1, 4), _z(4), _z(4), _z(4), _z(4), 1e-5, 0, False) is None


# ----------------------------------------------------------------------------- batch_norm2d, the Tensor op
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batch_norm2d_output_and_gradients_match_the_loops(shape, training):
    x, gamma, beta, mean, var = bn_inputs(shape)
    tx, tg, tb = leaf(x), leaf(gamma), leaf(beta)
    running_mean, running_var = mean.copy(), var.copy()
    out = tx.batch_norm2d(tg, tb, running_mean=running_mean, running_var=running_var, training=training, momentum=0.2,
                          eps=1e-3)
    expected, new_mean, new_var = reference.batch_norm_forward(x, gamma, beta, 1e-3, training, mean, var, 0.2)
    np.testing.assert_allclose(out.data, expected, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(running_mean, new_mean, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(running_var, new_var, rtol=TOL, atol=TOL)
    g = backprop(out)
    dx, dgamma, dbeta = reference.batch_norm_backward(g, x, gamma, 1e-3, training, mean, var)
    for got, want in ((tx.grad, dx), (tg.grad, dgamma), (tb.grad, dbeta)):
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=TOL)


@pytest.mark.parametrize("training", [True, False])
def test_batch_norm2d_gradcheck(training):
    x, gamma, beta, mean, var = bn_inputs((2, 3, 2, 3), seed=1)
    assert gradcheck(lambda x, g, b: x.batch_norm2d(g, b, running_mean=mean, running_var=var, training=False)
                     if not training else x.batch_norm2d(g, b), leaf(x), leaf(gamma), leaf(beta))


def test_batch_norm2d_running_statistics_after_several_steps_match_the_loop():
    running_mean, running_var = np.zeros(3), np.ones(3)
    loop_mean, loop_var = np.zeros(3), np.ones(3)
    for step in range(5):
        x, gamma, beta, _, _ = bn_inputs((4, 3, 2, 3), seed=step)
        F.batch_norm2d(x, gamma, beta, running_mean=running_mean, running_var=running_var, momentum=0.3)
        _, loop_mean, loop_var = reference.batch_norm_forward(x, gamma, beta, 1e-5, True, loop_mean, loop_var, 0.3)
    np.testing.assert_allclose(running_mean, loop_mean, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(running_var, loop_var, rtol=TOL, atol=TOL)
    x, gamma, beta, _, _ = bn_inputs((2, 2, 2, 3), seed=9)
    before = running_mean.copy()
    with no_grad():
        out = F.batch_norm2d(x, gamma, beta, running_mean=running_mean, running_var=running_var, training=False)
    np.testing.assert_array_equal(running_mean, before)  # eval leaves them
    expected, _, _ = reference.batch_norm_forward(x, gamma, beta, 1e-5, False, loop_mean, loop_var)
    np.testing.assert_allclose(out.data, expected, rtol=TOL, atol=TOL)


def test_batch_norm2d_label_and_float32():
    x, gamma, beta, mean, var = (a.astype(np.float32) for a in bn_inputs((2, 2, 2, 3)))
    out = Tensor(x, requires_grad=True).batch_norm2d(gamma, beta, running_mean=mean, running_var=var, training=False,
                                                     eps=1e-3)
    assert out.dtype == np.float32 and out.op_label == "batch_norm2d training=False eps=0.001"
    assert Tensor(x, requires_grad=True).batch_norm2d(gamma, beta).op_label == "batch_norm2d"


@pytest.mark.parametrize("call, error, words", [
    (lambda x, g, b: x.batch_norm2d(g, b, training=False), ValueError, "eval mode needs the running statistics"),
    (lambda x, g, b: x.batch_norm2d(g[:2], b), ValueError, r"gamma must be an array of shape \(3,\)"),
    (lambda x, g, b: x.batch_norm2d(g, b, running_mean=np.zeros(3)), ValueError,
     "give both running_mean and running_var"),
    (lambda x, g, b: x.batch_norm2d(g, b, running_mean=np.zeros(3), running_var=np.ones(3), momentum=2), ValueError,
     "momentum must be"),
    (lambda x, g, b: x.batch_norm2d(g, b, eps=0), ValueError, "eps must be a number > 0"),
    (lambda x, g, b: x.batch_norm2d(g, b, running_mean=np.zeros(3, int), running_var=np.ones(3)), ValueError,
     "running_mean must be a writable float array"),
    (lambda x, g, b: x.batch_norm2d(g, b, running_mean=Tensor(np.zeros(3)).data, running_var=np.ones(3)), ValueError,
     "running_mean must be a writable float array"),
    (lambda x, g, b: x[:1, :1, :1].batch_norm2d(g, b), ValueError, "training needs more than one value"),
])
def test_batch_norm2d_errors(call, error, words):
    x, gamma, beta, _, _ = bn_inputs((2, 2, 2, 3))
    with pytest.raises(error, match=words):
        call(leaf(x), gamma, beta)


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


def test_an_empty_batch_matches_pytorch():
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


# ----------------------------------------------------------------------------- dropout, the Tensor op
def test_dropout_drops_a_binomial_fraction_and_scales_the_survivors():
    p, n = 0.3, 200_000
    out = Tensor(np.ones(n)).dropout(p, rng=0)
    dropped = np.count_nonzero(out.data == 0)
    assert abs(dropped - p * n) <= 5 * np.sqrt(n * p * (1 - p))  # 5 sigma
    np.testing.assert_allclose(out.data[out.data != 0], 1 / (1 - p))


def test_dropout_is_reproducible_with_a_seed_or_generator():
    x = np.arange(1.0, 101.0)
    np.testing.assert_array_equal(F.dropout(x, 0.5, rng=7).data, F.dropout(x, 0.5, rng=7).data)
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    first, second = F.dropout(x, 0.5, rng=a).data, F.dropout(x, 0.5, rng=a).data
    assert not np.array_equal(first, second)  # the generator moves on
    np.testing.assert_array_equal(F.dropout(x, 0.5, rng=b).data, first)


def test_dropout_eval_and_p_zero_are_the_identity():
    x = leaf(np.arange(6.0))
    assert x.dropout(0.5, training=False) is x and x.dropout(0.0) is x


def test_dropout_gradient_flows_only_through_kept_entries():
    x = leaf(np.arange(1.0, 1001.0))
    out = x.dropout(0.4, rng=1)
    assert out.op_label == "dropout p=0.4"
    g = backprop(out)
    kept = out.data != 0
    np.testing.assert_array_equal(x.grad[~kept], 0)
    np.testing.assert_allclose(x.grad[kept], g[kept] / 0.6)
    assert gradcheck(lambda x: x.dropout(0.5, rng=2), leaf(np.random.default_rng(0).standard_normal((3, 4))))


def test_dropout_p_one_drops_everything():
    x = leaf(np.ones((2, 3)))
    out = x.dropout(1.0)
    backprop(out)
    np.testing.assert_array_equal(out.data, 0)
    np.testing.assert_array_equal(x.grad, 0)


@pytest.mark.parametrize("p, training, error, words", [
    (1.5, True, ValueError, r"p must be in \[0, 1\]"), (-0.1, False, ValueError, r"p must be in \[0, 1\]"),
    ("0.5", True, TypeError, "p must be a number"),
])
def test_dropout_errors(p, training, error, words):
    with pytest.raises(error, match=words):
        leaf(np.ones(3)).dropout(p, training=training)


# ----------------------------------------------------------------------------- against PyTorch
@pytest.mark.parametrize("training", [True, False])
def test_batch_norm_matches_torch(training):
    torch = pytest.importorskip("torch")
    x, gamma, beta, mean, var = bn_inputs((4, 3, 5, 3), seed=8)
    out, saved, new_mean, new_var = norm.batch_norm_forward(x, gamma, beta, 1e-5, training, mean, var, 0.2)
    dout = np.random.default_rng(3).standard_normal(out.shape)
    t_mean, t_var = torch.tensor(mean), torch.tensor(var)
    tx = torch.tensor(nchw_array(x), requires_grad=True)
    tg, tb = torch.tensor(gamma, requires_grad=True), torch.tensor(beta, requires_grad=True)
    t_out = torch.nn.functional.batch_norm(tx, t_mean, t_var, tg, tb, training, 0.2, 1e-5)
    t_out.backward(torch.tensor(nchw_array(dout)))
    np.testing.assert_allclose(out, t_out.detach().numpy().transpose(0, 2, 3, 1), rtol=0, atol=TOL)
    np.testing.assert_allclose(new_mean, t_mean.numpy(), rtol=0, atol=TOL)
    np.testing.assert_allclose(new_var, t_var.numpy(), rtol=0, atol=TOL)
    dx, dgamma, dbeta = norm.batch_norm_backward(dout, saved)
    np.testing.assert_allclose(dx, tx.grad.numpy().transpose(0, 2, 3, 1), rtol=0, atol=1e-9)
    np.testing.assert_allclose(dgamma, tg.grad.numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(dbeta, tb.grad.numpy(), rtol=0, atol=1e-9)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("seed", SEEDS)
def test_batch_norm2d_and_its_running_statistics_match_pytorch(training, seed):
    rng = np.random.default_rng(seed)
    mean, var = rng.standard_normal(3), rng.uniform(0.5, 2, 3)
    ours_stats, torch_stats = (mean.copy(), var.copy()), (torch.tensor(mean), torch.tensor(var))
    same_program(lambda x, g, b: x.batch_norm2d(g, b, running_mean=ours_stats[0], running_var=ours_stats[1],
                                                training=training, momentum=0.3),
                 lambda x, g, b: nhwc(TF.batch_norm(nchw(x), *torch_stats, g, b, training=training, momentum=0.3)),
                 rng.standard_normal((4, 3, 5, 3)) * 2 + 1, rng.uniform(0.5, 2, 3), rng.standard_normal(3),
                 seed=seed)
    for ours, theirs in zip(ours_stats, torch_stats, strict=True):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=TORCH_TOL, atol=TORCH_TOL)


def test_dropout_with_the_same_mask_is_torchs_and_eval_is_the_identity():
    x = np.random.default_rng(12).standard_normal((20, 30))
    mask = F.dropout(np.ones_like(x), 0.3, rng=5).data  # our mask: 0 or 1 / (1 - p)
    same_program(lambda x: x.dropout(0.3, rng=5), lambda x: x * torch.tensor(mask), x)
    t = torch.tensor(x)
    torch_dropped = TF.dropout(t, 0.3, training=True)  # torch's survivors are scaled as ours: x / (1 - p)
    np.testing.assert_allclose(torch_dropped[torch_dropped != 0].numpy(), (t[torch_dropped != 0] / 0.7).numpy())
    same_program(lambda x: x.dropout(0.3, training=False), lambda x: TF.dropout(x, 0.3, training=False), x)
