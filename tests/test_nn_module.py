"""nn.Module (nn/module.py): parameter names (dotted, in order, on the tensors, in the drawing), the tree and its repr,
train and eval, state dicts and buffers (copies, casts, checks before writing), tied weights, what a Module refuses.
"""

import numpy as np
import pytest

from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.functional import cross_entropy


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


# ----------------------------------------------------------------------------- state dicts and buffers
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


def test_load_state_dict_checks_buffers_before_writing():
    bn = nn.BatchNorm2d(3)
    state = bn.state_dict()
    state["running_var"] = np.ones(4)
    with pytest.raises(ValueError, match="key 'running_var' has shape \\(4,\\), but the buffer has shape \\(3,\\)"):
        bn.load_state_dict(state)
    del state["num_batches_tracked"]
    with pytest.raises(ValueError, match=r"missing keys \['num_batches_tracked'\]"):
        bn.load_state_dict(state)


def test_register_buffer_and_replacing_a_buffer():
    class Counter(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("count", np.zeros(2))

    c = Counter()
    c.count = np.ones(2)
    np.testing.assert_array_equal(c.state_dict()["count"], 1)
    assert c.parameters() == [] and len(c.buffers()) == 1
    with pytest.raises(TypeError, match="buffer 'count' must be a numpy array of numbers"):
        c.count = Tensor([1.0, 2.0])
    with pytest.raises(TypeError, match="register_buffer: name must be an identifier"):
        c.register_buffer("a.b", np.zeros(1))
    c.w = Tensor(np.zeros(1), requires_grad=True)
    with pytest.raises(KeyError, match="already has a parameter or child 'w'"):
        c.register_buffer("w", np.zeros(1))
    del c.count
    assert c.buffers() == []


# ----------------------------------------------------------------------------- tied weights
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


# ----------------------------------------------------------------------------- misuse
def test_module_misuse():
    class NoInit(nn.Module):
        def __init__(self):
            self.W = Tensor(1.0)

    with pytest.raises(RuntimeError, match=r"NoInit: call super\(\).__init__\(\) before setting attributes"):
        NoInit()
    with pytest.raises(NotImplementedError, match="Module must define forward"):
        nn.Module()(1)


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


# ----------------------------------------------------------------------------- PyTorch's Module habits
def _tree():
    """A Sequential holding a Sequential, the same Linear twice (listed once, as PyTorch)."""
    shared = nn.Linear(2, 2, seed=0)
    return nn.Sequential(nn.Linear(3, 2, seed=1), nn.Sequential(shared, nn.ReLU(), shared), nn.Tanh())


def _torch_tree(torch):
    shared = torch.nn.Linear(2, 2)
    return torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Sequential(shared, torch.nn.ReLU(), shared),
                               torch.nn.Tanh())


def test_modules_and_apply_visit_in_pytorchs_order():
    """modules(): itself first, depth first, a shared module once; apply(fn): children before their parent (the
    order of ``model.apply(init_weights)``), returning the model."""
    torch = pytest.importorskip("torch")
    ours, theirs = _tree(), _torch_tree(torch)
    assert [type(m).__name__ for m in ours.modules()] == [type(m).__name__ for m in theirs.modules()]
    ours_seen, theirs_seen = [], []
    assert ours.apply(lambda m: ours_seen.append(type(m).__name__)) is ours
    theirs.apply(lambda m: theirs_seen.append(type(m).__name__))
    assert ours_seen == theirs_seen


def test_apply_initialises_the_weights_as_in_pytorch():
    model = _tree()

    def init(m):
        if isinstance(m, nn.Linear):
            m.W.data = np.full(m.W.shape, 0.5)
    model.apply(init)
    assert all((p.data == 0.5).all() for n, p in model.named_parameters() if n.endswith("W"))


def test_requires_grad_false_freezes_a_part_of_the_model():
    model = nn.Sequential(nn.Linear(3, 2, seed=0), nn.Linear(2, 1, seed=1))
    assert model[0].requires_grad_(False) is model[0]
    before = model[0].W.data.copy()
    model(Tensor.randn(4, 3, seed=2)).sum().backward()
    assert model[0].W.grad is None and model[0].b.grad is None and model[1].W.grad is not None
    from tinygrad_cnn import optim
    optim.SGD(model.parameters(), lr=0.1).step()
    np.testing.assert_array_equal(model[0].W.data, before)
    model.requires_grad_()
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("call, words", [
    (lambda m: m.to("cpu"), r"'Sequential' object has no attribute 'to': numpy runs on the CPU only: drop "
                            r"\.to\(device\); for a dtype, build the layers with dtype="),
    (lambda m: m.cuda(), r"no attribute 'cuda': numpy runs on the CPU only: drop \.cuda\(\)"),
    (lambda m: m.cpu(), r"no attribute 'cpu': numpy runs on the CPU only: drop \.cpu\(\)"),
    (lambda m: m.double(), r"no attribute 'double': build the layers with dtype=np\.float64, or call "
                           r"set_default_dtype\(np\.float64\) before building them"),
    (lambda m: m.float(), r"no attribute 'float': layers take the default dtype \(float32 unless "
                          r"set_default_dtype\); dtype= when building one"),
    (lambda m: m.half(), r"no attribute 'half': tensors hold float32 or float64 only"),
    (lambda m: m.load_state_dict({}, strict=False), r"load_state_dict: strict=False \(PyTorch's\) is not supported "
                                                    r"here: the keys must match exactly; load the ones this model has: "
                                                    r"model\.load_state_dict\(\{k: state\[k\] for k in "
                                                    r"model\.state_dict\(\)\}\)"),
])
def test_pytorch_only_module_names_say_what_to_write(call, words):
    model = nn.Sequential(nn.Linear(2, 2, seed=0))
    with pytest.raises((AttributeError, TypeError), match=words):
        call(model)


def test_load_state_dict_takes_pytorchs_keyword_and_strict_true():
    """strict=True is what this library always does; state_dict= is PyTorch's name for the mapping."""
    model, other = nn.Sequential(nn.Linear(2, 2, seed=0)), nn.Sequential(nn.Linear(2, 2, seed=1))
    model.load_state_dict(state_dict=other.state_dict(), strict=True)
    assert all(np.array_equal(a, b) for a, b in zip(model.state_dict().values(),
                                                    other.state_dict().values(), strict=True))


def test_other_missing_module_attributes_stay_plain():
    with pytest.raises(AttributeError, match=r"^'Sequential' object has no attribute 'nothing_here'$"):
        nn.Sequential().nothing_here  # noqa: B018
