"""Comparisons (ops/compare.py): ==, !=, <, <=, >, >= are elementwise as numpy's and recorded nowhere; a tensor hashes
by identity, so the library's own lookups tell equal-valued tensors apart; ``in`` is numpy's membership.
"""

import numpy as np
import pytest

from tests.helpers import leaf
from tinygrad_cnn import Tensor, nn, optim


def test_equality_is_elementwise_with_broadcasting():
    result = Tensor([1.0]) == Tensor([1.0])
    assert isinstance(result, np.ndarray) and result.dtype == bool
    np.testing.assert_array_equal(result, [True])
    pred, y = Tensor([[0.0, 2.0], [1.0, 1.0]]), np.array([0.0, 1.0])
    np.testing.assert_array_equal(pred == y, [[True, False], [False, True]])
    assert (Tensor([1.0, 2.0, 3.0]) == np.array([1.0, 0.0, 3.0])).mean() == pytest.approx(2 / 3)


@pytest.mark.parametrize("compare, expected", [
    (lambda a, b: a == b, [False, True, False]), (lambda a, b: a != b, [True, False, True]),
    (lambda a, b: a < b, [True, False, False]), (lambda a, b: a <= b, [True, True, False]),
    (lambda a, b: a > b, [False, False, True]), (lambda a, b: a >= b, [False, True, True]),
])
def test_comparisons_against_tensors_arrays_and_scalars(compare, expected):
    a = Tensor([1.0, 2.0, 3.0])
    for b in (Tensor([2.0, 2.0, 2.0]), np.array([2.0, 2.0, 2.0]), 2.0, 2, Tensor(2.0)):
        np.testing.assert_array_equal(compare(a, b), expected)
    reflected = compare(np.array([2.0, 2.0, 2.0]), a)  # ndarray on the left: the mirrored comparison
    np.testing.assert_array_equal(reflected, compare(Tensor([2.0, 2.0, 2.0]), a))
    assert isinstance(reflected, np.ndarray)


def test_comparison_shape_error_names_the_op():
    with pytest.raises(ValueError, match=r"==: .*\(2,\) and \(3,\)"):
        Tensor([1.0, 2.0]) == Tensor([1.0, 2.0, 3.0])  # noqa: B015


def test_comparison_is_not_differentiable_and_records_nothing():
    a = leaf([1.0, 2.0])
    assert type(a > 1.0) is np.ndarray


def test_hash_stays_identity_based():
    a, b = Tensor([1.0]), Tensor([1.0])
    assert hash(a) != hash(b) or a is not b
    seen = {a: "a", b: "b"}
    assert seen[a] == "a" and seen[b] == "b" and len({a, b, a}) == 2
    assert a in [a] and a in {a}


def test_library_code_tells_equal_valued_tensors_apart():
    # the optimizer, the layers and the drawing look tensors up by identity, never with ==
    from tinygrad_cnn import draw_graph
    a, b = leaf([1.0, 2.0]), leaf([1.0, 2.0])
    opt = optim.SGD([a, b], lr=0.1)  # equal values are not "a parameter that appears more than once"
    (a * b).sum().backward()
    opt.step()
    np.testing.assert_allclose(a.data, [0.9, 1.8])
    layer = nn.Module()
    layer.u, layer.v = Tensor([1.0], requires_grad=True), Tensor([1.0], requires_grad=True)
    assert [n for n, _ in layer.named_parameters()] == ["u", "v"]
    source = draw_graph(a * b, params={"a": a, "bee": b}).source
    assert source.count("<b>a</b>") == 1 and source.count("<b>bee</b>") == 1


def test_membership_in_a_tensor_is_numpys():
    assert 2.0 in Tensor([[1.0, 2.0], [3.0, 4.0]]) and 5.0 not in Tensor([1.0, 2.0])
