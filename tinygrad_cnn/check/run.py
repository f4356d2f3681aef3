"""Running a function on a case and comparing what came out: ``Outcome`` (the outputs, or the exception and the
line of the learner's code that raised), ``same`` (1e-10 relative), ``first_difference``, ``changed_inputs``.

The learner's function runs in this process (it is their code), on copies of the case's arguments, with its
prints captured. Imports numpy and the check package's cases and mistakes.
"""

from __future__ import annotations

import contextlib
import io
import linecache
import os
import re
import sysconfig
import traceback
from dataclasses import dataclass
from functools import cache

import numpy as np

from . import cases, mistakes

RTOL = 1e-10  # relative to the largest entry of the expected array


@dataclass(eq=False)
class Outcome:
    """What one call gave: ``outputs`` (float64 arrays, one per output name) and ``raw`` (as returned), or
    ``error`` (the exception) with ``where`` (file, line, function, code: the innermost line of the learner's
    code) and ``called_from`` (the line of the function checked that led there, when ``where`` is in another
    function, e.g. a helper it calls; else None), or ``structure`` (what came back when it was not the notebook's
    return value)."""

    outputs: tuple | None = None
    raw: tuple | None = None
    error: BaseException | None = None
    where: tuple | None = None
    structure: str | None = None
    called_from: tuple | None = None

    @property
    def crashed(self) -> bool:
        return self.error is not None


def _library_dirs() -> tuple:
    """Folders whose frames are not the learner's: this package, numpy, the standard library, site-packages."""
    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    paths = sysconfig.get_paths()
    dirs = {package, os.path.dirname(np.__file__), paths["stdlib"], paths["purelib"], paths["platlib"]}
    return tuple(os.path.join(d, "") for d in dirs)


LIBRARY = _library_dirs()


def learner_lines(error: BaseException) -> list:
    """[(file, line number, function, code)] of the frames of the traceback outside the library, numpy and
    Python's own modules, outermost first."""
    found = []
    for frame in traceback.extract_tb(error.__traceback__):
        filename = frame.filename
        if filename.startswith(LIBRARY) or filename.startswith("<frozen"):
            continue
        code = (frame.line or linecache.getline(filename, frame.lineno)).strip()
        found.append((filename, frame.lineno, frame.name, code))
    return found


def _as_array(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def call(fn, spec: cases.Spec, args: tuple) -> Outcome:
    """fn(*args) (the learner's function; its prints are captured) -> its Outcome."""
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            result = fn(*args)
    except (Exception, SystemExit) as error:  # the learner's code: any exception is a finding, sys.exit() too
        lines = learner_lines(error)  # (KeyboardInterrupt stops the check)
        return Outcome(error=error, where=lines[-1] if lines else None,
                       called_from=lines[0] if len(lines) > 1 and lines[0][2] != lines[-1][2] else None)
    if result is None:
        return Outcome(structure="returned None (is the return statement missing?)")
    try:
        raw = spec.unpack(result)
        return Outcome(tuple(_as_array(r) for r in raw), raw)
    except (TypeError, ValueError) as error:
        return Outcome(structure=f"{error}" if str(error).startswith("returned") else f"returned {result!r:.60}")


@cache
def mistake_outcomes(name: str, key: str | None, n: int) -> tuple:
    """The Outcomes of case n of ``name`` with ``mistake`` injected: one per tie policy where the case has ties."""
    spec, case = cases.SPECS[name], cases.SPECS[name].cases()[n]
    policies = cases.TIES[:2] if case.ties and name in mistakes.TAKE_TIES else cases.TIES[:1]
    return tuple(call(lambda *a, t=t: mistakes.run(name, a, key, t), spec, case.fresh_args()) for t in policies)


def tolerance(expected: np.ndarray) -> float:
    return RTOL * max(1.0, float(np.max(np.abs(expected)))) if expected.size else 0.0


def same(got: np.ndarray, expected: np.ndarray) -> bool:
    """Same shape and every entry within 1e-10 of the expected array's largest entry (NaN equals nothing)."""
    if got.shape != expected.shape:
        return False
    with np.errstate(invalid="ignore"):
        return bool(np.all(np.abs(got - expected) <= tolerance(expected)))


def _gist(error: BaseException) -> str:
    """An exception's message without its shapes and numbers: what stays the same when the same mistake raises on
    other sizes ("could not broadcast input array from shape (#) into shape (#)")."""
    return re.sub(r"-?\d+(\.\d+)?", "#", re.sub(r"\([\d,\s]*\)", "(#)", str(error)))


def same_outcome(a: Outcome, b: Outcome, output: int) -> bool:
    """Output ``output`` of a and b agree: both raised the same exception type with the same message (numbers and
    shapes aside), or both returned equal arrays."""
    if a.crashed or b.crashed:
        return a.crashed and b.crashed and type(a.error) is type(b.error) and _gist(a.error) == _gist(b.error)
    if a.outputs is None or b.outputs is None:
        return a.outputs is None and b.outputs is None
    return same(a.outputs[output], b.outputs[output])


def first_difference(got: np.ndarray, expected: np.ndarray) -> tuple:
    """The index (C order) of the first entry of ``got`` off ``expected`` (arrays of one shape)."""
    with np.errstate(invalid="ignore"):
        off = ~(np.abs(got - expected) <= tolerance(expected))
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(off)), got.shape))


def changed_inputs(before, after) -> list:
    """The paths ("A_prev", "cache[0]", 'hparameters["pad"]' style, positions) where ``after`` differs."""
    if isinstance(before, np.ndarray):
        same_value = (isinstance(after, np.ndarray) and before.shape == after.shape
                      and np.array_equal(before, after, equal_nan=True))
        return [] if same_value else [""]
    if isinstance(before, (tuple, list)):
        if not isinstance(after, (tuple, list)) or len(before) != len(after):
            return [""]
        return [f"[{n}]{p}" for n, (b, a) in enumerate(zip(before, after, strict=True)) for p in changed_inputs(b, a)]
    if isinstance(before, dict):
        if not isinstance(after, dict) or set(before) != set(after):
            return [""]
        return [f"[{k!r}]{p}" for k in before for p in changed_inputs(before[k], after[k])]
    return [] if before == after else [""]


def run_case(fn, spec: cases.Spec, case: cases.Case):
    """fn on a copy of the case's arguments -> (Outcome, the arguments as given (copies), the paths of the
    arguments it changed in place)."""
    given, args = case.fresh_args(), case.fresh_args()
    outcome = call(fn, spec, args)
    changed = [f"{spec.params[n]}{p}" for n, (b, a) in enumerate(zip(given, args, strict=True))
               for p in changed_inputs(b, a)]
    return outcome, given, changed
