"""The notebook API of "Convolutional Neural Networks: Step by Step", on the vectorized kernels.

Same names, signatures, return values and caches as the notebook, so a notebook can import these instead of its
own loops and get the numbers correct loop code gives (tinygrad_cnn.reference holds those loops). Max pooling
follows the notebook's tie rule: every entry equal to a window's max gets that window's gradient (ties="all").
Layout NHWC: A_prev (m, n_H_prev, n_W_prev, n_C_prev), W (f, f, n_C_prev, n_C), b (1, 1, 1, n_C).
hparameters: {"stride", "pad"} for conv, {"f", "stride"} for pool.
"""

import numpy as np

from .kernels.checks import check_conv2d_args, check_pad2d_args, check_pool2d_args
from .kernels.conv import conv2d_backward, conv2d_forward, conv2d_saved
from .kernels.pad import pad_forward
from .kernels.pool import avg_pool_backward, avg_pool_forward, max_pool_backward, max_pool_forward

POOL_MODES = ("max", "average")


def zero_pad(X, pad):
    """X (m, n_H, n_W, n_C), pad int -> X_pad (m, n_H + 2 * pad, n_W + 2 * pad, n_C), zeros around each image."""
    X_pad = pad_forward(X, check_pad2d_args("zero_pad", X, pad), 0.0)
    return X_pad.copy() if X_pad is X else X_pad


def conv_single_step(a_slice_prev, W, b):
    """One output neuron: sum(a_slice_prev * W) + b. a_slice_prev, W (f, f, n_C_prev); b (1, 1, 1) -> Z scalar."""
    if np.size(b) != 1:
        raise ValueError(f"conv_single_step: b must hold one number, e.g. shape (1, 1, 1), got shape {np.shape(b)}")
    return np.sum(np.multiply(a_slice_prev, W)) + np.asarray(b).item()


def _hparameter(op, hparameters, key):
    if key not in hparameters:
        raise KeyError(f"{op}: hparameters needs {key!r}, got keys {sorted(hparameters)}")
    return hparameters[key]


def _conv_args(A_prev, W, b, hparameters):
    """Check conv_forward's inputs; return (stride, pads) normalized."""
    return check_conv2d_args(A_prev, W, b, _hparameter("conv_forward", hparameters, "stride"),
                             _hparameter("conv_forward", hparameters, "pad"))


def conv_forward(A_prev, W, b, hparameters):
    """A_prev (m, n_H_prev, n_W_prev, n_C_prev), W (f, f, n_C_prev, n_C), b (1, 1, 1, n_C),
    hparameters {"stride", "pad"} -> (Z (m, n_H, n_W, n_C), cache = (A_prev, W, b, hparameters))."""
    stride, pads = _conv_args(A_prev, W, b, hparameters)
    Z, _ = conv2d_forward(A_prev, W, b, stride, pads)
    return Z, (A_prev, W, b, hparameters)


def conv_backward(dZ, cache):
    """dZ (m, n_H, n_W, n_C), cache from conv_forward -> (dA_prev like A_prev, dW like W, db like b)."""
    A_prev, W, b, hparameters = cache
    stride, pads = _conv_args(A_prev, W, b, hparameters)
    saved = conv2d_saved(A_prev, W, b, stride, pads)
    if dZ.shape != saved.out_shape:
        raise ValueError(f"conv_backward: dZ must have the shape of Z {saved.out_shape}, got {dZ.shape}")
    return conv2d_backward(dZ, saved)


def _pool_args(op, A_prev, hparameters, mode):
    """Check the pool inputs; return (f, stride) as pairs."""
    if mode not in POOL_MODES:
        raise ValueError(f"{op}: unknown mode {mode!r}; use one of {POOL_MODES}")
    return check_pool2d_args(op, A_prev, _hparameter(op, hparameters, "f"), _hparameter(op, hparameters, "stride"))


def _pool(A_prev, f, stride, mode):
    """(A, saved) from the kernel forward for this mode."""
    if mode == "max":
        return max_pool_forward(A_prev, f, stride, ties="all")
    return avg_pool_forward(A_prev, f, stride)


def pool_forward(A_prev, hparameters, mode="max"):
    """A_prev (m, n_H_prev, n_W_prev, n_C), hparameters {"f", "stride"}, mode "max" or "average"
    -> (A (m, n_H, n_W, n_C), cache = (A_prev, hparameters))."""
    f, stride = _pool_args("pool_forward", A_prev, hparameters, mode)
    A, _ = _pool(A_prev, f, stride, mode)
    return A, (A_prev, hparameters)


def create_mask_from_window(x):
    """x (f, f) -> boolean mask, True where x equals its max."""
    return x == np.max(x)


def distribute_value(dz, shape):
    """dz a number, shape (n_H, n_W) -> array of that shape, every entry dz / (n_H * n_W)."""
    n_H, n_W = shape
    return np.full(shape, dz / (n_H * n_W))


def pool_backward(dA, cache, mode="max"):
    """dA like pool_forward's A, cache from pool_forward -> dA_prev like A_prev (overlapping windows add up)."""
    A_prev, hparameters = cache
    f, stride = _pool_args("pool_backward", A_prev, hparameters, mode)
    A, saved = _pool(A_prev, f, stride, mode)
    if dA.shape != A.shape:
        raise ValueError(f"pool_backward: dA must have the shape of A {A.shape}, got {dA.shape}")
    if mode == "max":
        return max_pool_backward(dA, saved)
    return avg_pool_backward(dA, saved)
