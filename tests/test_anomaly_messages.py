"""detect_anomaly's messages (issue 21, items 3 and 4): a non-finite constant an op was given as its own (a pad value,
a clip bound) is no anomaly; in a Jupyter notebook the line is named as IPython does, "cell In[n], line k"."""

import numpy as np
import pytest

from tinygrad_cnn import AnomalyError, Tensor, detect_anomaly


def test_padding_with_minus_inf_before_a_max_pool_is_no_anomaly():
    x = Tensor(np.random.default_rng(0).normal(size=(1, 4, 4, 2)), requires_grad=True)
    with detect_anomaly():
        out = x.pad2d(1, value=-np.inf).max_pool2d(3, stride=1)  # PyTorch's max_pool2d(padding=1)
        out.sum().backward()
    assert np.isfinite(out.data).all() and np.isfinite(x.grad).all()


def test_clip_with_non_finite_bounds_is_no_anomaly():
    x = Tensor([1.0, -2.0, 3.0], requires_grad=True)
    with detect_anomaly():
        y = x.clip(np.array([np.nan, -np.inf, 0.0]), np.inf)  # NaN asked for: the op's own constant
        z = (x * 2).clip(-np.inf, np.inf)
    assert np.isnan(y.data[0]) and np.isfinite(z.data).all()


def test_an_op_that_makes_inf_from_finite_inputs_is_still_caught():
    x = Tensor([0.0, 1.0], requires_grad=True)
    with detect_anomaly(), pytest.raises(AnomalyError, match=r"log made non-finite values from finite inputs, at "
                                                             r".*test_anomaly_messages\.py:\d+"):
        x.log()
    with detect_anomaly(), pytest.raises(AnomalyError, match=r"div made non-finite values"):
        (x.reshape(1, 1, 2, 1) / 0.0).pad2d(1, value=-np.inf)  # the pad's own -inf is fine; the div's inf is not


def test_in_a_notebook_the_line_is_named_by_its_cell(this_python_kernel):
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import numpy as np\nfrom tinygrad_cnn import Tensor, detect_anomaly"),
        nbformat.v4.new_code_cell("x = Tensor([0.0, 1.0], requires_grad=True)\n"
                                  "try:\n"
                                  "    with detect_anomaly():\n"
                                  "        y = x.log()\n"
                                  "except Exception as e:\n"
                                  "    print(e)"),
    ])
    nbclient.NotebookClient(notebook, kernel_name=this_python_kernel, timeout=120).execute()
    printed = "".join(out.get("text", "") for out in notebook.cells[1].outputs)
    assert "log made non-finite values from finite inputs, at cell In[2], line 4:" in printed, printed
    assert "ipykernel" not in printed
