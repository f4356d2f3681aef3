"""One function checked: run it on every case of its name, then turn what came out into findings.

In order: crashes (the exception, the case, the learner's line, a hint for known ones); results that are not the
notebook's return value; output shapes (with the formula) and dtypes; arguments changed in place; the known
mistakes that reproduce the learner's outputs exactly (check.mistakes: every output a mistake changes equals the
learner's on every case, or is right on every case when the learner made the mistake in some outputs only; a crash
counting as equal to a crash of the same exception type and message, numbers and shapes aside); then, for each wrong
output no mistake explains, a ``wrong`` finding with the diagnosis of its first wrong entry; last the ``mask_ties``
warning. Imports inspect, io, re, tokenize, numpy and the check package's cases, mistakes, run, diagnose and report.
"""

from __future__ import annotations

import inspect
import io
import os
import re
import tokenize

import numpy as np

from . import cases, mistakes, run
from .diagnose import diagnose
from .report import CaseResult, Finding, Report, WrongEntry, number

FLOAT_HINT = ("float() of an array with more than one dimension (b has shape (1, 1, 1)) raises TypeError from "
              "numpy 2.4 (a DeprecationWarning since 1.25): write b.item() (or np.sum(b))")


# ----------------------------------------------------------------------------- the learner's lines
def _source(fn):
    """(lines, first line number, file) of fn's source, or None when it cannot be read."""
    try:
        lines, start = inspect.getsourcelines(fn)
        return lines, start, inspect.getsourcefile(fn) or "?"
    except (OSError, TypeError):
        return None


def _file(path: str) -> str:
    return path if path.startswith("<") else os.path.basename(path)


def called_helpers(fn) -> list:
    """The notebook functions fn calls by name from its module (its globals), e.g. pool_backward's
    create_mask_from_window."""
    code, names = getattr(fn, "__code__", None), getattr(fn, "__globals__", {})
    used = () if code is None else code.co_names
    return [names[n] for n in used if n in cases.NAMES and callable(names.get(n))]


def find_line(fn, pattern: str | None) -> str:
    """ " In your code, <file> line N in <function>: `code`." for the first line of fn (or of a notebook function
    it calls) that matches pattern; "" when none does."""
    if pattern is None:
        return ""
    for f in [fn, *called_helpers(fn)]:
        found = _source(f)
        if found is None:
            continue
        lines, start, path = found
        for n, line in enumerate(lines):
            if re.search(pattern, _code(line)):
                return f" In your code, {_file(path)} line {start + n} in {f.__name__}: `{line.strip()}`."
    return ""


def _code(line: str) -> str:
    """A source line without its comment (a '#' inside a string stays): what a mistake's pattern is matched against."""
    try:
        for token in tokenize.generate_tokens(io.StringIO(line).readline):
            if token.type == tokenize.COMMENT:
                return line[:token.start[1]]
    except (tokenize.TokenError, SyntaxError):  # a bracket or string left open at the line's end: no comment seen
        pass
    return line.rstrip("\n")


# ----------------------------------------------------------------------------- comparing
def correct(outcome: run.Outcome, alternatives: tuple, o: int) -> bool:
    return outcome.outputs is not None and any(run.same(outcome.outputs[o], alt[o]) for alt in alternatives)


def _closest(got: np.ndarray, alternatives: tuple, o: int) -> np.ndarray:
    """The accepted output (tie policy) that differs from got in the fewest entries."""
    def off(alt):
        with np.errstate(invalid="ignore"):
            return int(np.sum(~(np.abs(got - alt[o]) <= run.tolerance(alt[o]))))
    return min(alternatives, key=off)[o]


class Check:
    """The runs of one function on its cases, and the findings drawn from them."""

    def __init__(self, fn, name: str):
        self.fn, self.name, self.spec = fn, name, cases.SPECS[name]
        self.case_list = self.spec.cases()
        self.expected = [cases.expected(name, n) for n in range(len(self.case_list))]
        runs = [run.run_case(fn, self.spec, c) for c in self.case_list]
        self.outcomes = [r[0] for r in runs]
        self.results = [CaseResult(c.label, dict(c.hparameters), True, [], given, outcome, exp)
                        for c, (outcome, given, _), exp in zip(self.case_list, runs, self.expected, strict=True)]
        self.changed = [r[2] for r in runs]
        self.findings, self.wrong_entries, self.named = [], {}, {}  # named: output -> the tag that explains it

    def fail(self, n: int, problem: str) -> None:
        result = self.results[n]
        result.passed = False
        if problem not in result.problems:
            result.problems.append(problem)

    def add(self, tag: str, message: str, n: int | None, severity: str = "error") -> None:
        if not any(f.tag == tag and f.message == message for f in self.findings):
            self.findings.append(Finding(tag, severity, message, None if n is None else self.results[n]))

    def count(self, n: int) -> str:
        return "every case" if n == len(self.case_list) else f"{n} of {len(self.case_list)} cases"

    # ------------------------------------------------------------------------- findings
    def crashes(self) -> None:
        seen = {}
        for n, outcome in enumerate(self.outcomes):
            if outcome.crashed:
                self.fail(n, f"raised {type(outcome.error).__name__}")
                seen.setdefault((type(outcome.error).__name__, outcome.where), []).append(n)
        for (kind, where), ns in seen.items():
            error = self.outcomes[ns[0]].error
            line = f" at {_file(where[0])} line {where[1]} in {where[2]}: `{where[3]}`" if where else ""
            caller = self.outcomes[ns[0]].called_from
            line += f" (called from line {caller[1]} in {caller[2]}: `{caller[3]}`)" if caller else ""
            hint = f". {FLOAT_HINT}" if kind == "TypeError" and where and "float(" in where[3] else ""
            self.add("crash", f"{self.name} raised {kind}: {error}{line}, on {self.count(len(ns))}{hint}.", ns[0])

    def structure(self) -> None:
        for n, outcome in enumerate(self.outcomes):
            if outcome.structure is not None:
                self.fail(n, "not the notebook's return value")
                self.add("shape", f"{self.name} {outcome.structure}; the notebook's returns {self.spec.returns}.", n)

    def shapes_and_dtypes(self) -> None:
        """One shape finding per output (its first case, how many), one dtype finding per output."""
        shapes, dtypes = {}, {}
        for n, (case, outcome) in enumerate(zip(self.case_list, self.outcomes, strict=True)):
            if outcome.outputs is None:
                continue
            expected_shapes = self.spec.shapes(case)
            for o, ((shape, formula), got, raw) in enumerate(zip(expected_shapes, outcome.outputs,
                                                                 outcome.raw, strict=True)):
                output = self.spec.outputs[o]
                if got.shape != tuple(shape):
                    self.fail(n, f"{output} shape")
                    formula += self.swapped_hint(got.shape, expected_shapes)
                    shapes.setdefault(output, []).append((n, got.shape, tuple(shape), formula))
                dtype = np.asarray(raw).dtype
                if not (dtype.kind in "biuf" if self.spec.mask else dtype == np.float64):
                    self.fail(n, f"{output} dtype")
                    dtypes.setdefault(output, (n, dtype))
        for output, found in shapes.items():
            n, got, shape, formula = found[0]
            self.add("shape", f"{output} has the wrong shape on {self.count(len(found))}: {got} where {shape} is "
                     f"expected, {formula}.", n)
        for output, (n, dtype) in dtypes.items():
            self.add("dtype", f"{output} has dtype {dtype}; the inputs are float64 and so must {output} be "
                     "(np.zeros(shape) is float64; no dtype= or astype).", n)

    def swapped_hint(self, got: tuple, expected_shapes: list) -> str:
        """When an output has the shape another output should have, ask about the notebook's order."""
        others = [self.spec.outputs[k] for k, (shape, _) in enumerate(expected_shapes) if tuple(shape) == got]
        if not others:
            return ""
        order = ", ".join(self.spec.outputs)
        return f"; yours has the shape of {others[0]} (the notebook returns {order} in that order)"

    def mutations(self) -> None:
        for n, changed in enumerate(self.changed):
            if changed:
                self.fail(n, "changed its arguments")
                self.add("mutates_input", f"{self.name} changed its arguments in place: {', '.join(changed)}. The "
                         "caller's arrays must stay as they were: write into new arrays (np.zeros, .copy()).", n)

    def wrong_outputs(self) -> set:
        wrong = set()
        for n, outcome in enumerate(self.outcomes):
            for o, output in enumerate(self.spec.outputs):
                if outcome.outputs is not None and not correct(outcome, self.expected[n], o):
                    self.fail(n, f"{output} wrong")
                    wrong.add(o)
                elif outcome.outputs is None:
                    wrong.add(o)
        return wrong

    def mistakes(self) -> set:
        """Name every catalogued mistake that reproduces the learner's outputs; the outputs they explain. Each output
        the mistake changes must equal the mistake's on every case, or be right on every case (the mistake made in
        the code of some outputs only, e.g. dW's windows at h, w and dA_prev's right); one output at least equal."""
        explained = set()
        for mistake in mistakes.CATALOGUE.get(self.name, ()):
            outcomes = [run.mistake_outcomes(self.name, mistake.key, n) for n in range(len(self.case_list))]
            changes = {o for o in range(len(self.spec.outputs)) for n, alts in enumerate(outcomes)
                       if not correct(alts[0], self.expected[n], o)}
            agree = {o for o in changes if all(any(run.same_outcome(self.outcomes[n], alt, o) for alt in alts)
                                               for n, alts in enumerate(outcomes))}
            right = {o for o in changes - agree if all(correct(out, exp, o) for out, exp in
                                                       zip(self.outcomes, self.expected, strict=True))}
            if not agree or agree | right != changes:
                continue
            first = next(n for n, alts in enumerate(outcomes) if any(not correct(alts[0], self.expected[n], o)
                                                                     for o in agree))
            self.add(mistake.tag, mistake.message + self._only(agree, right) + find_line(self.fn, mistake.pattern),
                     first)
            explained |= agree
            for o in agree:
                self.named.setdefault(self.spec.outputs[o], mistake.tag)
        return explained

    def _only(self, agree: set, right: set) -> str:
        """" Here only dW has it (your dA_prev is right)." when the mistake is in some outputs only; else ""."""
        if not right:
            return ""
        def names(found):
            return " and ".join(self.spec.outputs[o] for o in sorted(found))
        return (f" Here only {names(agree)} {'has' if len(agree) == 1 else 'have'} it (your {names(right)} "
                f"{'is' if len(right) == 1 else 'are'} right).")

    def entries(self) -> None:
        """The first wrong entry of each output (same shape, wrong value), in case order."""
        for n, outcome in enumerate(self.outcomes):
            for o, output in enumerate(self.spec.outputs):
                if output in self.wrong_entries or outcome.outputs is None:
                    continue
                got = outcome.outputs[o]
                if got.shape != self.expected[n][0][o].shape or correct(outcome, self.expected[n], o):
                    continue
                expected = _closest(got, self.expected[n], o)
                index = run.first_difference(got, expected)
                summary, table = diagnose(self.name, output, self.results[n].args, index, got, expected)
                self.wrong_entries[output] = WrongEntry(output, index, float(got[index]), float(expected[index]),
                                                        self.results[n].args, self.results[n], summary, table)

    def unexplained(self, wrong: set, explained: set) -> None:
        for o in sorted(wrong - explained):
            entry = self.wrong_entries.get(self.spec.outputs[o])
            if entry is None:
                continue  # only crashes or wrong shapes: their findings say it
            n = self.results.index(entry.case)
            count = sum(out.outputs is not None and not correct(out, exp, o)  # crashes are counted as crashes
                        for out, exp in zip(self.outcomes, self.expected, strict=True))
            tag = "mask" if self.spec.mask else "wrong"
            self.add(tag, f"{entry.output} is wrong on {self.count(count)} and matches no known mistake: "
                     f"{entry.diagnosis}", n)

    def ties(self) -> None:
        """mask_ties: on a case with ties, the learner's outputs are the notebook's "all" policy."""
        for n, (case, outcome) in enumerate(zip(self.case_list, self.outcomes, strict=True)):
            alternatives = self.expected[n]
            if not case.ties or outcome.outputs is None or len(alternatives) < 2:
                continue
            o = len(self.spec.outputs) - 1
            if run.same(outcome.outputs[o], alternatives[0][o]) and not run.same(alternatives[0][o],
                                                                                  alternatives[1][o]):
                self.add("mask_ties", "in a window with several maxima every maximum is marked, so that window's "
                         "gradient is counted once per maximum (PyTorch sends it to the first maximum only). The "
                         "course's mask x == np.max(x) does this and its tests accept it; to match PyTorch mark one: "
                         "mask = np.zeros(x.shape); mask[np.unravel_index(np.argmax(x), x.shape)] = 1.", n,
                         severity="warning")

    def report(self) -> Report:
        self.crashes()
        self.structure()
        self.shapes_and_dtypes()
        self.mutations()
        wrong = self.wrong_outputs()
        self.entries()
        explained = self.mistakes() if wrong else set()
        self.unexplained(wrong, explained)
        self.ties()
        first = next((self.wrong_entries[o] for n in range(len(self.results)) for o in self.spec.outputs
                      if o in self.wrong_entries and self.wrong_entries[o].case is self.results[n]), None)
        for output, tag in self.named.items():
            entry = self.wrong_entries.get(output)
            if entry is not None:
                entry.diagnosis += (f" The mistake {tag} explains it: the library's reference with that mistake "
                                    f"injected gives this {number(entry.got)} too.")
        return Report(self.name, self.results, self.findings, first, [], self.wrong_entries)


def check_function(fn, name: str) -> Report:
    """The Report of fn checked as the notebook's function ``name``."""
    return Check(fn, name).report()

