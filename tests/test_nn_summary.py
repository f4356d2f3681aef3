"""model.summary (nn/module.py) and the call tracing it runs on (nn/tracing.py, which interop uses too): the table,
containers, tied and frozen weights, running statistics counted as non-trainable, eval mode without grad, the modes
restored, errors.
"""

import numpy as np
import pytest

import tinygrad_cnn
from tinygrad_cnn import Tensor, nn

SUMMARY = """\
Model: Sequential, input (2, 8, 8, 1) -> output (2, 3)
==============================================
Layer    Type             Output shape  Params
==============================================
conv1    Conv2d           (2, 8, 8, 4)      40
relu1    ReLU             (2, 8, 8, 4)       0
pool1    MaxPool2d        (2, 4, 4, 4)       0
block    Sequential       (2, 4, 4, 4)       0
block.0  Conv2d           (2, 4, 4, 4)     148
block.1  ReLU             (2, 4, 4, 4)       0
gap      GlobalAvgPool2d  (2, 4)             0
fc       Linear           (2, 3)            15
soft     Softmax          (2, 3)             0
==============================================
Total params: 203
Trainable params: 203
Non-trainable params: 0"""


def _summary_net():
    # conv1: 3*3*1*4 + 4 = 40;  block.0: 3*3*4*4 + 4 = 148;  fc: 4*3 + 3 = 15;  total 203
    return nn.Sequential(conv1=nn.Conv2d(1, 4, 3, pad=1, seed=0), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
                         block=nn.Sequential(nn.Conv2d(4, 4, 3, pad=1, seed=1), nn.ReLU()),
                         gap=nn.GlobalAvgPool2d(), fc=nn.Linear(4, 3, seed=2), soft=nn.Softmax())


def test_summary_table(capsys):
    model = _summary_net()
    assert model.summary((2, 8, 8, 1)) == SUMMARY
    assert capsys.readouterr().out == SUMMARY + "\n"
    assert nn.summary(model, [2, 8, 8, 1], print_fn=None) == SUMMARY
    assert capsys.readouterr().out == ""


def test_summary_of_containers_tied_and_frozen_weights():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = Tensor(np.ones(1), requires_grad=True)  # on the model itself: totals only
            self.blocks = nn.ModuleList([nn.Linear(3, 3, seed=0), nn.Linear(3, 3, bias=False, seed=1)])
            self.heads = nn.ModuleDict({"out": nn.Linear(3, 2, seed=2), "unused": nn.ReLU()})
            self.blocks[1].W = self.blocks[0].W  # tied: counted once, at blocks.0
            self.heads["out"].b.requires_grad = False

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return self.heads["out"](x) * self.scale

    lines = Net().summary((5, 3), print_fn=None).splitlines()
    assert lines[0] == "Model: Net, input (5, 3) -> output (5, 2)"
    assert [line.split() for line in lines[4:10]] == [
        ["blocks", "ModuleList", "-", "0"], ["blocks.0", "Linear", "(5,", "3)", "12"],
        ["blocks.1", "Linear", "(5,", "3)", "0"], ["heads", "ModuleDict", "-", "0"],
        ["heads.out", "Linear", "(5,", "2)", "8"], ["heads.unused", "ReLU", "-", "0"]]
    assert lines[-3:] == ["Total params: 21", "Trainable params: 19", "Non-trainable params: 2"]


def test_summary_counts_running_statistics_as_non_trainable_as_keras():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, pad=1), nn.BatchNorm2d(8))
    text = model.summary((1, 6, 6, 3), print_fn=None)
    assert "BatchNorm2d  (1, 6, 6, 8)      32" in text
    assert "Total params: 256" in text and "Trainable params: 240" in text and "Non-trainable params: 16" in text
    assert model.num_parameters() == 240  # PyTorch's count: parameters only


def test_summary_runs_in_eval_mode_without_grad_and_restores_the_modes():

    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append((self.training, tinygrad_cnn.is_grad_enabled()))
            return x

    model = nn.Sequential(probe=Probe(), fc=nn.Linear(2, 2, seed=0))
    model.fc.eval()
    model.summary((1, 2), print_fn=None)
    assert seen == [(False, False)]
    assert [m.training for _, m in model.named_modules()] == [True, True, False]
    assert "forward" not in model.probe.__dict__ and tinygrad_cnn.is_grad_enabled()
    assert all(p.grad is None for p in model.parameters())


def test_summary_errors_and_cleanup():
    model = _summary_net()
    for bad in [(), (2, 0, 8, 1), 8, (2, 8.0)]:
        with pytest.raises(TypeError, match=r"summary: input_shape must be a tuple of positive ints, batch axis "
                                            r"included \(e.g. \(1, 28, 28, 1\)\), got "):
            nn.summary(model, bad)
    with pytest.raises(TypeError, match="summary: model must be a Module, got function"):
        nn.summary(lambda x: x, (1, 2))
    with pytest.raises(ValueError, match=r"Conv2d\(1, 4, f=3, pad=1\): input must have 1 channels"):
        model.summary((2, 8, 8, 3))  # the layer's own error; the model is left as it was
    assert all("forward" not in m.__dict__ for _, m in model.named_modules()) and model.training


def test_trace_calls_records_every_call_and_restores_the_model():
    from tinygrad_cnn.nn.tracing import trace_calls

    relu = nn.ReLU()
    model = nn.Sequential(relu, nn.Linear(2, 2, seed=0), relu)
    calls = []
    trace_calls(model, (3, 2), lambda module, args, out: calls.append((module, args[0].requires_grad, out.shape)))
    assert [(type(m).__name__, grad, shape) for m, grad, shape in calls] == [
        ("ReLU", False, (3, 2)), ("Linear", False, (3, 2)), ("ReLU", False, (3, 2)), ("Sequential", False, (3, 2))]
    calls.clear()
    trace_calls(model, (1, 2), lambda module, args, out: calls.append(args[0].requires_grad), grad=True)
    assert calls == [True] * 4

    def fail(module, args, out):
        raise RuntimeError("record failed")
    with pytest.raises(RuntimeError, match="record failed"):
        trace_calls(model, (1, 2), fail)
    assert model.training and all("forward" not in m.__dict__ for _, m in model.named_modules())
