"""What a wrong entry is instead: one sentence (and, for a backward, the table of the expected value's terms) for
the first wrong entry of an output.

- conv_backward, pool_backward: the terms of the expected value (check.terms, from explain) and which of them
  the learner's value is the sum of;
- conv_forward, pool_forward: the window (start row and column, padded or not, with or without the bias, max or
  mean) whose value the learner's entry is;
- the helpers: the numbers that make the entry (the bias, the divisor, where the window's max is);
- otherwise: the expected value of another entry it equals, or the factor it is off by.
Imports numpy and the check package's terms and report.
"""

from __future__ import annotations

import numpy as np

from . import terms
from .report import number


def _where(output: str, index: tuple) -> str:
    return f"{output}[{','.join(map(str, index))}]" if index else output


def _near(a: float, b: float, scale: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, scale)


def _windows(plane: np.ndarray, f: int):
    """[(r, q, window)] of every f x f window of an (n_H, n_W, ...) plane."""
    return [(r, q, plane[r:r + f, q:q + f]) for r in range(plane.shape[0] - f + 1)
            for q in range(plane.shape[1] - f + 1)]


def _window_found(where: str, got: float, candidates, expected: str):
    """The sentence for the first candidate (words, value, scale) that equals got, other than the expected one."""
    for words, value, scale in candidates:
        if words != expected and _near(value, got, scale):
            return f"your {where} = {number(got)} is {words}; the expected one is {expected}."
    return None


def _conv_forward(args, index, got):
    A_prev, W, b, hp = args
    i, h, w, c = index
    s, p = hp["stride"], hp["pad"]
    bias = float(np.sum(b[..., c]))

    def candidates():
        for padded, plane in (("A_prev_pad", np.pad(A_prev[i], ((p, p), (p, p), (0, 0)))), ("A_prev", A_prev[i])):
            for r, q, window in _windows(plane, W.shape[0]):
                products = window * W[..., c]
                scale = float(np.sum(np.abs(products))) + abs(bias)
                for with_bias, add in (("+ b", bias), ("without b", 0.0)):
                    words = f"the window of {padded} starting at row {r}, column {q} ({with_bias})"
                    yield words, float(np.sum(products)) + add, scale
    expected = f"the window of A_prev_pad starting at row {h * s}, column {w * s} (+ b)"
    return _window_found(_where("Z", index), got, candidates(), expected)


def _pool_forward(args, index, got):
    A_prev, hp, mode = args
    i, h, w, c = index
    f, s = hp["f"], hp["stride"]
    scale = float(np.max(np.abs(A_prev[i, ..., c])))
    candidates = ((f"the {kind} of the window starting at row {r}, column {q}", float(value), scale)
                  for r, q, window in _windows(A_prev[i, :, :, c], f)
                  for kind, value in (("max", np.max(window)), ("mean", np.mean(window))))
    expected = f"the {'max' if mode == 'max' else 'mean'} of the window starting at row {h * s}, column {w * s}"
    return _window_found(_where("A", index), got, candidates, expected)


def _conv_single_step(args, index, got):
    a, W, b = args
    s, bias = float(np.sum(a * W)), float(np.sum(b))
    for words, value in (("sum(a_slice_prev * W) without b", s), ("sum(a_slice_prev * W) - b", s - bias),
                         ("sum(a_slice_prev * W) + 2 * b", s + 2 * bias), ("b alone", bias),
                         (f"sum(a_slice_prev * W + b): b added to each of the {a.size} products", s + a.size * bias)):
        if _near(value, got, abs(s) + abs(bias)):
            return f"your Z = {number(got)} is {words}; expected sum(a_slice_prev * W) + b = {number(s + bias)}."
    return None


def _mask(args, index, got_array):
    x = args[0]
    marked = [tuple(int(v) for v in k) for k in np.argwhere(got_array != 0)]
    maxima = [tuple(int(v) for v in k) for k in np.argwhere(x == np.max(x))]
    return (f"your mask marks {marked or 'nothing'}; the maximum of x, {number(np.max(x))}, is at "
            f"{maxima[0] if len(maxima) == 1 else maxima}.")


def _distribute_value(args, index, got):
    dz, shape = args
    if got != 0 and dz != 0:
        return (f"your {_where('a', index)} = {number(got)} is dz / {number(dz / got)}; expected dz / (n_H * n_W) = "
                f"{number(dz)} / {shape[0] * shape[1]} = {number(dz / (shape[0] * shape[1]))}.")
    return None


def _other_entry(expected_array, value, index):
    """The index of the one other entry whose expected value is ``value``, or None (none, or several)."""
    scale = float(np.max(np.abs(expected_array))) if expected_array.size else 1.0
    hits = [tuple(int(v) for v in k) for k in np.argwhere(np.abs(expected_array - value) <= 1e-9 * max(1.0, scale))]
    hits = [k for k in hits if k != tuple(index)]
    return hits[0] if len(hits) == 1 and value != 0 else None


def _one_factor(got_array, expected_array):
    """The factor r when got_array is r * expected_array in every entry (r not 0 or 1), else None."""
    nonzero = expected_array != 0
    if not nonzero.any() or np.any(got_array[~nonzero] != 0):
        return None
    ratios = got_array[nonzero] / expected_array[nonzero]
    r = float(ratios[0])
    return r if r not in (0.0, 1.0) and np.all(np.abs(ratios - r) <= 1e-9 * abs(r)) else None


def _elsewhere(output, index, got, expected_array, got_array=None):
    """The sentence for an entry that equals the expected value of another entry, or that plus its own, or for an
    output off by one factor everywhere, or an entry off by a simple factor."""
    expected = float(expected_array[tuple(index)])
    other = _other_entry(expected_array, got, index)
    if other is not None:
        return (f"your {_where(output, index)} = {number(got)} is the expected value of {_where(output, other)}: "
                "an index or a window in the wrong place?")
    other = _other_entry(expected_array, got - expected, index) if expected != 0 else None
    if other is not None:
        return (f"your {_where(output, index)} = {number(got)} is the expected {number(expected)} plus the expected "
                f"{_where(output, other)} = {number(got - expected)}: another entry's terms added in (an array not "
                "reset between examples, or an index in the wrong place?)")
    factor = None if got_array is None or got_array.ndim == 0 else _one_factor(got_array, expected_array)
    if factor is not None:
        inverse = f" (1 / {round(1 / factor)})" if abs(1 / factor - round(1 / factor)) <= 1e-9 else ""
        return f"on this case every entry of your {output} is {number(factor)} times the expected one{inverse}."
    if expected != 0:
        ratio = got / expected
        for factor in (-1, 2, 0.5, 4, 0.25, 3, 1 / 3, 9, 1 / 9):
            if abs(ratio - factor) <= 1e-9:
                return f"your {_where(output, index)} = {number(got)} is {number(factor)} times the expected value."
    return None


def diagnose(name: str, output: str, args: tuple, index: tuple, got_array: np.ndarray, expected_array: np.ndarray):
    """(summary sentence, table lines) for the wrong entry output[index]; got_array/expected_array the whole
    output as the learner gave it and as expected (one shape)."""
    got, expected = float(got_array[index]), float(expected_array[index])
    if name in ("conv_backward", "pool_backward"):
        summary, table = terms.diagnose(name, args, output, index, got, expected)
        if "not a sum" in summary:
            summary = _elsewhere(output, index, got, expected_array, got_array) or summary
        return summary, table
    found = {"conv_forward": lambda: _conv_forward(args, index, got),
             "pool_forward": lambda: _pool_forward(args, index, got),
             "conv_single_step": lambda: _conv_single_step(args, index, got),
             "create_mask_from_window": lambda: _mask(args, index, got_array),
             "distribute_value": lambda: _distribute_value(args, index, got)}.get(name, lambda: None)()
    found = found or _elsewhere(output, index, got, expected_array, got_array)
    return found or (f"your {_where(output, index)} = {number(got)}, expected {number(expected)} "
                     f"(difference {number(got - expected)})."), []
