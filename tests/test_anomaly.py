"""detect_anomaly(): the first op (forward) or backward closure that made NaN/inf from finite values is named with the
user's line (in a notebook, its cell); a non-finite constant an op was given (a pad value, a clip bound) is no
anomaly; the mode per thread, as a decorator, nested.
"""

import threading
import warnings

import numpy as np
import pytest

from tinygrad_cnn import AnomalyError, Tensor, detect_anomaly, is_anomaly_enabled, no_grad


def line_of(marker: str) -> int:
    """The line of this file that holds ``marker`` (so the tests do not hard-code line numbers)."""
    lines = open(__file__).read().splitlines()
    return next(n for n, text in enumerate(lines, 1) if marker in text and "line_of(" not in text)


def test_forward_names_the_op_the_line_and_what_its_input_held():
    p = Tensor(np.array([[0.5, 0.2, 0.3, 0.0], [0.1, 0.1, 0.4, 0.4]]), requires_grad=True, name="probs")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a RuntimeWarning from numpy would fail the test: the error replaces it
        with detect_anomaly(), pytest.raises(AnomalyError) as info:
            p.log()  # <- log of zero
    message = str(info.value)
    assert message.startswith("log made non-finite values from finite inputs, at ")
    assert f"{__file__}:{line_of('# <- log of zero')}" in message
    assert "log(probs), shape (2, 4), has 1 of 8 entries NaN or inf, the first -inf at (0, 3)" in message
    assert message.endswith("log got 0.0 at (0, 3)")


def test_forward_with_two_inputs_says_what_each_held_there():
    a = Tensor(np.ones((2, 3)), requires_grad=True, name="a")
    b = Tensor(np.array([1.0, 0.0, 2.0]), name="b")
    with detect_anomaly(), pytest.raises(AnomalyError, match=r"div got a=1.0, b=0.0 at \(0, 1\)"):
        a / b
    W = Tensor(np.full((3, 2), 1e200), requires_grad=True)
    with detect_anomaly(), pytest.raises(AnomalyError, match=r"matmul got a \(2, 3\) in \[.*\], b \(3, 2\) in "):
        (a * 1e200) @ W


def test_non_finite_inputs_do_not_raise_only_the_first_op_does():
    x = Tensor(np.array([np.nan, 1.0]), requires_grad=True)
    with detect_anomaly():
        y = (x * 2).exp()  # NaN in, NaN out: not the first anomaly
    assert np.isnan(y.data[0])


def test_backward_names_the_input_of_the_op_and_the_line_that_created_it():
    x = Tensor(np.array([0.0, 4.0]), requires_grad=True, name="x")
    with detect_anomaly():
        y = x.sqrt()  # <- sqrt made here
        loss = y.sum()
        with pytest.raises(AnomalyError) as info:
            loss.backward()
    message = str(info.value)
    assert message.startswith("backward of sqrt returned a non-finite gradient for its input 0 ('x'), shape (2,)")
    assert "1 of 2 entries NaN or inf, the first inf at (0,), where the input held 0.0" in message
    assert message.endswith(f"the op was created at {__file__}:{line_of('# <- sqrt made here')}")


def test_an_op_made_outside_the_mode_says_its_line_was_not_recorded():
    x = Tensor(np.array([0.0]), requires_grad=True)
    y = x.sqrt()
    with detect_anomaly(), pytest.raises(AnomalyError, match=r"created at a line not recorded \(the op was made "
                                                             r"outside detect_anomaly\(\)\)"):
        y.sum().backward()


def test_outside_the_mode_nothing_is_checked_nor_recorded():
    x = Tensor(np.array([0.0]), requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        y = x.log()
    assert np.isneginf(y.data[0]) and y._where is None and not is_anomaly_enabled()
    with detect_anomaly():
        z = x * 2
        assert is_anomaly_enabled()
    assert z._where.startswith(f"{__file__}:")


def test_users_own_numpy_warnings_still_warn_inside_the_mode():
    with detect_anomaly(), pytest.warns(RuntimeWarning, match="divide by zero"):
        np.log(np.zeros(1))


def test_the_mode_is_a_decorator_per_thread_and_nests():
    @detect_anomaly
    def bare():
        return is_anomaly_enabled()

    @detect_anomaly()
    def called():
        return is_anomaly_enabled()
    assert bare() and called() and not is_anomaly_enabled()
    seen = []
    with detect_anomaly():
        with detect_anomaly():
            pass
        assert is_anomaly_enabled()
        thread = threading.Thread(target=lambda: seen.append(is_anomaly_enabled()))
        thread.start()
        thread.join(timeout=30)
    assert seen == [False] and not is_anomaly_enabled()


def test_ops_in_no_grad_are_checked_too():
    with no_grad(), detect_anomaly(), pytest.raises(AnomalyError, match="log made non-finite"):
        Tensor([0.0]).log()


# ----------------------------------------------------------------------------- an op's own constants
def test_padding_with_minus_inf_before_a_max_pool_is_no_anomaly():
    x = Tensor(np.random.default_rng(0).normal(size=(1, 4, 4, 2)), requires_grad=True)
    with detect_anomaly():
        out = x.pad2d(1, value=-np.inf).max_pool2d(3, stride=1)  # PyTorch's max_pool2d(padding=1)
        out.sum().backward()
    assert np.isfinite(out.data).all() and np.isfinite(x.grad).all()


def test_an_op_that_spreads_the_minus_inf_of_a_pad_is_caught():
    """pad2d(value=-inf) is for a max-pool: an avg-pool or a product over its -inf is the mistake, named there."""
    x = Tensor(np.random.default_rng(0).normal(size=(1, 4, 4, 2)), requires_grad=True)
    with detect_anomaly(), pytest.raises(AnomalyError, match=r"avg_pool2d.* spread the non-finite values of pad2d"
                                                             r".*its own constant value=-inf.*test_anomaly\.py"):
        x.pad2d(1, value=-np.inf).avg_pool2d(3, stride=1)
    with detect_anomaly(), pytest.raises(AnomalyError, match=r"mul.* spread the non-finite values of pad2d"):
        x.pad2d(1, value=-np.inf) * 0.0
    with detect_anomaly(), pytest.raises(AnomalyError, match=r"mul.* spread the non-finite values of pad2d"):
        x.pad2d(1, value=-np.inf).reshape(1, 6, 12) * 0.0  # through an op that only moves values


def test_slicing_a_minus_inf_pad_only_moves_it():
    """A max-pool written by hand: slices of the padded input (getitem moves values, as reshape) and maximum."""
    x = Tensor(np.random.default_rng(0).normal(size=(1, 4, 4, 2)), requires_grad=True)
    with detect_anomaly():
        padded = x.pad2d(1, value=-np.inf)
        out = padded[:, 0:4, 0:4].maximum(padded[:, 1:5, 1:5]).maximum(padded[:, 2:6, 2:6])
        out.sum().backward()
    assert np.isfinite(out.data).all() and np.isfinite(x.grad).all()
    with detect_anomaly(), pytest.raises(AnomalyError, match=r"mul.* spread the non-finite values of pad2d"):
        x.pad2d(1, value=-np.inf)[:, 0:4] * 0.0  # and an op after the slice that spreads it is still caught


def test_clip_with_non_finite_bounds_is_no_anomaly():
    x = Tensor([1.0, -2.0, 3.0], requires_grad=True)
    with detect_anomaly():
        y = x.clip(np.array([np.nan, -np.inf, 0.0]), np.inf)  # NaN asked for: the op's own constant
        z = (x * 2).clip(-np.inf, np.inf)
    assert np.isnan(y.data[0]) and np.isfinite(z.data).all()


def test_an_op_that_makes_inf_from_finite_inputs_is_still_caught():
    x = Tensor([0.0, 1.0], requires_grad=True)
    with detect_anomaly(), pytest.raises(AnomalyError, match=r"log made non-finite values from finite inputs, at "
                                                             r".*test_anomaly\.py:\d+"):
        x.log()
    with detect_anomaly(), pytest.raises(AnomalyError, match=r"div made non-finite values"):
        (x.reshape(1, 1, 2, 1) / 0.0).pad2d(1, value=-np.inf)  # the pad's own -inf is fine; the div's inf is not


# ----------------------------------------------------------------------------- in a notebook
@pytest.mark.slow  # a Jupyter kernel
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
