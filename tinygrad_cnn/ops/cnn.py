"""The CNN ops (NHWC): pad2d, conv2d (dilation, groups), conv_transpose2d, batch_norm2d, dropout, max_pool2d,
avg_pool2d.

Each op checks its arguments (before anything is recorded), runs the numpy kernel forward from kernels/, and
defines a ``_backward(g)`` closure right beside it that runs the kernel backward and returns one gradient per
input (None where an input needs none, and then the work is skipped). Hyper-parameters go into the op's
arguments, so a drawn graph reads e.g. ``conv2d stride=2 pad=1`` or ``max_pool2d f=3 stride=2``.
"""

from __future__ import annotations

from ..kernels.checks import (
    as_positive_pair,
    check_batch_norm_args,
    check_conv2d_args,
    check_conv_transpose2d_args,
    check_dropout_p,
    check_pad2d_args,
    check_pool2d_args,
)
from ..kernels.conv import conv2d_backward, conv2d_forward, conv_transpose2d_backward, conv_transpose2d_forward
from ..kernels.norm import batch_norm_backward, batch_norm_forward, dropout_mask
from ..kernels.pad import pad_forward, unpad
from ..kernels.pool import avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward
from .common import compact


def _data(t):
    return None if t is None else t.data


def _unless_one(**args) -> dict:
    """The hyper-parameters that differ from 1 (for labels: ``conv2d stride=1 pad=0 dilation=2``)."""
    return {name: value for name, value in args.items() if value != 1}


class CNNOps:
    """Mixin of Tensor: pad2d, conv2d, conv_transpose2d, batch_norm2d, dropout, max_pool2d, avg_pool2d on NHWC
    images (m, n_H, n_W, n_C)."""

    __slots__ = ()

    def pad2d(self, pad, value: float = 0.0):
        """Pad the rows and columns of x (m, n_H, n_W, n_C) with ``value``.

        pad: int, (p_h, p_w) or ((top, bottom), (left, right)) -> (m, top + n_H + bottom, left + n_W + right, n_C)
        """
        pads = check_pad2d_args("pad2d", self.data, pad, value)
        out = pad_forward(self.data, pads, value)

        def _backward(g):
            return (unpad(g, pads),)
        return self.from_op(out, (self,), "pad2d", _backward, rule="da = g without the border",
                            pad=compact(pads), value=value)

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
        stride, pads = check_conv2d_args(x.data, W.data, _data(b), stride, pad, dilation, groups)
        dilation = as_positive_pair("conv2d", "dilation", dilation)
        out, saved = conv2d_forward(x.data, W.data, _data(b), stride, pads, dilation, groups)

        def _backward(g):
            dx, dW, db = conv2d_backward(g, saved, need_dx=x.requires_grad, need_dW=W.requires_grad,
                                         need_db=b is not None and b.requires_grad)
            return (dx, dW) if b is None else (dx, dW, db)
        parents = (x, W) if b is None else (x, W, b)
        return self.from_op(out, parents, "conv2d", _backward, rule="dA += W*dZ, dW += A_slice*dZ, db += dZ",
                            stride=compact(stride), pad=compact(pads),
                            **_unless_one(dilation=compact(dilation), groups=groups))

    def conv_transpose2d(self, W, b=None, stride=1, pad=0, output_padding=0, dilation=1, groups=1):
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
            x.data, W.data, _data(b), stride, pad, output_padding, dilation, groups)
        dilation = as_positive_pair("conv_transpose2d", "dilation", dilation)
        out, saved = conv_transpose2d_forward(x.data, W.data, _data(b), stride, pads, output_padding, dilation,
                                              groups)

        def _backward(g):
            dx, dW, db = conv_transpose2d_backward(g, saved, need_dx=x.requires_grad, need_dW=W.requires_grad,
                                                   need_db=b is not None and b.requires_grad)
            return (dx, dW) if b is None else (dx, dW, db)
        parents = (x, W) if b is None else (x, W, b)
        return self.from_op(out, parents, "conv_transpose2d", _backward,
                            rule="dX = conv2d(dOut, W), dW += dOut_slice*X, db += dOut",
                            stride=compact(stride), pad=compact(pads),
                            **_unless_one(dilation=compact(dilation), groups=groups),
                            **({"output_padding": compact(output_padding)} if any(output_padding) else {}))

    def batch_norm2d(self, gamma, beta, running_mean=None, running_var=None, training: bool = True,
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
        check_batch_norm_args(self.data, gamma.data, beta.data, running_mean, running_var, eps, momentum, training)
        if training and running_mean is not None:
            for name, buffer in (("running_mean", running_mean), ("running_var", running_var)):
                if not buffer.flags.writeable or buffer.dtype.kind != "f":
                    raise ValueError(f"batch_norm2d: {name} must be a writable float array (training updates it "
                                     f"in place), got dtype {buffer.dtype}, writeable={buffer.flags.writeable}")
        out, saved, new_mean, new_var = batch_norm_forward(
            self.data, gamma.data, beta.data, eps, bool(training), running_mean, running_var, momentum)
        if training and running_mean is not None:
            running_mean[...], running_var[...] = new_mean, new_var

        def _backward(g):
            return batch_norm_backward(g, saved)
        mode = {} if training else {"training": False}
        return self.from_op(out, (self, gamma, beta), "batch_norm2d", _backward,
                            rule="dx = gamma/std*(g - mean(g) - x_hat*mean(g*x_hat)), dgamma = sum(g*x_hat), "
                                 "dbeta = sum(g)", **mode, **({} if eps == 1e-5 else {"eps": eps}))

    def dropout(self, p: float = 0.5, training: bool = True, rng=None):
        """Inverted dropout: each entry is zeroed with probability p, survivors are scaled by 1 / (1 - p).

        x any shape -> same shape. rng: a numpy Generator, a seed or None (fresh entropy); the layer
        ``nn.Dropout(p, seed)`` keeps one Generator so its masks are reproducible. The mask is saved for the
        backward (dx = g * mask). When not training, or p = 0, x itself comes back (nothing recorded), as PyTorch.
        """
        check_dropout_p(p)
        if not training or p == 0:
            return self
        mask = dropout_mask(self.shape, p, rng, self.dtype)

        def _backward(g):
            return (g * mask,)
        return self.from_op(self.data * mask, (self,), "dropout", _backward,
                            rule="da = g*mask (mask: 0 or 1/(1-p))", p=p)

    def max_pool2d(self, f, stride=None, ties: str = "first"):
        """Max over each (f_h, f_w) window of x (m, n_H_prev, n_W_prev, n_C), windows ``stride`` apart (default f).

        ties: which entries of a window with several maxima get its gradient: "first" (row-major, like PyTorch),
        "split" (shared evenly) or "all" (each gets all of it, as the notebook's mask).
        -> (m, n_H, n_W, n_C) with n_H = floor((n_H_prev - f_h) / s_h) + 1 (n_W alike)
        """
        f, stride = check_pool2d_args("max_pool2d", self.data, f, stride, ties)
        out, saved = max_pool_forward(self.data, f, stride, ties)

        def _backward(g):
            return (max_pool_backward(g, saved),)
        ties_arg = {} if ties == "first" else {"ties": ties}
        return self.from_op(out, (self,), "max_pool2d", _backward, rule="dA = dZ through each window's max mask",
                            f=compact(f), stride=compact(stride), **ties_arg)

    def avg_pool2d(self, f, stride=None):
        """Mean over each (f_h, f_w) window of x (m, n_H_prev, n_W_prev, n_C), windows ``stride`` apart (default f).

        -> (m, n_H, n_W, n_C) with n_H = floor((n_H_prev - f_h) / s_h) + 1 (n_W alike)
        """
        f, stride = check_pool2d_args("avg_pool2d", self.data, f, stride)
        out, saved = avg_pool_forward(self.data, f, stride)

        def _backward(g):
            return (avg_pool_backward(g, saved),)
        return self.from_op(out, (self,), "avg_pool2d", _backward, rule="dA = dZ/(f_h*f_w) over each window",
                            f=compact(f), stride=compact(stride))
