"""A wrong entry of a backward, term by term: the expected value's terms from ``explain`` (the Tensor graph of the
same computation: conv2d or the pool, ``backward()`` seeded with the case's dZ or dA), and which of them the
learner's value is the sum of.

The search, most telling first: unions of whole groups of terms (the windows (h, w), their rows h or columns w,
the examples i, the filters c; the fewest groups missing wins), then any subset (up to 20 terms), then every term
with one counted twice. A sum is accepted within 1e-9 of the learner's value (relative to the terms' size).
Imports numpy, tinygrad_cnn.tensor (Tensor), tinygrad_cnn.explain (explain) and the check package's cases and
report.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from ..explain import explain
from ..tensor import Tensor
from .cases import covering_windows, geometry
from .report import number

MAX_SUBSET_TERMS = 20  # 2 ** 20 sums
MAX_GROUPS = 12
ROWS = 12  # rows of the terms table


@dataclass(frozen=True)
class Term:
    value: float
    text: str     # e.g. "W[2,1,2,4] * dZ[0,1,2,4]"
    k: tuple      # the output entry (i, h, w, c) it comes from


def _graph(name: str, args: tuple):
    """(root, {output name: the Tensor whose .grad it is}) after backward() of the expected computation."""
    if name == "conv_backward":
        dZ, (A_prev, W, b, hp) = args
        A_t, W_t, b_t = (Tensor(v, requires_grad=True, name=n) for v, n in ((A_prev, "A_prev"), (W, "W"), (b, "b")))
        root = A_t.conv2d(W_t, b_t, stride=hp["stride"], pad=hp["pad"])
        root.name = "Z"
        root.backward(np.asarray(dZ, dtype=np.float64))
        return root, {"dA_prev": A_t, "dW": W_t, "db": b_t}
    dA, (A_prev, hp), mode = args
    A_t = Tensor(A_prev, requires_grad=True, name="A_prev")
    pool = A_t.max_pool2d(hp["f"], stride=hp["stride"], ties="all") if mode == "max" else \
        A_t.avg_pool2d(hp["f"], stride=hp["stride"])
    pool.name = "A"
    pool.backward(np.asarray(dA, dtype=np.float64))
    return pool, {"dA_prev": A_t}


def expected_terms(name: str, args: tuple, output: str, index: tuple) -> list:
    """The terms of the expected ``output[index]`` (largest first), from explain."""
    root, inputs = _graph(name, args)
    why = explain(root, inputs[output], index)
    return [Term(t.value, t.formula.split(" += ", 1)[-1], tuple(t.k)) for t in why.terms]


GROUPINGS = {  # how terms group: by the output entry k = (i, h, w, c) they come from
    "windows": lambda k: (k[1], k[2]), "rows": lambda k: k[1], "columns": lambda k: k[2],
    "examples": lambda k: k[0], "filters": lambda k: k[3]}
GROUP_WORDS = {"windows": ("the window", "the windows"), "rows": ("the windows of row", "the windows of rows"),
               "columns": ("the windows of column", "the windows of columns"),
               "examples": ("example", "the examples"), "filters": ("filter", "the filters")}


def _group_text(kind: str, keys) -> str:
    keys = sorted(keys)
    letter = {"rows": "h", "columns": "w", "examples": "i", "filters": "c"}.get(kind)
    shown = [f"(h={k[0]}, w={k[1]})" if kind == "windows" else f"{letter}={k}" for k in keys]
    more = f" and {len(shown) - 4} more" if len(shown) > 4 else ""
    return f"{GROUP_WORDS[kind][len(keys) > 1]} {', '.join(shown[:4])}{more}"


def _no_terms(name: str, args: tuple, index: tuple) -> str:
    """Why an entry of dA_prev has no term: no window covers it, or (max pool) those that do take their max
    elsewhere."""
    _, f, stride, pad = geometry(name, args)
    windows = covering_windows(args[0].shape[1:3], index, f, stride, pad)
    if not windows:
        return "no window covers it"
    shown = ", ".join(f"(h={h}, w={w})" for h, w in windows)
    if len(windows) == 1:
        return f"the window over it, {shown}, takes its max elsewhere"
    return f"the windows over it, {shown}, take their max elsewhere"


def _terms_word(n: int) -> str:
    return f"{n} term" if n == 1 else f"{n} terms"


def _close(total: float, got: float, scale: float) -> bool:
    return abs(total - got) <= 1e-9 * scale


def _by_groups(terms: list, got: float, scale: float):
    """(kept term positions, text naming the missing groups) for the union of whole groups that sums to got, the
    fewest groups missing first; None when none does. Other unions of as few groups with the same sum (a padded
    border's windows often carry equal terms) are named too."""
    best, same = None, []
    for kind, key in GROUPINGS.items():
        groups = {}
        for n, t in enumerate(terms):
            groups.setdefault(key(t.k), []).append(n)
        if not 2 <= len(groups) <= MAX_GROUPS:
            continue
        names = list(groups)
        for missing in range(1, len(names) if best is None else min(best[0] + 1, len(names))):
            for dropped in combinations(names, missing):
                kept = [n for g in names if g not in dropped for n in groups[g]]
                if not _close(sum(terms[n].value for n in kept), got, scale):
                    continue
                if best is None or missing < best[0]:
                    best, same = (missing, kept, _group_text(kind, dropped), kind), []
                elif missing == best[0] and kind == best[3]:
                    same.append(_group_text(kind, dropped))
    if best is None:
        return None
    also = f" (or, with the same sum, {' or '.join(same[:2])})" if same else ""
    return best[1], best[2] + also


def _by_subset(terms: list, got: float, scale: float):
    """The positions of the largest subset of terms that sums to got (up to MAX_SUBSET_TERMS terms), or None."""
    if len(terms) > MAX_SUBSET_TERMS:
        return None
    sums = np.zeros(1)
    for t in terms:
        sums = np.concatenate([sums, sums + t.value])  # bit n of a position: term n is in
    hits = np.flatnonzero(np.abs(sums - got) <= 1e-9 * scale)
    if hits.size == 0:
        return None
    best = max(hits, key=lambda h: bin(int(h)).count("1"))
    return [n for n in range(len(terms)) if int(best) >> n & 1]


def _term_list(terms: list, positions) -> str:
    shown = [terms[n].text for n in positions]
    return shown[0] + (f" and {len(shown) - 1} more" if len(shown) > 1 else "")


def match(terms: list, got: float):
    """(summary words after "is", positions in yours or None) for the learner's value ``got``."""
    total = sum(t.value for t in terms)
    scale = sum(abs(t.value) for t in terms) + abs(got) or 1.0
    n = len(terms)
    if n == 0:
        return None, None
    if _close(0.0, got, scale):
        return f"0: it has none of the {_terms_word(n)}", []
    grouped = _by_groups(terms, got, scale)
    if grouped is not None:
        kept, missing_text = grouped
        missing = [p for p in range(n) if p not in kept]
        return (f"the sum of {len(kept)} of its {_terms_word(n)}; missing: {_term_list(terms, missing)}, "
                f"{missing_text}", kept)
    kept = _by_subset(terms, got, scale)
    if kept is not None and len(kept) < n:
        missing = [p for p in range(n) if p not in kept]
        return f"the sum of {len(kept)} of its {_terms_word(n)}; missing: {_term_list(terms, missing)}", kept
    for t in terms:
        if _close(total + t.value, got, scale):
            return f"all {n} of its terms with {t.text} counted twice", list(range(n))
    return None, None


def diagnose(name: str, args: tuple, output: str, index: tuple, got: float, expected: float):
    """(summary sentence, table lines) for the wrong entry ``output[index]`` of a conv or pool backward."""
    where = f"{output}[{','.join(map(str, index))}]"
    terms = expected_terms(name, args, output, index)
    words, kept = match(terms, got)
    if not terms:
        return f"the expected {where} is 0 ({_no_terms(name, args, index)}); yours is {number(got)}.", []
    if words is not None:
        summary = f"your {where} = {number(got)} is {words}."
    else:
        summary = (f"your {where} = {number(got)} is not a sum of the {_terms_word(len(terms))} of the expected "
                   f"{number(expected)} (difference {number(got - expected)}).")
    return summary, _table(where, terms, expected, kept)


def _table(where: str, terms: list, expected: float, kept) -> list:
    """The expected value's terms, largest first, each marked "yes"/"no" (in yours) when a subset was found."""
    lines = [f"the expected {where} = {number(expected)} is the sum of {_terms_word(len(terms))} (explain):",
             f"  {'value':>12}  {'in yours' if kept is not None else '':8}  term"]
    kept = None if kept is None else set(kept)
    order = sorted(range(len(terms)), key=lambda n: (kept is not None and n in kept, -abs(terms[n].value)))
    for n in order[:ROWS]:
        mark = "" if kept is None else ("yes" if n in kept else "MISSING")
        lines.append(f"  {number(terms[n].value):>12}  {mark:8}  {terms[n].text}")
    if len(terms) > ROWS:
        rest = [terms[n] for n in order[ROWS:]]
        state = "" if kept is None else (" (all in yours)" if all(n in kept for n in order[ROWS:]) else "")
        lines.append(f"  ... and {len(rest)} more summing to {number(sum(t.value for t in rest))}{state}")
    return lines
