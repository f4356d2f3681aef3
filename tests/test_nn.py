"""tinygrad_cnn.nn: gradients through each layer, parameter names, state dicts, init, errors, training."""

import re

import numpy as np
import pytest

from tinygrad_cnn import GradcheckError, Tensor, gradcheck, nn
from tinygrad_cnn.functional import cross_entropy
from tinygrad_cnn.optim import Adam


def _set_param(module, dotted, value):
    *path, last = dotted.split(".")
    for part in path:
        module = getattr(module, part)
    setattr(module, last, value)


def _gradcheck_layer(layer, x_shape, seed=0):
    """gradcheck the layer w.r.t. its input and every parameter (swapped in as float64 inputs)."""
    rng = np.random.default_rng(seed)
    named = list(layer.named_parameters())
    x = Tensor(rng.standard_normal(x_shape), requires_grad=True, name="x")
    params = [Tensor(p.data, requires_grad=True, name=n) for n, p in named]

    def fn(x, *ps):
        for (n, _), p in zip(named, ps, strict=True):
            _set_param(layer, n, p)
        return layer(x)
    return gradcheck(fn, x, *params)


# ----------------------------------------------------------------------------- gradients through layers
@pytest.mark.parametrize("layer, x_shape", [
    (nn.Linear(4, 3, seed=0), (2, 4)),
    (nn.Linear(4, 3, bias=False, init="glorot", seed=0), (5, 4)),
    (nn.Conv2d(2, 3, 3, stride=2, pad=1, seed=0), (2, 5, 5, 2)),
    (nn.Conv2d(2, 2, (2, 3), bias=False, seed=1), (1, 4, 5, 2)),
    (nn.MaxPool2d(2), (2, 4, 4, 2)),
    (nn.MaxPool2d(3, stride=1), (1, 5, 5, 2)),
    (nn.AvgPool2d(2, stride=1), (2, 3, 4, 2)),
    (nn.ReLU(), (3, 4)),
    (nn.Flatten(), (2, 3, 3, 2)),
    (nn.Sigmoid(), (3, 4)),
    (nn.Tanh(), (2, 3, 2)),
    (nn.Softmax(), (3, 4)),
    (nn.Softmax(axis=1), (2, 3, 4)),
    (nn.GlobalAvgPool2d(), (2, 3, 4, 5)),
], ids=repr)
def test_gradcheck_each_layer(layer, x_shape):
    assert _gradcheck_layer(layer, x_shape)


def test_gradcheck_small_cnn():
    net = nn.Sequential(conv1=nn.Conv2d(1, 2, 3, pad=1, seed=0), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
                        flat=nn.Flatten(), fc=nn.Linear(8, 3, seed=1))
    assert _gradcheck_layer(net, (2, 4, 4, 1))


def test_gradcheck_catches_a_wrong_layer():
    class Broken(nn.Linear):
        def forward(self, x):
            return x @ self.W + Tensor(self.b.data)  # b cut from the graph: its gradient is lost

    with pytest.raises(GradcheckError, match=r"input 2 \('b'\) of shape \(2,\)"):
        _gradcheck_layer(Broken(3, 2, seed=0), (4, 3))


# ----------------------------------------------------------------------------- names, tree, modes
def _net():
    return nn.Sequential(conv1=nn.Conv2d(1, 4, 3, pad=1, seed=0), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
                         flat=nn.Flatten(), fc=nn.Linear(16, 10, seed=1))


def test_named_parameters_are_dotted_and_ordered():
    net = _net()
    assert [n for n, _ in net.named_parameters()] == ["conv1.W", "conv1.b", "fc.W", "fc.b"]
    assert [p.shape for p in net.parameters()] == [(3, 3, 1, 4), (4,), (16, 10), (10,)]
    assert net.num_parameters() == 36 + 4 + 160 + 10


def test_parameter_tensor_names_follow_nesting():
    net = _net()
    assert [p.name for p in net.parameters()] == ["conv1.W", "conv1.b", "fc.W", "fc.b"]

    class Model(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = Tensor(np.ones(1), requires_grad=True)
            self.features = _net()

        def forward(self, x):
            return self.features(x) * self.scale

    model = Model()
    names = [n for n, _ in model.named_parameters()]
    assert names == ["scale", "features.conv1.W", "features.conv1.b", "features.fc.W", "features.fc.b"]
    assert [p.name for p in model.parameters()] == names


def test_positional_sequential_names_by_index():
    seq = nn.Sequential(nn.Linear(3, 4, seed=0), nn.ReLU(), nn.Linear(4, 2, seed=1))
    assert [n for n, _ in seq.named_parameters()] == ["0.W", "0.b", "2.W", "2.b"]
    assert isinstance(seq[1], nn.ReLU) and seq[-1] is seq[2] and len(seq) == 3
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]


def test_names_show_in_the_drawn_graph():
    net = _net()
    loss = cross_entropy(net(Tensor(np.ones((2, 4, 4, 1)))), [1, 2])
    source = loss.draw().source
    for name in ("conv1.W", "conv1.b", "fc.W", "fc.b"):
        assert name in source


def test_repr_is_a_tree():
    text = repr(_net())
    assert text.splitlines() == [
        "Sequential(",
        "  (conv1): Conv2d(1, 4, f=3, pad=1)",
        "  (relu1): ReLU()",
        "  (pool1): MaxPool2d(f=2)",
        "  (flat): Flatten()",
        "  (fc): Linear(16, 10)",
        ")",
    ]
    nested = repr(nn.Sequential(block=nn.Sequential(nn.ReLU())))
    assert "  (block): Sequential(\n    (0): ReLU()\n  )" in nested


def test_zero_grad_train_eval():
    net = _net()
    loss = cross_entropy(net(Tensor(np.ones((2, 4, 4, 1)))), [0, 1])
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    assert net.eval() is net and not any(m.training for _, m in net.named_modules())
    net.train()
    assert all(m.training for _, m in net.named_modules())


def test_reassigning_an_attribute_replaces_the_parameter():
    lin = nn.Linear(2, 2, seed=0)
    lin.b = None
    assert [n for n, _ in lin.named_parameters()] == ["W"]
    del lin.W
    assert lin.parameters() == []


# ----------------------------------------------------------------------------- state dicts
def test_state_dict_is_a_copy_and_round_trips():
    a, b = _net(), nn.Sequential(conv1=nn.Conv2d(1, 4, 3, pad=1, seed=5), relu1=nn.ReLU(),
                                 pool1=nn.MaxPool2d(2), flat=nn.Flatten(), fc=nn.Linear(16, 10, seed=6))
    state = a.state_dict()
    assert list(state) == ["conv1.W", "conv1.b", "fc.W", "fc.b"]
    state["fc.b"][:] = 7.0  # writable, and a copy
    assert not np.any(a.fc.b.data == 7.0)
    b.load_state_dict(a.state_dict())
    x = Tensor(np.random.default_rng(0).random((3, 4, 4, 1)))
    np.testing.assert_array_equal(a(x).data, b(x).data)
    assert b.conv1.W.dtype == np.float32


def test_load_state_dict_casts_to_the_parameter_dtype():
    lin = nn.Linear(2, 3, seed=0)
    lin.load_state_dict({"W": np.ones((2, 3), np.float64), "b": Tensor(np.arange(3.0))})
    assert lin.W.dtype == np.float32 and lin.b.data.tolist() == [0.0, 1.0, 2.0]


@pytest.mark.parametrize("change, error, words", [
    (lambda s: s.pop("fc.b"), ValueError, r"missing keys \['fc.b'\]"),
    (lambda s: s.update(extra=np.zeros(1)), ValueError, r"unexpected keys \['extra'\]"),
    (lambda s: s.update({"fc.W": np.zeros((10, 16))}), ValueError,
     r"key 'fc.W' has shape \(10, 16\), but the parameter has shape \(16, 10\)"),
    (lambda s: s.update({"fc.b": np.array(["a"] * 10)}), TypeError, r"key 'fc.b' holds dtype <U1"),
])
def test_load_state_dict_errors_change_nothing(change, error, words):
    net = _net()
    before = net.state_dict()
    state = {k: v + 1 for k, v in before.items()}
    change(state)
    with pytest.raises(error, match=words):
        net.load_state_dict(state)
    for k, v in net.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_load_state_dict_needs_a_mapping():
    with pytest.raises(TypeError, match="expected a mapping name -> array, got list"):
        nn.Linear(2, 2).load_state_dict([np.zeros((2, 2))])


# ----------------------------------------------------------------------------- initialisation
def test_init_is_seeded_and_float32():
    a, b = nn.Conv2d(3, 8, 3, seed=42), nn.Conv2d(3, 8, 3, seed=42)
    np.testing.assert_array_equal(a.W.data, b.W.data)
    assert a.W.dtype == np.float32 and a.b.dtype == np.float32 and not a.b.data.any()
    assert a.W.requires_grad and a.b.requires_grad
    rng1, rng2 = np.random.default_rng(7), np.random.default_rng(7)
    np.testing.assert_array_equal(nn.Linear(5, 5, seed=rng1).W.data, nn.Linear(5, 5, seed=rng2).W.data)
    assert not np.array_equal(nn.Linear(5, 5, seed=rng1).W.data, nn.Linear(5, 5, seed=7).W.data)
    assert nn.Linear(2, 2, dtype=np.float64).W.dtype == np.float64


def test_he_and_glorot_scales():
    he = nn.Conv2d(16, 64, 3, seed=0).W.data  # fan_in 144
    assert abs(he.std() - np.sqrt(2 / 144)) < 0.05 * np.sqrt(2 / 144)
    limit = np.sqrt(6 / (200 + 300))
    glorot = nn.Linear(200, 300, init="glorot", seed=0).W.data
    assert np.abs(glorot).max() <= limit and np.abs(glorot).max() > 0.95 * limit


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("make, error, words", [
    (lambda: nn.Conv2d(0, 4, 3), TypeError, "Conv2d: in_channels must be a positive int, got 0"),
    (lambda: nn.Conv2d(3, 4.0, 3), TypeError, "Conv2d: out_channels must be a positive int, got 4.0"),
    (lambda: nn.Conv2d(3, 4, (3, 3, 3)), TypeError, r"Conv2d: f must be a positive int or a pair"),
    (lambda: nn.Conv2d(3, 4, 3, stride=0), TypeError, "Conv2d: stride must be a positive int, got 0"),
    (lambda: nn.Conv2d(3, 4, 3, init="lecun"), ValueError, r"Conv2d: init must be one of \('he', 'glorot'\)"),
    (lambda: nn.Conv2d(3, 4, 3, dtype=np.int32), TypeError, "Conv2d: dtype must be float32 or float64, got int32"),
    (lambda: nn.Linear(3, 4, dtype="banana"), TypeError, "Linear: dtype must be float32 or float64"),
    (lambda: nn.Linear(True, 4), TypeError, "Linear: in_features must be a positive int, got True"),
    (lambda: nn.Linear(3, 4, seed=1.5), TypeError, "Linear: seed must be None, an int or a numpy"),
    (lambda: nn.MaxPool2d(2, ties="last"), ValueError, "MaxPool2d: ties must be one of"),
    (lambda: nn.AvgPool2d(-1), TypeError, "AvgPool2d: f must be a positive int, got -1"),
    (lambda: nn.Sequential(nn.ReLU(), relu=nn.ReLU()), TypeError, "Sequential: give layers either all"),
    (lambda: nn.Sequential(nn.ReLU(), np.tanh), TypeError, "Sequential: layer '1' must be a Module, got ufunc"),
    (lambda: nn.Softmax(axis=1.0), TypeError, r"Softmax: axis must be an int, got 1.0"),
    (lambda: nn.Softmax(axis=None), TypeError, r"Softmax: axis must be an int, got None"),
])
def test_bad_constructor_arguments(make, error, words):
    with pytest.raises(error, match=words):
        make()


@pytest.mark.parametrize("layer, x_shape, words", [
    (nn.Linear(4, 3), (2, 5), r"Linear\(4, 3\): input's last axis must have 4 features, got shape \(2, 5\)$"),
    (nn.Linear(4, 3), (2, 2, 2, 1), r"got shape \(2, 2, 2, 1\) \(images\? put a Flatten\(\) before this layer\)"),
    (nn.Conv2d(3, 8, 3), (2, 5, 5, 4), r"Conv2d\(3, 8, f=3\): input must have 3 channels .*got shape \(2, 5, 5, 4\)$"),
    (nn.Conv2d(3, 8, 3), (2, 3, 5, 5), r"it looks NCHW: pass x.transpose\(0, 2, 3, 1\)"),
    (nn.Conv2d(3, 8, 3), (5, 5, 3), r"input must be 4-D NHWC .*got shape \(5, 5, 3\) \(a single image\?"),
    (nn.MaxPool2d(2), (4, 4), r"MaxPool2d\(f=2\): input must be 4-D NHWC"),
    (nn.AvgPool2d(2, stride=1), (4,), r"AvgPool2d\(f=2, stride=1\): input must be 4-D NHWC"),
    (nn.GlobalAvgPool2d(), (2, 8), r"GlobalAvgPool2d\(\): input must be 4-D NHWC \(m, n_H, n_W, n_C\), got shape "
                                   r"\(2, 8\)$"),
    (nn.Softmax(axis=2), (2, 8), r"softmax: axis 2 is out of range for a tensor of shape \(2, 8\) \(2 dims\)"),
])
def test_bad_inputs_name_the_layer(layer, x_shape, words):
    with pytest.raises(ValueError, match=words):
        layer(Tensor(np.zeros(x_shape)))


def test_flatten_needs_a_batch_axis():
    for shape in [(), (3,)]:
        with pytest.raises(ValueError, match=r"Flatten: input must be \(m, ...\) with a batch axis and at least "
                           rf"one more, got shape {re.escape(str(shape))}"):
            nn.Flatten()(Tensor(np.zeros(shape)))


def test_module_misuse():
    class NoInit(nn.Module):
        def __init__(self):
            self.W = Tensor(1.0)

    with pytest.raises(RuntimeError, match=r"NoInit: call super\(\).__init__\(\) before setting attributes"):
        NoInit()
    with pytest.raises(NotImplementedError, match="Module must define forward"):
        nn.Module()(1)


# ----------------------------------------------------------------------------- training
def test_a_short_training_run_lowers_the_loss():
    """Two classes of 6x6 images (a bright top half vs a bright bottom half) plus noise."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 32)
    x = rng.normal(0, 0.3, (32, 6, 6, 1))
    x[y == 0, :3] += 1.0
    x[y == 1, 3:] += 1.0
    x = Tensor(x.astype(np.float32))
    net = nn.Sequential(conv1=nn.Conv2d(1, 4, 3, pad=1, seed=0), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
                        flat=nn.Flatten(), fc=nn.Linear(36, 2, init="glorot", seed=1))
    opt = Adam(net.parameters(), lr=0.02)
    losses = []
    for _ in range(25):
        opt.zero_grad()
        loss = cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]
    assert (net(x).argmax(axis=1) == y).mean() == 1.0


# ----------------------------------------------------------------------------- issue 11: ModuleList, ModuleDict
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
    assert _gradcheck_layer(model, (2, 3))


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
    assert list(blocks) == [c, b, c] and [n for n, _ in blocks.named_children()] == ["0", "1", "2"]
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


@pytest.mark.parametrize("value, words", [
    ([nn.ReLU(), nn.ReLU()], r"Holder: attribute 'layers' is a list holding Modules; a plain list registers "
                             r"nothing: use nn.ModuleList\(\[...\]\)"),
    ((nn.ReLU(),), r"attribute 'layers' is a tuple holding Modules; .* use nn.ModuleList\(\[...\]\)"),
    ({"a": nn.ReLU()}, r"attribute 'layers' is a dict holding Modules; .* use nn.ModuleDict\(\{...\}\)"),
    ([Tensor(1.0), 2], r"attribute 'layers' is a list holding Tensors; a plain list registers nothing: set each "
                       r"Tensor as its own attribute \(self.w0 = ...\), or put them in Modules held by an "
                       r"nn.ModuleList"),
    ({"w": Tensor(1.0)}, r"attribute 'layers' is a dict holding Tensors"),
])
def test_plain_containers_of_modules_or_tensors_are_refused(value, words):
    class Holder(nn.Module):
        def __init__(self, layers):
            super().__init__()
            self.layers = layers

    with pytest.raises(TypeError, match=words):
        Holder(value)
    assert Holder([1, 2]).layers == [1, 2] and Holder({}).parameters() == []  # plain data is fine


def test_train_and_eval_reach_every_descendant():
    model = nn.Sequential(stack=_Stack(), relu=nn.ReLU())
    modules = [m for _, m in model.named_modules()]
    assert len(modules) == 1 + 1 + 1 + 2 + 1 + 2 + 1  # model, stack, blocks+2, heads+2, relu
    assert all(m.training for m in modules)
    model.eval()
    assert not any(m.training for m in modules)
    model.stack.train()
    assert [m.training for m in modules] == [False] + [True] * 7 + [False]


# ----------------------------------------------------------------------------- issue 11: tied weights
def _tied():
    enc, dec = nn.Linear(3, 3, seed=0), nn.Linear(3, 3, seed=1)
    dec.W = enc.W
    return nn.Sequential(enc=enc, dec=dec)


def test_a_tied_weight_is_listed_once_under_its_first_name():
    model = _tied()
    assert [n for n, _ in model.named_parameters()] == ["enc.W", "enc.b", "dec.b"]
    assert [n for n, _ in model.named_parameters(remove_duplicate=False)] == ["enc.W", "enc.b", "dec.W", "dec.b"]
    assert model.parameters() == [model.enc.W, model.enc.b, model.dec.b]
    assert model.num_parameters() == 9 + 3 + 3
    shared = nn.Sequential(a=model.enc, b=model.enc)  # one layer used twice: its parameters once
    assert [n for n, _ in shared.named_parameters()] == ["a.W", "a.b"]
    assert [n for n, _ in shared.named_modules()] == ["", "a"]


def test_state_dict_of_tied_weights_holds_both_names_as_pytorch():
    model, other = _tied(), _tied()
    state = model.state_dict()
    assert list(state) == ["enc.W", "enc.b", "dec.W", "dec.b"]
    np.testing.assert_array_equal(state["enc.W"], state["dec.W"])
    other.load_state_dict(state)
    assert other.dec.W is other.enc.W
    np.testing.assert_array_equal(other.enc.W.data, model.enc.W.data)
    state["dec.W"] = state["dec.W"] + 1
    with pytest.raises(ValueError, match=r"load_state_dict: keys 'enc.W' and 'dec.W' name one tied parameter but "
                                         r"hold different values"):
        other.load_state_dict(state)


# ----------------------------------------------------------------------------- issue 10: activation and pooling layers
def test_new_layers_match_pytorch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    t = torch.tensor(x)
    pairs = [(nn.Sigmoid(), torch.sigmoid(t)), (nn.Tanh(), torch.tanh(t)), (nn.Softmax(), torch.softmax(t, -1)),
             (nn.Softmax(axis=1), torch.softmax(t, 1)),
             (nn.GlobalAvgPool2d(), torch.nn.AdaptiveAvgPool2d(1)(t.permute(0, 3, 1, 2)).flatten(1))]
    for layer, expected in pairs:
        np.testing.assert_allclose(layer(Tensor(x)).data, expected.numpy(), rtol=1e-12, atol=1e-15)


def test_new_layers_values_and_repr():
    x = Tensor(np.arange(24.0).reshape(1, 2, 3, 4))
    np.testing.assert_array_equal(nn.GlobalAvgPool2d()(x).data, [[10.0, 11.0, 12.0, 13.0]])
    np.testing.assert_allclose(nn.Softmax()(Tensor([[0.0, np.log(3.0)]])).data, [[0.25, 0.75]], rtol=1e-12)
    np.testing.assert_allclose(nn.Sigmoid()(Tensor([0.0, 800.0, -800.0])).data, [0.5, 1.0, 0.0])
    np.testing.assert_allclose(nn.Tanh()(Tensor([0.0, 20.0])).data, [0.0, 1.0])
    assert repr(nn.Sequential(nn.Sigmoid(), nn.Tanh(), nn.Softmax(), nn.GlobalAvgPool2d())).splitlines()[1:5] == [
        "  (0): Sigmoid()", "  (1): Tanh()", "  (2): Softmax(axis=-1)", "  (3): GlobalAvgPool2d()"]


# ----------------------------------------------------------------------------- issue 10: summary
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


def test_summary_runs_in_eval_mode_without_grad_and_restores_the_modes():
    import tinygrad_cnn

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


def test_nn_reexports_exactly_the_public_names_from_the_files_that_define_them():
    import importlib
    assert sorted(nn.__all__) == sorted(
        ["Module", "Conv2d", "ConvTranspose2d", "Linear", "BatchNorm2d", "Dropout", "MaxPool2d", "AvgPool2d",
         "GlobalAvgPool2d", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "Flatten", "Sequential",
         "ModuleList", "ModuleDict", "summary", "he_init", "glorot_init"])
    for name in nn.__all__:
        assert getattr(nn, name).__module__.startswith("tinygrad_cnn.nn."), name
    assert nn.summary is importlib.import_module("tinygrad_cnn.nn.module").summary


def test_named_parameters_and_buffers_without_recursing_are_the_modules_own():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = Tensor(np.ones(1), requires_grad=True)
            self.alias = self.scale  # one Tensor under two names
            self.bn = nn.BatchNorm2d(2)
            self.register_buffer("steps", np.zeros(1))

    net = Net()
    assert [n for n, _ in net.named_parameters(recurse=False)] == ["scale"]
    assert [n for n, _ in net.named_parameters(recurse=False, remove_duplicate=False)] == ["scale", "alias"]
    assert [n for n, _ in net.named_buffers(recurse=False)] == ["steps"]
    assert [n for n, _ in net.bn.named_parameters("bn", recurse=False)] == ["bn.gamma", "bn.beta"]
    assert [n for n, _ in net.named_parameters()] == ["scale", "bn.gamma", "bn.beta"]
    assert [n for n, _ in net.named_buffers()] == ["steps", "bn.running_mean", "bn.running_var",
                                                    "bn.num_batches_tracked"]


def test_named_parameters_without_recursing_as_pytorch():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    theirs = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    assert list(ours.named_parameters(recurse=False)) == list(theirs.named_parameters(recurse=False)) == []
    assert list(ours.named_buffers(recurse=False)) == list(theirs.named_buffers(recurse=False)) == []
    assert [n for n, _ in ours[1].named_buffers(recurse=False)] == [n for n, _ in theirs[1].named_buffers(
        recurse=False)]
    assert len(list(ours[0].named_parameters(recurse=False))) == len(list(theirs[0].named_parameters(recurse=False)))


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
