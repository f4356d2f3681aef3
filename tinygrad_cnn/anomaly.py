"""Anomaly mode: ``with detect_anomaly():`` names the first op that made a NaN or an inf, and where.

Inside the mode (per thread, like grad mode) every op records the file and line of the user's code that
created it (the first frame outside this package; in a Jupyter notebook "cell In[3], line 2", as IPython's own
tracebacks say), and:

* forward: the first op whose inputs are all finite but whose output is not (and which was not given a non-finite
  constant of its own: ``pad2d(value=-inf)`` before a max-pool, ``clip`` bounds) raises :class:`AnomalyError`
  naming the op, its output, that line, how many entries went bad, the first one and what the inputs held
  there (``log got 0.0 at (0, 3)``); so does an op that passes such a constant on instead of dropping it
  (an avg-pool or a product over ``pad2d(value=-inf)``'s padding; a max-pool drops it);
* backward: the first backward closure that returns a non-finite gradient from a finite one raises the same
  error, naming the input of the op and the line that created the op;
* numpy's RuntimeWarnings raised inside this package are silenced (the error says it better); those raised by
  the user's own numpy code still warn.

Outside the mode the engine pays one flag check per op (``from_op``) and one per ``backward()``.
This module works on any node with ``.data``, ``.parents``, ``.op``; it never imports the Tensor class.
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np

from .graph import grad_like
from .modes import SwitchContext, ThreadSwitch
from .ops.facts import op_label

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


class AnomalyError(RuntimeError):
    """An op made NaN/inf from finite values (forward) or its backward did (backward), in detect_anomaly()."""


anomaly_mode = ThreadSwitch(False)


def is_anomaly_enabled() -> bool:
    """True inside ``detect_anomaly()`` (in this thread)."""
    return anomaly_mode.enabled


def _numpy_warning(kind: str, flag: int) -> None:
    """numpy's error callback in anomaly mode: silent for this package's ops, a RuntimeWarning elsewhere."""
    caller = sys._getframe(1)
    if not caller.f_code.co_filename.startswith(PACKAGE_DIR):
        warnings.warn(f"{kind} encountered", RuntimeWarning, stacklevel=2)


class detect_anomaly(SwitchContext):
    """Context manager and decorator: find the first op (forward) or backward closure that made NaN/inf.

    ``with detect_anomaly(): loss = model(x); loss.backward()`` raises :class:`AnomalyError` at the first
    bad op. Per thread; nests; ``@detect_anomaly()`` and ``@detect_anomaly`` both work. Slower than normal
    mode (every op checks its output): use it to debug, not to train.
    """

    switch, value = anomaly_mode, True

    def __enter__(self):
        self._errstate = np.errstate(divide="call", over="call", invalid="call", call=_numpy_warning)
        self._errstate.__enter__()
        return super().__enter__()

    def __exit__(self, *exc):
        super().__exit__(*exc)
        self._errstate.__exit__(*exc)
        return False


# ----------------------------------------------------------------------------- where the user's code is
def user_line() -> str:
    """'path/to/file.py:42' of the innermost frame outside this package (the user's line that made an op); in a
    Jupyter notebook 'cell In[3], line 2' (the kernel runs each cell from a temporary file)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(PACKAGE_DIR):
        frame = frame.f_back
    if frame is None:
        return "<unknown>"
    cell = _notebook_cell(frame.f_code.co_filename)
    return f"cell {cell}, line {frame.f_lineno}" if cell else f"{frame.f_code.co_filename}:{frame.f_lineno}"


def user_stacklevel() -> int:
    """The ``stacklevel`` for ``warnings.warn`` called in this package that names the user's line (the first frame
    outside it)."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


def _notebook_cell(filename: str) -> str | None:
    """'In[3]' when filename is the code of a notebook cell (IPython is running and knows it), else None. IPython is
    never imported here: only asked when it is already loaded."""
    ipython = sys.modules.get("IPython")
    shell = getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None
    try:
        label = shell.compile.format_code_name(filename) if shell is not None else None
    except Exception:  # an IPython without this API: fall back to the file name
        return None
    return label[1] if label else None


# ----------------------------------------------------------------------------- the checks
def _bad_entries(a: np.ndarray) -> tuple[int, tuple]:
    """(how many entries are NaN or inf, the index of the first one) of an array that has some."""
    bad = ~np.isfinite(a)
    first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), a.shape)) if a.ndim else ()
    return int(bad.sum()), first


def _num(v) -> str:
    """A numpy number as Python shows a float: 0.0, -inf, nan."""
    return repr(float(v))


def _is_finite(a) -> bool:
    return bool(np.isfinite(a).all())


def _at(a: np.ndarray, shape: tuple, k: tuple):
    """The entry of ``a`` that numpy broadcasting put at ``k`` of an array of ``shape``, or None."""
    if a.ndim > len(shape) or any(n not in (1, m) for n, m in zip(a.shape[::-1], shape[::-1], strict=False)):
        return None
    k = k[len(k) - a.ndim:] if a.ndim else ()
    return a[tuple(0 if n == 1 else i for i, n in zip(k, a.shape, strict=True))]


def _input_names(parents) -> list:
    """The inputs' names where they have one, else a, b, c, ..."""
    return [p.name or "abcdefgh"[i % 8] for i, p in enumerate(parents)]


def _what_inputs_held(label: str, parents, shape: tuple, k: tuple) -> str:
    """'log got 0.0 at (0, 3)' (elementwise), else the range each input held."""
    names, held = _input_names(parents), []
    for name, p in zip(names, parents, strict=True):
        value = _at(np.asarray(p.data), shape, k)
        if value is not None:
            held.append(_num(value) if len(parents) == 1 else f"{name}={_num(value)}")
        else:
            data = np.asarray(p.data)
            span = f"[{_num(data.min())}, {_num(data.max())}]" if data.size else "nothing"
            held.append(f"{name} {tuple(p.shape)} in {span}")
    return f"{label} got {', '.join(held)} at {k}"


def _holds_non_finite(value) -> bool:
    """A hyper-parameter that is, or holds, NaN or inf (a pad value, a clip bound)."""
    if isinstance(value, (tuple, list)):
        return any(_holds_non_finite(v) for v in value)
    if isinstance(value, (float, np.floating, np.ndarray)) and np.asarray(value).dtype.kind == "f":
        return not _is_finite(value)
    return False


def check_forward(data: np.ndarray, parents: tuple, facts, op: str, op_args: dict, where: str) -> None:
    """Raise AnomalyError if ``data`` (op's output) holds NaN/inf while every input is finite and the op was given no
    non-finite constant of its own (``pad2d(value=-inf)``). facts: the op's OpFacts (``ops/facts.GENERIC`` for a
    user's op), for its label."""
    if _is_finite(data) or any(_holds_non_finite(v) for v in op_args.values()):
        return
    non_finite = [p for p in parents if not _is_finite(p.data)]
    sources = [_constant_source(p) for p in non_finite]
    if any(s is None for s in sources) or (sources and _moves_only(facts)):
        return  # non-finite inputs that no op's own constant made (checked where made), or only moved here
    label = facts.label(op_args) if facts.name == op else op_label(op, op_args)
    count, first = _bad_entries(data)
    names = [p.name for p in parents if p.name]
    output = f"{op}({', '.join(names)})" if names else f"the output of {op}"
    if sources:
        source = sources[0]
        constant = ", ".join(f"{k}={_num(np.asarray(v).ravel()[0]) if np.ndim(v) else _num(v)}"
                             for k, v in source.op_args.items() if _holds_non_finite(v))
        raise AnomalyError(
            f"{label} spread the non-finite values of {source.op} (its own constant {constant}, meant for an op "
            f"that drops them, as a max-pool does) into its output, at {where}: {output}, shape "
            f"{tuple(data.shape)}, has {count} of {data.size} entries NaN or inf, the first {_num(data[first])} at "
            f"{first}"
        )
    raise AnomalyError(
        f"{label} made non-finite values from finite inputs, at {where}: {output}, shape {tuple(data.shape)}, "
        f"has {count} of {data.size} entries NaN or inf, the first {_num(data[first])} at {first}; "
        f"{_what_inputs_held(op, parents, data.shape, first)}"
    )


def _moves_only(facts) -> bool:
    """The op only moves (or picks) values, changing none: the ops declared so (reshape, transpose) and indexing."""
    return facts.moves_values or facts.name == "getitem"


def _constant_source(t):
    """The op whose own non-finite constant made t's non-finite entries (``pad2d(value=-inf)``), followed back
    through ops that only move values; None when t's came from elsewhere (a leaf, an op's arithmetic)."""
    while t.facts is not None and _moves_only(t.facts) and len(t.parents) == 1:
        t = t.parents[0]
    return t if any(_holds_non_finite(v) for v in t.op_args.values()) else None


def check_backward(t, g: np.ndarray, grads: tuple) -> None:
    """Raise AnomalyError if t's backward closure returned a non-finite gradient from a finite ``g``."""
    if not _is_finite(g):
        return
    for i, (parent, pg) in enumerate(zip(t.parents, grads, strict=True)):
        if pg is None or not parent.requires_grad:
            continue
        pg = grad_like(pg, parent.data)
        if _is_finite(pg):
            continue
        count, first = _bad_entries(pg)
        who = f" ({parent.name!r})" if parent.name else ""
        where = getattr(t, "_where", None) or "a line not recorded (the op was made outside detect_anomaly())"
        raise AnomalyError(
            f"backward of {t.op_label} returned a non-finite gradient for its input {i}{who}, "
            f"shape {tuple(parent.shape)}, from a finite gradient at its output: {count} of {pg.size} entries "
            f"NaN or inf, the first {_num(pg[first])} at {first}, where the input held {_num(parent.data[first])}; "
            f"the op was created at {where}"
        )
