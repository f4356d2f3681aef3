"""The picture of an explanation (``Explanation.plot``): for each conv/pool op that used x as its image input,
the input plane of x's channel with the pixel marked and the windows that cover it, beside the output-gradient
plane with the gradients those windows carry. matplotlib is imported here only (the ``plot`` extra).

No label can overlap another: what each window adds is listed in a legend under its panel (one distinct colour per
window), titles are wrapped to the panel's width, and the values written in the output cells get a font size that
fits the cells (none when the cells are too small to hold one).
"""

from __future__ import annotations

import textwrap

import numpy as np

from .ops.facts import facts_of

PLOT_HINT = 'explain(...).plot() needs matplotlib: .venv/bin/pip install -e ".[plot]"'
TITLE_WIDTH = 48  # characters per title line: two panels side by side in a 10-inch figure, at font size 9


def pyplot(hint: str = PLOT_HINT):
    """matplotlib.pyplot (the Agg backend unless an inline one is set); ImportError saying ``hint`` without it."""
    try:
        import matplotlib
        if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
            matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as e:
        raise ImportError(hint) from e
    return plt


def plottable(explanation) -> list:
    """The consumers a picture fits: conv2d/max_pool2d/avg_pool2d ops that took x as their image (input 0)."""
    return [c for c in explanation.consumers if c.geometry is not None]


def plot_explanation(explanation, path=None):
    """Draw the plottable consumers of ``explanation`` (one row each); save a png at ``path``; return the figure."""
    drawn = plottable(explanation)
    if not drawn:
        ops = ", ".join(f"{c.out.op} (input {c.input})" for c in explanation.consumers) or "no op"
        raise ValueError(f"plot: a picture fits conv2d/max_pool2d/avg_pool2d ops that take {explanation.x_name} "
                         f"as their image (input 0); {explanation.x_name} is used by {ops}. "
                         "print(explanation) lists its terms instead.")
    plt = pyplot()
    legend_rows = [int(np.ceil(len(c.windows) / LEGEND_COLUMNS)) for c in drawn]
    heights = [4.6 + 0.16 * rows for rows in legend_rows]
    fig, axes = plt.subplots(len(drawn), 2, figsize=(10, sum(heights) + 0.6), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    cells = []
    for (left_ax, right_ax), c in zip(axes, drawn, strict=True):
        windows = sorted(c.windows)
        colours = _colours(plt, len(windows))
        _input_panel(plt, left_ax, explanation, c, windows, colours)
        cells.append(_gradient_panel(plt, fig, right_ax, explanation, c, windows, colours))
    fig.suptitle(f"why {explanation.x_name}.grad[{','.join(map(str, explanation.index))}] = {explanation.grad:.6g} "
                 f"(sum of {len(explanation.terms)} terms: {explanation.total:.6g})", fontsize=11)
    others = [c for c in explanation.consumers if c not in drawn]
    if others:
        fig.text(0.5, 0.005, "not drawn (no picture fits): " + ", ".join(c.out.op_label for c in others),
                 ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.25 / fig.get_figheight() if others else 0, 1, 1 - 0.4 / fig.get_figheight()))
    for ax, values in cells:  # once the layout is known: the font that fits a cell
        _write_cells(fig, ax, values)
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


LEGEND_COLUMNS = 3


def _colours(plt, n: int) -> list:
    """n distinct colours: matplotlib's tab10, then tab20, then evenly spaced hues."""
    import matplotlib
    name = "tab10" if n <= 10 else "tab20" if n <= 20 else "hsv"
    cmap = matplotlib.colormaps[name]
    return [cmap(k if name != "hsv" else k / n) for k in range(n)]


def _input_panel(plt, ax, explanation, c, windows, colours) -> None:
    """x's plane (its channel, its image), padding left white, the pixel in red, each covering window dashed in its
    colour; the legend under the panel says what each window adds to the pixel's gradient."""
    i, r, q, ch = explanation.index
    (s_h, s_w), (top, left), (f_h, f_w) = c.geometry
    plane = np.asarray(explanation.x.data[i, :, :, ch], dtype=np.float64)
    n_h, n_w = plane.shape
    ax.imshow(plane, cmap="gray", extent=(-0.5, n_w - 0.5, n_h - 0.5, -0.5))
    ax.set_xlim(-left - 0.5, max(n_w, (c.out.shape[2] - 1) * s_w + f_w - left) - 0.5)
    ax.set_ylim(max(n_h, (c.out.shape[1] - 1) * s_h + f_h - top) - 0.5, -top - 0.5)
    ax.add_patch(plt.Rectangle((q - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=3))
    adds = {}
    for t in c.terms:
        adds[t.k[1:3]] = adds.get(t.k[1:3], 0.0) + t.value
    step = min(0.3, 0.6 / max(len(windows), 1))  # each window shifted a little so shared edges stay visible
    for n, ((h, w), colour) in enumerate(zip(windows, colours, strict=True)):
        x0, y0 = w * s_w - left - 0.5 + step * n, h * s_h - top - 0.5 + step * n
        ax.add_patch(plt.Rectangle((x0, y0), f_w, f_h, fill=False, edgecolor=colour, linewidth=1.8, linestyle="--",
                                   label=f"({h},{w}): {adds.get((h, w), 0.0):+.3g}"))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=LEGEND_COLUMNS, fontsize=7, frameon=False,
              title="window (h,w) over the pixel: what it adds", title_fontsize=7, handlelength=1.5)
    _title(ax, f"{explanation.x_name}[{i}, :, :, {ch}] (white: padding); pixel ({r},{q}) in red, the windows that "
               "cover it dashed")


def _gradient_panel(plt, fig, ax, explanation, c, windows, colours):
    """The output plane: for a pool the gradient dA arriving there, for a conv what each output position sends
    to the pixel (summed over output channels); the covering windows' cells outlined. Returns (ax, {(h, w): value})
    for the cells to write once the layout is known."""
    i, r, q, ch = explanation.index
    if facts_of(c.out).formula == "conv2d":
        carried = np.zeros(c.out.shape[1:3])
        for t in c.terms:
            carried[t.k[1], t.k[2]] += t.value
        what = f"what each output position sends to pixel ({r},{q}): the sum over output channels of W * dZ"
    else:
        carried = np.asarray(c.arriving, dtype=np.float64)[i, :, :, ch]
        what = f"the gradient arriving at {c.output_name}[{i}, :, :, {ch}], the windows over the pixel outlined"
    span = float(np.abs(carried).max()) or 1.0
    image = ax.imshow(carried, cmap="coolwarm", vmin=-span, vmax=span)
    fig.colorbar(image, ax=ax, fraction=0.046)
    for (h, w), colour in zip(windows, colours, strict=True):
        ax.add_patch(plt.Rectangle((w - 0.5, h - 0.5), 1, 1, fill=False, edgecolor=colour, linewidth=2.5))
    _title(ax, f"{c.out.op_label} -> {c.output_name}: {what}")
    return ax, {(h, w): f"{carried[h, w]:.3g}" for h, w in windows}


def _title(ax, text: str) -> None:
    ax.set_title("\n".join(textwrap.wrap(text, TITLE_WIDTH)), fontsize=9)


def _write_cells(fig, ax, values: dict) -> None:
    """Write each value in its cell, in the largest font up to 8 points that fits one cell; none below 4 points."""
    if not values:
        return
    origin, corner = ax.transData.transform((0, 0)), ax.transData.transform((1, 1))
    cell_pt = np.abs(corner - origin) * 72 / fig.dpi  # a cell's width and height in points
    longest = max(len(v) for v in values.values())
    size = min(8.0, 0.8 * cell_pt[0] / (0.62 * longest), 0.7 * cell_pt[1])
    if size < 4:
        return
    for (h, w), value in values.items():
        ax.text(w, h, value, ha="center", va="center", fontsize=size)
