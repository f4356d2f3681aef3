"""Check the course notebook's functions with tinygrad_cnn.check, and name the bugs.

    python examples/check_my_notebook.py [FILE.py]

FILE defaults to examples/data/step_by_step_seed.py: the functions of the course seed "Convolutional Neural
Networks: Step by Step" as written (only pool_forward's missing colon added). They are imported as a module and
checked with ``check(vars(module))``, the mapping form (in a notebook: ``check(globals())``); one report is
printed per notebook function. The seed's three bugs come out: conv_single_step's float(b) raises TypeError from
numpy 2.4 (and conv_forward, which calls it), conv_backward's [pad:-pad] is empty at pad 0, pool_backward's windows
ignore the stride. Last, pool_backward's wrong entries are drawn to examples/out/check_pool_backward.png (needs
matplotlib). For an .ipynb, run ``python -m tinygrad_cnn.check FILE`` instead. Runs in about a second.
"""

import importlib.util
import os
import sys

from tinygrad_cnn import check

HERE = os.path.dirname(os.path.abspath(__file__))
SEED = os.path.join(HERE, "data", "step_by_step_seed.py")
OUT = os.path.join(HERE, "out")


def load_module(path: str):
    """Import the .py file at path as a module (its code runs)."""
    spec = importlib.util.spec_from_file_location("my_step_by_step", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(path: str) -> int:
    reports = check(vars(load_module(path)))
    for report in reports.values():
        print(report, end="\n\n")
    failed = [name for name, report in reports.items() if not report.ok]
    print(f"{len(reports) - len(failed)} of {len(reports)} functions pass" + (
        f"; failing: {', '.join(failed)}" if failed else ""))
    if "pool_backward" in failed:
        picture = os.path.join(OUT, "check_pool_backward.png")
        try:
            os.makedirs(OUT, exist_ok=True)
            reports["pool_backward"].plot(picture)
            print(f"pool_backward's wrong entries drawn: {picture}")
        except ImportError as e:  # matplotlib is an optional extra
            print(f"no picture: {e}")
        except ValueError as e:  # no wrong entry of dA_prev to draw (it raised, or only its shape is wrong)
            print(f"no picture: {e}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else SEED))
