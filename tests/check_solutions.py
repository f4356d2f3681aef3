"""Learners' solutions of the notebook's functions for tests/test_check*.py, in three styles, each a string of code:
"loops" (the seed's own functions, examples/data/step_by_step_seed.py, its three bugs fixed), "slicing"
(vectorized over the batch, a loop over kernel offsets or output positions), "einsum" (windows from
sliding_window_view, einsum; its max mask marks the first maximum, as PyTorch). ``solutions(style)`` runs one;
``with_bug(style, name, old, new)`` runs it with ``old`` replaced by ``new`` in function ``name`` (where it stands
exactly once), as a learner's slip, and returns the function ``name``.
"""

import linecache

from tests.helpers import EXAMPLES

SEED = EXAMPLES / "data" / "step_by_step_seed.py"
SEED_FIXES = (("Z = Z + float(b)", "Z = Z + b.item()"),  # float() of a (1, 1, 1) array raises from numpy 2.4
              ("da_prev_pad[pad:-pad, pad:-pad, :]", "da_prev_pad[pad:pad + n_H_prev, pad:pad + n_W_prev, :]"),
              ("vert_start = h\n", "vert_start = h * stride\n"), ("horiz_start = w\n", "horiz_start = w * stride\n"))


def _fixed_seed() -> str:
    """The seed's functions with its three bugs fixed: the notebook's own loops, right."""
    code = SEED.read_text()
    for old, new in SEED_FIXES:
        assert code.count(old) == 1, old
        code = code.replace(old, new)
    return code


LOOPS = _fixed_seed()

SLICING = '''
import numpy as np


def zero_pad(X, pad):
    m, n_H, n_W, n_C = X.shape
    X_pad = np.zeros((m, n_H + 2 * pad, n_W + 2 * pad, n_C))
    X_pad[:, pad:pad + n_H, pad:pad + n_W, :] = X
    return X_pad


def conv_single_step(a_slice_prev, W, b):
    return float(np.sum(a_slice_prev * W) + np.sum(b))


def conv_forward(A_prev, W, b, hparameters):
    m, n_H_prev, n_W_prev, _ = A_prev.shape
    f, _, _, n_C = W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]
    n_H = (n_H_prev - f + 2 * pad) // stride + 1
    n_W = (n_W_prev - f + 2 * pad) // stride + 1
    A_pad = zero_pad(A_prev, pad)
    Z = np.zeros((m, n_H, n_W, n_C)) + b.reshape(1, 1, 1, n_C)
    for kh in range(f):
        for kw in range(f):
            taps = A_pad[:, kh:kh + stride * (n_H - 1) + 1:stride, kw:kw + stride * (n_W - 1) + 1:stride, :]
            Z += taps @ W[kh, kw]
    return Z, (A_prev, W, b, hparameters)


def conv_backward(dZ, cache):
    A_prev, W, b, hparameters = cache
    m, n_H_prev, n_W_prev, _ = A_prev.shape
    f = W.shape[0]
    stride, pad = hparameters["stride"], hparameters["pad"]
    _, n_H, n_W, _ = dZ.shape
    A_pad = zero_pad(A_prev, pad)
    dA_pad = np.zeros(A_pad.shape)
    dW = np.zeros(W.shape)
    for kh in range(f):
        for kw in range(f):
            rows = slice(kh, kh + stride * (n_H - 1) + 1, stride)
            cols = slice(kw, kw + stride * (n_W - 1) + 1, stride)
            dA_pad[:, rows, cols, :] += dZ @ W[kh, kw].T
            dW[kh, kw] += np.tensordot(A_pad[:, rows, cols, :], dZ, axes=([0, 1, 2], [0, 1, 2]))
    db = dZ.sum(axis=(0, 1, 2)).reshape(1, 1, 1, -1)
    dA_prev = dA_pad[:, pad:pad + n_H_prev, pad:pad + n_W_prev, :]
    return dA_prev, dW, db


def pool_forward(A_prev, hparameters, mode="max"):
    f, stride = hparameters["f"], hparameters["stride"]
    m, n_H_prev, n_W_prev, n_C = A_prev.shape
    n_H, n_W = (n_H_prev - f) // stride + 1, (n_W_prev - f) // stride + 1
    A = np.zeros((m, n_H, n_W, n_C))
    for h in range(n_H):
        for w in range(n_W):
            window = A_prev[:, h * stride:h * stride + f, w * stride:w * stride + f, :]
            A[:, h, w, :] = window.max(axis=(1, 2)) if mode == "max" else window.mean(axis=(1, 2))
    return A, (A_prev, hparameters)


def create_mask_from_window(x):
    return x == x.max()


def distribute_value(dz, shape):
    n_H, n_W = shape
    return np.full(shape, dz / (n_H * n_W))


def pool_backward(dA, cache, mode="max"):
    A_prev, hparameters = cache
    f, stride = hparameters["f"], hparameters["stride"]
    _, n_H, n_W, _ = dA.shape
    dA_prev = np.zeros(A_prev.shape)
    for h in range(n_H):
        for w in range(n_W):
            vert, horiz = slice(h * stride, h * stride + f), slice(w * stride, w * stride + f)
            g = dA[:, h:h + 1, w:w + 1, :]
            if mode == "max":
                window = A_prev[:, vert, horiz, :]
                mask = window == window.max(axis=(1, 2), keepdims=True)
                dA_prev[:, vert, horiz, :] += mask * g
            else:
                dA_prev[:, vert, horiz, :] += g / (f * f)
    return dA_prev
'''

EINSUM = '''
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def zero_pad(X, pad):
    return np.pad(X, [(0, 0), (pad, pad), (pad, pad), (0, 0)])


def conv_single_step(a_slice_prev, W, b):
    return np.einsum("hwc,hwc->", a_slice_prev, W) + np.squeeze(b)


def windows(X, f, stride):
    """(m, n_H, n_W, n_C, f, f): the f x f windows of X, stride apart."""
    return sliding_window_view(X, (f, f), axis=(1, 2))[:, ::stride, ::stride]


def conv_forward(A_prev, W, b, hparameters):
    stride, pad = hparameters["stride"], hparameters["pad"]
    win = windows(zero_pad(A_prev, pad), W.shape[0], stride)
    Z = np.einsum("mhwcij,ijcn->mhwn", win, W) + b.reshape(1, 1, 1, -1)
    return Z, (A_prev, W, b, hparameters)


def conv_backward(dZ, cache):
    A_prev, W, b, hparameters = cache
    stride, pad = hparameters["stride"], hparameters["pad"]
    f = W.shape[0]
    m, n_H_prev, n_W_prev, _ = A_prev.shape
    _, n_H, n_W, _ = dZ.shape
    A_pad = zero_pad(A_prev, pad)
    dW = np.einsum("mhwcij,mhwn->ijcn", windows(A_pad, f, stride), dZ)
    db = np.einsum("mhwn->n", dZ).reshape(1, 1, 1, -1)
    dA_pad = np.zeros(A_pad.shape)
    for i in range(f):
        for j in range(f):
            dA_pad[:, i:i + stride * n_H:stride, j:j + stride * n_W:stride, :] += np.einsum("mhwn,cn->mhwc", dZ,
                                                                                           W[i, j])
    dA_prev = dA_pad[:, pad:pad + n_H_prev, pad:pad + n_W_prev, :]
    return dA_prev, dW, db


def pool_forward(A_prev, hparameters, mode="max"):
    win = windows(A_prev, hparameters["f"], hparameters["stride"])
    A = win.max(axis=(4, 5)) if mode == "max" else win.mean(axis=(4, 5))
    return A, (A_prev, hparameters)


def create_mask_from_window(x):
    mask = np.zeros(x.shape, dtype=bool)
    mask[np.unravel_index(np.argmax(x), x.shape)] = True
    return mask


def distribute_value(dz, shape):
    return dz / np.prod(shape) * np.ones(shape)


def pool_backward(dA, cache, mode="max"):
    A_prev, hparameters = cache
    f, stride = hparameters["f"], hparameters["stride"]
    m, n_H, n_W, n_C = dA.shape
    win = windows(A_prev, f, stride)
    if mode == "max":
        first = win.reshape(m, n_H, n_W, n_C, f * f).argmax(axis=-1)
        share = (np.arange(f * f) == first[..., None]).reshape(win.shape) * dA[..., None, None]
    else:
        share = np.broadcast_to(dA[..., None, None] / (f * f), win.shape)
    dA_prev = np.zeros(A_prev.shape)
    for i in range(f):
        for j in range(f):
            dA_prev[:, i:i + stride * n_H:stride, j:j + stride * n_W:stride, :] += share[..., i, j]
    return dA_prev
'''

STYLES = {"loops": LOOPS, "slicing": SLICING, "einsum": EINSUM}


def run_code(code: str, filename: str) -> dict:
    """exec code as a learner's file ``filename`` (registered with linecache: tracebacks and getsource see it)."""
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    namespace = {"__name__": "learner"}
    exec(compile(code, filename, "exec"), namespace)
    return namespace


def solutions(style: str) -> dict:
    return run_code(STYLES[style], f"<{style} solution>")


def with_bug(style: str, name: str, old: str, new: str):
    """The function ``name`` of ``style`` with the text ``old`` (found exactly once in that function) replaced by
    ``new``; the other functions of the style as they are."""
    code = STYLES[style]
    start = code.index(f"\ndef {name}(")
    end = code.find("\ndef ", start + 1) % (len(code) + 1)
    body = code[start:end]
    assert body.count(old) == 1, (style, name, old, body.count(old))
    return run_code(code[:start] + body.replace(old, new) + code[end:], f"<{style} solution, {name} with a bug>")[name]
