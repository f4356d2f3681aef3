"""The command line: ``python -m tinygrad_cnn.check FILE`` (a .py, or an .ipynb's code cells).

Runs the file's code, checks every notebook function it defines, prints one report each; exits 0 when all pass,
1 otherwise, 2 when none was found (or the file cannot be read). Imports the check package.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import NAMES, check_all
from .source import load

DESCRIPTION = f"""\
Check your own functions of the course notebook "Convolutional Neural Networks: Step by Step" against
tinygrad_cnn, and name the bug. The functions:
  {", ".join(NAMES[:4])},
  {", ".join(NAMES[4:])}.

This RUNS THE CODE OF FILE in this Python process (a .py file, or the code cells of an .ipynb; lines starting
with % or ! are skipped; a cell or statement that fails is reported and the others still run), so run it on
your own code only. Each function found is then called on the notebook's cases and on cases that expose the
known bugs; one report is printed per function.

exit status: 0 every function found passes, 1 one fails, 2 none was found (or FILE cannot be read)."""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tinygrad_cnn.check", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", metavar="FILE", help="a .py or .ipynb file that defines the notebook's functions")
    args = parser.parse_args(argv)
    os.environ.setdefault("MPLBACKEND", "Agg")  # a plt.show() in the learner's code draws nothing
    try:
        namespace, problems = load(args.file)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        print(f"check: cannot read {args.file}: {error}")
        return 2
    for problem in problems:
        print(f"note: {problem}")
    reports = check_all(namespace)
    if not reports:
        print(f"check: no notebook function found in {args.file} (looked for {', '.join(NAMES)})")
        return 2
    for report in reports.values():
        print(report, end="\n\n")
    failed = [name for name, report in reports.items() if not report.ok]
    print(f"{len(reports) - len(failed)} of {len(reports)} functions passed"
          + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
