"""Why is this gradient entry what it is: ``explain(root, x, index)``, term by term.

After ``root.backward()``, ``x.grad[index]`` is a sum over the ops that consumed ``x``: for each consumer op and
each entry ``k`` of its output, (the gradient that arrived at ``out[k]``) * (d out[k] / d x[index]). This module
lists those terms.

* The gradient arriving at each consumer's output is the ``.grad`` it kept from the last backward; where an output
  kept none (or with ``recompute=True``), the backward walk is re-run from ``root`` (seeded with ``root.grad``)
  without touching any ``.grad`` and without calling hooks.
* The local derivative ``d out[k] / d x[index]`` comes from the op's own backward closure, run on a one-hot
  gradient at ``k``. The entries ``k`` that matter are found by running the closure on random positive weights
  over blocks of output entries (where the arriving gradient is nonzero) and halving the blocks that reach
  ``x[index]``: about 2 * terms * log2(output size) closure runs. This works for every op, a user's too.
* The ops whose facts name a formula (``OpFacts.formula``, ops/facts.py: conv2d, the pools, 2-D matmul) have
  their own, the notebook's (``dA_prev[i,h,w,c] += W[..] * dZ[..]``): their terms are found from the window
  geometry, without the search, so they stay fast for large layers. A conv2d with dilation or groups takes the
  generic search (the formulas are the notebook's plain conv).
* Names: a tensor is called by its name; an unnamed one by the name its op declares for that input (A_prev, W, a,
  b) in a formula, unless a tensor of the graph has that name, and as "tensor of shape (4,)" in the table: never by
  another tensor's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .graph import grad_like, topo_order
from .ops.facts import facts_of
from .tensor import Tensor, walk_gradients

__all__ = ["explain", "Explanation", "Term"]


@dataclass(frozen=True)
class Term:
    """One contribution to x.grad[index]: ``grad`` (arriving at out[k]) * ``local`` (d out[k]/d x[index])."""

    op: str          # the consumer op with its hyper-parameters, e.g. "conv2d stride=2 pad=1"
    output: str      # the name of that op's output
    input: int       # which input of the op x is (0 for the first)
    k: tuple         # the output entry
    grad: float      # the gradient that arrived at out[k]
    local: float     # d out[k] / d x[index]
    value: float     # grad * local
    formula: str     # the same product in the op's own notation, with the actual indices


@dataclass(eq=False)  # compared by identity: it holds Tensors and arrays
class Consumer:
    """An op that used x: its output tensor, which input x was, and what to say about it."""

    out: Tensor
    input: int
    output_name: str
    note: str = ""
    terms: list = field(default_factory=list)
    arriving: np.ndarray | None = None  # the gradient that arrived at out
    geometry: tuple | None = None  # conv/pool image input: ((s_h, s_w), (top, left), (f_h, f_w))
    windows: list = field(default_factory=list)  # conv/pool image input: the (h, w) whose window covers x[index]


def _idx(k) -> str:
    return ",".join(str(int(i)) for i in k)


def _num(v) -> str:
    return f"{float(v):.6g}"


# ----------------------------------------------------------------------------- the generic search
def _column(out: Tensor, position: int, x: Tensor, index: tuple):
    """fn(g) -> the gradient that out's backward closure sends to x[index] (as input ``position``) from g."""
    def fn(g):
        grads = out._backward(g)
        if grads[position] is None:
            return 0.0
        return float(grad_like(grads[position], x.data)[index])
    return fn


def _generic_entries(out: Tensor, position: int, x: Tensor, index: tuple, G: np.ndarray):
    """[(k, local)] for the output entries k with G[k] != 0 and d out[k]/d x[index] != 0, by the closure."""
    column = _column(out, position, x, index)
    candidates = np.flatnonzero(G)
    weights = np.random.default_rng(0).uniform(1.0, 2.0, size=G.size).astype(G.dtype)
    found, blocks = [], [candidates] if candidates.size else []
    g = np.zeros(G.shape, G.dtype)
    while blocks:
        block = blocks.pop()
        g.flat[block] = weights[block]
        reaches = column(g) != 0  # a NaN reaches too
        g.flat[block] = 0
        if not reaches:
            continue
        if block.size == 1:
            found.append(int(block[0]))
        else:
            half = block.size // 2
            blocks += [block[half:], block[:half]]
    entries = []
    for flat in sorted(found):
        g.flat[flat] = 1
        entries.append((np.unravel_index(flat, G.shape), column(g)))
        g.flat[flat] = 0
    return [(tuple(int(i) for i in k), local) for k, local in entries]


def _generic_terms(c: Consumer, x: Tensor, taken: set, index: tuple, G: np.ndarray):
    gname = f"d{c.out.name}" if c.out.name else "g"
    broadcast = x.shape != c.out.shape and _broadcasts(x.shape, c.out.shape)
    for k, local in _generic_entries(c.out, c.input, x, index, G):
        formula = f"{gname}[{_idx(k)}] * {_num(local)}"
        if broadcast:
            formula += f"  ({_names(c, taken, '')[0][c.input]}[{_idx(index)}] broadcast to [{_idx(k)}])"
        yield k, local, formula


def _broadcasts(small: tuple, big: tuple) -> bool:
    try:
        return len(small) <= len(big) and np.broadcast_shapes(small, big) == tuple(big)
    except ValueError:
        return False


# ----------------------------------------------------------------------------- per-op formulas
def _geometry(out: Tensor):
    """((s_h, s_w), (top, left), (f_h, f_w)) of a conv or pool, from its recorded (canonical) hyper-parameters."""
    args = out.op_args
    if "pad" in args:  # conv2d: the window is W's
        (top, _), (left, _) = args["pad"]
        return args["stride"], (top, left), out.parents[1].shape[:2]
    return args["stride"], (0, 0), args["f"]


def _covering(n_out: int, p: int, s: int, f: int) -> list:
    """[(output row h, row inside its window)] of the windows that cover padded row p."""
    return [(h, p - h * s) for h in range(n_out) if 0 <= p - h * s < f]


def _windows(out: Tensor, index: tuple):
    """[(h, w, kh, kw)]: the output positions whose window covers x[index] (an NHWC input) and where in it."""
    (s_h, s_w), (top, left), (f_h, f_w) = _geometry(out)
    _, n_H, n_W, _ = out.shape
    rows, cols = _covering(n_H, index[1] + top, s_h, f_h), _covering(n_W, index[2] + left, s_w, f_w)
    return [(h, w, kh, kw) for h, kh in rows for w, kw in cols]


def symbol(t: Tensor, role: str, taken: set) -> str:
    """What a formula calls t: its name; unnamed, the name its op declares for it (``role``) unless a tensor of the
    graph carries that name (``taken``), then "(tensor of shape S)"."""
    if t.name:
        return t.name
    return role if role not in taken else f"(tensor of shape {t.shape})"


def _names(c: Consumer, taken: set, grad_name: str):
    """(names of the op's inputs, the name of the gradient at its output): each input by ``symbol``; the gradient
    d<output name>, else grad_name (the formula's notebook name: dZ, dA, G)."""
    facts = facts_of(c.out)
    names = [symbol(p, facts.input_name(i), taken) for i, p in enumerate(c.out.parents)]
    return names, f"d{c.out.name}" if c.out.name else grad_name


def _conv2d_terms(c: Consumer, x: Tensor, taken: set, index: tuple, G: np.ndarray):
    out = c.out
    (A, W, *rest), dZ = _names(c, taken, "dZ")
    i = index[0]
    if c.input == 0:  # dA_prev[i,h,w,c] += W[kh,kw,c,co] * dZ[i,oh,ow,co]
        Wd, ci = out.parents[1].data, index[3]
        for h, w, kh, kw in _windows(out, index):
            for co in range(out.shape[3]):
                yield ((i, h, w, co), Wd[kh, kw, ci, co],
                       f"d{A}[{_idx(index)}] += {W}[{kh},{kw},{ci},{co}] * {dZ}[{i},{h},{w},{co}]")
    elif c.input == 1:  # dW[kh,kw,ci,co] += a_slice[kh,kw,ci] * dZ[i,h,w,co]
        (s_h, s_w), (top, left), _ = _geometry(out)
        kh, kw, ci, co = index
        A_data = out.parents[0].data
        for i, h, w in np.ndindex(*out.shape[:3]):
            r, q = h * s_h + kh - top, w * s_w + kw - left  # the entry of A_prev under W[kh,kw] (unpadded)
            if 0 <= r < A_data.shape[1] and 0 <= q < A_data.shape[2]:  # else: padding, a zero
                yield ((i, h, w, co), A_data[i, r, q, ci],
                       f"d{W}[{_idx(index)}] += a_slice[{kh},{kw},{ci}] * {dZ}[{i},{h},{w},{co}]"
                       f"  (a_slice = {A}_pad[{i}, {h * s_h}:{h * s_h + out.parents[1].shape[0]}, "
                       f"{w * s_w}:{w * s_w + out.parents[1].shape[1]}, :])")
    else:  # db[co] += dZ[i,h,w,co]
        co = index[-1]
        for i, h, w in np.ndindex(*out.shape[:3]):
            yield (i, h, w, co), 1.0, f"d{rest[0]}[{_idx(index)}] += {dZ}[{i},{h},{w},{co}]"


def _pool_terms(c: Consumer, x: Tensor, taken: set, index: tuple, G: np.ndarray):
    out = c.out
    (A,), dA = _names(c, taken, "dA")
    i, ch = index[0], index[3]
    f_h, f_w = _geometry(out)[2]
    column = _column(out, 0, x, index)
    g = np.zeros(G.shape, G.dtype)
    for h, w, _, _ in _windows(out, index):
        k = (i, h, w, ch)
        if out.op_args.get("ties") is None:  # average: every entry of the window gets its share
            yield k, 1.0 / (f_h * f_w), f"d{A}[{_idx(index)}] += {dA}[{_idx(k)}] / ({f_h}*{f_w})"
            continue
        g[k] = 1  # max: which entry of the window takes the gradient is the kernel's to say (ties)
        share = column(g)
        g[k] = 0
        if share != 0:
            yield k, share, (f"window ({_idx(k)}) takes its max here (ties={out.op_args['ties']}): "
                             f"d{A}[{_idx(index)}] += {dA}[{_idx(k)}] (x {_num(share)} share)")


def _matmul_terms(c: Consumer, x: Tensor, taken: set, index: tuple, G: np.ndarray):
    a, b = c.out.parents
    if a.ndim != 2 or b.ndim != 2 or a is b:
        yield from _generic_terms(c, x, taken, index, G)
        return
    (A, B), gname = _names(c, taken, "G")
    if c.input == 0:  # dA[i,j] += G[i,n] * B[j,n]
        i, j = index
        for n in range(b.shape[1]):
            yield (i, n), b.data[j, n], f"d{A}[{i},{j}] += {gname}[{i},{n}] * {B}[{j},{n}]"
    else:  # dB[j,n] += A[i,j] * G[i,n]
        j, n = index
        for i in range(a.shape[0]):
            yield (i, n), a.data[i, j], f"d{B}[{j},{n}] += {A}[{i},{j}] * {gname}[{i},{n}]"


# explain's own formulas, by the name an op's facts give (OpFacts.formula)
FORMULAS = {"conv2d": _conv2d_terms, "pool": _pool_terms, "matmul": _matmul_terms}


def _formula(out: Tensor):
    """The terms function of out's own formula, or None for the generic search (a conv2d with dilation or groups:
    the formula is the notebook's plain conv)."""
    facts = facts_of(out)
    if facts.formula == "conv2d" and (out.op_args["dilation"] != (1, 1) or out.op_args["groups"] != 1):
        return None
    return FORMULAS.get(facts.formula)


# ----------------------------------------------------------------------------- explain
def _check_index(x: Tensor, index) -> tuple:
    index = (index,) if isinstance(index, (int, np.integer)) else tuple(index)
    if len(index) != x.ndim or not all(isinstance(i, (int, np.integer)) for i in index):
        raise IndexError(f"explain: index must be a tuple of {x.ndim} ints for x of shape {x.shape}, got {index!r}")
    if not all(-n <= i < n for i, n in zip(index, x.shape, strict=True)):
        raise IndexError(f"explain: index {index} is out of range for x of shape {x.shape}")
    return tuple(int(i) % n for i, n in zip(index, x.shape, strict=True))


def _values(g):
    """A gradient as an array: ``.grad`` is a Tensor after backward(create_graph=True)."""
    return None if g is None else np.asarray(g)


def _arriving_grads(root: Tensor, consumers: list, recompute: bool) -> dict:
    """{id(out): the gradient that arrived at out} for each consumer's output."""
    if not recompute and all(c.out.grad is not None for c in consumers):
        return {id(c.out): _values(c.out.grad) for c in consumers}
    seed = _values(root.grad) if root.grad is not None and not root.is_leaf else None
    if seed is None:
        if root.size != 1:
            raise RuntimeError(f"explain: root has shape {root.shape} and no .grad to start from: "
                               "call root.backward(grad) first")
        seed = np.ones_like(root.data)
    walked = walk_gradients(root, seed)
    kept = {} if recompute else {id(c.out): _values(c.out.grad) for c in consumers if c.out.grad is not None}
    return {id(c.out): kept.get(id(c.out), walked.get(id(c.out))) for c in consumers}


def explain(root: Tensor, x: Tensor, index, recompute: bool = False) -> Explanation:
    """Why ``x.grad[index]`` has its value, after ``root.backward()``: one term per (op that used x, entry k of
    its output), largest first. x is a leaf or an interior tensor of root's graph; index a tuple of ints.

    recompute: re-run the backward walk from root for the gradients arriving at x's consumers instead of
    using the ``.grad`` they kept (useful when another backward() has run since root's).
    """
    for name, t, what in (("root", root, "the tensor backward() started from"),
                          ("x", x, "the tensor whose gradient entry to explain")):
        if not isinstance(t, Tensor):
            raise TypeError(f"explain: {name} must be a Tensor ({what}), got {type(t).__name__}")
    index = _check_index(x, index)
    order = topo_order(root)
    if not any(t is x for t in order):
        raise ValueError("explain: x is not in root's graph (root was not computed from x)")
    if not x.requires_grad:
        raise ValueError("explain: x does not require grad, so it has no gradient to explain")
    if x.grad is None:
        raise RuntimeError("explain: x.grad is None: call root.backward() first")
    x_name = x.name or f"(tensor of shape {x.shape})"
    taken = {t.name for t in order if t.name}
    consumers = [Consumer(t, i, t.name or f"{t.op}(...)") for t in order for i, p in enumerate(t.parents) if p is x]
    arriving = _arriving_grads(root, consumers, recompute)
    terms = []
    for c in consumers:
        G = c.arriving = arriving[id(c.out)]
        if G is None:
            c.note = "no gradient reached its output"
            continue
        formula = _formula(c.out)
        make = formula or _generic_terms
        if x.shape != c.out.shape and formula is None and _broadcasts(x.shape, c.out.shape):
            c.note = (f"{x.name + ' ' + str(x.shape) if x.name else x_name} was broadcast to {c.out.shape}: "
                      "its gradient sums the entries that used it")
        if formula is not None and facts_of(c.out).windows and c.input == 0:
            c.geometry, c.windows = _geometry(c.out), [(h, w) for h, w, _, _ in _windows(c.out, index)]
        label = c.out.op_label
        for k, local, formula in make(c, x, taken, index, G):
            grad = G[k]
            if grad != 0 and local != 0:
                c.terms.append(Term(label, c.output_name, c.input, k, float(grad), float(local),
                                    float(grad) * float(local), formula))
        terms += c.terms
    if x is root:
        seed = float(np.asarray(root.grad)[index])
        terms.append(Term("backward() seed", x_name, 0, index, seed, 1.0, seed, "the gradient backward() started from"))
    terms.sort(key=lambda t: (-abs(t.value) if np.isfinite(t.value) else -np.inf, t.op, t.k))
    return Explanation(root, x, x_name, index, terms, consumers)


class Explanation:
    """The terms of ``x.grad[index]``: ``terms`` (largest first), ``total`` (their sum), ``grad`` (x.grad[index]).

    ``print(explanation)`` shows a table; ``explanation.table(limit)`` the same with another row limit;
    ``explanation.plot(path)`` draws the windows of conv/pool consumers (matplotlib).
    """

    LIMIT = 12

    def __init__(self, root, x, x_name, index, terms, consumers):
        self.root, self.x, self.x_name, self.index = root, x, x_name, index
        self.terms, self.consumers = terms, consumers
        self.total = float(np.sum([t.value for t in terms], dtype=np.float64)) if terms else 0.0
        self.grad = float(np.asarray(x.grad)[index])

    def __repr__(self) -> str:
        return f"<Explanation of {self.x_name}.grad[{_idx(self.index)}] = {_num(self.grad)}: {len(self.terms)} terms>"

    def __str__(self) -> str:
        return self.table(self.LIMIT)

    def table(self, limit: int | None = LIMIT) -> str:
        """The terms as text, largest first; past ``limit`` rows one line sums the rest."""
        named = f"{self.x.name}: shape {self.x.shape}, " if self.x.name else ""
        head = (f"Why {self.x_name}.grad[{_idx(self.index)}] = {_num(self.grad)}  ({named}"
                f"{'a leaf' if self.x.is_leaf else 'made by ' + self.x.op_label})")
        lines = [head]
        for c in self.consumers:
            lines.append(f"  used by {c.out.op_label} -> {c.output_name} {c.out.shape} as input {c.input}: "
                         f"{len(c.terms)} terms; rule: {c.out.rule}")
            if c.note:
                lines.append(f"    {c.note}")
        if not self.consumers and self.x is not self.root:
            lines.append("  no op of root's graph used it")
        shown = self.terms if limit is None else self.terms[:limit]
        several = len(self.consumers) > 1  # then each row says which op's output it comes from
        if shown:
            lines.append(f"  {'value':>12}  {'grad at k':>12}  {'d out[k]/dx':>12}  {'via  ' if several else ''}"
                         "formula")
            for t in shown:
                via = f"{t.output}  " if several else ""
                lines.append(f"  {_num(t.value):>12}  {_num(t.grad):>12}  {_num(t.local):>12}  {via}{t.formula}")
        rest = self.terms[len(shown):]
        if rest:
            lines.append(f"  ... and {len(rest)} more terms summing to {_num(sum(t.value for t in rest))}")
        lines.append(f"  total (sum of {len(self.terms)} terms): {self.total!r}")
        lines.append(f"  {self.x_name}.grad[{_idx(self.index)}]: {self.grad!r}")
        hooks = self.x._hooks
        if hooks:
            lines.append(f"  note: {self.x_name} has {len(hooks)} hook(s), which may have changed its gradient")
        elif not np.isclose(self.total, self.grad, rtol=1e-6, atol=1e-12 * max(1.0, abs(self.grad))):
            lines.append("  note: they differ: x.grad accumulates over backward() calls (zero_grad() before) "
                         "or another backward() ran since; explain(..., recompute=True) re-runs root's walk")
        return "\n".join(lines)

    def plot(self, path=None):
        """Draw, for each conv/pool op that used x as its image input: the input plane of x's channel with the
        pixel marked, the windows that cover it and the output gradients they carry. Returns the figure; saves
        a png when ``path`` is given. Raises ValueError when no consumer is a conv or pool (no picture fits)."""
        from .explain_plot import plot_explanation
        return plot_explanation(self, path)
