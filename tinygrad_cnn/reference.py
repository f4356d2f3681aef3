"""The notebook's loop versions ("Convolutional Neural Networks: Step by Step"), bugs fixed: slow, obviously correct.

This is the oracle the tests and the benchmark check kernels.py, steps.py and the Tensor ops against.
Compared with the notebook:
  * rectangular windows f = (f_h, f_w), strides stride = (s_h, s_w), pads = ((top, bottom), (left, right));
  * pool_forward parses, pool_backward uses the stride (vert_start = h * s_h, not h);
  * conv_backward works for zero padding (the notebook's [pad:-pad] slice is empty for pad=0);
  * conv_single_step takes the bias with np.sum (float() of a (1, 1, 1) array raises under numpy 2);
  * max-pool backward has a ties policy; "all" is the notebook's mask (x == max).
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


def conv_forward(A_prev, W, b, stride, pads):
    """Z[i, h, w, c] = sum(window * W[:, :, :, c]) + b[c].

    A_prev (m, n_H_prev, n_W_prev, n_C_prev), W (f_h, f_w, n_C_prev, n_C), b None or n_C numbers,
    stride (s_h, s_w), pads ((top, bottom), (left, right)) -> Z (m, n_H, n_W, n_C) float64
    """
    m, n_H_prev, n_W_prev, _ = A_prev.shape
    f_h, f_w, _, n_C = W.shape
    s_h, s_w = stride
    n_H = output_size(n_H_prev, f_h, sum(pads[0]), s_h)
    n_W = output_size(n_W_prev, f_w, sum(pads[1]), s_w)
    biases = np.zeros(n_C) if b is None else np.asarray(b, dtype=np.float64).reshape(-1)
    A_prev_pad = zero_pad(A_prev.astype(np.float64), pads)
    Z = np.zeros((m, n_H, n_W, n_C))
    for i in range(m):
        for h in range(n_H):
            vert_start = h * s_h
            for w in range(n_W):
                horiz_start = w * s_w
                a_slice_prev = A_prev_pad[i, vert_start:vert_start + f_h, horiz_start:horiz_start + f_w, :]
                for c in range(n_C):
                    Z[i, h, w, c] = conv_single_step(a_slice_prev, W[:, :, :, c], biases[c])
    return Z


def conv_backward(dZ, A_prev, W, stride, pads):
    """Gradients of conv_forward. dZ (m, n_H, n_W, n_C) -> dA_prev like A_prev, dW like W, db (n_C,)."""
    m, n_H_prev, n_W_prev, n_C_prev = A_prev.shape
    f_h, f_w, _, n_C = W.shape
    s_h, s_w = stride
    (top, _), (left, _) = pads
    _, n_H, n_W, _ = dZ.shape
    A_prev_pad = zero_pad(A_prev.astype(np.float64), pads)
    dA_prev_pad = np.zeros(A_prev_pad.shape)
    dW = np.zeros(W.shape)
    db = np.zeros(n_C)
    for i in range(m):
        for h in range(n_H):
            vert = slice(h * s_h, h * s_h + f_h)
            for w in range(n_W):
                horiz = slice(w * s_w, w * s_w + f_w)
                a_slice = A_prev_pad[i, vert, horiz, :]
                for c in range(n_C):
                    dA_prev_pad[i, vert, horiz, :] += W[:, :, :, c] * dZ[i, h, w, c]
                    dW[:, :, :, c] += a_slice * dZ[i, h, w, c]
                    db[c] += dZ[i, h, w, c]
    dA_prev = dA_prev_pad[:, top:top + n_H_prev, left:left + n_W_prev, :]
    return dA_prev, dW, db


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
