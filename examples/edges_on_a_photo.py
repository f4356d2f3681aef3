"""What a convolution does to a real photo: hand-made edge filters, then pooling; and a trained CNN's filters.

    .venv/bin/pip install -e ".[examples]"      # scikit-learn (the photo ships with it), matplotlib
    python examples/edges_on_a_photo.py       # options: --out --weights

The photo is scikit-learn's sample "china.jpg" (427 x 640, no download), made grayscale (luminance,
0.299 R + 0.587 G + 0.114 B) and scaled to [0, 1]: one image in NHWC, x of shape (1, 427, 640, 1).
Two 3x3 filters (Sobel), W of shape (3, 3, 1, 2):

    vertical edges           horizontal edges
    [[1, 0, -1],             [[ 1,  2,  1],
     [2, 0, -2],              [ 0,  0,  0],
     [1, 0, -1]]              [-1, -2, -1]]

x.conv2d(W, pad=1) gives two feature maps (1, 427, 640, 2): large where brightness changes from left
to right (vertical edges) or from top to bottom (horizontal edges), positive or negative by the
direction of the change. Then 4x4 max pooling (keeps the strongest response of each window: edges
survive, thicker) and 4x4 average pooling (blurs: thin edges of both signs cancel), (1, 106, 160, 2).

Last, the 16 filters of the first conv layer of the digits CNN: loaded from --weights (written by
examples/train_digits.py) if that file exists, else trained here for a few epochs (a few seconds).

Writes to --out (default examples/out/): photo_gray.png, photo_filters.png, photo_edges.png,
photo_edges_maxpool.png, photo_edges_avgpool.png and digits_filters.png.
"""

import argparse
import os
import sys
import time

import numpy as np

from tinygrad_cnn import Tensor
from tinygrad_cnn.io import load
from tinygrad_cnn.optim import Adam
from tinygrad_cnn.plot import plot_feature_maps, plot_filters

try:
    from sklearn.datasets import load_sample_image
except ImportError as e:
    sys.exit(f"{e}: this example needs the 'examples' extra: .venv/bin/pip install -e \".[examples]\"")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import train_digits  # noqa: E402  (the digits data and model of examples/train_digits.py)

SOBEL_VERTICAL = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])
LUMINANCE = np.array([0.299, 0.587, 0.114])


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    out = os.path.join(HERE, "out")
    parser.add_argument("--out", default=out)
    parser.add_argument("--weights", default=os.path.join(out, "digits_cnn.npz"),
                        help="digits CNN weights from train_digits.py; trained here if missing")
    return parser.parse_args()


def grayscale_photo() -> np.ndarray:
    """china.jpg as one grayscale NHWC image (1, 427, 640, 1), float32 in [0, 1]."""
    rgb = load_sample_image("china.jpg") / 255.0  # (427, 640, 3) uint8 -> float
    return (rgb @ LUMINANCE).astype(np.float32)[None, :, :, None]


def edge_filters() -> np.ndarray:
    """W (3, 3, 1, 2): channel 0 finds vertical edges, channel 1 (its transpose) horizontal ones."""
    return np.stack([SOBEL_VERTICAL, SOBEL_VERTICAL.T], axis=-1)[:, :, None, :].astype(np.float32)


def digits_filters(weights: str, seed: int = 0, epochs: int = 3) -> tuple[np.ndarray, str]:
    """The first conv layer's W (3, 3, 1, 16) of the digits CNN, and where it came from."""
    model = train_digits.make_model(seed)
    if os.path.exists(weights):
        model.load_state_dict(load(weights))
        return model.conv1.W.numpy(), f"loaded from {weights}"
    x_train, _, y_train, _ = train_digits.digits(seed)
    opt, rng = Adam(model.parameters(), lr=3e-3), np.random.default_rng(seed)
    for epoch in range(1, epochs + 1):
        loss, acc = train_digits.train_epoch(model, opt, x_train, y_train, 32, rng, desc=f"epoch {epoch}/{epochs}")
    return model.conv1.W.numpy(), f"trained here for {epochs} epochs (train accuracy {acc:.3f})"


def main():
    args = parse_args()
    os.makedirs(args.out, exist_ok=True)
    start = time.perf_counter()
    written = []

    def save(fig, name):
        path = os.path.join(args.out, name)
        fig.savefig(path, dpi=100)
        written.append(path)

    x = Tensor(grayscale_photo())
    W = edge_filters()
    edges = x.conv2d(W, pad=1)
    max_pooled, avg_pooled = edges.max_pool2d(4), edges.avg_pool2d(4)
    print(f"photo x {x.shape} -> conv2d(W {W.shape}, pad=1) {edges.shape} -> 4x4 pools {max_pooled.shape}")
    for name, t in (("edges", edges), ("max pool 4", max_pooled), ("avg pool 4", avg_pooled)):
        v, h = (np.abs(t.numpy()[..., c]) for c in (0, 1))
        print(f"  {name:<11} mean |vertical| {v.mean():.3f}  mean |horizontal| {h.mean():.3f}  "
              f"max |any| {max(v.max(), h.max()):.3f}")

    save(plot_feature_maps(x, title="china.jpg, grayscale (1, 427, 640, 1)"), "photo_gray.png")
    save(plot_filters(W, title="hand-made filters: vertical (out 0) and horizontal (out 1) edges"),
         "photo_filters.png")
    save(plot_feature_maps(edges, title="conv2d: vertical (ch 0) and horizontal (ch 1) edges"), "photo_edges.png")
    save(plot_feature_maps(max_pooled, title="max_pool2d(4): the strongest response per window"),
         "photo_edges_maxpool.png")
    save(plot_feature_maps(avg_pooled, title="avg_pool2d(4): the mean response per window"),
         "photo_edges_avgpool.png")

    W_digits, source = digits_filters(args.weights)
    print(f"digits CNN conv1 filters {W_digits.shape}: {source}")
    save(plot_filters(W_digits, title="digits CNN: the 16 filters of conv1"), "digits_filters.png")

    print("wrote " + "\n      ".join(written))
    print(f"wall time: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
