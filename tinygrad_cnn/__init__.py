"""tinygrad_cnn: a small, readable autograd on numpy, built around convolutional networks (NHWC)."""

from . import check, data, functional, interop, io, nn, optim, plot, steps  # check is callable: check(fn)
from .anomaly import AnomalyError, detect_anomaly, is_anomaly_enabled
from .autograd import grad
from .explain import Explanation, explain
from .explorer import explore, save_html
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .io import load, save
from .profile import Profile, profile  # the function profile() is tinygrad_cnn.profile (its module: sys.modules)
from .seeding import manual_seed
from .tensor import (
    Tensor,
    enable_grad,
    get_default_dtype,
    is_grad_enabled,
    no_grad,
    set_default_dtype,
    set_grad_enabled,
)
from .threads import apply_default as _apply_default_threads
from .threads import get_num_threads, set_num_threads
from .viz import draw_graph, save_graph

__all__ = [
    "Tensor", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "set_default_dtype", "get_default_dtype",
    "manual_seed",
    "grad", "gradcheck", "gradgradcheck", "GradcheckError", "functional", "draw_graph", "save_graph",
    "nn", "optim", "io", "interop", "save", "load", "steps", "data", "plot",
    "explain", "Explanation", "detect_anomaly", "is_anomaly_enabled", "AnomalyError",
    "set_num_threads", "get_num_threads", "check", "profile", "Profile", "explore", "save_html",
]
__version__ = "0.1.0"
_apply_default_threads()  # set_num_threads(TINYGRAD_CNN_NUM_THREADS) when it is set; else BLAS keeps its own
