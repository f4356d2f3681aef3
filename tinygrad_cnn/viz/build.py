"""Build a drawing of the autograd graph: which tensors, their labels and colours, the legend; no graphviz.

:func:`drawing` reads the graph behind a tensor (``.parents``, ``.op``, ``.op_args``, ``.rule``, ``.data``,
``.grad``, ``.name``) and returns a :class:`Drawing`: the nodes (one per tensor, each label a small HTML-like
table), the edges, the caption and the styles, in Graphviz's terms but as plain data. Past ``max_nodes`` it
summarises the graph (reshape-like ops as edge labels, then the tensors nearest the inputs left out, and a note
node saying so); tensors whose data was replaced after use are marked stale. With a profile (anything whose
``node(t)`` gives ``.forward`` and ``.backward`` seconds, as ``tinygrad_cnn.profile()``) each op shows its times and
is filled by them.

``render.py`` turns a Drawing into a ``graphviz.Digraph`` and pictures. This module may import numpy,
``tinygrad_cnn.graph`` and ``tinygrad_cnn.ops.facts`` (what each op declares: the arguments its label shows,
whether it only moves values, the rules legend) only: no graphviz (``import tinygrad_cnn`` must not load it),
no Tensor.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field

import numpy as np

from ..graph import topo_order
from ..ops.facts import facts_of, label_args, rules_legend

COLOURS = {"param": "lightblue", "input": "gray90", "interior": "white", "root": "darkolivegreen1"}
NOTE_COLOUR = "lightyellow"
RULE_COLOUR = "gray35"
BAD_COLOUR = "red"
STALE_COLOUR = "darkorange"
STALE_KEY = ("dashed orange (stale): .data replaced after the forward (e.g. an optimizer step); the values shown are "
             "newer than the ones the graph computed with")

# Graphviz places each text by Helvetica's widths, from its left end. A browser without Helvetica or a
# metric-compatible font (Arial, Liberation Sans, Nimbus Sans) draws it wider: DejaVu Sans, the usual Linux
# fallback, by up to about 12% (bold more). Spaces after each text leave it that room (and render.py's SVG asks
# for the metric-compatible fonts first; tools/check_svg_fonts.py measures the result in Chromium).
SLACK = 0.25  # spaces per character after a line
BOLD_SLACK = 0.2  # after a bold op name, before its settings

# How the drawing looks, as Graphviz attributes.
GRAPH_STYLE = {"nodesep": "0.25", "ranksep": "0.35"}
CAPTION_STYLE = {"labelloc": "b", "fontname": "Helvetica", "fontsize": "12"}
NODE_STYLE = {"shape": "box", "style": "rounded,filled", "fontname": "Helvetica", "fontsize": "10",
              "margin": "0.08,0.04"}
EDGE_STYLE = {"fontname": "Helvetica", "fontsize": "9", "arrowsize": "0.7"}


# --------------------------------------------------------------------------- labels


def _ascii(value) -> str:
    """Printable ASCII: other characters become Python-style backslash escapes ('caf\\xe9')."""
    return str(value).encode("unicode_escape").decode("ascii")


def _text(value) -> str:
    """Plain ASCII, escaped for a Graphviz HTML-like label."""
    text = _ascii(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _number(x) -> str:
    return f"{float(x):.4g}"


def _nonfinite(a: np.ndarray) -> str:
    """'' when all values are finite, else e.g. '2 NaN, 1 inf'."""
    nan, inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
    return ", ".join(f"{n} {what}" for n, what in ((nan, "NaN"), (inf, "inf")) if n)


def _caption(lines: list[str]) -> str:
    """A plain, centred caption; spaces on both sides of each line leave room for a wider font."""
    return "\\n".join(f"{pad}{_ascii(line)}{pad}" for line in lines for pad in [_slack(line, SLACK / 2)])


SMALL = 4  # tensors with at most this many elements show every value (and every gradient entry)


def _entries(a: np.ndarray) -> str | None:
    """'9' for one element, '[1 -2 0.5]' (flattened, 4 significant digits) up to SMALL, else None."""
    if a.size == 1:
        return _number(a.reshape(-1)[0])
    if a.size <= SMALL:
        return "[" + " ".join(_number(v) for v in a.reshape(-1)) + "]"
    return None


def _values(a: np.ndarray) -> str:
    """Every value of a small array, else mean and std of the finite ones."""
    if a.size == 0:
        return "empty"
    entries = _entries(a)
    if entries is not None:
        return f"{'value' if a.size == 1 else 'values'} {entries}"
    finite = a[np.isfinite(a)]
    if finite.size == 0:
        return "no finite values"
    return f"mean {_number(finite.mean())} std {_number(finite.std())}"


def _grad(g: np.ndarray) -> str:
    """The gradient itself when small (so a learner can check it by hand), else the norm of its finite part."""
    entries = _entries(g)
    if entries is not None:
        return f"grad {entries}"
    return f"grad norm {_number(np.linalg.norm(g[np.isfinite(g)].astype(np.float64)))}"


def _op_line(t) -> str:
    """'<b>conv2d</b>   stride=2 pad=1' for an op result (room after the name for a wider bold font); the
    hyper-parameters as the op's facts show them (ops/facts.py), each cut to 24 characters."""
    args = " ".join(a if len(a) <= 24 else a[:21] + "..." for a in label_args(t))
    if not args:
        return f"<b>{_text(t.op)}</b>"
    return f"<b>{_text(t.op)}</b>{_slack(t.op, BOLD_SLACK)} {_text(args)}"


def _shape(t) -> str:
    shape = tuple(t.shape)
    return f"{shape if shape else 'scalar'} {np.dtype(t.dtype).name}"


def _slack(text: str, per_char: float = SLACK) -> str:
    """Spaces after ``text`` (its visible characters, tags and entities aside) for a wider fallback font."""
    visible = html.unescape(re.sub(r"<[^>]*>", "", text))
    return " " * math.ceil(per_char * len(visible))


def _row(content: str, colour: str | None = None) -> str:
    inner = f'<font color="{colour}">{content}</font>' if colour else content
    return f"<tr><td>{inner}{_slack(content)}</td></tr>"


def _stale(order: list) -> dict:
    """{id(t): (version the ops used, version now)} for tensors whose data was replaced after an op used it."""
    stale = {}
    for t in order:
        for parent, used in zip(t.parents, getattr(t, "_saved_versions", ()), strict=False):
            now = getattr(parent, "_version", used)
            if now != used:
                stale[id(parent)] = (min(used, stale.get(id(parent), (used,))[0]), now)
    return stale


def _label(t, name: str | None, show_data: bool, show_grad: bool, show_rule: bool,
           stale: tuple | None = None, timing=None) -> tuple[str, bool]:
    """The node's HTML-like label and whether it holds NaN/inf (in data or grad)."""
    data, grad = np.asarray(t.data), t.grad
    rows, bad = [], False
    if name:
        rows.append(_row(f"<b>{_text(name)}</b>"))
    if stale:
        rows.append(_row(f"stale: data replaced after use (version {stale[0]} -&gt; {stale[1]})", STALE_COLOUR))
    if t.op is not None:
        rows.append(_row(_op_line(t)))
        if show_rule and t.rule:
            rows.append(_row(f"<i>{_text(t.rule)}</i>", RULE_COLOUR))
    elif not name:
        rows.append(_row("<i>parameter</i>" if t.requires_grad else "<i>input</i>"))
    rows.append(_row(_text(_shape(t))))
    if timing is not None:
        rows.append(_row(f"fwd {timing.forward * 1e3:.3g} ms, bwd {timing.backward * 1e3:.3g} ms"))
    if show_data:
        rows.append(_row(_text(_values(data))))
        if flag := _nonfinite(data):
            rows.append(_row(_text(flag), BAD_COLOUR))
            bad = True
    if show_grad and grad is not None:
        grad = np.asarray(grad)
        rows.append(_row(_text(_grad(grad))))
        if flag := _nonfinite(grad):
            rows.append(_row(_text(f"grad: {flag}"), BAD_COLOUR))
            bad = True
    table = '<table border="0" cellborder="0" cellspacing="0" cellpadding="1">' + "".join(rows) + "</table>"
    return f"<{table}>", bad


def _kind(t, root) -> str:
    if t is root:
        return "root"
    if not t.parents:
        return "param" if t.requires_grad else "input"
    return "interior"


def _times(drawn: list, profile) -> dict:
    """{id(t): (its profile stats, forward + backward seconds)} of the drawn ops the profile recorded."""
    found = {id(t): profile.node(t) for t in drawn} if profile is not None else {}
    return {key: (stats, stats.forward + stats.backward) for key, stats in found.items() if stats is not None}


def _time_colour(share: float) -> str:
    """White for share 0 to orange (#ff8c1a) for 1: the fill of an op by its share of the slowest op's time."""
    share = min(max(share, 0.0), 1.0) if share == share else 0.0
    return "#ff{:02x}{:02x}".format(round(255 - 115 * share), round(255 - 229 * share))


# --------------------------------------------------------------------------- layout budget


def _collapse_reshapes(order: list, root) -> dict[int, tuple[object, list[str]]]:
    """Reshape-like interior tensors with one parent, mapped to (drawn ancestor, ops skipped).

    Keys are ``id()`` of tensors: only used inside one call, never written into the drawing.
    """
    alias: dict[int, tuple[object, list[str]]] = {}
    for t in order:
        if t is root or not facts_of(t).moves_values or len(t.parents) != 1 or t.name:
            continue
        source, ops = alias.get(id(t.parents[0]), (t.parents[0], []))
        alias[id(t)] = (source, ops + [t.op])
    return alias


@dataclass
class _Plan:
    """What to draw: the tensors, the collapsed ones, and a note about what was left out."""

    drawn: list
    alias: dict
    dropped: set
    note: str | None


def _plan(root, max_nodes: int) -> _Plan:
    order = topo_order(root)
    if max_nodes is None or len(order) <= max_nodes:
        return _Plan(order, {}, set(), None)
    alias = _collapse_reshapes(order, root)
    drawn = [t for t in order if id(t) not in alias]
    dropped = drawn[:-max_nodes] if len(drawn) > max_nodes else []
    drawn = drawn[len(dropped):]
    parts = [f"{len(order)} tensors, over max_nodes={max_nodes}:"]
    if alias:
        ops = sorted({op for _, chain in alias.values() for op in chain})
        parts.append(f"{len(alias)} reshape-like ops ({', '.join(ops)}) drawn as edge labels")
    if dropped:
        parts.append(f"{len(dropped)} tensors nearest the inputs not drawn")
    return _Plan(drawn, alias, {id(t) for t in dropped}, _caption(parts))


# --------------------------------------------------------------------------- the drawing


@dataclass(frozen=True)
class Node:
    """One box: its DOT id (``n0``, ``n1``, ... or ``note``), its label and its attributes.

    ``label`` is HTML-like (``<<table>...</table>>``) when ``html``, else plain text (the note).
    """

    id: str
    label: str
    attrs: dict
    html: bool = True


@dataclass(frozen=True)
class Edge:
    """An arrow from ``tail`` to ``head``; ``label`` is plain text (the reshape-like ops it stands for)."""

    tail: str
    head: str
    label: str | None = None
    attrs: dict = field(default_factory=dict)


@dataclass
class Drawing:
    """Everything :func:`drawing` decided, in Graphviz's terms (attribute dicts), without graphviz.

    ``caption`` holds the graph attributes of the caption (its ``label`` plain text), or is None. ``tensors``
    maps each tensor's node id to the tensor.
    """

    attrs: dict
    caption: dict | None
    node_style: dict
    edge_style: dict
    nodes: list[Node]
    edges: list[Edge]
    tensors: dict = field(default_factory=dict)  # {node id: the tensor it draws} (the explorer's hook)


def drawing(root, rankdir: str = "TB", show_data: bool = True, show_grad: bool = True, params=None,
            max_nodes: int | None = 200, title: str | None = None, show_rule: bool = False,
            profile=None) -> Drawing:
    """What ``tinygrad_cnn.viz.draw_graph`` draws (the options are its options), as a :class:`Drawing`.

    Nodes are ``n0, n1, ...`` in ``topo_order(root)``, so one expression gives the same drawing every run.
    """
    names = {id(t): name for name, t in dict(params or {}).items()}
    plan = _plan(root, max_nodes)
    stale = _stale(plan.drawn)
    caption = [title] if title else []
    if show_rule:
        caption.extend(rules_legend(plan.drawn))
    if stale:
        caption.append(STALE_KEY)
    times = _times(plan.drawn, profile)
    if times:
        caption.append(f"fill: forward + backward time, white 0 to orange "
                       f"{max(seconds for _, seconds in times.values()) * 1e3:.3g} ms")
    ids = {id(t): f"n{i}" for i, t in enumerate(plan.drawn)}
    nodes = [Node(ids[id(t)], *_box(t, root, names.get(id(t), t.name), show_data, show_grad, show_rule, stale,
                                    times)) for t in plan.drawn]
    if plan.note:
        nodes.insert(0, Node("note", plan.note, {"shape": "note", "style": "filled", "fillcolor": NOTE_COLOUR},
                             html=False))
    return Drawing(attrs={"rankdir": rankdir, **GRAPH_STYLE},
                   caption={"label": _caption(caption), **CAPTION_STYLE} if caption else None,
                   node_style=NODE_STYLE, edge_style=EDGE_STYLE, nodes=nodes, edges=_edges(plan, ids),
                   tensors={ids[id(t)]: t for t in plan.drawn})


def _box(t, root, name: str | None, show_data: bool, show_grad: bool, show_rule: bool, stale: dict,
         times: dict):
    """(label, attributes) of a tensor's node: its fill colour by kind (by time when profiled), a red or dashed
    orange outline."""
    stats, seconds = times.get(id(t), (None, None))
    label, bad = _label(t, name, show_data, show_grad, show_rule, stale.get(id(t)), stats)
    extra = {"color": BAD_COLOUR, "penwidth": "2"} if bad else {}
    if id(t) in stale:
        extra = {"color": BAD_COLOUR if bad else STALE_COLOUR, "penwidth": "2", "style": "rounded,filled,dashed"}
    slowest = max(s for _, s in times.values()) if times else 0.0
    fill = COLOURS[_kind(t, root)] if stats is None else _time_colour(seconds / slowest if slowest > 0 else 0.0)
    return label, {"fillcolor": fill, **extra}


def _edges(plan: _Plan, ids: dict) -> list[Edge]:
    """One edge per operand, from its drawn source (labelled with the reshape-like ops skipped on the way);
    one dashed edge from the note to each tensor with an operand left out."""
    edges = []
    for t in plan.drawn:
        from_note = False
        for parent in t.parents:
            source, via = plan.alias.get(id(parent), (parent, []))
            if id(source) in plan.dropped:
                from_note = True  # one edge from the note stands for all parents left out
                continue
            edges.append(Edge(ids[id(source)], ids[id(t)], _ascii(" ".join(via)) if via else None))
        if from_note:
            edges.append(Edge("note", ids[id(t)], attrs={"style": "dashed"}))
    return edges
