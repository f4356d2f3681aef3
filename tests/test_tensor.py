"""The Tensor (tensor.py, dtypes.py, modes.py, graph.py): its fields and dtype policy, the constructors,
backward's semantics (accumulation, what is recorded, errors), copies and pickling, iteration and conversions, grad
mode (per thread) and backward from several threads.
"""

import copy
import gc
import pickle
import re
import sys
import threading

import numpy as np
import pytest

from tests.helpers import leaf, rand
from tinygrad_cnn import (
    Tensor,
    enable_grad,
    is_grad_enabled,
    manual_seed,
    nn,
    no_grad,
    set_default_dtype,
    set_grad_enabled,
)
from tinygrad_cnn.data import batches
from tinygrad_cnn.tensor import get_default_dtype, topo_order


# ----------------------------------------------------------------------------- dtype policy
def test_dtype_policy():
    assert Tensor(np.zeros(3, np.float64)).dtype == np.float64
    assert Tensor(np.zeros(3, np.float32)).dtype == np.float32
    assert Tensor([1, 2, 3]).dtype == np.float32
    assert Tensor(3).dtype == np.float32
    assert Tensor(np.arange(3)).dtype == np.float32
    assert Tensor(np.array([True, False])).dtype == np.float32
    x = Tensor(np.ones(2, np.float64), requires_grad=True)
    (x * 2).sum().backward()
    assert x.grad.dtype == np.float64 and x.grad.shape == (2,)


def test_default_dtype_is_settable():
    try:
        set_default_dtype(np.float64)
        assert Tensor([1.0]).dtype == np.float64
    finally:
        set_default_dtype(np.float32)
    assert get_default_dtype() == np.float32
    with pytest.raises(TypeError, match="float32 or float64"):
        set_default_dtype(np.int32)


def test_python_scalar_takes_tensor_dtype():
    x = Tensor(np.array([1.0], np.float64))
    assert (x * 0.1).data[0] == 0.1  # not rounded through float32
    assert (Tensor(np.ones(1, np.float32)) * 0.1).dtype == np.float32
    assert (x + [0.1]).data[0] == 1.1  # a list operand, too, is not rounded through float32
    assert (x * np.ones(1, np.float32)).dtype == np.float64  # numpy's promotion otherwise


@pytest.mark.parametrize("bad", [np.array(["a"]), np.array([1 + 2j]), np.array([object()], dtype=object), "text"])
def test_unsupported_dtype_raises(bad):
    with pytest.raises(TypeError, match="Tensor: unsupported dtype"):
        Tensor(bad)


def test_ragged_list_raises():
    with pytest.raises(ValueError, match="rectangular"):
        Tensor([[1, 2], [3]])


def test_dtype_must_be_float32_or_float64():
    with pytest.raises(TypeError, match="Tensor: dtype must be float32 or float64, got int64"):
        Tensor([1], dtype=np.int64)


# ----------------------------------------------------------------------------- fields and constructors
def test_attributes_and_repr():
    x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True, name="x")
    y = x * 2
    assert (x.shape, x.ndim, x.size, len(x)) == ((2, 2), 2, 4, 2)
    assert y.op == "mul" and y.parents[0] is x and x.op is None and x.is_leaf
    assert np.asarray(y).tolist() == [[2, 4], [6, 8]]
    assert np.shares_memory(y.numpy(), y.data)
    assert Tensor(3.5).item() == 3.5
    r = repr(y)
    assert "shape=(2, 2)" in r and "float32" in r and "op=mul" in r and "2." in r
    assert "name='x'" in repr(x)
    with pytest.raises(ValueError, match="one-element"):
        x.item()
    with pytest.raises(TypeError, match="0-d"):
        len(Tensor(1.0))


def test_the_truth_value_of_a_tensor_of_several_entries_is_ambiguous():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"truth value of a tensor of shape \(2, 3\) is ambiguous"):
        bool(x)
    assert bool(Tensor([2.0]))


def test_op_label_shows_hyper_parameters():
    x = rand(2, 3)
    assert x.sum(axis=1).op_label == "sum axis=1"
    assert x.reshape(3, 2).op_label == "reshape shape=(3, 2)"
    assert x.op_label == ""


def test_constructors_are_seedable():
    a = Tensor.randn(2, 3, seed=1)
    b = Tensor.randn((2, 3), seed=np.random.default_rng(1))
    assert np.array_equal(a.data, b.data) and a.dtype == np.float32
    u = Tensor.uniform(100, low=-2, high=-1, seed=3)
    assert u.data.min() >= -2 and u.data.max() < -1
    assert Tensor.zeros(2, 2).data.sum() == 0 and Tensor.ones(3).data.sum() == 3
    assert Tensor.zeros_like(a).shape == (2, 3) and Tensor.ones_like(a).data.sum() == 6
    assert Tensor.zeros(2, dtype=np.float64).dtype == np.float64
    r = Tensor.rand(2, 3, seed=4)  # PyTorch's torch.rand: uniform in [0, 1)
    np.testing.assert_array_equal(r.data, Tensor.uniform((2, 3), seed=4).data)
    assert r.dtype == np.float32 and Tensor.rand(2, dtype=np.float64, requires_grad=True).requires_grad



@pytest.fixture
def unseeded():
    """manual_seed's generator is global: put fresh entropy back after the test."""
    yield
    manual_seed(None)


def test_manual_seed_makes_every_unseeded_draw_reproducible_as_torch_manual_seed(unseeded):
    """PyTorch's torch.manual_seed(0) at the top of a script: randn, uniform, the layers' weights, dropout's masks and
    the batches' order, none given a seed, repeat run for run (numpy's np.random.seed does not reach them)."""
    def run():
        manual_seed(0)
        drawn = [Tensor.randn(2, 3), Tensor.uniform(4), nn.Linear(3, 2).W, nn.Conv2d(1, 2, 3).W,
                 nn.ConvTranspose2d(1, 2, 3).W, nn.Dropout(0.5)(Tensor.ones(20)), Tensor.ones(20).dropout(0.5)]
        order = [y for _, y in batches(np.arange(6), np.arange(6), 2)]
        return [t.data.copy() for t in drawn] + order
    first, second = run(), run()
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    manual_seed(1)
    assert not np.array_equal(Tensor.randn(2, 3).data, first[0])
    manual_seed(0)
    np.testing.assert_array_equal(Tensor.randn(3, seed=5).data, np.random.default_rng(5).standard_normal(3)
                                  .astype(np.float32))  # seed= wins
    manual_seed(None)  # fresh entropy again, as before any manual_seed
    assert not np.array_equal(Tensor.randn(8).data, Tensor.randn(8).data)


def test_manual_seed_reaches_a_dropout_layer_built_before_it(unseeded):
    """torch.manual_seed(0) before each of two runs of one model repeats its dropout masks; so here, whether the
    unseeded nn.Dropout was built before any manual_seed or after another one."""
    manual_seed(None)
    for before in (None, 7):
        manual_seed(before)
        layer, x = nn.Dropout(0.5), Tensor.ones(40)
        manual_seed(0)
        first = layer(x).data.copy()
        manual_seed(0)
        np.testing.assert_array_equal(layer(x).data, first)
        np.testing.assert_array_equal(first, x.dropout(0.5, rng=np.random.default_rng(0)).data)


def test_manual_seed_takes_a_negative_int_as_torch_manual_seed(unseeded):
    """torch.manual_seed(-1) works (a negative seed is read modulo 2**64); numpy's generators refused it."""
    manual_seed(-1)
    first = Tensor.randn(4).data.copy()
    manual_seed(2**64 - 1)
    np.testing.assert_array_equal(Tensor.randn(4).data, first)


@pytest.mark.parametrize("seed", ["0", 1.5, True])
def test_manual_seed_takes_an_int(unseeded, seed):
    with pytest.raises(TypeError, match=re.escape(f"manual_seed: seed must be an int (or None for fresh entropy), "
                                                  f"got {seed!r}")):
        manual_seed(seed)

def test_is_grad_enabled_and_tensor_from_tensor():
    from tinygrad_cnn import is_grad_enabled
    assert is_grad_enabled()
    with no_grad():
        assert not is_grad_enabled()
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = Tensor(x)  # a new leaf with a copy of the values, not part of x's graph
    assert y.data.tolist() == [1.0, 2.0] and not np.shares_memory(y.data, x.data) and not y.requires_grad


# ----------------------------------------------------------------------------- backward semantics
def test_tensor_used_twice_accumulates():
    x = Tensor([2.0], requires_grad=True)
    (x * x + x).sum().backward()
    assert x.grad.tolist() == [5.0]


def test_second_backward_doubles_leaves_exactly_and_not_interiors():
    x = Tensor([1.0, 2.0], requires_grad=True)
    h = x * 3  # interior used twice
    loss = (h * h).sum() + h.sum()
    loss.backward()
    first_leaf, first_h = x.grad.copy(), h.grad.copy()
    loss.backward()
    np.testing.assert_array_equal(x.grad, 2 * first_leaf)
    np.testing.assert_array_equal(h.grad, first_h)  # interior: latest backward only
    np.testing.assert_array_equal(first_leaf, 3 * (2 * 3 * x.data + 1))


def test_no_grad_for_tensors_that_do_not_require_it():
    x, c = Tensor([1.0], requires_grad=True), Tensor([3.0])
    y = x * c
    y.sum().backward()
    assert c.grad is None and x.grad.tolist() == [3.0]


def test_branch_without_grad_leaves_is_not_recorded():
    c = Tensor([1.0, 2.0])
    d = (c * 2).exp()
    assert not d.requires_grad and d.parents == () and d.op is None


def test_closure_not_called_for_constant_branches():
    x = Tensor([1.0], requires_grad=True)
    const = Tensor([2.0]) * 5
    called = []
    y = x * const
    original = y._backward
    y._backward = lambda g: called.append(1) or original(g)
    y.sum().backward()
    assert called == [1] and const.grad is None


def test_backward_needs_grad_for_non_scalar():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=r"one-element tensor.*shape \(2,\)"):
        (x * 2).backward()
    (x * 2).backward(np.array([1.0, 10.0]))
    assert x.grad.tolist() == [2.0, 20.0]
    with pytest.raises(ValueError, match=r"grad has shape \(3,\) but the tensor has shape \(2,\)"):
        (x * 2).backward(np.ones(3))


def test_backward_on_tensor_without_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (Tensor([1.0]) * 2).sum().backward()


def test_zero_grad_detach_requires_grad_():
    x = Tensor([1.0], requires_grad=True)
    (x * 2).sum().backward()
    x.zero_grad()
    assert x.grad is None
    d = (x * 2).detach()
    assert d.is_leaf and not d.requires_grad and d.data.tolist() == [2.0]
    (d * x).sum().backward()
    assert x.grad.tolist() == [2.0] and d.grad is None
    c = Tensor([1.0]).requires_grad_()
    assert c.requires_grad
    with pytest.raises(RuntimeError, match="only a leaf"):
        (x * 2).requires_grad_(False)


@pytest.mark.slow
def test_chain_of_100000_ops_needs_no_recursion():
    x = Tensor(np.ones(1, np.float64), requires_grad=True)
    y = x
    for _ in range(100_000):
        y = y * 1.0001
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0001 ** 100_000], rtol=1e-9)
    assert len(topo_order(y)) == 1 + 2 * 100_000  # x, then each op and its constant


def test_failed_op_leaves_no_node_and_no_grad_change():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    y = x * 2
    with pytest.raises(ValueError):
        y + np.ones(4)
    y.sum().backward()
    assert [t.op for t in topo_order(y)] == [None, None, "mul"]  # x, the constant 2, y
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 2.0))


def test_backward_restores_the_garbage_collector():
    import gc
    x = Tensor([1.0], requires_grad=True)
    (x * 2).sum().backward()
    assert gc.isenabled()
    w = Tensor([1.0], requires_grad=True)
    loss = (w * w).sum()
    w.data = np.array([2.0])
    with pytest.raises(RuntimeError):
        loss.backward()
    assert gc.isenabled()


# ----------------------------------------------------------------------------- copies and pickle
def leaf_with_grad():
    w = leaf([1.0, 2.0], name="w")
    (w * 3.0).sum().backward()
    return w


def test_deepcopy_of_a_leaf_keeps_read_only_data_name_flag_and_grad():
    w = leaf_with_grad()
    c = copy.deepcopy(w)
    assert c is not w and c.data is not w.data and not c.data.flags.writeable
    np.testing.assert_array_equal(c.data, w.data)
    assert c.name == "w" and c.requires_grad and c.is_leaf
    np.testing.assert_array_equal(c.grad, [3.0, 3.0])  # torch's deepcopy copies .grad
    assert c.grad is not w.grad
    with pytest.raises(ValueError, match="read-only"):
        c.data[0] = 5.0


def test_deepcopy_inside_a_structure_keeps_sharing():
    w = leaf_with_grad()
    a, b = copy.deepcopy([w, w])
    assert a is b


def test_pickle_of_a_leaf_keeps_read_only_data_name_flag_and_drops_grad():
    w = leaf_with_grad()
    p = pickle.loads(pickle.dumps(w))
    assert not p.data.flags.writeable and p.name == "w" and p.requires_grad
    assert p.grad is None  # as torch: pickling keeps no .grad
    np.testing.assert_array_equal(p.data, w.data)
    assert p.dtype == np.float64


def test_shallow_copy_of_a_leaf_shares_read_only_data():
    w = leaf_with_grad()
    s = copy.copy(w)
    assert s is not w and np.shares_memory(s.data, w.data)
    assert s.name == "w" and s.requires_grad and s.grad is None  # as torch


@pytest.mark.parametrize("how", [copy.deepcopy, copy.copy, pickle.dumps])
def test_copying_a_non_leaf_raises(how):
    y = leaf([1.0, 2.0]) * 2.0
    with pytest.raises(RuntimeError, match=r"'mul'.*detach\(\)"):
        how(y)


# ----------------------------------------------------------------------------- iteration and conversions
def test_iterating_a_0d_tensor_raises():
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        list(Tensor(1.0))


def test_iterating_yields_rows_in_the_graph():
    x = leaf([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    rows = list(x)
    assert len(rows) == 3 and all(isinstance(r, Tensor) and r.op == "getitem" for r in rows)
    np.testing.assert_array_equal(rows[1].data, [3.0, 4.0])
    (rows[0] * 2.0 + rows[2]).sum().backward()
    np.testing.assert_array_equal(x.grad, [[2.0, 2.0], [0.0, 0.0], [1.0, 1.0]])
    a, b, c = leaf([1.0, 2.0, 3.0])  # unpacking, as torch
    assert float(c) == 3.0


def test_float_and_int_of_one_element_tensors():
    assert float(Tensor([[2.5]])) == 2.5 and isinstance(float(Tensor(2.5)), float)
    assert int(Tensor(2.9)) == 2 and isinstance(int(Tensor([-1.5])), int)


@pytest.mark.parametrize("convert", [float, int])
def test_float_and_int_of_larger_tensors_raise(convert):
    with pytest.raises(ValueError, match=rf"{convert.__name__}: only a one-element tensor .* shape \(2,\)"):
        convert(Tensor([1.0, 2.0]))


# ----------------------------------------------------------------------------- grad mode, per thread
def test_no_grad_context_and_decorator():
    x = Tensor([1.0], requires_grad=True)
    with no_grad():
        y = x * 2
    assert not y.requires_grad and y.parents == ()

    @no_grad()
    def f(t):
        return t.exp()
    assert not f(x).requires_grad
    assert (x * 2).requires_grad  # restored

    @no_grad
    def g(t):
        return t.exp()
    assert not g(x).requires_grad and g.__name__ == "g"
    assert (x * 2).requires_grad


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


# ----------------------------------------------------------------------------- backward from several threads
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
