"""numpy's protocols on Tensor (``__array_ufunc__``, ``__array_function__``): numpy calls keep the graph.

Without them ``np.maximum(0, Z)`` (the notebook's ReLU) or ``np.exp(t)`` would return a plain ndarray, silently
cut from the graph, so every weight before it would get no gradient. Here a ufunc or function that the library
has an op for runs that op, as if the method had been called (ndarrays and scalars among its inputs become
constants); comparisons and data queries (``np.isnan``, ``np.shape``, ``np.allclose``, ...) work on the data, as
they have no gradient; anything else raises TypeError naming the method to use, or saying to call it on
``np.asarray(t)`` to leave the graph on purpose. ``np.asarray(t)`` and ``np.array(t)`` still give the data.
"""

from __future__ import annotations

import functools
import inspect

import numpy as np

# ufunc -> the name of the Tensor method it is; every input is lifted to a Tensor first
UFUNC_METHODS = {
    np.add: "__add__", np.subtract: "__sub__", np.multiply: "__mul__", np.divide: "__truediv__",
    np.power: "__pow__", np.matmul: "matmul", np.maximum: "maximum", np.minimum: "minimum",
    np.negative: "__neg__", np.exp: "exp", np.log: "log", np.sqrt: "sqrt", np.absolute: "abs", np.tanh: "tanh",
}
# ufuncs with no gradient (bool results): computed on the data, as the comparison operators are
DATA_UFUNCS = {np.equal, np.not_equal, np.less, np.less_equal, np.greater, np.greater_equal,
               np.isnan, np.isinf, np.isfinite}


def _sum(t, a, axis=None, keepdims=False):
    return t.as_tensor(a).sum(axis, keepdims)


def _mean(t, a, axis=None, keepdims=False):
    return t.as_tensor(a).mean(axis, keepdims)


def _max(t, a, axis=None, keepdims=False):
    return t.as_tensor(a).max(axis, keepdims)


def _min(t, a, axis=None, keepdims=False):
    return t.as_tensor(a).min(axis, keepdims)


def _reshape(t, a, shape):
    return t.as_tensor(a).reshape(shape)


def _transpose(t, a, axes=None):
    return t.as_tensor(a).transpose(*(() if axes is None else (axes,)))


def _concatenate(t, arrays, axis=0):
    return t.concatenate(arrays, axis)


def _stack(t, arrays, axis=0):
    return t.stack(arrays, axis)


def _clip(t, a, a_min=None, a_max=None, min=None, max=None):  # noqa: A002 (numpy's own argument names)
    return t.as_tensor(a).clip(a_min if min is None else min, a_max if max is None else max)


# numpy function -> the op it is, called with numpy's own argument names (only those listed are supported)
FUNCTION_OPS = {np.sum: _sum, np.mean: _mean, np.max: _max, np.amax: _max, np.min: _min, np.amin: _min,
                np.reshape: _reshape, np.transpose: _transpose, np.concatenate: _concatenate, np.stack: _stack,
                np.clip: _clip}
# functions with no gradient (shapes, indices, bools, constants): computed on the data
DATA_FUNCTIONS = {np.shape, np.ndim, np.size, np.argmax, np.argmin, np.allclose, np.isclose, np.array_equal,
                  np.zeros_like, np.ones_like}
# what to write instead, for calls users reach for
HINTS = {"dot": "write t @ u (Tensor.matmul)", "square": "write t * t", "add.reduce": "write t.sum()",
         "maximum.reduce": "write t.max()", "minimum.reduce": "write t.min()", "fmax": "write t.maximum(u)",
         "fmin": "write t.minimum(u)", "where": "multiply by a mask, or use t.maximum(u) / t.clip(low, high)"}


def no_tensor_op(name: str) -> TypeError:
    hint = HINTS.get(name, "no Tensor op does this")
    return TypeError(f"np.{name} on a Tensor: {hint}. numpy would return a plain array cut from the graph, so "
                     f"nothing before it would get a gradient. To leave the graph on purpose, call it on "
                     f"np.asarray(t).")


def unsupported_argument(name: str, argument: str) -> TypeError:
    return TypeError(f"np.{name}: argument {argument}= is not supported on Tensors (the result is a new Tensor, "
                     f"in the inputs' dtype); call it without {argument}=, or on np.asarray(t) to leave the graph")


@functools.cache
def _parameters(fn) -> tuple:
    """(numpy's signature of fn, the argument names the op supports). numpy before 2.4 gives its C functions
    (concatenate, stack's helpers) no signature: then the op's own, which names numpy's arguments, with the other
    keywords collected to be refused by name."""
    op = inspect.signature(FUNCTION_OPS[fn])
    supported = tuple(op.parameters)[1:]
    try:
        return inspect.signature(fn), supported
    except ValueError:
        rest = inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD)
        return op.replace(parameters=[*list(op.parameters.values())[1:], rest]), supported


def _data(x):
    return x._data if isinstance(x, NumpyProtocol) else x


class NumpyProtocol:
    """Mixin of Tensor: numpy ufuncs and functions on Tensors run the library's ops (see the module docstring)."""

    __slots__ = ()

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        name = ufunc.__name__ if method == "__call__" else f"{ufunc.__name__}.{method}"
        if method != "__call__" or not (ufunc in UFUNC_METHODS or ufunc in DATA_UFUNCS):
            raise no_tensor_op(name)
        if kwargs:  # out=, where=, dtype=, casting=, ...
            raise unsupported_argument(name, next(iter(kwargs)))
        if ufunc in DATA_UFUNCS:
            return ufunc(*[_data(x) for x in inputs])
        first, *rest = [x if isinstance(x, NumpyProtocol) else self._lift(x) for x in inputs]
        return getattr(first, UFUNC_METHODS[ufunc])(*rest)

    def __array_function__(self, func, types, args, kwargs):
        if func in DATA_FUNCTIONS:
            return func(*[_data(a) for a in args], **{k: _data(v) for k, v in kwargs.items()})
        if func not in FUNCTION_OPS:
            raise no_tensor_op(func.__name__)
        signature, supported = _parameters(func)
        given = signature.bind(*args, **kwargs).arguments
        given.update(given.pop("kwargs", {}))  # np.clip's **kwargs
        for argument in given:
            if argument not in supported:
                raise unsupported_argument(func.__name__, argument)
        return FUNCTION_OPS[func](self, **given)
