"""What check runs: for each notebook function, its cases (the notebook's own inputs and the ones that expose the
known bugs), how its result unpacks into the notebook's outputs, their shapes (with the formula) and the expected
values from the loop reference (tinygrad_cnn.reference, the oracle).

Cases: the notebook's seeds and shapes; pad 0; stride > 1 with overlapping windows (f > stride); stride > f
(gaps); non-square images; m = 1 and one channel; max-pool windows with ties. All float64.
Imports numpy and tinygrad_cnn.reference only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from .. import reference

NAMES = ("zero_pad", "conv_single_step", "conv_forward", "conv_backward", "pool_forward", "pool_backward",
         "create_mask_from_window", "distribute_value")
TIES = ("all", "first", "split")  # "all" is the notebook's mask (x == max); the others are accepted as well


@dataclass(frozen=True, eq=False)
class Case:
    """One call of a notebook function: ``args`` in the notebook's order (handed out as copies only),
    ``hparameters`` what to show of it (stride, pad, f, mode, shapes), ``ties`` True when a max window holds
    several maxima (then the tie policies of TIES give different answers, all accepted)."""

    label: str
    hparameters: dict
    args: tuple = field(repr=False)
    ties: bool = False

    def __post_init__(self):
        _read_only(self.args)  # the cases are cached: no caller may change them

    def fresh_args(self) -> tuple:
        """Writable copies of the arguments (deepcopy of a read-only array is writable)."""
        return copy.deepcopy(self.args)


def _read_only(value):
    """value, with every array inside it (through tuples, lists and dicts) made read-only."""
    if isinstance(value, np.ndarray):
        value.setflags(write=False)
    elif isinstance(value, (tuple, list)):
        for item in value:
            _read_only(item)
    elif isinstance(value, dict):
        for item in value.values():
            _read_only(item)
    return value


def _notebook(*shapes) -> list:
    """The notebook's arrays: np.random.seed(1), then randn of each shape in turn (the global generator is left
    as it was)."""
    rng = np.random.RandomState(1)
    return [rng.randn(*shape) for shape in shapes]


def _randn(seed: int, *shape) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def _small_integers(seed: int, *shape) -> np.ndarray:
    """Values from {0, 1, 2}: max windows with ties."""
    return np.random.default_rng(seed).integers(0, 3, size=shape).astype(np.float64)


def _shape_text(a) -> str:
    return str(tuple(np.shape(a)))


# ----------------------------------------------------------------------------- conv
def _conv_inputs():
    """[(label, A_prev, W, b, stride, pad)]: the notebook's conv_forward and conv_backward inputs, then the rest."""
    forward = _notebook((2, 5, 7, 4), (3, 3, 4, 8), (1, 1, 1, 8))
    backward = _notebook((10, 4, 4, 3), (2, 2, 3, 8), (1, 1, 1, 8))
    return [
        ("conv_forward", *forward, 2, 1),
        ("conv_backward", *backward, 2, 2),
        ("pad 0, overlapping windows", _randn(2, 2, 5, 6, 3), _randn(3, 3, 3, 3, 4), _randn(4, 1, 1, 1, 4), 1, 0),
        ("stride 2 < f 3, non-square", _randn(5, 1, 7, 5, 2), _randn(6, 3, 3, 2, 3), _randn(7, 1, 1, 1, 3), 2, 1),
        ("stride 3 > f 2 (gaps)", _randn(8, 2, 8, 7, 2), _randn(9, 2, 2, 2, 2), _randn(10, 1, 1, 1, 2), 3, 1),
        ("m = 1, one channel, pad 0", _randn(11, 1, 4, 5, 1), _randn(12, 2, 2, 1, 1), _randn(13, 1, 1, 1, 1), 1, 0),
    ]


def _conv_label(label: str, name: str) -> str:
    """The notebook's inputs are "the notebook's" for their own function, "the notebook's <f> inputs" otherwise."""
    if label not in ("conv_forward", "conv_backward"):
        return label
    return "the notebook's" + (" (dZ = Z)" if name == "conv_backward" else "") if label == name else \
        f"the notebook's {label} inputs"


def _conv_hparameters(A_prev, W, stride, pad) -> dict:
    return {"A_prev": _shape_text(A_prev), "W": _shape_text(W), "stride": stride, "pad": pad}


@cache
def conv_forward_cases() -> tuple:
    return tuple(Case(_conv_label(label, "conv_forward"), _conv_hparameters(A, W, s, p),
                      (A, W, b, {"stride": s, "pad": p})) for label, A, W, b, s, p in _conv_inputs())


@cache
def conv_backward_cases() -> tuple:
    """The notebook's conv_backward inputs first, with dZ = Z (as its test); dZ random elsewhere."""
    inputs = _conv_inputs()
    cases = []
    for n, (label, A, W, b, s, p) in enumerate([inputs[1], inputs[0], *inputs[2:]]):
        Z = reference.conv_forward(A, W, b, (s, s), ((p, p), (p, p)))
        dZ = Z if label == "conv_backward" else _randn(100 + n, *Z.shape)
        cases.append(Case(_conv_label(label, "conv_backward"), _conv_hparameters(A, W, s, p),
                          (dZ, (A, W, b, {"stride": s, "pad": p}))))
    return tuple(cases)


def _conv_geometry(A_prev, W, hparameters):
    m, n_H_prev, n_W_prev, n_C_prev = A_prev.shape
    f, n_C = W.shape[0], W.shape[3]
    s, p = hparameters["stride"], hparameters["pad"]
    n_H, n_W = (n_H_prev - f + 2 * p) // s + 1, (n_W_prev - f + 2 * p) // s + 1
    return m, n_H_prev, n_W_prev, n_C_prev, f, n_C, s, p, n_H, n_W


def _conv_forward_shapes(case):
    A, W, _, hp = case.args
    m, *_, n_C, s, p, n_H, n_W = _conv_geometry(A, W, hp)
    return [((m, n_H, n_W, n_C), f"(m, n_H, n_W, n_C) with n_H = floor((n_H_prev - f + 2 * pad) / stride) + 1 = "
                                 f"floor(({A.shape[1]} - {W.shape[0]} + 2 * {p}) / {s}) + 1 = {n_H} (n_W alike)")]


def _conv_backward_shapes(case):
    _, (A, W, _, _) = case.args
    return [(A.shape, "the shape of A_prev (m, n_H_prev, n_W_prev, n_C_prev)"),
            (W.shape, "the shape of W (f, f, n_C_prev, n_C)"),
            ((1, 1, 1, W.shape[3]), "the shape of b (1, 1, 1, n_C)")]


def _conv_forward_expected(case, ties):
    A, W, b, hp = case.args
    s, p = hp["stride"], hp["pad"]
    return (reference.conv_forward(A, W, b, (s, s), ((p, p), (p, p))),)


def _conv_backward_expected(case, ties):
    dZ, (A, W, _, hp) = case.args
    s, p = hp["stride"], hp["pad"]
    dA, dW, db = reference.conv_backward(dZ, A, W, (s, s), ((p, p), (p, p)))
    return dA, dW, db.reshape(1, 1, 1, -1)


# ----------------------------------------------------------------------------- pool
def _pool_inputs():
    """[(label, A_prev, f, stride, ties)] of pool_forward, then [(label, A_prev, dA or None, f, stride, ties)]."""
    (notebook_forward,) = _notebook((2, 5, 5, 3))
    notebook_backward, notebook_dA = _notebook((5, 5, 3, 2), (5, 4, 2, 2))
    rest = [
        ("f 3 > stride 2, non-square", _randn(20, 2, 7, 6, 2), 3, 2, False),
        ("stride 3 > f 2 (gaps)", _randn(21, 2, 8, 7, 2), 2, 3, False),
        ("m = 1, one channel, stride 2", _randn(22, 1, 4, 6, 1), 2, 2, False),
        ("windows with ties", _small_integers(23, 2, 5, 4, 2), 2, 1, True),
    ]
    forward = [("the notebook's stride 1", notebook_forward, 3, 1, False),
               ("the notebook's stride 2", notebook_forward, 3, 2, False), *rest]
    backward = [("the notebook's", notebook_backward, notebook_dA, 2, 1, False)]
    backward += [(label, A, None, f, s, ties) for label, A, f, s, ties in rest]
    return forward, backward


def _pool_hparameters(A_prev, f, stride, mode) -> dict:
    return {"A_prev": _shape_text(A_prev), "f": f, "stride": stride, "mode": mode}


@cache
def pool_forward_cases() -> tuple:
    forward, _ = _pool_inputs()
    return tuple(Case(f"{label}, {mode}", _pool_hparameters(A, f, s, mode), (A, {"f": f, "stride": s}, mode),
                      ties and mode == "max")
                 for label, A, f, s, ties in forward for mode in ("max", "average"))


@cache
def pool_backward_cases() -> tuple:
    _, backward = _pool_inputs()
    cases = []
    for n, (label, A, dA, f, s, ties) in enumerate(backward):
        if dA is None:
            n_H, n_W = (A.shape[1] - f) // s + 1, (A.shape[2] - f) // s + 1
            dA = _randn(200 + n, A.shape[0], n_H, n_W, A.shape[3])
        for mode in ("max", "average"):
            cases.append(Case(f"{label}, {mode}", _pool_hparameters(A, f, s, mode),
                              (dA, (A, {"f": f, "stride": s}), mode), ties and mode == "max"))
    return tuple(cases)


def _pool_forward_shapes(case):
    A, hp, _ = case.args
    f, s = hp["f"], hp["stride"]
    n_H, n_W = (A.shape[1] - f) // s + 1, (A.shape[2] - f) // s + 1
    return [((A.shape[0], n_H, n_W, A.shape[3]),
             f"(m, n_H, n_W, n_C) with n_H = floor((n_H_prev - f) / stride) + 1 = floor(({A.shape[1]} - {f}) / {s})"
             f" + 1 = {n_H} (n_W alike)")]


def _pool_forward_expected(case, ties):
    A, hp, mode = case.args
    f, s = hp["f"], hp["stride"]
    return (reference.pool_forward(A, (f, f), (s, s), mode),)


def _pool_backward_expected(case, ties):
    dA, (A, hp), mode = case.args
    f, s = hp["f"], hp["stride"]
    return (reference.pool_backward(dA, A, (f, f), (s, s), mode, ties),)


# ----------------------------------------------------------------------------- the small helpers
@cache
def zero_pad_cases() -> tuple:
    (notebook,) = _notebook((4, 3, 3, 2))
    inputs = [("the notebook's", notebook, 3), ("pad 0", _randn(30, 2, 3, 4, 2), 0),
              ("pad 1, non-square, one channel", _randn(31, 1, 2, 5, 1), 1)]
    return tuple(Case(label, {"X": _shape_text(X), "pad": p}, (X, p)) for label, X, p in inputs)


@cache
def conv_single_step_cases() -> tuple:
    notebook = _notebook((4, 4, 3), (4, 4, 3), (1, 1, 1))
    inputs = [("the notebook's", *notebook),
              ("non-square window, one channel", _randn(32, 2, 3, 1), _randn(33, 2, 3, 1), _randn(34, 1, 1, 1))]
    return tuple(Case(label, {"a_slice_prev": _shape_text(a), "b": _shape_text(b)}, (a, W, b))
                 for label, a, W, b in inputs)


@cache
def create_mask_cases() -> tuple:
    (notebook,) = _notebook((2, 3))
    inputs = [("the notebook's", notebook, False), ("3 x 3, all negative", -np.abs(_randn(35, 3, 3)) - 0.5, False),
              ("3 x 4, its max at (1, 1)", _randn(38, 3, 4), False),
              ("a tie: two maxima", np.array([[1.0, 3.0], [3.0, 2.0]]), True)]
    return tuple(Case(label, {"x": _shape_text(x)}, (x,), ties) for label, x, ties in inputs)


@cache
def distribute_value_cases() -> tuple:
    inputs = [("the notebook's", 2, (2, 2)), ("3 x 3", 3.0, (3, 3)), ("non-square, negative", -1.5, (2, 3))]
    return tuple(Case(label, {"dz": dz, "shape": shape}, (dz, shape)) for label, dz, shape in inputs)


def _mask_expected(case, ties):
    return (reference.create_mask_from_window(case.args[0], ties),)


def _distribute_expected(case, ties):
    return (reference.distribute_value(*case.args),)


# ----------------------------------------------------------------------------- windows of a backward case
def geometry(name: str, args: tuple):
    """(A_prev, f, stride, pad) of a conv_backward or pool_backward case."""
    if name == "conv_backward":
        _, (A_prev, W, _, hp) = args
        return A_prev, W.shape[0], hp["stride"], hp["pad"]
    _, (A_prev, hp), _ = args
    return A_prev, hp["f"], hp["stride"], 0


def covering_windows(n_out: tuple, index: tuple, f: int, stride: int, pad: int) -> list:
    """[(h, w)]: the output positions whose window covers input entry index (i, r, q, c)."""
    _, r, q, _ = index
    rows = [h for h in range(n_out[0]) if 0 <= r + pad - h * stride < f]
    cols = [w for w in range(n_out[1]) if 0 <= q + pad - w * stride < f]
    return [(h, w) for h in rows for w in cols]


# ----------------------------------------------------------------------------- specs
def _single(result):
    return (result,)


def _first_of_pair(result):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise TypeError(f"returned {_kind(result)}")
    return (result[0],)


def _three(result):
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise TypeError(f"returned {_kind(result)}")
    return tuple(result)


def _kind(result) -> str:
    if isinstance(result, (tuple, list)):
        return f"a {type(result).__name__} of {len(result)} items"
    if isinstance(result, np.ndarray):
        return f"an array of shape {result.shape}"
    return f"a {type(result).__name__}"


@dataclass(frozen=True)
class Spec:
    """How to run and judge one notebook function: its outputs' names, how it returns them (``returns``, for
    messages; ``unpack`` raises TypeError naming what came back when it does not), its cases, the expected outputs
    for a case and tie policy, and for each output its expected shape with the formula (``shapes``)."""

    name: str
    params: tuple
    outputs: tuple
    returns: str
    unpack: object
    cases: object
    expected: object
    shapes: object
    mask: bool = False  # the outputs are masks: bool, or numbers 0/1


def _zero_pad_shapes(case):
    X, p = case.args
    m, n_H, n_W, n_C = X.shape
    return [((m, n_H + 2 * p, n_W + 2 * p, n_C), "(m, n_H + 2 * pad, n_W + 2 * pad, n_C)")]


SPECS = {s.name: s for s in (
    Spec("zero_pad", ("X", "pad"), ("X_pad",), "X_pad", _single, zero_pad_cases,
         lambda case, ties: (reference.zero_pad(case.args[0], ((case.args[1],) * 2,) * 2),), _zero_pad_shapes),
    Spec("conv_single_step", ("a_slice_prev", "W", "b"), ("Z",), "Z (one number)", _single,
         conv_single_step_cases, lambda case, ties: (reference.conv_single_step(*case.args),),
         lambda case: [((), "one number, shape ()")]),
    Spec("conv_forward", ("A_prev", "W", "b", "hparameters"), ("Z",), "(Z, cache)", _first_of_pair,
         conv_forward_cases, _conv_forward_expected, _conv_forward_shapes),
    Spec("conv_backward", ("dZ", "cache"), ("dA_prev", "dW", "db"), "(dA_prev, dW, db)", _three,
         conv_backward_cases, _conv_backward_expected, _conv_backward_shapes),
    Spec("pool_forward", ("A_prev", "hparameters", "mode"), ("A",), "(A, cache)", _first_of_pair,
         pool_forward_cases, _pool_forward_expected, _pool_forward_shapes),
    Spec("pool_backward", ("dA", "cache", "mode"), ("dA_prev",), "dA_prev", _single, pool_backward_cases,
         _pool_backward_expected,
         lambda case: [(case.args[1][0].shape, "the shape of A_prev (m, n_H_prev, n_W_prev, n_C)")]),
    Spec("create_mask_from_window", ("x",), ("mask",), "mask", _single, create_mask_cases, _mask_expected,
         lambda case: [(np.shape(case.args[0]), "the shape of x")], mask=True),
    Spec("distribute_value", ("dz", "shape"), ("a",), "a", _single, distribute_value_cases, _distribute_expected,
         lambda case: [(tuple(case.args[1]), "the shape given, (n_H, n_W)")]),
)}


@cache
def expected(name: str, n: int) -> tuple:
    """The accepted outputs of case n of ``name``: a tuple of alternatives (one per tie policy where the case has
    ties, the notebook's "all" first), each a tuple of float64 arrays, read-only (cached: reports hand them out)."""
    spec = SPECS[name]
    case = spec.cases()[n]
    policies = TIES if case.ties else TIES[:1]
    found = []
    for ties in policies:
        outputs = _read_only(tuple(np.array(o, dtype=np.float64) for o in spec.expected(case, ties)))
        if not any(all(np.array_equal(a, b) for a, b in zip(outputs, f, strict=True)) for f in found):
            found.append(outputs)
    return tuple(found)
