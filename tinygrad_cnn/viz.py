"""Draw the autograd graph of a tensor with Graphviz.

``draw_graph(loss)`` returns a :class:`TensorGraph` (a ``graphviz.Digraph``) with one node per
tensor that leads to ``loss``; ``save_graph(loss, "step.svg")`` also writes it to a file, the
format taken from the extension (``.svg``, ``.png``, ``.pdf``, ``.gv``/``.dot``, ...). In Jupyter
the returned graph shows inline as SVG.

Each node is a small table: the tensor's name (``name=`` on the Tensor or a key of ``params=``),
the op that made it with its hyper-parameters (``conv2d stride=2 pad=1``), shape and dtype, its
values and, after ``backward()``, its gradient: in full for tensors of at most four elements (so a
learner can check them by hand), else mean and std of the values and the norm of the gradient.
NaN and inf are flagged in red.

Colour legend (as in torchviz):

- light blue (lightblue): parameters, leaves with ``requires_grad=True``
- light grey (gray90): inputs and constants, leaves without ``requires_grad``
- white: intermediate results
- green (darkolivegreen1): the root, the tensor that was drawn (usually the loss)
- red outline and red text: the tensor or its gradient holds NaN or inf
- yellow note (lightyellow): what was simplified or left out past ``max_nodes`` tensors
- dashed orange outline, "stale" row: the tensor's ``.data`` was replaced after the ops drawn below it used it
  (an optimizer step, say): its values are newer than the ones the graph computed with, and a caption says so
- dark grey italics: the backward rule of the op (``show_rule=True``)

Rendering needs a Graphviz layout program; the ``graphviz`` Python package alone has none. One
is looked for in this order: the program named by the environment variable
``TINYGRAD_CNN_DOT`` (when set, it must exist), the system Graphviz ``dot`` on PATH, then
``graphviz-pure`` (installed by ``.venv/bin/pip install -e ".[viz]"``; svg and png, no pdf) on PATH
or next to the running Python.
Without one, building the graph, ``.source`` and saving ``.gv`` still work, and rendering raises
:class:`RendererNotFound` (a ``graphviz.ExecutableNotFound``) saying what to install.
"""

from __future__ import annotations

import functools
import html
import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import graphviz
import numpy as np

from .graph import topo_order
from .ops.facts import facts_of, label_args, rules_legend

__all__ = ["draw_graph", "save_graph", "find_renderer", "TensorGraph", "RendererNotFound", "RENDERER_ENV"]

RENDERER_ENV = "TINYGRAD_CNN_DOT"

COLOURS = {"param": "lightblue", "input": "gray90", "interior": "white", "root": "darkolivegreen1"}
NOTE_COLOUR = "lightyellow"
RULE_COLOUR = "gray35"
BAD_COLOUR = "red"
STALE_COLOUR = "darkorange"
STALE_KEY = ("dashed orange (stale): .data replaced after the forward (e.g. an optimizer step); the values shown are "
             "newer than the ones the graph computed with")


# Formats graphviz-pure cannot write (it has svg, png, jpeg and the text formats).
SYSTEM_GRAPHVIZ_ONLY = frozenset({"pdf", "ps", "ps2", "eps", "gif", "bmp", "tif", "tiff", "webp"})
SOURCE_SUFFIXES = frozenset({"gv", "dot"})
FORMAT_ALIASES = {"jpg": "jpeg", "jpe": "jpeg", "tif": "tiff"}

INSTALL_HINT = (
    "To render, install a Graphviz layout program, one of:\n"
    '  .venv/bin/pip install -e ".[viz]"   (from a clone; graphviz-pure: svg and png, nothing else needed)\n'
    "  apt install graphviz  /  brew install graphviz  /  conda install graphviz"
    "   (system Graphviz: every format, pdf too)\n"
    f"or set {RENDERER_ENV} to the path of a dot program."
)




# --------------------------------------------------------------------------- errors


class RendererNotFound(graphviz.ExecutableNotFound):
    """No Graphviz layout program that can write the asked format was found.

    Subclasses ``graphviz.ExecutableNotFound`` so code that catches that still works.
    """

    def __init__(self, message: str):
        RuntimeError.__init__(self, message)  # ExecutableNotFound.__init__ wants a command line

    def with_source(self, source_path: str | os.PathLike) -> RendererNotFound:
        """The same error, also saying where the DOT source was written."""
        return RendererNotFound(f"{self}\nThe DOT source was written to {source_path}.")


# --------------------------------------------------------------------------- renderers


@dataclass(frozen=True)
class Renderer:
    """A layout program: its path and whether it is graphviz-pure (no pdf) or a real Graphviz."""

    path: str
    pure: bool

    def can_write(self, fmt: str) -> bool:
        return not (self.pure and fmt in SYSTEM_GRAPHVIZ_ONLY)


def python_scripts_dir() -> Path:
    """Where pip puts console scripts for the running Python (a venv's ``bin``)."""
    return Path(sys.executable).parent


@functools.lru_cache(maxsize=None)
def _is_graphviz_pure(path: str) -> bool:
    """Ask the program for its version: graphviz-pure says so (the system dot says 'graphviz')."""
    if Path(path).name.startswith("graphviz-pure"):
        return True
    try:
        proc = subprocess.run([path, "-V"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "graphviz-pure" in proc.stdout + proc.stderr


def _candidates() -> list[tuple[str, str | None]]:
    """(where it was looked for, path or None), in the order of preference."""
    env = os.environ.get(RENDERER_ENV)
    where = f"${RENDERER_ENV}={env!r}" if env else f"${RENDERER_ENV} (unset)"
    found = [(where, shutil.which(env) if env else None)]
    found.append(("dot on PATH", shutil.which("dot")))
    found.append(("graphviz-pure on PATH", shutil.which("graphviz-pure")))
    scripts = python_scripts_dir()
    found.append((f"graphviz-pure in {scripts}", shutil.which("graphviz-pure", path=str(scripts))))
    return found


def find_renderer(fmt: str = "svg") -> Renderer:
    """The first layout program that can write ``fmt``, or raise :class:`RendererNotFound`."""
    fmt = FORMAT_ALIASES.get(fmt, fmt)
    env = os.environ.get(RENDERER_ENV)
    if env and not shutil.which(env):  # set on purpose: falling back silently would hide a typo
        raise RendererNotFound(
            f"Cannot render {fmt}: {RENDERER_ENV}={env!r} is not an executable program. "
            f"Fix the path, or unset {RENDERER_ENV} to use dot or graphviz-pure."
        )
    searched = _candidates()
    found = [Renderer(path, _is_graphviz_pure(path)) for _, path in searched if path]
    for renderer in found:
        if renderer.can_write(fmt):
            return renderer
    if found:
        raise RendererNotFound(
            f"Cannot render {fmt}: graphviz-pure ({found[0].path}) writes svg and png but not {fmt}.\n"
            f"{fmt} needs the system Graphviz (apt install graphviz / brew install graphviz), "
            "or save as .svg or .png instead."
        )
    looked = "; ".join(where for where, _ in searched)
    raise RendererNotFound(
        f"Cannot render {fmt}: no Graphviz layout program found (looked for: {looked}).\n"
        f"The graph itself is fine: .source holds its DOT text and .save('graph.gv') writes it.\n"
        f"{INSTALL_HINT}"
    )


# --------------------------------------------------------------------------- the graph object


class TensorGraph(graphviz.Digraph):
    """A ``graphviz.Digraph`` that renders with :func:`find_renderer` instead of ``dot`` by name.

    ``.source``, ``.save()`` and everything else of ``graphviz.Digraph`` work as usual;
    ``pipe``, ``render`` and the Jupyter display use the renderer found, and raise
    :class:`RendererNotFound` (or show its message, in Jupyter) when there is none.
    """

    def pipe(self, format=None, renderer=None, formatter=None, neato_no_op=None, quiet=False,
             *, engine=None, encoding=None):
        """Render to bytes (or to ``str`` when ``encoding`` is given), like ``Digraph.pipe``."""
        fmt = FORMAT_ALIASES.get(format or self.format, format or self.format)
        program = find_renderer(fmt)
        out_format = ":".join(part for part in (fmt, renderer, formatter) if part)
        cmd = [program.path, f"-K{engine or self.engine}", f"-T{out_format}"]
        if neato_no_op:
            cmd.append(f"-n{int(neato_no_op)}")
        proc = subprocess.run(cmd, input=self.source.encode(self.encoding), capture_output=True)
        if proc.returncode != 0:
            raise graphviz.CalledProcessError(proc.returncode, cmd, proc.stdout, proc.stderr)
        if proc.stderr and not quiet:
            sys.stderr.write(proc.stderr.decode(errors="replace"))
        out = _svg_fonts(proc.stdout) if fmt == "svg" else proc.stdout
        return out.decode(encoding) if encoding else out

    def write(self, path: str | os.PathLike) -> str:
        """Write the drawing to ``path``, the format taken from its extension; return the path.

        ``.gv``/``.dot`` write the DOT source and need no renderer. For other formats, when no
        renderer can write it, the source is written next to ``path`` (same name, ``.gv``) and
        the :class:`RendererNotFound` raised says so.
        """
        path = Path(path)
        fmt = path.suffix.lstrip(".").lower()
        if not fmt:
            raise ValueError(f"{path}: give an extension (.svg, .png, .pdf, .gv, ...) to choose the format")
        if fmt in SOURCE_SUFFIXES:
            path.write_text(self.source, encoding=self.encoding)
            return str(path)
        try:
            data = self.pipe(format=fmt)
        except RendererNotFound as error:
            source = path.with_suffix(".gv")
            source.write_text(self.source, encoding=self.encoding)
            raise error.with_source(source) from None
        path.write_bytes(data)
        return str(path)

    def render(self, filename=None, directory=None, view=False, cleanup=False, format=None,
               renderer=None, formatter=None, neato_no_op=None, quiet=False, quiet_view=False,
               *, outfile=None, engine=None, **_ignored):
        """Save the source and render it next to it, like ``Digraph.render``; return the output path."""
        fmt = format or (Path(outfile).suffix.lstrip(".") if outfile else self.format)
        if filename is None and outfile is not None:
            filename = Path(outfile).with_suffix(".gv").name
            directory = directory or str(Path(outfile).parent)
        source = self.save(filename, directory=directory)
        try:
            data = self.pipe(format=fmt, renderer=renderer, formatter=formatter,
                             neato_no_op=neato_no_op, quiet=quiet, engine=engine)
        except RendererNotFound as error:
            raise error.with_source(source) from None
        out = Path(outfile) if outfile else Path(f"{source}.{fmt}")
        out.write_bytes(data)
        if cleanup:
            os.remove(source)
        if view:
            graphviz.view(out, quiet=quiet_view)
        return str(out)

    def _repr_mimebundle_(self, include=None, exclude=None, **kwargs):
        """Inline SVG in Jupyter; without a renderer, the message of what to install as text."""
        try:
            return super()._repr_mimebundle_(include, exclude, **kwargs)
        except RendererNotFound as error:
            return {"text/plain": str(error)}

    def _repr_svg_(self):
        """SVG for front ends that ask for it alone; ``None`` (nothing to show) without a renderer."""
        try:
            return self.pipe(format="svg", encoding="utf-8")
        except RendererNotFound:
            return None


# --------------------------------------------------------------------------- labels


def _ascii(value) -> str:
    """Printable ASCII: other characters become Python-style backslash escapes ('caf\\xe9')."""
    return str(value).encode("unicode_escape").decode("ascii")


def _plain(value) -> str:
    """ASCII for a plain (not HTML-like) label; ``nohtml`` so '<x>' is not taken as HTML."""
    return graphviz.nohtml(_ascii(value))


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


# Graphviz places each text by Helvetica's widths, from its left end. A browser without Helvetica or a
# metric-compatible font (Arial, Liberation Sans, Nimbus Sans) draws it wider: DejaVu Sans, the usual Linux
# fallback, by up to about 12% (bold more). Spaces after each text leave it that room, and the SVG asks for
# the metric-compatible fonts first (tools/check_svg_fonts.py measures the result in Chromium).
SLACK = 0.25  # spaces per character after a line
BOLD_SLACK = 0.2  # after a bold op name, before its settings
SVG_FONTS = "Helvetica,Arial,Liberation Sans,Nimbus Sans,DejaVu Sans,sans-serif"


def _svg_fonts(svg: bytes) -> bytes:
    """The SVG with Graphviz's font-family="Helvetica,sans-Serif" widened to :data:`SVG_FONTS`."""
    return svg.replace(b'font-family="Helvetica,sans-Serif"', f'font-family="{SVG_FONTS}"'.encode())


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
           stale: tuple | None = None) -> tuple[str, bool]:
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


# --------------------------------------------------------------------------- public API


def draw_graph(root, rankdir: str = "TB", show_data: bool = True, show_grad: bool = True,
               params=None, max_nodes: int | None = 200, title: str | None = None,
               show_rule: bool = False) -> TensorGraph:
    """Draw every tensor that leads to ``root``; return a :class:`TensorGraph`.

    Args:
        root: the tensor to draw, usually the loss.
        rankdir: "TB" (top to bottom, good for networks) or "LR" (good for small expressions).
        show_data: show a summary of each tensor's values.
        show_grad: show each tensor's gradient, once ``backward()`` has filled it.
        params: names for tensors, ``{"W1": W1, ...}`` or pairs ``(name, tensor)``; they win
            over ``Tensor.name``.
        max_nodes: node budget. Past it reshape-like ops are drawn as edge labels, then the
            tensors farthest from ``root`` are left out; a note node says what was done.
            ``None`` draws everything.
        title: a caption under the drawing.
        show_rule: under each op, the rule its backward applies (e.g. ``da = g*b, db = g*a`` for
            mul), so the gradients shown can be followed by hand.

    Nodes are ``n0, n1, ...`` in ``topo_order(root)``, so one expression gives the same source
    every run. See the module docstring for the colour legend.
    """
    names = {id(t): name for name, t in dict(params or {}).items()}
    plan = _plan(root, max_nodes)
    graph = TensorGraph(name="tinygrad_cnn", format="svg")
    graph.attr(rankdir=rankdir, nodesep="0.25", ranksep="0.35")
    stale = _stale(plan.drawn)
    caption = [title] if title else []
    if show_rule:
        caption.extend(rules_legend(plan.drawn))
    if stale:
        caption.append(STALE_KEY)
    if caption:
        graph.attr(label=graphviz.nohtml(_caption(caption)), labelloc="b", fontname="Helvetica", fontsize="12")
    graph.attr("node", shape="box", style="rounded,filled", fontname="Helvetica", fontsize="10",
               margin="0.08,0.04")
    graph.attr("edge", fontname="Helvetica", fontsize="9", arrowsize="0.7")
    ids = {id(t): f"n{i}" for i, t in enumerate(plan.drawn)}
    if plan.note:
        graph.node("note", graphviz.nohtml(plan.note), shape="note", style="filled", fillcolor=NOTE_COLOUR)
    for t in plan.drawn:
        label, bad = _label(t, names.get(id(t), t.name), show_data, show_grad, show_rule, stale.get(id(t)))
        extra = {"color": BAD_COLOUR, "penwidth": "2"} if bad else {}
        if id(t) in stale:
            extra = {"color": BAD_COLOUR if bad else STALE_COLOUR, "penwidth": "2", "style": "rounded,filled,dashed"}
        graph.node(ids[id(t)], label, fillcolor=COLOURS[_kind(t, root)], **extra)
    for t in plan.drawn:
        from_note = False
        for parent in t.parents:
            source, via = plan.alias.get(id(parent), (parent, []))
            if id(source) in plan.dropped:
                from_note = True  # one edge from the note stands for all parents left out
                continue
            graph.edge(ids[id(source)], ids[id(t)], label=_plain(" ".join(via)) if via else None)
        if from_note:
            graph.edge("note", ids[id(t)], style="dashed")
    return graph


def save_graph(root, path: str | os.PathLike, **options) -> TensorGraph:
    """Draw ``root`` (options as :func:`draw_graph`) and write it to ``path``; return the graph.

    The format comes from the extension: ``.svg`` and ``.png`` with any renderer, ``.pdf`` with
    the system Graphviz, ``.gv``/``.dot`` (the DOT source) with none.
    """
    graph = draw_graph(root, **options)
    graph.write(path)
    return graph
