"""The dtype policy: which float dtype a Tensor's data gets. numpy only; no Tensor import.

- float32 and float64 numpy arrays keep their dtype;
- ints, bools, other floats, nested lists and Python scalars become the default float dtype (float32 unless
  ``set_default_dtype`` says otherwise);
- strings, objects and complex numbers raise TypeError.
"""

from __future__ import annotations

import numpy as np

_default_dtype = np.dtype(np.float32)


def set_default_dtype(dtype) -> None:
    """Set the dtype given to ints, bools, lists and Python scalars (float32 or float64)."""
    global _default_dtype
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"set_default_dtype: dtype must be float32 or float64, got {dtype}")
    _default_dtype = dtype


def get_default_dtype() -> np.dtype:
    """The dtype given to ints, bools, lists and Python scalars."""
    return _default_dtype


def to_array(data, dtype=None) -> np.ndarray:
    """Apply the dtype policy and return a fresh, read-only array.

    float32/float64 numpy data keep their dtype; ints, bools, other floats, lists and Python
    scalars become the default float dtype; strings, objects and complex raise TypeError.
    """
    is_numpy = isinstance(data, (np.ndarray, np.generic))
    try:
        arr = np.array(data)
    except ValueError as e:  # ragged nested lists
        raise ValueError(f"Tensor: data is not a rectangular array: {e}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"Tensor: unsupported dtype {arr.dtype} (from {type(data).__name__}); "
            "use numbers: float32/float64 arrays, ints, bools, lists or scalars"
        )
    if dtype is not None:
        target = np.dtype(dtype)
        if target not in (np.float32, np.float64):
            raise TypeError(f"Tensor: dtype must be float32 or float64, got {target}")
    elif is_numpy and arr.dtype in (np.float32, np.float64):
        target = arr.dtype
    else:
        target = _default_dtype
    arr = arr.astype(target, copy=False)
    arr.setflags(write=False)
    return arr
