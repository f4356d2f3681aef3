"""Weights on disk: ``save(model, "w.npz")`` and ``model.load_state_dict(load("w.npz"))``.

The file is a plain numpy ``.npz`` (a zip of ``.npy`` arrays, one per parameter, keyed by its
dotted name), so ``numpy.load`` reads it too.  It is read with ``allow_pickle=False``: loading a
weights file never runs code.  The bytes of each array are stored as they are, so a round trip
is bit-identical (dtype, shape and every value).
"""

from __future__ import annotations

import numbers
import os
import threading
import zipfile
from collections.abc import Mapping

import numpy as np

from .tensor import Tensor

__all__ = ["save", "load"]

# What reading damaged bytes may raise. numpy's header parser raises almost anything on crafted input
# (seen in fuzzing: SyntaxError, tokenize.TokenError, TypeError), and with allow_pickle=False no code
# of the file runs, so any exception while reading means the file is corrupt.
_CORRUPT = Exception
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first member, or an empty zip (as numpy.load tests)
_NPY_MAGIC = b"\x93NUMPY"
MAX_BYTES = 2 * 1024 ** 3  # load's default limit on the uncompressed size of a file's arrays


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
    renamed into place, so an interrupted save never leaves a half-written file behind.  Errors
    name ``path`` (IsADirectoryError if it is a directory, FileNotFoundError if its directory is
    missing, the OSError's own type otherwise).
    """
    state = _as_state_dict(module_or_state_dict)
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"save: {path!r} is a directory; give a file path such as "
                                f"{os.path.join(path, 'weights.npz')!r}")
    folder = os.path.dirname(path) or "."
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"save: cannot write {path!r}: no directory {folder!r}")
    tmp = f"{path}.tmp{os.getpid()}-{threading.get_ident()}"  # one per thread: threads may save to one path
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED) as zf:
            for key, arr in state.items():
                with zf.open(f"{key}.npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, arr, allow_pickle=False)
        os.replace(tmp, path)
    except OSError as e:  # its message would name the temporary file
        raise type(e)(f"save: cannot write {path!r} ({e.strerror or e})") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load(path, max_bytes: int = MAX_BYTES) -> dict:
    """Read a file written by ``save``; return {name: ndarray} in the order saved.

    Before reading any array, the sizes each member of the zip declares (uncompressed) are checked:
    one member, or all of them together, larger than ``max_bytes`` (default 2 GiB) is refused, so a
    small crafted file cannot inflate to gigabytes.  A member that declares less than it holds fails
    its checksum: members are read in chunks that stop at the declared size.

    Raises FileNotFoundError for a missing file, IsADirectoryError for a directory, and ValueError
    naming the path for a file that is not an ``.npz`` (garbage, a pickle, a lone ``.npy``), is too
    large, corrupt or truncated, or holds an object (pickled) or other non-numeric array.
    """
    path = os.fspath(path)
    if not isinstance(max_bytes, numbers.Integral) or isinstance(max_bytes, bool) or max_bytes <= 0:
        raise TypeError(f"load: max_bytes must be a positive int, got {max_bytes!r}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"load: {path!r} is a directory, not a weights file")
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no weights file at {path!r}")
    with open(path, "rb") as f:
        head = f.read(len(_NPY_MAGIC))
    if not head.startswith(_ZIP_MAGICS) and head != _NPY_MAGIC:  # numpy would try it as a pickle
        raise ValueError(f"load: {path!r} is not a .npz weights file (it starts with neither the zip nor "
                         "the .npy signature)")
    try:
        npz = np.load(path, allow_pickle=False)
    except _CORRUPT as e:
        raise ValueError(f"load: {path!r} is corrupt or truncated ({type(e).__name__}: {e})") from None
    if not isinstance(npz, np.lib.npyio.NpzFile):
        raise ValueError(f"load: {path!r} holds a single array ({type(npz).__name__}), not a .npz of named "
                         "weights; write it with tinygrad_cnn.save")
    with npz:
        _check_sizes(npz.zip, path, max_bytes)
        _check_crc(npz, path)
        return {key: _read_member(npz, key, path) for key in npz.files}


def _check_sizes(zf: zipfile.ZipFile, path: str, max_bytes: int) -> None:
    """No member, and not all members together, may declare more than ``max_bytes`` uncompressed."""
    advice = "raise max_bytes if you trust this file"
    total = 0
    for info in zf.infolist():
        total += info.file_size
        if info.file_size > max_bytes:
            raise ValueError(f"load: {path!r}, member {info.filename!r} declares {info.file_size:,} bytes "
                             f"uncompressed, more than max_bytes={max_bytes:,} ({advice})")
        if total > max_bytes:
            raise ValueError(f"load: {path!r}, members up to {info.filename!r} declare {total:,} bytes "
                             f"uncompressed in total, more than max_bytes={max_bytes:,} ({advice})")


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
