"""The generator every draw given no seed uses: ``Tensor.randn``/``uniform``, the layers' initial weights, dropout's
masks and ``batches``' order. ``manual_seed(s)`` (PyTorch's ``torch.manual_seed``) makes all of them reproducible at
once; numpy's ``np.random.seed`` does not reach them (they use ``numpy.random.Generator``, not numpy's global state).
Until it is called, each such draw takes fresh entropy. A draw given ``seed=`` never touches it.

Imports numpy only.
"""

from __future__ import annotations

import numbers

import numpy as np

_generator: np.random.Generator | None = None


def manual_seed(seed) -> np.random.Generator | None:
    """Seed the generator of every unseeded draw with ``seed`` (an int; a negative one modulo 2**64, as PyTorch), as
    ``torch.manual_seed``; return it.
    ``manual_seed(None)`` goes back to fresh entropy for each draw (the state before any call)."""
    global _generator
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, numbers.Integral)):
        raise TypeError(f"manual_seed: seed must be an int (or None for fresh entropy), got {seed!r}")
    _generator = None if seed is None else np.random.default_rng(int(seed) % 2**64 if seed < 0 else int(seed))
    return _generator


def generator(seed=None) -> np.random.Generator:
    """The Generator a draw uses: ``np.random.default_rng(seed)`` for an int or a Generator (used as it is); for None,
    the one ``manual_seed`` set, else a fresh one."""
    if seed is None and _generator is not None:
        return _generator
    return np.random.default_rng(seed)
