"""What check returns: ``Report`` (``ok``, ``name``, ``cases``, ``findings``, ``first_wrong``, ``str()``,
``plot()``), ``Finding`` (``tag``, ``severity``, ``message``, ``case``), ``CaseResult`` and ``WrongEntry``.

Imports the standard library only (``plot()`` loads the check package's plot module, and matplotlib, when called).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(eq=False)
class CaseResult:
    """One case that was run: ``label``, ``hparameters`` (stride, pad, f, mode and the input shapes),
    ``passed``, ``problems`` (short words: "raised ValueError", "dA_prev wrong", ...). ``args`` are the arguments
    the function was given (copies); ``outcome`` what it gave; ``expected`` the accepted outputs."""

    label: str
    hparameters: dict
    passed: bool
    problems: list = field(default_factory=list)
    args: tuple = field(default=(), repr=False)
    outcome: object = field(default=None, repr=False)
    expected: tuple = field(default=(), repr=False)

    def __str__(self) -> str:
        """The label and the hyper-parameters (the pool's mode is the label's last word)."""
        shown = ", ".join(f"{k}={v}" for k, v in self.hparameters.items() if k != "mode")
        return f"{self.label} ({shown})"


@dataclass(eq=False)
class Finding:
    """``tag`` (one of the catalogue's: "crash", "shape", "stride_ignored", ... "wrong"), ``severity``
    ("error" or "warning"), ``message`` in plain words, ``case`` (the CaseResult it was first seen in, or None)."""

    tag: str
    severity: str
    message: str
    case: CaseResult | None = None

    def __str__(self) -> str:
        seen = f" (case: {self.case.label})" if self.case is not None else ""
        return f"{self.severity} [{self.tag}] {self.message}{seen}"


def _idx(index) -> str:
    return ",".join(str(i) for i in index)


def number(value) -> str:
    return f"{float(value):.6g}"


@dataclass(eq=False)
class WrongEntry:
    """The first wrong entry: ``output`` (the notebook's name: Z, A, X_pad, dA_prev, dW, db, mask, a), ``index``
    (a tuple), ``got``, ``expected``, ``args`` (the exact arguments, copies: ``fn(*args)`` reproduces it),
    ``case`` (its CaseResult), ``diagnosis`` (one sentence) and ``table`` (lines: the expected value's terms
    beside yours, for a backward)."""

    output: str
    index: tuple
    got: float
    expected: float
    args: tuple = field(repr=False)
    case: CaseResult = field(repr=False)
    diagnosis: str = ""
    table: list = field(default_factory=list, repr=False)

    @property
    def where(self) -> str:
        return f"{self.output}[{_idx(self.index)}]" if self.index else self.output

    def __str__(self) -> str:
        lines = [f"first wrong entry: {self.where} = {number(self.got)}, expected {number(self.expected)}",
                 f"  case: {self.case}"]
        if self.diagnosis:
            lines.append(_wrap("  ", self.diagnosis, indent=4))
        lines += [f"  {line}" for line in self.table]
        lines.append("  reproduce it: fn(*report.first_wrong.args)")
        return "\n".join(lines)


@dataclass(eq=False)
class Report:
    """The check of one notebook function. ``ok``: no finding of severity "error". ``str(report)``: the verdict,
    the cases, the findings, the first wrong entry explained. ``plot()``: for conv_backward and pool_backward,
    the input plane with the wrong entries of dA_prev marked and the windows over the first one."""

    name: str
    cases: list
    findings: list
    first_wrong: WrongEntry | None = None
    notes: list = field(default_factory=list)
    wrong_entries: dict = field(default_factory=dict, repr=False)  # output -> its first WrongEntry

    @property
    def ok(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    @property
    def tags(self) -> set:
        """The tags of the findings, e.g. {"crash", "unpad"}."""
        return {f.tag for f in self.findings}

    def __repr__(self) -> str:
        failed = sum(not c.passed for c in self.cases)
        return (f"<Report {self.name}: {'ok' if self.ok else 'FAILED'}, {failed} of {len(self.cases)} cases failed, "
                f"tags {sorted(self.tags)}>")

    def verdict(self) -> str:
        """One line: the function, ok or FAILED, how many cases failed, the tags of the errors, the warnings."""
        failed = sum(not c.passed for c in self.cases)
        errors = sorted({f.tag for f in self.findings if f.severity == "error"})
        warnings = sorted({f.tag for f in self.findings if f.severity == "warning"})
        warned = f"; warning: {', '.join(warnings)}" if warnings else ""
        if self.ok:
            return f"{self.name}: ok, {len(self.cases)} of {len(self.cases)} cases passed{warned}"
        return f"{self.name}: FAILED, {failed} of {len(self.cases)} cases failed: {', '.join(errors)}{warned}"

    def __str__(self) -> str:
        lines = [self.verdict(), "  cases:"]
        for c in self.cases:
            state = "ok  " if c.passed else "FAIL"
            problems = f"  <- {'; '.join(c.problems)}" if c.problems else ""
            lines.append(f"    {state} {c}{problems}")
        if self.findings:
            lines.append("  findings:")
            lines += [_wrap("    ", str(f)) for f in self.findings]
        for note in self.notes:
            lines.append(f"  note: {note}")
        if self.first_wrong is not None:
            lines += [f"  {line}" for line in str(self.first_wrong).splitlines()]
        return "\n".join(lines)

    def plot(self, path=None):
        """conv_backward and pool_backward: draw the input plane (image i, channel c) of the first wrong entry of
        dA_prev, that entry in red, every wrong entry of the plane crossed, the windows that cover the first one
        dashed; beside it, yours - expected on that plane. Returns the matplotlib figure; saves a png at ``path``.
        Raises ValueError when there is no wrong entry of dA_prev to draw."""
        from .plot import plot_report
        return plot_report(self, path)


def _wrap(head: str, text: str, width: int = 116, indent: int = 8) -> str:
    """head + text wrapped at ``width``, continuation lines indented by ``indent``."""
    indent, lines, line = " " * indent, [], head
    for word in text.split(" "):
        if len(line) + len(word) + 1 > width and line.strip():
            lines.append(line.rstrip())
            line = indent
        line += word + " "
    lines.append(line.rstrip())
    return "\n".join(lines)
