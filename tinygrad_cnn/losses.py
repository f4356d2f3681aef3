"""Losses: functions of (prediction, target) that return a scalar Tensor (``reduction="mean"``, the default, or
``"sum"``), or one loss per sample (``reduction="none"``), as PyTorch's.

They sit above the engine (they import Tensor to lift their inputs); ``functional`` re-exports them.
``cross_entropy`` is an op of its own (declared here, recorded with ``from_op``); ``mse_loss`` is made of ops.
"""

from __future__ import annotations

import numpy as np

from .hints import pytorch_args
from .ops.facts import declare
from .tensor import Tensor, as_tensor

REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(loss: str, reduction) -> str:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{loss}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    return reduction


@pytorch_args("mse_loss", ("input", "target", "size_average", "reduce", "reduction"), input="pred")
def mse_loss(pred, target, *, reduction: str = "mean") -> Tensor:
    """(pred - target)**2 averaged (reduction="mean", a scalar), summed ("sum") or per entry ("none", pred's shape);
    pred and target of the same shape."""
    _check_reduction("mse_loss", reduction)
    pred = as_tensor(pred)
    target_shape = np.shape(target.data if isinstance(target, Tensor) else target)
    if pred.shape != target_shape:
        raise ValueError(f"mse_loss: pred has shape {pred.shape} but target has shape {target_shape}")
    diff = pred - target
    squares = diff * diff
    return squares.mean() if reduction == "mean" else squares.sum() if reduction == "sum" else squares


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


CROSS_ENTROPY = declare("cross_entropy", "dlogits = g*(softmax(logits) - targets), /N when reduction is mean",
                        inputs=("logits",), label_defaults={"reduction": "mean"})


@pytorch_args("cross_entropy", ("input", "target", "weight", "size_average", "ignore_index", "reduce", "reduction",
                                "label_smoothing"), input="logits",
              missing={"weight": "class weights are not supported: weight the per-sample losses of reduction='none'"})
def cross_entropy(logits, targets, *, reduction: str = "mean") -> Tensor:
    """Cross-entropy of ``logits`` (N, C) against class labels (N,) or one-hot/probabilities (N, C): averaged over
    the N samples (reduction="mean", a scalar), summed ("sum") or one per sample ("none", shape (N,)), as PyTorch.

    loss_i = -sum_c p_ic log softmax(x)_ic, through a max-shifted log-softmax so logits of
    1000 do not overflow.  Its gradient is the classic (softmax(x) - p) / N (for rows of p summing to 1).
    """
    _check_reduction("cross_entropy", reduction)
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
    terms = p * np.where(p == 0, 0, logp)  # 0 * log 0 = 0: a -inf logit that is no target is fine
    loss = -terms.sum(axis=1) if reduction == "none" else -terms.sum() / (n if reduction == "mean" else 1)

    def _backward(g):
        probabilities = logits.softmax(axis=1) if type(g) is not np.ndarray else np.exp(logp)  # a Tensor on Tensors
        dlogits = probabilities * p.sum(axis=1, keepdims=True) - p
        if reduction == "none":
            return (g[:, None] * dlogits,)
        return (g * dlogits / n if reduction == "mean" else g * dlogits,)
    return logits.from_op(loss, (logits,), CROSS_ENTROPY, _backward, reduction=reduction)
