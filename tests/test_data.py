"""tinygrad_cnn.data.batches: one epoch of minibatches."""

import numpy as np
import pytest

from tinygrad_cnn.data import batches


def dataset(m=10):
    """X (m, 2, 2, 1) whose first pixel is the sample's index, y (m,) = index: pairs stay together."""
    X = np.zeros((m, 2, 2, 1))
    X[:, 0, 0, 0] = np.arange(m)
    return X, np.arange(m)


def seen(pairs):
    return np.concatenate([y for _, y in pairs])


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("m, batch_size", [(10, 3), (10, 5), (10, 1), (10, 32), (1, 4)])
def test_every_sample_once_per_epoch_and_pairs_stay_together(m, batch_size, shuffle):
    X, y = dataset(m)
    pairs = list(batches(X, y, batch_size, shuffle=shuffle, seed=0))
    assert sorted(seen(pairs)) == list(range(m))
    for X_batch, y_batch in pairs:
        assert X_batch.shape[1:] == (2, 2, 1) and len(X_batch) == len(y_batch) <= batch_size
        np.testing.assert_array_equal(X_batch[:, 0, 0, 0], y_batch)


def test_without_shuffle_the_order_is_the_data_order():
    X, y = dataset(7)
    assert list(seen(batches(X, y, 3, shuffle=False))) == list(range(7))


def test_the_same_int_seed_gives_the_same_order():
    X, y = dataset(50)
    first, again = seen(batches(X, y, 8, seed=3)), seen(batches(X, y, 8, seed=3))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, np.arange(50))  # shuffled, not the identity
    assert not np.array_equal(first, seen(batches(X, y, 8, seed=4)))


def test_a_generator_gives_a_new_order_each_epoch_and_the_same_sequence_each_run():
    X, y = dataset(50)
    rng = np.random.default_rng(0)
    epoch1, epoch2 = seen(batches(X, y, 8, seed=rng)), seen(batches(X, y, 8, seed=rng))
    assert not np.array_equal(epoch1, epoch2)
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(seen(batches(X, y, 8, seed=rng)), epoch1)
    np.testing.assert_array_equal(seen(batches(X, y, 8, seed=rng)), epoch2)


def test_without_a_seed_the_order_is_fresh():
    X, y = dataset(100)
    orders = {tuple(seen(batches(X, y, 10))) for _ in range(3)}
    assert len(orders) == 3  # 100! orders: a repeat would be a fixed seed


def test_last_batch_is_smaller_or_dropped():
    X, y = dataset(10)
    assert [len(yb) for _, yb in batches(X, y, 4)] == [4, 4, 2]
    dropped = list(batches(X, y, 4, drop_last=True))
    assert [len(yb) for _, yb in dropped] == [4, 4] and len(set(seen(dropped))) == 8
    assert [len(yb) for _, yb in batches(X, y, 5, drop_last=True)] == [5, 5]  # nothing to drop
    assert list(batches(X, y, 11, drop_last=True)) == []


def test_lists_are_accepted_and_batches_are_numpy():
    X_batch, y_batch = next(batches([[1, 2], [3, 4]], [0, 1], 2, shuffle=False))
    assert isinstance(X_batch, np.ndarray) and isinstance(y_batch, np.ndarray)
    np.testing.assert_array_equal(X_batch, [[1, 2], [3, 4]])


@pytest.mark.parametrize("batch_size", [0, -1, 2.0, "8", True, None])
def test_batch_size_must_be_a_positive_int(batch_size):
    X, y = dataset()
    with pytest.raises(ValueError, match=r"batches: batch_size must be a positive int, got"):
        batches(X, y, batch_size)  # raised on the call, before iterating


def test_X_and_y_must_have_the_same_length():
    X, y = dataset(10)
    with pytest.raises(ValueError, match=r"same number of samples.*X.shape=\(10, 2, 2, 1\) and y.shape=\(9,\)"):
        batches(X, y[:9], 4)


def test_scalars_have_no_sample_axis():
    with pytest.raises(ValueError, match=r"batches: X and y need a sample axis 0"):
        batches(np.float64(1.0), [1], 1)


def test_seed_must_be_an_int_or_a_generator():
    X, y = dataset()
    with pytest.raises(TypeError, match=r"batches: seed must be None, an int or a numpy.random.Generator"):
        batches(X, y, 4, seed=1.5)
