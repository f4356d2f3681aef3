"""The containers (nn/containers.py): Sequential (named or by index), ModuleList and ModuleDict register their modules,
behave like a list and a dict, slice into containers of the same kind, reach every descendant with train and eval,
and name what they refuse.
"""

import numpy as np
import pytest

from tests.helpers import gradcheck_layer
from tinygrad_cnn import Tensor, nn


def test_positional_sequential_names_by_index():
    seq = nn.Sequential(nn.Linear(3, 4, seed=0), nn.ReLU(), nn.Linear(4, 2, seed=1))
    assert [n for n, _ in seq.named_parameters()] == ["0.W", "0.b", "2.W", "2.b"]
    assert isinstance(seq[1], nn.ReLU) and seq[-1] is seq[2] and len(seq) == 3
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]


class _Stack(nn.Module):
    """Blocks in a ModuleList, heads in a ModuleDict."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(3, 3, seed=i) for i in range(2)])
        self.heads = nn.ModuleDict({"cls": nn.Linear(3, 2, seed=5), "box": nn.Linear(3, 4, seed=6)})

    def forward(self, x):
        for block in self.blocks:
            x = block(x).relu()
        return self.heads["cls"](x).sum() + self.heads["box"](x).sum()


def test_module_list_and_dict_register_their_parameters():
    model = _Stack()
    names = ["blocks.0.W", "blocks.0.b", "blocks.1.W", "blocks.1.b",
             "heads.cls.W", "heads.cls.b", "heads.box.W", "heads.box.b"]
    assert [n for n, _ in model.named_parameters()] == names
    assert list(model.state_dict()) == names
    assert [p.name for p in model.parameters()] == names
    assert model.num_parameters() == 2 * 12 + 8 + 16
    assert repr(model).splitlines()[:4] == ["_Stack(", "  (blocks): ModuleList(", "    (0): Linear(3, 3)",
                                            "    (1): Linear(3, 3)"]
    assert gradcheck_layer(model, (2, 3))


def test_module_list_behaves_like_a_list():
    a, b, c, d = (nn.Linear(1, 1, seed=i) for i in range(4))
    blocks = nn.ModuleList([a])
    assert blocks.append(b) is blocks and blocks.extend([c]) is blocks
    assert len(blocks) == 3 and list(blocks) == [a, b, c]
    assert blocks[0] is a and blocks[-1] is c
    assert isinstance(blocks[1:], nn.ModuleList) and list(blocks[1:]) == [b, c]
    blocks.insert(1, d)
    assert list(blocks) == [a, d, b, c] and [n for n, _ in blocks.named_parameters()][::2] == ["0.W", "1.W",
                                                                                               "2.W", "3.W"]
    blocks[1] = c
    del blocks[0]
    assert list(blocks) == [c, b, c] and [n for n, _ in blocks.named_children()] == ["0", "1"]  # c once, as PyTorch
    assert list(blocks.children()) == [c, b]
    del blocks[1:]
    assert list(blocks) == [c] and len(nn.ModuleList()) == 0
    assert getattr(blocks, "0") is c  # children are attributes by name too, as in PyTorch
    with pytest.raises(AttributeError, match="'ModuleList' object has no attribute '1'"):
        getattr(blocks, "1")


def test_slicing_a_container_gives_a_container_and_leaves_the_parameter_names():
    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.Linear(2, 2, seed=0), nn.Linear(2, 2, seed=1)])
            self.head = nn.Sequential(fc=nn.Linear(2, 2, seed=2), relu=nn.ReLU(), out=nn.Linear(2, 1, seed=3))

    model = Model()
    names = [p.name for p in model.parameters()]
    blocks, head = model.blocks[1:], model.head[1:]
    assert [p.name for p in model.parameters()] == names  # a slice is a view: the graph labels stay right
    assert isinstance(blocks, nn.ModuleList) and [n for n, _ in blocks.named_children()] == ["0"]
    assert isinstance(head, nn.Sequential) and [n for n, _ in head.named_children()] == ["relu", "out"]
    assert head[0] is model.head[1] and head(Tensor(np.ones((3, 2)))).shape == (3, 1)  # PyTorch: a Sequential


def test_module_dict_behaves_like_a_dict():
    a, b, c = (nn.Linear(1, 1, seed=i) for i in range(3))
    heads = nn.ModuleDict({"a": a})
    heads["b"] = b
    heads.update({"c": c})
    assert len(heads) == 3 and list(heads) == ["a", "b", "c"] and "b" in heads and "z" not in heads
    assert list(heads.keys()) == ["a", "b", "c"] and list(heads.values()) == [a, b, c]
    assert list(heads.items()) == [("a", a), ("b", b), ("c", c)]
    del heads["a"]
    assert list(heads) == ["b", "c"] and [n for n, _ in heads.named_parameters()] == ["b.W", "b.b", "c.W", "c.b"]
    keys = nn.ModuleDict({"keys": a})  # a key may be any name: entries are not attributes
    assert keys["keys"] is a and list(keys.keys()) == ["keys"]


@pytest.mark.parametrize("make, error, words", [
    (lambda: nn.ModuleList([nn.ReLU(), 3]), TypeError, r"ModuleList: item 1 must be a Module, got int"),
    (lambda: nn.ModuleList().append(np.tanh), TypeError, r"ModuleList: item 0 must be a Module, got ufunc"),
    (lambda: nn.ModuleList(nn.ReLU()), TypeError,
     r"ModuleList: expected an iterable of Modules, got a ReLU; wrap it in a list"),
    (lambda: nn.ModuleList([nn.ReLU()])[2], IndexError, r"ModuleList: index 2 is out of range for 1 modules"),
    (lambda: nn.ModuleList([nn.ReLU()])["0"], TypeError, r"ModuleList: indices must be ints or slices, got str"),
    (lambda: nn.ModuleList([nn.ReLU()]).__setitem__(slice(0, 1), nn.ReLU()), TypeError,
     r"ModuleList: set one module at a time \(blocks\[i\] = module\), got a slice"),
    (lambda: nn.ModuleList([nn.ReLU()]).__setitem__(-2, nn.ReLU()), IndexError,
     r"ModuleList: index -2 is out of range for 1 modules"),
    (lambda: nn.ModuleList([nn.ReLU()]).insert(0, "relu"), TypeError, r"ModuleList: item 0 must be a Module, got str"),
    (lambda: nn.ModuleDict({"a": nn.ReLU()}).__delitem__("b"), KeyError, r"ModuleDict: no module 'b'"),
    (lambda: nn.ModuleDict({"a": 1}), TypeError, r"ModuleDict: value of key 'a' must be a Module, got int"),
    (lambda: nn.ModuleDict({1: nn.ReLU()}), TypeError, r"ModuleDict: keys must be strings, got 1"),
    (lambda: nn.ModuleDict({"a.b": nn.ReLU()}), KeyError, r"ModuleDict: key 'a.b' must not be empty or hold"),
    (lambda: nn.ModuleDict({"": nn.ReLU()}), KeyError, r"ModuleDict: key '' must not be empty or hold"),
    (lambda: nn.ModuleDict([nn.ReLU()]), TypeError, r"ModuleDict: expected a mapping name -> Module, got list"),
    (lambda: nn.ModuleDict({"a": nn.ReLU()})["b"], KeyError, r"ModuleDict: no module 'b'; keys are \['a'\]"),
])
def test_container_errors(make, error, words):
    with pytest.raises(error, match=words):
        make()


def test_train_and_eval_reach_every_descendant():
    model = nn.Sequential(stack=_Stack(), relu=nn.ReLU())
    modules = [m for _, m in model.named_modules()]
    assert len(modules) == 1 + 1 + 1 + 2 + 1 + 2 + 1  # model, stack, blocks+2, heads+2, relu
    assert all(m.training for m in modules)
    model.eval()
    assert not any(m.training for m in modules)
    model.stack.train()
    assert [m.training for m in modules] == [False] + [True] * 7 + [False]
