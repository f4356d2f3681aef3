"""Tests for tinygrad_cnn.viz: the DOT source, real rendering, the paths without a renderer, and graphviz loaded
only when something is drawn."""

import importlib.util
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import graphviz
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_cnn.functional as F
from tests.helpers import ROOT
from tinygrad_cnn import viz
from tinygrad_cnn.tensor import Tensor, topo_order
from tinygrad_cnn.viz import RENDERER_ENV, RendererNotFound, build, draw_graph, find_renderer, render, save_graph

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EXAMPLE = ROOT / "examples" / "draw_graph.py"


def expression():
    """y = sum(x * w + x) with a scalar w: x is used twice, c is a constant."""
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True, name="x")
    w = Tensor(2.0, requires_grad=True, name="w")
    c = Tensor([0.5, 0.5, 0.5], name="c")
    y = ((x * w + x) * c).sum()
    return x, w, c, y


def node_labels(source):
    """{node id: label} of the nodes in a DOT source."""
    return dict(re.findall(r"^\s*(n\d+) \[label=<(.*)>", source, flags=re.M))


def squeezed(text):
    """Runs of spaces as one: labels pad their lines with spaces, room for a wider font (see viz.build.SLACK)."""
    return re.sub(" +", " ", text)


def edges(source):
    return re.findall(r"^\s*(\w+) -> (\w+)", source, flags=re.M)


def node_attrs(source, node):
    return re.search(rf"^\s*{node} \[.*$", source, flags=re.M).group(0)


# --------------------------------------------------------------------------- DOT source


def test_nodes_edges_and_shapes():
    x, w, c, y = expression()
    source = draw_graph(y).source
    labels = node_labels(source)
    # x, w, mul, add, c, mul, sum: x is shared but drawn once; one edge per operand.
    assert len(labels) == 7
    assert len(edges(source)) == 7
    assert sum("<b>x</b>" in label for label in labels.values()) == 1
    assert "(3,) float32" in labels["n0"] and "scalar float32" in labels["n1"]
    assert labels["n6"].startswith('<table') and "<b>sum</b>" in labels["n6"]
    assert "value 9" in labels["n6"]  # (2+2+3*... ) -> sum((3x) * 0.5) = 9
    assert ("n0", "n2") in edges(source) and ("n0", "n3") in edges(source)


def test_grads_absent_before_backward_and_present_after():
    *_, y = expression()
    before = node_labels(draw_graph(y).source)
    assert not any("grad" in label for label in before.values())
    y.backward()
    after = node_labels(draw_graph(y).source)
    assert "grad 1" in after["n6"]                     # d y / d y
    assert "values [1 2 3]" in after["n0"]            # small tensors show every value ...
    assert "grad [1.5 1.5 1.5]" in after["n0"]        # ... and every gradient entry: (w + 1) * c
    assert "grad 3" in after["n1"]                     # d y / d w = sum(x * c) = 3
    assert "grad" not in after["n4"]                   # the constant c has none
    assert "grad " not in draw_graph(y, show_grad=False).source
    assert "mean" not in draw_graph(y, show_data=False).source


def test_larger_tensors_show_summaries():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="x")
    y = (x * x).sum()
    y.backward()
    label = node_labels(draw_graph(y).source)["n0"]
    assert "mean 2.5 std 1.708" in label and f"grad norm {np.linalg.norm(2 * x.data):.4g}" in label


def test_same_source_every_run():
    assert draw_graph(expression()[-1]).source == draw_graph(expression()[-1]).source


def test_colours_tell_kinds_apart():
    x, w, c, y = expression()
    source = draw_graph(y).source
    assert "fillcolor=lightblue" in node_attrs(source, "n0")          # parameter
    assert "fillcolor=gray90" in node_attrs(source, "n4")             # constant
    assert "fillcolor=white" in node_attrs(source, "n2")              # interior
    assert "fillcolor=darkolivegreen1" in node_attrs(source, "n6")    # root
    for kind, colour in build.COLOURS.items():
        assert colour in viz.__doc__, kind                            # the legend is written


def test_op_hyper_parameters_and_rankdir():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    y = x.softmax(axis=1).clip(0.1, 0.9).sum()
    source = squeezed(draw_graph(y, rankdir="LR").source)
    assert "rankdir=LR" in source
    assert "<b>softmax</b> axis=1" in source
    assert "<b>clip</b> low=0.1 high=0.9" in source
    assert "<i>parameter</i>" in source                 # unnamed parameter
    assert "rankdir=TB" in draw_graph(y).source


def test_cnn_ops_show_their_hyper_parameters():
    x = Tensor(np.ones((1, 9, 9, 2), np.float32), name="image")
    W = Tensor(np.full((3, 3, 2, 4), 0.1, np.float32), requires_grad=True, name="W")
    y = F.max_pool2d(F.conv2d(x, W, stride=2, pad=1), 3, stride=2)
    source = squeezed(draw_graph(y.sum(), title="a <CNN>").source)
    assert "<b>conv2d</b> stride=2 pad=1" in source
    assert "<b>max_pool2d</b> f=3 stride=2" in source
    assert "(1, 5, 5, 4) float32" in source and "(1, 2, 2, 4) float32" in source
    assert 'label=" a <CNN> "' in source              # a plain caption, not HTML


def test_example_script_writes_svg_and_png(tmp_path):
    spec = importlib.util.spec_from_file_location("draw_graph_example", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    written = example.main(docs=True, out=tmp_path / "out", docs_dir=tmp_path / "docs")
    assert [p.name for p in written] == [
        "expression.svg", "expression.png", "cnn_step.svg", "cnn_step.png", "cnn_step.png"]
    assert all(p.stat().st_size > 1000 for p in written)
    svg = (tmp_path / "out" / "cnn_step.svg").read_text()
    assert ">conv2d<" in svg and "stride=1 pad=1" in svg and "conv.W" in svg


def test_params_mapping_names_tensors():
    x, w, c, y = expression()
    labels = node_labels(draw_graph(y, params={"weight": w, "scale": c}).source)
    assert "<b>weight</b>" in labels["n1"] and "<b>w</b>" not in labels["n1"]
    assert "<b>scale</b>" in labels["n4"]
    assert "<b>x</b>" in labels["n0"]                  # Tensor.name where params has none
    pairs = draw_graph(y, params=[("weight", w)]).source
    assert "<b>weight</b>" in pairs


def test_names_are_escaped_and_ascii():
    x = Tensor([1.0, 2.0], requires_grad=True, name='a<b>&"c"\u00e9')
    source = draw_graph((x * 2).sum()).source
    assert "<b>a&lt;b&gt;&amp;&quot;c&quot;\\xe9</b>" in source
    assert source.isascii()
    with pytest.raises(ValueError):
        draw_graph((x * 2).sum()).write("no_extension")


@settings(max_examples=40, deadline=None)
@given(name=st.text(max_size=12), op_arg=st.text(max_size=6))
def test_any_name_gives_ascii_source_that_renders(name, op_arg):
    x = Tensor([1.0, 2.0], requires_grad=True, name=name)
    y = Tensor.from_op(x.data * 2, (x,), "scale", None, rule="da = 2*g", note=op_arg)
    graph = draw_graph(y, params={name: x}, title=name)
    assert graph.source.isascii()
    assert "<svg" in graph.pipe(format="svg", encoding="utf-8", quiet=True)


def test_nan_and_inf_are_flagged():
    x = Tensor([-1.0, 0.0, 4.0], requires_grad=True, name="x")
    with np.errstate(divide="ignore", invalid="ignore"):
        y = x.log()                                   # NaN, -inf, finite
    labels = node_labels(draw_graph(y).source)
    assert '<font color="red">1 NaN, 1 inf</font>' in labels["n1"]
    assert "color=red" in node_attrs(draw_graph(y).source, "n1")
    assert "red" not in labels["n0"]
    with np.errstate(divide="ignore"):
        y.sum().backward()
    grads = node_labels(draw_graph(y).source)
    assert "grad: 1 inf" in grads["n0"]                # d log(x) / dx = 1/x at 0


def test_small_graph_has_no_note():
    assert "note" not in draw_graph(expression()[-1]).source


def test_large_graph_collapses_reshapes_then_prunes_with_a_note():
    x = Tensor(np.ones((2, 3)), requires_grad=True, name="x")
    y = x
    for _ in range(30):
        y = (y * 1.0).reshape(3, 2).reshape(2, 3)
    loss = y.sum()                                    # 1 + 30 * (const + mul + 2 reshapes) + 1
    everything = draw_graph(loss, max_nodes=None).source
    assert len(node_labels(everything)) == 122 and "note" not in everything

    collapsed = draw_graph(loss, max_nodes=70).source  # 62 once reshapes are edge labels
    assert len(node_labels(collapsed)) == 62
    assert "reshape reshape" in collapsed and "60 reshape-like ops (reshape)" in collapsed
    assert "not drawn" not in collapsed

    pruned = draw_graph(loss, max_nodes=20).source
    assert len(node_labels(pruned)) == 20
    assert "42 tensors nearest the inputs not drawn" in pruned
    assert [head for tail, head in edges(pruned) if tail == "note"] == ["n0"]  # one dashed edge
    assert "over max_nodes=20: \\n 60 reshape-like" in squeezed(pruned)
    assert "darkolivegreen1" in pruned                # the root is always kept


def test_tensor_draw_method():
    *_, y = expression()
    assert y.draw(rankdir="LR").source == draw_graph(y, rankdir="LR").source


# --------------------------------------------------------------------------- graphviz loaded only to draw


def run_python(code):
    """Run ``code`` in a fresh interpreter (nothing imported yet) on this checkout; return what it printed."""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split("\n")[:-1]


def test_import_tinygrad_cnn_loads_neither_graphviz_nor_matplotlib_and_drawing_then_works():
    printed = run_python(
        "import sys\n"
        "import tinygrad_cnn\n"
        "from tinygrad_cnn.viz import build  # deciding what to draw needs no graphviz either\n"
        "print(sorted({name.split('.')[0] for name in sys.modules} & {'graphviz', 'matplotlib'}))\n"
        "x = tinygrad_cnn.Tensor([1.0, 2.0], requires_grad=True, name='x')\n"
        "graph = (x * x).sum().draw()\n"
        "import graphviz\n"
        "print(isinstance(graph, graphviz.Digraph), '<b>x</b>' in graph.source)\n"
        "print('<svg' in graph.pipe(format='svg', encoding='utf-8'))\n")
    assert printed == ["[]", "True True", "True"]


def test_the_names_that_need_graphviz_load_it_when_first_looked_up():
    printed = run_python(
        "import sys\n"
        "import tinygrad_cnn.viz as viz\n"
        "print('graphviz' in sys.modules, 'RendererNotFound' in dir(viz))\n"
        "print(viz.RENDERER_ENV, 'graphviz' in sys.modules)\n")
    assert printed == ["False True", "TINYGRAD_CNN_DOT True"]
    assert viz.TensorGraph is render.TensorGraph and viz.find_renderer is render.find_renderer
    assert issubclass(viz.RendererNotFound, graphviz.ExecutableNotFound)
    assert set(viz.__all__) <= set(dir(viz))
    with pytest.raises(AttributeError, match="module 'tinygrad_cnn.viz' has no attribute 'Digraph'"):
        viz.Digraph  # noqa: B018


def test_the_drawing_is_plain_data_that_render_copies_statement_by_statement():
    *_, y = expression()
    built = build.drawing(y, rankdir="LR", title="a <b>")
    assert [node.id for node in built.nodes] == [f"n{i}" for i in range(7)] and all(n.html for n in built.nodes)
    assert built.nodes[-1].attrs == {"fillcolor": build.COLOURS["root"]} and len(built.edges) == 7
    assert built.attrs["rankdir"] == "LR" and built.caption["label"] == " a <b> "
    source = render.to_graph(built).source
    assert source == draw_graph(y, rankdir="LR", title="a <b>").source and 'label=" a <b> "' in source

    x = Tensor(np.ones((2, 3)), requires_grad=True)
    z = x
    for _ in range(10):
        z = (z * 1.0).reshape(3, 2).reshape(2, 3)
    pruned = build.drawing(z.sum(), max_nodes=8)
    note = pruned.nodes[0]
    assert note.id == "note" and not note.html and "not drawn" in note.label
    assert [(e.tail, e.attrs) for e in pruned.edges if e.tail == "note"] == [("note", {"style": "dashed"})]
    assert {e.label for e in pruned.edges} == {None, "reshape reshape"}


# --------------------------------------------------------------------------- real rendering


def test_renders_svg_and_png(tmp_path):
    *_, y = expression()
    y.backward()
    graph = draw_graph(y, rankdir="LR")
    svg = graph.pipe(format="svg", encoding="utf-8")
    assert "<svg" in svg and "grad [1.5 1.5 1.5]" in svg
    assert graph.pipe(format="png").startswith(PNG_MAGIC)
    save_graph(y, tmp_path / "step.svg")
    save_graph(y, tmp_path / "step.png")
    assert "<svg" in (tmp_path / "step.svg").read_text()
    assert (tmp_path / "step.png").read_bytes().startswith(PNG_MAGIC)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step.png", "step.svg"]


def test_render_method_and_jupyter_repr(tmp_path):
    graph = draw_graph(expression()[-1])
    out = graph.render(outfile=tmp_path / "g.png")
    assert out == str(tmp_path / "g.png") and (tmp_path / "g.gv").exists()
    assert (tmp_path / "g.png").read_bytes().startswith(PNG_MAGIC)
    assert "<svg" in graph._repr_mimebundle_()["image/svg+xml"]
    assert "<svg" in jupyter_display(graph)["image/svg+xml"]


def jupyter_display(obj):
    """What IPython's display (a notebook's Out cell) holds for ``obj``: {mime type: data}."""
    from IPython.core.formatters import DisplayFormatter  # ipykernel, a test dependency, brings IPython
    return DisplayFormatter().format(obj)[0]


# --------------------------------------------------------------------------- finding a renderer


@pytest.fixture
def pure_binary():
    """The graphviz-pure that the viz extra installs (required: these tests must not skip)."""
    beside_python = shutil.which("graphviz-pure", path=str(Path(sys.executable).parent))
    path = beside_python or shutil.which("graphviz-pure")
    assert path, 'graphviz-pure is missing: .venv/bin/pip install -e ".[viz]"'
    return path


@pytest.fixture
def no_renderer(monkeypatch, tmp_path):
    """Empty PATH, no env var, and nothing next to the running Python."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv(RENDERER_ENV, raising=False)
    monkeypatch.setattr(render, "python_scripts_dir", lambda: empty)


@pytest.fixture
def only_pure_next_to_python(monkeypatch, tmp_path, pure_binary):
    """The Jupyter-kernel case: the venv's bin is not on PATH, graphviz-pure sits beside Python."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv(RENDERER_ENV, raising=False)
    monkeypatch.setattr(render, "python_scripts_dir", lambda: Path(pure_binary).parent)


def test_no_renderer_message_and_gv_fallback(no_renderer, tmp_path):
    *_, y = expression()
    with pytest.raises(graphviz.ExecutableNotFound) as caught:  # existing handlers still catch it
        save_graph(y, tmp_path / "step.svg")
    message = str(caught.value)
    assert isinstance(caught.value, RendererNotFound)
    assert '.venv/bin/pip install -e ".[viz]"' in message and "apt install graphviz" in message
    assert f"written to {tmp_path / 'step.gv'}" in message
    assert (tmp_path / "step.gv").read_text() == draw_graph(y).source
    assert not (tmp_path / "step.svg").exists()
    with pytest.raises(RendererNotFound, match="written to .*g.gv"):
        draw_graph(y).render(outfile=tmp_path / "g.png")
    save_graph(y, tmp_path / "only.gv")               # source formats need no renderer
    save_graph(y, tmp_path / "only.dot")
    assert (tmp_path / "only.dot").read_text() == draw_graph(y).source


def test_no_renderer_jupyter_repr_is_the_message(no_renderer):
    graph = draw_graph(expression()[-1])
    bundle = graph._repr_mimebundle_()
    assert list(bundle) == ["text/plain"]
    assert '.venv/bin/pip install -e ".[viz]"' in bundle["text/plain"]
    assert "Traceback" not in bundle["text/plain"]
    assert jupyter_display(graph) == bundle           # the message alone: no empty image, no traceback
    with pytest.raises(RendererNotFound, match="Cannot render png"):
        graph.pipe(format="png")


def test_finds_graphviz_pure_next_to_python(only_pure_next_to_python, pure_binary, tmp_path):
    renderer = find_renderer("png")
    assert renderer.path == pure_binary and renderer.pure
    save_graph(expression()[-1], tmp_path / "g.png")
    assert (tmp_path / "g.png").read_bytes().startswith(PNG_MAGIC)


def test_pdf_with_only_graphviz_pure_asks_for_system_graphviz(only_pure_next_to_python, tmp_path):
    with pytest.raises(RendererNotFound) as caught:
        save_graph(expression()[-1], tmp_path / "g.pdf")
    message = str(caught.value)
    assert "pdf needs the system Graphviz" in message and "apt install graphviz" in message
    assert "written to" in message and (tmp_path / "g.gv").exists()


def test_env_var_names_the_renderer(no_renderer, monkeypatch, pure_binary, tmp_path):
    monkeypatch.setenv(RENDERER_ENV, pure_binary)
    assert find_renderer().path == pure_binary
    assert "<svg" in draw_graph(expression()[-1]).pipe(format="svg", encoding="utf-8")
    monkeypatch.setenv(RENDERER_ENV, str(tmp_path / "missing-dot"))
    with pytest.raises(RendererNotFound, match=rf"{RENDERER_ENV}=.*missing-dot' is not an executable"):
        find_renderer()


def test_env_var_naming_a_missing_program_is_not_skipped(only_pure_next_to_python, monkeypatch, tmp_path):
    monkeypatch.setenv(RENDERER_ENV, str(tmp_path / "typo-dot"))  # graphviz-pure is there, but not asked for
    with pytest.raises(RendererNotFound, match="typo-dot"):
        save_graph(expression()[-1], tmp_path / "g.svg")


def fake_system_dot(directory):
    """A stand-in for the system dot: says it is Graphviz and writes a marker for any format."""
    dot = directory / "dot"
    dot.write_text(
        "#!/bin/sh\n"
        'if [ "$1" = "-V" ]; then echo "dot - graphviz version 2.43.0 (0)" >&2; exit 0; fi\n'
        "cat > /dev/null\n"
        'echo "fake dot $1 $2"\n'
    )
    dot.chmod(dot.stat().st_mode | stat.S_IEXEC)
    return dot


def test_system_dot_on_path_is_preferred_and_does_pdf(only_pure_next_to_python, monkeypatch, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    dot = fake_system_dot(bin_dir)
    monkeypatch.setenv("PATH", str(bin_dir))
    renderer = find_renderer("pdf")
    assert renderer.path == str(dot) and not renderer.pure
    save_graph(expression()[-1], tmp_path / "g.pdf")
    assert (tmp_path / "g.pdf").read_text() == "fake dot -Kdot -Tpdf\n"


def every_op_graph():
    """One graph that uses every op of the library."""
    x = Tensor(np.random.default_rng(0).uniform(0.5, 1.5, (2, 4, 4, 3)), requires_grad=True)
    W = Tensor(np.ones((2, 2, 3, 2)) * 0.1, requires_grad=True)
    z = x.pad2d(1).conv2d(W, stride=1)                                        # (2, 4, 4, 2)
    p = z.max_pool2d(2) + z.avg_pool2d(2)                                      # (2, 2, 2, 2)
    v = p.flatten(1)                                                           # (2, 8)
    u = (v.exp().log().sqrt().abs().clip(0, 5).relu().sigmoid().tanh() - v) / (v ** 2 + 1)
    u = -u.softmax(1).log_softmax(1)
    w = Tensor.concatenate([u, u], axis=1)[:, :8] + Tensor.stack([u, u]).sum(axis=0)
    m = w.reshape(2, 2, 4).transpose(0, 2, 1).mean(axis=2) @ np.ones((4, 3))
    return F.cross_entropy(m * m.max(axis=1, keepdims=True) - m.min(), [0, 2])


def test_every_op_has_a_gradient_rule_from_its_definition():
    root = every_op_graph()
    root.backward()
    ops = [t for t in topo_order(root) if t.op]
    assert len({t.op for t in ops}) == 32
    source = draw_graph(root, show_rule=True).source
    for t in ops:
        assert t.rule == t.facts.rule and t.rule.startswith(f"d{t.facts.inputs[0]} "), (t.op, t.rule)
        assert f"<i>{build._text(t.rule)}</i>" in source, t.op


# The plain words rules may use; any other name in a rule is a symbol, which must be explained.
RULE_WORDS = {
    "where", "is", "the", "result", "ties", "each", "else", "at", "NaN", "spread", "over", "summed", "axes", "n",
    "averaged", "entries", "to", "maxima", "minima", "share", "reshaped", "back", "with", "put", "indexed",
    "places", "repeats", "add", "slice", "of", "s", "place", "input", "alike", "without", "border", "every",
    "window", "max", "policy", "sums", "along", "sign", "exp", "log", "mean", "sum", "softmax", "conv2d", "sqrt",
    "conv_transpose2d", "avg_pool2d", "broadcast", "cast",
    "when", "and", "or",
}


def _unexplained(t, legend: str) -> set:
    """The symbols of t's rule that neither its declared inputs, their d<name>, nor the legend (a symbol's line, the
    value of t's argument of that name, an operator's line) explain, and any operator the legend does not know."""
    from tinygrad_cnn.ops.facts import RULE_OPERATORS, rule_symbols
    inputs = set(t.facts.inputs)
    known = inputs | {f"d{name}" for name in inputs} | {"g", "out"} | RULE_WORDS
    operators = {op for op in RULE_OPERATORS if op in t.rule} | set(re.sub(r"[\w\s+\-*/()=,.:<>'@^]", "", t.rule))
    symbols = {s for s in rule_symbols(re.sub("|".join(map(re.escape, RULE_OPERATORS)), " ", t.rule)) - known
               if not s.isdigit()}
    return {s for s in symbols if f"{s}: " not in legend and f"{s}=" not in legend} | \
        {op for op in operators if f"{op} " not in legend}


def test_every_rule_uses_one_notation_and_the_drawn_legend_explains_every_symbol():
    from tinygrad_cnn.ops.facts import REGISTRY, rules_legend
    root = every_op_graph()
    x = Tensor.randn(2, 4, 4, 2, requires_grad=True)
    extra = (x.conv_transpose2d(Tensor.randn(2, 2, 2, 2), stride=2).batch_norm2d(np.ones(2), np.zeros(2))
             .dropout(0.5, rng=0).leaky_relu(0.1).maximum(0.0).minimum(1.0)).mean()
    y = Tensor.randn(2, 4, 4, 2, requires_grad=True)  # the ops a recorded backward (create_graph) is made of
    recorded = (y.conv2d_weight_grad(y, 1).sum() + y.max_pool2d(2).max_pool2d_backward(y, 2).max_pool2d_gather(y, 2)
                .sum() + y.avg_pool2d(2).avg_pool2d_backward((4, 4), 2).sum()
                + y[0].getitem_backward((0,), y.shape).sum() + y.astype(np.float64).broadcast_to(3, *y.shape).sum())
    root = root + extra + recorded
    ops = {t.op: t for t in topo_order(root) if t.op}
    assert set(ops) == set(REGISTRY), set(REGISTRY) - set(ops)
    for t in ops.values():  # each op's symbols explained by the legend of a drawing with that op alone
        alone = "\n".join(rules_legend([t]))
        assert not _unexplained(t, alone), (t.op, t.rule, _unexplained(t, alone))
    legend = "\n".join(rules_legend(list(ops.values())))
    caption = draw_graph(root, show_rule=True).source
    for line in rules_legend(list(ops.values())):
        assert build._ascii(line).split(":")[0] in caption, line
    assert "conv2d: A_prev, W, b" in legend and "g_slice: the window of g" in legend
    assert "@ the matrix product" in legend and "ties=first (max_pool2d, max_pool2d_backward" in legend
    assert legend.startswith("rules: g is the gradient at the op's output, out its value")


def test_show_rule_writes_the_backward_rule_under_the_op():
    *_, y = expression()
    y.backward()
    source = draw_graph(y, show_rule=True).source
    assert "<i>da = g*b, db = g*a</i>" in source and "spread over the summed axes" in source
    assert "da = g*b" not in draw_graph(y).source
    assert "summed back to its own shape" in source and "summed back" not in draw_graph(y).source


def test_a_failing_renderer_reports_its_error(monkeypatch, tmp_path):
    broken = tmp_path / "broken-dot"
    broken.write_text("#!/bin/sh\necho 'syntax error in line 1' >&2\nexit 3\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv(RENDERER_ENV, str(broken))
    with pytest.raises(graphviz.CalledProcessError, match="exit status 3"):
        draw_graph(expression()[-1]).pipe(format="svg")


def test_empty_all_nan_and_array_arguments_are_summarised():
    empty = Tensor(np.ones((0, 3)), name="empty")
    nan = Tensor(np.full(6, np.nan), requires_grad=True, name="nan")
    clipped = nan.clip(np.zeros(6), np.ones(6))  # array bounds are shown by shape
    labels = node_labels(draw_graph(clipped).source)
    assert "no finite values" in labels["n0"] and "6 NaN" in labels["n0"]
    assert "clip</b> low=array(6,) high=array(6,)" in squeezed(labels["n1"])
    assert "empty" in node_labels(draw_graph(empty).source)["n0"]


def test_svg_text_has_room_for_a_wider_fallback_font():
    """The SVG asks for Helvetica's metric-compatible fonts, and each label line ends in spaces (room for
    DejaVu Sans; tools/check_svg_fonts.py measures the result in Chromium)."""
    x = Tensor(np.ones((1, 5, 5, 1)), name="x")
    y = x.conv2d(Tensor(np.ones((3, 3, 1, 2)), requires_grad=True), stride=2).sum()
    source = draw_graph(y, title="a caption").source
    assert "<b>conv2d</b>   stride=2 pad=0" in source             # the bold name, 1 + ceil(0.2 * 6) spaces, settings
    assert "<td>(1, 2, 2, 2) float64     </td>" in source         # ceil(0.25 * 20) = 5 spaces after the line
    assert 'label="  a caption  "' in source                      # a centred caption: room on both sides
    svg = draw_graph(y).pipe(format="svg", encoding="utf-8")
    assert 'font-family="Helvetica,Arial,Liberation Sans,Nimbus Sans,DejaVu Sans,sans-serif"' in svg
    assert "Helvetica,sans-Serif" not in svg


def test_a_parameter_changed_after_the_forward_is_drawn_stale_and_the_caption_says_why():
    from tinygrad_cnn.optim import SGD
    W = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True, name="W")
    x = Tensor(np.array([[1.0, -1.0]]), name="x")
    loss = (x @ W).relu().sum()
    loss.backward()
    fresh = draw_graph(loss).source
    assert "stale" not in fresh
    SGD([W], lr=0.1).step()  # new values, while the graph still holds activations of the old ones
    source = draw_graph(loss).source
    assert "stale: data replaced after use (version 0 -&gt; 1)" in source
    assert "dashed orange (stale): .data replaced after the forward (e.g. an optimizer step)" in source
    stale_nodes = [line for line in source.splitlines() if "style=\"rounded,filled,dashed\"" in line
                   or "style=rounded,filled,dashed" in line]
    assert len(stale_nodes) == 1 and "W" in stale_nodes[0] and "darkorange" in stale_nodes[0]
