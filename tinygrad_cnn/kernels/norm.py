"""Batch normalization (NHWC, per channel) and the inverted-dropout mask.

    batch_norm_forward(x, gamma, beta, eps, training, running_mean, running_var, momentum)
        -> (out, saved, running_mean, running_var)       the running statistics come back as new arrays
    batch_norm_backward(dout, saved) -> (dx, dgamma, dbeta)   the closed form, not a composition of ops
    dropout_mask(shape, p, rng, dtype)                   0 with probability p, else 1 / (1 - p)

Their argument checks (check_batch_norm_args, check_dropout_p) live in checks.py.
May import: numpy and the sibling kernel module checks.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .checks import check_dropout_p, float_dtype


class BatchNormSaved(NamedTuple):
    """What batch_norm_backward needs."""
    x_hat: np.ndarray       # (m, n_H, n_W, n_C): (x - mean) / sqrt(var + eps)
    inv_std: np.ndarray     # (n_C,): 1 / sqrt(var + eps), batch var in training, running var in eval
    gamma: np.ndarray       # (n_C,)
    training: bool


def batch_norm_forward(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, eps: float, training: bool,
                       running_mean=None, running_var=None, momentum: float = 0.1):
    """out = gamma * (x - mean) / sqrt(var + eps) + beta per channel, statistics over (m, n_H, n_W) of NHWC x.

    training: mean and biased var of the batch; the running statistics come back updated as PyTorch does,
    new = (1 - momentum) * old + momentum * batch (var unbiased: * N / (N - 1), N = m * n_H * n_W), new arrays.
    eval: running_mean and running_var normalize; they come back unchanged. An empty batch (training): an empty
    output, the running statistics unchanged (as PyTorch).
    x (m, n_H, n_W, n_C), gamma, beta, running_* (n_C,) -> (out like x, saved, running_mean, running_var)
    """
    dtype = float_dtype(x, gamma, beta)
    x2d = x.reshape(-1, x.shape[3]).astype(dtype, copy=False)
    if training:
        empty = x2d.shape[0] == 0
        mean = np.zeros(x.shape[3], dtype) if empty else x2d.mean(axis=0)
        centered = x2d - mean
        var = np.einsum("ij,ij->j", centered, centered) / max(x2d.shape[0], 1)
        if running_mean is not None and not empty:
            n = x2d.shape[0]
            running_mean = (1 - momentum) * running_mean + momentum * mean.astype(running_mean.dtype)
            running_var = (1 - momentum) * running_var + momentum * (var * (n / (n - 1))).astype(running_var.dtype)
    else:
        centered = x2d - running_mean.astype(dtype, copy=False)
        var = running_var.astype(dtype, copy=False)
    inv_std = 1.0 / np.sqrt(var + dtype.type(eps))
    x_hat = np.multiply(centered, inv_std, out=centered)
    out = x_hat * gamma.astype(dtype, copy=False) + beta.astype(dtype, copy=False)
    saved = BatchNormSaved(x_hat.reshape(x.shape), inv_std, gamma.astype(dtype, copy=False), training)
    return out.reshape(x.shape), saved, running_mean, running_var


def batch_norm_backward(dout: np.ndarray, saved: BatchNormSaved):
    """dout (m, n_H, n_W, n_C) -> (dx, dgamma (n_C,), dbeta (n_C,)).

    training (closed form, N = m * n_H * n_W, sums over the batch axes):
        dx = gamma * inv_std / N * (N * dout - sum(dout) - x_hat * sum(dout * x_hat))
    eval (the statistics are constants): dx = gamma * inv_std * dout.  Both: dgamma = sum(dout * x_hat),
    dbeta = sum(dout).
    """
    n_C = dout.shape[3]
    g = dout.reshape(-1, n_C).astype(saved.x_hat.dtype, copy=False)
    x_hat = saved.x_hat.reshape(-1, n_C)
    dbeta = g.sum(axis=0)
    dgamma = np.einsum("ij,ij->j", g, x_hat)
    scale = saved.gamma * saved.inv_std
    if saved.training:
        n = max(g.shape[0], 1)  # an empty batch: dx is empty, dgamma and dbeta zeros
        dx = (g - dbeta / n - x_hat * (dgamma / n)) * scale
    else:
        dx = g * scale
    return dx.reshape(dout.shape), dgamma, dbeta


# ---------------------------------------------------------------- dropout


def dropout_mask(shape, p: float, rng=None, dtype=np.float64) -> np.ndarray:
    """Inverted-dropout mask: each entry 0 with probability p, else 1 / (1 - p), so mask.mean() ~ 1.

    p in [0, 1]: p = 0 gives all ones (rng untouched), p = 1 all zeros (everything dropped, as PyTorch).
    rng: a numpy Generator, a seed or None (fresh entropy). dtype: float32 or float64.
    out = x * mask in the forward, dx = dout * mask in the backward.
    """
    check_dropout_p(p)
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dropout: dtype must be float32 or float64, got {dtype}")
    if p == 0:
        return np.ones(shape, dtype=dtype)
    if p == 1:
        return np.zeros(shape, dtype=dtype)
    keep = np.random.default_rng(rng).random(shape, dtype=dtype) >= p
    return np.multiply(keep, dtype.type(1 / (1 - p)), dtype=dtype)

