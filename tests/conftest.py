"""Shared test settings: one BLAS thread, hypothesis's CI profile, the Jupyter kernel the notebook tests run in.

One thread: the suite runs on shared machines (CI's 2 cores, other jobs), where BLAS's own threads wait for cores
others hold: with one other busy process, train_resnet_digits.py trained in 4 s on one thread and in 26 to 60 s on
two. The variable is set before the package is imported, for this process and every example and notebook kernel it
starts (they inherit it); set TINYGRAD_CNN_NUM_THREADS yourself to run the suite on more. tests/test_threads.py sets
the thread count it tests, and starts its interpreters without the variable.
"""

import os

os.environ.setdefault("TINYGRAD_CNN_NUM_THREADS", "1")

import json  # noqa: E402  (after the thread setting, before anything imports the package)
import sys  # noqa: E402

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

from tests.helpers import ROOT  # noqa: E402

settings.register_profile("ci", derandomize=True, print_blob=True)  # under CI the same examples every run
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
