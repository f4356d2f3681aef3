"""The engine's helpers: the graph walk and broadcasting undone. numpy only; no Tensor import.

Anything with ``.parents`` (a tuple of nodes) is a node here, so viz/ and explain.py can read a graph
without importing the Tensor class.
"""

from __future__ import annotations

import gc
import itertools
import threading

import numpy as np


def topo_order(root) -> list:
    """Every node that leads to ``root``, parents before children, root last.

    Iterative depth-first search (no recursion limit), deterministic: parents are visited in
    the order the op lists them.
    """
    order, seen = [], set()
    stack = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for parent in reversed(node.parents):
            if id(parent) not in seen:
                stack.append((parent, False))
    return order


def sum_to_shape(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Undo numpy broadcasting: sum g (broadcast shape) down to ``shape``; ValueError if ``shape`` does not
    broadcast to g's shape (a closure returned a gradient of the wrong shape)."""
    if g.shape == shape:
        return g
    check_reduces_to(g.shape, shape)
    g = g.sum(axis=tuple(range(g.ndim - len(shape))))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def check_reduces_to(g_shape: tuple, shape: tuple) -> None:
    """ValueError unless ``shape`` broadcasts to ``g_shape`` (so a gradient of g_shape sums back to it)."""
    lead = len(g_shape) - len(shape)
    if lead < 0 or any(n != 1 and n != m for n, m in zip(shape, g_shape[lead:], strict=True)):
        raise ValueError(f"a gradient of shape {g_shape}, which the input's shape {shape} does not broadcast to")


def wrong_shape(t, parent, error: ValueError) -> ValueError:
    """The error for a closure of t that returned a gradient of the wrong shape for ``parent`` (error: from
    check_reduces_to)."""
    i = next(i for i, p in enumerate(t.parents) if p is parent)
    return ValueError(f"backward of '{t.op}' returned {error} for its input {i}: return a gradient of that input's "
                      "shape (or one it broadcasts to, summed back by the engine)")


def grad_like(g, data: np.ndarray) -> np.ndarray:
    """A closure's gradient for an input holding ``data``: summed back to its shape, in its dtype."""
    if type(g) is not np.ndarray:
        g = np.asarray(g)
    if g.shape != data.shape:
        g = sum_to_shape(g, data.shape)
    return g if g.dtype == data.dtype else g.astype(data.dtype)


leaf_grad_lock = threading.Lock()  # backward() in several threads may reach the same parameter


def wrong_gradients(t, grads) -> TypeError:
    """The error for an op whose backward did not return a tuple of one gradient (or None) per input."""
    return TypeError(f"backward of '{t.op}' must return a tuple of {len(t.parents)} gradients (one per "
                     f"input, None allowed), got {type(grads).__name__}"
                     f"{f' of {len(grads)}' if isinstance(grads, (tuple, list)) else ''}")


def checked_hook_result(hook, new, shape: tuple, dtype) -> None:
    """Raise RuntimeError unless a hook's replacement gradient ``new`` (an array) has the shape and dtype of the one
    it replaces."""
    if not isinstance(new, np.ndarray) or new.shape != shape or new.dtype != dtype:
        found = f"{type(new).__name__} of shape {np.shape(new)} and dtype {getattr(new, 'dtype', '?')}"
        raise RuntimeError(
            f"hook {getattr(hook, '__qualname__', repr(hook))} returned {found}, but the gradient it "
            f"replaces has shape {shape} and dtype {dtype}: return an array of that shape and dtype, "
            "or None to keep the gradient"
        )


def readonly(arr) -> np.ndarray:
    """The result of a numpy op as a read-only ndarray (numpy returns scalars for 0-d)."""
    if type(arr) is not np.ndarray:
        arr = np.asarray(arr)
    arr.setflags(write=False)
    return arr


class _CollectorPause:
    """Counts the backward walks running now (in any thread); the first pauses the collector, the last restores it.

    Reading ``gc.isenabled()`` and calling ``gc.disable()`` per walk would race between threads: a walk that starts
    while another has paused the collector would find it off, and could switch it off again after the other
    switched it back on, leaving it off for good.
    """

    def __init__(self):
        self.lock, self.walks, self.was_enabled = threading.Lock(), 0, False

    def __enter__(self):
        with self.lock:
            if self.walks == 0:
                self.was_enabled = gc.isenabled()
                gc.disable()
            self.walks += 1

    def __exit__(self, *exc):
        with self.lock:
            self.walks -= 1
            if self.walks == 0 and self.was_enabled:
                gc.enable()
        return False


_collector_pause = _CollectorPause()


def gc_paused() -> _CollectorPause:
    """Pause Python's cyclic garbage collector during a backward walk: the walk allocates arrays but no cycles,
    and collections that scan a graph of 100,000 tensors would make its cost grow faster than linearly."""
    return _collector_pause


class RemovableHandle:
    """What ``register_hook`` returns: ``.remove()`` takes the hook off (calling it twice is harmless)."""

    _ids = itertools.count()

    def __init__(self, hooks: dict):
        self._hooks, self.id = hooks, next(RemovableHandle._ids)

    def remove(self) -> None:
        self._hooks.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()
        return False
