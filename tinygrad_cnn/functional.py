"""The ops as functions, and the losses.

Each function here is the Tensor method of the same name (one definition, in ``ops/``), taking its first
argument as anything array-like: ``F.conv2d(x, W, b, stride=1, pad=0)`` is ``Tensor.as_tensor(x).conv2d(W, b,
...)``. ``help(F.conv2d)`` shows the op's own docstring.
"""

from __future__ import annotations

import functools

from .losses import cross_entropy, mse_loss
from .tensor import Tensor


def _function(method):
    """Tensor.method as a function of (x, ...): x is lifted to a Tensor first. Docstring and name are the op's."""
    @functools.wraps(method)
    def function(x, *args, **kwargs):
        return method(Tensor.as_tensor(x), *args, **kwargs)
    return function


# elementwise (ops/elementwise.py)
exp = _function(Tensor.exp)
log = _function(Tensor.log)
sqrt = _function(Tensor.sqrt)
abs = _function(Tensor.abs)  # noqa: A001 (shadows the builtin inside this namespace, as numpy's np.abs)
clip = _function(Tensor.clip)
relu = _function(Tensor.relu)
leaky_relu = _function(Tensor.leaky_relu)
sigmoid = _function(Tensor.sigmoid)
tanh = _function(Tensor.tanh)
softmax = _function(Tensor.softmax)
log_softmax = _function(Tensor.log_softmax)
matmul = _function(Tensor.matmul)
maximum = _function(Tensor.maximum)
minimum = _function(Tensor.minimum)

# reductions (ops/reduce.py)
sum = _function(Tensor.sum)  # noqa: A001
mean = _function(Tensor.mean)
max = _function(Tensor.max)  # noqa: A001
min = _function(Tensor.min)  # noqa: A001

# shape (ops/shape.py)
reshape = _function(Tensor.reshape)
flatten = _function(Tensor.flatten)
transpose = _function(Tensor.transpose)
concatenate = Tensor.concatenate
stack = Tensor.stack

# CNN (ops/cnn.py)
pad2d = _function(Tensor.pad2d)
conv2d = _function(Tensor.conv2d)
conv_transpose2d = _function(Tensor.conv_transpose2d)
batch_norm2d = _function(Tensor.batch_norm2d)
dropout = _function(Tensor.dropout)
max_pool2d = _function(Tensor.max_pool2d)
avg_pool2d = _function(Tensor.avg_pool2d)

__all__ = [
    "exp", "log", "sqrt", "abs", "clip", "relu", "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax", "matmul",
    "maximum", "minimum",
    "sum", "mean", "max", "min", "reshape", "flatten", "transpose", "concatenate", "stack",
    "pad2d", "conv2d", "conv_transpose2d", "batch_norm2d", "dropout", "max_pool2d", "avg_pool2d",
    "mse_loss", "cross_entropy",
]
