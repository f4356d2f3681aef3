"""tinygrad_cnn: a small, readable autograd on numpy, built around convolutional networks (NHWC)."""

from . import functional, io, nn, optim, steps
from .gradcheck import GradcheckError, gradcheck
from .io import load, save
from .parallel import get_num_threads, set_num_threads
from .tensor import Tensor, get_default_dtype, is_grad_enabled, no_grad, set_default_dtype
from .viz import draw_graph, save_graph

__all__ = [
    "Tensor", "no_grad", "is_grad_enabled", "set_default_dtype", "get_default_dtype",
    "gradcheck", "GradcheckError", "functional", "draw_graph", "save_graph",
    "nn", "optim", "io", "save", "load", "steps", "set_num_threads", "get_num_threads",
]
__version__ = "0.1.0"
