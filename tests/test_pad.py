"""Padding: pad2d and its kernel (kernels/pad.py): the fill value, unpad undoing it, the pad arguments normalised,
gradcheck, errors and against PyTorch.
"""

import numpy as np
import pytest

import tinygrad_cnn.functional as F
from tests.helpers import TF, assert_raises_recording_nothing, nchw, nhwc, rand, random_images, same_program
from tinygrad_cnn import gradcheck, reference
from tinygrad_cnn.kernels import checks, pad


def test_pad_forward_fills_value_and_unpad_undoes_it():
    x = np.arange(2 * 3 * 4 * 2, dtype=np.float64).reshape(2, 3, 4, 2)
    pads = ((1, 2), (0, 3))
    xp = pad.pad_forward(x, pads, -7.0)
    assert xp.shape == (2, 6, 7, 2)
    assert (xp[:, 0] == -7).all() and (xp[:, -2:] == -7).all() and (xp[:, :, -3:] == -7).all()
    np.testing.assert_array_equal(pad.unpad(xp, pads), x)
    np.testing.assert_array_equal(xp, reference.zero_pad(x, pads) + np.pad(np.zeros_like(x), ((0, 0), *pads, (0, 0)),
                                                                             constant_values=-7.0))


def test_float32_keeps_dtype():
    x = random_images((2, 6, 6, 3), dtype=np.float32)
    assert pad.pad_forward(x, ((1, 2), (0, 1)), 1.0).dtype == np.float32


@pytest.mark.parametrize("pad, expected", [
    (0, ((0, 0), (0, 0))), (2, ((2, 2), (2, 2))), ((1, 3), ((1, 1), (3, 3))),
    (((0, 1), (2, 3)), ((0, 1), (2, 3))), (np.int64(1), ((1, 1), (1, 1))),
])
def test_as_pads_normalizes(pad, expected):
    assert checks.as_pads("op", pad) == expected


def test_pad2d_gradcheck_and_values():
    x = rand(2, 3, 4, 2, seed=4)
    pads = ((1, 0), (2, 1))
    out = F.pad2d(x, pads, value=-1.0)
    assert out.shape == (2, 4, 7, 2) and out.data[0, 0, 0, 0] == -1.0
    np.testing.assert_array_equal(pad.unpad(out.data, pads), x.data)
    assert gradcheck(lambda t: F.pad2d(t, pads, value=2.0), x)


def test_functional_form_is_the_method():
    x = rand(1, 4, 4, 2, seed=9)
    np.testing.assert_array_equal(F.pad2d(x, 1).data, x.pad2d(1).data)


BAD_CALLS = [
    (lambda x, W: F.pad2d(x, "same"), ValueError, "pad2d: unknown pad mode"),
    (lambda x, W: F.pad2d(x, 1, value="zero"), TypeError, "pad2d: value must be a real number"),
]


@pytest.mark.parametrize("call, error, words", BAD_CALLS)
def test_bad_inputs_raise_before_anything_is_recorded(monkeypatch, call, error, words):
    assert_raises_recording_nothing(monkeypatch, call, error, words)


def test_pad2d_matches_pytorch():
    rng = np.random.default_rng(6)
    same_program(lambda x: x.pad2d(((1, 2), (0, 3)), value=0.5),
                 lambda x: nhwc(TF.pad(nchw(x), (0, 3, 1, 2), value=0.5)), rng.standard_normal((2, 3, 4, 2)))
