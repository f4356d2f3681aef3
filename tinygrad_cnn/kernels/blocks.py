"""The batch in blocks, or in shares, on the calling thread or on several.

Each kernel walks its images a block at a time. The copy kernels (pad, pool) take blocks of about BLOCK_BYTES of
input, so their f_h * f_w strided passes over a block find it, and their output, in cache; conv2d takes blocks of
about a megabyte of im2col matrix (conv.BLOCK_BYTES), or of transformed tiles (conv_winograd.BLOCK_BYTES), so that
matrix never grows with the batch (its GEMMs run on BLAS's threads).

With set_num_threads(n >= 2) (threads.py sets num_threads here and BLAS's threads together), a kernel whose input
reaches its threshold (PARALLEL_BYTES here for pad; pool, conv, conv_winograd and conv_depthwise each measured
their own) splits the batch into n consecutive shares, one per thread: run_blocks walks each share's blocks,
run_shares hands each share to a function that keeps its own buffers (and may return a partial sum), with BLAS on one
thread while they run if the kernel asks (the canonical conv's blocks). numpy releases the GIL in its copies, ufuncs,
einsum and matmul, so the threads run at once. Below a threshold, handing work to the pool costs more than it gives.
Without set_num_threads (importing changes nothing) or with n = 1, all of it runs on the calling thread.

    images_per_block(bytes_per_image, block_bytes=BLOCK_BYTES)   how many images make a block (at least one)
    batch_blocks(m, per_block)                                   slices covering range(m), in order
    run_shares(fn, m, input_bytes, parallel_bytes, one_blas_thread)   [fn(s) for each share s], on one or more threads
    run_blocks(fn, m, bytes_per_image, parallel_bytes)           fn(s) for each block s, on one or more threads
    set_num_threads(n) / num_threads()                           the threads they may use (default: one)

May import: the standard library.
"""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor, wait

BLOCK_BYTES = 1 << 19
PARALLEL_BYTES = 8 << 20

_num_threads: int | None = None  # None: never set; the copies then run on one thread
_set_blas_threads = None  # threads.py's setter of BLAS's threads, given with set_num_threads
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()  # held to make, replace or hand work to _executor (threads share it)
_blas_lock = threading.Lock()  # held to count the calls that keep BLAS on one thread, and to set it
_one_blas_calls = 0
_share = threading.local()  # .running: this thread runs a share now (a run_shares inside it stays on it)


def images_per_block(bytes_per_image: int, block_bytes: int | None = None) -> int:
    """How many images of bytes_per_image fill block_bytes (default BLOCK_BYTES); at least one."""
    return max(1, (BLOCK_BYTES if block_bytes is None else block_bytes) // max(1, bytes_per_image))


def batch_blocks(m: int, per_block: int) -> list:
    """range(m) as consecutive slices of per_block images each; the last one may be shorter."""
    return [slice(a, min(a + per_block, m)) for a in range(0, m, per_block)]


def num_threads() -> int | None:
    """The threads set for run_blocks, or None when none was set (then it runs on the calling thread)."""
    return _num_threads


def set_num_threads(n: int, set_blas_threads=None) -> None:
    """Let run_blocks use up to n threads (n >= 1, checked by threads.set_num_threads); set_blas_threads(k) sets
    BLAS's threads, for run_shares(..., one_blas_thread=True)."""
    global _num_threads, _executor, _set_blas_threads
    _set_blas_threads = set_blas_threads
    with _executor_lock:
        if _executor is not None and n != _num_threads:
            _executor.shutdown(wait=False)  # the work handed to it still runs; nothing new can be (the lock)
            _executor = None
        _num_threads = n


def _walk(fn, blocks) -> None:
    for s in blocks:
        fn(s)


def threads_for(input_bytes: int, parallel_bytes: int | None, parts: int) -> int:
    """The threads a call on input_bytes may take: num_threads() (at most parts) once input_bytes reaches
    parallel_bytes (None: PARALLEL_BYTES), else one."""
    if input_bytes < (PARALLEL_BYTES if parallel_bytes is None else parallel_bytes):
        return 1
    return max(1, min(_num_threads or 1, parts))


def split(m: int, n: int) -> list:
    """range(m) as n consecutive slices of nearly equal length (n <= m)."""
    return [slice(k * m // n, (k + 1) * m // n) for k in range(n)]


def run_shares(fn, m: int, input_bytes: int, parallel_bytes: int | None = None, one_blas_thread=False) -> list:
    """[fn(s) for s in shares of range(m)], one consecutive share per thread (threads_for), in order; fn must write
    only its own share. The calling thread takes the first share; a share's error is raised once every share ended.
    one_blas_thread: when the shares go to threads, BLAS runs on one thread inside each until they end. Called inside
    a share (a conv's block padding its input), it runs on that share's thread."""
    nested = getattr(_share, "running", False)  # the pool's threads are busy with this call's caller's shares
    shares = split(m, 1 if nested else threads_for(input_bytes, parallel_bytes, m))
    if len(shares) < 2:
        return [fn(s) for s in shares]
    if not one_blas_thread or _set_blas_threads is None:
        return _on_threads(fn, shares)
    _one_blas_thread(+1)
    try:
        return _on_threads(fn, shares)
    finally:
        _one_blas_thread(-1)


def _one_blas_thread(step: int) -> None:
    """Count a call that needs BLAS on one thread in (+1) or out (-1): BLAS goes to one thread with the first and
    back to the setting (not to what a call found) when the last of the calls overlapping from several threads ends."""
    global _one_blas_calls
    with _blas_lock:
        if step > 0 and _one_blas_calls == 0:
            _set_blas_threads(1)  # before counting: if it raises, the call never counted
        _one_blas_calls += step
        if _one_blas_calls == 0:
            _set_blas_threads(_num_threads)


def _on_threads(fn, shares: list) -> list:
    """[fn(s) for s in shares], the first on the calling thread, the others on the pool's threads."""
    global _executor
    with _executor_lock:
        if _executor is None:  # sized for the setting, not for this call's shares
            _executor = ThreadPoolExecutor(max_workers=max(len(shares), _num_threads or 1) - 1,
                                           thread_name_prefix="tinygrad_cnn")
        # each in a copy of the caller's context: numpy's error state (np.errstate, anomaly mode's) is one
        futures = [_executor.submit(contextvars.copy_context().run, _run_share, fn, s) for s in shares[1:]]
    try:
        first = _run_share(fn, shares[0])
    finally:
        wait(futures)  # never return (or raise) while a share still writes into shared output
    return [first] + [future.result() for future in futures]  # result() re-raises a share's error


def _run_share(fn, share):
    """fn(share), marked as running a share on this thread: a run_shares inside it then stays on this thread, as
    waiting on the pool, whose threads run the other shares, would never end."""
    _share.running = True
    try:
        return fn(share)
    finally:
        _share.running = False


def run_blocks(fn, m: int, bytes_per_image: int, parallel_bytes: int | None = None) -> None:
    """fn(s) for the blocks s of range(m) (about BLOCK_BYTES of input each); fn must write only its own slice.

    On the calling thread, or, with num_threads() >= 2 and at least parallel_bytes of input, on that many threads,
    each walking a consecutive share of the blocks (run_shares).
    """
    blocks = batch_blocks(m, images_per_block(bytes_per_image))
    run_shares(lambda share: _walk(fn, blocks[share]), len(blocks), m * bytes_per_image, parallel_bytes)
