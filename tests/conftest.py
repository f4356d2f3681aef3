"""Shared test settings: under CI, hypothesis draws the same examples on every run (no flaky reds); the Jupyter
kernel the notebook tests run in."""

import json
import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parent.parent

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="module")
def this_python_kernel(tmp_path_factory):
    """A kernelspec "python3" that runs this interpreter with the package importable (JUPYTER_PATH first)."""
    jupyter = tmp_path_factory.mktemp("jupyter")
    spec = jupyter / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (tinygrad_cnn tests)", "language": "python",
        "env": {"PYTHONPATH": str(ROOT)},
    }))
    mp = pytest.MonkeyPatch()
    mp.setenv("JUPYTER_PATH", str(jupyter))
    yield "python3"
    mp.undo()
