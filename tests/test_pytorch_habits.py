"""What a PyTorch user writes meets PyTorch's meaning or an error that says what to write here (issue 21, items 1-3):
positional arguments, PyTorch's keyword spellings, PyTorch-only attributes, zero_grad(set_to_none=), transpose's
numpy meaning, conv weights in PyTorch's layout."""

import re
import types
import warnings

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, grad, nn, optim


def images(c=3, seed=0):
    return Tensor.randn(2, 6, 6, c, seed=seed, requires_grad=True)


# ----------------------------------------------------------------------------- 1. positional arguments
POSITIONAL = [
    (lambda: nn.Conv2d(4, 8, 3, 1, 2, 2), r"Conv2d: takes at most 5 positional arguments \(in_channels, out_channels, "
     r"f, stride, pad\), got 6\. .*PyTorch's order differs here: its 6th is dilation\. .*Conv2d\(4, 8, 3, 1, 2, "
     r"dilation=2\)"),
    (lambda: nn.ConvTranspose2d(4, 8, 3, 1, 0, 0, 2), r"its 7th is groups\. .*ConvTranspose2d\(4, 8, 3, 1, 0, 0, "
     r"groups=2\)"),
    (lambda: nn.Linear(4, 8, True, "he"), r"Linear: .*PyTorch's 4th is device, which is not supported here"),
    (lambda: nn.BatchNorm2d(4, 1e-5, 0.1, True), r"BatchNorm2d: .*PyTorch's 4th is affine, which is not supported"),
    (lambda: nn.Dropout(0.5, True), r"Dropout: .*PyTorch's 2nd is inplace, which is not supported here: there are "
     "no in-place ops"),
    (lambda: nn.MaxPool2d(2, 2, 1), r"MaxPool2d: .*PyTorch's 3rd is padding, which is not supported here: pad first "
     r"with x\.pad2d\(p, value=-np\.inf\)"),
    (lambda: nn.AvgPool2d(2, 2, 1), r"AvgPool2d: .*PyTorch's 3rd is padding, which is not supported"),
    (lambda: optim.Adam([Tensor.ones(2, requires_grad=True)], 1e-3, (0.9, 0.999), 1e-8, 0.0, True),
     r"Adam: .*PyTorch's 6th is amsgrad, which is not supported here"),
    (lambda: images(4).conv_transpose2d(Tensor.randn(3, 3, 4, 4), None, 1, 0, 0, 2),
     r"conv_transpose2d: takes at most 5 positional .*its 6th is groups\. .*conv_transpose2d\(\.\.\., None, 1, 0, 0, "
     r"groups=2\)"),
    (lambda: images().max_pool2d(2, 2, 1), r"max_pool2d: .*PyTorch's 3rd is padding, which is not supported here"),
    (lambda: images().avg_pool2d(2, 2, 1), r"avg_pool2d: .*PyTorch's 3rd is padding"),
    (lambda: images().pad2d(1, 0.0), r"pad2d: .*PyTorch's 2nd is mode, which is not supported here: .*value="),
    (lambda: images().dropout(0.5, True, None), r"dropout: .*PyTorch's 3rd is inplace"),
    (lambda: images().batch_norm2d(np.ones(3), np.zeros(3), np.zeros(3), np.ones(3), True),
     r"batch_norm2d: takes at most 2 positional .*F\.batch_norm.*running_mean, running_var, weight, bias.*"
     r"x\.batch_norm2d\(gamma, beta, running_mean=\.\.\., running_var=\.\.\., training=\.\.\.\)"),
    (lambda: F.cross_entropy(Tensor.randn(2, 3), [0, 1], "sum"), r"cross_entropy: .*PyTorch's 3rd is weight"),
    (lambda: F.mse_loss(Tensor.randn(2, 3), np.zeros((2, 3)), "sum"), r"mse_loss: .*PyTorch's 3rd is size_average"),
]


@pytest.mark.parametrize("call, message", POSITIONAL)
def test_positional_arguments_past_ours_name_pytorchs_meaning_and_the_keyword_to_write(call, message):
    with pytest.raises(TypeError, match=message):
        call()


def test_backward_and_grad_positional_arguments_mean_what_they_mean_in_pytorch():
    """Tensor.backward(gradient, retain_graph, create_graph): backward(None, True) is retain_graph=True (ignored: the
    graph is kept), not create_graph; torch.autograd.grad's 6th is only_inputs, so allow_unused is keyword-only."""
    W = Tensor(np.ones(3), requires_grad=True)
    (W * W).sum().backward(None, True)
    assert type(W.grad) is np.ndarray
    W.grad = None
    (W * W).sum().backward(None, None, True)
    assert isinstance(W.grad, Tensor) and W.grad.requires_grad
    (dW,) = grad((W * W).sum(), W, None, None, True)
    assert dW.requires_grad
    with pytest.raises(TypeError, match=r"grad: takes at most 5 positional arguments \(outputs, inputs, grad_outputs, "
                                        r"retain_graph, create_graph\), got 6\. PyTorch's 6th is only_inputs, which "
                                        "is not supported here"):
        grad((W * W).sum(), W, None, None, False, True)
    with pytest.raises(TypeError, match=r"backward: takes at most 3 positional .* PyTorch's 4th is inputs"):
        (W * W).sum().backward(None, None, False, [W])
    assert grad((W * W).sum(), [W, Tensor(1.0, requires_grad=True)], allow_unused=True)[1] is None


def test_the_keyword_only_arguments_work_by_name():
    conv = nn.Conv2d(4, 8, 3, 1, 2, dilation=2, seed=0)
    assert conv(Tensor.randn(1, 5, 5, 4, seed=1)).shape == (1, 5, 5, 8)
    up = nn.ConvTranspose2d(4, 8, 3, 1, 0, 0, groups=2, seed=0)
    assert up.W.shape == (3, 3, 4, 4)
    assert images(4).conv_transpose2d(Tensor.randn(3, 3, 2, 4), None, 1, 0, 0, groups=2).shape == (2, 8, 8, 4)


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


@pytest.mark.parametrize("make", [lambda b: nn.Conv2d(4, 8, 3, bias=b), lambda b: nn.ConvTranspose2d(4, 8, 3, bias=b),
                                  lambda b: nn.Linear(4, 8, b)])
@pytest.mark.parametrize("bias", [2, 0, 1.0, "yes", None])
def test_bias_must_be_a_bool(make, bias):
    with pytest.raises(TypeError, match=r"bias must be a bool \(True or False\), got " + re.escape(repr(bias))):
        make(bias)
    assert make(np.bool_(False)).b is None and make(True).b is not None


# ----------------------------------------------------------------------------- 2. PyTorch's keyword spellings
SPELLINGS = [
    (lambda: nn.Conv2d(1, 2, kernel_size=3), "Conv2d: kernel_size= is PyTorch's spelling; here it is f= "
     r"\(write f=3\)"),
    (lambda: nn.Conv2d(1, 2, 3, padding=1), "Conv2d: padding= is PyTorch's spelling; here it is pad="),
    (lambda: nn.ConvTranspose2d(1, 2, 3, padding=1), "ConvTranspose2d: padding= .* pad="),
    (lambda: nn.MaxPool2d(kernel_size=2), "MaxPool2d: kernel_size= .* f="),
    (lambda: nn.BatchNorm2d(num_features=3), "BatchNorm2d: num_features= .* n_C="),
    (lambda: nn.LeakyReLU(negative_slope=0.2), "LeakyReLU: negative_slope= .* slope="),
    (lambda: nn.Softmax(dim=1), "Softmax: dim= .* axis="),
    (lambda: images().sum(dim=1), r"sum: dim= is PyTorch's spelling; here it is axis= \(write axis=1\)"),
    (lambda: images().mean(1, keepdim=True), "mean: keepdim= .* keepdims="),
    (lambda: images().max(dim=1), "max: dim= .* axis="),
    (lambda: images().softmax(dim=1), "softmax: dim= .* axis="),
    (lambda: images().conv2d(Tensor.randn(3, 3, 3, 4), padding=1), "conv2d: padding= .* pad="),
    (lambda: F.conv2d(images(), Tensor.randn(3, 3, 3, 4), padding=1), "conv2d: padding= .* pad="),
    (lambda: F.conv2d(images(), weight=Tensor.randn(3, 3, 3, 4)), "conv2d: weight= .* W="),
    (lambda: images().max_pool2d(kernel_size=2), "max_pool2d: kernel_size= .* f="),
    (lambda: images().max_pool2d(2, ceil_mode=True), r"max_pool2d: ceil_mode= \(PyTorch's\) is not supported"),
    (lambda: Tensor.concatenate([images(), images()], dim=0), "concatenate: dim= .* axis="),
    (lambda: images().clip(min=0.0), "clip: min= .* low="),
    (lambda: images().leaky_relu(negative_slope=0.2), "leaky_relu: negative_slope= .* slope="),
    (lambda: F.cross_entropy(Tensor.randn(2, 3), [0, 1], label_smoothing=0.1), "cross_entropy: label_smoothing= "
     r"\(PyTorch's\) is not supported"),
    (lambda: images().sum().backward(gradient=np.ones(())), "backward: gradient= .* grad="),
    (lambda: images().conv2d(Tensor.randn(3, 3, 3, 4), foo=1), r"conv2d\(\) got an unexpected keyword argument 'foo'; "
     "it takes: W, b, stride, pad, dilation, groups"),
    (lambda: optim.SGD([Tensor.ones(2, requires_grad=True)], lr=0.1, foreach=True), r"SGD: foreach= \(PyTorch's\)"),
]


@pytest.mark.parametrize("call, message", SPELLINGS)
def test_pytorch_spellings_name_ours_from_the_public_function(call, message):
    with pytest.raises(TypeError, match=message) as info:
        call()
    assert "Ops" not in str(info.value) and "_Conv" not in str(info.value)


def test_pythons_own_argument_errors_name_tensor_not_the_mixin():
    with pytest.raises(TypeError, match=r"Tensor\.conv2d\(\) missing 1 required positional argument: 'W'"):
        images().conv2d()
    with pytest.raises(TypeError, match=r"Tensor\.max_pool2d\(\) missing 1 required positional argument: 'f'"):
        F.max_pool2d(images())
    with pytest.raises(TypeError, match=r"^Tensor\.exp\(\) takes 1 positional argument but 2 were given"):
        images().exp(2)
    with pytest.raises(TypeError, match=r"^Tensor\.maximum\(\) got an unexpected keyword argument 'y'"):
        images().maximum(y=1.0)
    with pytest.raises(TypeError, match=r"^Tensor\.zeros\(\) got an unexpected keyword argument 'size'"):
        Tensor.zeros(size=(2, 3))


def test_every_public_method_of_the_mixins_is_named_after_tensor():
    """Python names a function by its __qualname__ in its own argument errors: every method Tensor inherits says
    Tensor.<name>, never the mixin (ElementwiseOps.relu) that defines it."""
    for klass in Tensor.__mro__[1:-1]:
        for name, attr in vars(klass).items():
            fn = getattr(attr, "__func__", attr)
            if isinstance(fn, types.FunctionType) and not (name.startswith("_") and not name.endswith("__")):
                assert fn.__qualname__ == f"Tensor.{name}", (klass.__name__, name)


UNDECORATED = [  # methods without pytorch_args (no wrapper: they take PyTorch's keywords in **pytorch_keywords)
    (lambda x: x.relu(inplace=True), r"^relu: inplace= \(PyTorch's\) is not supported here: there are no in-place"),
    (lambda x: F.relu(x, inplace=True), r"^relu: inplace= \(PyTorch's\) is not supported"),
    (lambda x: x.transpose(dim0=0, dim1=1), r"^transpose: dim0= \(PyTorch's\) is not supported here: numpy's "
     r"transpose\(\*axes\) .* x\.swapaxes\(dim0, dim1\)"),
    (lambda x: x.reshape(shape=(3, 2)), r"^reshape: shape= \(PyTorch's\) is not supported here: give the shape "
     r"positionally: x\.reshape\(3, 2\)"),
    (lambda x: x.view(shape=(3, 2)), r"^view: shape= .* x\.view\(3, 2\)"),
    (lambda x: x.view(dtype=np.float64), r"^view: dtype= .* x\.astype\(dtype\)"),
    (lambda x: x.permute(dims=(1, 0)), r"^permute: dims= .* x\.permute\(1, 0\)"),
    (lambda x: x.broadcast_to(size=(2, 2, 3)), r"^broadcast_to: size= .* x\.broadcast_to\(2, 2, 3\)"),
    (lambda x: x.relu(foo=1), r"^relu\(\) got an unexpected keyword argument 'foo'; it takes: nothing"),
    (lambda x: x.reshape(foo=1), r"^reshape\(\) got an unexpected keyword argument 'foo'; it takes: \*shape"),
]


@pytest.mark.parametrize("call, message", UNDECORATED)
def test_undecorated_methods_name_the_op_and_give_the_pytorch_hint(call, message):
    with pytest.raises(TypeError, match=message) as info:
        call(Tensor(np.ones((2, 3))))
    assert "Ops" not in str(info.value)


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


# ----------------------------------------------------------------------------- 2. PyTorch-only attributes
ATTRIBUTES = [
    ("dim", r"x\.ndim"), ("numel", r"x\.size"), ("float", "float32"), ("double", "float64"), ("cpu", "CPU only"),
    ("cuda", "CPU only"), ("to", "CPU only"), ("retain_grad", "keep their .grad after backward"),
    ("grad_fn", r"x\.op"), ("clone", r"x \* 1"), ("clamp", r"x\.clip"), ("add_", r"no in-place ops \(x\.add_"),
    ("mul_", "no in-place ops"), ("zero_", "no in-place"), ("amax", r"x\.max\(axis\)"), ("long", "astype"),
]


@pytest.mark.parametrize("name, hint", ATTRIBUTES)
def test_pytorch_only_attributes_say_what_to_use(name, hint):
    x = Tensor.ones(2, 3)
    with pytest.raises(AttributeError, match=rf"'Tensor' object has no attribute '{name}': .*{hint}"):
        getattr(x, name)
    assert not hasattr(x, name)


def test_other_missing_attributes_stay_plain_attribute_errors():
    x = Tensor.ones(2)
    with pytest.raises(AttributeError, match=r"^'Tensor' object has no attribute 'frobnicate'$"):
        x.frobnicate  # noqa: B018
    with pytest.raises(AttributeError):
        x._private  # noqa: B018


def test_size_is_numpys_count_and_calling_it_points_to_shape():
    x = Tensor.ones(2, 3)
    assert x.size == 6 and x.size + 1 == 7 and isinstance(x.size, int) and np.zeros(x.size).shape == (6,)
    with pytest.raises(TypeError, match=r"x\.size is the number of elements \(6\), numpy's meaning, not a method; "
                                        r"PyTorch's x\.size\(\) is x\.shape here = \(2, 3\)"):
        x.size()
    with pytest.raises(TypeError, match=r"x\.size\(1\) is x\.shape\[1\] = 3"):
        x.size(1)


# ----------------------------------------------------------------------------- 3. transpose's numpy meaning
def test_transpose_with_the_identity_order_warns_and_points_to_swapaxes():
    x = Tensor.randn(3, 4, seed=0, requires_grad=True)
    with pytest.warns(UserWarning, match=r"transpose\(0, 1\) on a 2-D tensor changes nothing: numpy's transpose takes "
                                         r"all axes in their new order\. To swap two axes write x\.swapaxes\(0, 1\) "
                                         r"\(or x\.T for 2-D\)"):
        y = x.transpose(0, 1)
    assert y.shape == (3, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert x.T.shape == x.transpose().shape == x.transpose(1, 0).shape == x.swapaxes(0, 1).shape == (4, 3)
        assert x.permute(0, 1).shape == (3, 4)  # PyTorch's permute means the same as numpy's transpose: no warning


def test_transpose_of_two_axes_of_a_3d_tensor_says_numpys_meaning():
    x = Tensor.randn(2, 3, 4, seed=0)
    with pytest.raises(ValueError, match=r"transpose: axes \(0, 1\) are not a permutation of the 3 axes of shape "
                                         r"\(2, 3, 4\) \(numpy's transpose takes all axes in their new order; to "
                                         r"swap two axes write x\.swapaxes\(0, 1\)\)"):
        x.transpose(0, 1)


# ----------------------------------------------------------------------------- 3. conv weights in PyTorch's layout
def test_a_weight_only_in_pytorchs_layout_raises_naming_both_layouts_and_the_transpose():
    x = Tensor.randn(1, 8, 8, 3, seed=0)
    W = np.zeros((8, 3, 5, 5))  # PyTorch: 8 filters of 5x5 over 3 channels
    with pytest.raises(ValueError, match=r"conv2d: W has shape \(8, 3, 5, 5\), PyTorch's layout \(C_out, C_in, f_h, "
                                         r"f_w\) for x's 3 channels; ours is \(f_h, f_w, C_in, C_out\): pass "
                                         r"W\.transpose\(2, 3, 1, 0\) \(shape \(5, 5, 3, 8\)\)"):
        x.conv2d(W)
    x4 = Tensor.randn(1, 4, 4, 8, seed=0)
    Wt = np.zeros((8, 2, 5, 5))  # PyTorch's ConvTranspose2d(8, 2, 5): (C_in, C_out // groups, f_h, f_w)
    with pytest.raises(ValueError, match=r"conv_transpose2d: W has shape \(8, 2, 5, 5\), PyTorch's layout \(C_in, "
                                         r"C_out // groups, f_h, f_w\) for x's 8 channels; ours is \(f_h, f_w, "
                                         r"C_out // groups, C_in\): pass W\.transpose\(2, 3, 1, 0\)"):
        x4.conv_transpose2d(Wt)


def test_a_weight_that_fits_both_layouts_warns():
    x = Tensor.randn(1, 10, 10, 3, seed=0)
    with pytest.warns(UserWarning, match=r"conv2d: W of shape \(8, 3, 3, 3\) is read as ours \(f_h, f_w, C_in, "
                                         r"C_out\): a 8x3 window, 3 filters; in PyTorch's layout it would be 8 "
                                         r"filters of 3x3: then pass W\.transpose\(2, 3, 1, 0\)"):
        out = x.conv2d(np.zeros((8, 3, 3, 3)))
    assert out.shape == (1, 3, 8, 3)
    with warnings.catch_warnings():  # our own layout, square windows: silent
        warnings.simplefilter("error")
        x.conv2d(np.zeros((3, 3, 3, 8)))
        x.conv2d(np.zeros((3, 3, 3, 3)))
        nn.Conv2d(3, 3, 3)(x)


def test_layers_follow_the_default_dtype_when_none_is_given():
    from tinygrad_cnn import get_default_dtype, set_default_dtype
    before = get_default_dtype()
    try:
        set_default_dtype(np.float64)
        layers = [nn.Conv2d(3, 4, 3), nn.ConvTranspose2d(3, 4, 3), nn.Linear(3, 4), nn.BatchNorm2d(3)]
        assert {p.dtype for layer in layers for p in layer.parameters()} == {np.dtype(np.float64)}
        assert layers[3].running_mean.dtype == np.float64
        assert nn.Linear(3, 4, dtype=np.float32).W.dtype == np.float32
    finally:
        set_default_dtype(before)
    assert nn.Linear(3, 4).W.dtype == before


def test_the_layout_warning_is_back_after_a_create_graph_walk_that_raised():
    """The walk marks itself in a per-thread switch (modes.recording_walk), restored when it ends, even by an error."""
    from tinygrad_cnn.modes import recording_walk
    x = Tensor.randn(1, 4, 5, 3, seed=0, requires_grad=True)

    def fail(g):
        assert recording_walk.enabled
        raise KeyError("a hook failed")
    x.register_hook(fail)
    with pytest.raises(KeyError, match="a hook failed"):
        x.conv2d(Tensor.randn(3, 3, 3, 2, seed=1)).sum().backward(create_graph=True)
    assert not recording_walk.enabled
    with pytest.warns(UserWarning, match="PyTorch's layout"):
        x.conv2d(Tensor.randn(1, 3, 3, 3, seed=1))


def test_the_layout_warning_is_for_the_users_forward_not_the_librarys_own_backward_ops():
    """The create_graph walk runs conv_transpose2d and conv2d of the user's weight and of gradients itself: a
    weight that only those internal readings find ambiguous (W (2, 1, 2, 2) read by conv_transpose2d) gives no
    warning; one that fits both layouts at the user's conv2d warns once, there."""
    from tinygrad_cnn import grad
    for W_shape, warned in (((2, 1, 2, 2), 0), ((1, 3, 3, 3), 1)):
        x = Tensor.randn(1, 4, 5, W_shape[2], seed=0, requires_grad=True)
        W = Tensor.randn(*W_shape, seed=1, requires_grad=True)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            dx, dW = grad(x.conv2d(W).sum(), (x, W), create_graph=True)
            grad((dx * dx).sum() + (dW * dW).sum(), (x, W))
        layout = [w for w in caught if "PyTorch's layout" in str(w.message)]
        assert len(layout) == warned and all(w.filename == __file__ for w in layout), [str(w.message) for w in caught]
