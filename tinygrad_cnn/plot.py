"""Pictures of what a CNN does: its filters and its feature maps (needs matplotlib).

``plot_filters(W)`` draws a conv layer's filters, ``plot_feature_maps(t)`` the channels of one image
of an NHWC activation. Both return a ``matplotlib.figure.Figure`` (built without pyplot, so they work
headless and leave pyplot's state alone; in Jupyter, after ``%matplotlib inline``, a cell ending in the
figure shows it) and save it when given a ``path`` (format from the extension: .png, .svg, .pdf).

matplotlib is imported only when a function is called: ``.venv/bin/pip install -e ".[plot]"`` from a clone.
"""

from __future__ import annotations

import math
import os

import numpy as np

__all__ = ["plot_filters", "plot_feature_maps", "PLOT_HINT"]

PLOT_HINT = '.venv/bin/pip install -e ".[plot]"'
TILE_INCHES = 1.1
MAPS_INCHES = 7.0  # a grid of feature maps is about this wide
WEIGHT_CMAP = "RdBu_r"  # diverging: blue negative, white zero, red positive
ACTIVATION_CMAP = "viridis"


def _new_figure(op: str, width: float, height: float):
    """An empty matplotlib Figure of that size in inches; ImportError naming the extra without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(f"{op} needs matplotlib: {PLOT_HINT}") from error
    return Figure(figsize=(width, height), layout="constrained")


def _as_4d(op: str, name: str, value, layout: str) -> np.ndarray:
    """A float numpy array of ``value`` (a Tensor or array-like) that must have 4 axes."""
    array = np.asarray(value, dtype=np.float64)
    if array.ndim != 4:
        raise ValueError(f"{op}: {name} must be 4-D {layout}, got shape {array.shape}")
    return array


def _grid(n: int) -> tuple[int, int]:
    """(rows, columns) of a near-square grid for n tiles, wider than tall."""
    cols = math.ceil(math.sqrt(n))
    return math.ceil(n / cols), cols


def _tiles(fig, rows: int, cols: int, n: int) -> list:
    """The first n axes of a rows x cols grid, ticks off; the unused ones removed from the figure."""
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    for ax in axes[n:]:
        fig.delaxes(ax)
    for ax in axes[:n]:
        ax.set_xticks([])
        ax.set_yticks([])
    return list(axes[:n])


def _save(fig, path):
    if path is not None:
        fig.savefig(os.fspath(path), dpi=100)
    return fig


def plot_filters(W, path: str | os.PathLike | None = None, title: str | None = None):
    """A grid of a conv layer's filters; returns the Figure (saved to ``path`` when given).

    W (f_h, f_w, n_C_prev, n_C), a Tensor or array, as ``conv2d`` takes it. All tiles share one colour
    scale, symmetric about zero (``max |W|``), so tiles can be compared and zero always looks the same.

    - n_C_prev == 3 (filters on an RGB image): one tile per output channel, the filter drawn as a colour
      image, zero at mid grey (0.5 + W / (2 max |W|)). n_C axes.
    - n_C_prev == 1: one tile per output channel in a near-square grid, blue negative, red positive,
      with a colour bar. n_C + 1 axes.
    - otherwise: one tile per (input channel, output channel), row = input channel, column = output
      channel, with a colour bar. n_C_prev * n_C + 1 axes.
    """
    W = _as_4d("plot_filters", "W", W, "(f_h, f_w, n_C_prev, n_C)")
    f_h, f_w, n_in, n_out = W.shape
    scale = float(np.max(np.abs(W))) or 1.0  # all-zero filters: any scale will do
    if n_in == 3:
        return _rgb_filters(W, scale, path, title)
    rows, cols = _grid(n_out) if n_in == 1 else (n_in, n_out)
    fig = _new_figure("plot_filters", cols * TILE_INCHES + 0.8, rows * TILE_INCHES + 0.6)
    axes = _tiles(fig, rows, cols, n_in * n_out)
    planes = [(c_in, c_out) for c_in in range(n_in) for c_out in range(n_out)]
    for ax, (c_in, c_out) in zip(axes, planes, strict=True):
        image = ax.imshow(W[:, :, c_in, c_out], cmap=WEIGHT_CMAP, vmin=-scale, vmax=scale)
        ax.set_title(f"out {c_out}" if n_in == 1 else f"in {c_in} out {c_out}", fontsize=7)
    fig.colorbar(image, ax=axes, shrink=0.8, label="weight")
    fig.suptitle(title or f"filters W {W.shape}", fontsize=10)
    return _save(fig, path)


def _rgb_filters(W: np.ndarray, scale: float, path, title):
    """One colour tile per output channel of W (f_h, f_w, 3, n_C)."""
    n_out = W.shape[3]
    rows, cols = _grid(n_out)
    fig = _new_figure("plot_filters", cols * TILE_INCHES, rows * TILE_INCHES + 0.6)
    for c_out, ax in enumerate(_tiles(fig, rows, cols, n_out)):
        ax.imshow(0.5 + W[:, :, :, c_out] / (2 * scale))
        ax.set_title(f"out {c_out}", fontsize=7)
    fig.suptitle(title or f"filters W {W.shape} (RGB, grey = 0, shared scale +-{scale:.3g})", fontsize=10)
    return _save(fig, path)


def plot_feature_maps(t, max_maps: int = 16, index: int = 0, path: str | os.PathLike | None = None,
                      title: str | None = None):
    """The channel planes of image ``index`` of an NHWC tensor, in a grid; returns the Figure.

    t (m, n_H, n_W, n_C), a Tensor or array (e.g. the activations after a conv layer). Draws the first
    ``min(n_C, max_maps)`` channels, one tile each (that many axes), each on its own colour scale, its
    range in the tile's title: blue-white-red symmetric about zero for a plane with negative values
    (e.g. before a ReLU), else dark to bright from 0 to its max.
    """
    maps = _as_4d("plot_feature_maps", "t", t, "NHWC (m, n_H, n_W, n_C)")
    if isinstance(max_maps, bool) or not isinstance(max_maps, int) or max_maps < 1:
        raise ValueError(f"plot_feature_maps: max_maps must be a positive int, got {max_maps!r}")
    if not -len(maps) <= index < len(maps):
        raise IndexError(f"plot_feature_maps: index {index} is out of range for {len(maps)} images "
                         f"(t.shape={maps.shape}, NHWC)")
    n = min(maps.shape[3], max_maps)
    rows, cols = _grid(n)
    tile_w = min(max(MAPS_INCHES / cols, TILE_INCHES), 2 * TILE_INCHES)
    tile_h = tile_w * maps.shape[1] / maps.shape[2]
    fig = _new_figure("plot_feature_maps", cols * tile_w + 0.2, rows * (tile_h + 0.3) + 0.5)
    for c, ax in enumerate(_tiles(fig, rows, cols, n)):
        plane = maps[index, :, :, c]
        ax.imshow(plane, **_activation_scale(plane))
        ax.set_title(f"ch {c}: {plane.min():.2g} .. {plane.max():.2g}", fontsize=7)
    shown = f"first {n} of {maps.shape[3]} channels" if n < maps.shape[3] else f"{n} channels"
    fig.suptitle(title or f"feature maps of image {index}, {shown}", fontsize=9)
    return _save(fig, path)


def _activation_scale(plane: np.ndarray) -> dict:
    """imshow colour arguments for one feature map: symmetric diverging if it has negatives."""
    if plane.min() < 0:
        top = float(np.abs(plane).max())
        return {"cmap": WEIGHT_CMAP, "vmin": -top, "vmax": top}
    return {"cmap": ACTIVATION_CMAP, "vmin": 0.0, "vmax": float(plane.max()) or 1.0}
