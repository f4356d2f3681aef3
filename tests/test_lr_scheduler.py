"""The learning rate schedulers (optim/lr_scheduler.py): StepLR, MultiStepLR, ExponentialLR and CosineAnnealingLR set
opt.lr as PyTorch's set a group's lr, step for step (compared with torch.optim.lr_scheduler over many steps); their
state round-trips; errors.
"""

import numpy as np
import pytest

from tinygrad_cnn import Tensor, optim
from tinygrad_cnn.optim import lr_scheduler

SCHEDULES = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("StepLR", dict(step_size=1, gamma=0.9)),
    ("MultiStepLR", dict(milestones=[5, 20, 20, 70], gamma=0.2)),
    ("ExponentialLR", dict(gamma=0.97)),
    ("CosineAnnealingLR", dict(T_max=10)),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.003)),
    ("CosineAnnealingLR", dict(T_max=1, eta_min=0.01)),
]


def _param():
    return Tensor(np.ones(2), requires_grad=True)


@pytest.mark.parametrize("name, kwargs", SCHEDULES, ids=[f"{n}-{k}" for n, k in SCHEDULES])
@pytest.mark.parametrize("make_opt", ["SGD", "Adam"])
def test_learning_rates_equal_pytorchs_step_for_step(name, kwargs, make_opt):
    torch = pytest.importorskip("torch")
    ours_opt = getattr(optim, make_opt)([_param()], lr=0.1)
    theirs_opt = getattr(torch.optim, make_opt)([torch.zeros(2, requires_grad=True)], lr=0.1)
    ours = getattr(lr_scheduler, name)(ours_opt, **kwargs)
    theirs = getattr(torch.optim.lr_scheduler, name)(theirs_opt, **kwargs)
    assert ours_opt.lr == theirs_opt.param_groups[0]["lr"] == 0.1
    for step in range(100):
        theirs_opt.step()  # PyTorch warns when its scheduler steps first
        ours.step()
        theirs.step()
        assert ours_opt.lr == theirs_opt.param_groups[0]["lr"], (step, ours_opt.lr)
        assert ours.get_last_lr() == theirs.get_last_lr() and ours.last_epoch == theirs.last_epoch


def test_a_second_scheduler_starts_from_the_initial_lr_as_pytorch():
    """PyTorch's base_lrs come from the group's initial_lr, set once by the first scheduler (and saved with the
    optimizer): a CosineAnnealingLR built after an ExponentialLR climbs back to 0.1, not to the lr of the moment."""
    torch = pytest.importorskip("torch")
    ours_opt = optim.SGD([_param()], lr=0.1)
    theirs_opt = torch.optim.SGD([torch.zeros(2, requires_grad=True)], lr=0.1)
    assert ours_opt.initial_lr is None and "initial_lr" not in ours_opt.state_dict()["param_groups"][0]
    ours, theirs = lr_scheduler.ExponentialLR(ours_opt, 0.5), torch.optim.lr_scheduler.ExponentialLR(theirs_opt, 0.5)
    for _ in range(3):
        theirs_opt.step()
        ours.step()
        theirs.step()
    ours = lr_scheduler.CosineAnnealingLR(ours_opt, 4)
    theirs = torch.optim.lr_scheduler.CosineAnnealingLR(theirs_opt, 4)
    assert ours.base_lrs == theirs.base_lrs == [0.1]
    for _ in range(12):
        theirs_opt.step()
        ours.step()
        theirs.step()
        assert ours_opt.lr == pytest.approx(theirs_opt.param_groups[0]["lr"], rel=1e-12)
    group = ours_opt.state_dict()["param_groups"][0]
    assert group["initial_lr"] == theirs_opt.state_dict()["param_groups"][0]["initial_lr"] == 0.1
    resumed = optim.SGD([_param()], lr=0.3)
    resumed.load_state_dict(ours_opt.state_dict())
    assert resumed.initial_lr == 0.1 and lr_scheduler.StepLR(resumed, 2).base_lrs == [0.1]
    with pytest.raises(ValueError, match="SGD: initial_lr must be a finite number"):
        resumed.load_state_dict({"state": {}, "param_groups": [{**group, "initial_lr": "x"}]})


def test_the_optimizer_uses_the_scheduled_rate():
    w = Tensor(np.zeros(1), requires_grad=True)
    opt = optim.SGD([w], lr=1.0)
    sched = lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    moves = []
    for _ in range(3):
        w.grad = np.ones(1)
        before = float(w.data[0])
        opt.step()
        sched.step()
        moves.append(before - float(w.data[0]))
    assert moves == [1.0, 0.5, 0.25]


def test_state_round_trips_and_resumes_the_same_sequence():
    opt = optim.SGD([_param()], lr=0.1)
    sched = lr_scheduler.CosineAnnealingLR(opt, T_max=6, eta_min=0.01)
    for _ in range(4):
        sched.step()
    state = sched.state_dict()
    assert state == {"last_epoch": 4, "_step_count": 5, "base_lrs": [0.1], "_last_lr": [opt.lr], "T_max": 6,
                     "eta_min": 0.01}
    other = optim.SGD([_param()], lr=0.1)
    resumed = lr_scheduler.CosineAnnealingLR(other, T_max=6, eta_min=0.01)
    other.lr = opt.lr  # the optimizer's own state_dict carries lr
    resumed.load_state_dict(state)
    for _ in range(10):
        sched.step()
        resumed.step()
        assert other.lr == opt.lr
    with pytest.raises(ValueError, match=r"StepLR.load_state_dict: expected the keys .*sched.state_dict\(\) of a "
                                         r"StepLR"):
        lr_scheduler.StepLR(other, 2).load_state_dict(state)


@pytest.mark.parametrize("call, error, message", [
    (lambda o: lr_scheduler.StepLR(o, 0), ValueError, r"StepLR: step_size must be a positive int, got 0"),
    (lambda o: lr_scheduler.StepLR(o, 2, gamma="x"), ValueError, r"StepLR: gamma must be a finite number"),
    (lambda o: lr_scheduler.MultiStepLR(o, 5), TypeError, r"MultiStepLR: milestones must be a list of epochs"),
    (lambda o: lr_scheduler.MultiStepLR(o, [0]), ValueError, r"a milestone must be a positive int"),
    (lambda o: lr_scheduler.CosineAnnealingLR(o, 0), ValueError, r"T_max must be a positive int"),
    (lambda o: lr_scheduler.ExponentialLR(o, 0.9, last_epoch=3), TypeError, r"ExponentialLR: last_epoch= "
     r"\(PyTorch's\) is not supported here: restore a scheduler with sched.load_state_dict"),
    (lambda o: lr_scheduler.StepLR([o], 2), TypeError, r"StepLR: optimizer must be an Optimizer"),
])
def test_errors_name_the_scheduler(call, error, message):
    with pytest.raises(error, match=message):
        call(optim.SGD([_param()], lr=0.1))
