"""explain(root, x, index) (explain.py, explain_plot.py): the terms of x.grad[index] sum to it, for every op the library
can record (and a user's op), leaves and interior tensors, tensors used by several ops; the CNN and matmul formulas
agree with the generic search; a tensor is called by its name, by the name its op declares for the input or as
"tensor of shape (...)", never by another tensor's name; the table, the plot (no two labels overlap) and the
errors.
"""

import importlib
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tinygrad_cnn
from tinygrad_cnn import Tensor, explain
from tinygrad_cnn.functional import cross_entropy
from tinygrad_cnn.graph import topo_order
from tinygrad_cnn.ops.facts import REGISTRY

PACKAGE = Path(tinygrad_cnn.__file__).parent
explain_module = importlib.import_module("tinygrad_cnn.explain")  # tinygrad_cnn.explain is the function


def square(x):
    """A user's op, through the public from_op."""
    def _backward(g):
        return (2 * g * x.data,)
    return x.from_op(x.data ** 2, (x,), "square", _backward, rule="da = 2*g*a")


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


# op name: rng -> (input arrays, fn(*tensors) -> output); hyper-parameters are drawn from rng too
def _cases(r):
    """Each op's case for this rng: {name: (arrays, fn)}."""
    ax = _pick(r, [None, 0, 1])
    f, s, ties = _pick(r, [2, 3, (2, 3)]), _pick(r, [1, 2]), _pick(r, ["first", "split", "all"])
    stride, pad = _pick(r, [1, 2, (2, 1)]), _pick(r, [0, 1, ((1, 0), (0, 2)), "same"])
    index = _pick(r, [(slice(1, 3),), ([0, 2, 0],), (1, 2)])
    pads = _pick(r, [1, (1, 2), ((0, 1), (2, 0))])
    labels = r.integers(0, 5, size=4)
    n, u, ints = r.normal, r.uniform, lambda shape: r.integers(0, 3, size=shape).astype(float)  # ints: ties
    matmul_shapes = _pick(r, [((3, 4), (4, 5)), ((2, 3, 4), (4, 2)), ((4,), (4, 3))])
    dilation, groups = _pick(r, [1, 2, (2, 1)]), _pick(r, [1, 2])
    t_stride, t_pad = _pick(r, [1, 2, (2, 1)]), _pick(r, [0, 1, ((1, 0), (0, 1))])
    t_out_pad = _pick(r, [0, tuple(s - 1 for s in (t_stride if isinstance(t_stride, tuple) else (t_stride,) * 2))])
    bn_training, running_mean, running_var = _pick(r, [True, False]), n(size=3), u(0.5, 2, size=3)
    p_drop, drop_seed, slope = _pick(r, [0.3, 0.5]), int(r.integers(1000)), _pick(r, [0.01, 0.2, -0.5])
    return {
        "add": ([n(size=(3, 4)), n(size=(4,))], lambda a, b: a + b),
        "sub": ([n(size=(3, 1)), n(size=(3, 4))], lambda a, b: a - b),
        "mul": ([n(size=(2, 3, 4)), n(size=(3, 1))], lambda a, b: a * b),
        "div": ([n(size=(3, 4)), u(0.5, 2, size=(4,))], lambda a, b: a / b),
        "pow": ([u(0.5, 2, size=(3, 4)), n(size=(4,))], lambda a, b: a ** b),
        "neg": ([n(size=(3, 4))], lambda a: -a),
        "maximum": ([ints((3, 4)), ints((4,))], lambda a, b: a.maximum(b)),  # ints: ties share the gradient
        "minimum": ([ints((3, 1)), ints((3, 4))], lambda a, b: a.minimum(b)),
        "matmul": ([n(size=matmul_shapes[0]), n(size=matmul_shapes[1])], lambda a, b: a @ b),
        "exp": ([n(size=(3, 4))], lambda a: a.exp()),
        "log": ([u(0.5, 2, size=(3, 4))], lambda a: a.log()),
        "sqrt": ([u(0.5, 2, size=(3, 4))], lambda a: a.sqrt()),
        "abs": ([n(size=(3, 4))], lambda a: a.abs()),
        "clip": ([n(size=(3, 4))], lambda a: a.clip(-0.5, 0.5)),
        "relu": ([n(size=(3, 4))], lambda a: a.relu()),
        "sigmoid": ([n(size=(3, 4))], lambda a: a.sigmoid()),
        "tanh": ([n(size=(3, 4))], lambda a: a.tanh()),
        "softmax": ([n(size=(3, 4))], lambda a: a.softmax(axis=-1 if ax is None else ax)),
        "log_softmax": ([n(size=(3, 4))], lambda a: a.log_softmax(axis=-1 if ax is None else ax)),
        "sum": ([n(size=(3, 4))], lambda a: a.sum(axis=ax)),
        "mean": ([n(size=(3, 4))], lambda a: a.mean(axis=ax, keepdims=True)),
        "max": ([ints((3, 4))], lambda a: a.max(axis=ax)),
        "min": ([ints((3, 4))], lambda a: a.min(axis=ax, keepdims=True)),
        "reshape": ([n(size=(3, 4))], lambda a: a.reshape(2, 6)),
        "flatten": ([n(size=(2, 3, 2))], lambda a: a.flatten(1)),
        "transpose": ([n(size=(2, 3, 4))], lambda a: a.transpose(2, 0, 1)),
        "getitem": ([n(size=(4, 3))], lambda a: a[index]),
        "concatenate": ([n(size=(2, 3)), n(size=(1, 3))], lambda a, b: Tensor.concatenate([a, b, a], axis=0)),
        "stack": ([n(size=(2, 3)), n(size=(2, 3))], lambda a, b: Tensor.stack([a, b], axis=1)),
        "pad2d": ([n(size=(2, 3, 4, 2))], lambda a: a.pad2d(pads)),
        "conv2d": ([n(size=(2, 5, 6, 4)), n(size=(3, 2, 4 // groups, 4)), n(size=(4,))],
                   lambda a, W, b: a.conv2d(W, b, stride=stride, pad=pad, dilation=dilation, groups=groups)),
        "conv_transpose2d": ([n(size=(2, 3, 4, 4)), n(size=(3, 2, 6 // groups, 4)), n(size=(6,))],
                             lambda a, W, b: a.conv_transpose2d(W, b, stride=t_stride, pad=t_pad,
                                                                output_padding=t_out_pad, dilation=dilation,
                                                                groups=groups)),
        "batch_norm2d": ([n(size=(2, 3, 4, 3)), u(0.5, 2, size=3), n(size=3)],
                         lambda a, g, b: a.batch_norm2d(g, b, running_mean=running_mean, running_var=running_var,
                                                          training=bn_training)),
        "dropout": ([n(size=(3, 4))], lambda a: a.dropout(p_drop, rng=drop_seed)),
        "leaky_relu": ([n(size=(3, 4))], lambda a: a.leaky_relu(slope)),
        "max_pool2d": ([ints((2, 5, 6, 3))], lambda a: a.max_pool2d(f, stride=s, ties=ties)),
        "avg_pool2d": ([n(size=(2, 5, 6, 3))], lambda a: a.avg_pool2d(f, stride=s)),
        "cross_entropy": ([n(size=(4, 5))], lambda a: cross_entropy(a, labels)),
        "square": ([n(size=(3, 4))], square),
        # the ops create_graph records (a second input that gets no gradient of its own is also multiplied in)
        "astype": ([n(size=(3, 4))], lambda a: a.astype(np.float32) * a),
        "broadcast_to": ([n(size=(3, 1))], lambda a: a.broadcast_to(2, 3, 4)),
        "getitem_backward": ([n(size=(3,))], lambda a: a.getitem_backward(([0, 2, 0],), (4,))),
        "conv2d_weight_grad": ([n(size=(2, 5, 6, 4)), n(size=(2, 4, 5, 2))],
                               lambda a, dZ: a.conv2d_weight_grad(dZ, 2, groups=groups)),
        "max_pool2d_backward": ([n(size=(2, 2, 3, 3)), ints((2, 5, 6, 3))],
                                lambda dA, a: dA.max_pool2d_backward(a, 2, ties=ties) * a),
        "max_pool2d_gather": ([n(size=(2, 5, 6, 3)), ints((2, 5, 6, 3))],
                              lambda b, a: b.max_pool2d_gather(a, 2, ties=ties) * a.max_pool2d(2)),
        "avg_pool2d_backward": ([n(size=(2, 2, 3, 3))], lambda dA: dA.avg_pool2d_backward((5, 6), 2)),
    }


CASES = sorted(_cases(np.random.default_rng(0)))


def test_the_cases_cover_every_op_the_library_declares_and_each_records_its_facts():
    """The registry of op facts (ops/facts.py) names exactly the ops the library records: each case records its
    op with the declared facts object, and no declared op is left without a case."""
    assert {"conv2d", "flatten", "max", "min", "cross_entropy", "getitem"} <= set(REGISTRY)
    assert set(REGISTRY) == set(CASES) - {"square"}
    for op in CASES:
        root, _ = build(op, seed=0, interior=False)
        recorded = {t.op: t.facts for t in topo_order(root) if t.op}
        assert op in recorded, op
        assert recorded[op] is (None if op == "square" else REGISTRY[op]), op


def build(op: str, seed: int, interior: bool):
    """(root, the op's input tensors): x0 (the first input) is interior (made by z * 1.5) when asked, and x0 is
    used by two ops: the op under test and a mul of its own."""
    rng = np.random.default_rng(seed)
    arrays, fn = _cases(rng)[op]
    leaves = [Tensor(a, requires_grad=True, name=f"in{i}") for i, a in enumerate(arrays)]
    inputs = list(leaves)
    if interior:
        inputs[0] = leaves[0] * 1.5
    y = fn(*inputs)
    root = (y * Tensor(rng.normal(size=y.shape))).sum() + (inputs[0] * Tensor(rng.normal(size=inputs[0].shape))).sum()
    return root, inputs


def assert_explains(root, x, index):
    e = explain(root, x, index)
    scale = sum(abs(t.value) for t in e.terms) + abs(e.grad)
    assert abs(e.total - e.grad) <= 1e-10 * scale + 1e-300, str(e)
    assert e.grad == x.grad[index]
    for t in e.terms:
        assert t.value == t.grad * t.local and t.value != 0
    assert [abs(t.value) for t in e.terms] == sorted((abs(t.value) for t in e.terms), reverse=True)
    return e


@pytest.mark.parametrize("op", CASES)
@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), interior=st.booleans(), data=st.data())
def test_the_terms_of_every_op_sum_to_the_gradient(op, seed, interior, data):
    root, inputs = build(op, seed, interior)
    root.backward()
    position = data.draw(st.integers(0, len(inputs) - 1))
    x = inputs[position]
    index = tuple(data.draw(st.integers(0, n - 1)) for n in x.shape)
    e = assert_explains(root, x, index)
    if position == 0:  # x0 is used by the op and by the extra mul
        assert len(e.consumers) >= 2


def test_conv_pool_and_matmul_formulas_agree_with_the_generic_search():
    rng = np.random.default_rng(3)
    A = Tensor(rng.normal(size=(2, 5, 6, 3)), requires_grad=True, name="A")
    W = Tensor(rng.normal(size=(3, 2, 3, 4)), requires_grad=True, name="W")
    b = Tensor(rng.normal(size=(4,)), requires_grad=True, name="b")
    B = Tensor(rng.normal(size=(4, 3)), requires_grad=True, name="B")
    Z = A.conv2d(W, b, stride=(2, 1), pad=((1, 0), (0, 2)))
    P = A.max_pool2d(2, stride=1, ties="split") + A.avg_pool2d(2, stride=1)
    M = Z.flatten(1)[:, :4] @ B
    root = (Z * Z).sum() + (P * P).sum() + (M * M).sum()
    root.backward()
    checked = 0
    for x in (A, W, b, B):
        for index in [tuple(int(rng.integers(n)) for n in x.shape) for _ in range(4)]:
            for c in explain(root, x, index).consumers:
                fast = {t.k: t.local for t in c.terms}
                slow = {k: local for k, local, _ in
                        explain_module._generic_terms(c, x, "x", index, c.arriving) if c.arriving[k] != 0}
                assert fast.keys() == slow.keys(), (c.out.op, index)
                np.testing.assert_allclose([fast[k] for k in fast], [slow[k] for k in fast], rtol=1e-12)
                checked += len(fast)
    assert checked > 100


def test_the_notebook_conv_entry_reads_as_the_notebook_loop():
    np.random.seed(1)
    A = Tensor(np.random.randn(10, 5, 7, 4), requires_grad=True, name="A_prev")
    W = Tensor(np.random.randn(3, 3, 4, 8), requires_grad=True, name="W")
    b = Tensor(np.random.randn(1, 1, 1, 8), requires_grad=True, name="b")
    Z = A.conv2d(W, b, stride=2, pad=1)
    Z.name = "Z"
    Z.backward(Z.data)
    e = assert_explains(Z, A, (0, 3, 4, 2))
    assert len(e.terms) == 16  # rows 3 -> windows 1 and 2 (padded row 4), column 4 -> window 2 only; 8 channels
    assert any(t.formula.startswith("dA_prev[0,3,4,2] += W[2,1,2,4] * dZ[0,1,2,4]") for t in e.terms)
    text = str(e)
    assert text.startswith("Why A_prev.grad[0,3,4,2] = ")
    assert "... and 4 more terms summing to" in text
    assert text.splitlines()[-1] == f"  A_prev.grad[0,3,4,2]: {float(A.grad[0, 3, 4, 2])!r}"
    assert text.splitlines()[-2].startswith("  total (sum of 16 terms): ")
    assert "rows" not in e.table(limit=None) and "more terms" not in e.table(limit=None)
    assert_explains(Z, W, (1, 2, 3, 5))
    w_terms = explain(Z, W, (0, 0, 0, 0)).terms
    assert w_terms and all("a_slice[0,0,0]" in t.formula for t in w_terms)


def test_a_pool_term_says_which_window_takes_its_max_there():
    x = Tensor(np.array([[1.0, 3.0], [3.0, 0.0]]).reshape(1, 2, 2, 1), requires_grad=True, name="A_prev")
    for ties, share in (("first", None), ("split", 0.5), ("all", 1.0)):
        root = (x.max_pool2d(2, ties=ties) * 4.0).sum()
        x.zero_grad()
        root.backward()
        e = explain(root, x, (0, 1, 0, 0))
        if share is None:
            assert e.terms == [] and e.grad == 0  # the first maximum (row-major) is (0, 1)
        else:
            (t,) = e.terms
            assert f"takes its max here (ties={ties})" in t.formula and t.local == share and t.value == 4.0 * share
    avg = Tensor(np.ones((1, 4, 4, 1)), requires_grad=True, name="A_prev")
    root = avg.avg_pool2d(2).sum()
    root.backward()
    (t,) = explain(root, avg, (0, 3, 2, 0)).terms
    assert t.formula == "dA_prev[0,3,2,0] += dA[0,1,1,0] / (2*2)" and t.local == 0.25


def test_matmul_and_broadcast_terms_name_what_was_summed():
    a = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="A")
    b = Tensor(np.arange(12.0).reshape(3, 4) - 5, requires_grad=True, name="B")
    bias = Tensor(np.array([1.0, -2.0, 3.0, 0.5]), requires_grad=True, name="bias")
    root = ((a @ b + bias) ** 2).sum()
    root.backward()
    e = assert_explains(root, a, (1, 2))
    assert {t.formula for t in e.terms} == {f"dA[1,2] += G[1,{n}] * B[2,{n}]" for n in range(4)} - \
        {f"dA[1,2] += G[1,{n}] * B[2,{n}]" for n in range(4) if b.data[2, n] == 0}
    e = assert_explains(root, bias, (1,))
    assert "bias (4,) was broadcast to (2, 4)" in str(e)
    assert sorted(t.k for t in e.terms) == [(0, 1), (1, 1)]
    assert all("bias[1] broadcast to [" in t.formula for t in e.terms)


def test_gradients_that_were_not_kept_are_recomputed_without_touching_any_grad():
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True, name="x")
    h = x.exp()
    y = h * h
    root = y.sum()
    root.backward()
    before = x.grad.copy()
    expected = explain(root, h, (1,))
    y.grad = None  # e.g. zeroed by hand: explain re-runs root's walk for it
    again = explain(root, h, (1,))
    assert [t.value for t in again.terms] == [t.value for t in expected.terms] and y.grad is None
    np.testing.assert_array_equal(x.grad, before)
    root.backward()  # x.grad now holds two backward() calls: explain says so
    text = str(explain(root, x, (0,)))
    assert "note: they differ: x.grad accumulates over backward() calls" in text
    assert explain(root, x, (0,), recompute=True).total * 2 == pytest.approx(x.grad[0])


def test_explain_the_root_itself_and_an_op_that_no_gradient_reached():
    x = Tensor([1.0, 2.0], requires_grad=True, name="x")
    y = x * 3.0
    y.backward(np.array([1.0, 5.0]))
    (t,) = explain(y, y, (1,)).terms
    assert t.value == 5.0 and t.op == "backward() seed"


def test_explain_errors_teach():
    x = Tensor([1.0, 2.0], requires_grad=True, name="x")
    root = (x * 2).sum()
    with pytest.raises(RuntimeError, match=r"explain: x.grad is None: call root.backward\(\) first"):
        explain(root, x, (0,))
    root.backward()
    with pytest.raises(IndexError, match=r"explain: index must be a tuple of 1 ints for x of shape \(2,\)"):
        explain(root, x, (0, 1))
    with pytest.raises(IndexError, match=r"explain: index \(2,\) is out of range for x of shape \(2,\)"):
        explain(root, x, 2)
    with pytest.raises(ValueError, match="explain: x is not in root's graph"):
        explain(root, Tensor([1.0], requires_grad=True), (0,))
    with pytest.raises(ValueError, match="explain: x does not require grad"):
        c = Tensor([1.0, 1.0])
        r2 = (x * c).sum()
        r2.backward()
        explain(r2, c, (0,))


def test_plot_draws_conv_and_pool_windows_and_says_when_no_picture_fits(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(0)
    A = Tensor(rng.normal(size=(1, 5, 7, 2)), requires_grad=True, name="A_prev")
    W = Tensor(rng.normal(size=(3, 3, 2, 3)), requires_grad=True, name="W")
    Z = A.conv2d(W, stride=2, pad=1)
    root = (Z.max_pool2d(2, stride=1) ** 2).sum() + (A.avg_pool2d(2) * 3).sum() + (A * A).sum()
    root.backward()
    fig = explain(root, A, (0, 2, 3, 1)).plot(tmp_path / "why.png")
    assert (tmp_path / "why.png").stat().st_size > 10_000
    assert len(fig.axes) >= 4  # two consumers drawn (conv, avg pool), each with its colour bar
    assert "not drawn (no picture fits): mul" in " ".join(t.get_text() for t in fig.texts)
    with pytest.raises(ValueError, match=r"plot: a picture fits conv2d/max_pool2d/avg_pool2d ops .* W is used by "
                                         r"conv2d \(input 1\)"):
        explain(root, W, (0, 0, 0, 0)).plot()


def test_plot_without_matplotlib_names_the_extra(monkeypatch):
    A = Tensor(np.ones((1, 4, 4, 1)), requires_grad=True)
    root = A.avg_pool2d(2).sum()
    root.backward()
    e = explain(root, A, (0, 0, 0, 0))
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r'\.venv/bin/pip install -e "\.\[plot\]"'):
        e.plot()


@pytest.mark.parametrize("dilation, groups", [(2, 1), (1, 2), ((2, 1), 2)])
def test_dilated_and_grouped_conv2d_are_explained_by_the_generic_search(dilation, groups):
    rng = np.random.default_rng(4)
    A = Tensor(rng.normal(size=(2, 7, 6, 4)), requires_grad=True, name="A")
    W = Tensor(rng.normal(size=(3, 2, 4 // groups, 4)), requires_grad=True, name="W")
    Z = A.conv2d(W, stride=(2, 1), pad=1, dilation=dilation, groups=groups)
    root = (Z * Z).sum()
    root.backward()
    terms = 0
    for x in (A, W):
        for index in [tuple(int(rng.integers(n)) for n in x.shape) for _ in range(3)]:
            e = assert_explains(root, x, index)
            assert e.consumers[0].geometry is None and all("+=" not in t.formula for t in e.terms)  # not the formula
            terms += len(e.terms)
    assert terms > 10


# ----------------------------------------------------------------------------- names and words
def test_an_unnamed_tensor_is_never_called_by_another_tensors_name():
    x = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, name="x")
    W = Tensor(np.arange(12.0).reshape(3, 4) - 5, requires_grad=True)        # unnamed; matmul calls its input b
    bias = Tensor(np.array([1.0, -2.0, 3.0, 0.5]), requires_grad=True, name="b")
    h = x * 2.0                                                               # unnamed interior tensor
    root = ((h @ W + bias) ** 2).sum()
    root.backward()
    e = explain(root, h, (1, 2))
    text = str(e)
    assert text.startswith("Why (tensor of shape (2, 3)).grad[1,2] = ") and "x.grad" not in text
    assert "made by mul" in text.splitlines()[0]
    formulas = {t.formula for t in e.terms}
    assert formulas == {f"da[1,2] += G[1,{n}] * (tensor of shape (3, 4))[2,{n}]" for n in range(4)}
    assert not any(" b[" in f or f.startswith("db") for f in formulas)  # "b" is the bias's name, not W's
    named = explain(root, W, (0, 0))
    assert str(named).startswith("Why (tensor of shape (3, 4)).grad[0,0] = ")
    assert all(f.startswith("d(tensor of shape (3, 4))[0,0] += ") for f in (t.formula for t in named.terms))


def test_unnamed_inputs_keep_their_declared_names_when_no_tensor_has_them():
    rng = np.random.default_rng(0)
    A = Tensor(rng.normal(size=(1, 5, 5, 2)), requires_grad=True)
    W = Tensor(rng.normal(size=(3, 3, 2, 2)), requires_grad=True)
    Z = A.conv2d(W, pad=1)
    Z.sum().backward()
    e = explain(Z.sum(), A, (0, 2, 2, 1))
    assert str(e).startswith("Why (tensor of shape (1, 5, 5, 2)).grad[0,2,2,1] = ")
    assert all(t.formula.startswith("dA_prev[0,2,2,1] += W[") for t in e.terms)


@pytest.mark.parametrize("root, x", [(3.0, None), (np.ones(2), None), ("loss", None)])
def test_a_root_that_is_not_a_tensor_is_a_type_error(root, x):
    x = Tensor([1.0, 2.0], requires_grad=True, name="x")
    (x * 2).sum().backward()
    with pytest.raises(TypeError, match=r"explain: root must be a Tensor \(the tensor backward\(\) started from\), "
                                        rf"got {type(root).__name__}"):
        explain(root, x, (0,))
    with pytest.raises(TypeError, match="explain: x must be a Tensor"):
        explain((x * 2).sum(), np.ones(2), (0,))


# ----------------------------------------------------------------------------- the plot's labels
def _drawn_texts(fig) -> list:
    """Every text the figure draws: its own, the titles, the texts in the axes, the legends' and the tick labels
    inside the view (matplotlib keeps labels for ticks outside it, undrawn)."""
    texts = list(fig.texts) + [fig._suptitle]
    for ax in fig.axes:
        texts += [ax.title, *ax.texts]
        if ax.get_legend() is not None:
            texts += [*ax.get_legend().get_texts(), ax.get_legend().get_title()]
        for axis, limits in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            low, high = sorted(limits)
            texts += [t for t, at in zip(axis.get_ticklabels(), axis.get_ticklocs(), strict=True) if low <= at <= high]
    unique = {id(t): t for t in texts if t is not None}.values()  # the suptitle may be among fig.texts too
    return [t for t in unique if t.get_visible() and t.get_text().strip()]


def _overlaps(fig) -> list:
    """Pairs of drawn texts whose boxes (a text's background box included) overlap by more than a pixel."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), (t.get_bbox_patch() or t).get_window_extent(renderer)) for t in _drawn_texts(fig)]
    found = []
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        dx = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        dy = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        if dx > 1 and dy > 1:
            found.append((a, b))
    return found


@pytest.mark.parametrize("stride, f, shape", [(1, 3, (1, 7, 7, 2)), (1, 5, (1, 9, 12, 1)), (2, 3, (1, 5, 7, 2)),
                                              (1, 3, (1, 28, 28, 1))])
def test_plot_labels_never_overlap(stride, f, shape):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    rng = np.random.default_rng(0)
    A = Tensor(rng.normal(size=shape), requires_grad=True, name="A_prev")
    W = Tensor(rng.normal(size=(f, f, shape[3], 3)), requires_grad=True, name="W")
    root = (A.conv2d(W, stride=stride, pad=f // 2).max_pool2d(2, stride=1) ** 2).sum() + (A.avg_pool2d(2) * 3).sum()
    root.backward()
    middle = (0, shape[1] // 2, shape[2] // 2, 0)
    fig = explain(root, A, middle).plot()
    legend = fig.axes[0].get_legend()
    assert legend is not None and len(legend.get_texts()) == len(explain(root, A, middle).consumers[0].windows)
    assert _overlaps(fig) == []
