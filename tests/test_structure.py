"""The package's structure: no import cycles, every module in a layer that imports only its own or lower ones (the
engine and below know no Tensor user), each file under 500 lines with a docstring, each op's facts declared beside
it, the contract the op mixins rely on, no timing figure in a comment, methods and functions sharing one definition,
nn's public names; and that no test module imports another.
"""

import ast
import io
import re
import tokenize
from pathlib import Path

import numpy as np
import pytest

import tinygrad_cnn
import tinygrad_cnn.functional as F
from tinygrad_cnn import Tensor, nn
from tinygrad_cnn.ops.facts import REGISTRY, declare

PACKAGE = Path(tinygrad_cnn.__file__).parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set:
    """Package modules that ``path`` imports anywhere (top level or inside functions)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            target = f"{base}.{node.module}" if node.module else base
            names = [f"{target}.{a.name}" for a in node.names]
            submodules = {n for n in names if (PACKAGE.parent / (n.replace(".", "/") + ".py")).exists()
                          or (PACKAGE.parent / n.replace(".", "/")).is_dir()}
            found.update(submodules or {target})  # `from . import no_grad` imports the package's __init__
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            name = node.module if isinstance(node, ast.ImportFrom) else None
            names = [name] if name else [a.name for a in node.names]
            found.update(n for n in names if n and n.startswith("tinygrad_cnn"))
    return found - {module}


def import_graph() -> dict:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {m: {i for i in _imports(p) if i in modules} for m, p in modules.items()}


def test_no_module_imports_one_that_imports_it_back():
    graph = import_graph()
    assert "tinygrad_cnn.tensor" in graph and "tinygrad_cnn.ops.cnn" in graph
    state, cycle = {}, []

    def visit(start):  # iterative DFS; grey = on the current path
        stack = [(start, iter(sorted(graph[start])))]
        state[start], path = "grey", [start]
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = "black"
                stack.pop()
                path.pop()
            elif state.get(child) == "grey":
                cycle.extend(path[path.index(child):] + [child])
                return
            elif child not in state:
                state[child], _ = "grey", path.append(child)
                stack.append((child, iter(sorted(graph[child]))))

    for module in sorted(graph):
        if module not in state and not cycle:
            visit(module)
    assert cycle == [], " -> ".join(cycle)


# Every module of the package, bottom layer first. A module imports only from its own layer or those below;
# a package name (``kernels``) stands for all its modules. A new module must be placed here.
LAYERS = [
    ("numpy helpers, below everything", ["graph", "modes", "dtypes", "ops", "ops.common", "ops.facts", "ops.contract",
                                         "kernels", "threads", "reference", "hints", "arrays", "seeding"]),
    ("anomaly checks", ["anomaly"]),
    ("the recording walk of create_graph (knows no Tensor: it calls the tensors' methods)", ["higher_order"]),
    ("the ops (mixins of Tensor)", ["ops.elementwise", "ops.reduce", "ops.shape", "ops.cnn", "ops.cnn_grad",
                                    "ops.compare", "ops.numpy_protocol", "creation"]),
    ("the drawing (reads any graph; knows no Tensor, so Tensor.draw can use it)", ["viz"]),
    ("the engine", ["tensor"]),
    ("on the engine", ["losses", "autograd", "gradcheck", "data", "steps", "explain_plot", "profile",
                       "flatten_order"]),
    ("functions, readers, layers", ["functional", "explain", "nn", "optim", "io", "plot"]),
    ("on the layers and readers", ["interop", "check", "explorer"]),
    ("the public names", ["__init__"]),
]


ENGINE = "the engine"


def _layer_of() -> dict:
    """{module: index of its layer} for every module of the package; a package entry covers its modules."""
    placed = {}
    for level, (_, names) in enumerate(LAYERS):
        for name in names:
            placed["tinygrad_cnn" if name == "__init__" else f"tinygrad_cnn.{name}"] = level
    layers = {}
    for module in import_graph():
        candidates = [m for m in placed if module == m or module.startswith(m + ".")]
        assert candidates, f"{module} is in no layer of tests/test_structure.py LAYERS: place it there"
        layers[module] = placed[max(candidates, key=len)]
    return layers


def test_every_module_has_a_layer_and_imports_only_its_own_or_lower_ones():
    graph, layers = import_graph(), _layer_of()
    assert len(layers) == len(graph) > 30
    for module, imported in graph.items():
        above = {m for m in imported if layers[m] > layers[module]}
        assert not above, f"{module} ({LAYERS[layers[module]][0]}) imports {above} from a layer above"


def test_the_engine_and_below_import_nothing_that_uses_tensors():
    graph, layers = import_graph(), _layer_of()
    engine = [i for i, (name, _) in enumerate(LAYERS) if name == ENGINE][0]
    for module, level in layers.items():
        if level <= engine:
            assert all(layers[m] <= engine for m in graph[module]), module
    assert graph["tinygrad_cnn.viz"] == {"tinygrad_cnn.viz.build", "tinygrad_cnn.viz.render"}
    build = graph["tinygrad_cnn.viz.build"]
    assert build <= {"tinygrad_cnn.graph", "tinygrad_cnn.ops.facts"}, build
    assert graph["tinygrad_cnn.viz.render"] == set()  # graphviz and the standard library only


def test_each_nn_file_imports_only_the_nn_files_below_it():
    graph = import_graph()
    below = {"tracing": set(), "init": set(), "module": {"tracing"}, "layers": {"module", "init"},
             "containers": {"module"}, "utils": set()}
    found = {m.rpartition(".")[2]: {i.rpartition(".")[2] for i in imports if i.startswith("tinygrad_cnn.nn.")}
             for m, imports in graph.items() if m.startswith("tinygrad_cnn.nn.")}
    assert found == below


def test_the_kernels_import_numpy_and_each_other_only():
    """Kernels know no Tensor: each kernels/ module imports the standard library, numpy and its siblings only."""
    allowed = {"numpy", "__future__", "numbers", "typing", "collections", "functools", "concurrent", "threading",
               "contextvars"}
    for path in sorted((PACKAGE / "kernels").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                assert node.level == 1, (path.name, ast.unparse(node))  # a sibling: from .checks import ...
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert {n.split(".")[0] for n in names} <= allowed, (path.name, ast.unparse(node))
        assert "May import:" in ast.get_docstring(ast.parse(path.read_text())), path.name


def test_only_nn_reads_a_modules_registries():
    """Outside nn/, a Module is read through its methods (named_parameters(recurse=False)...), never its dicts."""
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name != "nn":
            for node in ast.walk(ast.parse(path.read_text())):
                is_registry = isinstance(node, ast.Attribute) and node.attr in ("_parameters", "_buffers", "_modules")
                assert not is_registry, f"{path.name}:{node.lineno} reads .{node.attr}"


def test_no_module_of_the_package_is_over_500_lines_and_each_says_what_it_holds():
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text().count("\n")
        assert lines <= 500, f"{path.relative_to(PACKAGE)} has {lines} lines: split it (one sitting each)"
        assert ast.get_docstring(ast.parse(path.read_text())), f"{path.relative_to(PACKAGE)} has no docstring"


# a time (0.7 ms, 30 us, 4 seconds), a speed ratio (4x faster, 5 to 80 times slower, speeds up ... by 1.6x), a load
TIMING = re.compile(r"\b\d+(?:\.\d+)?\s*(?:ms|us|µs|ns|seconds?)\b|\b\d+(?:\.\d+)?\s*(?:x|times)\b[^.;]*\b(?:faster|"
                    r"slower)\b|\b(?:faster|slower|speeds? up)\b[^.;]*?\b\d+(?:\.\d+)?\s*(?:x|times|%)(?!\w)"
                    r"|\bat load \d|GFLOP", re.IGNORECASE)


def _prose(path: Path):
    """(line, text) of each comment and each docstring or other bare string of a module."""
    text = path.read_text()
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            yield node.lineno, node.value.value


def test_no_timing_figure_in_the_packages_comments_or_docstrings():
    """A comment says why a path exists; figures age with the machine and the next change, so they live in the
    README ("Speed"), docs/DESIGN.md and the benchmark."""
    assert TIMING.search("dx 5.4 -> 4.6 ms") and TIMING.search("4x faster") and TIMING.search("80 times slower")
    assert not TIMING.search("2.25x fewer multiplies") and not TIMING.search("im2col: as fast, and far less memory")
    found = [f"{path.relative_to(PACKAGE)}:{line}: {match.group()!r}" for path in sorted(PACKAGE.rglob("*.py"))
             for line, text in _prose(path) for match in TIMING.finditer(" ".join(text.split()))]
    assert found == [], found


# ----------------------------------------------------------------------------- op facts and the mixins' contract
def test_every_op_of_the_package_records_itself_with_facts_declared_beside_it():
    """No from_op call in the package names its op by a string: each passes the OpFacts declared for it (a
    name bound by ``declare(...)``, or a parameter carrying one); each declare gives a rule."""
    calls = declared = 0
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "from_op":
                assert not isinstance(node.args[2], ast.Constant), f"{path.name}:{node.lineno} names its op by a string"
                calls += 1
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "declare":
                rule = node.args[1]
                text = ast.literal_eval(rule) if isinstance(rule, (ast.Constant, ast.BinOp)) else ""
                assert isinstance(text, str) and len(text) > 3, f"{path.name}:{node.lineno} declares no rule"
                declared += 1
    assert calls >= 30 and declared == len(REGISTRY) >= 35


def test_no_reader_names_an_op_or_formula_the_library_does_not_declare():
    """The readers ask an op's facts object, never a table of op-name strings: no module of the package looks an
    op up in the registry by its name, and explain's own formulas (FORMULAS, and each ``.formula == "..."``) are
    exactly the ones the ops declare, so renaming or dropping an op cannot leave a reader silently wrong."""
    from tinygrad_cnn.explain import FORMULAS
    declared = {f.formula for f in REGISTRY.values()} - {None}
    assert set(FORMULAS) == declared
    compared = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            key = (node.slice if isinstance(node, ast.Subscript) and getattr(node.value, "id", None) == "REGISTRY"
                   else node.args[0] if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "get"
                   and getattr(node.func.value, "id", None) == "REGISTRY" else None)
            by_name = isinstance(key, ast.Constant)
            assert not by_name, f"{path.name}:{node.lineno} looks an op up by its name: use the op's facts object"
            if isinstance(node, ast.Compare) and getattr(node.left, "attr", None) == "formula":
                compared |= {c.value for c in node.comparators if isinstance(c, ast.Constant)}
    assert compared and compared <= declared, compared - declared


def test_an_op_declared_twice_is_refused():
    with pytest.raises(ValueError, match="declare: an op named 'conv2d' is declared twice"):
        declare("conv2d", "dA_prev = ...")


def _names_used_on_self(tree) -> set:
    """Attribute names read on ``self`` or ``cls`` inside the classes of a module."""
    used = set()
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        for node in ast.walk(cls):
            if isinstance(node, ast.Attribute) and getattr(node.value, "id", None) in ("self", "cls"):
                used.add(node.attr)
    return used


def _names_defined(tree) -> set:
    return {item.name if isinstance(item, ast.FunctionDef) else target.id
            for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)) for item in cls.body
            for target in (item.targets if isinstance(item, ast.Assign) else [item])
            if isinstance(item, ast.FunctionDef) or isinstance(target, ast.Name)}


def test_the_mixins_use_only_what_they_define_or_the_contract_declares_and_tensor_has_it():
    mixins = [p for p in (PACKAGE / "ops").glob("*.py") if p.name not in ("contract.py", "facts.py")]
    trees = [ast.parse(p.read_text()) for p in mixins]
    used = set().union(*map(_names_used_on_self, trees))
    defined = set().union(*map(_names_defined, trees))
    contract = ast.parse((PACKAGE / "ops" / "contract.py").read_text())
    declared = {getattr(item, "name", None) or item.target.id for cls in contract.body if isinstance(cls, ast.ClassDef)
                for item in cls.body if isinstance(item, (ast.FunctionDef, ast.AnnAssign))}
    assert used - defined <= declared, used - defined - declared
    assert {"from_op", "as_tensor", "_lift", "_data", "data"} <= declared
    for name in declared:
        assert hasattr(Tensor, name) or name in Tensor.__slots__, name


# ----------------------------------------------------------------------------- public names
def test_methods_are_real_and_functions_share_their_definition():
    from tinygrad_cnn.ops.cnn import CNNOps
    from tinygrad_cnn.ops.elementwise import ElementwiseOps
    assert Tensor.conv2d is CNNOps.conv2d and "W (f_h, f_w, n_C_prev, n_C)" in Tensor.conv2d.__doc__
    assert Tensor.relu is ElementwiseOps.relu
    assert F.relu.__wrapped__ is Tensor.relu and F.conv2d.__doc__ == Tensor.conv2d.__doc__
    assert Tensor.conv2d.__module__ == "tinygrad_cnn.ops.cnn"
    np.testing.assert_array_equal(F.relu(np.array([-1.0, 2.0])).data, [0.0, 2.0])


def test_nn_reexports_exactly_the_public_names_from_the_files_that_define_them():
    import importlib
    assert sorted(nn.__all__) == sorted(
        ["Module", "Conv2d", "ConvTranspose2d", "Linear", "BatchNorm2d", "Dropout", "MaxPool2d", "AvgPool2d",
         "GlobalAvgPool2d", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "Flatten", "Sequential",
         "ModuleList", "ModuleDict", "summary", "he_init", "glorot_init"])
    for name in nn.__all__:
        assert getattr(nn, name).__module__.startswith("tinygrad_cnn.nn."), name
    assert nn.summary is importlib.import_module("tinygrad_cnn.nn.module").summary


# ----------------------------------------------------------------------------- the tests themselves
def test_no_test_module_imports_another():
    """Tests are one module per unit; what they share lives in modules that hold no tests (helpers.py, the *_cases.py
    and check_*.py modules), so running or reading one test module never runs another's tests."""
    tests = Path(__file__).parent
    test_modules = {p.stem for p in tests.glob("test_*.py")}
    for path in sorted(tests.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module or ''}.{a.name}".lstrip(".") for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            imported = set().union(*(n.split(".") for n in names))  # tests.test_pool, test_pool, .test_pool.X
            assert not imported & test_modules, f"{path.name}:{node.lineno} imports {imported & test_modules}"
        assert path.stem.startswith("test_") or "def test_" not in path.read_text(), f"{path.name} holds tests"
