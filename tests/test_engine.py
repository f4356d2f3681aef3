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


def test_the_engine_and_the_ops_stay_below_drawing_layers_and_optimizers():
    graph = import_graph()
    low = ["tinygrad_cnn.kernels", "tinygrad_cnn.graph", "tinygrad_cnn.modes", "tinygrad_cnn.dtypes",
           "tinygrad_cnn.anomaly", "tinygrad_cnn.ops.common", "tinygrad_cnn.ops.elementwise",
           "tinygrad_cnn.ops.reduce", "tinygrad_cnn.ops.shape", "tinygrad_cnn.ops.cnn"]
    high = {"tinygrad_cnn.nn", "tinygrad_cnn.optim", "tinygrad_cnn.io", "tinygrad_cnn.functional",
            "tinygrad_cnn.tensor", "tinygrad_cnn.ops.loss", "tinygrad_cnn.viz", "tinygrad_cnn.gradcheck",
            "tinygrad_cnn.check"}
    for module in low:
        assert not graph[module] & high, (module, graph[module] & high)
    assert graph["tinygrad_cnn.viz"] <= {"tinygrad_cnn.graph"}, graph["tinygrad_cnn.viz"]


def test_every_op_in_the_package_gives_a_rule_where_it_records_itself():
    calls = 0
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "from_op":
                rule = {k.arg: k.value for k in node.keywords}.get("rule")
                assert rule is not None, f"{path.name}:{node.lineno} records an op without rule="
                text = rule.value if isinstance(rule, ast.Constant) else ast.unparse(rule)
                assert isinstance(rule, (ast.Constant, ast.JoinedStr)) and len(text) > 3, (path.name, node.lineno)
                calls += 1
    assert calls >= 30


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
