"""The catalogue of learners' bugs for tests/test_check_catalogue.py: (tag check must report, style, function,
the text of the correct solution (tests/check_solutions.py) and what the learner wrote instead). At least one bug
per tag (dtype too, a tag beyond the issue's table), each in more than one style.
"""

BUGS = [
    # crash: the function raises
    ("crash", "loops", "conv_single_step", "Z = Z + b.item()", "Z = Z + float(b)"),
    ("crash", "slicing", "zero_pad", "X_pad[:, pad:pad + n_H, pad:pad + n_W, :] = X",
     "X_pad[:, pad:pad + n_H, pad:pad + n_W, :] = X[:, :, :, :, None]"),
    ("crash", "einsum", "conv_forward", '"mhwcij,ijcn->mhwn"', '"mhwcij,ijcn->mhwnc"'),
    # shape: a wrong output shape
    ("shape", "loops", "conv_forward", "n_H = int(((n_H_prev - f + 2*pad) / stride) + 1)",
     "n_H = int(((n_H_prev - f + 2*pad) / stride))"),
    ("shape", "einsum", "conv_backward", 'db = np.einsum("mhwn->n", dZ).reshape(1, 1, 1, -1)',
     'db = np.einsum("mhwn->n", dZ)'),
    ("shape", "slicing", "conv_single_step", "return float(np.sum(a_slice_prev * W) + np.sum(b))",
     "return np.sum(a_slice_prev * W) + b"),
    ("shape", "einsum", "zero_pad", "np.pad(X, [(0, 0), (pad, pad), (pad, pad), (0, 0)])", "np.pad(X, pad)"),
    # stride_ignored: windows at h, w
    ("stride_ignored", "loops", "pool_backward", "vert_start = h * stride", "vert_start = h"),
    ("stride_ignored", "slicing", "conv_forward",
     "taps = A_pad[:, kh:kh + stride * (n_H - 1) + 1:stride, kw:kw + stride * (n_W - 1) + 1:stride, :]",
     "taps = A_pad[:, kh:kh + n_H, kw:kw + n_W, :]"),
    ("stride_ignored", "einsum", "pool_forward", 'win = windows(A_prev, hparameters["f"], hparameters["stride"])',
     'win = windows(A_prev, hparameters["f"], 1)[:, :(A_prev.shape[1] - hparameters["f"]) // hparameters["stride"] '
     '+ 1, :(A_prev.shape[2] - hparameters["f"]) // hparameters["stride"] + 1]'),
    ("stride_ignored", "loops", "conv_backward", "vert_start = h * stride", "vert_start = h"),
    # pad_ignored: not padded (forward), gradient not through the padded array (backward)
    ("pad_ignored", "loops", "conv_forward", "a_slice_prev = a_prev_pad[vert_start:vert_end",
     "a_slice_prev = A_prev[i, vert_start:vert_end"),
    ("pad_ignored", "einsum", "conv_forward", "win = windows(zero_pad(A_prev, pad), W.shape[0], stride)",
     "win = windows(A_prev, W.shape[0], stride)"),
    ("pad_ignored", "loops", "conv_backward", "a_slice = a_prev_pad[vert_start:vert_end",
     "a_slice = A_prev[i, vert_start:vert_end"),
    # unpad: dA_prev cut wrongly from the padded gradient
    ("unpad", "loops", "conv_backward", "da_prev_pad[pad:pad + n_H_prev, pad:pad + n_W_prev, :]",
     "da_prev_pad[pad:-pad, pad:-pad, :]"),
    ("unpad", "slicing", "conv_backward", "dA_pad[:, pad:pad + n_H_prev, pad:pad + n_W_prev, :]",
     "dA_pad[:, pad:-pad, pad:-pad, :]"),
    ("unpad", "einsum", "conv_backward", "dA_pad[:, pad:pad + n_H_prev, pad:pad + n_W_prev, :]",
     "dA_pad[:, :n_H_prev, :n_W_prev, :]"),
    # assign_not_add: = where the notebook adds
    ("assign_not_add", "loops", "conv_backward", "da_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :] +=",
     "da_prev_pad[vert_start:vert_end, horiz_start:horiz_end, :] ="),
    ("assign_not_add", "slicing", "pool_backward", "dA_prev[:, vert, horiz, :] += g / (f * f)",
     "dA_prev[:, vert, horiz, :] = g / (f * f)"),
    ("assign_not_add", "loops", "pool_backward", "horiz_start:horiz_end, c] += np.multiply(mask",
     "horiz_start:horiz_end, c] = np.multiply(mask"),
    # batch_only_last: dW/db keep one example
    ("batch_only_last", "loops", "conv_backward", "        a_prev_pad = A_prev_pad[i]\n",
     "        a_prev_pad = A_prev_pad[i]\n        dW = np.zeros((f, f, n_C_prev, n_C))\n"),
    ("batch_only_last", "einsum", "conv_backward", 'db = np.einsum("mhwn->n", dZ).reshape(1, 1, 1, -1)',
     'db = np.einsum("hwn->n", dZ[-1]).reshape(1, 1, 1, -1)'),
    # bias_missing: Z without b
    ("bias_missing", "loops", "conv_single_step", "Z = Z + b.item()", "Z = Z"),
    ("bias_missing", "einsum", "conv_forward", 'Z = np.einsum("mhwcij,ijcn->mhwn", win, W) + b.reshape(1, 1, 1, -1)',
     'Z = np.einsum("mhwcij,ijcn->mhwn", win, W)'),
    # average_divisor: the average-pool gradient divided by the wrong count
    ("average_divisor", "loops", "distribute_value", "average = dz / (n_H * n_W)", "average = dz / n_H"),
    ("average_divisor", "slicing", "pool_backward", "dA_prev[:, vert, horiz, :] += g / (f * f)",
     "dA_prev[:, vert, horiz, :] += g / f"),
    ("average_divisor", "einsum", "pool_backward", "dA[..., None, None] / (f * f)", "dA[..., None, None]"),
    # mode_swapped: max and average exchanged, or mode ignored
    ("mode_swapped", "loops", "pool_forward", "A[i, h, w, c] = np.max(a_prev_slice)\n"
     '                    elif mode == "average":\n                        A[i, h, w, c] = np.mean(a_prev_slice)',
     "A[i, h, w, c] = np.mean(a_prev_slice)\n"
     '                    elif mode == "average":\n                        A[i, h, w, c] = np.max(a_prev_slice)'),
    ("mode_swapped", "einsum", "pool_forward", 'win.max(axis=(4, 5)) if mode == "max" else win.mean(axis=(4, 5))',
     "win.max(axis=(4, 5))"),
    ("mode_swapped", "slicing", "pool_backward", 'if mode == "max":\n                window',
     'if mode == "average":\n                window'),
    # mask: the mask does not mark the window's maximum
    ("mask", "loops", "create_mask_from_window", "mask = (x == np.max(x))", "mask = (x == np.min(x))"),
    ("mask", "einsum", "create_mask_from_window", "np.unravel_index(np.argmax(x), x.shape)",
     "np.unravel_index(np.argmax(x), x.shape[::-1])"),
    ("mask", "slicing", "pool_backward", "mask = window == window.max(axis=(1, 2), keepdims=True)",
     "mask = window == window.min(axis=(1, 2), keepdims=True)"),
    # mutates_input: the function changes its arguments
    ("mutates_input", "loops", "create_mask_from_window", "mask = (x == np.max(x))",
     "x -= np.max(x)\n    mask = x == 0"),
    ("mutates_input", "slicing", "conv_forward", "A_pad = zero_pad(A_prev, pad)",
     "A_pad = zero_pad(A_prev, pad)\n    A_prev[...] = 0"),
    # dtype: not float64
    ("dtype", "einsum", "distribute_value", "return dz / np.prod(shape) * np.ones(shape)",
     "return (dz / np.prod(shape) * np.ones(shape)).astype(np.float32)"),
    ("dtype", "slicing", "zero_pad", "X_pad = np.zeros((m, n_H + 2 * pad, n_W + 2 * pad, n_C))",
     "X_pad = np.zeros((m, n_H + 2 * pad, n_W + 2 * pad, n_C), dtype=np.float32)"),
    # wrong: values no known mistake gives (the term-level diagnosis)
    ("wrong", "loops", "conv_backward", "        for h in range(n_H):\n", "        for h in range(n_H - 1):\n"),
    ("wrong", "slicing", "conv_backward", "dA_pad[:, rows, cols, :] += dZ @ W[kh, kw].T",
     "dA_pad[:, rows, cols, :] += dZ @ W[kw, kh].T"),
    ("wrong", "einsum", "pool_backward", "share = np.broadcast_to(dA[..., None, None] / (f * f), win.shape)",
     "share = np.broadcast_to(dA[..., None, None] / (f * f), win.shape).copy()\n        share[..., 0, 0] = 0"),
    ("wrong", "loops", "conv_forward", "weights = W[:, :, :, c]", "weights = W[::-1, :, :, c]"),
]
