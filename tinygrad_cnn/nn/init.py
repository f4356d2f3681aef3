"""Weight initialization: ``he_init`` and ``glorot_init`` (numpy arrays, as ``torch.nn.init``'s kaiming_normal_ and
xavier_uniform_), and what the layers build on them: ``init_weight`` (a parameter Tensor drawn by name, "he" or
"glorot") and ``rng_from_seed`` (the seeded Generator a layer draws from).

Imports: numpy, seeding.py and tensor.py only.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..seeding import generator
from ..tensor import Tensor

__all__ = ["INITS", "he_init", "glorot_init", "init_weight", "rng_from_seed"]

INITS = ("he", "glorot")


def he_init(shape, fan_in: int, rng: np.random.Generator) -> np.ndarray:
    """He (Kaiming) normal: N(0, 2 / fan_in); keeps activations' scale through ReLU layers."""
    return rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)


def glorot_init(shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Glorot (Xavier) uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out))."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape)


def init_weight(layer: str, init: str, shape, fan_in: int, fan_out: int, seed, dtype) -> Tensor:
    """A weight Tensor of ``shape`` and ``dtype`` (requires_grad=True) drawn with ``init`` ("he" or "glorot") from
    ``rng_from_seed(layer, seed)``; errors name ``layer``."""
    if init not in INITS:
        raise ValueError(f"{layer}: init must be one of {INITS}, got {init!r}")
    rng = rng_from_seed(layer, seed)
    data = he_init(shape, fan_in, rng) if init == "he" else glorot_init(shape, fan_in, fan_out, rng)
    return Tensor(data.astype(dtype), requires_grad=True)


def rng_from_seed(layer: str, seed) -> np.random.Generator:
    """A numpy Generator from ``seed``: None (``manual_seed``'s generator, else fresh entropy), an int, or a Generator
    (used as it is)."""
    if seed is not None and not isinstance(seed, (numbers.Integral, np.random.Generator)):
        raise TypeError(f"{layer}: seed must be None, an int or a numpy.random.Generator, got {seed!r}")
    return generator(seed)
