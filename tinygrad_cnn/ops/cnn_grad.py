"""The ops a CNN op's backward is made of, so ``create_graph=True`` records them as ops (NHWC, as ops/cnn.py).

conv2d's input gradient is a conv_transpose2d of g (``_conv2d_input_grad`` picks the output_padding that gives back
the input's size); its weight gradient is ``conv2d_weight_grad``, the correlation of the input with g. A max pool's
backward is ``max_pool2d_backward``, a scatter of g to each window's max, whose own backward is the gather
``max_pool2d_gather``, and back: both carry the ties policy, so it holds at every order. An average pool's
backward is ``avg_pool2d_backward``, whose backward is avg_pool2d itself. Each op has its numpy kernel forward,
a ``_backward`` that writes its rule on arrays and on Tensors (ops/elementwise.py says how), and declared facts;
every derivative of these is again one of them, or conv2d / conv_transpose2d.
"""

from __future__ import annotations

import numpy as np

from ..kernels.checks import (
    as_positive_pair,
    check_conv2d_args,
    check_groups,
    check_images,
    check_pool2d_args,
    conv_transpose2d_output_hw,
    dense,
    output_size,
)
from ..kernels.conv import conv2d_forward, conv2d_input_grad, conv2d_saved, conv2d_weight_grad
from ..kernels.pool import (
    PoolSaved,
    avg_pool_backward,
    avg_pool_forward,
    max_pool_backward,
    max_pool_forward,
    max_pool_gather,
)
from .facts import declare


def _like(shape: tuple, dtype) -> np.ndarray:
    """A read-only zeros view of ``shape`` (no memory): what a kernel reads only the shape and dtype of."""
    return np.broadcast_to(np.zeros((), dtype), shape)


def _check_shape(op: str, name: str, t, expected: tuple, why: str) -> None:
    if t.shape != tuple(expected):
        raise ValueError(f"{op}: {name} has shape {t.shape}, but {why} gives {tuple(expected)}")


class CNNGradOps:
    """Mixin of Tensor: conv2d_weight_grad, max_pool2d_backward, max_pool2d_gather, avg_pool2d_backward."""

    __slots__ = ()

    def _conv2d_input_grad(self, W, x_shape: tuple, stride, pads, dilation, groups):
        """conv2d's input gradient from g = self (m, n_H, n_W, n_C): conv_transpose2d of g with W, given the rows and
        columns the conv2d's floor dropped as output_padding so the result has x's shape (m, n_H_prev, n_W_prev, C)."""
        size = conv_transpose2d_output_hw(self.shape, W.shape[:2], stride, pads, (0, 0), dilation)
        dropped = (x_shape[1] - size[0], x_shape[2] - size[1])
        return self.conv_transpose2d(W, stride=stride, pad=pads, output_padding=dropped, dilation=dilation,
                                     groups=groups)

    CONV2D_WEIGHT_GRAD = declare("conv2d_weight_grad", "dA_prev = conv_transpose2d(dZ, g), ddZ = conv2d(A_prev, g)",
                                 inputs=("A_prev", "dZ"), label_defaults={"dilation": (1, 1), "groups": 1})

    def conv2d_weight_grad(self, dZ, f, stride=1, pad=0, dilation=1, groups=1):
        """conv2d's weight gradient as an op: dW[kh, kw, c, co] = sum over i, h, w of A_slice[kh, kw, c] *
        dZ[i, h, w, co].

        self: A_prev (m, n_H_prev, n_W_prev, n_C_prev); dZ (m, n_H, n_W, n_C), the gradient at the output of
        ``A_prev.conv2d(W, stride=stride, pad=pad, dilation=dilation, groups=groups)`` with W of window f (int or
        (f_h, f_w)) -> dW (f_h, f_w, n_C_prev // groups, n_C). Bilinear in A_prev and dZ, so its own backward is a
        conv_transpose2d (for A_prev) and a conv2d (for dZ) with the gradient g at dW as their weight.
        """
        x, dZ = self, self.as_tensor(dZ)
        op = "conv2d_weight_grad"
        check_images(op, "dZ", dZ._data)
        check_images(op, "A_prev", x._data)
        f = as_positive_pair(op, "f", f)
        check_groups(op, groups, {"n_C_prev": x.shape[3], "n_C": dZ.shape[3]},
                             f"A_prev.shape={x.shape}, dZ.shape={dZ.shape}")
        W_like = _like((*f, x.shape[3] // groups, dZ.shape[3]), np.result_type(x.dtype, dZ.dtype))
        stride, pads = check_conv2d_args(x._data, W_like, None, stride, pad, dilation, groups)
        dilation = as_positive_pair(op, "dilation", dilation)
        saved = conv2d_saved(x._data, W_like, None, stride, pads, dilation, groups)
        _check_shape(op, "dZ", dZ, saved.out_shape, f"a conv2d of A_prev {x.shape} with W {W_like.shape}, "
                     f"stride={stride}, pad={pads}, dilation={dilation}")
        dZ_data = dense(dZ._data).astype(W_like.dtype, copy=False)
        out = conv2d_weight_grad(dZ_data, saved)

        def _backward(g):
            if type(g) is not np.ndarray:
                return (dZ._conv2d_input_grad(g, x.shape, stride, pads, dilation, groups) if x.requires_grad else None,
                        x.conv2d(g, None, stride, pads, dilation, groups) if dZ.requires_grad else None)
            g = g.astype(W_like.dtype, copy=False)
            return (conv2d_input_grad(dZ_data, saved._replace(W=g)) if x.requires_grad else None,
                    conv2d_forward(x._data, g, None, stride, pads, dilation, groups)[0]
                    if dZ.requires_grad else None)
        return self.from_op(out, (x, dZ), self.CONV2D_WEIGHT_GRAD, _backward, stride=stride, pad=pads,
                            dilation=dilation, groups=groups)

    MAX_POOL2D_BACKWARD = declare("max_pool2d_backward", "ddA = g at each window's max (ties: the ties policy), "
                                                         "dA_prev = 0", inputs=("dA", "A_prev"),
                                  label_defaults={"ties": "first"})

    def max_pool2d_backward(self, A_prev, f, stride=None, ties: str = "first"):
        """max_pool2d's backward as an op: dA = self (m, n_H, n_W, C), the gradient at ``A_prev.max_pool2d(f, stride,
        ties)``, scattered to each window's max of A_prev (m, n_H_prev, n_W_prev, C) as the ties policy says ->
        (m, n_H_prev, n_W_prev, C). A_prev only says where the maxima are: it gets no gradient (0 almost
        everywhere). Its own backward is max_pool2d_gather.
        """
        dA, A_prev = self, self.as_tensor(A_prev)
        op = "max_pool2d_backward"
        f, stride = check_pool2d_args(op, A_prev._data, f, stride, ties)
        pooled, saved = max_pool_forward(A_prev._data, f, stride, ties)
        _check_shape(op, "dA", dA, pooled.shape, f"max_pool2d of A_prev {A_prev.shape} with f={f}, stride={stride}")

        def _backward(g):
            if type(g) is not np.ndarray:
                return g.max_pool2d_gather(A_prev, f, stride, ties), None
            return max_pool_gather(g, saved), None
        return self.from_op(max_pool_backward(dA._data, saved), (dA, A_prev), self.MAX_POOL2D_BACKWARD,
                            _backward, f=f, stride=stride, ties=ties)

    MAX_POOL2D_GATHER = declare("max_pool2d_gather", "da = g to each window's max (ties: the ties policy), "
                                                     "dA_prev = 0", inputs=("a", "A_prev"),
                                label_defaults={"ties": "first"})

    def max_pool2d_gather(self, A_prev, f, stride=None, ties: str = "first"):
        """max_pool2d_backward's adjoint as an op: a = self, shaped as A_prev (m, n_H_prev, n_W_prev, C) -> (m, n_H,
        n_W, C): from each window, a's entries at A_prev's window max, weighted as the ties policy shares a window's
        gradient ("first": the first max, "split": their mean, "all": their sum). A_prev gets no gradient. Its own
        backward is max_pool2d_backward.
        """
        a, A_prev = self, self.as_tensor(A_prev)
        op = "max_pool2d_gather"
        f, stride = check_pool2d_args(op, A_prev._data, f, stride, ties)
        _check_shape(op, "a", a, A_prev.shape, "A_prev's shape")
        _, saved = max_pool_forward(A_prev._data, f, stride, ties)

        def _backward(g):
            if type(g) is not np.ndarray:
                return g.max_pool2d_backward(A_prev, f, stride, ties), None
            return max_pool_backward(g, saved), None
        return self.from_op(max_pool_gather(a._data, saved), (a, A_prev), self.MAX_POOL2D_GATHER, _backward,
                            f=f, stride=stride, ties=ties)

    AVG_POOL2D_BACKWARD = declare("avg_pool2d_backward", "ddA = avg_pool2d(g)", inputs=("dA",))

    def avg_pool2d_backward(self, size, f, stride=None):
        """avg_pool2d's backward as an op: dA = self (m, n_H, n_W, C), the gradient at the output of an average pool
        of an input of ``size`` (n_H_prev, n_W_prev), each window's share g / (f_h * f_w) added to its entries ->
        (m, n_H_prev, n_W_prev, C). Linear, and avg_pool2d is its adjoint: its backward is ``g.avg_pool2d(f, stride)``.
        """
        op = "avg_pool2d_backward"
        check_images(op, "dA", self._data)
        size = as_positive_pair(op, "size", size)
        x_like = _like((self.shape[0], *size, self.shape[3]), self.dtype)
        f, stride = check_pool2d_args(op, x_like, f, stride)
        pooled = output_size(size[0], f[0], 0, stride[0]), output_size(size[1], f[1], 0, stride[1])
        _check_shape(op, "dA", self, (self.shape[0], *pooled, self.shape[3]), f"avg_pool2d of size {size} with f={f}, "
                     f"stride={stride}")
        saved = PoolSaved(x_like, _like(self.shape, self.dtype), f, stride, None)

        def _backward(g):
            if type(g) is not np.ndarray:
                return (g.avg_pool2d(f, stride),)
            return (avg_pool_forward(g, f, stride)[0],)
        return self.from_op(avg_pool_backward(self._data, saved), (self,), self.AVG_POOL2D_BACKWARD,
                            _backward, f=f, stride=stride, size=size)
