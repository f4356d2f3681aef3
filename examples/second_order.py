"""Gradients of gradients: the curvature of a tiny CNN's loss, and the backward pass of a conv drawn and explained.

    python examples/second_order.py      # writes examples/out/conv_backward.svg

1. Hessian-vector products of a tiny CNN's loss on 64 digits (8x8): ``grad(loss, params, create_graph=True)``
   gives the gradients as Tensors in a graph; ``grad(those, params, grad_outputs=v)`` is H v. Checked against
   central differences of the gradient.
2. The top Hessian eigenvalue by power iteration (v <- Hv / |Hv|), checked against the eigenvalues of the whole
   Hessian (one Hessian-vector product per parameter: 350 of them).
3. The backward pass of a conv as a graph: its input gradient is a conv_transpose2d of the output gradient, its
   weight gradient the conv2d_weight_grad op; drawn with each op's rule, then one entry of the gradient of a
   penalty on those gradients explained term by term.
"""

import os

import numpy as np
from sklearn.datasets import load_digits

from tinygrad_cnn import Tensor, explain, grad, nn
from tinygrad_cnn.functional import cross_entropy
from tinygrad_cnn.viz import save_graph

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "out")


def tiny_cnn_loss(shift=None):
    """(loss, params): a conv (3x3, 2 filters) -> tanh -> max pool -> linear CNN on 64 digits, in float64; shift:
    arrays added to the parameters."""
    digits = load_digits()
    x = digits.images[:64, :, :, None] / 16.0
    model = nn.Sequential(nn.Conv2d(1, 2, 3, pad=1, seed=0, dtype=np.float64), nn.Tanh(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(32, 10, seed=1, dtype=np.float64))
    params = model.parameters()
    for p, d in zip(params, shift or [], strict=False):
        p.data = p.data + d
    return cross_entropy(model(Tensor(x)), digits.target[:64]), params


def flat(tensors) -> np.ndarray:
    return np.concatenate([np.asarray(t).ravel() for t in tensors])


def split(v: np.ndarray, params) -> list:
    """A flat vector as arrays of the parameters' shapes."""
    parts, start = [], 0
    for p in params:
        parts.append(v[start:start + p.size].reshape(p.shape))
        start += p.size
    return parts


def hessian_vector_products():
    print("== 1. Hessian-vector products of a tiny CNN's loss ==")
    loss, params = tiny_cnn_loss()
    gradients = grad(loss, params, create_graph=True)  # Tensors in a graph: they can be differentiated again
    n = sum(p.size for p in params)
    print(f"loss {loss.item():.6f}, {n} parameters; |gradient| {np.linalg.norm(flat(gradients)):.6f}")

    def hvp(v: np.ndarray) -> np.ndarray:
        return flat(grad(gradients, params, grad_outputs=split(v, params)))

    v = np.random.default_rng(0).standard_normal(n)
    hv = hvp(v)
    eps, shifted = 1e-5, []
    for sign in (1, -1):  # the gradient at params +- eps * v (a fresh model), without create_graph
        shifted.append(flat(grad(*tiny_cnn_loss([sign * eps * d for d in split(v, params)]))))
    numeric = (shifted[0] - shifted[1]) / (2 * eps)
    print(f"H v vs central differences of the gradient: max |difference| {np.abs(hv - numeric).max():.2e} "
          f"(|H v| {np.linalg.norm(hv):.4f})")
    return hvp, n


def top_eigenvalue(hvp, n: int):
    print("\n== 2. the top Hessian eigenvalue by power iteration ==")
    v = np.random.default_rng(1).standard_normal(n)
    v /= np.linalg.norm(v)
    for step in range(1, 41):
        hv = hvp(v)
        eigenvalue = float(v @ hv)
        v = hv / np.linalg.norm(hv)
        if step % 10 == 0:
            print(f"  step {step}: v.Hv = {eigenvalue:.6f}")
    H = np.stack([hvp(e) for e in np.eye(n)])  # one column per parameter
    eigenvalues = np.linalg.eigvalsh((H + H.T) / 2)
    top = eigenvalues[np.argmax(np.abs(eigenvalues))]
    print(f"power iteration: {eigenvalue:.6f}; the whole Hessian ({n}x{n}, asymmetry {np.abs(H - H.T).max():.1e}): "
          f"largest |eigenvalue| {top:.6f}, smallest eigenvalue {eigenvalues[0]:.6f}")


def conv_backward_drawn_and_explained():
    print("\n== 3. the backward pass of a conv, drawn and explained ==")
    rng = np.random.default_rng(2)
    A_prev = Tensor(rng.standard_normal((1, 4, 4, 1)), requires_grad=True, name="A_prev")
    W = Tensor(rng.standard_normal((2, 2, 1, 2)), requires_grad=True, name="W")
    Z = A_prev.conv2d(W, stride=2)
    Z.name = "Z"
    dA_prev, dW = grad(Z.tanh().sum(), [A_prev, W], create_graph=True)
    dA_prev.name, dW.name = "dA_prev", "dW"
    penalty = (dA_prev * dA_prev).sum() + (dW * dW).sum()
    penalty.name = "penalty"
    recorded = sorted({t.op for t in _ops(penalty)})
    print(f"the ops of the penalty's graph: {', '.join(recorded)}")
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "conv_backward.svg")
    save_graph(penalty, path, show_rule=True, title="a conv's gradients, recorded by grad(create_graph=True)")
    print(f"  drawing: {path}")
    penalty.backward()
    print(explain(penalty, W, (1, 0, 0, 1)).table(limit=6))


def _ops(root):
    from tinygrad_cnn.graph import topo_order
    return [t for t in topo_order(root) if t.op]


if __name__ == "__main__":
    hvp, n = hessian_vector_products()
    top_eigenvalue(hvp, n)
    conv_backward_drawn_and_explained()
