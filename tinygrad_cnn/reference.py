"""The notebook's loop versions ("Convolutional Neural Networks: Step by Step"), bugs fixed: slow, obviously correct.

This is the oracle the tests and the benchmark check the kernels (kernels/), steps.py and the Tensor ops against.
Compared with the notebook:
  * rectangular windows f = (f_h, f_w), strides stride = (s_h, s_w), pads = ((top, bottom), (left, right));
  * pool_forward parses, pool_backward uses the stride (vert_start = h * s_h, not h);
  * conv_backward works for zero padding (the notebook's [pad:-pad] slice is empty for pad=0);
  * conv_single_step takes the bias with np.sum (float() of a (1, 1, 1) array raises under numpy 2);
  * max-pool backward has a ties policy; "all" is the notebook's mask (x == max).
Beyond the notebook: dilation and groups in conv_forward/conv_backward, conv_transpose_forward (the scatter
loop) and batch norm forward/backward, the oracles of the same kernels.
All arithmetic is float64. Layout NHWC: A_prev (m, n_H_prev, n_W_prev, n_C_prev), W (f_h, f_w, n_C_prev, n_C).
"""

import numpy as np


def zero_pad(X, pads):
    """X (m, n_H, n_W, n_C) -> (m, top + n_H + bottom, left + n_W + right, n_C) with zeros around each image."""
    (top, bottom), (left, right) = pads
    return np.pad(X, ((0, 0), (top, bottom), (left, right), (0, 0)), mode="constant", constant_values=0)


def conv_single_step(a_slice_prev, W, b):
    """Sum of a_slice_prev * W plus the bias. a_slice_prev, W (f_h, f_w, n_C_prev); b one number -> float."""
    return float(np.sum(np.multiply(a_slice_prev, W)) + np.sum(b))


def output_size(n_prev, f, pad_total, stride):
    """floor((n_prev - f + pad_total) / stride) + 1."""
    return (n_prev - f + pad_total) // stride + 1


def window(i, h, w, f, stride, dilation, channels):
    """The index of image i's window for output (h, w): rows h * s_h + k * d_h for k < f_h, likewise columns."""
    (f_h, f_w), (s_h, s_w), (d_h, d_w) = f, stride, dilation
    vert = slice(h * s_h, h * s_h + d_h * (f_h - 1) + 1, d_h)
    horiz = slice(w * s_w, w * s_w + d_w * (f_w - 1) + 1, d_w)
    return i, vert, horiz, channels


def group_channels(c, n_C, n_C_prev, groups):
    """The input channels output channel c sees: those of its group c // (n_C // groups)."""
    g = c // (n_C // groups)
    per_group = n_C_prev // groups
    return slice(g * per_group, (g + 1) * per_group)


def conv_forward(A_prev, W, b, stride, pads, dilation=(1, 1), groups=1):
    """Z[i, h, w, c] = sum(window * W[:, :, :, c]) + b[c], the window taken in c's group of input channels.

    A_prev (m, n_H_prev, n_W_prev, n_C_prev), W (f_h, f_w, n_C_prev // groups, n_C), b None or n_C numbers,
    stride (s_h, s_w), pads ((top, bottom), (left, right)), dilation (d_h, d_w) -> Z (m, n_H, n_W, n_C) float64
    """
    m, n_H_prev, n_W_prev, n_C_prev = A_prev.shape
    f_h, f_w, _, n_C = W.shape
    n_H = output_size(n_H_prev, dilation[0] * (f_h - 1) + 1, sum(pads[0]), stride[0])
    n_W = output_size(n_W_prev, dilation[1] * (f_w - 1) + 1, sum(pads[1]), stride[1])
    biases = np.zeros(n_C) if b is None else np.asarray(b, dtype=np.float64).reshape(-1)
    A_prev_pad = zero_pad(A_prev.astype(np.float64), pads)
    Z = np.zeros((m, n_H, n_W, n_C))
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                for c in range(n_C):
                    channels = group_channels(c, n_C, n_C_prev, groups)
                    a_slice_prev = A_prev_pad[window(i, h, w, (f_h, f_w), stride, dilation, channels)]
                    Z[i, h, w, c] = conv_single_step(a_slice_prev, W[:, :, :, c], biases[c])
    return Z


def conv_backward(dZ, A_prev, W, stride, pads, dilation=(1, 1), groups=1):
    """Gradients of conv_forward. dZ (m, n_H, n_W, n_C) -> dA_prev like A_prev, dW like W, db (n_C,)."""
    m, n_H_prev, n_W_prev, n_C_prev = A_prev.shape
    f_h, f_w, _, n_C = W.shape
    (top, _), (left, _) = pads
    _, n_H, n_W, _ = dZ.shape
    A_prev_pad = zero_pad(A_prev.astype(np.float64), pads)
    dA_prev_pad = np.zeros(A_prev_pad.shape)
    dW = np.zeros(W.shape)
    db = np.zeros(n_C)
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                for c in range(n_C):
                    channels = group_channels(c, n_C, n_C_prev, groups)
                    where = window(i, h, w, (f_h, f_w), stride, dilation, channels)
                    dA_prev_pad[where] += W[:, :, :, c] * dZ[i, h, w, c]
                    dW[:, :, :, c] += A_prev_pad[where] * dZ[i, h, w, c]
                    db[c] += dZ[i, h, w, c]
    dA_prev = dA_prev_pad[:, top:top + n_H_prev, left:left + n_W_prev, :]
    return dA_prev, dW, db


def conv_transpose_forward(X, W, b, stride, pads, output_padding=(0, 0), dilation=(1, 1), groups=1):
    """The scatter loop: each input entry X[i, h, w, c] adds X[i, h, w, c] * W[:, :, :, c] onto the output window
    at (h * s_h, w * s_w) (dilated), in c's group of output channels; then the pads are cropped off.

    X (m, n_H, n_W, n_C_in), W (f_h, f_w, n_C_out // groups, n_C_in), b None or n_C_out numbers
    -> (m, (n_H - 1) * s_h - top - bottom + d_h * (f_h - 1) + 1 + op_h, ..., n_C_out) float64
    """
    m, n_H, n_W, n_C_in = X.shape
    f_h, f_w, _, _ = W.shape
    n_C_out = W.shape[2] * groups
    (top, bottom), (left, right) = pads
    full_H = (n_H - 1) * stride[0] + dilation[0] * (f_h - 1) + 1 + output_padding[0]
    full_W = (n_W - 1) * stride[1] + dilation[1] * (f_w - 1) + 1 + output_padding[1]
    out_full = np.zeros((m, full_H, full_W, n_C_out))
    for i in range(m):
        for h in range(n_H):
            for w in range(n_W):
                for c in range(n_C_in):
                    channels = group_channels(c, n_C_in, n_C_out, groups)
                    where = window(i, h, w, (f_h, f_w), stride, dilation, channels)
                    out_full[where] += W[:, :, :, c] * X[i, h, w, c]
    out = out_full[:, top:full_H - bottom, left:full_W - right, :]
    if b is not None:
        out = out + np.asarray(b, dtype=np.float64).reshape(-1)
    return out


def batch_norm_forward(X, gamma, beta, eps, training, running_mean=None, running_var=None, momentum=0.1):
    """Per channel c: normalize X[..., c] by its mean and (biased) variance over the batch, scale and shift.

    X (m, n_H, n_W, n_C), gamma, beta (n_C,) -> (out like X, new running_mean, new running_var), float64.
    Training: batch statistics; the running ones move by momentum toward the batch mean and unbiased variance.
    Eval: the running statistics normalize and stay as they are.
    """
    m, n_H, n_W, n_C = X.shape
    N = m * n_H * n_W
    out = np.zeros(X.shape)
    new_mean = None if running_mean is None else np.array(running_mean, dtype=np.float64)
    new_var = None if running_var is None else np.array(running_var, dtype=np.float64)
    for c in range(n_C):
        values = [float(X[i, h, w, c]) for i in range(m) for h in range(n_H) for w in range(n_W)]
        if training:
            mean = sum(values) / N
            var = sum((v - mean) ** 2 for v in values) / N
            if new_mean is not None:
                new_mean[c] = (1 - momentum) * new_mean[c] + momentum * mean
                new_var[c] = (1 - momentum) * new_var[c] + momentum * var * N / (N - 1)
        else:
            mean, var = float(running_mean[c]), float(running_var[c])
        for i in range(m):
            for h in range(n_H):
                for w in range(n_W):
                    x_hat = (X[i, h, w, c] - mean) / np.sqrt(var + eps)
                    out[i, h, w, c] = gamma[c] * x_hat + beta[c]
    return out, new_mean, new_var


def batch_norm_backward(dout, X, gamma, eps, training, running_mean=None, running_var=None):
    """Gradients of batch_norm_forward by the chain rule, step by step (x -> mean, var -> x_hat -> out).

    dout like X -> (dX like X, dgamma (n_C,), dbeta (n_C,)), float64. In eval the statistics are constants.
    """
    m, n_H, n_W, n_C = X.shape
    N = m * n_H * n_W
    dX = np.zeros(X.shape)
    dgamma = np.zeros(n_C)
    dbeta = np.zeros(n_C)
    for c in range(n_C):
        x = X[..., c].astype(np.float64).reshape(-1)
        g = np.asarray(dout[..., c], dtype=np.float64).reshape(-1)
        if training:
            mean = x.mean()
            var = ((x - mean) ** 2).mean()
        else:
            mean, var = float(running_mean[c]), float(running_var[c])
        std = np.sqrt(var + eps)
        x_hat = (x - mean) / std
        dbeta[c] = g.sum()
        dgamma[c] = (g * x_hat).sum()
        dx_hat = g * gamma[c]
        dx = dx_hat / std
        if training:
            dvar = np.sum(dx_hat * (x - mean)) * -0.5 * (var + eps) ** -1.5
            dmean = np.sum(-dx_hat / std) + dvar * np.sum(-2.0 * (x - mean)) / N
            dx = dx + dvar * 2.0 * (x - mean) / N + dmean / N
        dX[..., c] = dx.reshape(m, n_H, n_W)
    return dX, dgamma, dbeta


def create_mask_from_window(x, ties="all"):
    """x (f_h, f_w) -> float mask of the share of the window's gradient each entry gets.

    "all": 1 at every entry equal to the max (the notebook); "first": 1 at the first max in row-major order;
    "split": 1 / (number of maxima) at each max.
    """
    is_max = (x == np.max(x)).astype(np.float64)
    if ties == "all":
        return is_max
    if ties == "split":
        return is_max / np.sum(is_max)
    if ties == "first":
        mask = np.zeros(x.shape)
        mask[np.unravel_index(np.argmax(x), x.shape)] = 1.0
        return mask
    raise ValueError(f"unknown ties policy {ties!r}")


def distribute_value(dz, shape):
    """Spread the number dz evenly over an array of shape (f_h, f_w)."""
    n_H, n_W = shape
    return np.ones(shape) * (dz / (n_H * n_W))


def pool_forward(A_prev, f, stride, mode="max"):
    """A_prev (m, n_H_prev, n_W_prev, n_C), f (f_h, f_w), stride (s_h, s_w) -> A (m, n_H, n_W, n_C).

    mode "max" takes each window's max, "average" its mean. No padding.
    """
    m, n_H_prev, n_W_prev, n_C = A_prev.shape
    (f_h, f_w), (s_h, s_w) = f, stride
    n_H = output_size(n_H_prev, f_h, 0, s_h)
    n_W = output_size(n_W_prev, f_w, 0, s_w)
    A = np.zeros((m, n_H, n_W, n_C))
    for i in range(m):
        for h in range(n_H):
            vert_start = h * s_h
            for w in range(n_W):
                horiz_start = w * s_w
                for c in range(n_C):
                    a_prev_slice = A_prev[i, vert_start:vert_start + f_h, horiz_start:horiz_start + f_w, c]
                    if mode == "max":
                        A[i, h, w, c] = np.max(a_prev_slice)
                    elif mode == "average":
                        A[i, h, w, c] = np.mean(a_prev_slice)
                    else:
                        raise ValueError(f"unknown pool mode {mode!r}")
    return A


def pool_backward(dA, A_prev, f, stride, mode="max", ties="all"):
    """dA (m, n_H, n_W, n_C) -> dA_prev like A_prev; windows may overlap (contributions add up)."""
    m, n_H, n_W, n_C = dA.shape
    (f_h, f_w), (s_h, s_w) = f, stride
    dA_prev = np.zeros(A_prev.shape)
    for i in range(m):
        for h in range(n_H):
            vert = slice(h * s_h, h * s_h + f_h)
            for w in range(n_W):
                horiz = slice(w * s_w, w * s_w + f_w)
                for c in range(n_C):
                    if mode == "max":
                        mask = create_mask_from_window(A_prev[i, vert, horiz, c], ties)
                        dA_prev[i, vert, horiz, c] += mask * dA[i, h, w, c]
                    elif mode == "average":
                        dA_prev[i, vert, horiz, c] += distribute_value(dA[i, h, w, c], (f_h, f_w))
                    else:
                        raise ValueError(f"unknown pool mode {mode!r}")
    return dA_prev
