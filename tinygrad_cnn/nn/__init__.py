"""Layers for CNNs in NHWC, as ``torch.nn``: ``from tinygrad_cnn import nn; nn.Conv2d(1, 8, 3)``.

The package, bottom to top (a file imports only the ones above it in this list):

* tracing.py     ``trace_calls``: run a model once on zeros, watching each module's call; ``check_input_shape``;
                 the text of ``summary``'s table. It reads a model through Module's public methods only.
* module.py      ``Module``: parameters, buffers and children registered as attributes are set, train/eval,
                 ``state_dict``/``load_state_dict``; ``summary`` (the table of a model's layers).
* init.py        ``he_init``, ``glorot_init``: how the layers draw their weights.
* layers.py      Conv2d, ConvTranspose2d, Linear, BatchNorm2d, Dropout, MaxPool2d, AvgPool2d, GlobalAvgPool2d,
                 ReLU, LeakyReLU, Sigmoid, Tanh, Softmax, Flatten.
* containers.py  Sequential, ModuleList, ModuleDict.
* utils.py       ``clip_grad_norm_``, ``clip_grad_value_`` (``nn.utils``, as ``torch.nn.utils``); no other nn file.

This file only re-exports the public names. Imports: the files above.
"""

from . import utils  # noqa: F401 (nn.utils, as torch.nn.utils)
from .containers import ModuleDict, ModuleList, Sequential
from .init import glorot_init, he_init
from .layers import (
    AvgPool2d,
    BatchNorm2d,
    Conv2d,
    ConvTranspose2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    LeakyReLU,
    Linear,
    MaxPool2d,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from .module import Module, summary

__all__ = ["Module", "Conv2d", "ConvTranspose2d", "Linear", "BatchNorm2d", "Dropout", "MaxPool2d", "AvgPool2d",
           "GlobalAvgPool2d", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "Flatten", "Sequential",
           "ModuleList", "ModuleDict", "summary", "he_init", "glorot_init"]
