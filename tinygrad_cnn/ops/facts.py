"""What the readers of a graph need to know about each op, declared once, where the op is defined.

Every op of the library is declared by ``declare`` right above its method (``ADD = declare("add", ...)`` in
``ElementwiseOps``) and records itself with it: ``self.from_op(out, parents, self.ADD, _backward)``. The result
keeps the facts object (``t.facts``), so ``explain``, the drawing and ``interop`` ask the op itself, never a
table of op-name strings. An op written with ``Tensor.from_op(..., "swish", ..., rule=...)`` has no declared
facts (``t.facts is None``) and is read as a generic op: ``facts_of(t)`` answers for both.

The rules are written in one notation, the one ``draw(show_rule=True)`` explains in its legend (``RULE_SYMBOLS``):
``g`` is the gradient at the op's output, ``out`` its value, each input has the name the op declares for it
(``a``, ``b`` for arithmetic; the notebook's ``A_prev``, ``W``, ``b`` for a conv), and ``d<name>`` is the
gradient the input receives; besides + - * /, a rule may write @, .T, ^ and += (``RULE_OPERATORS``), and the
op's own arguments by name (``ties``, ``axis``), whose values the legend gives. Hyper-parameters are recorded in
canonical form (pairs as tuples, pads as ``((top, bottom), (left, right))``); only ``label`` compacts them for
display.

numpy only; imports nothing of the package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

# name -> OpFacts of every op the library declares (filled as the op modules are imported)
REGISTRY: dict[str, OpFacts] = {}

# The symbols the rules use besides the inputs' names (and d<input name>): what the drawn legend explains.
RULE_SYMBOLS = {
    "g": "the gradient at the op's output (the notebook's dZ for a conv, dA for a pool)",
    "out": "the op's output value",
    "A_slice": "the window of the padded input that one output entry saw (the notebook's a_slice_prev)",
    "g_slice": "the window of g that one input entry scattered onto",
    "x_hat": "the normalized input (x - mean) / std; mean(...) and sum(...) run over the batch and positions, "
             "one per channel",
    "std": "sqrt(var + eps) of the batch (training) or of the running statistics (eval)",
    "mask": "dropout's saved mask: 0 for a dropped entry, 1/(1-p) for a kept one",
    "N": "the number of rows (samples) of the batch",
    "n": "how many entries were averaged",
    "targets": "the target probabilities (one-hot rows for class labels)",
    "f_h": "the window's rows", "f_w": "the window's columns",
}

# The operators the rules write besides + - * /, and what the legend says of each one a drawn rule uses.
RULE_OPERATORS = {"@": "@ the matrix product", ".T": ".T the transpose", "^": "^ a power",
                  "+=": "+= adds up each window's share"}


@dataclass(frozen=True, eq=False)  # compared by identity: one object per op
class OpFacts:
    """The facts of one op.

    name: what ``t.op`` holds. rule: one line saying what the backward computes (the notation above).
    inputs: the inputs' names in the rule and in ``explain``'s formulas (an op taking any number of inputs, as
    ``concatenate``, lists the first and the generic name is used for the others).
    entrywise: ``out[k]`` depends only on the entry at ``k`` of each input of the output's shape (others
    broadcast): a flatten's row order survives it (``interop``).
    equivariant: permuting a 2-D input's entries along either axis permutes the output's the same way (softmax
    along its axis, entrywise along the other): a flatten's row order survives it (``interop``).
    moves_values: it only moves values, changing none (reshape, flatten, transpose): a summarised drawing shows
    it as an edge label; ``interop`` follows a flatten's rows back through it. keeps_order: it also keeps the
    row-major order (reshape, flatten).
    formula: the name of ``explain``'s own formula for it (``"conv2d"``, ``"pool"``, ``"matmul"``), or None for
    the generic search. windows: ``explain(...).plot()`` can draw its windows.
    label_defaults: hyper-parameters left out of the label while they hold these values.
    filter_channels: when input 1 is a filter bank (f_h, f_w, ., .), what its axes 2 and 3 are (conv2d's W:
    ("input channel", "output channel"); conv_transpose2d's the other way round): the explorer's heat maps show it
    as (f_h, f_w) maps. None when input 1 is not a filter bank.
    """

    name: str
    rule: str
    inputs: tuple = ("a",)
    entrywise: bool = False
    equivariant: bool = False
    moves_values: bool = False
    keeps_order: bool = False
    formula: str | None = None
    windows: bool = False
    label_defaults: dict = field(default_factory=dict)
    filter_channels: tuple | None = None

    def label(self, op_args: dict) -> str:
        """``conv2d stride=2 pad=1``: the name and the hyper-parameters that differ from their defaults, compact."""
        return op_label(self.name, op_args, self.label_defaults)

    def input_name(self, i: int) -> str:
        """The name of input i in rules and formulas (``a``, ``b``, ... past the declared ones)."""
        return self.inputs[i] if i < len(self.inputs) else f"in{i}"

    def __repr__(self) -> str:
        return f"<OpFacts {self.name}>"


def declare(name: str, rule: str, **facts) -> OpFacts:
    """The facts of a library op, registered under its name (each name once)."""
    if name in REGISTRY:
        raise ValueError(f"declare: an op named {name!r} is declared twice")
    REGISTRY[name] = OpFacts(name, rule, **facts)
    return REGISTRY[name]


# a user's op (made with from_op and a name string): nothing declared, every reader takes the generic path
GENERIC = OpFacts("?", "", inputs=())


def facts_of(t) -> OpFacts:
    """The declared facts of the op that made ``t``; GENERIC for a user's op (and for a leaf)."""
    return getattr(t, "facts", None) or GENERIC


def compact(value):
    """A hyper-parameter as a label shows it: (2, 2) -> 2, ((1, 1), (2, 2)) -> (1, 2), ((1, 1), (1, 1)) -> 1;
    ((1, 2), (1, 2)) (top 1, bottom 2) stays as it is, so the short form still reads as the op's own argument."""
    if not isinstance(value, tuple):
        return value
    inner = tuple(compact(p) for p in value)
    if any(isinstance(p, tuple) for p in inner):
        return value
    return inner[0] if inner and all(p == inner[0] for p in inner) else inner


def _shown(value) -> str:
    if isinstance(value, np.ndarray):
        return f"array{value.shape}"
    return str(compact(value))


def shown_args(op_args: dict, defaults: dict | None = None) -> list:
    """``["stride=2", "pad=1"]``: the hyper-parameters that are given (not None) and differ from ``defaults``,
    compacted for display."""
    defaults = defaults or {}
    return [f"{k}={_shown(v)}" for k, v in op_args.items()
            if v is not None and not (k in defaults and _same(v, defaults[k]))]


def op_label(name: str, op_args: dict, defaults: dict | None = None) -> str:
    """``name k=v ...`` (see ``shown_args``): ``conv2d stride=2 pad=1``."""
    return " ".join([name, *shown_args(op_args, defaults)])


def label_args(t) -> list:
    """The hyper-parameters the label of t's op shows (``shown_args`` with the op's declared defaults)."""
    return shown_args(t.op_args, facts_of(t).label_defaults)


def _same(value, default) -> bool:
    """value == default for the plain values hyper-parameters hold (an array is never a default; 1 is not True)."""
    return type(value) is type(default) and value == default


def rule_symbols(rule: str) -> set:
    """The names a rule uses (``dA_prev += W*g`` -> {"dA_prev", "W", "g"})."""
    return set(re.findall(r"[A-Za-z_][A-Za-z_0-9]*", rule))


def rules_legend(tensors) -> list:
    """The caption of a drawing that shows rules: what g, out and d<input> mean, the inputs' names of the drawn ops
    that do not call them a, b, and each other symbol (RULE_SYMBOLS), operator (RULE_OPERATORS) and argument of
    its op (with its value: a label leaves out the defaults) the drawn rules use."""
    ops = [t for t in tensors if t.op is not None]
    named = {}
    for t in ops:
        facts = facts_of(t)
        if facts.inputs and facts.inputs != ("a",) and facts.inputs != ("a", "b"):
            named[facts.name] = ", ".join(facts.inputs)
    used = set().union(*(rule_symbols(t.rule) for t in ops if t.rule)) - {"g", "out"}
    lines = ["rules: g is the gradient at the op's output, out its value, da the gradient its input a gets;",
             "inputs are a, b in order" + "".join(f"; {op}: {names}" for op, names in sorted(named.items()))]
    lines += [f"{symbol}: {RULE_SYMBOLS[symbol]}" for symbol in sorted(used & RULE_SYMBOLS.keys())]
    rules = [t.rule for t in ops if t.rule]
    operators = [text for operator, text in RULE_OPERATORS.items() if any(operator in rule for rule in rules)]
    if operators:
        lines.append("; ".join(operators))
    arguments = {}  # "ties=first" -> the ops whose rules name that argument (a label leaves out its default)
    for t in ops:
        for name in sorted(rule_symbols(t.rule) & t.op_args.keys() if t.rule else ()):
            arguments.setdefault(f"{name}={_shown(t.op_args[name])}", set()).add(t.op)
    if arguments:
        lines.append("the ops' arguments the rules name: " + "; ".join(
            f"{arg} ({', '.join(sorted(names))})" for arg, names in sorted(arguments.items())))
    lines.append("an input that was broadcast gets its gradient summed back to its own shape")
    return lines
