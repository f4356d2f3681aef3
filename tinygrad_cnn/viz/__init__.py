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

Two modules: ``build.py`` decides what is drawn (nodes, labels, colours, the summary past ``max_nodes``, the
legend) without graphviz; ``render.py`` turns that into a ``graphviz.Digraph`` and runs the layout program.
graphviz is imported only when something is drawn: ``draw_graph``/``save_graph`` import ``render.py`` when
called, and its names (``TensorGraph``, ``RendererNotFound``, ``find_renderer``, ``RENDERER_ENV``) load it when
first looked up here. This package imports only its two modules (``render.py`` lazily).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .build import drawing

if TYPE_CHECKING:
    from .render import TensorGraph

__all__ = ["draw_graph", "save_graph", "find_renderer", "TensorGraph", "RendererNotFound", "RENDERER_ENV"]

_FROM_RENDER = frozenset({"find_renderer", "TensorGraph", "RendererNotFound", "RENDERER_ENV"})


def __getattr__(name: str):
    """The names that need graphviz, loaded on first use (so ``import tinygrad_cnn`` does not load graphviz)."""
    if name in _FROM_RENDER:
        from . import render
        return getattr(render, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _FROM_RENDER)


def draw_graph(root, rankdir: str = "TB", show_data: bool = True, show_grad: bool = True,
               params=None, max_nodes: int | None = 200, title: str | None = None,
               show_rule: bool = False, profile=None) -> TensorGraph:
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
        profile: a ``tinygrad_cnn.profile()`` that ran the forward and backward: each op shows its
            forward and backward ms and is filled by its time, white (none) to orange (the slowest).

    Nodes are ``n0, n1, ...`` in ``topo_order(root)``, so one expression gives the same source
    every run. See the module docstring for the colour legend.
    """
    from .render import to_graph
    return to_graph(drawing(root, rankdir=rankdir, show_data=show_data, show_grad=show_grad, params=params,
                            max_nodes=max_nodes, title=title, show_rule=show_rule, profile=profile))


def save_graph(root, path: str | os.PathLike, **options) -> TensorGraph:
    """Draw ``root`` (options as :func:`draw_graph`) and write it to ``path``; return the graph.

    The format comes from the extension: ``.svg`` and ``.png`` with any renderer, ``.pdf`` with
    the system Graphviz, ``.gv``/``.dot`` (the DOT source) with none.
    """
    graph = draw_graph(root, **options)
    graph.write(path)
    return graph
