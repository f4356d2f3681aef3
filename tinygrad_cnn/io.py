"""Weights and checkpoints on disk: ``save(model, "w.npz")``, ``model.load_state_dict(load("w.npz"))``, and
``save({"model": model.state_dict(), "opt": opt.state_dict(), "epoch": 3}, "ckpt.npz")`` for training to resume.

The file is a plain numpy ``.npz`` (a zip of ``.npy`` arrays), so ``numpy.load`` reads it too, and it is read
with ``allow_pickle=False``: loading a file never runs code. The bytes of each array are stored as they are, so a
round trip is bit-identical (dtype, shape and every value).

* A Module, or a dict of arrays keyed by name (a ``state_dict``): one ``.npy`` per array, named by its key.
* Anything nested (dicts inside dicts, lists, tuples, Python numbers, strings, None; a Module or optimizer inside
  is saved as its ``state_dict()``): each array is a member named by its path (``model/conv1.W``,
  ``opt/state/0/exp_avg``) and one more member, ``__tree__``, holds the nesting as JSON text (a numpy string
  array, no pickle), with the numbers in it exactly (Python's float repr). ``load`` gives the same nesting back:
  dicts (string and int keys), lists, tuples, numbers, arrays.

Imports: numpy, json, zipfile and tensor.py (Tensors are saved as their data).
"""

from __future__ import annotations

import io
import json
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
MAX_HEADER = 10_000  # numpy's own limit on an .npy header read without pickle (np.lib.format)
TREE = "__tree__"  # the member that holds a nested checkpoint's structure


# ----------------------------------------------------------------------------- what is written
def _is_array(value) -> bool:
    return isinstance(value, (np.ndarray, np.generic, Tensor))


def _checked_array(key: str, value) -> np.ndarray:
    arr = np.asarray(value.data if isinstance(value, Tensor) else value)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"save: key {key!r} holds dtype {arr.dtype}; only numeric arrays can be saved")
    return arr


def _members(obj) -> dict:
    """{member name (no .npy): array} to write: a flat state dict's arrays by name, or a nested object's arrays by
    path plus its structure (TREE)."""
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        obj = obj.state_dict()
    if not isinstance(obj, Mapping):
        raise TypeError(f"save: expected a Module, an optimizer or a dict (of arrays, numbers, or nested dicts, "
                        f"lists and tuples of them), got {type(obj).__name__}")
    if all(isinstance(k, str) for k in obj) and all(_is_array(v) for v in obj.values()):
        for key in obj:
            if not key or key == TREE:
                raise TypeError(f"save: keys must be non-empty strings other than {TREE!r}, got {key!r}")
        return {key: _checked_array(key, value) for key, value in obj.items()}
    arrays = {}
    tree = _encode(obj, "", arrays)
    return {**arrays, TREE: np.array(json.dumps(tree, allow_nan=True))}


def _encode(value, path: str, arrays: dict):
    """value as JSON: dicts {"__dict__": [[key, value], ...]}, tuples {"__tuple__": [...]}, lists as lists, arrays
    {"__array__": member} (stored in ``arrays``), numbers, strings, booleans and None as they are."""
    if hasattr(value, "state_dict") and callable(value.state_dict):
        value = value.state_dict()
    if _is_array(value):
        name = _unique(path.strip("/") or "array", arrays)
        arrays[name] = _checked_array(path, value)
        return {"__array__": name, "scalar": isinstance(value, np.generic)}
    if isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            if isinstance(key, bool) or not isinstance(key, (str, int)):
                raise TypeError(f"save: at {path or 'the top'}, keys must be strings or ints, got {key!r}")
            items.append([key, _encode(item, f"{path}/{key}", arrays)])
        return {"__dict__": items}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{path}/{i}", arrays) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{path}/{i}", arrays) for i, v in enumerate(value)]
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    raise TypeError(f"save: {path or 'the object'} holds a {type(value).__name__}; a checkpoint holds arrays, "
                    "numbers, strings, None, and dicts, lists and tuples of them")


def _unique(name: str, taken: dict) -> str:
    if name == TREE or name in taken:
        n = 2
        while f"{name}#{n}" in taken:
            n += 1
        name = f"{name}#{n}"
    return name


def save(obj, path) -> None:
    """Write a Module's parameters and buffers, a state dict, or a nested checkpoint (dicts of state dicts,
    optimizer states, numbers, lists, tuples) to ``path`` as an uncompressed ``.npz`` (see the module doc).

    The path is used as given (no ``.npz`` is appended).  The file is written next to ``path`` and
    renamed into place, so an interrupted save never leaves a half-written file behind.  Errors
    name ``path`` (IsADirectoryError if it is a directory, FileNotFoundError if its directory is
    missing, the OSError's own type otherwise).
    """
    members = _members(obj)
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
            for key, arr in members.items():
                with zf.open(f"{key}.npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, arr, allow_pickle=False)
        os.replace(tmp, path)
    except OSError as e:  # its message would name the temporary file
        raise type(e)(f"save: cannot write {path!r} ({e.strerror or e})") from None
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# ----------------------------------------------------------------------------- what is read
def load(path, max_bytes: int = MAX_BYTES):
    """Read a file written by ``save``: {name: ndarray} in the order saved, or the nested checkpoint as it was
    saved (dicts, lists, tuples, numbers, arrays).

    Before reading any array, the sizes each member of the zip declares (uncompressed) are checked:
    one member, or all of them together, larger than ``max_bytes`` (default 2 GiB) is refused, so a
    small crafted file cannot inflate to gigabytes.  A member that declares less than it holds fails
    its checksum: members are read in chunks that stop at the declared size.

    Raises FileNotFoundError for a missing file, IsADirectoryError for a directory, and ValueError
    naming the path and the problem for a file that is not an ``.npz`` (garbage, a pickle, a lone ``.npy``), is
    too large, corrupt or truncated, has a member that is not an ``.npy`` array, or holds an object array (it would
    need pickle: never loaded), an ``.npy`` header larger than numpy's safe limit or other non-numeric data.
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
    if head == _NPY_MAGIC:
        raise ValueError(f"load: {path!r} holds a single array (an .npy file), not a .npz of named weights; write "
                         "it with tinygrad_cnn.save")
    if not head.startswith(_ZIP_MAGICS):  # numpy would try it as a pickle
        raise ValueError(f"load: {path!r} is not a .npz weights file (it starts with neither the zip nor "
                         "the .npy signature)")
    try:
        zf = zipfile.ZipFile(path)
    except _CORRUPT as e:
        raise ValueError(f"load: {path!r} is corrupt or truncated ({type(e).__name__}: {e})") from None
    with zf:
        _check_sizes(zf, path, max_bytes)
        _check_crc(zf, path)
        arrays = {_key(info.filename, path): _read_member(zf, info, path) for info in zf.infolist()}
    if TREE not in arrays:
        return arrays
    return _decode(_tree(arrays.pop(TREE), path), arrays, path)


def _key(filename: str, path: str) -> str:
    if not filename.endswith(".npy"):
        raise ValueError(f"load: {path!r}, member {filename!r} is not an .npy array (its name does not end in .npy): "
                         "not a file tinygrad_cnn.save wrote")
    return filename[:-len(".npy")]


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


def _check_crc(zf: zipfile.ZipFile, path: str) -> None:
    """Every member's bytes must match its stored checksum (numpy alone does not always check)."""
    try:
        bad = zf.testzip()
    except _CORRUPT as e:
        raise ValueError(f"load: {path!r} is corrupt or truncated ({type(e).__name__}: {e})") from None
    if bad is not None:
        raise ValueError(f"load: {path!r} is corrupt: member {bad!r} fails its checksum")


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: str) -> np.ndarray:
    """One array of the archive, read without pickle, with errors that name the path, the key and the problem.
    (Its declared size was checked, so it is read whole.)"""
    key, data = info.filename[:-len(".npy")], zf.read(info)
    where = f"load: {path!r}, key {key!r}"
    if not data.startswith(_NPY_MAGIC):
        raise ValueError(f"load: {path!r}, member {info.filename!r} is not an .npy array (it does not start with "
                         "the .npy signature): not a file tinygrad_cnn.save wrote")
    header_size = int.from_bytes(data[8:10] if data[6:7] == b"\x01" else data[8:12], "little")
    if header_size > MAX_HEADER:
        raise ValueError(f"{where}: its .npy header is {header_size:,} bytes, more than numpy reads safely without "
                         f"pickle ({MAX_HEADER:,}): not a file tinygrad_cnn.save wrote")
    try:
        arr = np.lib.format.read_array(io.BytesIO(data), allow_pickle=False, max_header_size=MAX_HEADER)
    except ValueError as e:
        if "Object arrays" in str(e):
            raise ValueError(f"{where} holds an object array; it would need pickle to load and could run code, "
                             "so it is refused") from None
        raise ValueError(f"{where} is corrupt ({e})") from None
    except _CORRUPT as e:
        raise ValueError(f"{where} is corrupt or truncated ({type(e).__name__}: {e})") from None
    if arr.dtype.kind not in "biuf" and not (key == TREE and arr.dtype.kind == "U" and arr.ndim == 0):
        raise ValueError(f"{where} holds dtype {arr.dtype}, not numbers")
    return arr


def _tree(arr: np.ndarray, path: str):
    try:
        return json.loads(str(arr[()]))
    except ValueError as e:
        raise ValueError(f"load: {path!r}, member {TREE!r} is not the JSON save writes ({e})") from None


def _decode(node, arrays: dict, path: str):
    """The saved object back from its JSON (see ``_encode``)."""
    if isinstance(node, list):
        return [_decode(v, arrays, path) for v in node]
    if not isinstance(node, dict):
        return node
    if "__dict__" in node:
        return {key: _decode(v, arrays, path) for key, v in node["__dict__"]}
    if "__tuple__" in node:
        return tuple(_decode(v, arrays, path) for v in node["__tuple__"])
    if "__array__" in node:
        name = node["__array__"]
        if name not in arrays:
            raise ValueError(f"load: {path!r} is corrupt: its structure names the array {name!r}, which it lacks")
        return arrays[name][()] if node.get("scalar") else arrays[name]
    raise ValueError(f"load: {path!r}, member {TREE!r} holds an object save does not write: {sorted(node)}")
