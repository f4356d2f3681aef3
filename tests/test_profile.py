"""tinygrad_cnn.profile: per-op forward/backward time and saved bytes; nothing changes outside profile().

Times are compared with each other (the ops' sum against the profile's own wall time, with a tolerance for a
shared, noisy machine), never with an absolute figure. Saved bytes are compared with tracemalloc.
"""

import contextlib
import gc
import threading
import time
import tracemalloc

import numpy as np
import pytest

import tinygrad_cnn
from tinygrad_cnn import Tensor, nn, no_grad, profile
from tinygrad_cnn.functional import cross_entropy
from tinygrad_cnn.profile import Profile, kept_arrays, op_methods


def cifar_cnn(rng):
    """The benchmark's CIFAR-sized CNN: (m, 32, 32, 3) -> conv 32 -> relu -> pool -> conv 64 -> relu -> pool -> 10."""
    return nn.Sequential(
        conv1=nn.Conv2d(3, 32, 3, pad=1, seed=rng), relu1=nn.ReLU(), pool1=nn.MaxPool2d(2),
        conv2=nn.Conv2d(32, 64, 3, pad=1, seed=rng), relu2=nn.ReLU(), pool2=nn.MaxPool2d(2),
        flatten=nn.Flatten(), fc=nn.Linear(8 * 8 * 64, 10, seed=rng))


@pytest.fixture(scope="module")
def cifar():
    rng = np.random.default_rng(0)
    model = cifar_cnn(rng)
    x, y = rng.standard_normal((32, 32, 32, 3)).astype(np.float32), rng.integers(0, 10, 32)

    def step():
        loss = cross_entropy(model(Tensor(x)), y)
        loss.backward()
        model.zero_grad()
        return loss
    step()  # warm up
    return model, x, y, step


def profiled(step):
    with profile() as prof:
        loss = step()
    return prof, loss


def test_the_ops_add_up_to_the_wall_time_of_a_cifar_sized_cnn(cifar):
    """Forward and backward of the benchmark's CIFAR-sized CNN: the ops' times cover the profiled wall time but for
    the engine's walk, the profiler's bookkeeping and the Python between layers (about 2% on a quiet machine;
    0.8 leaves room for a busy one), and profiling costs little against the same step unprofiled. Each loss
    outlives its profile, so freeing its graph is not in the profiled time."""
    _, _, _, step = cifar
    shares, ratios = [], []
    for _ in range(3):
        prof, _ = profiled(step)
        start = time.perf_counter()
        step()
        plain = time.perf_counter() - start
        shares.append(prof.op_time / prof.total)
        ratios.append(prof.total / plain)
    assert all(share <= 1.0 for share in shares)  # the ops are inside the wall time
    assert max(shares) >= 0.8, shares
    assert min(ratios) < 1.5, ratios
    ops = {s.op: s for s in prof.ops}
    assert set(ops) == {"conv2d", "relu", "max_pool2d", "flatten", "matmul", "add", "cross_entropy"}
    assert ops["conv2d"].calls == 2 and ops["relu"].calls == 2
    assert all(ops[op].forward > 0 and ops[op].backward > 0 for op in ("conv2d", "relu", "max_pool2d", "matmul"))
    parts = prof.op_time + prof.walk + prof.overhead + prof.outside
    assert parts == pytest.approx(prof.total, rel=1e-9) and prof.walk > 0 and prof.overhead > 0


def test_saved_bytes_match_what_tracemalloc_sees_the_graph_keep(cifar):
    """The forward's graph holds the activations and what the closures saved; tracemalloc's count of what is still
    allocated after the forward agrees with the profiler's unique saved buffers within 10%."""
    model, x, y, _ = cifar
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        with profile() as prof:
            loss = cross_entropy(model(Tensor(x)), y)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert loss.requires_grad
    assert prof.saved_bytes == pytest.approx(kept, rel=0.10), (prof.saved_bytes, kept)
    assert prof.saved_bytes > 10 * 2**20  # the activations of a CIFAR batch: megabytes, not a rounding error


def test_a_shared_buffer_counts_once_and_parameters_not_at_all():
    W = Tensor.randn(3, 4, seed=0, requires_grad=True, name="W")
    x = Tensor.randn(2, 3, seed=1)
    with profile() as prof:
        h = x @ W                    # matmul keeps x and W: W is a parameter, left out
        a = h.relu()                 # keeps h's buffer
        v = a.reshape(4, 2)          # a view of a's buffer
        b = (v * v).sum()            # keeps v (a's buffer, through the view), charged here: relu kept h, not a
        c = h.relu().sum()           # keeps h's buffer again: already counted
    assert prof.node(h).saved_bytes == x.data.nbytes
    assert prof.node(a).saved_bytes == h.data.nbytes
    assert prof.node(b.parents[0]).saved_bytes == a.data.nbytes
    assert prof.node(c.parents[0]).saved_bytes == 0
    assert prof.saved_bytes == x.data.nbytes + h.data.nbytes + a.data.nbytes
    base = np.arange(12.0)
    closure = (lambda kept: lambda g: kept)((base[:3], base.reshape(4, 3)))
    assert [a is base for a in kept_arrays(closure)] == [True]
    assert kept_arrays(lambda g: W, (W,)) == [] and kept_arrays(lambda g: W.data, (W,)) == []


def test_forward_time_starts_where_the_op_method_starts():
    """Time between ops (here a sleep) is not the next op's: it is 'outside ops'."""
    x = Tensor.randn(100, seed=0, requires_grad=True)
    with profile() as prof:
        a = x.relu()
        time.sleep(0.05)
        b = a.exp()
        b.sum().backward()
    assert prof.node(b).forward < prof.outside
    assert prof.outside >= 0.05
    first_line = test_forward_time_starts_where_the_op_method_starts.__code__.co_firstlineno
    assert prof.node(a).where.endswith(f"test_profile.py:{first_line + 4}")  # the user's line that made it


def test_outside_profile_the_library_runs_its_own_code():
    before = dict(vars(Tensor))
    with profile():
        assert vars(Tensor)["from_op"] is not before["from_op"] and vars(Tensor)["relu"] is not None
    assert dict(vars(Tensor)) == before
    assert "relu" not in vars(Tensor) and "__add__" not in vars(Tensor)  # inherited from the op mixins again
    assert {"conv2d", "__add__", "__getitem__", "concatenate", "max_pool2d"} <= set(op_methods())


def test_gradients_are_the_same_inside_a_profile(cifar):
    model, x, y, _ = cifar
    grads = []
    for use_profile in (False, True):
        with profile() if use_profile else contextlib.nullcontext():
            loss = cross_entropy(model(Tensor(x)), y)
            loss.backward()
        grads.append([p.grad.copy() for p in model.parameters()])
        model.zero_grad()
    for plain, inside in zip(*grads, strict=True):
        np.testing.assert_array_equal(plain, inside)


def test_the_table_lists_ops_by_time_with_their_share():
    x = Tensor.randn(64, 64, seed=0, requires_grad=True)
    with profile() as prof:
        loss = ((x @ x).tanh() * 2).sum()
        loss.backward()
    table = prof.table()
    assert str(prof) == table and table.startswith("profile: 4 op calls")
    lines = table.splitlines()
    rows = [line.split()[0] for line in lines[2:6]]
    totals = [prof.ops[i].total for i in range(4)]
    assert sorted(rows) == ["matmul", "mul", "sum", "tanh"] and rows[0] == prof.ops[0].op
    assert totals == sorted(totals, reverse=True)
    assert "backward walk (engine)" in table and "outside ops (your code)" in table and "%" in lines[2]
    assert "matmul" in prof.table(by="label") and len(prof.table(limit=1).splitlines()) == 7
    with pytest.raises(ValueError, match="by must be 'op' or 'label'"):
        prof.table(by="node")


def test_ops_recorded_by_a_create_graph_backward_are_its_time_not_forward_time():
    """backward(create_graph=True) runs each closure as ops: their time is the closure's backward time (or the walk's,
    for the engine's sums), never forward time as well; so the parts stay within the wall time (they came to 135%)."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((8, 16, 16, 8)), requires_grad=True)
    W = Tensor(rng.standard_normal((3, 3, 8, 16)), requires_grad=True)
    with profile() as prof:
        y = x.conv2d(W, pad=1).tanh().sum()
        y.backward(create_graph=True)
    recorded = prof.node(x.grad)  # made inside the backward: conv2d's rule, a conv_transpose2d
    assert recorded is not None and recorded.op == "conv_transpose2d" and recorded.forward == 0.0
    assert prof.node(y).forward > 0 and {"conv2d", "tanh", "sum"} <= {s.op for s in prof.ops if s.forward > 0}
    assert prof.op_time + prof.walk + prof.overhead <= prof.total
    assert prof.outside >= 0


def test_ops_that_record_no_graph_count_their_forward_only():
    x = Tensor.randn(8, seed=0)
    with profile() as prof, no_grad():
        y = x.relu()
    assert [(s.op, s.calls, s.backward) for s in prof.ops] == [("relu", 1, 0.0)]
    assert prof.node(y) is None and prof.saved_bytes == 0


def test_a_backward_outside_the_profile_and_explain_add_no_time():
    x = Tensor.randn(5, seed=0, requires_grad=True, name="x")
    with profile() as prof:
        y = (x * x).sum()
    y.backward()
    tinygrad_cnn.explain(y, x, (1,))
    assert all(s.backward == 0.0 for s in prof.ops) and prof.walk == 0.0


def test_profiles_are_per_thread_and_do_not_nest():
    x = Tensor.randn(5, seed=0, requires_grad=True)
    other = []
    with profile() as prof:
        thread = threading.Thread(target=lambda: other.append((x * 2).relu()))
        thread.start()
        thread.join()
        mine = x.exp()
        with pytest.raises(RuntimeError, match="already profiling"):
            with profile():
                pass
    assert prof.node(mine) is not None and prof.node(other[0]) is None
    assert [s.op for s in prof.ops] == ["exp"]
    with pytest.raises(RuntimeError, match="has run already"):
        with prof:
            pass
    assert isinstance(prof, Profile) and Profile().total == 0.0


def test_an_error_inside_leaves_the_library_unprofiled():
    before = dict(vars(Tensor))
    x = Tensor.randn(2, 3, seed=0)
    with pytest.raises(ValueError, match="matmul"):
        with profile():
            x @ x
    assert dict(vars(Tensor)) == before
    with pytest.raises(RuntimeError, match="does not require grad"):
        with profile() as prof:
            x.relu().backward()
    assert prof.walk >= 0 and dict(vars(Tensor)) == before


def test_draw_shows_each_ops_times_and_colours_by_time():
    x = Tensor.randn(16, 16, seed=0, requires_grad=True, name="x")
    with profile() as prof:
        loss = (x @ x).relu().sum()
        loss.backward()
    source = loss.draw(profile=prof).source
    assert source.count(" ms, bwd ") == 3  # matmul, relu, sum; the leaf has no time
    slowest = max(prof.ops, key=lambda s: s.total).op
    line = next(line for line in source.splitlines() if f"<b>{slowest}</b>" in line)
    assert 'fillcolor="#ff8c1a"' in line
    assert "fillcolor=lightblue" in next(line for line in source.splitlines() if "<b>x</b>" in line)
    assert "fill: forward + backward time" in source
    assert " ms, bwd " not in loss.draw().source


@pytest.mark.slow
def test_several_steps_count_every_op_even_after_its_graph_is_gone():
    W = Tensor.randn(4, 4, seed=0, requires_grad=True, name="W")
    with profile() as prof:
        for _ in range(5):
            loss = (Tensor.randn(3, 4, seed=1) @ W).relu().sum()
            loss.backward()
            del loss
            gc.collect()  # the step's tensors die; their ids may come back in the next step
    assert {s.op: s.calls for s in prof.ops} == {"matmul": 5, "relu": 5, "sum": 5}
    label_rows = prof.table(by="label").splitlines()[2:5]
    assert sorted((row.split()[0], int(row.split()[1])) for row in label_rows) == [("matmul", 5), ("relu", 5),
                                                                                   ("sum", 5)]
    assert all(s.backward > 0 for s in prof.ops)
