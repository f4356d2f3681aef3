"""Benchmark of the CNN ops through the Tensor API: `python benchmarks/bench.py [--quick] [--dtype float32]`.

Times what users run: per workload, forward+backward of conv2d, max_pool2d and avg_pool2d on fresh Tensors
with a scalar loss (`op(x).sum().backward()`), ours and PyTorch CPU's (when torch can be imported; it is
never a dependency) in turn, each timed call right after an untimed call of the same function, over
several runs. Printed: our and PyTorch's fastest run (each side at its least disturbed) and their ratio,
and the median-run ratio; also forward alone and `out.backward(ones)` on reused tensors. Then a whole
training step (forward, cross-entropy, backward, Adam) of two small CNNs against the same network in
PyTorch, where a conv forward+backward spends its time (per kernel phase), speed-up over the loop reference
(reference.py), peak extra memory of conv forward+backward, and the per-op overhead of recording a graph,
ours and PyTorch's. Figures are measured, never asserted.

Not part of the package (the wheel does not carry it): run it from a clone. It times the tinygrad_cnn of the
clone it sits in, installed or not (the clone's root goes first on sys.path). May import tinygrad_cnn, numpy and,
when importable, torch.
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the clone's tinygrad_cnn, installed or not

from tinygrad_cnn import profile, reference
from tinygrad_cnn.functional import cross_entropy
from tinygrad_cnn.nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Sequential
from tinygrad_cnn.optim import Adam
from tinygrad_cnn.tensor import Tensor
from tinygrad_cnn.threads import get_num_threads, set_num_threads


class Workload(NamedTuple):
    """A conv2d (x, W, stride, pad, dilation, groups) and the pools (window f, stride) run on its output's shape;
    pool_f None: a conv-only row."""
    x: tuple
    W: tuple
    stride: int
    pad: int
    pool_f: int | None
    pool_stride: int | None
    dilation: int = 1
    groups: int = 1


WORKLOADS = {
    "W1": Workload((2, 5, 7, 4), (3, 3, 4, 8), 2, 1, 3, 2),
    "W2": Workload((64, 28, 28, 8), (3, 3, 8, 16), 1, 1, 2, 2),
    "W3": Workload((32, 32, 32, 32), (3, 3, 32, 64), 1, 1, 2, 2),
    "W4": Workload((16, 64, 64, 3), (5, 5, 3, 32), 2, 2, 2, 2),
    "depthwise": Workload((32, 32, 32, 32), (3, 3, 1, 32), 1, 1, None, None, groups=32),
    "dilated": Workload((32, 32, 32, 32), (3, 3, 32, 32), 1, 2, None, None, dilation=2),
    "grouped": Workload((32, 32, 32, 32), (3, 3, 8, 64), 1, 1, None, None, groups=4),
}


CLOCK = time.perf_counter  # --clock cpu: time.thread_time, the CPU time of the calling thread (with --threads 1)


def median_seconds(fn, repeats: int) -> float:
    """Median time of fn() over `repeats` runs, after one warm-up run."""
    return interleaved_medians([fn], repeats)[0]


def interleaved_medians(fns, repeats: int) -> list:
    """Median time (CLOCK) of each fn, timed in turn (fn0, fn1, ..., fn0, fn1, ...), so that a slow spell of
    a shared machine hits all of them alike. Each timed call follows an untimed call of the same fn: BLAS
    and OpenMP workers of the previous fn spin for a while after it returns, and on 2 cores that would
    slow the first call after it (a pause instead lets caches and thread pools go cold)."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, spent in zip(fns, times, strict=True):
            fn()
            start = CLOCK()
            fn()
            spent.append(CLOCK() - start)
    return [statistics.median(spent) for spent in times]


def conv_flops(x_shape, W_shape, out_shape) -> int:
    """Multiply-adds of one conv forward, times 2 (C: the input channels per group)."""
    f_h, f_w, C, _ = W_shape
    return 2 * int(np.prod(out_shape)) * f_h * f_w * C


def square_gemm_gflops(dtype, n=1024, repeats=5) -> float:
    """The machine's rate for numpy's square n x n GEMM in dtype, fastest of `repeats` (each after an untimed
    call): the limit the conv rows' GFLOP/s are a share of."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(dtype) for _ in range(2))
    times = []
    for _ in range(repeats):
        np.matmul(a, b)
        start = CLOCK()
        np.matmul(a, b)
        times.append(CLOCK() - start)
    return 2 * n ** 3 / min(times) / 1e9


def _fwd_bwd(op):
    """fn() that runs op() and backpropagates ones through its output."""
    def run():
        out = op()
        out.backward(np.ones(out.shape, dtype=out.dtype))
    return run


def _ops(x, W, b, pooled, spec, F):
    """{op name: fn(x, W, b, pooled) -> output} in library F's calling conventions (ours: the Tensor methods)."""
    f, pool_stride, conv_args = spec.pool_f, spec.pool_stride, {"dilation": spec.dilation, "groups": spec.groups}
    if F is None:
        ops = {"conv2d": lambda x, W, b, p: x.conv2d(W, b, stride=spec.stride, pad=spec.pad, **conv_args),
               "max_pool2d": lambda x, W, b, p: p.max_pool2d(f, pool_stride),
               "avg_pool2d": lambda x, W, b, p: p.avg_pool2d(f, pool_stride)}
    else:
        ops = {"conv2d": lambda x, W, b, p: F.conv2d(x, W, b, stride=spec.stride, padding=spec.pad, **conv_args),
               "max_pool2d": lambda x, W, b, p: F.max_pool2d(p, f, pool_stride),
               "avg_pool2d": lambda x, W, b, p: F.avg_pool2d(p, f, pool_stride)}
    return ops if f is not None else {"conv2d": ops["conv2d"]}


USES = {"conv2d": (0, 1, 2), "max_pool2d": (3,), "avg_pool2d": (3,)}  # which of (x, W, b, pool input) each op reads


def _fresh(make, arrays, op_name):
    """New tensors (make(array)) for the arrays op_name reads, None for the others: a training step's fresh input."""
    return [make(a) if i in USES[op_name] else None for i, a in enumerate(arrays)]


def our_cases(data, spec):
    """{op name: (forward fn, fwd + out.backward(ones) on reused Tensors, fwd + .sum().backward() on fresh Tensors)}."""
    reused = [Tensor(a, requires_grad=True) for a in data]
    cases = {}
    for name, op in _ops(*reused, spec, None).items():
        def fresh(op=op, name=name):
            op(*_fresh(lambda a: Tensor(a, requires_grad=True), data, name)).sum().backward()
        cases[name] = (lambda op=op: op(*reused), _fwd_bwd(lambda op=op: op(*reused)), fresh)
    return cases


def torch_layout(data):
    """(x, W, b, pool input) NHWC / (f_h, f_w, C, n_C) numpy arrays -> PyTorch's NCHW / (n_C, C, f_h, f_w)."""
    x, W, b, pooled = data
    return [np.ascontiguousarray(a) for a in (x.transpose(0, 3, 1, 2), W.transpose(3, 2, 0, 1), b,
                                              pooled.transpose(0, 3, 1, 2))]


def torch_cases(data, spec):
    """The same three fns as our_cases in PyTorch CPU, on the same data in NCHW (made outside the timing); {}
    without torch."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return {}
    arrays = torch_layout(data)
    reused = [torch.tensor(a, requires_grad=True) for a in arrays]
    cases = {}
    for name, op in _ops(*reused, spec, F).items():
        def fwd_bwd(op=op):
            out = op(*reused)
            out.backward(torch.ones_like(out))

        def fresh(op=op, name=name):
            op(*_fresh(lambda a: torch.tensor(a, requires_grad=True), arrays, name)).sum().backward()
        cases[name] = (lambda op=op: op(*reused), fwd_bwd, fresh)
    return cases


def runs_of(fns, runs: int, repeats: int) -> list:
    """[[median of each run] per fn]: `runs` runs of interleaved_medians(fns, repeats)."""
    per_run = [interleaved_medians(fns, repeats) for _ in range(runs)]
    return [list(times) for times in zip(*per_run, strict=True)]


def compare(ours, theirs, runs: int, repeats: int):
    """(our fastest run, their fastest run, fastest-run ratio, median-run ratio) in ms; theirs None: ours only."""
    if theirs is None:
        (mine,) = runs_of([ours], runs, repeats)
        return min(mine) * 1e3, None, None, None
    mine, other = runs_of([ours, theirs], runs, repeats)
    return (min(mine) * 1e3, min(other) * 1e3, min(mine) / min(other),
            statistics.median(mine) / statistics.median(other))


def _ms(t) -> str:
    return "" if t is None else f"{t:.2f}"


def _ratio(r) -> str:
    return "" if r is None else f"{r:.2f}x"


def make_data(spec, dtype, seed=0):
    """Random (x, W, b, pool input) for a workload, in `dtype`."""
    x_shape, W_shape, stride, pad, d = spec.x, spec.W, spec.stride, spec.pad, spec.dilation
    rng = np.random.default_rng(seed)
    n_H = (x_shape[1] - d * (W_shape[0] - 1) - 1 + 2 * pad) // stride + 1
    n_W = (x_shape[2] - d * (W_shape[1] - 1) - 1 + 2 * pad) // stride + 1
    shapes = [x_shape, W_shape, (W_shape[3],), (x_shape[0], n_H, n_W, W_shape[3])]
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def bench_workload(name, spec, dtype, runs, repeats, gemm_gflops=None):
    """Rows (workload, op, dtype, fwd ms, reused f+b ms, its ratio, fresh sum f+b ms, torch's, fastest-run ratio,
    median-run ratio, GFLOP/s of the fresh f+b (conv: three direct-conv GEMMs' worth, forward, dx and dW), its share
    of gemm_gflops, the machine's square-GEMM rate)."""
    data = make_data(spec, dtype)
    ours, theirs = our_cases(data, spec), torch_cases(data, spec)
    rows = []
    for op, (fwd, reused, fresh) in ours.items():
        other = theirs.get(op, (None, None, None))
        t_fwd, _, _, _ = compare(fwd, None, 1, repeats)
        t_reused, _, r_reused, _ = compare(reused, other[1], 1, repeats)
        t_fresh, t_torch, fastest, median = compare(fresh, other[2], runs, repeats)
        gflops = share = ""
        if op == "conv2d":
            rate = 3 * conv_flops(spec.x, spec.W, fwd().shape) / t_fresh / 1e6
            gflops = f"{rate:.1f}"
            share = "" if gemm_gflops is None else f"{100 * rate / gemm_gflops:.0f}%"
        rows.append((name, op, np.dtype(dtype).name, _ms(t_fwd), _ms(t_reused), _ratio(r_reused), _ms(t_fresh),
                     _ms(t_torch), _ratio(fastest), _ratio(median), gflops, share))
    return rows


# ---------------------------------------------------------------- a whole training step


def digits_cnn(rng):
    """The CNN of examples/train_digits.py: (m, 8, 8, 1) -> 10 logits."""
    return Sequential(
        conv1=Conv2d(1, 16, 3, pad=1, seed=rng), relu1=ReLU(), pool1=MaxPool2d(2),
        conv2=Conv2d(16, 32, 3, pad=1, seed=rng), relu2=ReLU(), pool2=MaxPool2d(2),
        flatten=Flatten(), fc=Linear(2 * 2 * 32, 10, init="glorot", seed=rng))


def cifar_cnn(rng):
    """A CIFAR-sized CNN: (m, 32, 32, 3) -> conv 32 -> relu -> pool -> conv 64 -> relu -> pool -> 10 logits."""
    return Sequential(
        conv1=Conv2d(3, 32, 3, pad=1, seed=rng), relu1=ReLU(), pool1=MaxPool2d(2),
        conv2=Conv2d(32, 64, 3, pad=1, seed=rng), relu2=ReLU(), pool2=MaxPool2d(2),
        flatten=Flatten(), fc=Linear(8 * 8 * 64, 10, seed=rng))


# name: (model maker, input shape (m, H, W, C)); each conv is 3x3 pad 1 and each pool halves H and W
TRAIN_STEPS = {"digits CNN m=64": (digits_cnn, (64, 8, 8, 1)), "CIFAR-size CNN m=32": (cifar_cnn, (32, 32, 32, 3))}


def our_train_step(model, x, y):
    """fn() for one Adam step of `model` on (x, y): fresh input Tensor, forward, cross-entropy, backward, update."""
    opt = Adam(model.parameters(), lr=1e-3)

    def step():
        loss = cross_entropy(model(Tensor(x)), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()
    return step


def torch_train_step(model, x, y):
    """The same step as our_train_step in PyTorch (same weights, NCHW); None without torch."""
    try:
        import torch
    except ImportError:
        return None
    layers, shape = [], x.shape[1:3]
    for layer in model:
        if isinstance(layer, Conv2d):
            conv = torch.nn.Conv2d(layer.in_channels, layer.out_channels, layer.f, padding=layer.pad)
            conv.weight.data = torch.tensor(layer.W.data.transpose(3, 2, 0, 1).copy())
            conv.bias.data = torch.tensor(layer.b.data)
            layers.append(conv)
        elif isinstance(layer, MaxPool2d):
            layers.append(torch.nn.MaxPool2d(layer.f))
            shape = (shape[0] // layer.f, shape[1] // layer.f)
        elif isinstance(layer, ReLU):
            layers.append(torch.nn.ReLU())
        elif isinstance(layer, Flatten):
            layers.append(torch.nn.Flatten())
        else:  # Linear after Flatten: our rows are NHWC-flattened (h, w, c), PyTorch's NCHW-flattened (c, h, w)
            n_C = layer.in_features // (shape[0] * shape[1])
            W = layer.W.data.reshape(*shape, n_C, -1).transpose(3, 2, 0, 1).reshape(layer.out_features, -1)
            fc = torch.nn.Linear(layer.in_features, layer.out_features)
            fc.weight.data, fc.bias.data = torch.tensor(np.ascontiguousarray(W)), torch.tensor(layer.b.data)
            layers.append(fc)
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x_nchw, labels = np.ascontiguousarray(x.transpose(0, 3, 1, 2)), torch.tensor(y)

    def step():
        loss = torch.nn.functional.cross_entropy(net(torch.tensor(x_nchw)), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()
    return step


def train_step_rows(runs, repeats, steps=TRAIN_STEPS):
    """Rows (network, our step ms, torch's, fastest-run ratio, median-run ratio, |first loss difference|)."""
    rows = []
    for name, (make, shape) in steps.items():
        rng = np.random.default_rng(0)
        x = rng.standard_normal(shape).astype(np.float32)
        y = rng.integers(0, 10, shape[0])
        model = make(rng)
        ours, theirs = our_train_step(model, x, y), torch_train_step(model, x, y)
        diff = "" if theirs is None else f"{abs(theirs() - ours()):.1e}"  # first step: same weights, same loss
        t_ours, t_torch, fastest, median = compare(ours, theirs, runs, repeats)
        rows.append((name, "float32", _ms(t_ours), _ms(t_torch), _ratio(fastest), _ratio(median), diff))
    return rows


def loop_cases(data, spec):
    """{op name: forward+backward fn} of the loop reference (reference.py) on the same data."""
    x, W, b, pooled = data
    s, p, f, ps = spec.stride, spec.pad, spec.pool_f, spec.pool_stride
    stride, pads, window, pool_stride = (s, s), ((p, p), (p, p)), (f, f), (ps, ps)

    def conv():
        Z = reference.conv_forward(x, W, b, stride, pads)
        reference.conv_backward(np.ones_like(Z), x, W, stride, pads)

    def pool(mode):
        A = reference.pool_forward(pooled, window, pool_stride, mode)
        reference.pool_backward(np.ones_like(A), pooled, window, pool_stride, mode)
    return {"conv2d": conv, "max_pool2d": lambda: pool("max"), "avg_pool2d": lambda: pool("average")}


def reference_speedups(repeats):
    """Rows (workload, op, loop ms, ours ms, speed-up): fwd+bwd of the loop reference vs the Tensor ops, float64."""
    cut_w2 = WORKLOADS["W2"]._replace(x=(2, 28, 28, 8))
    rows = []
    for name, spec in [("W1", WORKLOADS["W1"]), ("W2 (m=2)", cut_w2)]:
        data = make_data(spec, np.float64)
        ours = our_cases(data, spec)
        for op, loop in loop_cases(data, spec).items():
            t_loop, t_ours = median_seconds(loop, max(1, repeats // 5)), median_seconds(ours[op][1], repeats)
            rows.append((name, op, f"{t_loop * 1e3:.1f}", f"{t_ours * 1e3:.3f}", f"{t_loop / t_ours:.0f}x"))
    return rows


def conv_phase_ms(spec, dtype, repeats):
    """[(phase, ms)]: where a conv forward+backward spends its time, each kernel phase timed alone, then the
    whole fresh-tensor scalar-loss path (what bench_workload times) and what is left of it for the Tensor layer.

    Phases: the forward (per batch block: pad, im2col, GEMM; Winograd: pad, transforms, 16 GEMMs), of it the path's
    im2col alone (pad and copy, whole batch; Winograd and depthwise: the pad only), the copy of the sum's broadcast
    gradient (checks.dense), dW (per block: im2col or transforms again, GEMM), dx (the kernel conv.conv_path picks:
    col2im's GEMMs and strided adds, or a stride-1 conv of dout with the flipped kernel), db.
    """
    from tinygrad_cnn.kernels import checks, conv
    x, W, b, _ = make_data(spec, dtype)
    stride, pads = (spec.stride, spec.stride), ((spec.pad, spec.pad), (spec.pad, spec.pad))
    conv_args = (spec.dilation, spec.groups)
    out, saved = conv.conv2d_forward(x, W, b, stride, pads, *conv_args)
    view = np.broadcast_to(np.ones((), dtype), out.shape)
    dout = checks.dense(view)
    phases = {
        "forward": lambda: conv.conv2d_forward(x, W, b, stride, pads, *conv_args),
        "of it im2col": lambda: np.ascontiguousarray(conv.conv2d_cols(saved)),
        "dense(sum grad)": lambda: checks.dense(view),
        "dW": lambda: conv.conv2d_weight_grad(dout, saved),
        "dx": lambda: conv.conv2d_input_grad(dout, saved),
        "db": lambda: conv.conv_db(dout),
        "whole f+b sum": our_cases([x, W, b, out], spec)["conv2d"][2],
    }
    times = dict(zip(phases, (t * 1e3 for t in interleaved_medians(list(phases.values()), repeats)), strict=True))
    times["Tensor layer, rest"] = times["whole f+b sum"] - sum(
        t for k, t in times.items() if k not in ("whole f+b sum", "of it im2col"))
    return list(times.items())


def conv_peak_memory(spec, dtype):
    """(input MB, peak MB during conv fwd+bwd, peak/input, working/input): tracemalloc sees numpy's allocations.

    "working" leaves out what any conv forward+backward must hold, the output, its gradient and the input's
    gradient: what is left is the im2col copy (f_h * f_w * n_H * n_W / (n_H_prev * n_W_prev) times the input)
    and the padded buffer of the col2im scatter.
    """
    data = make_data(spec, dtype)
    run = our_cases(data, spec)["conv2d"][1]
    tracemalloc.start()
    run()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    in_bytes, out_bytes = data[0].nbytes, data[3].nbytes  # data[3] has the conv output's shape
    working = peak - 2 * out_bytes - in_bytes
    return (f"{in_bytes / 2**20:.1f}", f"{peak / 2**20:.1f}", f"{peak / in_bytes:.1f}x",
            f"{working / in_bytes:.1f}x")


def graph_overhead_us(n=20000, chain=1000):
    """Microseconds of graph bookkeeping on a 4-element tensor, as (one op and its own backward() call,
    per op of a `chain`-op graph with one backward(), bare numpy, PyTorch per op of the same chain or None)."""
    x = Tensor(np.ones(4), requires_grad=True)
    g = np.ones(4)

    def single():
        for _ in range(n):
            (x * 2.0).backward(g)

    def chained(x=x, g=g):
        y = x
        for _ in range(chain):
            y = y * 1.0
        y.backward(g)

    def bare():
        a = x.data
        for _ in range(n):
            a * 2.0
            g * 2.0
    ours = interleaved_medians([chained], 5)[0]
    try:
        import torch
        x_t = torch.ones(4, dtype=torch.float64, requires_grad=True)
        ours, theirs = interleaved_medians([chained, lambda: chained(x_t, torch.ones(4, dtype=torch.float64))], 5)
        theirs = theirs / chain * 1e6
    except ImportError:
        theirs = None
    return median_seconds(single, 3) / n * 1e6, ours / chain * 1e6, median_seconds(bare, 3) / n * 1e6, theirs


def chain_backward_us_per_op(lengths=(1_000, 10_000, 100_000)):
    """[(n, us per op of backward() through a chain of n multiplications)]: flat if the walk is linear."""
    rows = []
    for n in lengths:
        x = Tensor(np.ones(1), requires_grad=True)
        y = x
        for _ in range(n):
            y = y * 1.0
        start = CLOCK()
        y.backward(np.ones(1))
        rows.append((n, (CLOCK() - start) / n * 1e6))
    return rows


def profiler_accuracy(runs: int = 9):
    """``profile()`` on the CIFAR-sized CNN (batch 32), as tests/test_profile.py checks it: the ops' share of the
    profiled wall time of forward+backward, one per run (each loss outlives its profile: freeing its graph is not in
    it), and (the profile's saved bytes, what tracemalloc sees the forward's graph keep)."""
    rng = np.random.default_rng(0)
    model = cifar_cnn(rng)
    x, y = rng.standard_normal((32, 32, 32, 3)).astype(np.float32), rng.integers(0, 10, 32)

    def step():
        loss = cross_entropy(model(Tensor(x)), y)
        loss.backward()
        model.zero_grad()
        return loss
    step()  # warm up
    shares = []
    for _ in range(runs):
        with profile() as prof:
            loss = step()
        shares.append(prof.op_time / prof.total)
        del loss
    gc.collect()
    tracemalloc.start()
    try:
        before, graph = tracemalloc.get_traced_memory()[0], []
        with profile() as prof:
            graph.append(cross_entropy(model(Tensor(x)), y))  # its loss alive while measured
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return shares, prof.saved_bytes, kept


def _load_average() -> list:
    """The 1, 5 and 15 minute load averages, as text ("?" where the system has none)."""
    try:
        return [f"{load:.1f}" for load in os.getloadavg()]
    except (AttributeError, OSError):
        return ["?"]


def print_table(header, rows):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))
    print()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="W1 and W2 and the digits CNN only, fewer runs")
    parser.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    parser.add_argument("--work", nargs="+", choices=list(WORKLOADS), default=None,
                        help="workloads to time (default: all; W1 and W2 with --quick)")
    parser.add_argument("--runs", type=int, default=None, help="runs per case (fastest and median run reported)")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per run (its median is the run's)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads on both sides: torch.set_num_threads(n) and tinygrad_cnn.set_num_threads(n) "
                             "(default: PyTorch's own count, one per core, on both)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: time the calling thread's CPU time, which other jobs on a busy machine do not "
                             "inflate; needs --threads 1 (all the work then runs on the calling thread)")
    parser.add_argument("--profile", action="store_true",
                        help="only the profiler's figures: on the CIFAR-sized CNN, the ops' share of the profiled "
                             "wall time and the saved bytes against tracemalloc")
    args = parser.parse_args(argv)
    if args.clock == "cpu" and args.threads != 1:
        parser.error("--clock cpu needs --threads 1: with more threads the work runs on threads it does not see")
    global CLOCK
    CLOCK = time.thread_time if args.clock == "cpu" else time.perf_counter
    runs = args.runs or (2 if args.quick else 5)
    repeats = args.repeats or (3 if args.quick else 7)
    dtypes = [np.float32, np.float64] if args.dtype == "both" else [np.dtype(args.dtype).type]
    names = args.work or (["W1", "W2"] if args.quick else list(WORKLOADS))
    threads = args.threads
    try:
        import torch
        threads = threads or torch.get_num_threads()
        torch.set_num_threads(threads)
        print(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    except ImportError:
        threads = threads or os.cpu_count() or 1  # PyTorch's default: one per core
        print("torch not importable: no PyTorch comparison")
    set_num_threads(threads)
    print(f"numpy {np.__version__}, tinygrad_cnn on {get_num_threads()} threads (BLAS's and the copies'); "
          f"{runs} runs of {repeats} timed calls, each after an untimed call; {args.clock} clock, "
          f"times in ms; ours and PyTorch's in turn; load average {' '.join(_load_average())}")
    if args.profile:
        shares, saved, kept = profiler_accuracy()
        print(f"profile() on the CIFAR-size CNN m=32, forward+backward: the ops add up to "
              f"{statistics.median(shares):.1%} of the profiled wall time (median of {len(shares)} runs, "
              f"{min(shares):.1%} to {max(shares):.1%}); saved bytes {saved / 2**20:.2f} MB, tracemalloc sees the "
              f"forward's graph keep {kept / 2**20:.2f} MB ({saved / kept:.1%})")
        return
    gemm = {dtype: square_gemm_gflops(dtype) for dtype in dtypes}
    print("numpy's square 1024x1024 GEMM on this machine now: " + ", ".join(
        f"{np.dtype(dtype).name} {rate:.0f} GFLOP/s" for dtype, rate in gemm.items()) + "\n")

    print("fwd+bwd on fresh tensors with a scalar loss, op(x).sum().backward(): ours and torch = fastest run; "
          "ratio = ours/torch of the fastest runs and of the median runs (fwd, and backward(ones) on reused "
          "tensors, one run):")
    rows = [row for dtype in dtypes for name in names
            for row in bench_workload(name, WORKLOADS[name], dtype, runs, repeats, gemm[dtype])]
    print_table(["work", "op", "dtype", "fwd", "f+b(ones)", "/torch", "f+b sum", "torch", "fastest", "median",
                 "GFLOP/s", "of GEMM"], rows)
    print("one training step (fresh input, forward, cross-entropy, backward, Adam), same weights in PyTorch (NCHW):")
    steps = dict(list(TRAIN_STEPS.items())[:1]) if args.quick else TRAIN_STEPS
    print_table(["network", "dtype", "ours", "torch", "fastest", "median", "|loss diff| step 1"],
                train_step_rows(runs, repeats, steps))
    if not args.quick:
        print("where conv2d fwd + .sum().backward() spends its time (ms; each phase timed alone, medians):")
        split = {name: conv_phase_ms(WORKLOADS[name], dtypes[0], repeats) for name in names
                 if name in ("W2", "W3", "W4")}
        phases = [phase for phase, _ in next(iter(split.values()))] if split else []
        print_table(["phase", *(f"{name} {np.dtype(dtypes[0]).name}" for name in split)],
                    [(phase, *(f"{dict(rows)[phase]:.2f}" for rows in split.values())) for phase in phases])
    print("loop reference (reference.py) vs Tensor ops, fwd+bwd, float64:")
    print_table(["work", "op", "loop ms", "ours ms", "speed-up"], reference_speedups(repeats))
    print("peak memory of conv2d fwd+bwd (tracemalloc); working = peak less output, its grad and the input grad:")
    print_table(["work", "dtype", "input MB", "peak MB", "peak/input", "working/input"],
                [(name, np.dtype(d).name, *conv_peak_memory(WORKLOADS[name], d)) for d in dtypes for name in names
                 if name in ("W1", "W2", "W3", "W4")])
    single, chained, bare, torch_chained = graph_overhead_us(n=2_000) if args.quick else graph_overhead_us()
    theirs = "" if torch_chained is None else f", PyTorch {torch_chained:.1f} us ({chained / torch_chained:.2f}x)"
    print(f"graph overhead on 4 elements: per op in a 1000-op chain with one backward(): ours {chained:.1f} us"
          f"{theirs}; {single:.1f} us for one op and its own backward() (bare numpy arithmetic: {bare:.1f} us)")
    print("backward() through a chain of n ops (linear if the cost per op stays flat): " + ", ".join(
        f"n={n:,}: {us:.2f} us/op" for n, us in chain_backward_us_per_op((1_000, 10_000) if args.quick else
                                                                          (1_000, 10_000, 100_000))))


if __name__ == "__main__":
    main()
