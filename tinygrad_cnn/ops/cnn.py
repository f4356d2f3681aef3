"""The CNN ops (NHWC): pad2d, conv2d, max_pool2d, avg_pool2d.

Each op checks its arguments (before anything is recorded), runs the numpy kernel forward from kernels.py, and
defines a ``_backward(g)`` closure right beside it that runs the kernel backward and returns one gradient per
input (None where an input needs none, and then the work is skipped). Hyper-parameters go into the op's
arguments, so a drawn graph reads e.g. ``conv2d stride=2 pad=1`` or ``max_pool2d f=3 stride=2``.
"""

from __future__ import annotations

from .. import kernels
from .common import compact


class CNNOps:
    """Mixin of Tensor: pad2d, conv2d, max_pool2d, avg_pool2d on NHWC images (m, n_H, n_W, n_C)."""

    __slots__ = ()

    def pad2d(self, pad, value: float = 0.0):
        """Pad the rows and columns of x (m, n_H, n_W, n_C) with ``value``.

        pad: int, (p_h, p_w) or ((top, bottom), (left, right)) -> (m, top + n_H + bottom, left + n_W + right, n_C)
        """
        pads = kernels.check_pad2d_args("pad2d", self.data, pad, value)
        out = kernels.pad_forward(self.data, pads, value)

        def _backward(g):
            return (kernels.unpad(g, pads),)
        return self.from_op(out, (self,), "pad2d", _backward, rule="da = g without the border",
                            pad=compact(pads), value=value)

    def conv2d(self, W, b=None, stride=1, pad=0):
        """2-D convolution (cross-correlation, as the notebook) of NHWC images with n_C filters.

        x (m, n_H_prev, n_W_prev, n_C_prev), W (f_h, f_w, n_C_prev, n_C), b None, (n_C,) or (1, 1, 1, n_C);
        stride int or (s_h, s_w); pad int, (p_h, p_w), ((top, bottom), (left, right)), "same" or "valid".
        -> (m, n_H, n_W, n_C) with n_H = floor((n_H_prev - f_h + top + bottom) / s_h) + 1 (n_W alike)
        """
        x, W = self, self.as_tensor(W)
        b = None if b is None else self.as_tensor(b)
        stride, pads = kernels.check_conv2d_args(x.data, W.data, None if b is None else b.data, stride, pad)
        out, saved = kernels.conv2d_forward(x.data, W.data, None if b is None else b.data, stride, pads)
        if not W.requires_grad:
            saved = saved._replace(cols=None)  # the im2col matrix is only needed for dW
        x_data = x.data

        def _backward(g):
            s = saved
            if W.requires_grad and s.cols is None:  # W.requires_grad_() after the forward: rebuild im2col from x
                s = kernels.conv2d_saved(x_data, s.W, None, s.stride, s.pads)._replace(b_shape=s.b_shape)
            dx, dW, db = kernels.conv2d_backward(g, s, need_dx=x.requires_grad, need_dW=W.requires_grad,
                                                 need_db=b is not None and b.requires_grad)
            return (dx, dW) if b is None else (dx, dW, db)
        parents = (x, W) if b is None else (x, W, b)
        return self.from_op(out, parents, "conv2d", _backward, rule="dA += W*dZ, dW += A_slice*dZ, db += dZ",
                            stride=compact(stride), pad=compact(pads))

    def max_pool2d(self, f, stride=None, ties: str = "first"):
        """Max over each (f_h, f_w) window of x (m, n_H_prev, n_W_prev, n_C), windows ``stride`` apart (default f).

        ties: which entries of a window with several maxima get its gradient: "first" (row-major, like PyTorch),
        "split" (shared evenly) or "all" (each gets all of it, as the notebook's mask).
        -> (m, n_H, n_W, n_C) with n_H = floor((n_H_prev - f_h) / s_h) + 1 (n_W alike)
        """
        f, stride = kernels.check_pool2d_args("max_pool2d", self.data, f, stride, ties)
        out, saved = kernels.max_pool_forward(self.data, f, stride, ties)

        def _backward(g):
            return (kernels.max_pool_backward(g, saved),)
        ties_arg = {} if ties == "first" else {"ties": ties}
        return self.from_op(out, (self,), "max_pool2d", _backward, rule="dA = dZ through each window's max mask",
                            f=compact(f), stride=compact(stride), **ties_arg)

    def avg_pool2d(self, f, stride=None):
        """Mean over each (f_h, f_w) window of x (m, n_H_prev, n_W_prev, n_C), windows ``stride`` apart (default f).

        -> (m, n_H, n_W, n_C) with n_H = floor((n_H_prev - f_h) / s_h) + 1 (n_W alike)
        """
        f, stride = kernels.check_pool2d_args("avg_pool2d", self.data, f, stride)
        out, saved = kernels.avg_pool_forward(self.data, f, stride)

        def _backward(g):
            return (kernels.avg_pool_backward(g, saved),)
        return self.from_op(out, (self,), "avg_pool2d", _backward, rule="dA = dZ/(f_h*f_w) over each window",
                            f=compact(f), stride=compact(stride))
