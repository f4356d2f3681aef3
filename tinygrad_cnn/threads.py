"""How many threads the library's work runs on: set_num_threads(n) / get_num_threads().

Two kinds of work can use several cores, and one setting sets both:
  * BLAS, under numpy's matmul: the GEMMs of conv2d, conv_transpose2d and Linear. set_num_threads(n) sets the
    threads of every BLAS library loaded in this process, through threadpoolctl (as
    `threadpoolctl.threadpool_limits(n, user_api="blas")`: it stays set). Like torch.set_num_threads it is
    process-wide: your own numpy code in the same process runs on the same BLAS threads.
  * The kernels numpy runs on one core: pooling (forward and backward), the Winograd conv and the depthwise conv
    (forward, dx, dW) and padding split the batch into n shares, one per thread (kernels/blocks.run_shares), once
    their input reaches the threshold each measured (its PARALLEL_BYTES); smaller inputs stay on the calling thread.
    The canonical conv2d (im2col and one GEMM per block) splits its blocks likewise, with BLAS on one thread while
    the shares run (process-wide: a GEMM of yours on another thread meanwhile gets one thread too).
get_num_threads() is that n.

The default: with TINYGRAD_CNN_NUM_THREADS set, importing tinygrad_cnn calls set_num_threads with it
(apply_default). Without it, importing the library changes nothing in the process: BLAS keeps the threads it chose
itself (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS, else one per core) and get_num_threads() reports
them, while the kernels above run on one thread. On a machine other jobs keep busy, BLAS's threads wait for taken cores
and a training step runs many times slower than on one thread: there, set TINYGRAD_CNN_NUM_THREADS=1 (or call
set_num_threads(1)); on an idle machine two threads speed up large convs and pools (the figures: README.md,
"Speed").

May import: the standard library, threadpoolctl (a dependency) and kernels/blocks.
"""

from __future__ import annotations

import os
import threading

from .kernels import blocks

ENV_VAR = "TINYGRAD_CNN_NUM_THREADS"
BLAS_ENV_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")  # BLAS reads these itself
_blas_lock = threading.Lock()  # held while setting BLAS's threads (_limit_blas)


def _blas_libraries() -> list:
    """threadpoolctl's description of each BLAS library loaded in this process (numpy's first)."""
    from threadpoolctl import threadpool_info

    return [lib for lib in threadpool_info() if lib["user_api"] == "blas"]


def blas_num_threads() -> int:
    """The threads BLAS runs its GEMMs on now (the most among the BLAS libraries loaded; 1 when none is seen)."""
    return max((lib["num_threads"] for lib in _blas_libraries()), default=1)


def get_num_threads() -> int:
    """The threads the library's work may use: the number set_num_threads set (BLAS's and the kernels'), or, before
    any was set, the threads BLAS chose itself."""
    n = blocks.num_threads()
    return blas_num_threads() if n is None else n


def set_num_threads(n: int) -> None:
    """Run BLAS (the GEMMs of conv2d and Linear) and, on large enough inputs, the pools, the Winograd and depthwise
    convs and padding on n threads (n >= 1) in this process, until set again. Overrides the default
    (TINYGRAD_CNN_NUM_THREADS, else BLAS's own choice)."""
    if not isinstance(n, int) or isinstance(n, bool):
        raise TypeError(f"set_num_threads: n must be an int >= 1, got {n!r}")
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    from threadpoolctl import ThreadpoolController

    controller = ThreadpoolController()  # found once here: its limit() then costs microseconds
    _limit_blas(controller, n)
    blocks.set_num_threads(n, lambda k: _limit_blas(controller, k))


def _limit_blas(controller, n: int) -> None:
    """BLAS on n threads in the whole process, whichever Python thread asks: threadpoolctl lets only the first
    thread that set OpenBLAS's threads (pthreads build: one pool per process) set them again, and does nothing,
    silently, for the others; this setting is process-wide (as torch.set_num_threads), so the caller takes control."""
    import threadpoolctl

    openblas = getattr(threadpoolctl, "OpenBLASController", None)
    if not hasattr(openblas, "clear_controlling_thread"):  # a threadpoolctl without controlling threads
        controller.limit(limits=n, user_api="blas")
        return
    with _blas_lock:  # no other thread of ours takes control meanwhile
        openblas.clear_controlling_thread(force=True)
        try:
            controller.limit(limits=n, user_api="blas")
        finally:  # and none keeps it: a `with threadpool_limits(...)` of the user's in any thread works as before
            openblas.clear_controlling_thread()


def threads_from_env() -> int | None:
    """TINYGRAD_CNN_NUM_THREADS as a number of threads (OpenMP-style "4" or "4,2": the first number), None if unset."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value:
        return None
    first = value.split(",")[0].strip()
    if not first.isdigit() or int(first) < 1:
        raise ValueError(f"{ENV_VAR}={value!r}: the number of threads must be a positive integer, e.g. {ENV_VAR}=1")
    return int(first)


def apply_default() -> None:
    """set_num_threads(TINYGRAD_CNN_NUM_THREADS) when it is set; else nothing (BLAS keeps its own choice). Called
    when tinygrad_cnn is imported."""
    n = threads_from_env()
    if n is not None:
        set_num_threads(n)
