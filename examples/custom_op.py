"""Your own op: swish(x) = x * sigmoid(x), written once with its forward, backward and rule; with its backward
also written on Tensors (graph_backward), so its gradient can be differentiated again (create_graph=True).

Run: python examples/custom_op.py   (writes examples/out/swish.svg when a Graphviz renderer is installed)
"""

from pathlib import Path

import graphviz
import numpy as np

from tinygrad_cnn import Tensor, grad, gradcheck, gradgradcheck, save_graph


def swish(x: Tensor) -> Tensor:
    """x * sigmoid(x) elementwise, any shape -> the same shape (a smooth ReLU, also called SiLU)."""
    s = 1 / (1 + np.exp(-x.data))
    out = x.data * s

    def backward(g):                        # g: the gradient at out, shape out.shape
        return (g * (s + out * (1 - s)),)   # one gradient per input: d swish/dx = s + x*s*(1 - s)

    def graph_backward(g):                  # the same rule with Tensor ops, for create_graph=True
        t = x.sigmoid()
        return (g * (t + x * t * (1 - t)),)
    return Tensor.from_op(out, (x,), "swish", backward, rule="da = g*(s + out*(1 - s)), s = sigmoid(a)",
                          graph_backward=graph_backward)


def main():
    x = Tensor([[-2.0, -0.5, 0.0, 1.5]], requires_grad=True, name="x")
    W = Tensor.randn(4, 3, seed=0, requires_grad=True, name="W")
    loss = swish(x @ W).sum()
    loss.backward()
    print("swish(x @ W).sum() =", round(loss.item(), 6))
    print("dloss/dx =", np.round(x.grad, 6))
    print("gradcheck:", gradcheck(lambda x, W: swish(x @ W), x, W))
    dx, = grad(swish(x).sum(), x, create_graph=True)   # swish'(x), a Tensor in a graph
    d2x, = grad(dx.sum(), x)                            # swish''(x)
    print("second derivative at x =", np.round(d2x.data, 6))
    print("gradgradcheck:", gradgradcheck(lambda x, W: swish(x @ W), x, W))
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    try:
        save_graph(loss, out / "swish.svg", show_rule=True)
        print("drawn with its rule:", out / "swish.svg")
    except graphviz.ExecutableNotFound as e:  # no renderer: viz wrote the .gv source instead, and says where
        print(e)


if __name__ == "__main__":
    main()
