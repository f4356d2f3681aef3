"""The explorer: the graph of a tensor in the browser; click a node to see its numbers, an entry of its heat map to
see why its gradient is what it is, and, with a profile, where the time and memory went.

    server = explore(loss, profile=prof)          # live: 127.0.0.1, a free port, a token; explain on demand
    save_html(loss, "step.html", profile=prof)    # one self-contained file; precomputed explanations

The page (both forms) shows ``draw_graph``'s drawing (same labels, rules and stale marks; ``max_nodes`` applies;
zoom with the buttons, + and -, or ctrl+wheel) and a side panel for the node chosen: its name, op, rule, the
file:line that made it (recorded inside ``profile()`` or ``detect_anomaly()``), shape, dtype, value and gradient
statistics, forward/backward time and saved bytes when profiled, and the value and gradient as heat maps (an
NHWC tensor as one map per channel of the image chosen; a conv filter bank as one (f_h, f_w) map per output
channel; large tensors capped, the page saying "showing first k of n ..."). Tab and Enter reach every node; the
arrow keys move through a heat map and Enter explains the entry.

Stable hooks (for tests and scripts; kept as they are):

- each drawn node's SVG group ``g.node`` has ``data-node``: its name as drawn (``params=`` names first, else
  ``Tensor.name``, so parameters by their dotted names), its DOT id (``n7``) when unnamed, ``name@n7`` when two
  drawn tensors share a name (``node_names`` gives the same mapping in Python);
- the panel is ``#panel``, its ``data-node`` the node shown; its fields ``[data-field="kind|op|rule|created-at|
  shape|dtype|value-mean|value-std|value-min|value-max|grad-norm|grad-mean|grad-std|grad-max-abs|forward-ms|
  backward-ms|saved-bytes"]``, numbers with their exact value (Python's repr) in ``data-value``; statistics are
  over every entry in float64 (std with ddof 0), ``shape`` reads as Python prints the tuple;
- heat maps ``[data-map="value"]`` and ``[data-map="grad"]``, their cells ``[data-entry="i,j,k,l"]`` (the
  entry's full index), those with a precomputed explanation also ``[data-explained]``; image pickers
  ``button[data-sample="i"]``; buttons ``[data-goto="i,j,k,l"]`` for the explained (saved page) or largest
  |grad| entries;
- the explanation ``#explain``, with ``data-entry``, ``data-total`` (the sum of its terms) and ``data-grad``
  (the gradient entry), ``data-precomputed`` when it came with a saved page.

May import: ``explorer.page``, ``explorer.server``, the standard library; IPython only when it is running.
"""

from __future__ import annotations

import os
import sys
import webbrowser

from ..viz.build import drawing
from . import page
from .nodes import drawn_names
from .server import ExplorerServer

__all__ = ["explore", "save_html", "ExplorerServer", "node_names"]


def explore(root, profile=None, open_browser: bool = True, page_title: str | None = None,
            **options) -> ExplorerServer:
    """Serve the explorer of root's graph on 127.0.0.1 (a free port, a random token in ``server.url``).

    profile: a ``tinygrad_cnn.profile()`` that ran the forward and backward (times and saved bytes shown), or
    None. open_browser: open ``server.url`` in the default browser. In Jupyter the page also shows inline.
    page_title: the page's title (default: the root's name or op).
    options: ``draw_graph``'s (``params``, ``max_nodes``, ``show_rule`` (on by default), ``rankdir``, ``title``).
    Returns the running :class:`ExplorerServer`: ``server.close()`` stops it, as does leaving ``with
    explore(...) as server:`` or the process ending.
    """
    server = ExplorerServer(root, profile, page_title, **options)
    if open_browser:
        webbrowser.open(server.url)
    _show_inline(server)
    return server


def save_html(root, path, profile=None, explain_top: int = 3, explain=(), page_title: str | None = None,
              **options) -> str:
    """Write the explorer of root's graph to ``path``: one HTML file with the SVG, data, script and style inline,
    that requests nothing from any address. Returns the path.

    explain_top: how many of each tensor's largest |grad| entries come with their explanation; explain: more
    ``(tensor, index)`` pairs to precompute. Other entries show the Python line that explains them.
    profile, page_title and options as :func:`explore`.
    """
    title = page_title or page.default_title(root)
    graph = page.build_graph(root, profile, top=explain_top, **options)
    page.precompute(graph, explain_top, explain)
    with open(path, "w", encoding="utf-8") as f:
        f.write(page.render(graph, title, live=False, profile=profile))
    return os.fspath(path)


def node_names(root, params=None, max_nodes: int | None = 200) -> dict:
    """{data-node name: tensor} for the nodes the page draws of root's graph (the names of the hooks above)."""
    tensors = drawing(root, params=params, max_nodes=max_nodes, show_data=False, show_grad=False).tensors
    names = drawn_names(tensors, params)
    return {names[node]: t for node, t in tensors.items()}


def _show_inline(server: ExplorerServer) -> None:
    """In a Jupyter kernel, display the page in an IFrame below the cell."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    if shell is None or getattr(shell, "kernel", None) is None:
        return
    from IPython.display import IFrame, display
    display(IFrame(server.url, width="100%", height=720))
