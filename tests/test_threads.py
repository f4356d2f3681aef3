"""Threads and blocks: set_num_threads / get_num_threads set and read BLAS's threads and the copy kernels'; the
kernels walk the batch in blocks, and agree with the loop reference whether the whole batch is one block, each image
is its own, or the blocks run on two threads."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import tinygrad_cnn
from tinygrad_cnn import Tensor, gradcheck, reference, threads
from tinygrad_cnn.kernels import blocks, checks, conv, conv_depthwise, conv_fast, conv_winograd, pad, pool

TWO = min(2, os.cpu_count() or 1)  # BLAS takes at most one thread per core


def _blas_threads() -> list:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


@pytest.fixture
def restore_threads():
    """Set BLAS's threads back after a test that changes them."""
    before = threads.get_num_threads()
    yield threads.set_num_threads
    threads.set_num_threads(before)


@pytest.fixture
def one_image_per_block(monkeypatch):
    """Every block one image: conv's im2col then built per image (and again for dW), the copies block by block."""
    monkeypatch.setattr(blocks, "BLOCK_BYTES", 1)
    monkeypatch.setattr(conv, "BLOCK_BYTES", 1)
    monkeypatch.setattr(conv_fast, "CHANNELS_FIRST_BLOCK_BYTES", 1)


@pytest.fixture
def forced_threads(restore_threads, one_image_per_block, monkeypatch):
    """Two threads, and the threaded path of the copy kernels, pools, Winograd and depthwise taken even on tiny inputs,
    one image per block."""
    for module in (blocks, pool, conv_winograd, conv_depthwise):
        monkeypatch.setattr(module, "PARALLEL_BYTES", 0)
    restore_threads(2)


@pytest.fixture(params=["whole batch", "one image per block", "two threads"])
def path(request, restore_threads):
    """Each kernel test runs three times: with the usual block sizes on one thread (these small batches are one
    block), with every block one image, and on the forced threaded path."""
    restore_threads(1)
    if request.param == "one image per block":
        request.getfixturevalue("one_image_per_block")
    elif request.param == "two threads":
        request.getfixturevalue("forced_threads")
    return request.param


def test_set_num_threads_sets_blas_threads_and_the_copies_and_get_num_threads_reads_them(restore_threads):
    assert _blas_threads(), "numpy's BLAS is visible to threadpoolctl"
    restore_threads(1)
    assert _blas_threads() == [1] * len(_blas_threads()) and threads.get_num_threads() == blocks.num_threads() == 1
    restore_threads(TWO)
    assert set(_blas_threads()) == {TWO} and threads.get_num_threads() == blocks.num_threads() == TWO
    assert threads.blas_num_threads() == TWO


def test_set_num_threads_from_another_python_thread_sets_blas_too(restore_threads):
    # threadpoolctl lets only the first thread that set OpenBLAS's (pthreads) threads set them again, silently: a
    # set_num_threads(1) in a worker thread after one in the main thread left BLAS on its threads.
    restore_threads(TWO)
    worker = threading.Thread(target=threads.set_num_threads, args=(1,))
    worker.start()
    worker.join()
    assert _blas_threads() == [1] * len(_blas_threads()) and threads.get_num_threads() == 1
    restore_threads(TWO)  # and the main thread again after it
    assert set(_blas_threads()) == {TWO}


def test_a_users_threadpool_limits_in_another_thread_still_works(restore_threads):
    from threadpoolctl import threadpool_limits

    restore_threads(TWO)  # in the main thread: it keeps no control of OpenBLAS's threads after
    inside = []

    def limited():
        with threadpool_limits(1, user_api="blas"):
            inside.append(_blas_threads())
    worker = threading.Thread(target=limited)
    worker.start()
    worker.join()
    assert inside == [[1] * len(_blas_threads())] and set(_blas_threads()) == {TWO}


def test_the_public_names_are_the_thread_settings(restore_threads):
    assert tinygrad_cnn.set_num_threads is threads.set_num_threads
    assert tinygrad_cnn.get_num_threads is threads.get_num_threads
    assert {"set_num_threads", "get_num_threads"} <= set(tinygrad_cnn.__all__)
    tinygrad_cnn.set_num_threads(1)
    assert tinygrad_cnn.get_num_threads() == 1


def test_results_do_not_depend_on_the_thread_count(restore_threads):
    rng = np.random.default_rng(0)
    x, W = rng.standard_normal((8, 12, 12, 16)), rng.standard_normal((3, 3, 16, 32))
    results = []
    for n in (1, TWO):
        restore_threads(n)
        out, saved = conv.conv2d_forward(x, W, None, (1, 1), ((1, 1), (1, 1)))
        results.append((out, *conv.conv2d_backward(np.ones_like(out), saved)[:2]))
    for one, two in zip(*results, strict=True):
        np.testing.assert_allclose(one, two, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bad, error, words", [(0, ValueError, "n must be >= 1, got 0"),
                                               (-2, ValueError, "n must be >= 1, got -2"),
                                               (2.0, TypeError, "n must be an int >= 1, got 2.0"),
                                               (True, TypeError, "n must be an int >= 1, got True")])
def test_set_num_threads_errors(restore_threads, bad, error, words):
    with pytest.raises(error, match=f"set_num_threads: {words}"):
        restore_threads(bad)


@pytest.mark.parametrize("value, expected", [("3", 3), ("4,2", 4), (" 1 ", 1), ("", None), (None, None)])
def test_the_environment_variable_is_read(monkeypatch, value, expected):
    monkeypatch.delenv(threads.ENV_VAR, raising=False)
    if value is not None:
        monkeypatch.setenv(threads.ENV_VAR, value)
    assert threads.threads_from_env() == expected


@pytest.mark.parametrize("value", ["lots", "0", "-1"])
def test_a_bad_environment_variable_is_named(monkeypatch, value):
    monkeypatch.setenv(threads.ENV_VAR, value)
    with pytest.raises(ValueError, match=f"TINYGRAD_CNN_NUM_THREADS='{value}': the number of threads must be a pos"):
        threads.threads_from_env()


def _blas_threads_after_import(package: str = "tinygrad_cnn", **env) -> list:
    """[BLAS threads, get_num_threads()] in a fresh interpreter that imports the package under env (with
    package="numpy": [BLAS threads] with no tinygrad_cnn at all)."""
    code = (f"import {package}; from threadpoolctl import threadpool_info; "
            "print(max(l['num_threads'] for l in threadpool_info() if l['user_api'] == 'blas'), "
            + ("tinygrad_cnn.get_num_threads())" if package == "tinygrad_cnn" else "'')"))
    clean = {k: v for k, v in os.environ.items() if k not in (threads.ENV_VAR, *threads.BLAS_ENV_VARS)}
    clean["PYTHONPATH"] = os.pathsep.join(sys.path)
    out = subprocess.run([sys.executable, "-c", code], env={**clean, **env}, capture_output=True, text=True,
                         check=True).stdout
    return [int(n) for n in out.split()]


def test_the_import_leaves_blas_its_own_threads_by_default():
    """Without TINYGRAD_CNN_NUM_THREADS, importing the library changes no setting of the process: BLAS keeps the
    threads it chose itself (one per core, or what its own variables say), and get_num_threads() reports them."""
    (own,) = _blas_threads_after_import("numpy")
    assert _blas_threads_after_import() == [own, own]
    assert _blas_threads_after_import(OPENBLAS_NUM_THREADS="1") == [1, 1]


def test_the_import_applies_the_environment_variable_over_blas_own():
    assert _blas_threads_after_import(TINYGRAD_CNN_NUM_THREADS=str(TWO), OPENBLAS_NUM_THREADS="1") == [TWO, TWO]


def test_the_import_leaves_blas_a_number_it_was_given():
    assert _blas_threads_after_import(OPENBLAS_NUM_THREADS=str(TWO)) == [TWO, TWO]


@pytest.mark.parametrize("m, per_block", [(10, 3), (2, 5), (7, 1), (1, 2), (0, 4)])
def test_batch_blocks_cover_the_batch_in_order(m, per_block):
    chunks = blocks.batch_blocks(m, per_block)
    assert [i for s in chunks for i in range(m)[s]] == list(range(m))
    assert all(0 < s.stop - s.start <= per_block for s in chunks)
    assert all(s.stop - s.start == per_block for s in chunks[:-1])


def test_run_blocks_uses_the_pool_and_covers_every_image(forced_threads):
    seen, names = [], set()

    def record(s):
        seen.extend(range(6)[s])
        names.add(threading.current_thread().name)
    blocks.run_blocks(record, 6, bytes_per_image=1)
    assert sorted(seen) == list(range(6))
    assert len(names) == 2  # the calling thread and one pool thread


def test_run_blocks_stays_on_the_calling_thread_below_the_threshold(restore_threads):
    restore_threads(2)
    names = set()
    blocks.run_blocks(lambda s: names.add(threading.current_thread().name), 8, bytes_per_image=1)
    assert names == {threading.current_thread().name}


def test_run_blocks_stays_on_the_calling_thread_with_one_thread(restore_threads, monkeypatch):
    monkeypatch.setattr(blocks, "PARALLEL_BYTES", 0)
    restore_threads(1)
    names = set()
    blocks.run_blocks(lambda s: names.add(threading.current_thread().name), 8, bytes_per_image=1 << 20)
    assert names == {threading.current_thread().name}


def test_run_blocks_raises_a_blocks_error_after_all_blocks_end(forced_threads):
    done = []

    def fail_late(s):
        if s.start == 0:
            raise RuntimeError("block 0 failed")
        done.append(s.start)
    with pytest.raises(RuntimeError, match="block 0 failed"):
        blocks.run_blocks(fail_late, 4, bytes_per_image=1)
    assert done == [2, 3]


def test_setting_the_threads_while_another_thread_runs_blocks(forced_threads):
    """set_num_threads in one thread while run_blocks submits to the shared pool in another: the pool a thread is
    handing work to is never shut down under it (it raised 'cannot schedule new futures after shutdown')."""
    errors, stop, seen = [], [], []

    def run():
        try:
            for _ in range(2000):
                blocks.run_blocks(lambda s: seen.append(s.start), 4, bytes_per_image=1)
        except Exception as e:  # noqa: BLE001 (any error is the finding)
            errors.append(e)

    def flip():
        k = 0
        while not stop:
            blocks.set_num_threads(2 + k % 2)
            k += 1
    workers = [threading.Thread(target=run), threading.Thread(target=flip)]
    for w in workers:
        w.start()
    workers[0].join()
    stop.append(True)
    workers[1].join()
    assert not errors, errors[0]
    assert sorted(seen) == sorted(list(range(4)) * 2000)


def test_images_per_block_is_at_least_one():
    assert blocks.images_per_block(100, 1000) == 10
    assert blocks.images_per_block(10 ** 9, 1000) == 1
    assert blocks.images_per_block(0, 1000) == 1000


def _pool_cases():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 7, 6, 3))
    x[:, :2, :2] = 1.0  # ties inside some windows
    return x, [((2, 2), (2, 2)), ((3, 2), (1, 2))]


def test_pool_and_pad_kernels_agree_with_the_loop_reference(path):
    x, cases = _pool_cases()
    dout_rng = np.random.default_rng(4)
    for f, stride in cases:
        for mode in ("max", "average"):
            out, saved = (pool.max_pool_forward(x, f, stride, "all") if mode == "max"
                          else pool.avg_pool_forward(x, f, stride))
            np.testing.assert_allclose(out, reference.pool_forward(x, f, stride, mode), rtol=1e-12)
            dout = dout_rng.standard_normal(out.shape)
            dx = pool.max_pool_backward(dout, saved) if mode == "max" else pool.avg_pool_backward(dout, saved)
            np.testing.assert_allclose(dx, reference.pool_backward(dout, x, f, stride, mode), rtol=1e-12)
    pads = ((1, 2), (0, 3))
    np.testing.assert_array_equal(pad.pad_forward(x, pads, 0.5),
                                  np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=0.5))


def test_max_pool_ties_first_and_split_in_both_paths(path):
    x = np.ones((3, 4, 4, 2))
    out, saved = pool.max_pool_forward(x, (2, 2), (2, 2), "first")
    dx = pool.max_pool_backward(np.ones_like(out), saved)
    assert dx.sum() == out.size and (dx[:, ::2, ::2] == 1).all()
    out, saved = pool.max_pool_forward(x, (2, 2), (2, 2), "split")
    np.testing.assert_allclose(pool.max_pool_backward(np.ones_like(out), saved), 0.25)


def test_dense_copies_only_broadcast_views():
    a = np.ones((2, 3))
    assert checks.dense(a) is a
    transposed = a.T
    assert checks.dense(transposed) is transposed  # a strided view, but no broadcast
    view = np.broadcast_to(np.float32(1.0), (2, 3))
    dense = checks.dense(view)
    assert dense.flags.c_contiguous and dense.strides != view.strides
    np.testing.assert_array_equal(dense, view)
    single = np.broadcast_to(np.ones((1, 1)), (1, 1))
    assert checks.dense(single) is single  # stride 0 over a length-1 axis is no broadcast


def test_pool_and_pad_gradients_pass_gradcheck_in_both_paths(path):
    x = Tensor(np.random.default_rng(5).standard_normal((3, 5, 4, 2)), requires_grad=True)
    assert gradcheck(lambda t: t.max_pool2d(2, 1), x)
    assert gradcheck(lambda t: t.avg_pool2d((3, 2), (1, 2)), x)
    assert gradcheck(lambda t: t.pad2d(((1, 0), (2, 1)), value=1.5).sum(), x)
    assert gradcheck(lambda t: t.max_pool2d(2).sum(), x)  # the gradient of a sum: a broadcast view


def test_the_kernels_walk_the_batch_block_by_block(path, monkeypatch):
    per_block = []
    real = blocks.batch_blocks
    monkeypatch.setattr(blocks, "batch_blocks", lambda m, n: per_block.append(n) or real(m, n))
    monkeypatch.setattr(conv, "batch_blocks", blocks.batch_blocks)
    x = np.random.default_rng(6).standard_normal((4, 4, 4, 2))
    for run in (lambda: pool.max_pool_forward(x, (2, 2), (2, 2)),
                lambda: pool.avg_pool_backward(np.ones((4, 2, 2, 2)), pool.avg_pool_forward(x, (2, 2), (2, 2))[1]),
                lambda: pad.pad_forward(x, ((1, 1), (1, 1))),
                lambda: conv.conv2d_forward(x, np.ones((3, 3, 2, 4)), None, (1, 1), ((1, 1), (1, 1)))):
        per_block.clear()
        run()
        assert per_block and all(n == 1 if path != "whole batch" else n >= 4 for n in per_block)
    _, saved = conv.conv2d_forward(x, np.ones((3, 3, 2, 4)), None, (1, 1), ((1, 1), (1, 1)))
    assert (saved.cols is None) == (path != "whole batch")  # one block: its im2col kept for dW


def test_the_forced_threaded_path_runs_the_copy_kernels_on_two_threads(forced_threads, monkeypatch):
    names = set()
    walk = blocks._walk

    def spy(fn, share):
        names.add(threading.current_thread().name)
        walk(fn, share)
    monkeypatch.setattr(blocks, "_walk", spy)
    x = np.random.default_rng(6).standard_normal((4, 4, 4, 2))
    for run in (lambda: pool.max_pool_forward(x, (2, 2), (2, 2)),
                lambda: pool.max_pool_backward(np.ones((4, 2, 2, 2)), pool.max_pool_forward(x, (2, 2), (2, 2))[1]),
                lambda: pool.avg_pool_forward(x, (2, 2), (2, 2)),
                lambda: pad.pad_forward(x, ((1, 1), (1, 1)))):
        names.clear()
        run()
        assert len(names) == 2


# conv2d: (x shape, W shape, stride, pads, dilation, groups); dA_prev as a conv (stride 1), the channels-first
# col2im (C < 8, column stride 2), groups and dilation, the canonical col2im (stride 2, C >= 8; stride 1, n_C > 2C),
# Winograd (3x3 stride 1, 32 channels), depthwise (stride 1, and stride 2 with its scatter)
CONV_CASES = [((5, 6, 7, 3), (3, 3, 3, 4), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
              ((4, 9, 8, 3), (3, 2, 3, 5), (2, 2), ((1, 0), (2, 1)), (1, 1), 1),
              ((3, 8, 7, 4), (2, 3, 2, 6), (1, 2), ((1, 2), (0, 1)), (2, 1), 2),
              ((3, 7, 7, 8), (3, 3, 8, 5), (2, 2), ((1, 1), (1, 1)), (1, 1), 1),
              ((3, 6, 6, 2), (3, 3, 2, 6), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
              ((2, 4, 3, 32), (3, 3, 32, 32), (1, 1), ((1, 0), (1, 1)), (1, 1), 1),
              ((3, 6, 5, 4), (3, 3, 1, 4), (1, 1), ((1, 1), (0, 1)), (1, 1), 4),
              ((3, 7, 6, 4), (3, 3, 1, 4), (2, 2), ((1, 1), (1, 1)), (1, 1), 4)]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_kernels_agree_with_the_loop_reference_in_both_paths(path, case):
    x_shape, W_shape, stride, pads, dilation, groups = case
    rng = np.random.default_rng(7)
    x, W, b = rng.standard_normal(x_shape), rng.standard_normal(W_shape), rng.standard_normal(W_shape[3])
    out, saved = conv.conv2d_forward(x, W, b, stride, pads, dilation, groups)
    np.testing.assert_allclose(out, reference.conv_forward(x, W, b, stride, pads, dilation, groups), rtol=1e-10,
                               atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx, dW, db = conv.conv2d_backward(dout, saved)
    ref_dx, ref_dW, ref_db = reference.conv_backward(dout, x, W, stride, pads, dilation, groups)
    for ours, ref in ((dx, ref_dx), (dW, ref_dW), (db, ref_db.reshape(-1))):
        np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-12)


def test_conv_gradients_pass_gradcheck_in_both_paths(path):
    rng = np.random.default_rng(8)
    x = Tensor(rng.standard_normal((3, 5, 6, 4)), requires_grad=True)
    W = Tensor(rng.standard_normal((3, 3, 2, 4)), requires_grad=True)
    b = Tensor(rng.standard_normal(4), requires_grad=True)
    assert gradcheck(lambda x, W, b: x.conv2d(W, b, stride=(1, 2), pad=1, groups=2).sum(), x, W, b)
    assert gradcheck(lambda x, W: x.conv_transpose2d(W, stride=2, pad=1, dilation=(2, 1)), x, W)
