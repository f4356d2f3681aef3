"""What the explorer page shows of each drawn tensor: its facts, statistics, heat maps and explanations, as JSON.

Everything here is plain data (dicts of str, numbers, lists) for the page's script; arrays for heat maps travel
as base64 of little-endian float32. Reads tensors through their public fields (``op``, ``op_label``, ``rule``,
``parents``, ``data``, ``grad``, ``name``), the ops' declared facts and ``explain``; the file:line that made a
tensor comes from the profile (or from ``detect_anomaly()``, which records it too).

May import: ``explain`` (and through it the engine) and ``ops.facts`` (what an op declares). Used by
``explorer.page`` and ``explorer.server``.
"""

from __future__ import annotations

import base64
from collections import Counter

import numpy as np

from ..explain import explain
from ..ops.facts import facts_of

MAX_SAMPLES = 4     # images of a batch shown (a selector picks one)
MAX_CHANNELS = 16   # maps per image
MAX_SIDE = 64       # rows and columns of one map
MAX_CELLS = 8192    # cells per image (fewer channels shown for large maps)


# ----------------------------------------------------------------------------- names
def drawn_names(tensors: dict, params=None) -> dict:
    """{node id: the name the page uses for it (its ``data-node``)}: the name as drawn (``params`` first, else
    ``Tensor.name``); the node id (``n7``) for an unnamed tensor; ``name@n7`` when two drawn tensors share a name."""
    given = {id(t): name for name, t in dict(params or {}).items()}
    names = {node: given.get(id(t), t.name) or node for node, t in tensors.items()}
    counts = Counter(names.values())
    return {node: name if counts[name] == 1 else f"{name}@{node}" for node, name in names.items()}


# ----------------------------------------------------------------------------- numbers
def _number_text(v: float) -> str:
    return f"{v:.6g}"


def statistics(a: np.ndarray, kind: str) -> dict:
    """{name: (exact value, text)} of an array: value mean, std, min, max; or gradient norm, mean, std, max |g|.

    Computed in float64 over every entry (a NaN makes them NaN, which the text says).
    """
    a64 = np.asarray(a, dtype=np.float64)
    if a64.size == 0:
        return {}
    if kind == "value":
        found = {"mean": a64.mean(), "std": a64.std(), "min": a64.min(), "max": a64.max()}
    else:
        found = {"norm": np.linalg.norm(a64.reshape(-1)), "mean": a64.mean(), "std": a64.std(),
                 "max-abs": np.abs(a64).max()}
    return {name: {"value": repr(float(v)), "text": _number_text(float(v))} for name, v in found.items()}


# ----------------------------------------------------------------------------- heat maps
def filter_channels(t, consumers: list) -> tuple | None:
    """What axes 2 and 3 of ``t`` are when an op of the library takes it as a filter bank (its declared
    ``filter_channels``: input 1 of conv2d, conv_transpose2d), else None. A user's op is never taken for one."""
    for c in consumers:
        channels = facts_of(c).filter_channels
        if channels and len(c.parents) > 1 and c.parents[1] is t:
            return channels
    return None


def map_axes(t, consumers: list) -> tuple | None:
    """Which tensor axis is (image, channel, row, column) of the heat maps, -1 where none; None past 4-D.

    NHWC images (m, H, W, C): one map per channel of the image chosen; a filter bank (f_h, f_w, ., .), input 1 of a
    conv (``filter_channels``): one (f_h, f_w) map per entry of axis 3, the entry of axis 2 chosen; 3-D: a map per
    entry of axis 0; 2-D: one map; 1-D: one row; 0-D: one cell.
    """
    if t.ndim == 4:
        return (2, 3, 0, 1) if filter_channels(t, consumers) else (0, 3, 1, 2)
    return {3: (-1, 0, 1, 2), 2: (-1, -1, 0, 1), 1: (-1, -1, -1, 0), 0: (-1, -1, -1, -1)}.get(t.ndim)


def _caps(shape: tuple, axes: tuple) -> tuple:
    """How many images, channels, rows and columns to show: at most MAX_SIDE rows and columns, MAX_SAMPLES
    images, MAX_CHANNELS channels and fewer where the maps are large (MAX_CELLS cells per image)."""
    rows, cols = (min(shape[axis], MAX_SIDE) if axis >= 0 else 1 for axis in axes[2:])
    return MAX_SAMPLES, max(1, min(MAX_CHANNELS, MAX_CELLS // (rows * cols))), MAX_SIDE, MAX_SIDE


def _shown(a: np.ndarray, axes: tuple) -> np.ndarray:
    """The capped part of ``a`` as a 4-D array (image, channel, row, column)."""
    caps = _caps(a.shape, axes)
    index = [slice(None)] * a.ndim
    for axis, cap in zip(axes, caps, strict=True):
        if axis >= 0:
            index[axis] = slice(0, cap)
    part = a[tuple(index)]
    present = [axis for axis in axes if axis >= 0]
    part = np.transpose(part, present) if present else part
    shape = [part.shape[present.index(axis)] if axis >= 0 else 1 for axis in axes]
    return part.reshape(shape)


IMAGE_AXES = ("image", "channel", "row", "column")


def _notes(shape: tuple, axes: tuple, what: tuple) -> list:
    """'showing first 16 of 32 channels' for each capped axis."""
    return [f"showing first {cap} of {shape[axis]} {noun}s"
            for axis, cap, noun in zip(axes, _caps(shape, axes), what, strict=True)
            if axis >= 0 and shape[axis] > cap]


def _encode(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")


def heat_maps(t, consumers: list) -> dict | None:
    """The value (and gradient) heat maps of ``t``: their axes, shown size, notes and float32 data; None past 4-D."""
    axes = map_axes(t, consumers)
    if axes is None or t.size == 0:
        return None
    value = _shown(np.asarray(t.data), axes)
    channels = filter_channels(t, consumers) if t.ndim == 4 else None
    what = (*channels, "row", "column") if channels else IMAGE_AXES
    maps = {"axes": list(axes), "names": list(what), "dims": list(value.shape), "notes": _notes(t.shape, axes, what),
            "value": _encode(value)}
    if t.grad is not None:
        maps["grad"] = _encode(_shown(np.asarray(t.grad), axes))
    return maps


# ----------------------------------------------------------------------------- explanations
def entry_text(index: tuple) -> str:
    return ",".join(str(int(i)) for i in index)


def parse_entry(text: str, shape: tuple) -> tuple:
    """'0,3,4,2' -> (0, 3, 4, 2), checked against ``shape``; ValueError naming the entry otherwise."""
    try:
        index = tuple(int(part) for part in text.split(",")) if text else ()
    except ValueError:
        raise ValueError(f"entry {text!r}: give comma-separated integers, e.g. 0,3,4,2") from None
    if len(index) != len(shape) or not all(0 <= i < n for i, n in zip(index, shape, strict=True)):
        raise ValueError(f"entry {text!r} is not an index of a tensor of shape {tuple(shape)}")
    return index


def explanation(root, t, index: tuple) -> dict:
    """explain(root, t, index) for the page: its table as text, the sum of its terms, the gradient entry."""
    why = explain(root, t, index)
    return {"entry": entry_text(index), "text": why.table(), "total": repr(why.total), "grad": repr(why.grad),
            "terms": len(why.terms)}


def top_entries(grad: np.ndarray, k: int) -> list:
    """The indices of the ``k`` largest |grad| entries (NaN and inf first), largest first."""
    if k <= 0 or grad.size == 0:
        return []
    size = np.abs(np.nan_to_num(np.asarray(grad, dtype=np.float64), nan=np.inf)).reshape(-1)
    k = min(k, size.size)
    flat = np.argpartition(-size, k - 1)[:k]
    flat = flat[np.argsort(-size[flat], kind="stable")]
    return [tuple(int(i) for i in np.unravel_index(f, grad.shape)) for f in flat]


# ----------------------------------------------------------------------------- one node
def _kind(t, root) -> str:
    if t is root:
        return "root"
    if t.parents:
        return "interior"
    return "param" if t.requires_grad else "input"


def node_facts(t, node_id: str, name: str, root, consumers: list, profile=None) -> dict:
    """Everything the panel shows of tensor ``t`` (drawn as ``node_id``, called ``name``)."""
    stats = profile.node(t) if profile is not None else None
    where = (stats.where if stats is not None else None) or getattr(t, "_where", None)
    facts = {
        "id": node_id, "name": name, "kind": _kind(t, root), "op": t.op_label if t.op else "",
        "rule": t.rule or "", "created_at": where or "", "shape": list(t.shape),
        "dtype": np.dtype(t.dtype).name, "requires_grad": bool(t.requires_grad),
        "value": statistics(t.data, "value"), "grad": None if t.grad is None else statistics(t.grad, "grad"),
        "maps": heat_maps(t, consumers), "explained": {},
    }
    if stats is not None:
        facts["profile"] = {"forward-ms": repr(stats.forward * 1e3), "backward-ms": repr(stats.backward * 1e3),
                            "saved-bytes": str(stats.saved_bytes)}
    return facts
