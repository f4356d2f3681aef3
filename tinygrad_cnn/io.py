"""Weights on disk: ``save(model, "w.npz")`` and ``model.load_state_dict(load("w.npz"))``.

The file is a plain numpy ``.npz`` (a zip of ``.npy`` arrays, one per parameter, keyed by its
dotted name), so ``numpy.load`` reads it too.  It is read with ``allow_pickle=False``: loading a
weights file never runs code.  The bytes of each array are stored as they are, so a round trip
is bit-identical (dtype, shape and every value).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping

import numpy as np

from .tensor import Tensor

__all__ = ["save", "load"]

# What reading damaged bytes may raise. numpy's header parser raises almost anything on crafted input
# (seen in fuzzing: SyntaxError, tokenize.TokenError, TypeError), and with allow_pickle=False no code
# of the file runs, so any exception while reading means the file is corrupt.
_CORRUPT = Exception


def _as_state_dict(obj) -> dict:
    """A Module's ``state_dict()``, or a mapping name -> array/Tensor checked and turned into arrays."""
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        obj = obj.state_dict()
    if not isinstance(obj, Mapping):
        raise TypeError(f"save: expected a Module or a mapping name -> array, got {type(obj).__name__}")
    state = {}
    for key, value in obj.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"save: keys must be non-empty strings, got {key!r}")
        arr = np.asarray(value.data if isinstance(value, Tensor) else value)
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"save: key {key!r} holds dtype {arr.dtype}; only numeric arrays can be saved")
        state[key] = arr
    return state


def save(module_or_state_dict, path) -> None:
    """Write a Module's parameters (or a state dict) to ``path`` as an uncompressed ``.npz``.

    The path is used as given (no ``.npz`` is appended).  The file is written next to ``path`` and
    renamed into place, so an interrupted save never leaves a half-written file behind.
    """
    state = _as_state_dict(module_or_state_dict)
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for key, arr in state.items():
                with zf.open(f"{key}.npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, arr, allow_pickle=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load(path) -> dict:
    """Read a file written by ``save``; return {name: ndarray} in the order saved.

    Raises FileNotFoundError for a missing file, and ValueError naming the path for a file that
    is not an ``.npz`` (garbage, a lone ``.npy``), is corrupt or truncated, or holds an object
    (pickled) or other non-numeric array.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no weights file at {path!r}")
    try:
        npz = np.load(path, allow_pickle=False)
    except ValueError as e:  # not a zip or .npy file: numpy takes it for a pickle and refuses
        raise ValueError(f"load: {path!r} is not a .npz weights file ({e})") from None
    except _CORRUPT as e:
        raise ValueError(f"load: {path!r} is corrupt or truncated ({type(e).__name__}: {e})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"load: {path!r} holds a single array ({type(npz).__name__}), not a .npz of named "
                         "weights; write it with tinygrad_cnn.save")
    with npz:
        _check_crc(npz, path)
        return {key: _read_member(npz, key, path) for key in npz.files}


def _check_crc(npz, path: str) -> None:
    """Every member's bytes must match its stored checksum (numpy alone does not always check)."""
    try:
        bad = npz.zip.testzip()
    except _CORRUPT as e:
        raise ValueError(f"load: {path!r} is corrupt or truncated ({type(e).__name__}: {e})") from None
    if bad is not None:
        raise ValueError(f"load: {path!r} is corrupt: member {bad!r} fails its checksum")


def _read_member(npz, key: str, path: str) -> np.ndarray:
    """One array of the archive, with errors that name the path and the key."""
    try:
        arr = npz[key]
    except ValueError as e:
        if "pickle" in str(e) or "Object arrays" in str(e):
            raise ValueError(f"load: {path!r}, key {key!r} holds an object array; it would need pickle to "
                             "load and could run code, so it is refused") from None
        raise ValueError(f"load: {path!r}, key {key!r} is corrupt ({e})") from None
    except _CORRUPT as e:
        raise ValueError(f"load: {path!r}, key {key!r} is corrupt or truncated "
                         f"({type(e).__name__}: {e})") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"load: {path!r}, key {key!r} holds dtype {arr.dtype}, not numbers")
    return arr
