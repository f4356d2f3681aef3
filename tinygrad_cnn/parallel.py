"""A small, explicit parallel layer: split the batch axis into chunks and run them on a thread pool.

numpy releases the GIL in its copies, ufuncs and BLAS calls, so the standard library's threads can run
the per-offset strided copies of the pool and padding kernels on every core. BLAS already threads its
own large GEMMs; while chunks run, BLAS is limited to one thread each (through threadpoolctl, when
the chunk function asks for it) so the two kinds of threads do not fight for the same cores.

    set_num_threads(n) / get_num_threads()   n >= 1; 1 runs every kernel on the calling thread
    run_in_chunks(fn, m, work)               fn(batch_slice) for slices of range(m), on up to n threads

The default number of threads: the environment variable TINYGRAD_CNN_NUM_THREADS, else OMP_NUM_THREADS
(the one people set to limit threads), else the cores this process may run on.
"""

from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

ENV_VARS = ("TINYGRAD_CNN_NUM_THREADS", "OMP_NUM_THREADS")

# The kernels walk the batch in blocks of about BLOCK_BYTES of input, so that the f_h * f_w strided passes
# over a block find it (and their output) in cache: max pool forward on (32, 32, 32, 64) float32 measured
# 1.09 ms whole, 0.82 ms in blocks of 2 images (0.59 ms on two threads).
BLOCK_BYTES = 1 << 19
# Below this many bytes of input a kernel runs on the calling thread alone: handing work to a pool costs
# tens of microseconds, more than it gives on small inputs (W1-sized pools take ~30 us in all).
MIN_PARALLEL_BYTES = 1 << 20

_num_threads: int | None = None  # None: not read from the environment yet
_executor: ThreadPoolExecutor | None = None
_inside_chunk = threading.local()  # a chunk that calls run_in_chunks runs its chunks in place (no deadlock)


def cores_available() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it, else os.cpu_count())."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def _threads_from_env() -> int:
    """The first of ENV_VARS that is set (OpenMP-style "4" or "4,2": the first number), else the cores."""
    for name in ENV_VARS:
        value = os.environ.get(name, "").strip()
        if not value:
            continue
        first = value.split(",")[0].strip()
        if not first.isdigit() or int(first) < 1:
            raise ValueError(f"{name}={value!r}: the number of threads must be a positive integer, e.g. {name}=2")
        return int(first)
    return cores_available()


def get_num_threads() -> int:
    """Threads the kernels may use (see set_num_threads)."""
    global _num_threads
    if _num_threads is None:
        _num_threads = _threads_from_env()
    return _num_threads


def set_num_threads(n: int) -> None:
    """Let the kernels use up to n threads (n >= 1; 1: everything on the calling thread).

    Overrides TINYGRAD_CNN_NUM_THREADS / OMP_NUM_THREADS for this process.
    """
    global _num_threads, _executor
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"set_num_threads: n must be an int >= 1, got {n!r}")
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    if _executor is not None and n != _num_threads:
        _executor.shutdown(wait=True)
        _executor = None
    _num_threads = n


def batch_chunks(m: int, n_chunks: int) -> list:
    """range(m) as n_chunks slices of near-equal size (the first ones one longer), none empty."""
    n_chunks = max(1, min(n_chunks, m))
    size, extra = divmod(m, n_chunks)
    bounds = [0]
    for k in range(n_chunks):
        bounds.append(bounds[-1] + size + (k < extra))
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _in_blocks(fn, images: slice, per_block: int) -> None:
    """fn(s) for consecutive slices s of `images`, per_block images each (the last may be shorter)."""
    for a in range(images.start, images.stop, per_block):
        fn(slice(a, min(a + per_block, images.stop)))


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=max(1, get_num_threads() - 1), thread_name_prefix="tinygrad_cnn")
    return _executor


@contextlib.contextmanager
def _one_blas_thread():
    """BLAS at one thread while the block runs (threadpoolctl); restores it after."""
    from threadpoolctl import ThreadpoolController

    global _blas
    if _blas is None:
        _blas = ThreadpoolController()
    with _blas.limit(limits=1, user_api="blas"):
        yield


_blas = None


def _run_marked(fn, *args):
    _inside_chunk.active = True
    try:
        return fn(*args)
    finally:
        _inside_chunk.active = False


def run_in_chunks(fn, m: int, bytes_per_image: int, min_parallel_bytes: int | None = None,
                  limit_blas: bool = False, block_bytes: int | None = None) -> None:
    """Call fn(s) for slices s covering range(m) (the batch axis), on up to get_num_threads() threads.

    fn(batch_slice) must write only its own slice of any shared output. The batch goes in blocks of about
    BLOCK_BYTES of input (bytes_per_image each); with several threads, each takes a contiguous share of
    the batch and walks it block by block, the calling thread the first share. One thread, one image,
    less than min_parallel_bytes (default MIN_PARALLEL_BYTES) in all, or a call from inside a chunk: all
    blocks run on the calling thread.
    limit_blas: BLAS at one thread while the chunks run (for chunk functions that call matmul).
    block_bytes: the block size in bytes (default BLOCK_BYTES).
    """
    per_block = max(1, (BLOCK_BYTES if block_bytes is None else block_bytes) // max(1, bytes_per_image))
    threads = get_num_threads()
    least = MIN_PARALLEL_BYTES if min_parallel_bytes is None else min_parallel_bytes
    if threads == 1 or m < 2 or m * bytes_per_image < least or getattr(_inside_chunk, "active", False):
        _in_blocks(fn, slice(0, m), per_block)
        return
    shares = batch_chunks(m, threads)
    with _one_blas_thread() if limit_blas else contextlib.nullcontext():
        futures = [_pool().submit(_run_marked, _in_blocks, fn, share, per_block) for share in shares[1:]]
        try:
            _run_marked(_in_blocks, fn, shares[0], per_block)
        finally:
            wait(futures)  # never return (or raise) while a chunk still writes into shared output
        for f in futures:
            f.result()  # re-raise a chunk's error
