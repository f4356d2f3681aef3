"""The CNN ops (NHWC): pad2d, conv2d (dilation, groups), conv_transpose2d, batch_norm2d, dropout, max_pool2d,
avg_pool2d.

Each op checks its arguments (before anything is recorded), runs the numpy kernel forward from kernels/, and
defines a ``_backward(g)`` closure right beside it that runs the kernel backward and returns one gradient per
input (None where an input needs none, and then the work is skipped); on a Tensor g (create_graph, see
elementwise.py) it records the same rule as ops instead: conv_transpose2d and conv2d_weight_grad for a conv, the
pools' backward ops (ops/cnn_grad.py), batch norm's closed form in Tensor ops. Hyper-parameters go into the op's
arguments in canonical form (pairs, pads as ((top, bottom), (left, right))); a drawn graph compacts them, e.g.
``conv2d stride=2 pad=1`` or ``max_pool2d f=3 stride=2``. Rules use the notebook's names for the inputs (A_prev,
W, b) and g for the gradient at the output (the notebook's dZ).
"""

from __future__ import annotations

import warnings

import numpy as np

from ..anomaly import user_stacklevel
from ..hints import pytorch_args
from ..kernels.checks import (
    as_positive_pair,
    check_batch_norm_args,
    check_conv2d_args,
    check_conv_transpose2d_args,
    check_dropout_p,
    check_pad2d_args,
    check_pool2d_args,
    check_weight_layout,
)
from ..kernels.conv import conv2d_backward, conv2d_forward, conv_transpose2d_backward, conv_transpose2d_forward
from ..kernels.norm import batch_norm_backward, batch_norm_forward, dropout_mask
from ..kernels.pad import pad_forward, unpad
from ..kernels.pool import avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward
from ..modes import recording_walk
from ..seeding import generator
from .facts import declare


def _data(t):
    return None if t is None else t._data


def _warn_of_pytorchs_layout(op: str, x, W, groups: int) -> None:
    """Warn, naming the user's line, when W would also fit x in PyTorch's layout (kernels' check_weight_layout);
    not when the op runs inside a recording backward walk (create_graph, ``modes.recording_walk`` on in this thread):
    there the library itself calls it, with the weight the user's forward was already warned about, or a gradient."""
    text = check_weight_layout(op, x.shape[3], W.shape, groups)
    if text and not recording_walk.enabled:
        warnings.warn(text, UserWarning, stacklevel=user_stacklevel())


def _bias_grad(g, b):
    """db on Tensors: g summed over (m, n_H, n_W), in b's shape; None when b needs none."""
    return g.sum(axis=(0, 1, 2)).reshape(b.shape) if b.requires_grad else None


def _batch_norm_grads(g, x, gamma, beta, saved, eps: float) -> tuple:
    """batch_norm2d's closed-form backward on Tensors (create_graph), statistics over (m, n_H, n_W):
    dx = gamma/std*(g - mean(g) - x_hat*mean(g*x_hat)) in training, where mean, std and x_hat are recomputed from x
    as ops (they depend on x); in eval std is the running one, a constant, so dx = gamma/std*g, and x_hat is x's
    saved x_hat plus (x - x's values)/std, its values with x's graph. dgamma = sum(g*x_hat), dbeta = sum(g)."""
    axes = (0, 1, 2)
    if saved.training:
        centered = x - x.mean(axis=axes)
        inv_std = ((centered * centered).mean(axis=axes) + eps) ** -0.5
        x_hat = centered * inv_std
        dx = gamma * inv_std * (g - g.mean(axis=axes) - x_hat * (g * x_hat).mean(axis=axes))
    else:
        inv_std = saved.inv_std
        x_hat = (x - x._data) * inv_std + saved.x_hat
        dx = g * (gamma * inv_std)
    return (dx if x.requires_grad else None, (g * x_hat).sum(axis=axes) if gamma.requires_grad else None,
            g.sum(axis=axes) if beta.requires_grad else None)


class CNNOps:
    """Mixin of Tensor: pad2d, conv2d, conv_transpose2d, batch_norm2d, dropout, max_pool2d, avg_pool2d on NHWC
    images (m, n_H, n_W, n_C)."""

    __slots__ = ()

    PAD2D = declare("pad2d", "dX = g without the border", inputs=("X",), label_defaults={"value": 0.0})

    @pytorch_args("pad2d", ("pad", "mode", "value"), missing={"mode": "pad2d pads with a constant: write value=..."})
    def pad2d(self, pad, *, value: float = 0.0):
        """Pad the rows and columns of x (m, n_H, n_W, n_C) with ``value``.

        pad: int, (p_h, p_w) or ((top, bottom), (left, right)) -> (m, top + n_H + bottom, left + n_W + right, n_C)
        """
        pads = check_pad2d_args("pad2d", self._data, pad, value)
        out = pad_forward(self._data, pads, value)

        def _backward(g):  # a slice: the same on arrays and on Tensors (a getitem op)
            return (unpad(g, pads),)
        return self.from_op(out, (self,), self.PAD2D, _backward, pad=pads, value=value)

    CONV2D = declare("conv2d", "dA_prev += W*g, dW += A_slice*g, db += g, over every window",
                     inputs=("A_prev", "W", "b"), formula="conv2d", windows=True,
                     filter_channels=("input channel", "output channel"),
                     label_defaults={"dilation": (1, 1), "groups": 1})

    @pytorch_args("conv2d", ("weight", "bias", "stride", "padding", "dilation", "groups"))
    def conv2d(self, W, b=None, stride=1, pad=0, dilation=1, groups=1):
        """2-D convolution (cross-correlation, as the notebook) of NHWC images with n_C filters.

        x (m, n_H_prev, n_W_prev, n_C_prev), W (f_h, f_w, n_C_prev, n_C) (with groups: (f_h, f_w, n_C_prev // groups,
        n_C)), b None, (n_C,) or (1, 1, 1, n_C); stride int or (s_h, s_w);
        pad int, (p_h, p_w), ((top, bottom), (left, right)), "same" or "valid";
        dilation int or (d_h, d_w): the window's taps are d apart (an f x f window spans d * (f - 1) + 1);
        groups: the channels split into groups convolved separately, output channel c in group c // (n_C // groups)
        (as PyTorch); groups = n_C_prev is a depthwise convolution.
        -> (m, n_H, n_W, n_C) with n_H = floor((n_H_prev + top + bottom - d_h * (f_h - 1) - 1) / s_h) + 1 (n_W alike)
        """
        x, W = self, self.as_tensor(W)
        b = None if b is None else self.as_tensor(b)
        stride, pads = check_conv2d_args(x._data, W._data, _data(b), stride, pad, dilation, groups)
        _warn_of_pytorchs_layout("conv2d", x, W, groups)
        dilation = as_positive_pair("conv2d", "dilation", dilation)
        out, saved = conv2d_forward(x._data, W._data, _data(b), stride, pads, dilation, groups)

        def _backward(g):
            if type(g) is not np.ndarray:  # dA_prev: a conv_transpose2d of g; dW: conv2d_weight_grad
                dx = g._conv2d_input_grad(W, x.shape, stride, pads, dilation, groups) if x.requires_grad else None
                dW = x.conv2d_weight_grad(g, W.shape[:2], stride, pads, dilation, groups) if W.requires_grad else None
                return (dx, dW) if b is None else (dx, dW, _bias_grad(g, b))
            dx, dW, db = conv2d_backward(g, saved, need_dx=x.requires_grad, need_dW=W.requires_grad,
                                                 need_db=b is not None and b.requires_grad)
            return (dx, dW) if b is None else (dx, dW, db)
        parents = (x, W) if b is None else (x, W, b)
        return self.from_op(out, parents, self.CONV2D, _backward, stride=stride, pad=pads, dilation=dilation,
                            groups=groups)

    CONV_TRANSPOSE2D = declare("conv_transpose2d", "dx = conv2d(g, W), dW += g_slice*x, db += g",
                               inputs=("x", "W", "b"), filter_channels=("output channel", "input channel"),
                               label_defaults={"output_padding": (0, 0), "dilation": (1, 1), "groups": 1})

    @pytorch_args("conv_transpose2d", ("weight", "bias", "stride", "padding", "output_padding", "groups", "dilation"))
    def conv_transpose2d(self, W, b=None, stride=1, pad=0, output_padding=0, *, dilation=1, groups=1):
        """Transposed convolution: the adjoint of ``conv2d`` with the same W layout (what upsamples in a U-Net).

        W (f_h, f_w, n_C_out // groups, n_C_in) is the weight of the conv2d that maps n_C_out channels to n_C_in;
        ``x.conv_transpose2d(W, stride=s, pad=p)`` is that conv2d's input gradient dA_prev for dZ = x: each input
        entry scatters x[i, h, w, c] * W[:, :, :, c] onto the output window at (h * s_h, w * s_w), then the pads
        are cropped off. PyTorch's ``conv_transpose2d`` weight (n_C_in, n_C_out // groups, f_h, f_w) is
        ``W.transpose(3, 2, 0, 1)``.
        x (m, n_H, n_W, n_C_in), b None, (n_C_out,) or (1, 1, 1, n_C_out); stride, dilation int or pair; pad int,
        pair or ((top, bottom), (left, right)) (no "same"); output_padding int or pair, each < its stride (it adds
        rows/cols at the bottom/right, picking one of the input sizes the conv2d maps to n_H).
        -> (m, H, W_out, n_C_out), H = (n_H - 1) * s_h - top - bottom + d_h * (f_h - 1) + 1 + output_padding_h
        """
        x, W = self, self.as_tensor(W)
        b = None if b is None else self.as_tensor(b)
        stride, pads, output_padding = check_conv_transpose2d_args(
            x._data, W._data, _data(b), stride, pad, output_padding, dilation, groups)
        _warn_of_pytorchs_layout("conv_transpose2d", x, W, groups)
        dilation = as_positive_pair("conv_transpose2d", "dilation", dilation)
        out, saved = conv_transpose2d_forward(x._data, W._data, _data(b), stride, pads, output_padding,
                                                      dilation, groups)

        def _backward(g):
            if type(g) is not np.ndarray:  # dx: a conv2d of g; dW: conv2d_weight_grad with g as the conv's input
                dx = g.conv2d(W, None, stride, pads, dilation, groups) if x.requires_grad else None
                dW = g.conv2d_weight_grad(x, W.shape[:2], stride, pads, dilation, groups) if W.requires_grad else None
                return (dx, dW) if b is None else (dx, dW, _bias_grad(g, b))
            dx, dW, db = conv_transpose2d_backward(g, saved, need_dx=x.requires_grad,
                                                           need_dW=W.requires_grad,
                                                           need_db=b is not None and b.requires_grad)
            return (dx, dW) if b is None else (dx, dW, db)
        parents = (x, W) if b is None else (x, W, b)
        return self.from_op(out, parents, self.CONV_TRANSPOSE2D, _backward, stride=stride, pad=pads,
                            output_padding=output_padding, dilation=dilation, groups=groups)

    BATCH_NORM2D = declare("batch_norm2d", "dx = gamma/std*(g - mean(g) - x_hat*mean(g*x_hat)), "
                                           "dgamma = sum(g*x_hat), dbeta = sum(g)",
                           inputs=("x", "gamma", "beta"),
                           label_defaults={"training": True, "momentum": 0.1, "eps": 1e-5})

    @pytorch_args("batch_norm2d", weight="gamma", bias="beta", note=(
        "PyTorch's F.batch_norm(input, running_mean, running_var, weight, bias, training, ...) has another order; "
        "here: x.batch_norm2d(gamma, beta, running_mean=..., running_var=..., training=...)"))
    def batch_norm2d(self, gamma, beta, *, running_mean=None, running_var=None, training: bool = True,
                     momentum: float = 0.1, eps: float = 1e-5):
        """Batch normalization per channel of NHWC x: gamma * (x - mean) / sqrt(var + eps) + beta.

        x (m, n_H, n_W, n_C); gamma, beta (n_C,) (Tensors to learn them); running_mean, running_var None or
        writable (n_C,) numpy arrays.
        training=True: mean and biased var of the batch over (m, n_H, n_W); the running statistics, when given,
        are updated IN PLACE as PyTorch's ``F.batch_norm`` does: new = (1 - momentum) * old + momentum * batch
        (var unbiased, * N / (N - 1), N = m * n_H * n_W). training=False: the running statistics normalize (they
        are required) and stay as they are. -> (m, n_H, n_W, n_C)
        The backward is the closed form (not a composition of ops): with x_hat = (x - mean) / sqrt(var + eps),
        dx = gamma / sqrt(var + eps) * (g - mean(g) - x_hat * mean(g * x_hat)), dgamma = sum(g * x_hat),
        dbeta = sum(g) (eval: dx = gamma / sqrt(running_var + eps) * g).
        """
        gamma, beta = self.as_tensor(gamma), self.as_tensor(beta)
        check_batch_norm_args(self._data, gamma._data, beta._data, running_mean, running_var, eps, momentum,
                                      training)
        if training and running_mean is not None:
            for name, buffer in (("running_mean", running_mean), ("running_var", running_var)):
                if not buffer.flags.writeable or buffer.dtype.kind != "f":
                    raise ValueError(f"batch_norm2d: {name} must be a writable float array (training updates it "
                                     f"in place), got dtype {buffer.dtype}, writeable={buffer.flags.writeable}")
        out, saved, new_mean, new_var = batch_norm_forward(
            self._data, gamma._data, beta._data, eps, bool(training), running_mean, running_var, momentum)
        if training and running_mean is not None:
            running_mean[...], running_var[...] = new_mean, new_var

        def _backward(g):
            if type(g) is not np.ndarray:
                return _batch_norm_grads(g, self, gamma, beta, saved, eps)
            return batch_norm_backward(g, saved)
        return self.from_op(out, (self, gamma, beta), self.BATCH_NORM2D, _backward, training=bool(training),
                            momentum=momentum, eps=eps)

    DROPOUT = declare("dropout", "da = g*mask", entrywise=True)

    @pytorch_args("dropout", ("p", "training", "inplace"))
    def dropout(self, p: float = 0.5, training: bool = True, *, rng=None):
        """Inverted dropout: each entry is zeroed with probability p, survivors are scaled by 1 / (1 - p).

        x any shape -> same shape. rng: a numpy Generator, a seed or None (``manual_seed``'s generator, else fresh
        entropy); the layer ``nn.Dropout(p, seed)`` keeps one Generator so its masks are reproducible. The mask is
        saved for the backward (dx = g * mask). When not training, or p = 0, x itself comes back (nothing recorded),
        as PyTorch.
        """
        check_dropout_p(p)
        if not training or p == 0:
            return self
        mask = dropout_mask(self.shape, p, generator(rng), self.dtype)

        def _backward(g):  # the mask is a constant: the same on arrays and on Tensors
            return (g * mask,)
        return self.from_op(self._data * mask, (self,), self.DROPOUT, _backward, p=p)

    MAX_POOL2D = declare("max_pool2d", "dA_prev = g to each window's max (ties: the ties policy)",
                         inputs=("A_prev",), formula="pool", windows=True, label_defaults={"ties": "first"})

    @pytorch_args("max_pool2d", ("kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"),
                  missing={"padding": "pad first with x.pad2d(p, value=-np.inf)"})
    def max_pool2d(self, f, stride=None, *, ties: str = "first"):
        """Max over each (f_h, f_w) window of x (m, n_H_prev, n_W_prev, n_C), windows ``stride`` apart (default f).

        ties: which entries of a window with several maxima get its gradient: "first" (row-major, like PyTorch),
        "split" (shared evenly) or "all" (each gets all of it, as the notebook's mask).
        -> (m, n_H, n_W, n_C) with n_H = floor((n_H_prev - f_h) / s_h) + 1 (n_W alike)
        """
        f, stride = check_pool2d_args("max_pool2d", self._data, f, stride, ties)
        out, saved = max_pool_forward(self._data, f, stride, ties)

        def _backward(g):
            if type(g) is not np.ndarray:
                return (g.max_pool2d_backward(self, f, stride, ties),)
            return (max_pool_backward(g, saved),)
        return self.from_op(out, (self,), self.MAX_POOL2D, _backward, f=f, stride=stride, ties=ties)

    AVG_POOL2D = declare("avg_pool2d", "dA_prev += g/(f_h*f_w), over every window", inputs=("A_prev",),
                         formula="pool", windows=True)

    @pytorch_args("avg_pool2d", ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
                  missing={"padding": "pad first with x.pad2d(p) (zeros, counted in the mean)"})
    def avg_pool2d(self, f, stride=None):
        """Mean over each (f_h, f_w) window of x (m, n_H_prev, n_W_prev, n_C), windows ``stride`` apart (default f).

        -> (m, n_H, n_W, n_C) with n_H = floor((n_H_prev - f_h) / s_h) + 1 (n_W alike)
        """
        f, stride = check_pool2d_args("avg_pool2d", self._data, f, stride)
        out, saved = avg_pool_forward(self._data, f, stride)

        def _backward(g):
            if type(g) is not np.ndarray:
                return (g.avg_pool2d_backward(self.shape[1:3], f, stride),)
            return (avg_pool_backward(g, saved),)
        return self.from_op(out, (self,), self.AVG_POOL2D, _backward, f=f, stride=stride)
