"""Checkpoints (issue 21, items 4 and 5): save() of nested state (a model's and an optimizer's state dicts, a
scheduler's, numbers, tuples) is still a plain npz with no pickle and load() gives the same nesting back; training
3 steps, saving, loading into fresh objects and training 2 more equals 5 steps straight, bit for bit; optimizer
state_dict / load_state_dict; load names the file and the real problem."""

import io
import math
import zipfile

import numpy as np
import pytest

from tinygrad_cnn import Tensor, load, nn, optim, save
from tinygrad_cnn.functional import cross_entropy
from tinygrad_cnn.optim import lr_scheduler


def _model(seed):
    return nn.Sequential(nn.Conv2d(1, 3, 3, pad=1, seed=seed), nn.BatchNorm2d(3), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(3 * 3 * 3, 4, seed=seed + 1))


DATA = [(np.random.default_rng(s).standard_normal((8, 6, 6, 1)).astype(np.float32), np.arange(8) % 4)
        for s in range(5)]


def _train(model, opt, sched, steps):
    for x, y in steps:
        loss = cross_entropy(model(Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()


SETUPS = {
    "SGD momentum, StepLR": (lambda p: optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=1e-3),
                             lambda o: lr_scheduler.StepLR(o, step_size=2, gamma=0.5)),
    "SGD nesterov, MultiStepLR": (lambda p: optim.SGD(p, 0.05, 0.8, 0.0, 0.0, True),
                                  lambda o: lr_scheduler.MultiStepLR(o, [1, 3, 3], gamma=0.3)),
    "Adam, CosineAnnealingLR": (lambda p: optim.Adam(p, lr=0.01, betas=(0.8, 0.99), weight_decay=1e-4),
                                lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=3, eta_min=1e-4)),
    "Adam, ExponentialLR": (lambda p: optim.Adam(p, lr=0.01), lambda o: lr_scheduler.ExponentialLR(o, 0.9)),
}


@pytest.mark.parametrize("setup", sorted(SETUPS))
def test_resuming_from_a_checkpoint_equals_training_straight_bit_for_bit(setup, tmp_path):
    make_opt, make_sched = SETUPS[setup]
    straight = _model(0)
    opt = make_opt(straight.parameters())
    sched = make_sched(opt)
    _train(straight, opt, sched, DATA)

    first = _model(0)
    opt1 = make_opt(first.parameters())
    sched1 = make_sched(opt1)
    _train(first, opt1, sched1, DATA[:3])
    save({"model": first.state_dict(), "opt": opt1.state_dict(), "sched": sched1.state_dict(), "epoch": 3},
         tmp_path / "ckpt.npz")

    resumed = _model(7)  # other initial weights: everything must come from the file
    opt2 = make_opt(resumed.parameters())
    sched2 = make_sched(opt2)
    ckpt = load(tmp_path / "ckpt.npz")
    resumed.load_state_dict(ckpt["model"])
    opt2.load_state_dict(ckpt["opt"])
    sched2.load_state_dict(ckpt["sched"])
    assert ckpt["epoch"] == 3 and opt2.lr == opt1.lr
    _train(resumed, opt2, sched2, DATA[3:])

    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b), name
    assert opt2.lr == opt.lr and sched2.get_last_lr() == sched.get_last_lr() and sched2.last_epoch == 5
    for mine, theirs in zip(opt2.state, opt.state, strict=True):
        assert mine.keys() == theirs.keys()
        assert all(np.array_equal(mine[k], theirs[k]) for k in mine)


def test_nested_state_numbers_and_tuples_come_back_as_saved(tmp_path):
    model = _model(0)
    opt = optim.Adam(model.parameters(), lr=0.01)
    _train(model, opt, lr_scheduler.StepLR(opt, 1), DATA[:1])
    saved = {"model": model.state_dict(), "opt": opt.state_dict(), "epoch": 3, "betas": (0.9, (0.999, 1)),
             "lrs": [0.1, 1e-300, -0.0], "none": None, "run": "first try", "flags": {1: True, "1": False},
             "special": [math.inf, -math.inf], "count": np.int64(7), "half": np.float32(0.5), "empty": {},
             "third": 1 / 3}
    save(saved, tmp_path / "ckpt.npz")
    back = load(tmp_path / "ckpt.npz")
    assert back.keys() == saved.keys()
    assert back["epoch"] == 3 and type(back["epoch"]) is int
    assert back["betas"] == (0.9, (0.999, 1)) and type(back["betas"][1]) is tuple
    assert back["lrs"] == [0.1, 1e-300, -0.0] and math.copysign(1, back["lrs"][2]) == -1
    assert back["none"] is None and back["run"] == "first try" and back["flags"] == {1: True, "1": False}
    assert back["special"] == [math.inf, -math.inf] and back["third"] == 1 / 3 and back["empty"] == {}
    assert back["count"] == 7 and back["count"].dtype == np.int64 and back["half"].dtype == np.float32
    assert list(back["model"]) == list(saved["model"])
    assert all(np.array_equal(back["model"][k], v) and back["model"][k].dtype == v.dtype
               for k, v in saved["model"].items())
    assert back["opt"]["param_groups"] == saved["opt"]["param_groups"]
    assert sorted(back["opt"]["state"]) == sorted(saved["opt"]["state"]) == [0, 1, 2, 3, 4, 5]
    assert back["opt"]["state"][0]["step"] == 1
    assert np.array_equal(back["opt"]["state"][0]["exp_avg"], saved["opt"]["state"][0]["exp_avg"])


def test_a_checkpoint_is_still_a_plain_npz_without_pickle(tmp_path):
    model = _model(0)
    save({"model": model, "opt": optim.SGD(model.parameters(), lr=0.1), "epoch": 1}, tmp_path / "ckpt.npz")
    with zipfile.ZipFile(tmp_path / "ckpt.npz") as zf:
        assert all(name.endswith(".npy") for name in zf.namelist())
    with np.load(tmp_path / "ckpt.npz", allow_pickle=False) as npz:  # numpy reads it as it is
        assert "model/0.W" in npz.files and "__tree__" in npz.files
        assert npz["__tree__"].dtype.kind == "U" and '"epoch"' in str(npz["__tree__"])
        assert npz["model/0.W"].shape == (3, 3, 1, 3)
    assert set(load(tmp_path / "ckpt.npz")) == {"model", "opt", "epoch"}


def test_flat_files_keep_their_layout(tmp_path):
    model = _model(0)
    save(model, tmp_path / "w.npz")
    with zipfile.ZipFile(tmp_path / "w.npz") as zf:
        assert zf.namelist() == [f"{k}.npy" for k in model.state_dict()]
    assert list(load(tmp_path / "w.npz")) == list(model.state_dict())


# ----------------------------------------------------------------------------- optimizer state
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


# ----------------------------------------------------------------------------- load names the real problem
def _zip(path, members: dict):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _npy(arr, allow_pickle=False) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, arr, allow_pickle=allow_pickle)
    return buf.getvalue()


def test_a_member_that_is_not_npy_is_named(tmp_path):
    path = _zip(tmp_path / "notes.npz", {"w.npy": _npy(np.ones(2)), "notes.txt": b"hello"})
    with pytest.raises(ValueError, match=rf"load: '{path}', member 'notes.txt' is not an .npy array \(its name does "
                                         r"not end in .npy\)"):
        load(path)
    path = _zip(tmp_path / "fake.npz", {"w.npy": b"PK just text"})
    with pytest.raises(ValueError, match=r"member 'w.npy' is not an .npy array \(it does not start with the .npy "
                                         r"signature\)"):
        load(path)


def test_an_object_array_is_named_as_such_never_as_corrupt(tmp_path):
    obj = np.array([{"a": 1}, None], dtype=object)
    path = _zip(tmp_path / "obj.npz", {"w.npy": _npy(obj, allow_pickle=True)})
    with pytest.raises(ValueError, match=rf"load: '{path}', key 'w' holds an object array; it would need pickle"):
        load(path)
    lone = tmp_path / "obj.npy"
    np.save(lone, obj, allow_pickle=True)
    with pytest.raises(ValueError, match=rf"load: '{lone}' holds a single array \(an .npy file\)"):
        load(lone)


def test_a_header_too_large_is_named(tmp_path):
    wide = np.zeros(1, dtype=[(f"f{i}", "f8") for i in range(2000)])
    path = _zip(tmp_path / "wide.npz", {"w.npy": _npy(wide)})
    with pytest.raises(ValueError, match=rf"load: '{path}', key 'w': its .npy header is [\d,]+ bytes, more than "
                                         r"numpy reads safely without pickle \(10,000\)"):
        load(path)
