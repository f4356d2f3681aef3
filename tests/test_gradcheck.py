"""gradcheck itself (gradcheck.py): it names the failing input and element, catches a layer whose gradient is lost, and
needs a function that returns a Tensor. (Every op's gradients are checked with it in the op's own tests.)
"""

import numpy as np
import pytest

from tests.helpers import gradcheck_layer
from tinygrad_cnn import GradcheckError, Tensor, gradcheck, nn


def test_gradcheck_names_the_failing_input_and_element():
    def wrong(x):  # forward x**2, backward claims 3x
        out = x.data ** 2
        return Tensor.from_op(out, (x,), "wrong", lambda g: (g * 3 * x.data,), rule="da = 3*g*a (wrong on purpose)")
    x = Tensor([1.0, 2.0], requires_grad=True, name="x")
    with pytest.raises(GradcheckError, match=r"input 0 \('x'\) of shape \(2,\), element \(0,\): analytic"):
        gradcheck(wrong, x)


def test_gradcheck_catches_a_wrong_layer():
    class Broken(nn.Linear):
        def forward(self, x):
            return x @ self.W + Tensor(self.b.data)  # b cut from the graph: its gradient is lost

    with pytest.raises(GradcheckError, match=r"input 2 \('b'\) of shape \(2,\)"):
        gradcheck_layer(Broken(3, 2, seed=0), (4, 3))


def test_gradcheck_needs_fn_to_return_a_tensor():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(TypeError, match="fn must return a Tensor"):
        gradcheck(lambda t: t.data, x)
