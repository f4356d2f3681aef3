"""Read-only views that say what to write instead of an in-place edit. numpy only; imports nothing of the package.

A tensor's values are read-only (a graph may have recorded them), and so is the gradient a hook receives. numpy's
own error for ``p.data -= lr * p.grad`` or ``g *= 0.5`` in a hook is "output array is read-only", which says
nothing about what to write. ``t.data`` therefore returns a ``DataView``, ``t.numpy()`` a ``NumpyView`` and a hook
gets a ``HookGradient``: ndarray subclasses, read-only, whose in-place operators and item assignment raise
ValueError with the line to write (``p.data = p.data - lr * p.grad``; ``return g * 0.5``). Everything else is
numpy's: a computation on them gives a plain ndarray (or numpy scalar), and only views of them (slices, reshapes)
keep the class, read-only as the views of any read-only array. The library's own ops read the plain array behind
(``Tensor._data``).
"""

from __future__ import annotations

import numpy as np

# in-place operator -> its binary form, for the advice
IN_PLACE = {"__iadd__": "+", "__isub__": "-", "__imul__": "*", "__itruediv__": "/", "__ifloordiv__": "//",
            "__imod__": "%", "__ipow__": "**", "__imatmul__": "@", "__iand__": "&", "__ior__": "|", "__ixor__": "^",
            "__ilshift__": "<<", "__irshift__": ">>"}


class _AdvisingView(np.ndarray):
    """A read-only view whose in-place edits raise ValueError with ADVICE (formatted with op, the binary operator)
    and SETITEM. A writable array of this class (a result computed from one) behaves as any ndarray."""

    __array_priority__ = -1000.0  # mixed with a plain ndarray, numpy returns a plain ndarray
    ADVICE = SETITEM = ""

    def __array_wrap__(self, arr, context=None, return_scalar=False):
        """A computation on a view gives a plain ndarray (a numpy scalar for a 0-d result), as on any ndarray."""
        arr = arr.view(np.ndarray)
        return arr[()] if return_scalar else arr

    def __setitem__(self, index, value):
        if not self.flags.writeable:
            raise ValueError(self.SETITEM)
        super().__setitem__(index, value)

    def __repr__(self) -> str:
        return repr(self.view(np.ndarray))

    def __reduce_ex__(self, protocol):
        """Pickled as numpy's own ndarray: loading it needs numpy only, not this package."""
        return self.view(np.ndarray).__reduce_ex__(protocol)


def _in_place(name: str, op: str):
    numpy_op = getattr(np.ndarray, name)

    def method(self, other):
        if not self.flags.writeable:
            raise ValueError(self.ADVICE.format(op=op))
        return numpy_op(self, other)
    method.__name__ = name
    return method


for _name, _op in IN_PLACE.items():
    setattr(_AdvisingView, _name, _in_place(_name, _op))


class DataView(_AdvisingView):
    """What ``t.data`` returns: the tensor's values, read-only."""

    ADVICE = ("t.data is read-only: '{op}=' would write into values an op may have recorded, and its gradient would "
              "silently change. Assign a new array instead: t.data = t.data {op} value (a parameter's update: "
              "p.data = p.data - lr * p.grad)")
    SETITEM = ("t.data is read-only (assignment destination is read-only): copy, edit, assign: "
               "a = t.data.copy(); a[i] = value; t.data = a")


class NumpyView(_AdvisingView):
    """What ``t.numpy()`` returns: the tensor's values, read-only (PyTorch's is writable and shares memory)."""

    ADVICE = ("t.numpy() is read-only here (PyTorch's shares memory and writes through): '{op}=' would write into "
              "values an op may have recorded. Assign a new array instead: t.data = t.data {op} value")
    SETITEM = ("t.numpy() is read-only here (PyTorch's shares memory and writes through): copy, edit, assign: "
               "a = t.numpy().copy(); a[i] = value; t.data = a")


class HookGradient(_AdvisingView):
    """What a hook registered with ``register_hook`` receives: the gradient, read-only."""

    ADVICE = ("a hook's gradient is read-only: 'g {op}= ...' edits it in place. Return the new gradient instead: "
              "return g {op} ... (e.g. return g * 0.5)")
    SETITEM = ("a hook's gradient is read-only (assignment destination is read-only): copy, edit, return: "
               "g = g.copy(); g[i] = value; return g")
