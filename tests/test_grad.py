"""grad() and backward(create_graph=True): what they return and fill, to any order, and the engine's rules in
the recording walk (hooks, version checks, detect_anomaly, threads, user ops, dtypes); a WGAN-GP step against
PyTorch; explain and draw on a second-order graph. The ops themselves are checked in tests/test_second_order.py.
"""

import copy
import threading

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tests.helpers import rand
from tinygrad_cnn import AnomalyError, Tensor, detect_anomaly, explain, grad, gradcheck, gradgradcheck, no_grad
from tinygrad_cnn.optim import Adam


# ----------------------------------------------------------------------------- grad()
def test_grad_returns_the_gradients_and_touches_no_grad():
    x, W = rand(2, 3, seed=0, name="x"), rand(3, 4, seed=1, name="W")
    h = (x @ W).tanh()
    loss = (h * h).sum()
    gx, gW = grad(loss, [x, W])
    assert x.grad is None and W.grad is None and h.grad is None
    assert not gx.requires_grad and gx.is_leaf and gx.dtype == x.dtype
    loss.backward()
    np.testing.assert_array_equal(gx.data, x.grad)
    np.testing.assert_array_equal(gW.data, W.grad)


def test_grad_of_an_interior_tensor_several_outputs_and_grad_outputs():
    x = rand(3, seed=2)
    h = x * x
    y1, y2 = h.exp(), h.sum()
    v = np.array([1.0, -2.0, 0.5])
    gh, = grad([y1, y2], h, grad_outputs=[v, None])
    np.testing.assert_allclose(gh.data, v * np.exp(h.data) + 1)
    gx, gx_again = grad(y2, [x, x])
    np.testing.assert_allclose(gx.data, 2 * x.data)
    np.testing.assert_array_equal(gx_again.data, gx.data)


def test_create_graph_gives_gradients_to_differentiate_again_to_any_order():
    x = rand(4, seed=3)
    y = x.tanh().sum()
    g1, = grad(y, x, create_graph=True)
    assert g1.requires_grad and g1.op is not None
    g2, = grad(g1.sum(), x, create_graph=True)
    g3, = grad(g2.sum(), x)
    t = np.tanh(x.data)
    np.testing.assert_allclose(g1.data, 1 - t ** 2)
    np.testing.assert_allclose(g2.data, -2 * t * (1 - t ** 2))
    np.testing.assert_allclose(g3.data, (-2 + 6 * t ** 2) * (1 - t ** 2))


def test_the_hessian_vector_product_of_a_quadratic_form_is_a_plus_a_transposed_times_v():
    A = np.random.default_rng(4).standard_normal((5, 5))
    x, v = rand(5, seed=5), np.random.default_rng(6).standard_normal(5)
    g, = grad(x @ (Tensor(A) @ x), x, create_graph=True)
    hv, = grad(g, x, grad_outputs=v)
    np.testing.assert_allclose(hv.data, (A + A.T) @ v)


def test_a_grad_outputs_tensor_that_requires_grad_is_part_of_the_graph():
    """grad of <J^T v, u> with respect to v is J u (the double-backward trick for a forward-mode product)."""
    x, v = rand(3, 2, seed=7), rand(3, 4, seed=8)
    W = Tensor(np.random.default_rng(9).standard_normal((2, 4)))
    u = np.random.default_rng(10).standard_normal((3, 2))
    gx, = grad(x @ W, x, grad_outputs=v, create_graph=True)
    jv, = grad((gx * u).sum(), v)
    np.testing.assert_allclose(jv.data, u @ W.data)


def test_unused_inputs_and_the_errors_of_grad():
    x, y, z = rand(2, seed=0, name="x"), rand(2, seed=1, name="y"), Tensor([1.0, 2.0], name="z")
    out = (x * 2).sum()
    assert grad(out, [x, y], allow_unused=True)[1] is None
    with pytest.raises(RuntimeError, match=r"grad: inputs\[1\] \('y'\) of shape \(2,\) was not used .* allow_unused"):
        grad(out, [x, y])
    with pytest.raises(RuntimeError, match=r"grad: inputs\[0\] \('z'\) does not require grad"):
        grad(out, z)
    with pytest.raises(RuntimeError, match=r"grad: outputs\[0\] does not require grad"):
        grad(z * 2, x)
    with pytest.raises(RuntimeError, match=r"grad: outputs\[0\]: grad can be implied only for a one-element tensor"):
        grad(x * 2, x)
    with pytest.raises(ValueError, match=r"grad: outputs\[0\]: grad has shape \(3,\) but the tensor has shape \(2,\)"):
        grad(x * 2, x, grad_outputs=np.ones(3))
    with pytest.raises(ValueError, match="grad: 2 grad_outputs for 1 outputs"):
        grad(out, x, grad_outputs=[None, None])
    with pytest.raises(TypeError, match=r"grad: inputs must be Tensors, inputs\[0\] is ndarray"):
        grad(out, [np.ones(2)])
    with pytest.raises(ValueError, match="grad: no inputs given"):
        grad(out, [])


# ----------------------------------------------------------------------------- backward(create_graph=True)
@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True:UserWarning")  # torch's, on the cycle
def test_backward_with_create_graph_leaves_grad_a_tensor_in_the_graph_and_accumulates_as_pytorch():
    torch = pytest.importorskip("torch")
    w0 = np.random.default_rng(11).standard_normal(3)
    w, tw = Tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    (w ** 3).sum().backward(create_graph=True)
    (tw ** 3).sum().backward(create_graph=True)
    assert w.grad.op is not None and w.grad.requires_grad
    (w.grad * w.grad).sum().backward()  # d/dw |3w^2|^2 = 36 w^3, added to .grad: a plain backward adds values
    (tw.grad * tw.grad).sum().backward()
    assert isinstance(w.grad, np.ndarray)
    np.testing.assert_allclose(w.grad, tw.grad.detach().numpy(), rtol=1e-12)
    (w ** 3).sum().backward(create_graph=True)  # onto an array: .grad becomes a Tensor again, array + g
    (tw ** 3).sum().backward(create_graph=True)
    assert isinstance(w.grad, Tensor)
    np.testing.assert_allclose(w.grad.data, tw.grad.detach().numpy(), rtol=1e-12)


def test_an_optimizer_steps_on_grads_left_by_create_graph_as_on_plain_ones():
    a, b = rand(3, seed=12), rand(3, seed=12)
    for p, create_graph in ((a, True), (b, False)):
        opt = Adam([p], lr=0.1)
        ((p * p).exp().sum()).backward(create_graph=create_graph)
        opt.step()
    np.testing.assert_array_equal(a.data, b.data)


def test_backward_with_create_graph_records_even_inside_no_grad():
    x = rand(2, seed=13)
    with no_grad():
        y = (x * x).sum()  # nothing recorded: a plain leaf
    assert not y.requires_grad
    y = (x * x).sum()
    with no_grad():
        y.backward(create_graph=True)
    assert x.grad.requires_grad
    second, = grad(x.grad.sum(), x)
    np.testing.assert_allclose(second.data, [2.0, 2.0])


def test_retain_graph_is_accepted_and_a_deepcopy_keeps_the_values_of_a_recorded_grad():
    x = rand(3, seed=27)
    y = (x * x).sum()
    g, = grad(y, x, retain_graph=True, create_graph=True)
    y.backward(retain_graph=True, create_graph=True)
    copied = copy.deepcopy(x)
    assert isinstance(copied.grad, np.ndarray)
    np.testing.assert_array_equal(copied.grad, x.grad.data)
    np.testing.assert_array_equal(g.data, x.grad.data)


# ----------------------------------------------------------------------------- the engine's rules, recording
def test_hooks_get_the_gradient_as_a_tensor_and_may_replace_it_in_the_graph():
    x = rand(3, seed=14)
    h = x * 2
    seen = []

    def hook(g):
        seen.append(g)
        return g * 3  # kept in the graph: the second derivative sees the factor 3
    h.register_hook(hook)
    g, = grad((h * h).sum(), x, create_graph=True)
    assert isinstance(seen[0], Tensor) and seen[0].requires_grad
    np.testing.assert_allclose(g.data, 3 * 2 * 2 * h.data)
    second, = grad(g.sum(), x)  # this walk passes through h too, so the hook triples it again: 3 * 24 (PyTorch's)
    np.testing.assert_allclose(second.data, [72.0, 72.0, 72.0])
    h.register_hook(lambda g: np.ones(2))
    with pytest.raises(RuntimeError, match=r"returned ndarray of shape \(2,\) .* has shape \(3,\)"):
        (h * h).sum().backward(create_graph=True)


def test_grad_runs_hooks_and_explain_does_not():
    x = rand(3, seed=15)
    h = x * 2
    calls = []
    h.register_hook(lambda g: calls.append(1))
    y = h.sum()
    grad(y, x)
    grad(y, x, create_graph=True)
    assert len(calls) == 2
    y.backward()
    explain(y, x, (0,), recompute=True)
    assert len(calls) == 3


def test_a_replaced_input_fails_the_recording_walk_before_any_grad_changes():
    x, W = rand(2, 3, seed=16), rand(3, 2, seed=17)
    loss = (x @ W).tanh().sum()
    W.data = W.data * 2
    with pytest.raises(RuntimeError, match="input 1 of 'matmul' had its .data replaced"):
        loss.backward(create_graph=True)
    with pytest.raises(RuntimeError, match="input 1 of 'matmul' had its .data replaced"):
        grad(loss, x, create_graph=True)
    assert x.grad is None and W.grad is None


def test_a_gradient_recorded_from_old_data_refuses_a_backward_after_the_step():
    W = rand(3, seed=18)
    (W ** 3).sum().backward(create_graph=True)
    penalty = (W.grad * W.grad).sum()
    W.data = W.data - 0.1
    with pytest.raises(RuntimeError, match="had its .data replaced after the op used it"):
        penalty.backward()


def test_detect_anomaly_names_the_backward_that_made_a_nan_in_the_recording_walk():
    x = Tensor([0.0, 1.0], requires_grad=True, name="x")
    with detect_anomaly():
        y = x.sqrt().sum()
        with pytest.raises(AnomalyError, match=r"in the backward of sqrt \(made at .*test_grad.py:\d+, recorded by "
                                               r"create_graph\): div made non-finite values from finite inputs"):
            grad(y, x, create_graph=True)


def test_threads_record_their_own_backward_and_share_a_parameter_safely():
    W = rand(4, seed=19)
    results, errors = {}, []

    def work(k):
        try:
            x = Tensor(np.full(4, float(k + 1)))
            g, = grad(((W * x) ** 2).sum(), W, create_graph=True)
            results[k] = grad(g.sum(), W)[0].data
            ((W * x) ** 2).sum().backward(create_graph=True)
        except Exception as e:  # noqa: BLE001 (reported below)
            errors.append(e)
    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for k in range(4):
        np.testing.assert_allclose(results[k], np.full(4, 2.0 * (k + 1) ** 2))
    np.testing.assert_allclose(W.grad.data, 2 * W.data * sum((k + 1) ** 2 for k in range(4)))


# ----------------------------------------------------------------------------- user ops, dtypes
def swish(x: Tensor, graph: bool = True) -> Tensor:
    """x * sigmoid(x), with its backward written on arrays and (graph) on Tensors."""
    s = 1 / (1 + np.exp(-x.data))
    out = x.data * s

    def backward(g):
        return (g * (s + out * (1 - s)),)

    def graph_backward(g):
        t = x.sigmoid()
        return (g * (t + x * t * (1 - t)),)
    return Tensor.from_op(out, (x,), "swish", backward, rule="da = g*(s + out*(1 - s))",
                          graph_backward=graph_backward if graph else None)


def test_a_user_op_with_a_graph_backward_has_gradients_of_every_order():
    x = Tensor(np.linspace(-2, 2, 5), requires_grad=True)
    assert gradcheck(swish, x) and gradgradcheck(swish, x)
    g, = grad(swish(x).sum(), x, create_graph=True)
    third, = grad(grad(g.sum(), x, create_graph=True)[0].sum(), x)
    s = 1 / (1 + np.exp(-x.data))
    ds = s * (1 - s)
    d3 = 3 * (ds * (1 - 2 * s)) + x.data * ds * (1 - 6 * s + 6 * s * s)  # (x s)''' = 3 s'' + x s'''
    np.testing.assert_allclose(third.data, d3)


def test_a_user_op_without_a_graph_backward_is_refused_by_name_before_anything_changes():
    x = rand(3, seed=20)
    loss = swish(x * 1.0, graph=False).sum()
    with pytest.raises(RuntimeError, match=r"backward\(create_graph=True\): the op 'swish' has only a numpy backward.*"
                                           r"graph_backward=fn"):
        loss.backward(create_graph=True)
    with pytest.raises(RuntimeError, match=r"grad\(create_graph=True\): the op 'swish' has only a numpy backward"):
        grad(loss, x, create_graph=True)
    assert x.grad is None
    loss.backward()  # a plain backward needs only the numpy one
    assert x.grad is not None
    with pytest.raises(TypeError, match="from_op: graph_backward of 'swish' must be callable"):
        Tensor.from_op(x.data, (x,), "swish", lambda g: (g,), rule="da = g", graph_backward=1)


def test_mixed_dtypes_record_a_cast_and_gradients_keep_each_input_dtype():
    W = Tensor(np.ones((3,), np.float32), requires_grad=True)
    x = Tensor(np.arange(3.0), requires_grad=True)  # float64: the product is float64
    g, = grad((W * x * x).sum(), W, create_graph=True)
    assert g.dtype == np.float32 and g.op == "astype"
    second, = grad(g.sum(), x)
    np.testing.assert_allclose(second.data, 2 * x.data)
    assert second.dtype == np.float64


# ----------------------------------------------------------------------------- a gradient penalty, explain, draw
def _critic_ours(x, W, b, V, c):
    return F.leaky_relu(x.conv2d(W, b, stride=2, pad=1), 0.2).max_pool2d(2).flatten(1) @ V + c


def test_a_wgan_gp_step_is_pytorchs():
    """loss = D(x_hat).mean() + 10 * (|dD/dx_hat| - 1)^2 over a conv critic, then two Adam steps: the same losses
    and weights as PyTorch in float64."""
    torch = pytest.importorskip("torch")
    TF = torch.nn.functional
    rng = np.random.default_rng(21)
    arrays = [rng.standard_normal(s) * 0.5 for s in ((3, 3, 1, 4), (4,), (16, 1), (1,))]
    ours = [Tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    opt, t_opt = Adam(ours, lr=0.01), torch.optim.Adam(theirs, lr=0.01)

    def critic_theirs(x, W, b, V, c):
        a = TF.leaky_relu(TF.conv2d(x.permute(0, 3, 1, 2), W.permute(3, 2, 0, 1), b, stride=2, padding=1), 0.2)
        return TF.max_pool2d(a, 2).permute(0, 2, 3, 1).flatten(1) @ V + c
    for step in range(2):
        real, fake = rng.standard_normal((2, 8, 8, 1)), rng.standard_normal((2, 8, 8, 1))
        mix = rng.uniform(size=(2, 1, 1, 1))
        x_hat = Tensor(mix * real + (1 - mix) * fake, requires_grad=True)
        d = _critic_ours(x_hat, *ours)
        g, = grad(d.sum(), x_hat, create_graph=True)
        loss = d.mean() + 10 * ((((g * g).sum(axis=(1, 2, 3)) + 1e-12).sqrt() - 1) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        t_x = torch.tensor(mix * real + (1 - mix) * fake, requires_grad=True)
        t_d = critic_theirs(t_x, *theirs)
        t_g, = torch.autograd.grad(t_d.sum(), t_x, create_graph=True)
        t_loss = t_d.mean() + 10 * ((((t_g * t_g).sum(dim=(1, 2, 3)) + 1e-12).sqrt() - 1) ** 2).mean()
        t_opt.zero_grad()
        t_loss.backward()
        t_opt.step()
        np.testing.assert_allclose(loss.item(), t_loss.item(), rtol=1e-9)
        for p, t in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-9, atol=1e-12, err_msg=f"step {step}")
            np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-9, atol=1e-12, err_msg=f"step {step}")


def test_explain_on_a_second_order_graph_sums_its_terms_to_the_entry():
    x, W = rand(1, 5, 5, 2, seed=22, name="x"), rand(3, 3, 2, 2, seed=23, name="W")
    loss = x.conv2d(W, pad=1).tanh().max_pool2d(2).sum()
    gW, = grad(loss, W, create_graph=True)
    penalty = (gW * gW).sum()
    penalty.backward()
    for t, index in ((x, (0, 2, 3, 1)), (W, (1, 2, 0, 1))):
        e = explain(penalty, t, index)
        assert abs(e.total - e.grad) <= 1e-10 * (sum(abs(term.value) for term in e.terms) + 1)
        assert e.grad == t.grad[index]
    ops = {c.out.op for c in explain(penalty, x, (0, 2, 3, 1)).consumers}
    assert {"conv2d", "conv2d_weight_grad"} <= ops  # x reaches the penalty through the recorded weight gradient


def test_explain_reads_grads_left_as_tensors_by_create_graph():
    x = rand(3, seed=24, name="x")
    y = (x * x).sum()
    y.backward(create_graph=True)
    e = explain(y, x, (1,))
    assert e.grad == pytest.approx(2 * x.data[1]) and e.total == pytest.approx(e.grad)


def test_the_drawing_of_a_conv_backward_shows_its_ops_and_rules():
    x, W = rand(1, 4, 4, 1, seed=25, name="A_prev"), rand(2, 2, 1, 2, seed=26, name="W")
    dx, dW = grad(x.conv2d(W, stride=2).sum(), [x, W], create_graph=True)
    source = (dx.sum() + dW.sum()).draw(show_rule=True).source
    for text in ("conv_transpose2d", "conv2d_weight_grad", "dA_prev = conv_transpose2d(dZ, g)"):
        assert text in source, text
