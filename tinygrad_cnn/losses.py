"""Losses: functions of (prediction, target) that return a scalar Tensor.

They sit above the engine (they import Tensor to lift their inputs); ``functional`` re-exports them.
``cross_entropy`` is an op of its own (declared here, recorded with ``from_op``); ``mse_loss`` is made of ops.
"""

from __future__ import annotations

import numpy as np

from .ops.facts import declare
from .tensor import Tensor, as_tensor


def mse_loss(pred, target) -> Tensor:
    """mean((pred - target)**2); pred and target of the same shape -> a scalar."""
    pred = as_tensor(pred)
    target_shape = np.shape(target.data if isinstance(target, Tensor) else target)
    if pred.shape != target_shape:
        raise ValueError(f"mse_loss: pred has shape {pred.shape} but target has shape {target_shape}")
    diff = pred - target
    return (diff * diff).mean()


def _target_probabilities(targets, n: int, c: int, dtype) -> np.ndarray:
    """Class labels (N,) or one-hot/probabilities (N, C) -> probabilities (N, C)."""
    targets = np.asarray(targets.data if isinstance(targets, Tensor) else targets)
    if targets.shape == (n, c):
        return targets.astype(dtype)
    if targets.shape != (n,):
        raise ValueError(
            f"cross_entropy: targets must be labels of shape ({n},) or one-hot of shape ({n}, {c}), got {targets.shape}"
        )
    if targets.dtype.kind not in "iu" and not np.all(targets == np.round(targets)):
        raise TypeError(f"cross_entropy: class labels must be integers, got dtype {targets.dtype}")
    labels = targets.astype(np.intp)
    if labels.size and (labels.min() < 0 or labels.max() >= c):
        raise ValueError(f"cross_entropy: labels must lie in [0, {c}), got min {labels.min()} max {labels.max()}")
    return np.eye(c, dtype=dtype)[labels]


CROSS_ENTROPY = declare("cross_entropy", "dlogits = (softmax(logits) - targets)/N", inputs=("logits",))


def cross_entropy(logits, targets) -> Tensor:
    """Mean cross-entropy of ``logits`` (N, C) against class labels (N,) or one-hot/probabilities (N, C) -> a scalar.

    loss = -1/N sum_i sum_c p_ic log softmax(x)_ic, through a max-shifted log-softmax so logits of
    1000 do not overflow.  Its gradient is the classic (softmax(x) - p) / N (for rows of p summing to 1).
    """
    logits = as_tensor(logits)
    if logits.ndim != 2:
        raise ValueError(f"cross_entropy: logits must be (N, C), got shape {logits.shape}")
    n, c = logits.shape
    if c == 0:
        raise ValueError(f"cross_entropy: logits have 0 classes (shape {logits.shape}); need at least one")
    p = _target_probabilities(targets, n, c, logits.dtype)
    x = logits.data
    shifted = x - x.max(axis=1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -(p * np.where(p == 0, 0, logp)).sum() / n  # 0 * log 0 = 0: a -inf logit that is no target is fine

    def _backward(g):
        probabilities = logits.softmax(axis=1) if type(g) is not np.ndarray else np.exp(logp)  # a Tensor on Tensors
        return (g * (probabilities * p.sum(axis=1, keepdims=True) - p) / n,)
    return logits.from_op(loss, (logits,), CROSS_ENTROPY, _backward)
