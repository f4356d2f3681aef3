"""The parallel layer: thread count settings, batch chunks, and the pool/pad kernels in both paths."""

import threading

import numpy as np
import pytest

from tinygrad_cnn import Tensor, gradcheck, kernels, parallel, reference


@pytest.fixture
def threads():
    """Restore the thread count after a test that sets it."""
    before = parallel.get_num_threads()
    yield parallel.set_num_threads
    parallel.set_num_threads(before)


@pytest.fixture
def forced_threads(threads, monkeypatch):
    """Two threads, and the threaded path taken even on tiny inputs, one image per block."""
    monkeypatch.setattr(parallel, "MIN_PARALLEL_BYTES", 0)
    monkeypatch.setattr(kernels, "COPY_PARALLEL_BYTES", 0)
    monkeypatch.setattr(kernels, "CONV_PARALLEL_BYTES", 0)
    monkeypatch.setattr(parallel, "BLOCK_BYTES", 1)
    monkeypatch.setattr(kernels, "CONV_BLOCK_BYTES", 1)
    monkeypatch.setattr(kernels, "CONV_DX_BLOCK_BYTES", 1)
    threads(2)


@pytest.fixture(params=["one thread", "threaded"])
def path(request, threads):
    """Each kernel test runs twice: with set_num_threads(1), and on the forced threaded path."""
    if request.param == "threaded":
        request.getfixturevalue("forced_threads")
    else:
        threads(1)
    return request.param


def test_set_and_get_num_threads(threads):
    threads(3)
    assert parallel.get_num_threads() == 3
    threads(1)
    assert parallel.get_num_threads() == 1


@pytest.mark.parametrize("bad, error, words", [(0, ValueError, "n must be >= 1, got 0"),
                                               (-2, ValueError, "n must be >= 1, got -2"),
                                               (2.0, TypeError, "n must be an int >= 1, got 2.0"),
                                               (True, TypeError, "n must be an int >= 1, got True")])
def test_set_num_threads_errors(threads, bad, error, words):
    with pytest.raises(error, match=f"set_num_threads: {words}"):
        threads(bad)


@pytest.mark.parametrize("env, expected", [({"TINYGRAD_CNN_NUM_THREADS": "3", "OMP_NUM_THREADS": "5"}, 3),
                                           ({"OMP_NUM_THREADS": "5"}, 5),
                                           ({"OMP_NUM_THREADS": "4,2"}, 4),
                                           ({}, None)])
def test_environment_variables_set_the_default(monkeypatch, env, expected):
    for name in parallel.ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(parallel, "_num_threads", None)
    assert parallel.get_num_threads() == (expected or parallel.cores_available())


def test_a_bad_environment_variable_is_named(monkeypatch):
    monkeypatch.setenv("TINYGRAD_CNN_NUM_THREADS", "lots")
    monkeypatch.setattr(parallel, "_num_threads", None)
    with pytest.raises(ValueError, match="TINYGRAD_CNN_NUM_THREADS='lots': the number of threads must be a pos"):
        parallel.get_num_threads()


def test_cores_available_is_the_affinity():
    assert 1 <= parallel.cores_available() <= (len(__import__("os").sched_getaffinity(0)) or 1)


@pytest.mark.parametrize("m, n", [(10, 3), (2, 5), (7, 1), (1, 2)])
def test_batch_chunks_cover_the_batch_in_order(m, n):
    chunks = parallel.batch_chunks(m, n)
    assert [i for s in chunks for i in range(m)[s]] == list(range(m))
    assert len(chunks) == min(m, n) and max(s.stop - s.start for s in chunks) - min(
        s.stop - s.start for s in chunks) <= 1


def test_run_in_chunks_uses_the_pool_and_covers_every_image(forced_threads):
    seen, names = [], set()

    def record(s):
        seen.extend(range(6)[s])
        names.add(threading.current_thread().name)
    parallel.run_in_chunks(record, 6, bytes_per_image=1)
    assert sorted(seen) == list(range(6))
    assert len(names) == 2  # the calling thread and one pool thread


def test_run_in_chunks_stays_on_the_calling_thread_below_the_threshold(threads):
    threads(2)
    names = set()
    parallel.run_in_chunks(lambda s: names.add(threading.current_thread().name), 8, bytes_per_image=1)
    assert names == {threading.current_thread().name}


def test_run_in_chunks_raises_a_chunks_error_after_all_chunks_end(forced_threads):
    done = []

    def fail_late(s):
        if s.start == 0:
            raise RuntimeError("chunk 0 failed")
        done.append(s.start)
    with pytest.raises(RuntimeError, match="chunk 0 failed"):
        parallel.run_in_chunks(fail_late, 4, bytes_per_image=1)
    assert done == [2, 3]


def test_limit_blas_gives_blas_one_thread_inside_the_chunks(forced_threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    counts = []
    parallel.run_in_chunks(lambda s: counts.append(
        [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]), 2,
        bytes_per_image=1, limit_blas=True)
    assert counts and all(all(n == 1 for n in c) for c in counts)


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
            out, saved = (kernels.max_pool_forward(x, f, stride, "all") if mode == "max"
                          else kernels.avg_pool_forward(x, f, stride))
            np.testing.assert_allclose(out, reference.pool_forward(x, f, stride, mode), rtol=1e-12)
            dout = dout_rng.standard_normal(out.shape)
            dx = kernels.max_pool_backward(dout, saved) if mode == "max" else kernels.avg_pool_backward(dout, saved)
            np.testing.assert_allclose(dx, reference.pool_backward(dout, x, f, stride, mode), rtol=1e-12)
    pads = ((1, 2), (0, 3))
    np.testing.assert_array_equal(kernels.pad_forward(x, pads, 0.5),
                                  np.pad(x, ((0, 0), *pads, (0, 0)), constant_values=0.5))


def test_max_pool_ties_first_and_split_in_both_paths(path):
    x = np.ones((3, 4, 4, 2))
    out, saved = kernels.max_pool_forward(x, (2, 2), (2, 2), "first")
    dx = kernels.max_pool_backward(np.ones_like(out), saved)
    assert dx.sum() == out.size and (dx[:, ::2, ::2] == 1).all()
    out, saved = kernels.max_pool_forward(x, (2, 2), (2, 2), "split")
    np.testing.assert_allclose(kernels.max_pool_backward(np.ones_like(out), saved), 0.25)


def test_dense_copies_only_broadcast_views():
    a = np.ones((2, 3))
    assert kernels.dense(a) is a
    transposed = a.T
    assert kernels.dense(transposed) is transposed  # a strided view, but no broadcast
    view = np.broadcast_to(np.float32(1.0), (2, 3))
    dense = kernels.dense(view)
    assert dense.flags.c_contiguous and dense.strides != view.strides
    np.testing.assert_array_equal(dense, view)
    single = np.broadcast_to(np.ones((1, 1)), (1, 1))
    assert kernels.dense(single) is single  # stride 0 over a length-1 axis is no broadcast


def test_pool_and_pad_gradients_pass_gradcheck_in_both_paths(path):
    x = Tensor(np.random.default_rng(5).standard_normal((3, 5, 4, 2)), requires_grad=True)
    assert gradcheck(lambda t: t.max_pool2d(2, 1), x)
    assert gradcheck(lambda t: t.avg_pool2d((3, 2), (1, 2)), x)
    assert gradcheck(lambda t: t.pad2d(((1, 0), (2, 1)), value=1.5).sum(), x)
    assert gradcheck(lambda t: t.max_pool2d(2).sum(), x)  # the gradient of a sum: a broadcast view


def test_the_forced_threaded_path_runs_the_kernels_on_two_threads(forced_threads, monkeypatch):
    names = set()
    in_blocks = parallel._in_blocks

    def spy(fn, images, per_block):
        names.add(threading.current_thread().name)
        in_blocks(fn, images, per_block)
    monkeypatch.setattr(parallel, "_in_blocks", spy)
    x = np.random.default_rng(6).standard_normal((4, 4, 4, 2))
    for run in (lambda: kernels.max_pool_forward(x, (2, 2), (2, 2)),
                lambda: kernels.avg_pool_forward(x, (2, 2), (2, 2)),
                lambda: kernels.pad_forward(x, ((1, 1), (1, 1))),
                lambda: kernels.conv2d_forward(x, np.ones((3, 3, 2, 4)), None, (1, 1), ((1, 1), (1, 1)))):
        names.clear()
        run()
        assert len(names) == 2


# conv2d: (x shape, W shape, stride, pads, dilation, groups); the second takes the channels-first col2im (C < 8,
# column stride 2), the third groups and dilation
CONV_CASES = [((5, 6, 7, 3), (3, 3, 3, 4), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
              ((4, 9, 8, 3), (3, 2, 3, 5), (2, 2), ((1, 0), (2, 1)), (1, 1), 1),
              ((3, 8, 7, 4), (2, 3, 2, 6), (1, 2), ((1, 2), (0, 1)), (2, 1), 2)]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_kernels_agree_with_the_loop_reference_in_both_paths(path, case):
    x_shape, W_shape, stride, pads, dilation, groups = case
    rng = np.random.default_rng(7)
    x, W, b = rng.standard_normal(x_shape), rng.standard_normal(W_shape), rng.standard_normal(W_shape[3])
    out, saved = kernels.conv2d_forward(x, W, b, stride, pads, dilation, groups)
    np.testing.assert_allclose(out, reference.conv_forward(x, W, b, stride, pads, dilation, groups), rtol=1e-10,
                               atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx, dW, db = kernels.conv2d_backward(dout, saved)
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
