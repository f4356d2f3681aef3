"""Why is this gradient entry what it is, and where did the first NaN come from.

    python examples/explain_gradient.py

1. The notebook's conv_backward sizes: A_prev (10, 5, 7, 4), W (3, 3, 4, 8), b (1, 1, 1, 8), pad 1, stride 2,
   np.random.seed(1), and dZ = Z (the notebook's test feeds Z back as its own gradient). explain() lists the
   terms of one entry of dA_prev: each is the notebook's loop line `dA_prev[i,h,w,c] += W[..] * dZ[..]` with
   its actual indices. The picture (examples/out/explain_dA_prev.png, needs matplotlib) shows the pixel, the
   windows that cover it and what each sends back.
2. A small network whose loss goes NaN: log of a softmax that underflows to 0. detect_anomaly() names the op,
   the line of this file that made it, and what its input held there.
"""

import os

import numpy as np

from tinygrad_cnn import AnomalyError, Tensor, detect_anomaly, explain

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def why_this_entry_of_dA_prev():
    print("== 1. why dA_prev[0, 3, 4, 2] has its value ==")
    np.random.seed(1)
    A_prev = Tensor(np.random.randn(10, 5, 7, 4), requires_grad=True, name="A_prev")
    W = Tensor(np.random.randn(3, 3, 4, 8), requires_grad=True, name="W")
    b = Tensor(np.random.randn(1, 1, 1, 8), requires_grad=True, name="b")
    Z = A_prev.conv2d(W, b, stride=2, pad=1)
    Z.name = "Z"
    Z.backward(Z.data)  # dZ = Z, as the notebook's conv_backward test
    explanation = explain(Z, A_prev, (0, 3, 4, 2))
    print(explanation)
    try:
        os.makedirs(OUT, exist_ok=True)
        path = os.path.join(OUT, "explain_dA_prev.png")
        explanation.plot(path)
        print(f"  picture: {path}")
    except ImportError as e:  # matplotlib is an optional extra
        print(f"  no picture: {e}")


def softmax_then_log(logits):
    probs = logits.softmax(axis=1)
    probs.name = "probs"
    return probs.log()  # log(0) where the softmax underflowed


def first_nan_of_a_small_network():
    print("\n== 2. the first NaN of a small network, caught by detect_anomaly() ==")
    rng = np.random.default_rng(0)
    x = Tensor(rng.normal(size=(4, 6)), name="x")
    W = Tensor(rng.normal(size=(6, 3)) * 1000, requires_grad=True, name="W")  # far too large
    labels = np.eye(3)[[0, 2, 1, 0]]
    with np.errstate(all="ignore"):  # without the mode: numpy warns, and the loss is simply inf
        loss = -(softmax_then_log(x @ W) * Tensor(labels)).sum()
    print(f"  without detect_anomaly(): loss = {loss.item()}")
    try:
        with detect_anomaly():
            loss = -(softmax_then_log(x @ W) * Tensor(labels)).sum()
            loss.backward()
    except AnomalyError as e:
        print(f"  AnomalyError: {e}")


if __name__ == "__main__":
    why_this_entry_of_dA_prev()
    first_nan_of_a_small_network()
