"""Pooling: max_pool2d (with its ties policies: first, split, all) and avg_pool2d, their kernels (kernels/pool.py,
against reference.py's loops on sampled grids), the argument checks, the Tensor ops (gradcheck, labels, NaN in a
window) and against PyTorch.
"""

import random

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tests.helpers import (
    SEEDS,
    TF,
    assert_raises_naming,
    assert_raises_recording_nothing,
    leaf,
    nchw,
    nhwc,
    rand,
    random_images,
    same_program,
)
from tinygrad_cnn import Tensor, gradcheck, reference
from tinygrad_cnn.kernels import checks, pool

TOL = 1e-10


# ----------------------------------------------------------------------------- the kernels against the loops
def _pool_grid(n_cases, seed=1):
    """Sampled pool configs: (m, n_H, n_W, C, f, stride); includes overlapping windows (stride < f)."""
    rng = random.Random(seed)
    cases = []
    for _ in range(n_cases):
        f = (rng.randint(1, 4), rng.randint(1, 4))
        stride = rng.choice([f, (rng.randint(1, 3), rng.randint(1, 3))])
        hw = tuple(k + rng.randint(0, 5) for k in f)
        cases.append((rng.randint(1, 3), *hw, rng.randint(1, 5), f, stride))
    return cases


@pytest.mark.parametrize("case", _pool_grid(80))
def test_max_pool_matches_reference_for_each_ties_policy(case):
    m, n_H, n_W, C, f, stride = case
    # few distinct values, so windows have tied maxima
    x = np.random.default_rng(len(str(case))).integers(0, 3, (m, n_H, n_W, C)).astype(np.float64)
    for ties in checks.TIES:
        out, saved = pool.max_pool_forward(x, f, stride, ties)
        np.testing.assert_array_equal(out, reference.pool_forward(x, f, stride, "max"))
        dout = np.random.default_rng(2).standard_normal(out.shape)
        np.testing.assert_allclose(pool.max_pool_backward(dout, saved),
                                   reference.pool_backward(dout, x, f, stride, "max", ties), rtol=0, atol=TOL)


@pytest.mark.parametrize("case", _pool_grid(80, seed=2))
def test_avg_pool_matches_reference(case):
    m, n_H, n_W, C, f, stride = case
    x = np.random.default_rng(len(str(case))).standard_normal((m, n_H, n_W, C))
    out, saved = pool.avg_pool_forward(x, f, stride)
    np.testing.assert_allclose(out, reference.pool_forward(x, f, stride, "average"), rtol=0, atol=TOL)
    dout = np.random.default_rng(3).standard_normal(out.shape)
    np.testing.assert_allclose(pool.avg_pool_backward(dout, saved),
                               reference.pool_backward(dout, x, f, stride, "average"), rtol=0, atol=TOL)


@pytest.mark.parametrize("ties, expected", [
    ("first", [[1.0, 0.0], [0.0, 0.0]]),
    ("split", [[0.25, 0.25], [0.25, 0.25]]),
    ("all", [[1.0, 1.0], [1.0, 1.0]]),
])
def test_max_pool_ties_on_a_constant_window(ties, expected):
    x = np.full((1, 2, 2, 1), 5.0)
    out, saved = pool.max_pool_forward(x, (2, 2), (2, 2), ties)
    dx = pool.max_pool_backward(np.ones_like(out), saved)
    np.testing.assert_array_equal(dx[0, :, :, 0], expected)


def test_max_pool_first_picks_row_major_first_max_in_overlapping_windows():
    x = np.array([[0, 2, 2], [2, 1, 0], [0, 0, 0]], dtype=np.float64)[None, :, :, None]
    out, saved = pool.max_pool_forward(x, (2, 2), (1, 1), "first")
    dx = pool.max_pool_backward(np.ones_like(out), saved)[0, :, :, 0]
    # windows: top-left -> (0, 1); top-right -> (0, 1); bottom-left -> (1, 0); bottom-right -> (1, 1)
    np.testing.assert_array_equal(dx, [[0, 2, 0], [1, 1, 0], [0, 0, 0]])
    assert dx.sum() == out.size  # "first" passes exactly the gradient it received


def test_max_pool_split_conserves_gradient_and_all_does_not():
    x = np.zeros((2, 4, 4, 3))
    for ties, total in [("split", 2 * 3 * 9), ("all", 2 * 3 * 9 * 4)]:
        out, saved = pool.max_pool_forward(x, (2, 2), (1, 1), ties)
        assert pool.max_pool_backward(np.ones_like(out), saved).sum() == pytest.approx(total)


def test_float32_keeps_dtype():
    x = random_images((2, 6, 6, 3), dtype=np.float32)
    for forward, backward in [(pool.max_pool_forward, pool.max_pool_backward),
                              (pool.avg_pool_forward, pool.avg_pool_backward)]:
        out, saved = forward(x, (3, 3), (2, 2))
        assert out.dtype == np.float32 and backward(np.ones_like(out), saved).dtype == np.float32


# ----------------------------------------------------------------------------- the argument checks
X = np.zeros((2, 5, 5, 3))


BAD_INPUTS = [
    # (call, exception type, words the message must contain)
    (lambda: checks.check_pool2d_args("max_pool2d", X, 6, None), ValueError,
     ["max_pool2d", "window 6x6 is larger than the padded input 5x5"]),
    (lambda: checks.check_pool2d_args("max_pool2d", X, 0, None), TypeError, ["max_pool2d", "f", "positive"]),
    (lambda: checks.check_pool2d_args("avg_pool2d", X, 2, False), TypeError, ["avg_pool2d", "stride"]),
    (lambda: checks.check_pool2d_args("max_pool2d", X, 2, 2, ties="last"), ValueError,
     ["max_pool2d", "unknown ties policy 'last'", "first"]),
    (lambda: checks.check_pool2d_args("avg_pool2d", np.zeros((5, 5)), 2, 2), ValueError, ["avg_pool2d", "4-D NHWC"]),
]


@pytest.mark.parametrize("call, error, words", BAD_INPUTS)
def test_bad_inputs_raise_with_a_message_naming_the_problem(call, error, words):
    assert_raises_naming(call, error, words)


def test_good_inputs_normalize():
    assert checks.check_pool2d_args("max_pool2d", X, (3, 2), None, "split") == ((3, 2), (3, 2))


# ----------------------------------------------------------------------------- the Tensor ops
@pytest.mark.parametrize("f, stride", [(2, None), (3, 2), ((2, 3), (1, 2)), (3, 1), (1, 1)])
def test_pools_gradcheck_and_reference(f, stride):
    x = rand(2, 5, 6, 2, seed=3)
    f_pair = checks.as_positive_pair("test", "f", f)
    s_pair = f_pair if stride is None else checks.as_positive_pair("test", "stride", stride)
    for op, mode in [(F.max_pool2d, "max"), (F.avg_pool2d, "average")]:
        out = op(x, f, stride)
        np.testing.assert_allclose(out.data, reference.pool_forward(x.data, f_pair, s_pair, mode), atol=1e-12)
        assert gradcheck(lambda t, op=op: op(t, f, stride), x)


@pytest.mark.parametrize("ties", checks.TIES)
def test_max_pool2d_ties_through_the_tensor_op(ties):
    data = np.random.default_rng(5).integers(0, 2, (2, 5, 5, 3)).astype(np.float64)
    x = Tensor(data, requires_grad=True)
    out = F.max_pool2d(x, 3, 2, ties=ties)
    g = np.random.default_rng(6).standard_normal(out.shape)
    out.backward(g)
    np.testing.assert_allclose(x.grad, reference.pool_backward(g, data, (3, 3), (2, 2), "max", ties), atol=1e-12)


def test_pool_labels_show_the_hyper_parameters():
    x = rand(2, 5, 7, 4, seed=0)
    assert F.max_pool2d(x, 3, 2).op_label == "max_pool2d f=3 stride=2"
    assert F.max_pool2d(x, 2, ties="split").op_label == "max_pool2d f=2 stride=2 ties=split"
    assert F.avg_pool2d(x, (2, 3)).op_label == "avg_pool2d f=(2, 3) stride=(2, 3)"


def test_functional_forms_are_the_methods():
    x = rand(1, 4, 4, 2, seed=9)
    np.testing.assert_array_equal(F.avg_pool2d(x.data, 2).data, x.avg_pool2d(2).data)  # arrays accepted
    np.testing.assert_array_equal(F.max_pool2d(x, 2, ties="split").data, x.max_pool2d(2).data)


@pytest.mark.parametrize("ties", ["first", "split", "all"])
def test_max_pool_window_holding_nan_has_nan_max_and_sends_its_gradient_there(ties):
    x = leaf(np.array([[1.0, 2.0, 7.0], [np.nan, 5.0, 3.0], [0.0, 1.0, 2.0]])[None, :, :, None])
    out = x.max_pool2d(2, stride=1, ties=ties)
    out.backward(np.array([[1.0, 10.0], [100.0, 1000.0]])[None, :, :, None])
    np.testing.assert_array_equal(out.data[0, :, :, 0], [[np.nan, 7.0], [np.nan, 5.0]])
    np.testing.assert_array_equal(x.grad[0, :, :, 0], [[0.0, 0.0, 10.0], [101.0, 1000.0, 0.0], [0.0, 0.0, 0.0]])


@pytest.mark.parametrize("ties, expected", [
    ("first", [[0.0, 1.0], [0.0, 0.0]]),   # the first NaN in row-major order (torch: the last one)
    ("split", [[0.0, 0.5], [0.5, 0.0]]),
    ("all", [[0.0, 1.0], [1.0, 0.0]]),
])
def test_max_pool_window_with_several_nans_follows_the_tie_policy(ties, expected):
    x = leaf(np.array([[1.0, np.nan], [np.nan, 5.0]])[None, :, :, None])
    out = x.max_pool2d(2, ties=ties)
    out.sum().backward()
    assert np.isnan(out.item())
    np.testing.assert_array_equal(x.grad[0, :, :, 0], expected)


BAD_CALLS = [
    (lambda x, W: F.max_pool2d(x, 9), ValueError, "window 9x9 is larger"),
    (lambda x, W: F.max_pool2d(x, 2, ties="random"), ValueError, "unknown ties policy"),
    (lambda x, W: F.avg_pool2d(x, 2, stride=True), TypeError, "avg_pool2d: stride"),
]


@pytest.mark.parametrize("call, error, words", BAD_CALLS)
def test_bad_inputs_raise_before_anything_is_recorded(monkeypatch, call, error, words):
    assert_raises_recording_nothing(monkeypatch, call, error, words)


# ----------------------------------------------------------------------------- against PyTorch (float64, 1e-9)
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("f, stride", [(2, None), (3, 2), ((2, 3), (1, 2)), (2, 1)])
def test_max_pool2d_matches_pytorch(f, stride, seed):
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
def test_avg_pool2d_matches_pytorch(f, stride, seed):
    rng = np.random.default_rng(seed)
    same_program(lambda x: F.avg_pool2d(x, f, stride), lambda x: nhwc(TF.avg_pool2d(nchw(x), f, stride)),
                 rng.standard_normal((2, 7, 8, 3)), seed=seed)
