"""A small expression, its backward pass, and the gradients it leaves behind.

Run: python examples/quickstart.py
"""

import numpy as np

import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, gradcheck

np.set_printoptions(precision=4, suppress=True)

# Leaves that require grad are the parameters; x is a plain input.
x = Tensor([[1.0, -2.0, 3.0]], name="x")
W = Tensor.randn(3, 2, seed=0, requires_grad=True, name="W")
b = Tensor([0.5, -0.5], requires_grad=True, name="b")

h = (x @ W + b).tanh()          # (1, 2)
loss = F.cross_entropy(h, [1])  # a scalar
print("h    =", h.data)
print("loss =", round(loss.item(), 6), " made by op:", loss.op)

loss.backward()
print("dloss/dW =\n", W.grad)
print("dloss/db =", b.grad)
print("x needs no gradient, so it has none:", x.grad)

# Leaves accumulate across backward calls (as in PyTorch): zero them between steps.
loss.backward()
print("after a second backward, db doubled:", b.grad)
W.zero_grad()
b.zero_grad()

# Every gradient can be checked against central differences (run in float64).
print("gradcheck:", gradcheck(lambda W, b: F.cross_entropy((x @ W + b).tanh(), [1]), W, b))
