"""tinygrad_cnn.plot: filters and feature maps as matplotlib figures (headless)."""

import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT  # noqa: E402

pytest.importorskip("matplotlib")

from matplotlib.figure import Figure  # noqa: E402

from tinygrad_cnn import Tensor  # noqa: E402
from tinygrad_cnn.plot import plot_feature_maps, plot_filters  # noqa: E402


def image_axes(fig):
    """Axes that show an image (the tiles), as opposed to a colour bar."""
    return [ax for ax in fig.axes if ax.images and ax.get_label() != "<colorbar>"]


def test_one_tile_per_output_channel_for_a_single_input_channel(tmp_path):
    W = np.random.default_rng(0).standard_normal((3, 3, 1, 16))
    fig = plot_filters(W, path=tmp_path / "filters.png")
    assert isinstance(fig, Figure)
    assert len(image_axes(fig)) == 16 and len(fig.axes) == 17  # 16 tiles (4 x 4) and a colour bar
    assert (tmp_path / "filters.png").stat().st_size > 1000


def test_one_tile_per_input_and_output_channel_with_a_shared_symmetric_scale(tmp_path):
    W = Tensor(np.random.default_rng(1).standard_normal((2, 3, 4, 5)))  # a Tensor works too; rectangular
    fig = plot_filters(W, path=tmp_path / "filters.svg")
    tiles = image_axes(fig)
    assert len(tiles) == 4 * 5 and len(fig.axes) == 21
    scale = np.abs(W.data).max()
    for ax in tiles:
        assert ax.images[0].get_clim() == pytest.approx((-scale, scale))
        assert ax.images[0].get_array().shape == (2, 3)
    assert (tmp_path / "filters.svg").read_text().lstrip().startswith("<?xml")


def test_rgb_filters_are_colour_tiles_with_zero_at_grey():
    W = np.zeros((3, 3, 3, 6))
    W[0, 0, 0, 0], W[1, 1, 2, 5] = 2.0, -1.0
    fig = plot_filters(W)
    tiles = image_axes(fig)
    assert len(tiles) == 6 and len(fig.axes) == 6  # no colour bar
    first, last = (np.asarray(ax.images[0].get_array()) for ax in (tiles[0], tiles[5]))
    assert first.shape == (3, 3, 3)
    np.testing.assert_allclose(first[0, 0], [1.0, 0.5, 0.5])   # +max -> full red
    np.testing.assert_allclose(last[1, 1], [0.5, 0.5, 0.25])   # -max/2 -> less blue
    np.testing.assert_allclose(last[2, 2], [0.5, 0.5, 0.5])    # zero -> grey


def test_feature_maps_draw_at_most_max_maps_channels_of_one_image(tmp_path):
    t = np.random.default_rng(2).standard_normal((3, 6, 5, 20))
    fig = plot_feature_maps(t, max_maps=7, index=2, path=tmp_path / "maps.png")
    tiles = image_axes(fig)
    assert len(tiles) == 7 and len(fig.axes) == 7  # 3 x 3 grid, the two unused cells removed
    np.testing.assert_array_equal(tiles[6].images[0].get_array(), t[2, :, :, 6])
    assert "first 7 of 20 channels" in fig.get_suptitle()
    assert (tmp_path / "maps.png").stat().st_size > 1000


def test_feature_maps_of_a_tensor_with_fewer_channels_than_max_maps():
    fig = plot_feature_maps(Tensor.randn(1, 4, 4, 3, seed=0))
    assert len(image_axes(fig)) == 3 and "3 channels" in fig.get_suptitle()


def test_filters_must_be_4d():
    expected = r"plot_filters: W must be 4-D \(f_h, f_w, n_C_prev, n_C\), got shape \(3, 3\)"
    with pytest.raises(ValueError, match=expected):
        plot_filters(np.zeros((3, 3)))


def test_feature_maps_must_be_nhwc():
    with pytest.raises(ValueError, match=r"plot_feature_maps: t must be 4-D NHWC .* got shape \(4, 4, 3\)"):
        plot_feature_maps(np.zeros((4, 4, 3)))


def test_feature_maps_index_out_of_range():
    with pytest.raises(IndexError, match=r"plot_feature_maps: index 2 is out of range for 2 images"):
        plot_feature_maps(np.zeros((2, 4, 4, 3)), index=2)


@pytest.mark.parametrize("max_maps", [0, 2.5, True])
def test_feature_maps_max_maps_must_be_positive(max_maps):
    with pytest.raises(ValueError, match=r"plot_feature_maps: max_maps must be a positive int"):
        plot_feature_maps(np.zeros((1, 4, 4, 3)), max_maps=max_maps)


@pytest.mark.parametrize("call", [lambda: plot_filters(np.zeros((3, 3, 1, 2))),
                                  lambda: plot_feature_maps(np.zeros((1, 3, 3, 2)))])
def test_without_matplotlib_the_error_names_the_extra(monkeypatch, call):
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)  # `import matplotlib...` now raises ImportError
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'needs matplotlib: \.venv/bin/pip install -e "\.\[plot\]"'):
        call()


def test_the_package_imports_without_matplotlib():
    code = ("import sys; sys.modules['matplotlib'] = None\n"
            "import tinygrad_cnn, tinygrad_cnn.plot\n"
            "try:\n    tinygrad_cnn.plot.plot_filters([[[[1.0]]]])\n"
            "except ImportError as e:\n    print(e)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env={"PYTHONPATH": str(ROOT), "PATH": ""}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == 'plot_filters needs matplotlib: .venv/bin/pip install -e ".[plot]"'
