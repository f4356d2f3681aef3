"""The README's code blocks run as written, and its two commands are the ones CI runs."""

import re

import numpy as np
import pytest

from tests.helpers import ROOT
from tinygrad_cnn import Tensor, nn

README = (ROOT / "README.md").read_text()
BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"block{i}" for i in range(len(BLOCKS))])
def test_readme_python_blocks_run(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    tensors = [v for v in namespace.values() if isinstance(v, Tensor)]
    tensors += [p for v in namespace.values() if isinstance(v, nn.Module) for p in v.parameters()]
    params = [t for t in tensors if t.requires_grad and t.is_leaf]
    if "backward()" in code:  # every block that calls backward leaves a finite gradient on each parameter
        assert params and all(t.grad is not None and np.all(np.isfinite(t.grad)) for t in params)
    elif "check(" in code:  # the checker block: the learner's slip is named as the comment says
        assert not namespace["report"].ok and namespace["report"].tags == {"average_divisor"}
    else:
        assert "steps" in code  # the notebook block: plain numpy arrays
        assert np.isfinite(namespace["dW"]).all() and namespace["dW"].shape == namespace["W"].shape


def test_ci_runs_the_readme_test_command():
    ci_command = (ROOT / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert ci_command in README
    assert "pytest" in ci_command
