"""What a PyTorch user writes meets an error that says what to write here (hints.py): positional arguments past ours
name PyTorch's meaning and the keyword to write, PyTorch's keyword spellings name ours, PyTorch-only attributes say
what to use, and ``x.size`` is numpy's count.
"""

import types

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, grad, nn, optim


def images(c=3, seed=0):
    return Tensor.randn(2, 6, 6, c, seed=seed, requires_grad=True)


# ----------------------------------------------------------------------------- positional arguments
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


# ----------------------------------------------------------------------------- PyTorch's keyword spellings
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


# ----------------------------------------------------------------------------- PyTorch-only attributes
ATTRIBUTES = [
    ("dim", r"x\.ndim"), ("numel", r"x\.size"), ("float", "float32"), ("double", "float64"), ("cpu", "CPU only"),
    ("cuda", "CPU only"), ("to", "CPU only"), ("retain_grad", "keep their .grad after backward"),
    ("grad_fn", r"x\.op"), ("clone", r"x \* 1"), ("clamp", r"x\.clip"), ("add_", r"no in-place ops \(x\.add_"),
    ("mul_", "no in-place ops"), ("zero_", "no in-place"), ("amax", r"x\.max\(axis\)"), ("long", "astype"),
    ("repeat", r"Tensor\.concatenate\(\[x\] \* n, axis\)"), ("chunk", r"slices: x\[:, :k\], x\[:, k:\]"),
    ("split", r"slices"), ("masked_fill", r"x \* ~mask \+ np\.where\(mask, value, 0\.0\)"),
    ("where", r"x \* mask \+ y \* ~mask, mask a numpy bool array \(x and y finite: inf \* 0 is NaN; with -inf"
              r" use masked_fill's form\)"),
    ("all", r"\(x\.data != 0\)\.all\(\)"), ("any", r"\.any\(\)"),
    ("prod", r"np\.prod\(x\.data"), ("cumsum", r"np\.cumsum\(x\.data"), ("mT", r"x\.swapaxes\(-2, -1\)"),
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
