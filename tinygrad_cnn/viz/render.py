"""Render a drawing: find a Graphviz layout program and run it; the only module of the package that imports graphviz.

:func:`to_graph` turns a :class:`~tinygrad_cnn.viz.build.Drawing` into a :class:`TensorGraph`, a
``graphviz.Digraph`` whose ``pipe``, ``render``, ``write`` and Jupyter display run the layout program that
:func:`find_renderer` found (``TINYGRAD_CNN_DOT``, the system ``dot``, or graphviz-pure) and widen the SVG's
font list. Without one, rendering raises :class:`RendererNotFound` (a ``graphviz.ExecutableNotFound``) saying
what to install.

Imported only when something is drawn (``tinygrad_cnn.viz`` loads it lazily). May import graphviz and the
standard library; nothing of the package (the Drawing is read by its fields).
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import graphviz

RENDERER_ENV = "TINYGRAD_CNN_DOT"

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

# Graphviz writes font-family="Helvetica,sans-Serif"; a browser without Helvetica should take a metric-compatible
# font before DejaVu Sans (build.py's SLACK leaves room for that one; tools/check_svg_fonts.py measures it).
SVG_FONTS = "Helvetica,Arial,Liberation Sans,Nimbus Sans,DejaVu Sans,sans-serif"


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


def _svg_fonts(svg: bytes) -> bytes:
    """The SVG with Graphviz's font-family="Helvetica,sans-Serif" widened to :data:`SVG_FONTS`."""
    return svg.replace(b'font-family="Helvetica,sans-Serif"', f'font-family="{SVG_FONTS}"'.encode())


# --------------------------------------------------------------------------- the graph object


class TensorGraph(graphviz.Digraph):
    """A ``graphviz.Digraph`` that renders with :func:`find_renderer` instead of ``dot`` by name.

    ``.source``, ``.save()`` and everything else of ``graphviz.Digraph`` work as usual. graphviz runs the
    program ``dot`` by name, with no per-graph setting of which program, so the two methods that run one
    are overridden with graphviz's signatures: ``pipe`` (which the Jupyter display calls too) and ``render``.
    ``write`` is ours (``save_graph``). Without a renderer they raise :class:`RendererNotFound`; the Jupyter
    display shows its message instead.
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
        """Inline SVG in Jupyter (graphviz's, through our ``pipe``); without a renderer, the message as text."""
        try:
            return super()._repr_mimebundle_(include, exclude, **kwargs)
        except RendererNotFound as error:
            return {"text/plain": str(error)}


def to_graph(drawing) -> TensorGraph:
    """The :class:`TensorGraph` of a ``build.Drawing``: its labels HTML-like where ``node.html``, else plain."""
    graph = TensorGraph(name="tinygrad_cnn", format="svg")
    graph.attr(**drawing.attrs)
    if drawing.caption:
        graph.attr(**{**drawing.caption, "label": graphviz.nohtml(drawing.caption["label"])})
    graph.attr("node", **drawing.node_style)
    graph.attr("edge", **drawing.edge_style)
    for node in drawing.nodes:
        graph.node(node.id, node.label if node.html else graphviz.nohtml(node.label), **node.attrs)
    for edge in drawing.edges:
        graph.edge(edge.tail, edge.head, label=graphviz.nohtml(edge.label) if edge.label else None, **edge.attrs)
    return graph
