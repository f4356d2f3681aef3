"""The engine's structure and its thread-safety: no import cycles, every op's rule at its definition,
from_op as a public API with clear errors, grad mode per thread, leaf accumulation safe across threads."""

import ast
import gc
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import tinygrad_cnn
from tinygrad_cnn import Tensor, enable_grad, gradcheck, is_grad_enabled, no_grad, set_grad_enabled
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
    ("numpy helpers, below everything", ["graph", "modes", "dtypes", "ops", "ops.common", "ops.facts",
                                         "kernels", "threads", "reference", "hints", "arrays"]),
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
        assert candidates, f"{module} is in no layer of tests/test_engine.py LAYERS: place it there"
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
    allowed = {"numpy", "__future__", "numbers", "typing", "collections", "functools", "concurrent", "threading"}
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


def test_an_op_declared_twice_is_refused():
    with pytest.raises(ValueError, match="declare: an op named 'conv2d' is declared twice"):
        declare("conv2d", "dA_prev = ...")


def test_methods_are_real_and_functions_share_their_definition():
    import tinygrad_cnn.functional as F
    from tinygrad_cnn.ops.cnn import CNNOps
    from tinygrad_cnn.ops.elementwise import ElementwiseOps
    assert Tensor.conv2d is CNNOps.conv2d and "W (f_h, f_w, n_C_prev, n_C)" in Tensor.conv2d.__doc__
    assert Tensor.relu is ElementwiseOps.relu
    assert F.relu.__wrapped__ is Tensor.relu and F.conv2d.__doc__ == Tensor.conv2d.__doc__
    assert Tensor.conv2d.__module__ == "tinygrad_cnn.ops.cnn"
    np.testing.assert_array_equal(F.relu(np.array([-1.0, 2.0])).data, [0.0, 2.0])


# ----------------------------------------------------------------------------- from_op, the public op API
def square_op(x: Tensor) -> Tensor:
    def _backward(g):
        return (2 * g * x.data,)
    return x.from_op(x.data ** 2, (x,), "square", _backward, rule="da = 2*g*a", power=2)


def test_from_op_records_a_user_op_that_gradcheck_and_the_drawing_accept():
    x = Tensor([1.0, -2.0, 3.0], requires_grad=True, name="x")
    y = square_op(x)
    assert (y.op, y.rule, y.op_label, y.parents) == ("square", "da = 2*g*a", "square power=2", (x,))
    assert gradcheck(square_op, x)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, -4.0, 6.0])
    assert "<i>da = 2*g*a</i>" in y.draw(show_rule=True).source


def test_from_op_needs_a_rule_and_tensor_parents():
    x = Tensor([1.0], requires_grad=True)
    with pytest.raises(TypeError, match="rule"):
        Tensor.from_op(x.data, (x,), "nothing", lambda g: (g,))
    with pytest.raises(TypeError, match=r"from_op: parents of 'twice' must be Tensors, got \['Tensor', 'ndarray'\]"):
        Tensor.from_op(x.data * 2, (x, np.ones(1)), "twice", lambda g: (g, None), rule="da = g")


def test_a_backward_that_returns_the_wrong_number_of_gradients_is_named():
    x = Tensor([1.0, 2.0], requires_grad=True)
    bare = Tensor.from_op(x.data * 2, (x,), "twice", lambda g: 2 * g, rule="da = 2*g")  # an array, not a tuple
    with pytest.raises(TypeError, match=r"backward of 'twice' must return a tuple of 1 gradients .* got ndarray"):
        bare.sum().backward()
    extra = Tensor.from_op(x.data * 2, (x,), "twice", lambda g: (2 * g, g), rule="da = 2*g")
    with pytest.raises(TypeError, match="must return a tuple of 1 gradients .* got tuple of 2"):
        extra.sum().backward()


# ----------------------------------------------------------------------------- grad mode is per thread
def _in_thread(fn):
    result, error = [], []

    def run():
        try:
            result.append(fn())
        except BaseException as e:  # noqa: BLE001 (re-raised in the caller's thread)
            error.append(e)
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    if error:
        raise error[0]
    return result[0]


def test_no_grad_in_one_thread_does_not_stop_recording_in_another():
    x = Tensor([1.0], requires_grad=True)
    inside, leave = threading.Event(), threading.Event()

    def hold_no_grad():
        with no_grad():
            inside.set()
            leave.wait(timeout=30)
    holder = threading.Thread(target=hold_no_grad)
    holder.start()
    assert inside.wait(timeout=30)
    try:
        assert is_grad_enabled() and (x * 2).requires_grad
        assert _in_thread(lambda: (x * 2).requires_grad) is True
    finally:
        leave.set()
        holder.join(timeout=30)


def test_overlapping_no_grad_in_two_threads_leaves_recording_on():
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with no_grad():
            first_in.set()
            second_in.wait(timeout=30)
        first_out.set()

    def second():
        first_in.wait(timeout=30)
        with no_grad():
            second_in.set()
            first_out.wait(timeout=30)
    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert is_grad_enabled()
    assert _in_thread(is_grad_enabled) is True
    assert (Tensor([1.0], requires_grad=True) * 2).requires_grad


def test_set_grad_enabled_and_enable_grad():
    x = Tensor([1.0], requires_grad=True)
    set_grad_enabled(False)
    try:
        assert not is_grad_enabled() and not (x * 2).requires_grad
        with enable_grad():
            assert (x * 2).requires_grad
        assert not is_grad_enabled()
    finally:
        set_grad_enabled(True)
    with set_grad_enabled(False):
        assert not (x * 2).requires_grad
    assert is_grad_enabled()

    @enable_grad()
    def recorded():
        return (x * 2).requires_grad
    with no_grad():
        assert recorded() is True
        assert not is_grad_enabled()


def test_set_grad_enabled_as_a_decorator_sets_the_mode_only_inside_the_function():
    x = Tensor([1.0], requires_grad=True)

    @set_grad_enabled(False)  # as PyTorch: decorating leaves the mode as it was
    def forward():
        return (x * 2).requires_grad
    assert is_grad_enabled() and forward() is False and is_grad_enabled()


def test_a_decorated_function_keeps_grad_mode_right_when_threads_run_it_at_once():
    x = Tensor([1.0], requires_grad=True)
    barrier = threading.Barrier(2, timeout=30)

    @no_grad()
    def inside():
        barrier.wait()
        return (x * 2).requires_grad
    results = []
    threads = [threading.Thread(target=lambda: results.append(inside())) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == [False, False] and is_grad_enabled()


# ----------------------------------------------------------------------------- concurrent backward
def test_concurrent_backward_on_a_shared_parameter_loses_no_update():
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often, so a lost update would show on every run
    try:
        for _ in range(3):
            W = Tensor(np.ones((256, 256)), requires_grad=True)
            start = threading.Barrier(4, timeout=30)

            def work(W=W, start=start):
                start.wait()
                for _ in range(50):
                    (W * 1.0).sum().backward()
            threads = [threading.Thread(target=work) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=60)
            assert not any(t.is_alive() for t in threads)
            assert W.grad.min() == W.grad.max() == 200.0
            assert gc.isenabled()  # backward pauses the collector; threads overlapping must not leave it off
    finally:
        sys.setswitchinterval(interval)


def test_overlapping_backward_walks_restore_the_collector_only_when_the_last_one_ends():
    from tinygrad_cnn.graph import gc_paused
    assert gc.isenabled()
    first, second = gc_paused(), gc_paused()
    first.__enter__()
    second.__enter__()      # a walk in another thread starts while the first runs
    first.__exit__(None, None, None)
    assert not gc.isenabled()   # the second walk still runs: the collector stays paused
    second.__exit__(None, None, None)
    assert gc.isenabled()


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


def test_no_module_of_the_package_is_over_500_lines_and_each_says_what_it_holds():
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text().count("\n")
        assert lines <= 500, f"{path.relative_to(PACKAGE)} has {lines} lines: split it (one sitting each)"
        assert ast.get_docstring(ast.parse(path.read_text())), f"{path.relative_to(PACKAGE)} has no docstring"
