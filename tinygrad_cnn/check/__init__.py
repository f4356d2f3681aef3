"""Check a learner's own notebook functions ("Convolutional Neural Networks: Step by Step") against the library,
and name the bug.

    from tinygrad_cnn import check
    report = check(pool_backward)      # the name from fn.__name__, or check(fn, name="pool_backward")
    print(report)                      # the verdict, the cases, the findings, the first wrong entry explained
    report.ok, report.findings, report.first_wrong, report.plot()
    reports = check(globals())         # {name: report} for every notebook function found in a mapping

    python -m tinygrad_cnn.check my_notebook.ipynb      # or a .py; runs the file's code

This package is itself callable (``check(...)`` calls ``check.check``), so ``from tinygrad_cnn import check``,
``import tinygrad_cnn.check`` and ``python -m tinygrad_cnn.check`` all name one thing.
Modules: cases (what runs, the expected values from tinygrad_cnn.reference), mistakes (the reference with each
known mistake injected, and their catalogue), run (calling and comparing), analyse (the findings), terms and
diagnose (a wrong entry explained, with explain), report (Report, Finding, CaseResult, WrongEntry), plot
(report.plot(), matplotlib, lazily), source (running a .py or .ipynb), __main__ (the command line).
Imports the check package's modules only.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Mapping

from .analyse import check_function
from .cases import NAMES
from .report import CaseResult, Finding, Report, WrongEntry

__all__ = ["check", "check_all", "NAMES", "Report", "Finding", "CaseResult", "WrongEntry"]


def check(target, name: str | None = None):
    """Run a notebook function of the learner's against the library.

    target: a function -> its Report; ``name`` (one of NAMES) says which notebook function it is, default its
    ``__name__``. A mapping (``globals()``) -> {name: Report} for every notebook function found in it; other names
    are ignored. The function runs in this process on copies of the inputs; the checker builds every cache itself.
    """
    if isinstance(target, Mapping):
        if name is not None:
            raise TypeError("check: name= goes with a function; a mapping is checked by the names it holds")
        return check_all(target)
    if not callable(target):
        raise TypeError(f"check: expected a function or a mapping such as globals(), got {type(target).__name__}")
    name = getattr(target, "__name__", None) if name is None else name
    if name not in NAMES:
        raise ValueError(f"check: {name!r} is not one of the notebook's functions {', '.join(NAMES)}; "
                         "pass name=... to say which it is")
    return check_function(target, name)


def check_all(mapping: Mapping) -> dict:
    """{name: Report} for every notebook function (NAMES) that ``mapping`` holds as a callable, in the notebook's
    order. A failing report notes the learner's helpers it calls that fail their own check."""
    reports = {n: check_function(mapping[n], n) for n in NAMES if callable(mapping.get(n))}
    for name, report in reports.items():
        code = getattr(mapping[name], "__code__", None)
        called = [] if code is None else [n for n in code.co_names if n in reports and n != name]
        for helper in called:
            if not report.ok and not reports[helper].ok:
                report.notes.append(f"{name} calls your {helper}, which fails its own check: fix it first.")
    return reports


class _CallableModule(types.ModuleType):
    """The package's type: calling it calls check()."""

    def __call__(self, target, name: str | None = None):
        return check(target, name)


sys.modules[__name__].__class__ = _CallableModule
