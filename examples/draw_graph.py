"""Draw two autograd graphs: a small expression, and one training step of a small CNN.

    python examples/draw_graph.py            # writes examples/out/*.svg and *.png
    python examples/draw_graph.py --docs     # also writes docs/cnn_step.png for the README

Rendering needs a layout program: ``.venv/bin/pip install -e ".[viz]"`` (svg and png) or the
system Graphviz. Without one, the .gv sources are still written and the error says what to do.
"""

import argparse
from pathlib import Path

import numpy as np

import tinygrad_cnn.functional as F
from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.viz import save_graph

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
DOCS = HERE.parent / "docs"


def expression():
    """loss = sum(tanh(a * b + c)): a few named scalars and vectors, drawn left to right."""
    a = Tensor([1.0, -2.0, 0.5], requires_grad=True, name="a")
    b = Tensor(0.8, requires_grad=True, name="b")
    c = Tensor([0.1, 0.2, 0.3], name="c")
    loss = (a * b + c).tanh().sum()
    loss.name = "loss"
    loss.backward()
    return loss


def cnn_step(seed: int = 0):
    """Forward and backward of conv -> relu -> max-pool -> flatten -> matmul -> cross-entropy.

    Returns the loss and the parameters by name (NHWC images, HWIO conv weights).
    """
    rng = np.random.default_rng(seed)
    def randn(*shape, scale=1.0):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    images = Tensor(randn(4, 8, 8, 1), name="images")
    labels = np.array([0, 2, 1, 2])
    params = {
        "conv.W": Tensor(randn(3, 3, 1, 4, scale=0.3), requires_grad=True),
        "conv.b": Tensor(np.zeros(4, np.float32), requires_grad=True),
        "fc.W": Tensor(randn(4 * 4 * 4, 3, scale=0.1), requires_grad=True),
        "fc.b": Tensor(np.zeros(3, np.float32), requires_grad=True),
    }
    h = F.conv2d(images, params["conv.W"], params["conv.b"], stride=1, pad=1).relu()
    h = F.max_pool2d(h, 2, stride=2).flatten(1)
    logits = h @ params["fc.W"] + params["fc.b"]
    loss = F.cross_entropy(logits, labels)
    loss.name = "loss"
    loss.backward()
    return loss, params


CNN_TITLE = "one training step of a small CNN: values and, after backward, gradients"


def main(docs: bool = False, out: Path = OUT, docs_dir: Path = DOCS) -> list[Path]:
    """Write the drawings; return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    loss = expression()
    for ext in ("svg", "png"):
        written.append(out / f"expression.{ext}")
        save_graph(loss, written[-1], rankdir="LR", show_rule=True)
    loss, params = cnn_step()
    for ext in ("svg", "png"):
        written.append(out / f"cnn_step.{ext}")
        save_graph(loss, written[-1], params=params, title=CNN_TITLE, show_rule=True)
    if docs:
        docs_dir.mkdir(parents=True, exist_ok=True)
        written.append(docs_dir / "cnn_step.png")
        save_graph(loss, written[-1], params=params, title=CNN_TITLE, show_rule=True)
    return written


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", action="store_true", help="also write docs/cnn_step.png")
    for path in main(parser.parse_args().docs):
        print("wrote", path)
