"""Gradients of gradients for every op: against PyTorch in float64 to 1e-9, and numerically (gradgradcheck).

Each case of tests/second_order_cases.py (random shapes and hyper-parameters per seed) runs as: out = program(x...),
w a random gradient at out (an input too, requiring grad), g = grad(sum(out * w), inputs, create_graph=True): the
first gradients, Tensors in a graph. Against PyTorch: g, and the gradients with respect to every input and w of
s = sum_i sum(g_i * u_i) + sum(g_0 ** 2) / 2 (a Hessian-vector product, and a function of a first gradient that is
not linear in it). Numerically: gradgradcheck (central differences of the first gradient), with no PyTorch.
Third order on a few ops and the chains: the same once more (against PyTorch, with its batch norm written out of
elementary ops, the fused one being wrong from the third order), and gradgradcheck of |dL/dx|^2.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.second_order_cases import CASES, NOT_NUMERIC, NUMERIC_OPTIONS
from tinygrad_cnn import Tensor, grad, gradgradcheck
from tinygrad_cnn.graph import topo_order
from tinygrad_cnn.ops.facts import REGISTRY

TOL = 1e-9
SEEDS = [0, 1, 2]


def _close(got, expected, what: str) -> None:
    """Equal to TOL relative to the largest entry (absolute TOL near 0)."""
    expected = np.zeros_like(got) if expected is None else expected
    scale = max(1.0, float(np.abs(expected).max(initial=0)))
    np.testing.assert_allclose(got, expected, rtol=TOL, atol=TOL * scale, err_msg=what)


def _ours(ours, arrays, w, us):
    xs = [Tensor(a, requires_grad=True) for a in arrays]
    tw = Tensor(w, requires_grad=True)
    gs = grad((ours(*xs) * tw).sum(), xs, create_graph=True, allow_unused=True)
    terms = [(g * u).sum() for g, u in zip(gs, us, strict=True) if g is not None]
    s = sum(terms, (gs[0] * gs[0]).sum() / 2)
    seconds = grad(s, [*xs, tw], allow_unused=True)
    return [None if g is None else g.data for g in gs], [None if g is None else g.data for g in seconds]


def _theirs(theirs, arrays, w, us):
    import torch
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    tw = torch.tensor(w, requires_grad=True)
    gs = torch.autograd.grad((theirs(*ts) * tw).sum(), ts, create_graph=True, allow_unused=True)
    terms = [(g * torch.tensor(u)).sum() for g, u in zip(gs, us, strict=True) if g is not None]
    s = sum(terms, (gs[0] * gs[0]).sum() / 2)
    seconds = torch.autograd.grad(s, [*ts, tw], allow_unused=True)
    return [None if g is None else g.detach().numpy() for g in gs], [None if g is None else g.numpy() for g in seconds]


def _inputs(name: str, seed: int):
    rng = np.random.default_rng(seed)
    arrays, ours, theirs = CASES[name](rng)
    w = rng.standard_normal(ours(*[Tensor(a) for a in arrays]).shape)
    us = [rng.standard_normal(a.shape) for a in arrays]
    return arrays, ours, theirs, w, us


def test_the_cases_record_every_op_the_library_declares():
    """A new op needs its rule on Tensors (the create_graph branch of its _backward) and a case here."""
    recorded = set()
    for name in CASES:
        arrays, ours, _ = CASES[name](np.random.default_rng(0))
        recorded |= {t.op for t in topo_order(ours(*[Tensor(a, requires_grad=True) for a in arrays])) if t.op}
    assert set(REGISTRY) <= recorded, f"no second-order case records {sorted(set(REGISTRY) - recorded)}"


TORCH_CASES = [name for name in CASES if CASES[name](np.random.default_rng(0))[2] is not None]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", TORCH_CASES)
def test_first_and_second_derivatives_are_pytorchs(name, seed):
    pytest.importorskip("torch")
    arrays, ours, theirs, w, us = _inputs(name, seed)
    (firsts, seconds), (t_firsts, t_seconds) = _ours(ours, arrays, w, us), _theirs(theirs, arrays, w, us)
    for i, (g, t) in enumerate(zip(firsts, t_firsts, strict=True)):
        _close(np.zeros(arrays[i].shape) if g is None else g, t, f"{name}: first gradient of input {i}")
    for i, (g, t) in enumerate(zip(seconds, t_seconds, strict=True)):
        shape = arrays[i].shape if i < len(arrays) else w.shape
        _close(np.zeros(shape) if g is None else g, t, f"{name}: second derivative, input {i} (the last: w)")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:conv2d. W of shape:UserWarning")  # drawn shapes that fit PyTorch's layout too
@pytest.mark.parametrize("name", ["conv2d", "conv_transpose2d"])
@settings(max_examples=5, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_the_conv_ops_on_more_drawn_hyper_parameters(name, seed):
    """Strides, pads, dilations, groups and windows drawn afresh (the cases draw them from the seed)."""
    test_first_and_second_derivatives_are_pytorchs(name, seed)


@pytest.mark.parametrize("name", [name for name in CASES if name not in NOT_NUMERIC])
def test_second_order_gradcheck(name):
    arrays, ours, *_ = _inputs(name, seed=3)
    assert gradgradcheck(ours, *[Tensor(a, requires_grad=True) for a in arrays], **NUMERIC_OPTIONS.get(name, {}))


@pytest.mark.parametrize("ties", ["first", "split", "all"])
def test_at_tied_windows_the_recorded_max_pool_backward_keeps_the_ties_policy(ties):
    """Where a max is tied no numerical check applies (moving x breaks the tie): the first gradient recorded by
    create_graph is plain backward()'s, and its derivative with respect to the output gradient w is the Jacobian
    that plain backward() gives one output entry at a time. (The tied-copies cases check the policies numerically
    where the tie stays; there "first" and "split" agree, so this is what tells them apart.)"""
    x = Tensor(np.array([[2.0, 2, 1, 0], [2, 1, 2, 2], [0, 2, 2, 1], [1, 1, 0, 2]]).reshape(1, 4, 4, 1),
               requires_grad=True)
    rng = np.random.default_rng(4)
    w, u = Tensor(rng.standard_normal((1, 3, 3, 1)), requires_grad=True), rng.standard_normal(x.shape)
    g, = grad((x.max_pool2d(2, 1, ties=ties) * w).sum(), x, create_graph=True)
    assert g.op == "max_pool2d_backward"
    x.max_pool2d(2, 1, ties=ties).backward(w.data)
    np.testing.assert_array_equal(g.data, x.grad)
    rows = []
    for index in np.ndindex(w.shape):
        x.grad = None
        x.max_pool2d(2, 1, ties=ties).backward(np.eye(1, w.size, np.ravel_multi_index(index, w.shape)).reshape(w.shape))
        rows.append(np.sum(x.grad * u))
    dw, = grad((g * Tensor(u)).sum(), w)
    np.testing.assert_allclose(dw.data, np.reshape(rows, w.shape), rtol=1e-12)


# ----------------------------------------------------------------------------- third order
THIRD_ORDER = ["tanh", "sigmoid", "div", "pow", "softmax", "log_softmax", "cross_entropy",
               "conv2d strided, dilated, grouped", "conv_transpose2d strided, dilated, grouped",
               "max_pool2d tied copies, first", "batch_norm2d training", "batch_norm2d eval",
               "conv, pool, batch norm, cross-entropy",
               "conv_transpose, dilated grouped conv, avg pool, batch norm eval, dropout, cross-entropy"]
CHAINS = THIRD_ORDER[-2:]


def _third(grad_fn, lift, program, arrays, w, us, vs):
    """Third derivatives, with grad_fn(output, inputs, create_graph) -> gradients (None if unused) and lift(array,
    requires_grad) -> a tensor: g = grad(<program, w>), s = <g, u> + |g_0|^2 / 2, h = grad(s, inputs and w),
    returns grad(<h, v> + |h_0|^2 / 2, inputs and w)."""
    xs, tw = [lift(a, True) for a in arrays], lift(w, True)
    gs = grad_fn((program(*xs) * tw).sum(), xs, True)
    s = sum([(g * lift(u, False)).sum() for g, u in zip(gs, us, strict=True) if g is not None], (gs[0] ** 2).sum() / 2)
    hs = grad_fn(s, [*xs, tw], True)
    s = sum([(h * lift(v, False)).sum() for h, v in zip(hs, vs, strict=True) if h is not None], (hs[0] ** 2).sum() / 2)
    return grad_fn(s, [*xs, tw], False)


@pytest.mark.parametrize("name", THIRD_ORDER)
def test_third_derivatives_are_pytorchs(name, monkeypatch):
    torch = pytest.importorskip("torch")
    import tests.second_order_cases as cases
    monkeypatch.setattr(cases, "torch_batch_norm", cases.batch_norm_from_primitives)
    arrays, ours, theirs, w, us = _inputs(name, seed=0)
    vs = [np.random.default_rng(5).standard_normal(a.shape) for a in [*arrays, w]]
    got = _third(lambda o, i, c: grad(o, i, create_graph=c, allow_unused=True),
                 lambda a, r: Tensor(a, requires_grad=r), ours, arrays, w, us, vs)
    expected = _third(lambda o, i, c: torch.autograd.grad(o, i, create_graph=c, allow_unused=True),
                      lambda a, r: torch.tensor(a, requires_grad=r), theirs, arrays, w, us, vs)
    for i, (g, t) in enumerate(zip(got, expected, strict=True)):
        shape = (arrays + [w])[i].shape
        _close(np.zeros(shape) if g is None else g.data, None if t is None else t.numpy(),
               f"{name}: third derivative, input {i} (the last: w)")


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in CHAINS else n for n in THIRD_ORDER])
def test_third_order_gradcheck(name):
    """gradgradcheck of x -> |d<program(x), w>/dx|^2: second derivatives of a function of the first gradient, so
    the recorded backward of the recorded backward against central differences."""
    arrays, ours, _, w, _ = _inputs(name, seed=3)

    def squared_first_gradient(*xs):
        gs = grad((ours(*xs) * Tensor(w)).sum(), xs, create_graph=True, allow_unused=True)
        return sum(((g * g).sum() for g in gs[1:] if g is not None), (gs[0] * gs[0]).sum())
    assert gradgradcheck(squared_first_gradient, *[Tensor(a, requires_grad=True) for a in arrays])
