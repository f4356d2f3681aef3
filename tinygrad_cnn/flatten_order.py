"""Which PyTorch column each input row of a Linear is, when its input comes from flattens of NHWC images.

We flatten an image (H, W, C) in that order; PyTorch flattens an NCHW image in (C, H, W) order. So in PyTorch's twin
of a model (the same layers, images NCHW) a Linear fed from a flatten takes its rows in another order, and its
weight must be reordered. ``torch_columns(x, who)`` finds that order from the recorded graph of the Linear's input
``x`` (m, F): it labels each of the F rows, walks the labels back through the ops to where they come from, and gives
for each row j the column of PyTorch's weight it becomes (None when the order is the same).

* Ops that only move values (reshape, flatten, transpose, concatenate, stack, indexing: the op's declared
  ``moves_values``) are followed exactly, by running their own backward closure on the labels.
* Entrywise ops (relu, dropout, a scale, a residual sum) and softmax / log-softmax of a 2-D tensor (``equivariant``)
  keep each row's place: followed to every input of their shape.
* Where the labels stop is a source. A 4-D tensor that no move made (a conv's output, a relu of it, your input) is
  images, where the labels stop: its rows must be one whole flatten of them, a block of
  H*W*C consecutive rows, which in the twin is in (C, H, W) order (a flatten, or a transpose to NCHW and a flatten:
  the block's own order does not matter). Any other source (a matmul, a pooled (m, C), a leaf) keeps its rows.
* Every row must get one column from all its sources; else (a flatten added to a matmul's output, a part of a
  flatten, rows of two images interleaved, a flatten reached through an op whose row order is unknown, such as a sum
  of pairs or your own op) ValueError names the ops on the way: no reordering would make the twin exact.

Reads any graph (``.parents``, ``.op``, ``.facts``, ``._backward``); imports no Tensor, only the op mixins whose
facts it compares with (getitem, broadcast_to, matmul).
"""

from __future__ import annotations

import numpy as np

from .graph import topo_order
from .ops.elementwise import ElementwiseOps
from .ops.facts import GENERIC, facts_of
from .ops.shape import ShapeOps


def _is_move(t) -> bool:
    """t's op moves each value to one place (its declared facts say it moves values; indexing selects); not
    broadcast_to, which copies a value to many (its backward sums)."""
    facts = facts_of(t)
    return t.op is not None and facts is not ShapeOps.BROADCAST_TO and (
        facts.moves_values or facts is ShapeOps.GETITEM)


def _path(via: tuple) -> str:
    return " <- ".join(via) if via else "directly"


def torch_columns(x, who: str):
    """For the Linear input x (..., F): an int array, PyTorch's column for each of our F rows, or None if the same.

    who: the Linear as errors name it (``Linear(64, 10)``). Raises ValueError where no order would be exact.
    """
    n = x.shape[-1]
    pending = {id(x): [(np.broadcast_to(np.arange(1, n + 1), x.shape), ())]}  # labels: 1 + row, 0 for none
    columns, what = np.full(n, -1), [None] * n
    for t in reversed(topo_order(x)):
        for labels, via in pending.pop(id(t), []):
            passed = _passed_back(t, labels, via, who)
            if passed is None:
                rows, cols, desc = _source(t, labels, via, who)
                _constrain(columns, what, rows, cols, desc, who)
                continue
            for parent, parent_labels in passed:
                known = pending.setdefault(id(parent), [])
                if not any(np.array_equal(parent_labels[0], k) for k, _ in known):
                    known.append(parent_labels)
    if (columns < 0).any() or len(np.unique(columns)) != n:
        raise ValueError(f"interop: {who}'s input rows do not map one to one onto PyTorch's")
    return None if (columns == np.arange(n)).all() else columns


def _passed_back(t, labels: np.ndarray, via: tuple, who: str):
    """[(parent, (its labels, via))] for an op that keeps track of rows; None when t is a source (a 4-D tensor that
    no move made is images: the labels stop there, even after an entrywise op)."""
    if t.ndim == 4 and not _is_move(t):
        return None
    facts, via = facts_of(t), via + (t.op_label,)
    if _is_move(t):
        grads = t._backward(labels.astype(np.float64))
        if facts is ShapeOps.GETITEM:
            counts = t._backward(np.ones(labels.shape, np.float64))[0]
            if (np.asarray(counts) > 1).any():
                raise ValueError(f"interop: {who}'s input repeats entries through {_path(via)}: no order of its "
                                 "rows matches a PyTorch flatten")
        return [(p, (np.rint(g).astype(np.int64), via)) for p, g in zip(t.parents, grads, strict=True)
                if g is not None and np.shape(g) == p.shape]
    if t.op is not None and (facts.entrywise or (facts.equivariant and t.ndim == 2)):
        passed = []
        for p in t.parents:
            if p.shape == t.shape:
                passed.append((p, (labels, via)))
            elif p.ndim and p.shape[-1] > 1:  # one value per row, broadcast over the batch: it keeps our order
                kept = tuple(slice(0, 1) if k == 1 else slice(None) for k in p.shape)
                passed.append((p, (labels[(0,) * (labels.ndim - p.ndim)][kept], via)))
        return passed
    return None


def _source(t, labels: np.ndarray, via: tuple, who: str):
    """(rows, their PyTorch columns, what to call this source in an error) where the labels stop at t."""
    if t.ndim == 4 and not _is_move(t):
        return _image_rows(t, labels, via, who)
    _refuse_flatten_behind(t, via, who)
    rows = np.unique(labels[labels > 0]) - 1
    name = t.op_label or f"a tensor of shape {t.shape}"
    return rows, rows, f"{name} ({_path(via)}), whose rows keep their order"


def _image_rows(t, labels: np.ndarray, via: tuple, who: str):
    """A whole flatten of images t (m, H, W, C): its rows and their columns in PyTorch's (C, H, W) order."""
    H, W, C = t.shape[1:]
    where = f"a flatten of images (H, W, C) {(H, W, C)} ({_path(via)})"
    if not (labels == labels[:1]).all():
        raise ValueError(f"interop: {who}'s input mixes the images of a batch: {where}")
    rows = labels[0].ravel()  # row-major (h, w, c)
    if (rows == 0).any() or len(np.unique(rows)) != rows.size:
        raise ValueError(f"interop: {who}'s input holds only part of {where}: PyTorch's flatten of the same images "
                         "has its rows in (C, H, W) order, so no order of this Linear's rows matches")
    rows = rows - 1
    first = rows.min()
    if rows.max() - first + 1 != rows.size:
        raise ValueError(f"interop: {who}'s input interleaves the rows of {where} with other rows: in PyTorch they "
                         "would be one block in (C, H, W) order")
    h, w, c = np.meshgrid(np.arange(H), np.arange(W), np.arange(C), indexing="ij")
    return rows, first + (c * H * W + h * W + w).ravel(), where


def _refuse_flatten_behind(t, via: tuple, who: str) -> None:
    """ValueError if a flatten of images lies behind the op t (through any ops but a matmul, which is another
    Linear's business), or t is your own op fed by images: their rows reach this Linear in an order nobody knows."""
    stack, seen = [t], set()
    while stack:
        u = stack.pop()
        if id(u) in seen or u.op is None or facts_of(u) is ElementwiseOps.MATMUL:
            continue
        seen.add(id(u))
        images = [p for p in u.parents if p.ndim == 4]
        if images and u.ndim != 4 and (_is_move(u) or facts_of(u) is GENERIC):
            kind = "a flatten of images" if _is_move(u) else f"your op '{u.op}' on images"
            after = f" ({_path(via)})" if via else ""
            raise ValueError(f"interop: {who}'s input comes from {kind} {images[0].shape} through "
                             f"'{t.op_label}'{after}, whose row order is unknown: PyTorch's twin would "
                             "flatten in (C, H, W) order, and no order of this Linear's rows can follow it")
        stack += [p for p in u.parents if p.ndim != 4]


def _constrain(columns: np.ndarray, what: list, rows: np.ndarray, cols: np.ndarray, desc: str, who: str) -> None:
    """Record that our ``rows`` are PyTorch's ``cols``; ValueError if a row already has another column."""
    clash = (columns[rows] >= 0) & (columns[rows] != cols)
    if clash.any():
        row = int(rows[np.argmax(clash)])
        first, second = (what[row], desc) if "flatten of images" in what[row] else (desc, what[row])
        raise ValueError(f"interop: {who}'s input row {row} comes from {first} and from {second}: in PyTorch the "
                         "rows of a flatten of images are in (C, H, W) order and the others are not, so no order of "
                         "this Linear's rows matches; give each its own Linear, or flatten them the same way")
    columns[rows] = cols
    for r in rows:
        what[r] = what[r] or desc
