"""The numpy kernels of the CNN ops (NHWC): forward and backward of pad, conv2d (dilation, groups),
conv_transpose2d, max and average pooling, batch norm and the dropout mask, and their argument checks.

Kernels know no Tensor: they take and return numpy arrays. Each forward returns (out, saved) (batch_norm_forward
also the updated running statistics) and the matching backward takes the output gradient and saved. The ops
(ops/cnn.py) and the notebook API (steps.py) import what they use from the modules themselves:

    checks.py     argument normalizing and checks (the same messages everywhere), shape arithmetic
    blocks.py     the batch in blocks (cache-sized for the copies, bounded im2col for conv); the copies' threads
    pad.py        pad_forward / unpad, the window views of a padded batch
    conv.py       conv2d: the canonical im2col + GEMM forward and GEMM + col2im backward first, in the notebook's
                  names; then the batch in blocks behind one dispatch (conv_path); then conv_transpose2d
    conv_fast.py  conv2d's measured fast paths that conv_path may pick: grouped GEMMs, dA_prev as a conv,
                  channels-first col2im
    conv_winograd.py   the fast path for 3x3 stride-1 convs: Winograd F(2x2, 3x3), 16 batched GEMMs
    conv_depthwise.py  the fast path for one filter per channel: shift-and-accumulate, no im2col
    pool.py       max and average pooling
    norm.py       batch norm, the dropout mask

This file only maps the package (no re-exports): an import names the module a kernel lives in.
May import: numpy, the standard library and the kernel modules listed above, nothing else of the package.
"""
