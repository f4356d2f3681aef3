"""The kernels that split the batch over threads: with set_num_threads(2), from each kernel's own PARALLEL_BYTES of
input, the pools (forward and backward), the Winograd conv (forward, dx, dW), the depthwise conv (forward, dx, dW) and
the canonical conv's blocks (forward, dx, dW, db; BLAS on one thread inside) run a share of the batch on each of two
threads, and give what the one-thread path gives. With one thread, or with no setting at all (the import's default),
they stay on the calling thread."""

import threading

import numpy as np
import pytest

from tinygrad_cnn import threads
from tinygrad_cnn.kernels import blocks, conv, conv_depthwise, conv_winograd, pool

PADS = ((1, 1), (1, 1))


@pytest.fixture
def thread_setting():
    """set_num_threads for the test; the setting before it (BLAS's and the blocks') restored after."""
    before, blocks_before = threads.get_num_threads(), blocks.num_threads()
    yield threads.set_num_threads
    threads.set_num_threads(before)
    blocks._num_threads = blocks_before  # None again if nothing had set it


def _batch(module, image_shape, dtype=np.float64, seed=0) -> np.ndarray:
    """A random batch just big enough for module's threaded path: at least module.PARALLEL_BYTES and two of the
    pools' blocks (blocks.BLOCK_BYTES)."""
    per_image = int(np.prod(image_shape)) * np.dtype(dtype).itemsize
    m = -(-max(module.PARALLEL_BYTES, 2 * blocks.BLOCK_BYTES) // per_image)
    return np.random.default_rng(seed).standard_normal((m, *image_shape)).astype(dtype)


def _pools(x):
    """The pool kernels' outputs: max and avg forward and backward."""
    out, saved = pool.max_pool_forward(x, (2, 2), (2, 2))
    avg, avg_saved = pool.avg_pool_forward(x, (3, 3), (1, 1))
    dout, davg = np.cos(out), np.sin(avg)
    return out, pool.max_pool_backward(dout, saved), avg, pool.avg_pool_backward(davg, avg_saved)


def _winograd(x, n_C=32):
    """The Winograd conv's outputs through conv2d: forward (with a bias), dx (the flipped conv, Winograd again), dW
    and db (in shares too: a BLAS call on two threads would leave them spinning)."""
    W = np.random.default_rng(1).standard_normal((3, 3, x.shape[3], n_C)).astype(x.dtype)
    b = np.arange(n_C, dtype=x.dtype)
    out, saved = conv.conv2d_forward(x, W, b, (1, 1), PADS)
    assert saved.path.forward is conv_winograd.winograd_forward
    return (out, *conv.conv2d_backward(np.cos(out), saved))


def _depthwise(x):
    """The depthwise conv's outputs through conv2d: forward (with a bias), dx (its forward again), dW and db."""
    C = x.shape[3]
    W = np.random.default_rng(2).standard_normal((3, 3, 1, C)).astype(x.dtype)
    b = np.arange(C, dtype=x.dtype)
    out, saved = conv.conv2d_forward(x, W, b, (1, 1), PADS, groups=C)
    assert saved.path.forward is conv_depthwise.depthwise_forward
    return (out, *conv.conv2d_backward(np.cos(out), saved))


def _canonical(x):
    """The canonical conv's outputs through conv2d, stride 1 (dx: the flipped conv, the forward's blocks again) and
    stride 2 (dx: col2im): forward with a bias, dx, dW and db of each."""
    W = np.random.default_rng(3).standard_normal((3, 3, x.shape[3], 16)).astype(x.dtype)
    b = np.arange(16, dtype=x.dtype)
    outputs = []
    for stride in ((1, 1), (2, 2)):
        out, saved = conv.conv2d_forward(x, W, b, stride, PADS)
        assert saved.path.forward is conv.conv_forward and saved.path.block < x.shape[0]
        outputs += [out, *conv.conv2d_backward(np.cos(out), saved)]
    return outputs


# kernel: (module with its PARALLEL_BYTES, image shape, the outputs, [(module, name)] of the functions each share runs)
KERNELS = {
    "pools": (pool, (12, 10, 8), _pools, [(blocks, "_walk")]),
    "winograd": (conv_winograd, (8, 8, 32), _winograd,
                 [(conv_winograd, "_forward_share"), (conv_winograd, "_dU_share"), (conv, "conv_db")]),
    "depthwise": (conv_depthwise, (8, 8, 16), _depthwise,
                  [(conv_depthwise, "_forward_share"), (conv_depthwise, "_dW_share"), (conv, "conv_db")]),
    "canonical": (conv, (12, 10, 8), _canonical,
                  [(conv, "conv_forward"), (conv, "conv_dW"), (conv, "conv_dA_prev"), (conv, "conv_db")]),
}


def _spy_threads(monkeypatch, targets) -> dict:
    """{function name: the names of the threads it ran on} for the share functions in targets, filled as they run."""
    seen = {name: set() for _, name in targets}
    for module, name in targets:
        real = getattr(module, name)

        def spy(*args, real=real, name=name):
            seen[name].add(threading.current_thread().name)
            return real(*args)
        monkeypatch.setattr(module, name, spy)
    return seen


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_two_threads_give_the_one_thread_results(thread_setting, kernel, dtype):
    module, image_shape, outputs, _ = KERNELS[kernel]
    x = _batch(module, image_shape, dtype)
    thread_setting(1)
    one = outputs(x)
    thread_setting(2)
    two = outputs(x)
    rounding = 1e-12 if dtype == np.float64 else 1e-5
    for a, b in zip(one, two, strict=True):
        assert a.dtype == b.dtype == dtype and a.shape == b.shape
        # within rounding of the largest entry: dW's shares add their sums in another order
        np.testing.assert_allclose(b, a, rtol=0, atol=rounding * np.abs(a).max())
    if kernel == "pools":  # each output entry computed alike on either thread: bit for bit
        for a, b in zip(one, two, strict=True):
            np.testing.assert_array_equal(b, a)


@pytest.mark.parametrize("kernel", KERNELS)
def test_set_num_threads_2_runs_each_share_function_on_two_threads(thread_setting, monkeypatch, kernel):
    module, image_shape, outputs, targets = KERNELS[kernel]
    x = _batch(module, image_shape)
    seen = _spy_threads(monkeypatch, targets)
    thread_setting(2)
    outputs(x)
    for name, names in seen.items():
        assert len(names) == 2, f"{kernel}: {name} ran on {names}"


@pytest.mark.parametrize("kernel", KERNELS)
@pytest.mark.parametrize("setting", ["set_num_threads(1)", "never set (the import's default)"])
def test_one_thread_or_no_setting_keeps_the_calling_thread(thread_setting, monkeypatch, kernel, setting):
    module, image_shape, outputs, targets = KERNELS[kernel]
    x = _batch(module, image_shape)
    if setting == "set_num_threads(1)":
        thread_setting(1)
    else:
        monkeypatch.setattr(blocks, "_num_threads", None)
    seen = _spy_threads(monkeypatch, targets)
    outputs(x)
    for name, names in seen.items():
        assert names == {threading.current_thread().name}, f"{kernel}: {name} ran on {names}"


@pytest.mark.parametrize("kernel", KERNELS)
def test_below_its_threshold_a_kernel_stays_on_the_calling_thread(thread_setting, monkeypatch, kernel):
    module, image_shape, outputs, targets = KERNELS[kernel]
    x = _batch(module, image_shape)
    for below in {module, *[m for m, _ in targets if hasattr(m, "PARALLEL_BYTES")]}:  # db: conv's threshold
        monkeypatch.setattr(below, "PARALLEL_BYTES", x.nbytes * 100)  # every input of the call below it
    seen = _spy_threads(monkeypatch, targets)
    thread_setting(2)
    outputs(x)
    for name, names in seen.items():
        assert names == {threading.current_thread().name}, f"{kernel}: {name} ran on {names}"


def test_run_shares_returns_each_shares_result_in_order(thread_setting):
    thread_setting(2)
    assert blocks.run_shares(lambda s: (s.start, s.stop), 7, input_bytes=10, parallel_bytes=10) == [(0, 3), (3, 7)]
    assert blocks.run_shares(lambda s: (s.start, s.stop), 7, input_bytes=9, parallel_bytes=10) == [(0, 7)]
    assert blocks.run_shares(lambda s: (s.start, s.stop), 1, input_bytes=10, parallel_bytes=0) == [(0, 1)]


def test_run_shares_raises_a_shares_error_after_every_share_ended(thread_setting):
    thread_setting(2)
    ended = []

    def fail_first(s):
        if s.start == 0:
            raise RuntimeError("share 0 failed")
        ended.append(s.start)
    with pytest.raises(RuntimeError, match="share 0 failed"):
        blocks.run_shares(fail_first, 4, input_bytes=1, parallel_bytes=0)
    assert ended == [2]


def test_the_canonical_convs_shares_run_blas_on_one_thread_and_restore_it(thread_setting, monkeypatch):
    x = _batch(conv, (12, 10, 8))
    thread_setting(2)
    inside = []
    real = conv.conv_forward

    def spy(*args):
        inside.append(threads.blas_num_threads())
        return real(*args)
    monkeypatch.setattr(conv, "conv_forward", spy)
    _canonical(x)
    assert inside and set(inside) == {1}
    assert threads.blas_num_threads() == 2


def _finishes(fn, seconds=30) -> bool:
    """fn() on a daemon thread; whether it ended within seconds (a deadlock never does)."""
    worker = threading.Thread(target=fn, daemon=True)
    worker.start()
    worker.join(seconds)
    return not worker.is_alive()


def test_run_shares_inside_a_share_runs_on_its_thread_not_deadlocks(thread_setting):
    # Each outer share waited on an inner share queued behind the other outer share on the pool's one worker.
    thread_setting(2)
    result = []

    def outer(s):
        return sum(blocks.run_shares(lambda t: t.stop - t.start, 4, input_bytes=1, parallel_bytes=0))
    assert _finishes(lambda: result.append(blocks.run_shares(outer, 4, input_bytes=1, parallel_bytes=0)))
    assert result == [[4, 4]]


def test_a_strided_conv_whose_blocks_pad_over_threads_does_not_deadlock(thread_setting):
    # 1x1 stride 3: each image's im2col is a ninth of it, so a 1 MB block of im2col pads 8.5 MB of input, over the
    # threshold of pad's own shares, inside the canonical conv's shares.
    x = np.random.default_rng(0).standard_normal((80, 60, 60, 16)).astype(np.float32)
    W = np.random.default_rng(1).standard_normal((1, 1, 16, 8)).astype(np.float32)
    thread_setting(1)
    one, _ = conv.conv2d_forward(x, W, None, (3, 3), PADS)
    thread_setting(2)
    result = []
    assert _finishes(lambda: result.append(conv.conv2d_forward(x, W, None, (3, 3), PADS)[0]))
    np.testing.assert_array_equal(result[0], one)


def test_the_shares_run_under_the_callers_numpy_error_state(thread_setting):
    # np.errstate is per thread (a context variable): the pool's threads ran with numpy's defaults, so an overflow in
    # their share warned where the caller had asked it to raise.
    x = np.ones((4 * pool.PARALLEL_BYTES // 512, 8, 8, 2), np.float32)  # 512 bytes an image
    x[-1] = 3e38  # in the last share only: the pool's thread's
    thread_setting(2)
    with np.errstate(over="raise"), pytest.raises(FloatingPointError, match="overflow"):
        pool.avg_pool_forward(x, (2, 2), (2, 2))


def test_blas_stays_on_one_thread_until_the_last_of_overlapping_calls_ends(thread_setting):
    # Two Python threads' canonical convs overlap: the first to end put BLAS back on two threads while the other's
    # shares still ran their GEMMs (each share then on two BLAS threads, the oversubscription one_blas_thread avoids).
    thread_setting(2)
    started, other_done, seen = threading.Event(), threading.Event(), []

    def long_share(s):
        if s.start == 0:
            started.set()
            other_done.wait(30)
            seen.append(threads.blas_num_threads())
    long_call = threading.Thread(target=blocks.run_shares, args=(long_share, 2, 1, 0, True))
    long_call.start()
    started.wait(30)
    blocks.run_shares(lambda s: None, 2, 1, 0, one_blas_thread=True)  # starts and ends inside the long call
    other_done.set()
    long_call.join(30)
    assert seen == [1]
    assert threads.blas_num_threads() == 2
