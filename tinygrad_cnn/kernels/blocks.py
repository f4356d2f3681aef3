"""The batch in blocks, on the calling thread or, for the large copies, on several.

Each kernel walks its images a block at a time. The copy kernels (pad, pool) take blocks of about BLOCK_BYTES of
input, so their f_h * f_w strided passes over a block find it, and their output, in cache; conv2d takes blocks of
about a megabyte of im2col matrix (conv.BLOCK_BYTES), or of transformed tiles (conv_winograd.BLOCK_BYTES), so that
matrix never grows with the batch, and runs them on the calling thread (its GEMMs run on BLAS's threads).

With set_num_threads(n >= 2) (threads.py sets num_threads here and BLAS's threads together), the copy kernels run
their blocks on n threads once their input reaches PARALLEL_BYTES: each thread takes a contiguous share of the
blocks. numpy releases the GIL in its copies and ufuncs, so the threads run at once. Below that size, handing work
to the pool costs more than it gives.

    images_per_block(bytes_per_image, block_bytes=BLOCK_BYTES)   how many images make a block (at least one)
    batch_blocks(m, per_block)                                   slices covering range(m), in order
    run_blocks(fn, m, bytes_per_image)                           fn(s) for each block s, on one or more threads
    set_num_threads(n) / num_threads()                           the threads run_blocks may use (default: one)

May import: the standard library.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor, wait

BLOCK_BYTES = 1 << 19
PARALLEL_BYTES = 8 << 20

_num_threads: int | None = None  # None: never set; the copies then run on one thread
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()  # held to make, replace or hand work to _executor (threads share it)


def images_per_block(bytes_per_image: int, block_bytes: int | None = None) -> int:
    """How many images of bytes_per_image fill block_bytes (default BLOCK_BYTES); at least one."""
    return max(1, (BLOCK_BYTES if block_bytes is None else block_bytes) // max(1, bytes_per_image))


def batch_blocks(m: int, per_block: int) -> list:
    """range(m) as consecutive slices of per_block images each; the last one may be shorter."""
    return [slice(a, min(a + per_block, m)) for a in range(0, m, per_block)]


def num_threads() -> int | None:
    """The threads set for run_blocks, or None when none was set (then it runs on the calling thread)."""
    return _num_threads


def set_num_threads(n: int) -> None:
    """Let run_blocks use up to n threads (n >= 1, checked by threads.set_num_threads)."""
    global _num_threads, _executor
    with _executor_lock:
        if _executor is not None and n != _num_threads:
            _executor.shutdown(wait=False)  # the work handed to it still runs; nothing new can be (the lock)
            _executor = None
        _num_threads = n


def _walk(fn, blocks) -> None:
    for s in blocks:
        fn(s)


def run_blocks(fn, m: int, bytes_per_image: int) -> None:
    """fn(s) for the blocks s of range(m) (about BLOCK_BYTES of input each); fn must write only its own slice.

    On the calling thread, or, with num_threads() >= 2 and at least PARALLEL_BYTES of input, on that many threads,
    the calling thread taking the first share. A block's error is raised once every block has ended.
    """
    global _executor
    blocks = batch_blocks(m, images_per_block(bytes_per_image))
    n = min(_num_threads or 1, len(blocks))
    if n < 2 or m * bytes_per_image < PARALLEL_BYTES:
        _walk(fn, blocks)
        return
    shares = [blocks[k * len(blocks) // n:(k + 1) * len(blocks) // n] for k in range(n)]
    with _executor_lock:
        if _executor is None:  # sized for the setting, not for this call's blocks
            workers = max(n, _num_threads or 1) - 1
            _executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tinygrad_cnn")
        futures = [_executor.submit(_walk, fn, share) for share in shares[1:]]
    try:
        _walk(fn, shares[0])
    finally:
        wait(futures)  # never return (or raise) while a block still writes into shared output
    for future in futures:
        future.result()  # re-raise a block's error
