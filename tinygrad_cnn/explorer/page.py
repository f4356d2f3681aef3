"""The explorer page: the drawn graph (SVG), the data of every drawn tensor, and the page's own CSS and script,
in one HTML document that requests nothing (no CDN, no web font, no image by address).

``build_graph`` draws the graph and gathers every tensor's data, ``precompute`` adds a saved page's explanations,
``render`` writes the document (``live`` for the server, whose page asks for explanations on demand).

The SVG is ``draw_graph``'s (``viz.build.drawing`` rendered by ``viz.render.to_graph``, so the drawing's
``tensors`` give each node's tensor), post-processed here: each node's ``<g class="node">`` gets ``data-node``
(its name as drawn), ``tabindex="0"``, ``role="button"`` and an ``aria-label``, so Tab and Enter reach every
node.

May import: ``viz`` (the drawing; its render module, and so graphviz, only when a page is made),
``explorer.nodes``, the standard library. Used by ``explorer`` and its server.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from importlib import resources

from ..graph import topo_order
from ..viz.build import drawing
from . import nodes

STATIC = "static"
NODE_GROUP = re.compile(r'<g id="(node\d+)" class="node">\s*<title>([^<]*)</title>')
# the saved page may load nothing at all; the live one may also ask its own server for explanations
SAVED_POLICY = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:"
LIVE_POLICY = SAVED_POLICY + "; connect-src 'self'"


@dataclass
class Graph:
    """A drawn graph: its SVG (with the page's hooks), {data-node name: tensor}, and each tensor's facts."""

    root: object
    svg: str
    tensors: dict
    facts: dict


def _consumers(root) -> dict:
    """{id(t): [the tensors whose op used t]} over root's graph."""
    used = {}
    for t in topo_order(root):
        for p in t.parents:
            used.setdefault(id(p), []).append(t)
    return used


def hooked_svg(svg: str, names: dict, labels: dict) -> str:
    """The SVG without its XML prologue, each node group carrying data-node, tabindex, role and aria-label."""
    svg = svg[svg.index("<svg"):]

    def hook(match):
        group, node = match.group(1), html.unescape(match.group(2))
        if node not in names:  # the note about what was left out
            return match.group(0)
        name = html.escape(names[node], quote=True)
        label = html.escape(labels[node], quote=True)
        return (f'<g id="{group}" class="node" data-node="{name}" tabindex="0" role="button" '
                f'aria-label="{label}">\n<title>{match.group(2)}</title>')
    return NODE_GROUP.sub(hook, svg)


def build_graph(root, profile=None, params=None, top: int = 3, **draw_options) -> Graph:
    """Draw root's graph (``draw_graph`` options; show_rule on unless given) and gather each drawn tensor's facts;
    ``top``: how many of each tensor's largest |grad| entries the page lists."""
    draw_options.setdefault("show_rule", True)
    from ..viz.render import to_graph  # graphviz loads when a page is made, not when tinygrad_cnn is imported

    plan = drawing(root, params=params, profile=profile, **draw_options)
    svg = to_graph(plan).pipe(format="svg", encoding="utf-8")
    names = nodes.drawn_names(plan.tensors, params)
    used = _consumers(root)
    facts, tensors, labels = {}, {}, {}
    for node, t in plan.tensors.items():
        name = names[node]
        tensors[name] = t
        facts[name] = nodes.node_facts(t, node, name, root, used.get(id(t), []), profile)
        has_grad = t.requires_grad and t.grad is not None
        facts[name]["top"] = [nodes.entry_text(i) for i in nodes.top_entries(t.grad, top)] if has_grad else []
        labels[node] = f"{name}: {t.op_label}" if t.op else f"{name}: {facts[name]['kind']}"
    return Graph(root, hooked_svg(svg, names, labels), tensors, facts)


def precompute(graph: Graph, explain_top: int = 3, extra=()) -> None:
    """Fill each node's ``explained``: its ``explain_top`` largest |grad| entries, and the (tensor, index) pairs
    of ``extra`` (a tensor not drawn raises ValueError)."""
    by_id = {id(t): name for name, t in graph.tensors.items()}
    wanted = []
    for name, t in graph.tensors.items():
        if t.requires_grad and t.grad is not None:
            wanted += [(name, index) for index in nodes.top_entries(t.grad, explain_top)]
    for t, index in extra:
        if id(t) not in by_id:
            raise ValueError("save_html: explain= names a tensor that is not drawn (not in root's graph, or left "
                             "out past max_nodes)")
        index = (index,) if isinstance(index, int) else tuple(index)
        wanted.append((by_id[id(t)], nodes.parse_entry(nodes.entry_text(index), t.shape)))
    for name, index in wanted:
        found = graph.facts[name]["explained"]
        key = nodes.entry_text(index)
        if key not in found:
            found[key] = nodes.explanation(graph.root, graph.tensors[name], index)


def default_title(root) -> str:
    return f"tinygrad_cnn explorer: {root.name or root.op_label or 'a tensor'}"


def _static(name: str) -> str:
    return resources.files(__package__).joinpath(STATIC, name).read_text(encoding="utf-8")


def _script_json(data) -> str:
    """JSON safe inside a <script> element (no '</' that would close it)."""
    return json.dumps(data, separators=(",", ":")).replace("</", "<\\/")


def render(graph: Graph, title: str, live: bool, token: str = "", profile=None) -> str:
    """The whole HTML document."""
    root_name = next((name for name, t in graph.tensors.items() if t is graph.root), "root")
    data = {"live": live, "token": token, "root": root_name, "nodes": graph.facts,
            "profile": None if profile is None else {"total-ms": profile.total * 1e3,
                                                     "ops-ms": profile.op_time * 1e3}}
    values = {"TITLE": html.escape(title), "POLICY": LIVE_POLICY if live else SAVED_POLICY,
              "CSS": _static("explorer.css"), "SVG": graph.svg, "DATA": _script_json(data),
              "SCRIPT": _static("explorer.js")}
    return re.sub(r"\{\{([A-Z]+)\}\}", lambda m: values[m.group(1)], _static("explorer.html"))
