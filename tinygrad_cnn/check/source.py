"""Reading a learner's file for the command line: run a ``.py`` or the code cells of an ``.ipynb`` and keep what
they define.

Lines starting with ``%`` or ``!`` (IPython magics and shell lines) are skipped (made ``pass``, so line numbers
stay). Each notebook cell, and each top-level statement of a ``.py``, runs on its own: one that fails (say
``from public_tests import *``) is reported and the others still run. Prints are captured. The code is registered
with linecache, so tracebacks and inspect.getsource show the learner's lines. Imports the standard library only.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import linecache
import re
import sys
import types
from pathlib import Path

MAGIC = re.compile(r"^(\s*)[%!]")


def without_magics(code: str) -> str:
    """code with each line that starts with % or ! replaced by ``pass`` at its indentation."""
    return "\n".join(MAGIC.sub(r"\1pass  # ", line) if MAGIC.match(line) else line for line in code.splitlines())


def code_units(path: Path) -> list:
    """[(filename for tracebacks, code)]: the code cells of a notebook, or the whole .py file."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".ipynb":
        return [(str(path), text)]
    notebook = json.loads(text)
    units = []
    for n, cell in enumerate(notebook.get("cells", []), 1):
        if cell.get("cell_type") == "code":
            source = cell.get("source", "")
            units.append((f"{path.name} [cell {n}]", "".join(source) if isinstance(source, list) else source))
    return units


def _statements(tree: ast.Module) -> list:
    return [ast.Module(body=[node], type_ignores=[]) for node in tree.body]


def _run(module: types.ModuleType, filename: str, code: str, problems: list) -> None:
    code = without_magics(code)
    linecache.cache[filename] = (len(code), None, [line + "\n" for line in code.splitlines()], filename)
    try:
        tree = ast.parse(code, filename)
    except SyntaxError as error:
        problems.append(f"{filename} line {error.lineno}: SyntaxError: {error.msg} (not run)")
        return
    for statement in _statements(tree):
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(statement, filename, "exec"), module.__dict__)
        except Exception as error:  # the learner's code: report it and go on
            line = statement.body[0].lineno
            problems.append(f"{filename} line {line}: {type(error).__name__}: {error} (the rest still ran)")


def load(path) -> tuple:
    """Run the file's code -> (its namespace, a list of problems: statements or cells that failed)."""
    path = Path(path)
    module = types.ModuleType("__learner__")
    module.__file__ = str(path)
    problems = []
    sys.modules["__learner__"] = module  # dataclasses and pickle look the module up while it runs
    try:
        for filename, code in code_units(path):
            _run(module, filename, code, problems)
    finally:
        sys.modules.pop("__learner__", None)
    return module.__dict__, problems
