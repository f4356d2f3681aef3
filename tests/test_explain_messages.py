"""explain's words and picture (issue 21, item 4): a tensor is called by its name, by the name its op declares for
the input or as "tensor of shape (...)", never by another tensor's name; the plot's labels never overlap; a root
that is not a Tensor is a TypeError."""

import itertools

import numpy as np
import pytest

from tinygrad_cnn import Tensor, explain


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
