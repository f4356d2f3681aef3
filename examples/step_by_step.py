"""The notebook "Convolutional Neural Networks: Step by Step", run twice and compared.

    python examples/step_by_step.py

For each notebook function (tinygrad_cnn.steps: same names, signatures and caches as the notebook)
this script feeds the notebook's own inputs (np.random.seed(1) and its shapes), then computes the
same thing with Tensors, whose gradients come from backward() instead of hand-written loops, and
prints the largest absolute difference.  steps and the Tensor ops share the vectorized kernels, so
the conv and pool results are also checked against the notebook's own loops (tinygrad_cnn.reference),
which share nothing with them.  At the end it draws the graph of a conv -> relu -> pool
step to examples/out/ (svg, or the .gv source if no Graphviz renderer is installed).
Needs only numpy and graphviz; runs in about a second.
"""

import os
import sys

import graphviz
import numpy as np

from tinygrad_cnn import Tensor, reference, steps
from tinygrad_cnn.viz import save_graph

TOL = 1e-10
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")
diffs = []  # (label, max |difference|) of every comparison


def section(title: str) -> None:
    print(f"\n== {title} ==")


def show(label: str, value) -> None:
    """Print a labelled value: numbers in full, arrays on their own indented lines."""
    if isinstance(value, tuple) or np.ndim(value) == 0:
        print(f"  {label}: {value!r}")
        return
    text = np.array2string(np.asarray(value), precision=8, suppress_small=True)
    sep = "\n      " if "\n" in text else " "
    print(f"  {label}:{sep}{text.replace(chr(10), chr(10) + '      ')}")


def compare(label: str, notebook, tensor) -> None:
    """Print and record max |notebook - tensor| (shapes must match)."""
    notebook, tensor = np.asarray(notebook), np.asarray(tensor)
    assert notebook.shape == tensor.shape, f"{label}: shapes {notebook.shape} vs {tensor.shape}"
    diff = float(np.max(np.abs(notebook - tensor))) if notebook.size else 0.0
    diffs.append((label, diff))
    print(f"  {label:<44} shape {str(notebook.shape):<16} max |diff| {diff:.1e}")


def params(*arrays, names):
    """float64 leaf Tensors that collect gradients, named as in the notebook."""
    return [Tensor(a, requires_grad=True, name=n) for a, n in zip(arrays, names, strict=True)]


# ----------------------------------------------------------------------------- 3 convolution
def zero_pad():
    section("3.1 zero_pad(X, pad=3)   X = randn(4, 3, 3, 2)")
    np.random.seed(1)
    x = np.random.randn(4, 3, 3, 2)
    x_pad = steps.zero_pad(x, 3)
    show("x_pad.shape", x_pad.shape)
    show("x_pad[1, 1] (a padded row: all zeros)", x_pad[1, 1].T)
    compare("zero_pad  vs  Tensor.pad2d(3)", x_pad, Tensor(x).pad2d(3).data)


def conv_single_step():
    section("3.2 conv_single_step(a_slice_prev, W, b)   a_slice_prev, W (4, 4, 3), b (1, 1, 1)")
    np.random.seed(1)
    a_slice_prev, W, b = np.random.randn(4, 4, 3), np.random.randn(4, 4, 3), np.random.randn(1, 1, 1)
    Z = steps.conv_single_step(a_slice_prev, W, b)
    show("Z (notebook prints -6.999089450680221)", float(Z))
    a_t, W_t, b_t = params(a_slice_prev, W, b, names=("a_slice_prev", "W", "b"))
    Z_t = (a_t * W_t).sum() + b_t.sum()
    compare("Z  vs  (a * W).sum() + b", Z, Z_t.data)
    Z_t.backward()
    compare("dZ/dW  vs  a_slice_prev (by hand)", a_slice_prev, W_t.grad)


def conv_forward():
    section("3.3 conv_forward(A_prev, W, b, {pad: 1, stride: 2})   A_prev (2, 5, 7, 4), W (3, 3, 4, 8)")
    np.random.seed(1)
    A_prev, W, b = np.random.randn(2, 5, 7, 4), np.random.randn(3, 3, 4, 8), np.random.randn(1, 1, 1, 8)
    Z, cache = steps.conv_forward(A_prev, W, b, {"pad": 1, "stride": 2})
    show("mean(Z) (notebook prints 0.5511276474566768)", float(Z.mean()))
    show("Z[0, 2, 1]", Z[0, 2, 1])
    compare("Z  vs  Tensor.conv2d(W, b, stride=2, pad=1)", Z, Tensor(A_prev).conv2d(W, b, stride=2, pad=1).data)
    compare("Z  vs  the notebook's loops", Z, reference.conv_forward(A_prev, W, b, (2, 2), ((1, 1), (1, 1))))


# ----------------------------------------------------------------------------- 4 pooling
def pool_forward():
    section("4.1 pool_forward(A_prev, {f: 3, stride: 1 and 2}, mode)   A_prev (2, 5, 5, 3)")
    np.random.seed(1)
    A_prev = np.random.randn(2, 5, 5, 3)
    for stride in (1, 2):
        hparameters = {"f": 3, "stride": stride}
        A_max, _ = steps.pool_forward(A_prev, hparameters, mode="max")
        A_avg, _ = steps.pool_forward(A_prev, hparameters, mode="average")
        compare(f"max,     stride {stride}  vs  Tensor.max_pool2d", A_max,
                Tensor(A_prev).max_pool2d(3, stride=stride).data)
        compare(f"average, stride {stride}  vs  Tensor.avg_pool2d", A_avg,
                Tensor(A_prev).avg_pool2d(3, stride=stride).data)
        for mode, A in (("max", A_max), ("average", A_avg)):
            compare(f"{mode + ',':<8} stride {stride}  vs  the notebook's loops", A,
                    reference.pool_forward(A_prev, (3, 3), (stride, stride), mode))


# ----------------------------------------------------------------------------- 5 backward passes
def conv_backward():
    section("5.1 conv_backward(dZ, cache)   A_prev (10, 4, 4, 3), W (2, 2, 3, 8), pad 2, stride 2, dZ = Z")
    np.random.seed(1)
    A_prev, W, b = np.random.randn(10, 4, 4, 3), np.random.randn(2, 2, 3, 8), np.random.randn(1, 1, 1, 8)
    Z, cache = steps.conv_forward(A_prev, W, b, {"pad": 2, "stride": 2})
    dA, dW, db = steps.conv_backward(Z, cache)
    print("  notebook prints dA_mean 1.45243777754, dW_mean 1.72699145831, db_mean 7.83923256462")
    show("dA_mean, dW_mean, db_mean", tuple(round(float(d.mean()), 11) for d in (dA, dW, db)))
    A_t, W_t, b_t = params(A_prev, W, b, names=("A_prev", "W", "b"))
    Z_t = A_t.conv2d(W_t, b_t, stride=2, pad=2)
    Z_t.backward(Z)  # dZ = Z, as in the notebook's test
    compare("dA_prev  vs  A_prev.grad", dA, A_t.grad)
    compare("dW       vs  W.grad", dW, W_t.grad)
    compare("db       vs  b.grad", db, b_t.grad)
    loops = reference.conv_backward(Z, A_prev, W, (2, 2), ((2, 2), (2, 2)))
    for name, ours, theirs in zip(("dA_prev", "dW", "db"), (dA, dW, db.reshape(-1)), loops, strict=True):
        compare(f"{name:<8} vs  the notebook's loops", ours, theirs)


def mask_and_distribute():
    section("5.2.1 create_mask_from_window(x)   x = randn(2, 3)")
    np.random.seed(1)
    x = np.random.randn(2, 3)
    mask = steps.create_mask_from_window(x)
    show("x", x)
    show("mask", mask)
    x_t = Tensor(x, requires_grad=True)
    x_t.max().backward()
    compare("mask  vs  grad of x.max()", mask, x_t.grad)

    section("5.2.2 distribute_value(dz=2, shape=(2, 2))")
    a = steps.distribute_value(2, (2, 2))
    show("a", a)
    window = Tensor(np.zeros((2, 2)), requires_grad=True)
    window.mean().backward(np.asarray(2.0))
    compare("a  vs  grad of window.mean() times 2", a, window.grad)


def pool_backward():
    section("5.2.3 pool_backward(dA, cache, mode)   A_prev (5, 5, 3, 2), f 2, stride 1, dA = randn(5, 4, 2, 2)")
    np.random.seed(1)
    A_prev = np.random.randn(5, 5, 3, 2)
    A, cache = steps.pool_forward(A_prev, {"stride": 1, "f": 2})
    dA = np.random.randn(5, 4, 2, 2)
    for mode in ("max", "average"):
        dA_prev = steps.pool_backward(dA, cache, mode=mode)
        show(f"{mode}: mean(dA) = {dA.mean():.12f}; dA_prev[1, 1]", dA_prev[1, 1])
        A_t = Tensor(A_prev, requires_grad=True)
        # ties="all" is the notebook's mask (x == max); with random floats there are no ties anyway
        pooled = A_t.max_pool2d(2, stride=1, ties="all") if mode == "max" else A_t.avg_pool2d(2, stride=1)
        pooled.backward(dA)
        compare(f"{mode:<7}  dA_prev  vs  A_prev.grad", dA_prev, A_t.grad)
        compare(f"{mode:<7}  dA_prev  vs  the notebook's loops", dA_prev,
                reference.pool_backward(dA, A_prev, (2, 2), (1, 1), mode))


# ----------------------------------------------------------------------------- the graph
def draw_a_layer():
    section("the graph backward() walks: conv -> relu -> max pool -> mean")
    np.random.seed(1)
    A_prev, W, b = params(np.random.randn(2, 5, 7, 4), np.random.randn(3, 3, 4, 8), np.random.randn(8),
                          names=("A_prev", "W", "b"))
    loss = A_prev.conv2d(W, b, stride=2, pad=1).relu().max_pool2d(2).mean()
    loss.backward()
    os.makedirs(OUT, exist_ok=True)
    title = "loss = mean(max_pool2d(relu(conv2d(A_prev, W, b))))"
    path = os.path.join(OUT, "step_by_step.svg")
    print(f"  loss = {loss.item():.6f}; each node shows its shape, values and gradient: {path}")
    try:
        save_graph(loss, path, title=title, show_rule=True)
    except graphviz.ExecutableNotFound as e:  # viz wrote the .gv source instead, and says where
        print(f"  {e}")


def main() -> int:
    for step in (zero_pad, conv_single_step, conv_forward, pool_forward, conv_backward, mask_and_distribute,
                 pool_backward, draw_a_layer):
        step()
    label, worst = max(diffs, key=lambda d: d[1])
    section("summary")
    if worst <= TOL:
        print(f"  {len(diffs)} comparisons, largest |diff| {worst:.1e} ({label.split('  vs')[0].strip()}):")
        print("  the notebook's functions, its loops and the Tensor ops with backward() agree.")
        return 0
    print(f"  MISMATCH: {label} differs by {worst:.3g} (tolerance {TOL})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
