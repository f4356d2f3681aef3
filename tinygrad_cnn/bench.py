"""Benchmark of the CNN ops through the Tensor API: `python -m tinygrad_cnn.bench [--quick] [--dtype float32]`.

Prints, per workload, the median time of forward and forward+backward of conv2d, max_pool2d and avg_pool2d,
GFLOP/s for conv, and the ratio to PyTorch CPU on the same data when torch can be imported (it is never a
dependency). Then: speed-up over the loop reference (reference.py), peak extra memory of conv forward+backward,
and the per-op overhead of recording a graph. Figures are measured, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import time
import tracemalloc

import numpy as np

from . import reference
from .functional import avg_pool2d, conv2d, max_pool2d
from .tensor import Tensor

# name: (x shape, W shape, conv stride, conv pad, pool f, pool stride); pools run on the conv output's shape
WORKLOADS = {
    "W1": ((2, 5, 7, 4), (3, 3, 4, 8), 2, 1, 3, 2),
    "W2": ((64, 28, 28, 8), (3, 3, 8, 16), 1, 1, 2, 2),
    "W3": ((32, 32, 32, 32), (3, 3, 32, 64), 1, 1, 2, 2),
    "W4": ((16, 64, 64, 3), (5, 5, 3, 32), 2, 2, 2, 2),
}


def median_seconds(fn, repeats: int) -> float:
    """Median wall time of fn() over `repeats` runs, after one warm-up run."""
    return interleaved_medians([fn], repeats)[0]


def interleaved_medians(fns, repeats: int) -> list:
    """Median wall time of each fn, timed in turn (fn0, fn1, ..., fn0, fn1, ...), so that a slow spell of
    a shared machine hits all of them alike. Each timed call follows an untimed call of the same fn: BLAS
    and OpenMP workers of the previous fn spin for a while after it returns, and on 2 cores that would
    slow the first call after it (a pause instead lets caches and thread pools go cold)."""
    times = [[] for _ in fns]
    for _ in range(repeats):
        for fn, spent in zip(fns, times, strict=True):
            fn()
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return [statistics.median(spent) for spent in times]


def conv_flops(x_shape, W_shape, out_shape) -> int:
    """Multiply-adds of one conv forward, times 2."""
    f_h, f_w, C, _ = W_shape
    return 2 * int(np.prod(out_shape)) * f_h * f_w * C


def _fwd_bwd(op):
    """fn() that runs op() and backpropagates ones through its output."""
    def run():
        out = op()
        out.backward(np.ones(out.shape, dtype=out.dtype))
    return run


def our_cases(data, spec):
    """{op name: (forward fn, forward+backward fn)} on Tensors made from `data`."""
    _, _, stride, pad, f, pool_stride = spec
    x, W, b, pooled = (Tensor(a, requires_grad=True) for a in data)
    ops = {
        "conv2d": lambda: conv2d(x, W, b, stride=stride, pad=pad),
        "max_pool2d": lambda: max_pool2d(pooled, f, pool_stride),
        "avg_pool2d": lambda: avg_pool2d(pooled, f, pool_stride),
    }
    return {name: (op, _fwd_bwd(op)) for name, op in ops.items()}


def torch_cases(data, spec):
    """The same ops in PyTorch CPU, on the same data transposed to NCHW (outside the timing); {} without torch."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return {}
    _, _, stride, pad, f, pool_stride = spec
    x, W, b, pooled = data
    x, pooled = (torch.tensor(a.transpose(0, 3, 1, 2).copy(), requires_grad=True) for a in (x, pooled))
    W = torch.tensor(W.transpose(3, 2, 0, 1).copy(), requires_grad=True)
    b = torch.tensor(b, requires_grad=True)
    ops = {
        "conv2d": lambda: F.conv2d(x, W, b, stride=stride, padding=pad),
        "max_pool2d": lambda: F.max_pool2d(pooled, f, pool_stride),
        "avg_pool2d": lambda: F.avg_pool2d(pooled, f, pool_stride),
    }

    def fwd_bwd(op):
        def run():
            out = op()
            out.backward(torch.ones_like(out))
        return run
    return {name: (op, fwd_bwd(op)) for name, op in ops.items()}


def make_data(spec, dtype, seed=0):
    """Random (x, W, b, pool input) for a workload, in `dtype`."""
    x_shape, W_shape, stride, pad, _, _ = spec
    rng = np.random.default_rng(seed)
    n_H = (x_shape[1] - W_shape[0] + 2 * pad) // stride + 1
    n_W = (x_shape[2] - W_shape[1] + 2 * pad) // stride + 1
    shapes = [x_shape, W_shape, (W_shape[3],), (x_shape[0], n_H, n_W, W_shape[3])]
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def bench_workload(name, spec, dtype, repeats):
    """Rows (workload, op, dtype, fwd ms, fwd+bwd ms, GFLOP/s fwd+bwd, torch fwd+bwd ms, ratio)."""
    data = make_data(spec, dtype)
    ours, theirs = our_cases(data, spec), torch_cases(data, spec)
    rows = []
    for op, (fwd, fwd_bwd) in ours.items():
        t_fwd, t_both, *t_torch = interleaved_medians([fwd, fwd_bwd, *theirs.get(op, ())[1:]], repeats)
        t_torch = t_torch[0] if t_torch else None
        gflops = ""
        if op == "conv2d":
            gflops = f"{3 * conv_flops(spec[0], spec[1], fwd().shape) / t_both / 1e9:.1f}"
        rows.append((name, op, np.dtype(dtype).name, f"{t_fwd * 1e3:.2f}", f"{t_both * 1e3:.2f}", gflops,
                     "" if t_torch is None else f"{t_torch * 1e3:.2f}",
                     "" if t_torch is None else f"{t_both / t_torch:.2f}x"))
    return rows


def loop_cases(data, spec):
    """{op name: forward+backward fn} of the loop reference (reference.py) on the same data."""
    x, W, b, pooled = data
    _, _, s, p, f, ps = spec
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
    cut_w2 = ((2, 28, 28, 8), (3, 3, 8, 16), 1, 1, 2, 2)
    rows = []
    for name, spec in [("W1", WORKLOADS["W1"]), ("W2 (m=2)", cut_w2)]:
        data = make_data(spec, np.float64)
        ours = our_cases(data, spec)
        for op, loop in loop_cases(data, spec).items():
            t_loop, t_ours = median_seconds(loop, max(1, repeats // 5)), median_seconds(ours[op][1], repeats)
            rows.append((name, op, f"{t_loop * 1e3:.1f}", f"{t_ours * 1e3:.3f}", f"{t_loop / t_ours:.0f}x"))
    return rows


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
    """Microseconds of graph bookkeeping on a 4-element tensor, as
    (one op and its own backward() call, per op of a `chain`-op graph with one backward(), bare numpy)."""
    x = Tensor(np.ones(4), requires_grad=True)
    g = np.ones(4)

    def single():
        for _ in range(n):
            (x * 2.0).backward(g)

    def chained():
        y = x
        for _ in range(chain):
            y = y * 1.0
        y.backward(g)

    def bare():
        a = x.data
        for _ in range(n):
            a * 2.0
            g * 2.0
    return (median_seconds(single, 3) / n * 1e6, median_seconds(chained, 5) / chain * 1e6,
            median_seconds(bare, 3) / n * 1e6)


def chain_backward_us_per_op(lengths=(1_000, 10_000, 100_000)):
    """[(n, us per op of backward() through a chain of n multiplications)]: flat if the walk is linear."""
    rows = []
    for n in lengths:
        x = Tensor(np.ones(1), requires_grad=True)
        y = x
        for _ in range(n):
            y = y * 1.0
        start = time.perf_counter()
        y.backward(np.ones(1))
        rows.append((n, (time.perf_counter() - start) / n * 1e6))
    return rows


def print_table(header, rows):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=True)]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))
    print()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="W1 and W2 only, fewer repeats")
    parser.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs per case (median reported)")
    args = parser.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    dtypes = [np.float32, np.float64] if args.dtype == "both" else [np.dtype(args.dtype).type]
    names = ["W1", "W2"] if args.quick else list(WORKLOADS)
    try:
        import torch
        print(f"torch {torch.__version__} ({torch.get_num_threads()} threads)")
    except ImportError:
        print("torch not importable: no PyTorch comparison")
    print(f"numpy {np.__version__}; median of {repeats} runs; times in ms\n")

    rows = [row for dtype in dtypes for name in names for row in bench_workload(name, WORKLOADS[name], dtype, repeats)]
    print_table(["work", "op", "dtype", "fwd", "fwd+bwd", "GFLOP/s", "torch f+b", "ours/torch"], rows)
    print("loop reference (reference.py) vs Tensor ops, fwd+bwd, float64:")
    print_table(["work", "op", "loop ms", "ours ms", "speed-up"], reference_speedups(repeats))
    print("peak memory of conv2d fwd+bwd (tracemalloc); working = peak less output, its grad and the input grad:")
    print_table(["work", "dtype", "input MB", "peak MB", "peak/input", "working/input"],
                [(name, np.dtype(d).name, *conv_peak_memory(WORKLOADS[name], d)) for d in dtypes for name in names])
    single, chained, bare = graph_overhead_us()
    print(f"graph overhead on 4 elements: {single:.1f} us for one op and its own backward(); "
          f"{chained:.1f} us per op in a 1000-op chain with one backward() (bare numpy arithmetic: {bare:.1f} us)")
    print("backward() through a chain of n ops (linear if the cost per op stays flat): " + ", ".join(
        f"n={n:,}: {us:.2f} us/op" for n, us in chain_backward_us_per_op()))


if __name__ == "__main__":
    main()
