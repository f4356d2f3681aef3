"""The notebook's functions as loops (the reference, bugs fixed) with each known mistake injected, and the
catalogue that names the mistakes: a tag (part of the API), what is wrong and what to write instead, and a pattern
that finds the line that makes it in the learner's code.

check names a mistake only when running this code with the mistake injected reproduces the learner's outputs
(every output the mistake changes, on every case; or some of them, the others right), so a diagnosis is a fact,
not a guess.
``mistake=None`` is the correct function; a test checks it against tinygrad_cnn.reference on every case.
Imports numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Mistake:
    """key: the injected variant; tag: the finding's tag; message: plain words (what is wrong, what to write);
    pattern: a regex for a line of the learner's code that makes this mistake (or None)."""

    key: str
    tag: str
    message: str
    pattern: str | None = None


# ----------------------------------------------------------------------------- conv
def zero_pad(X, pad, mistake=None):
    if mistake == "pad_all_axes":
        return np.pad(X, pad)
    if mistake == "pad_one_side":
        return np.pad(X, ((0, 0), (0, pad), (0, pad), (0, 0)))
    if mistake == "not_padded":
        return X.copy()
    return np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)))


def conv_single_step(a_slice_prev, W, b, mistake=None):
    s = np.sum(a_slice_prev * W)
    if mistake == "bias_missing":
        return s
    if mistake == "bias_array":
        return s + b
    return s + b.item()


def _conv_sizes(A_prev, W, hparameters, mistake):
    (m, n_H_prev, n_W_prev, _), (f, _, _, n_C) = A_prev.shape, W.shape
    stride, pad = hparameters["stride"], hparameters["pad"]
    if mistake == "no_pad_valid_size":
        pad = 0
    n_H, n_W = (n_H_prev - f + 2 * pad) // stride + 1, (n_W_prev - f + 2 * pad) // stride + 1
    return m, f, n_C, pad, n_H, n_W, _steps(stride, mistake)


def _steps(stride, mistake):
    """(row step, column step) of the windows: stride, or 1 where the mistake ignores it."""
    return {"stride_ignored": (1, 1), "stride_ignored_rows": (1, stride),
            "stride_ignored_columns": (stride, 1)}.get(mistake, (stride, stride))


def conv_forward(A_prev, W, b, hparameters, mistake=None):
    m, f, n_C, pad, n_H, n_W, (s_h, s_w) = _conv_sizes(A_prev, W, hparameters, mistake)
    A_prev_pad = A_prev if mistake == "slices_unpadded" else zero_pad(A_prev, pad)
    Z = np.zeros((m, n_H, n_W, n_C))
    for i, h, w, c in np.ndindex(m, n_H, n_W, n_C):
        a_slice_prev = A_prev_pad[i, h * s_h:h * s_h + f, w * s_w:w * s_w + f, :]
        Z[i, h, w, c] = conv_single_step(a_slice_prev, W[:, :, :, c], b[:, :, :, c],
                                         "bias_missing" if mistake == "bias_missing" else None)
    return Z, (A_prev, W, b, hparameters)


def _unpad(dA_prev_pad, pad, n_H_prev, n_W_prev, mistake):
    """dA_prev from the padded gradient: the rows pad .. pad + n_H_prev (and columns alike), or a mistake's cut."""
    if mistake == "unpad_loop":  # the notebook's hint, per example: empty at pad 0, so the assignment raises
        dA_prev = np.zeros((dA_prev_pad.shape[0], n_H_prev, n_W_prev, dA_prev_pad.shape[3]))
        for i in range(dA_prev_pad.shape[0]):
            dA_prev[i, :, :, :] = dA_prev_pad[i, pad:-pad, pad:-pad, :]
        return dA_prev
    if mistake == "unpad_whole":
        return dA_prev_pad[:, pad:-pad, pad:-pad, :]
    if mistake == "unpad_none":
        return dA_prev_pad
    if mistake == "unpad_corner":
        return dA_prev_pad[:, :n_H_prev, :n_W_prev, :]
    return dA_prev_pad[:, pad:pad + n_H_prev, pad:pad + n_W_prev, :]


def conv_backward(dZ, cache, mistake=None):
    A_prev, W, b, hparameters = cache
    m, f, n_C, pad, n_H, n_W, (s_h, s_w) = _conv_sizes(A_prev, W, hparameters, mistake)
    n_H, n_W = dZ.shape[1:3]
    A_prev_pad = zero_pad(A_prev, pad)
    dA_prev_pad = np.zeros(A_prev_pad.shape)
    dA_into = np.zeros(A_prev.shape) if mistake == "dA_unpadded" else dA_prev_pad
    a_from = A_prev if mistake == "dW_from_unpadded" else A_prev_pad
    dW, db = np.zeros(W.shape), np.zeros((1, 1, 1, n_C))
    for i in range(m):
        if mistake == "dW_reset_per_example":
            dW = np.zeros(W.shape)
        if mistake == "db_reset_per_example":
            db = np.zeros((1, 1, 1, n_C))
        for h, w, c in np.ndindex(n_H, n_W, n_C):
            vert, horiz, g = slice(h * s_h, h * s_h + f), slice(w * s_w, w * s_w + f), dZ[i, h, w, c]
            if mistake == "dA_assigned":
                dA_into[i, vert, horiz, :] = W[:, :, :, c] * g
            else:
                dA_into[i, vert, horiz, :] += W[:, :, :, c] * g
            if mistake == "dW_assigned":
                dW[:, :, :, c] = a_from[i, vert, horiz, :] * g
            else:
                dW[:, :, :, c] += a_from[i, vert, horiz, :] * g
            if mistake == "db_assigned":
                db[:, :, :, c] = g
            else:
                db[:, :, :, c] += g
    if mistake == "dA_unpadded":
        return dA_into, dW, db
    return _unpad(dA_prev_pad, pad, A_prev.shape[1], A_prev.shape[2], mistake), dW, db


# ----------------------------------------------------------------------------- pool
def create_mask_from_window(x, mistake=None, ties="all"):
    target = np.min(x) if mistake == "mask_min" else np.max(x)
    mask = (x == target).astype(np.float64)
    if ties == "first":
        first = np.zeros(x.shape)
        first[np.unravel_index(np.argmax(mask), x.shape)] = 1.0
        return first
    return mask / np.sum(mask) if ties == "split" else mask


def distribute_value(dz, shape, mistake=None):
    n_H, n_W = shape
    divisor = {"divisor_n_H": n_H, "divisor_none": 1, "divisor_sum": n_H + n_W,
               "divisor_then_times": n_H / n_W}.get(mistake, n_H * n_W)
    return np.ones(shape) * (dz / divisor)


def _pool_mistake(mode, mistake):
    """(the mode computed, the mistake in effect): a key ending in ":max" or ":average" is made in that mode's
    branch only."""
    key, _, only = (mistake or "").partition(":")
    key = None if not key or only and only != mode else key
    if key == "mode_swapped":
        return {"max": "average", "average": "max"}[mode], key
    return {"mode_always_max": "max", "mode_always_average": "average"}.get(key, mode), key


def _pool_sizes(A_prev, hparameters, mistake):
    f, stride = hparameters["f"], hparameters["stride"]
    n_H, n_W = (A_prev.shape[1] - f) // stride + 1, (A_prev.shape[2] - f) // stride + 1
    return f, n_H, n_W, _steps(stride, mistake)


def pool_forward(A_prev, hparameters, mode="max", mistake=None):
    mode, mistake = _pool_mistake(mode, mistake)
    f, n_H, n_W, (s_h, s_w) = _pool_sizes(A_prev, hparameters, mistake)
    A = np.zeros((A_prev.shape[0], n_H, n_W, A_prev.shape[3]))
    for i, h, w, c in np.ndindex(*A.shape):
        window = A_prev[i, h * s_h:h * s_h + f, w * s_w:w * s_w + f, c]
        A[i, h, w, c] = np.max(window) if mode == "max" else np.mean(window)
    return A, (A_prev, hparameters)


def pool_backward(dA, cache, mode="max", mistake=None, ties="all"):
    A_prev, hparameters = cache
    mode, mistake = _pool_mistake(mode, mistake)
    f, n_H, n_W, (s_h, s_w) = _pool_sizes(A_prev, hparameters, mistake)
    dA_prev = np.zeros(A_prev.shape)
    for i, h, w, c in np.ndindex(*dA.shape):
        vert, horiz = slice(h * s_h, h * s_h + f), slice(w * s_w, w * s_w + f)
        if mode == "max":
            mask = create_mask_from_window(A_prev[i, vert, horiz, c], "mask_min" if mistake == "mask_min" else None,
                                           ties)
            share = mask * dA[i, h, w, c]
        else:
            divisor = {"average_divisor_f": "divisor_n_H", "average_divisor_none": "divisor_none"}.get(mistake)
            share = distribute_value(dA[i, h, w, c], (f, f), divisor)
        if mistake == "assigned":
            dA_prev[i, vert, horiz, c] = share
        else:
            dA_prev[i, vert, horiz, c] += share
    return dA_prev


FUNCTIONS = {"zero_pad": zero_pad, "conv_single_step": conv_single_step, "conv_forward": conv_forward,
             "conv_backward": conv_backward, "pool_forward": pool_forward, "pool_backward": pool_backward,
             "create_mask_from_window": create_mask_from_window, "distribute_value": distribute_value}
TAKE_TIES = ("pool_backward", "create_mask_from_window")  # the functions whose max mask has a tie policy


def run(name: str, args: tuple, mistake: str | None, ties: str = "all"):
    """The notebook function ``name`` on ``args`` with ``mistake`` injected (None: correct) and, for the max
    mask, the tie policy ``ties``."""
    extra = {"ties": ties} if name in TAKE_TIES else {}
    return FUNCTIONS[name](*args, mistake=mistake, **extra)


# ----------------------------------------------------------------------------- the catalogue
STRIDE = (
    Mistake("stride_ignored", "stride_ignored", "the windows start at h and w instead of h * stride and w * stride, "
            "so with stride > 1 they are in the wrong place: write vert_start = h * stride and horiz_start = "
            "w * stride.", r"(vert|horiz)_start\s*=\s*[hw]\s*(#.*)?$|\[\s*[hw]\s*:\s*[hw]\s*\+\s*f\b"),
    Mistake("stride_ignored_rows", "stride_ignored", "the windows start at row h instead of h * stride, so with "
            "stride > 1 they are in the wrong place: write vert_start = h * stride.",
            r"vert_start\s*=\s*h\s*(#.*)?$|\[\s*h\s*:\s*h\s*\+\s*f\b"),
    Mistake("stride_ignored_columns", "stride_ignored", "the windows start at column w instead of w * stride, so "
            "with stride > 1 they are in the wrong place: write horiz_start = w * stride.",
            r"horiz_start\s*=\s*w\s*(#.*)?$|\[\s*w\s*:\s*w\s*\+\s*f\b"),
)
MODE = (
    Mistake("mode_swapped", "mode_swapped", 'mode "max" and "average" are exchanged: "max" takes the window\'s '
            'maximum, "average" its mean.', r"mode\s*==\s*['\"](max|average)['\"]"),
    Mistake("mode_always_max", "mode_swapped", 'mode is ignored: "average" is computed as "max". Branch on it: '
            'if mode == "max": ... elif mode == "average": ...'),
    Mistake("mode_always_average", "mode_swapped", 'mode is ignored: "max" is computed as "average". Branch on it: '
            'if mode == "max": ... elif mode == "average": ...'),
)

CATALOGUE = {
    "zero_pad": (
        Mistake("pad_all_axes", "shape", "every axis is padded, m and n_C too: pad only the height and width, "
                "np.pad(X, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode='constant').", r"np\.pad\(\s*X\s*,\s*pad"),
        Mistake("pad_one_side", "shape", "only one side of each axis is padded: pad both, (pad, pad)."),
        Mistake("not_padded", "pad_ignored", "X is returned unpadded: return np.pad(X, ((0, 0), (pad, pad), "
                "(pad, pad), (0, 0)), mode='constant')."),
    ),
    "conv_single_step": (
        Mistake("bias_missing", "bias_missing", "Z is sum(a_slice_prev * W) without b: add it, "
                "Z = np.sum(a_slice_prev * W) + b.item()."),
        Mistake("bias_array", "shape", "the bias is added as an array of shape (1, 1, 1), so Z is an array, not a "
                "number: add b.item() (float(b) raises TypeError from numpy 2.4)."),
    ),
    "conv_forward": (
        *STRIDE,
        Mistake("slices_unpadded", "pad_ignored", "the windows are cut from A_prev, not from the padded "
                "A_prev_pad: a_slice_prev = A_prev_pad[i, vert_start:vert_end, horiz_start:horiz_end, :] "
                "(or a_prev_pad = A_prev_pad[i]).", r"=\s*A_prev\s*\[\s*i\b"),
        Mistake("no_pad_valid_size", "pad_ignored", "the input is not padded and the output size leaves pad out: "
                "pad with zero_pad(A_prev, pad) and take n_H = floor((n_H_prev - f + 2 * pad) / stride) + 1."),
        Mistake("bias_missing", "bias_missing", "Z has no bias: each output adds b[:, :, :, c] (conv_single_step "
                "adds it)."),
    ),
    "conv_backward": (
        *STRIDE,
        Mistake("dW_from_unpadded", "pad_ignored", "dW takes its a_slice from A_prev, not from the padded "
                "A_prev_pad: a_slice = a_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :].",
                r"a_slice\w*\s*=\s*A_prev\s*\["),
        Mistake("dA_unpadded", "pad_ignored", "the gradient is added into dA_prev, not into the padded "
                "dA_prev_pad (the windows are positions of the padded input): add into da_prev_pad, then cut.",
                r"dA_prev\s*\[.*\]\s*\+="),
        Mistake("unpad_loop", "unpad", "dA_prev is cut with [pad:-pad], which is empty when pad = 0 (-0 is 0), so "
                "the assignment raises: cut da_prev_pad[pad:pad + n_H_prev, pad:pad + n_W_prev, :] instead.",
                r"\[\s*pad\s*:\s*-\s*pad"),
        Mistake("unpad_whole", "unpad", "dA_prev is cut with [pad:-pad], which is empty when pad = 0 (-0 is 0): "
                "cut [:, pad:pad + n_H_prev, pad:pad + n_W_prev, :] instead.", r"\[\s*:\s*,\s*pad\s*:\s*-\s*pad"),
        Mistake("unpad_none", "unpad", "dA_prev is the padded gradient, not cut: return "
                "dA_prev_pad[:, pad:pad + n_H_prev, pad:pad + n_W_prev, :]."),
        Mistake("unpad_corner", "unpad", "dA_prev is cut from the top-left corner of the padded gradient: the input "
                "sits pad rows and columns in, [:, pad:pad + n_H_prev, pad:pad + n_W_prev, :].",
                r"\[\s*:\s*,\s*:\s*n_H_prev\s*,\s*:\s*n_W_prev"),
        Mistake("dA_assigned", "assign_not_add", "dA_prev's windows are set with = where the notebook adds with +=: "
                "where windows overlap (and across the filters c) the earlier terms are lost. Write "
                "da_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :] += W[:, :, :, c] * dZ[i, h, w, c].",
                r"da_prev_pad\s*\[.*\]\s*=[^=]"),
        Mistake("dW_assigned", "assign_not_add", "dW[:, :, :, c] is set with = where the notebook adds with +=: it "
                "keeps the last window only. Write dW[:, :, :, c] += a_slice * dZ[i, h, w, c].",
                r"dW\s*\[.*\]\s*=[^=]"),
        Mistake("db_assigned", "assign_not_add", "db[:, :, :, c] is set with = where the notebook adds with +=: it "
                "keeps the last dZ only. Write db[:, :, :, c] += dZ[i, h, w, c].", r"db\s*\[.*\]\s*=[^=]"),
        Mistake("dW_reset_per_example", "batch_only_last", "dW is set to zeros inside the loop over the examples "
                "i, so it keeps the last example only: create it once, before the loop.",
                r"^\s{8,}dW\s*=\s*np\.zeros"),
        Mistake("db_reset_per_example", "batch_only_last", "db is set to zeros inside the loop over the examples "
                "i, so it keeps the last example only: create it once, before the loop.",
                r"^\s{8,}db\s*=\s*np\.zeros"),
    ),
    "pool_forward": (*STRIDE, *MODE),
    "pool_backward": (
        *STRIDE, *MODE,
        *(Mistake(key, "assign_not_add", f"dA_prev's windows are set with = where the notebook adds with +={where}: "
                  "where windows overlap (f > stride) the earlier terms are lost. Write "
                  "dA_prev[i, vert_start:vert_end, horiz_start:horiz_end, c] += ...", r"dA_prev\s*\[.*\]\s*=[^=]")
          for key, where in (("assigned", ""), ("assigned:max", ' (mode "max")'),
                             ("assigned:average", ' (mode "average")'))),
        Mistake("average_divisor_f", "average_divisor", "the average-pool gradient is divided by f, not by the "
                "window's f * f entries: distribute_value(da, (f, f)) gives each da / (f * f)."),
        Mistake("average_divisor_none", "average_divisor", "the average-pool gradient is not divided: each entry of "
                "the window gets da / (f * f), distribute_value(da, (f, f))."),
        Mistake("mask_min", "mask", "the mask marks the window's minimum: it marks the maximum, "
                "x == np.max(x).", r"np\.(a?min)\s*\("),
    ),
    "create_mask_from_window": (
        Mistake("mask_min", "mask", "the mask marks the minimum: it marks the maximum, mask = (x == np.max(x)).",
                r"np\.(a?min)\s*\("),
    ),
    "distribute_value": (
        Mistake("divisor_n_H", "average_divisor", "dz is divided by n_H only: each of the n_H * n_W entries gets "
                "dz / (n_H * n_W)."),
        Mistake("divisor_none", "average_divisor", "dz is not divided: each of the n_H * n_W entries gets "
                "dz / (n_H * n_W)."),
        Mistake("divisor_sum", "average_divisor", "dz is divided by n_H + n_W: each of the n_H * n_W entries gets "
                "dz / (n_H * n_W)."),
        Mistake("divisor_then_times", "average_divisor", "dz / n_H * n_W is (dz / n_H) * n_W: / and * go left to "
                "right, so dz is divided by n_H and multiplied by n_W. Write dz / (n_H * n_W).",
                r"/\s*n_H\s*\*\s*n_W"),
    ),
}
