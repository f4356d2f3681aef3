"""The examples run end to end as a user runs them, and show what they claim. The two trainings run one epoch here
(--epochs 1); their notebooks run the full trainings, and tests/test_notebooks.py checks the accuracy they reach."""

import re
import subprocess
import sys

import pytest

from tests.helpers import EXAMPLES

pytestmark = pytest.mark.slow  # each starts Python, scikit-learn and matplotlib


def run_example(name: str, *args: str) -> str:
    proc = subprocess.run([sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_quickstart():
    out = run_example("quickstart.py")
    assert "gradcheck: True" in out and "dloss/dW" in out


def test_step_by_step_agrees_with_the_notebook():
    out = run_example("step_by_step.py")
    assert "notebook prints -6.999089450680221" in out
    assert "(1.45243777754, 1.72699145831, 7.83923256462)" in out  # the notebook's conv_backward means
    assert "25 comparisons" in out and "agree" in out


def test_draw_graph_writes_pictures():
    out = run_example("draw_graph.py")
    for picture in ("expression.svg", "expression.png", "cnn_step.svg", "cnn_step.png"):
        assert picture in out
        assert (EXAMPLES / "out" / picture).stat().st_size > 1000


def test_second_order_checks_its_curvature_and_draws_a_conv_backward():
    out = run_example("second_order.py")
    difference = float(re.search(r"H v vs central differences of the gradient: max \|difference\| ([0-9.e+-]+)",
                                 out).group(1))
    assert difference < 1e-6
    power, whole = (float(v) for v in re.search(r"power iteration: ([0-9.-]+); .* largest \|eigenvalue\| ([0-9.-]+)",
                                                out).groups())
    assert abs(power - whole) <= 1e-6 * abs(whole)
    assert "conv2d_weight_grad" in out and "conv_transpose2d" in out
    assert (EXAMPLES / "out" / "conv_backward.svg").stat().st_size > 1000
    total, entry = re.search(r"total \(sum of \d+ terms\): ([0-9.e+-]+)\n  W.grad\[1,0,0,1\]: ([0-9.e+-]+)",
                             out).groups()
    assert abs(float(total) - float(entry)) <= 1e-9 * abs(float(entry))


def test_train_digits_learns_in_one_epoch_and_writes_its_outputs(tmp_path):
    out = run_example("train_digits.py", "--epochs", "1", "--out", str(tmp_path))
    accuracy = float(re.search(r"final test accuracy: ([0-9.]+)", out).group(1))
    assert accuracy >= 0.8  # one epoch (0.89 at seed 0); the full 20: train_digits.ipynb in tests/test_notebooks.py
    for written in ("digits_curves.png", "digits_cnn.npz", "digits_step.svg"):
        assert (tmp_path / written).exists()
    nodes = (tmp_path / "digits_step.svg").read_text().split('<g id="node')
    parameters = [node for node in nodes if ".W</text>" in node or ".b</text>" in node]
    assert parameters and all("grad norm" in node for node in parameters)  # drawn before zero_grad()


def test_train_resnet_digits_learns_in_one_epoch_and_writes_its_outputs(tmp_path):
    """One epoch; the full 15 (at least 98.5% held out, the plain CNN's 98.1% beaten) run in train_resnet_digits.ipynb,
    whose accuracy tests/test_notebooks.py checks."""
    out = run_example("train_resnet_digits.py", "--epochs", "1", "--out", str(tmp_path))
    assert "conv_block.shortcut_conv  Conv2d              (1, 4, 4, 32)" in out  # model.summary: the projection
    assert "identity_block            IdentityBlock       (1, 4, 4, 32)" in out
    accuracy = float(re.search(r"final test accuracy: ([0-9.]+)", out).group(1))
    assert accuracy >= 0.8  # 0.94 at seed 0
    assert re.search(r"wall time: [0-9.]+ s training", out)
    for written in ("resnet_digits_curves.png", "resnet_digits.npz", "resnet_digits_step.svg"):
        assert (tmp_path / written).stat().st_size > 5000, written
    svg = (tmp_path / "resnet_digits_step.svg").read_text()
    assert "over max_nodes=34" in svg  # the drawing was cut to stay readable
    nodes = svg.split('<g id="node')
    assert sum("identity_block." in node for node in nodes) == 6  # the identity block's W, gamma, beta, whole
    parameters = [node for node in nodes if ".W</text>" in node or ".gamma</text>" in node]
    assert parameters and all("grad norm" in node for node in parameters)  # drawn before zero_grad()


def test_custom_op_uses_only_public_names_and_passes_gradcheck():
    source = (EXAMPLES / "custom_op.py").read_text()
    assert "Tensor.from_op(" in source and not re.search(r"(?<![\w_])_[a-z]", source)  # no private name
    out = run_example("custom_op.py")
    assert "gradcheck: True" in out and "gradgradcheck: True" in out and "drawn with its rule" in out
    assert "da = g*(s + out*(1 &#45; s))" in (EXAMPLES / "out" / "swish.svg").read_text()  # SVG escapes "-"


def test_edges_on_a_photo_writes_its_pictures(tmp_path):
    out = run_example("edges_on_a_photo.py", "--out", str(tmp_path), "--weights", str(tmp_path / "none.npz"))
    assert "(1, 427, 640, 1) -> conv2d(W (3, 3, 1, 2), pad=1) (1, 427, 640, 2)" in out
    assert "trained here for 3 epochs" in out
    for picture in ("photo_gray.png", "photo_filters.png", "photo_edges.png", "photo_edges_maxpool.png",
                    "photo_edges_avgpool.png", "digits_filters.png"):
        assert (tmp_path / picture).stat().st_size > 5000, picture


def test_edges_on_a_photo_plots_the_saved_digits_weights(tmp_path):
    """With the weights train_digits.py writes, the example loads them instead of training."""
    sys.path.insert(0, str(EXAMPLES))
    try:
        import train_digits
    finally:
        sys.path.remove(str(EXAMPLES))
    from tinygrad_cnn.io import save
    save(train_digits.make_model(5), tmp_path / "digits_cnn.npz")
    out = run_example("edges_on_a_photo.py", "--out", str(tmp_path), "--weights", str(tmp_path / "digits_cnn.npz"))
    assert f"loaded from {tmp_path / 'digits_cnn.npz'}" in out
    assert (tmp_path / "digits_filters.png").stat().st_size > 5000


def test_explain_gradient_explains_an_entry_and_catches_the_first_nan():
    out = run_example("explain_gradient.py")
    total = re.search(r"total \(sum of 16 terms\): (\S+)", out).group(1)
    assert f"A_prev.grad[0,3,4,2]: {total}" in out  # the terms add up to the entry
    assert "dA_prev[0,3,4,2] += W[2,1,2,4] * dZ[0,1,2,4]" in out and "... and 4 more terms summing to" in out
    assert "without detect_anomaly(): loss = nan" in out
    assert re.search(r"AnomalyError: log made non-finite values from finite inputs, at .*explain_gradient.py:\d+: "
                     r"log\(probs\), shape \(4, 3\), .* log got 0.0 at", out)
    assert (EXAMPLES / "out" / "explain_dA_prev.png").stat().st_size > 10_000


def test_check_my_notebook_reports_the_seeds_three_bugs():
    out = run_example("check_my_notebook.py")
    assert "conv_single_step: FAILED" in out and "write b.item()" in out
    assert "conv_backward: FAILED, 2 of 6 cases failed: crash, unpad" in out and "[pad:-pad], which is empty" in out
    assert "pool_backward: FAILED, 6 of 10 cases failed: stride_ignored" in out
    assert "4 of 8 functions pass; failing: conv_single_step, conv_forward, conv_backward, pool_backward" in out
    assert (EXAMPLES / "out" / "check_pool_backward.png").stat().st_size > 10_000


def test_explore_cnn_profiles_training_steps_and_saves_the_explorer(tmp_path):
    out = run_example("explore_cnn.py", "--steps", "3", "--out", str(tmp_path))
    assert "3 training steps" in out and "profile: 30 op calls" in out
    assert re.search(r"^conv2d\s+6\s", out, flags=re.M) and "backward walk (engine)" in out
    page = (tmp_path / "cnn_explorer.html").read_text()
    for hook in ('data-node="conv1.W"', 'data-node="loss"', 'id="explorer-data"', '"forward-ms"'):
        assert hook in page, hook
    assert "<script src" not in page and "<link" not in page  # one file, nothing loaded from elsewhere
