"""The picture of a report (``Report.plot``), for conv_backward and pool_backward: the input plane (image i,
channel c) of the first wrong entry of dA_prev with that entry boxed in red, every wrong entry of the plane
crossed, and the windows that cover the first one dashed; beside it, yours - expected on that plane.
Imports numpy, tinygrad_cnn.explain_plot (pyplot: matplotlib, loaded when called, the ``plot`` extra) and the
check package's cases.
"""

from __future__ import annotations

import numpy as np

from ..explain_plot import pyplot
from .cases import covering_windows, geometry

PLOT_HINT = 'report.plot() needs matplotlib: .venv/bin/pip install -e ".[plot]"'
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")


def plot_report(report, path=None):
    """Draw the report's first wrong dA_prev entry (see the module docstring); save a png at ``path``."""
    entry = report.wrong_entries.get("dA_prev")
    if report.name not in ("conv_backward", "pool_backward") or entry is None:
        raise ValueError(f"plot: draws the wrong entries of dA_prev of conv_backward or pool_backward; this report "
                         f"of {report.name} has {'none' if entry is None else 'another function'} "
                         "(print(report) says what is wrong)")
    plt = pyplot(PLOT_HINT)
    A_prev, f, stride, pad = geometry(report.name, entry.args)
    i, r, q, c = entry.index
    got = entry.case.outcome.outputs[0]
    expected = min(entry.case.expected, key=lambda alt: int(np.sum(np.abs(got - alt[0]) > 1e-10)))[0]
    diff = (got - expected)[i, :, :, c]
    wrong = np.argwhere(np.abs(diff) > 1e-10 * max(1.0, float(np.max(np.abs(expected)))))
    n_out = entry.args[0].shape[1:3]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))
    n_h, n_w = A_prev.shape[1:3]
    left.imshow(A_prev[i, :, :, c], cmap="gray", extent=(-0.5, n_w - 0.5, n_h - 0.5, -0.5))
    left.set_xlim(-pad - 0.5, n_w + pad - 0.5)
    left.set_ylim(n_h + pad - 0.5, -pad - 0.5)
    for ax in (left, right):
        ax.plot(wrong[:, 1], wrong[:, 0], "x", color="red", markersize=9, markeredgewidth=2)
        ax.add_patch(plt.Rectangle((q - 0.5, r - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=3))
    for n, (h, w) in enumerate(covering_windows(n_out, entry.index, f, stride, pad)):
        colour, shift = COLOURS[n % len(COLOURS)], 0.06 * n
        x0, y0 = w * stride - pad - 0.5 + shift, h * stride - pad - 0.5 + shift
        left.add_patch(plt.Rectangle((x0, y0), f, f, fill=False, edgecolor=colour, linewidth=1.8, linestyle="--"))
        left.text(x0 + 0.1, y0 + 0.3 + 0.25 * n, f"({h},{w})", color=colour, fontsize=8, backgroundcolor="white")
    left.set_title(f"A_prev[{i}, :, :, {c}]{' (white: padding)' if pad else ''}\n{entry.where} in red, the windows "
                   f"over it dashed; x: wrong entries ({len(wrong)})", fontsize=9)
    span = float(np.max(np.abs(diff))) or 1.0
    image = right.imshow(diff, cmap="coolwarm", vmin=-span, vmax=span)
    fig.colorbar(image, ax=right, fraction=0.046)
    right.set_title(f"yours - expected, dA_prev[{i}, :, :, {c}]\ncase: {entry.case.label}", fontsize=9)
    fig.suptitle(f"{report.name}: {entry.where} = {entry.got:.6g}, expected {entry.expected:.6g}", fontsize=11)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
