"""Minibatches of a dataset held in numpy arrays.

``for X_batch, y_batch in batches(X, y, batch_size=32, seed=rng): ...`` is one epoch: every sample
appears exactly once, in batches of ``batch_size`` along axis 0 (the last one smaller unless
``drop_last=True``).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator

import numpy as np

from .seeding import generator

__all__ = ["batches"]


def _check_batch_size(batch_size) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
        raise ValueError(f"batches: batch_size must be a positive int, got {batch_size!r}")
    return int(batch_size)


def _order(n: int, shuffle: bool, seed) -> np.ndarray:
    """The sample indices of one epoch: 0..n-1, permuted when ``shuffle``."""
    if seed is not None and not isinstance(seed, (numbers.Integral, np.random.Generator)):
        raise TypeError(f"batches: seed must be None, an int or a numpy.random.Generator, got {seed!r}")
    if not shuffle:
        return np.arange(n)
    return generator(seed).permutation(n)


def batches(X, y, batch_size: int, shuffle: bool = True, seed=None,
            drop_last: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """One epoch of ``(X_batch, y_batch)`` numpy pairs, ``batch_size`` samples along axis 0.

    Args:
        X: samples, shape (m, ...), e.g. images (m, n_H, n_W, n_C).
        y: targets, shape (m, ...), e.g. labels (m,).
        batch_size: samples per batch, a positive int.
        shuffle: visit the samples in a random order (else in order 0..m-1).
        seed: None (``manual_seed``'s generator, else fresh randomness every call), an int (the same
            order every call) or a ``numpy.random.Generator`` (its next permutation: one Generator gives a
            new order each epoch and the same sequence of orders each run).
        drop_last: leave out the last batch when it has fewer than ``batch_size`` samples (those
            samples are then not seen this epoch). Default False: the last batch holds the
            ``m % batch_size`` samples left over.

    Yields ``X_batch (b, ...)`` and ``y_batch (b, ...)`` with ``b = batch_size`` (``m % batch_size``
    for a smaller last batch). Arguments are checked when ``batches`` is called, before iterating.
    """
    batch_size = _check_batch_size(batch_size)
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim == 0:
        raise ValueError(f"batches: X and y need a sample axis 0, got X.shape={X.shape}, y.shape={y.shape}")
    if len(X) != len(y):
        raise ValueError(f"batches: X and y must hold the same number of samples (axis 0), "
                         f"got X.shape={X.shape} and y.shape={y.shape}")
    order = _order(len(X), shuffle, seed)
    stop = len(X) - len(X) % batch_size if drop_last else len(X)
    return ((X[idx], y[idx]) for idx in (order[i:i + batch_size] for i in range(0, stop, batch_size)))
