"""The picture of an explanation (``Explanation.plot``): for each conv/pool op that used x as its image input,
the input plane of x's channel with the pixel marked and the windows that cover it, beside the output-gradient
plane with the gradients those windows carry. matplotlib is imported here only (the ``plot`` extra)."""

from __future__ import annotations

import numpy as np

from .ops.facts import facts_of

PLOT_HINT = 'explain(...).plot() needs matplotlib: pip install "tinygrad_cnn[plot]"'


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
    fig, axes = plt.subplots(len(drawn), 2, figsize=(10, 4.2 * len(drawn)), squeeze=False)
    for (left_ax, right_ax), c in zip(axes, drawn, strict=True):
        windows = sorted(c.windows)
        _input_panel(plt, left_ax, explanation, c, windows)
        _gradient_panel(plt, fig, right_ax, explanation, c, windows)
    fig.suptitle(f"why {explanation.x_name}.grad[{','.join(map(str, explanation.index))}] = {explanation.grad:.6g} "
                 f"(sum of {len(explanation.terms)} terms: {explanation.total:.6g})", fontsize=11)
    others = [c for c in explanation.consumers if c not in drawn]
    if others:
        fig.text(0.5, 0.005, "not drawn (no picture fits): " + ", ".join(c.out.op_label for c in others),
                 ha="center", fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")


def _input_panel(plt, ax, explanation, c, windows) -> None:
    """x's plane (its channel, its image), padding left white, the pixel in red, each covering window dashed
    and labelled with what it adds to the pixel's gradient."""
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
    for n, (h, w) in enumerate(windows):
        colour, shift = COLOURS[n % len(COLOURS)], 0.06 * n  # shifted a little so shared edges stay visible
        x0, y0 = w * s_w - left - 0.5 + shift, h * s_h - top - 0.5 + shift
        ax.add_patch(plt.Rectangle((x0, y0), f_w, f_h, fill=False, edgecolor=colour, linewidth=1.8, linestyle="--"))
        ax.text(x0 + 0.1, y0 + 0.3 + 0.25 * n, f"({h},{w}): {adds.get((h, w), 0.0):+.3g}", color=colour,
                fontsize=8, backgroundcolor="white")
    ax.set_title(f"{explanation.x_name}[{i}, :, :, {ch}] (white: padding)\npixel ({r},{q}) in red; the windows "
                 "that cover it, with what each adds", fontsize=9)


def _gradient_panel(plt, fig, ax, explanation, c, windows) -> None:
    """The output plane: for a pool the gradient dA arriving there, for a conv what each output position sends
    to the pixel (summed over output channels); the covering windows' cells outlined with their values."""
    i, r, q, ch = explanation.index
    if facts_of(c.out).formula == "conv2d":
        carried = np.zeros(c.out.shape[1:3])
        for t in c.terms:
            carried[t.k[1], t.k[2]] += t.value
        what = f"what each output position sends to pixel ({r},{q}):\nsum over output channels of W * dZ"
    else:
        carried = np.asarray(c.arriving, dtype=np.float64)[i, :, :, ch]
        what = f"gradient arriving at {c.output_name}[{i}, :, :, {ch}]; the windows over the pixel outlined"
    span = float(np.abs(carried).max()) or 1.0
    image = ax.imshow(carried, cmap="coolwarm", vmin=-span, vmax=span)
    fig.colorbar(image, ax=ax, fraction=0.046)
    for n, (h, w) in enumerate(windows):
        ax.add_patch(plt.Rectangle((w - 0.5, h - 0.5), 1, 1, fill=False, edgecolor=COLOURS[n % len(COLOURS)],
                                   linewidth=2.5))
        ax.text(w, h, f"{carried[h, w]:.3g}", ha="center", va="center", fontsize=8)
    ax.set_title(f"{c.out.op_label} -> {c.output_name}\n{what}", fontsize=9)
