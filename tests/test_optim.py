"""The optimizers (optim/optimizers.py): SGD (momentum, nesterov, dampening, weight decay, PyTorch's positional order)
and Adam against updates worked out by hand and against PyTorch; parameters without a gradient skipped, buffers
never touched, tied weights stepped once; zero_grad; state_dict in PyTorch's layout; errors.
"""

import numpy as np
import pytest

from tests.helpers import random_images
from tinygrad_cnn import Tensor, nn, optim
from tinygrad_cnn.optim import SGD, Adam

GRADS = [np.array([1.0, -2.0]), np.array([0.5, 0.5]), np.array([-1.0, 4.0])]


def _run(opt_cls, grads=GRADS, w0=(1.0, 2.0), **hyper):
    """Apply one step per gradient in ``grads`` to a float64 parameter; return the values after each."""
    p = Tensor(np.array(w0), requires_grad=True)
    opt = opt_cls([p], **hyper)
    seen = []
    for g in grads:
        p.grad = g
        opt.step()
        seen.append(p.data.copy())
    return seen


# ----------------------------------------------------------------------------- SGD
def test_sgd_plain():
    # w = w - 0.1 g:  [1, 2] -> [0.9, 2.2] -> [0.85, 2.15] -> [0.95, 1.75]
    steps = _run(SGD, lr=0.1)
    np.testing.assert_allclose(steps, [[0.9, 2.2], [0.85, 2.15], [0.95, 1.75]], rtol=0, atol=1e-15)


def test_sgd_momentum():
    # buf = g1 = [1, -2]                          w = [1, 2] - 0.1 [1, -2]      = [0.9, 2.2]
    # buf = 0.9 [1, -2] + [0.5, 0.5] = [1.4, -1.3] w = [0.9, 2.2] - 0.1 buf     = [0.76, 2.33]
    # buf = 0.9 [1.4, -1.3] + [-1, 4] = [0.26, 2.83]  w = [0.76, 2.33] - 0.1 buf = [0.734, 2.047]
    steps = _run(SGD, lr=0.1, momentum=0.9)
    np.testing.assert_allclose(steps, [[0.9, 2.2], [0.76, 2.33], [0.734, 2.047]], rtol=0, atol=1e-12)


def test_sgd_nesterov():
    # buf as in test_sgd_momentum; step uses g + 0.9 buf:
    # [1, -2] + 0.9 [1, -2] = [1.9, -3.8]         w = [0.81, 2.38]
    # [0.5, 0.5] + 0.9 [1.4, -1.3] = [1.76, -0.67] w = [0.634, 2.447]
    # [-1, 4] + 0.9 [0.26, 2.83] = [-0.766, 6.547] w = [0.7106, 1.7923]
    steps = _run(SGD, lr=0.1, momentum=0.9, nesterov=True)
    np.testing.assert_allclose(steps, [[0.81, 2.38], [0.634, 2.447], [0.7106, 1.7923]], rtol=0, atol=1e-12)


def test_sgd_weight_decay():
    # g' = g + 0.5 w:  [1, -2] + [0.5, 1] = [1.5, -1]          w = [0.85, 2.1]
    #                  [0.5, 0.5] + [0.425, 1.05] = [0.925, 1.55] w = [0.7575, 1.945]
    steps = _run(SGD, grads=GRADS[:2], lr=0.1, weight_decay=0.5)
    np.testing.assert_allclose(steps, [[0.85, 2.1], [0.7575, 1.945]], rtol=0, atol=1e-12)


def test_sgd_positional_arguments_mean_what_they_mean_in_pytorch():
    """SGD(p, lr, momentum, dampening, weight_decay, nesterov), PyTorch's order: 1e-4 is the weight decay."""
    torch = pytest.importorskip("torch")
    w0 = np.random.default_rng(0).normal(size=(3, 2))
    ours = Tensor(w0, requires_grad=True)
    theirs = torch.tensor(w0, requires_grad=True)
    opt, topt = optim.SGD([ours], 0.1, 0.9, 0.25, 1e-4), torch.optim.SGD([theirs], 0.1, 0.9, 0.25, 1e-4)
    for step in range(4):
        g = np.random.default_rng(step).normal(size=(3, 2))
        ours.grad, theirs.grad = g.copy(), torch.tensor(g)
        opt.step()
        topt.step()
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert opt.dampening == 0.25 and opt.weight_decay == 1e-4 and not opt.nesterov
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0 and dampening = 0"):
        optim.SGD([ours], 0.1, 0.9, 0.5, 0.0, True)


# ----------------------------------------------------------------------------- Adam
def test_adam_first_step_moves_each_weight_by_lr():
    # t=1: m_hat = g, v_hat = g^2, so the step is lr * g / (|g| + eps) = lr * sign(g)
    (w1,) = _run(Adam, grads=[np.array([3.0, -1e-3])], lr=0.01, eps=1e-12)
    np.testing.assert_allclose(w1, [1.0 - 0.01, 2.0 + 0.01], rtol=0, atol=1e-9)


def test_adam_bias_correction_over_three_steps():
    """A scalar weight, betas (0.5, 0.75), lr 0.1, eps 0; gradients 1, 3, -2.

    t=1: m = 0.5,  v = 0.25;       m_hat = 0.5/0.5 = 1,          v_hat = 0.25/0.25 = 1      step 0.1
    t=2: m = 1.75, v = 2.4375;     m_hat = 1.75/0.75 = 7/3,       v_hat = 2.4375/0.4375 = 39/7
         step = 0.1 * (7/3) / sqrt(39/7)
    t=3: m = -0.125, v = 2.828125; m_hat = -0.125/0.875 = -1/7,  v_hat = 2.828125/0.578125 = 181/37
         step = 0.1 * (-1/7) / sqrt(181/37)
    """
    steps = _run(Adam, grads=[np.array([1.0]), np.array([3.0]), np.array([-2.0])], w0=(0.0,),
                 lr=0.1, betas=(0.5, 0.75), eps=0.0)
    w1 = -0.1
    w2 = w1 - 0.1 * (7 / 3) / np.sqrt(39 / 7)
    w3 = w2 - 0.1 * (-1 / 7) / np.sqrt(181 / 37)
    np.testing.assert_allclose(np.concatenate(steps), [w1, w2, w3], rtol=1e-14)


def test_adam_weight_decay_is_added_to_the_gradient():
    # g' = g + 0.1 w = 0 + 0.1 * 2 = 0.2 > 0: the first step is -lr, whatever the size of g'
    (w1,) = _run(Adam, grads=[np.array([0.0])], w0=(2.0,), lr=0.05, weight_decay=0.1)
    np.testing.assert_allclose(w1, [1.95], rtol=1e-6)


# ----------------------------------------------------------------------------- shared behaviour
@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9), lambda ps: Adam(ps)])
def test_params_without_grad_are_skipped(make):
    a = Tensor(np.ones(2, np.float32), requires_grad=True)
    b = Tensor(np.ones(3, np.float32), requires_grad=True)
    opt = make([a, b])
    a.grad = np.ones(2, np.float32)
    opt.step()
    assert not np.array_equal(a.data, np.ones(2)) and a.dtype == np.float32
    np.testing.assert_array_equal(b.data, np.ones(3))
    assert b._version == 0 and opt.state[1] == {}
    opt.zero_grad()
    assert a.grad is None and b.grad is None


def test_optimizers_never_touch_the_buffers():
    model = nn.Sequential(nn.Conv2d(2, 3, 3, seed=0), nn.BatchNorm2d(3))
    assert len(model.parameters()) == 4  # W, b, gamma, beta
    opt = optim.Adam(model.parameters(), lr=0.1)
    model(random_images((2, 5, 5, 2), dtype=np.float32)).sum().backward()
    before = {name: b.copy() for name, b in model.named_buffers()}
    opt.step()
    for name, b in model.named_buffers():
        np.testing.assert_array_equal(b, before[name])


def test_step_replaces_data_so_a_stale_graph_cannot_backward():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True, name="w")
    loss = (w * w).sum()
    loss.backward()
    SGD([w], lr=0.1).step()
    np.testing.assert_allclose(w.data, [0.8, 1.6])
    with pytest.raises(RuntimeError, match="had its .data replaced"):
        loss.backward()


def test_sgd_minimizes_a_quadratic():
    w = Tensor(np.array([3.0, -4.0]), requires_grad=True)
    opt = SGD([w], lr=0.1, momentum=0.5)
    for _ in range(60):
        opt.zero_grad()
        ((w - 1.0) ** 2).sum().backward()
        opt.step()
    np.testing.assert_allclose(w.data, [1.0, 1.0], atol=1e-4)


def test_tied_weights_are_stepped_once():
    """Two layers share one weight (issue 11): model.parameters() lists it once, so the optimizer takes
    it, and one step moves it by lr times the sum of both uses' gradients."""
    enc, dec = nn.Linear(2, 2, bias=False, seed=0), nn.Linear(2, 2, bias=False, seed=1)
    dec.W = enc.W
    model = nn.Sequential(enc=enc, dec=dec)
    assert model.parameters() == [enc.W]
    opt = SGD(model.parameters(), lr=0.5)
    w0 = enc.W.data.copy()
    model(Tensor(np.ones((1, 2), np.float32))).sum().backward()
    opt.step()
    # out = (x W) W summed: d/dW = x^T (1 W^T) + (x W)^T 1 -- both uses land in the one grad
    x, one = np.ones((1, 2)), np.ones((1, 2))
    grad = x.T @ (one @ w0.T) + (x @ w0).T @ one
    np.testing.assert_allclose(enc.W.data, w0 - 0.5 * grad, rtol=1e-6)


@pytest.mark.parametrize("owner", ["optimizer", "module"])
def test_zero_grad_takes_set_to_none_as_pytorch(owner):
    model = nn.Linear(3, 2, seed=0)
    opt = optim.SGD(model.parameters(), lr=0.1)
    target = opt if owner == "optimizer" else model
    model(Tensor.ones(1, 3)).sum().backward()
    target.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() and p.grad.shape == p.shape for p in model.parameters())
    target.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in model.parameters())
    model(Tensor.ones(1, 3)).sum().backward()
    target.zero_grad()
    assert all(p.grad is None for p in model.parameters())


# ----------------------------------------------------------------------------- state_dict
def test_optimizer_state_dict_has_pytorchs_layout():
    w = Tensor(np.ones((2, 2)), requires_grad=True)
    u = Tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([w, u], lr=0.1, momentum=0.9)
    assert opt.state_dict() == {"state": {}, "param_groups": [
        {"lr": 0.1, "momentum": 0.9, "dampening": 0.0, "weight_decay": 0.0, "nesterov": False, "params": [0, 1]}]}
    w.grad = np.ones((2, 2))
    opt.step()
    state = opt.state_dict()
    assert list(state["state"]) == [0] and state["state"][0]["momentum_buffer"].shape == (2, 2)
    state["state"][0]["momentum_buffer"][0, 0] = 99  # a copy: the optimizer's own is untouched
    assert opt.state[0]["momentum_buffer"][0, 0] == 1
    adam = optim.Adam([w], lr=0.5)
    w.grad = np.ones((2, 2))
    adam.step()
    assert set(adam.state_dict()["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update(state={0: {"exp_avg": np.zeros(2)}}), r"SGD.load_state_dict: the state of parameter 0 holds"),
    (lambda s: s["param_groups"][0].update(params=[0, 1, 2]), r"the saved state is for 3 parameters, this optimizer "
                                                                r"has 2"),
    (lambda s: s.update(state={0: {"momentum_buffer": np.zeros(3)}}), r"state 'momentum_buffer' of parameter 0 has "
                                                                       r"shape \(3,\), the parameter \(2, 2\)"),
    (lambda s: s["param_groups"][0].update(betas=(0.9, 0.99)), r"the group holds .*'betas'.* \(a state of another "
                                                                 r"optimizer\?\)"),
    (lambda s: s["param_groups"][0].update(lr=-1.0), r"SGD: lr must be >= 0"),
    (lambda s: s.pop("state"), r"expected a dict with keys 'param_groups' and 'state'"),
    (lambda s: s.update(state={5: {}}), r"state key 5 is not a parameter index in \[0, 2\)"),
])
def test_loading_a_wrong_optimizer_state_changes_nothing(change, message):
    w, u = Tensor(np.ones((2, 2)), requires_grad=True), Tensor(np.ones(3), requires_grad=True)
    opt = optim.SGD([w, u], lr=0.1, momentum=0.9)
    w.grad = np.ones((2, 2))
    opt.step()
    state = opt.state_dict()
    change(state)
    before = opt.state_dict()
    with pytest.raises(ValueError, match=message):
        opt.load_state_dict(state)
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    assert np.array_equal(after["state"][0]["momentum_buffer"], before["state"][0]["momentum_buffer"])


# ----------------------------------------------------------------------------- errors
P = Tensor(np.ones(1), requires_grad=True)


@pytest.mark.parametrize("make, error, words", [
    (lambda: SGD([P], lr=-0.1), ValueError, r"SGD: lr must be >= 0.0, got -0.1"),
    (lambda: SGD([P], lr="fast"), ValueError, r"SGD: lr must be a finite number, got 'fast'"),
    (lambda: SGD([P], lr=float("nan")), ValueError, r"SGD: lr must be a finite number, got nan"),
    (lambda: SGD([P], lr=0.1, momentum=-1), ValueError, r"SGD: momentum must be >= 0.0, got -1"),
    (lambda: SGD([P], lr=0.1, weight_decay=-1e-4), ValueError, r"SGD: weight_decay must be >= 0.0"),
    (lambda: SGD([P], lr=0.1, nesterov=True), ValueError, r"SGD: nesterov=True needs momentum > 0"),
    (lambda: Adam([P], lr=-1), ValueError, r"Adam: lr must be >= 0.0, got -1"),
    (lambda: Adam([P], betas=(0.9, 1.0)), ValueError, r"Adam: betas\[1\] must be >= 0.0, < 1.0, got 1.0"),
    (lambda: Adam([P], betas=(-0.1, 0.9)), ValueError, r"Adam: betas\[0\] must be >= 0.0, < 1.0, got -0.1"),
    (lambda: Adam([P], betas=0.9), ValueError, r"Adam: betas must be a pair \(beta1, beta2\), got 0.9"),
    (lambda: Adam([P], eps=-1e-8), ValueError, r"Adam: eps must be >= 0.0"),
    (lambda: Adam([P], weight_decay=-1), ValueError, r"Adam: weight_decay must be >= 0.0"),
    (lambda: Adam([]), ValueError, r"Adam: got an empty parameter list"),
    (lambda: SGD(P, lr=0.1), TypeError, r"SGD: params must be a list of Tensors .* got a single Tensor"),
    (lambda: SGD([P, np.ones(1)], lr=0.1), TypeError, r"SGD: params\[1\] must be a Tensor, got ndarray"),
    (lambda: Adam([P, P]), ValueError, r"Adam: a parameter appears more than once in params \(params\[0\] and "
     r"params\[1\] are the same Tensor\); pass each once \(model.parameters\(\) lists a tied weight once\)"),
    # issue 11: a Module, a non-iterable, a dict, a Module among the entries, a non-leaf
    (lambda: SGD(nn.Linear(2, 2), lr=0.1), TypeError,
     r"SGD: params must be an iterable of Tensors, got a Linear \(a Module\): pass model.parameters\(\)$"),
    (lambda: Adam(nn.Sequential(nn.ReLU())), TypeError,
     r"Adam: params must be an iterable of Tensors, got a Sequential \(a Module\): pass model.parameters\(\)$"),
    (lambda: SGD(3, lr=0.1), TypeError,
     r"SGD: params must be an iterable of Tensors \(e.g. model.parameters\(\)\), got int$"),
    (lambda: SGD({"w": P}, lr=0.1), TypeError,
     r"SGD: params must be an iterable of Tensors, got a dict: pass list\(d.values\(\)\) or model.parameters\(\)"),
    (lambda: SGD([P, nn.Linear(1, 1)], lr=0.1), TypeError,
     r"SGD: params\[1\] is a Linear \(a Module\), not a Tensor: pass model.parameters\(\)"),
    # PyTorch's parameter groups: one optimizer per group instead
    (lambda: SGD([{"params": [P]}, {"params": [P * 1], "lr": 0.01}], lr=0.1), TypeError,
     r"SGD: params\[0\] is a dict: parameter groups \(PyTorch's per-group options\) are not supported here; make "
     r"one optimizer per group, e.g. SGD\(model.fc.parameters\(\), lr=0.01\), and step each"),
    (lambda: SGD([P * 2], lr=0.1), ValueError,
     r"SGD: params\[0\] is not a leaf Tensor \(it is the result of 'mul'\); optimize the leaf Tensors it "
     r"was computed from"),
])
def test_bad_hyper_parameters(make, error, words):
    with pytest.raises(error, match=words):
        make()


@pytest.mark.parametrize("make", [lambda p: SGD(p, lr=0.1), lambda p: Adam(p)])
def test_param_groups_says_the_options_are_the_optimizers_attributes(make):
    """PyTorch's ``for g in opt.param_groups: g["lr"] = ...``: one group here, its options are attributes."""
    opt = make([Tensor(np.ones(1), requires_grad=True)])
    with pytest.raises(AttributeError, match=r"'(SGD|Adam)' object has no attribute 'param_groups': one group here, "
                                             r"its options are attributes: opt\.lr = 0\.01 \(an lr scheduler sets "
                                             r"opt\.lr\); state_dict\(\)\['param_groups'\] is PyTorch's layout"):
        opt.param_groups  # noqa: B018
