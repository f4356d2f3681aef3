"""What a PyTorch user writes, and what to write here: keyword spellings, positional arguments, attribute names.

* ``@pytorch_args("conv2d", torch=(...))`` on a public function, method or layer: a keyword PyTorch spells
  differently (``padding=``, ``kernel_size=``, ``dim=``, ``keepdim=``, ...) raises TypeError naming ours (``pad=``,
  ``f=``, ``axis=``, ``keepdims=``); an argument PyTorch has and we do not (``ceil_mode=``, ``inplace=``, ...) says
  so; any other unknown keyword names the arguments the function takes. More positional arguments than ours take
  raise TypeError naming what PyTorch's would have meant and the keyword to write (``Conv2d(4, 8, 3, 1, 2, 2)``:
  PyTorch's 6th is dilation, so write ``dilation=2``). The error comes from the public name, never from the mixin
  class that defines the method. The check costs one comparison per call (and a call of the wrapper).
* ``keyword_error``: the same keyword error for a hot op that takes ``**pytorch_keywords`` instead of a wrapper
  (relu, reshape, transpose, ...); ``name_methods_after(Tensor)``: Python's own argument errors of every method
  Tensor inherits name ``Tensor.<name>``.
* ``Unavailable``: a class attribute for a PyTorch-only name (``x.dim()``, ``x.cpu()``, ``x.retain_grad()``,
  ``x.add_(y)``, ...); reading it on a tensor raises AttributeError saying what to write. ``add_unavailable(cls)``
  puts one on ``cls`` for each name of ATTRIBUTES and IN_PLACE. (Descriptors, not ``__getattr__``: a class that
  defines ``__getattr__`` pays for it on every attribute access.)
* ``MODULE_ATTRIBUTES``: the same for a Module's PyTorch-only names (``model.to(device)``, ``model.double()``),
  read by ``Module.__getattr__``.
* ``Size``: the int ``x.size`` returns (numpy's meaning, the number of elements); calling it, PyTorch's
  ``x.size()``, raises TypeError pointing to ``x.shape``.

Imports nothing of the package.
"""

from __future__ import annotations

import functools
import inspect
import types

# PyTorch's keyword -> ours, where the meaning is the same
SPELLINGS = {
    "padding": "pad", "kernel_size": "f", "dim": "axis", "keepdim": "keepdims", "dims": "axes",
    "num_features": "n_C", "negative_slope": "slope", "weight": "W", "bias": "b", "input": "x",
    "target": "targets", "min": "low", "max": "high", "gradient": "grad", "ddof": "correction",
}
# PyTorch's keywords with nothing like them here, and why
MISSING = {
    "inplace": "there are no in-place ops here (a graph would silently change)",
    "ceil_mode": "windows always fit (floor), as the course's formula",
    "count_include_pad": "pad first with pad2d and pool the padded input",
    "return_indices": "take argmax of the windows yourself",
    "padding_mode": "pad2d pads with a constant value",
    "affine": "gamma and beta are always learned",
    "track_running_stats": "running statistics are always kept",
    "device": "numpy runs on the CPU only",
    "amsgrad": "only plain Adam is implemented",
    "maximize": "negate the loss instead",
    "foreach": "there is one implementation",
    "fused": "there is one implementation",
    "label_smoothing": "mix the one-hot targets yourself: (1 - e) * one_hot + e / C",
    "ignore_index": "drop those rows before the loss",
    "retain_graph": "the graph is always kept: backward() can run again; drop retain_graph=",
    "unbiased": "write correction=1 (unbiased, the default) or correction=0",
    "size_average": "write reduction=",
    "reduce": "write reduction=",
    "error_if_nonfinite": "check np.isfinite on the returned norm",
    "memory_format": "data is always a plain numpy array",
}

ORDINALS = {1: "1st", 2: "2nd", 3: "3rd"}


def _ordinal(n: int) -> str:
    return ORDINALS.get(n, f"{n}th")


def _shown(value) -> str:
    """A value as it would be written in a call: numbers, strings, tuples and None as they are, else '...'."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    if isinstance(value, tuple) and all(isinstance(v, (bool, int, float)) for v in value):
        return repr(value)
    return "..."


def _as_arguments(value) -> str:
    """A keyword's value written as positional arguments: (3, 2) -> '3, 2', 4 -> '4'."""
    if isinstance(value, (tuple, list)):
        return ", ".join(_shown(v) for v in value)
    return _shown(value)


class _Signature:
    """What pytorch_args needs to know about the decorated function."""

    def __init__(self, fn, name: str, torch: tuple, spellings: dict, missing: dict, note: str):
        params = list(inspect.signature(fn).parameters.values())
        self.bound = 1 if params and params[0].name in ("self", "cls") else 0
        own = params[self.bound:]
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self.positional = [p.name for p in own if p.kind in kinds]
        self.varargs = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in own)
        self.varkw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in own)
        self.names = frozenset(p.name for p in own if p.kind not in (inspect.Parameter.VAR_POSITIONAL,
                                                                      inspect.Parameter.VAR_KEYWORD))
        self.keyword_only = [p.name for p in own if p.kind is inspect.Parameter.KEYWORD_ONLY]
        self.star = [f"*{p.name}" for p in own if p.kind is inspect.Parameter.VAR_POSITIONAL]
        self.name, self.torch, self.spellings = name, torch, {**SPELLINGS, **spellings}
        self.missing, self.note = {**MISSING, **missing}, note
        self.limit = len(self.positional) + self.bound

    def keyword_error(self, kwargs: dict) -> TypeError:
        bad = next(k for k in kwargs if k not in self.names)
        ours = self.spellings.get(bad)
        if ours in self.names:
            return TypeError(f"{self.name}: {bad}= is PyTorch's spelling; here it is {ours}= "
                             f"(write {ours}={_shown(kwargs[bad])})")
        if bad in self.missing:
            why = self.missing[bad].replace("{args}", _as_arguments(kwargs[bad]))
            return TypeError(f"{self.name}: {bad}= (PyTorch's) is not supported here: {why}")
        takes = ", ".join(self.positional + self.star + self.keyword_only) or "nothing"
        return TypeError(f"{self.name}() got an unexpected keyword argument {bad!r}; it takes: {takes}")

    def positional_error(self, args: tuple) -> TypeError:
        given, n = args[self.bound:], len(self.positional)
        what = f"{self.name}: takes at most {n} positional argument{'s' if n != 1 else ''}"
        what += f" ({', '.join(self.positional)})" if n else ""
        what += f", got {len(given)}"
        if self.note:
            return TypeError(f"{what}. {self.note}")
        if n >= len(self.torch):
            extra = ", ".join(_shown(v) for v in given[n:])
            others = ", ".join(self.keyword_only) or "there are none"
            return TypeError(f"{what}: the extra ones ({extra}) have no place here. Keyword-only: {others}")
        theirs = self.torch[n]
        ours = theirs if theirs in self.names else self.spellings.get(theirs)
        if ours in self.names:
            call = ", ".join([*(_shown(v) for v in given[:n]), f"{ours}={_shown(given[n])}"])
            return TypeError(f"{what}. The rest are keyword-only, because PyTorch's order differs here: its "
                             f"{_ordinal(n + 1)} is {theirs}. Write them by name, e.g. {self.name}({call})")
        why = f": {self.missing[theirs]}" if theirs in self.missing else ""
        return TypeError(f"{what}. PyTorch's {_ordinal(n + 1)} is {theirs}, which is not supported here{why}")


def pytorch_args(name: str, torch: tuple = (), *, missing: dict | None = None, note: str = "", **spellings):
    """Decorator: PyTorch's keyword spellings and extra positional arguments raise TypeError saying what to write.

    name: the public name errors use (``"conv2d"``, ``"Conv2d"``). torch: PyTorch's positional parameters of the
    same function in order, not counting ``self``/``input`` (``("in_channels", "out_channels", "kernel_size",
    ...)``). missing: PyTorch's arguments this function lacks -> why (beyond MISSING). note: the whole advice for
    extra positional arguments, where PyTorch's order is too different to name one (batch_norm2d). spellings:
    PyTorch keyword -> ours, beyond SPELLINGS, for this function.
    """
    def decorate(fn):
        sig = _Signature(fn, name, tuple(torch), spellings, missing or {}, note)
        limit, names, varargs, varkw = sig.limit, sig.names, sig.varargs, sig.varkw

        @functools.wraps(fn)
        def checked(*args, **kwargs):
            if len(args) > limit and not varargs:
                raise sig.positional_error(args)
            if kwargs and not varkw and not names.issuperset(kwargs):
                raise sig.keyword_error(kwargs)
            return fn(*args, **kwargs)
        return checked
    return decorate


def keyword_error(name: str, method, keywords: dict, *, missing: dict | None = None, **spellings) -> TypeError:
    """The TypeError ``pytorch_args`` raises for an unknown keyword, for a method that takes ``**pytorch_keywords``
    instead of being decorated: a hot op (relu, reshape) then pays no wrapper, only Python's empty dict, and checks
    ``if pytorch_keywords: raise keyword_error(...)``. missing/spellings: as ``pytorch_args``; a missing text may
    say ``{args}``, the value written as positional arguments (``reshape(shape=(3, 2))``: '3, 2')."""
    return _Signature(method, name, (), spellings, missing or {}, "").keyword_error(keywords)


def name_methods_after(cls) -> None:
    """Python names a function by its ``__qualname__`` in its own argument errors (``missing 1 required positional
    argument``, ``takes 1 positional argument``): every public method (and operator) ``cls`` inherits from its mixins
    is named ``cls.<name>`` (``Tensor.relu``), never the mixin that defines it (``ElementwiseOps.relu``). Costs
    nothing per call."""
    for klass in cls.__mro__[1:-1]:
        for name, attr in vars(klass).items():
            if name.startswith("_") and not name.endswith("__"):
                continue
            fn = getattr(attr, "__func__", attr)
            while isinstance(fn, types.FunctionType):  # a pytorch_args wrapper and the function it wraps
                fn.__qualname__ = f"{cls.__name__}.{name}"
                fn = getattr(fn, "__wrapped__", None)


# ----------------------------------------------------------------------------- attributes PyTorch has
NO_IN_PLACE = ("Tensor has no in-place ops ({name}): write x = x.{base}(...) (or the operator) for a new tensor; "
               "to change a parameter's values, p.data = p.data - lr * p.grad")
ATTRIBUTES = {
    "dim": "x.ndim (numpy's name), a property: no parentheses",
    "numel": "x.size (numpy's name: the number of elements), a property: no parentheses",
    "nelement": "x.size (the number of elements), a property",
    "float": "x.astype(np.float32) (in the graph; float32 is the default dtype already)",
    "double": "x.astype(np.float64) (in the graph), or set_default_dtype(np.float64) before building tensors",
    "half": "tensors hold float32 or float64 only: x.astype(np.float32)",
    "long": "tensors hold floats only; for integer labels use a numpy array: x.data.astype(int)",
    "int": "tensors hold floats only; for integers use a numpy array: x.data.astype(int)",
    "bool": "comparisons give numpy bool arrays already: x > 0",
    "type": "x.dtype (a numpy dtype); x.astype(np.float64) converts",
    "cpu": "numpy runs on the CPU only: drop .cpu()",
    "cuda": "numpy runs on the CPU only: drop .cuda()",
    "to": "numpy runs on the CPU only: drop .to(device); for a dtype, x.astype(np.float64)",
    "device": "numpy runs on the CPU only",
    "is_cuda": "numpy runs on the CPU only",
    "retain_grad": "interior tensors keep their .grad after backward() already: drop retain_grad()",
    "grad_fn": "x.op (the op's name), x.parents (its inputs) and x.op_label",
    "clone": "x * 1 stays in the graph; x.detach() is a leaf sharing the data; copy.deepcopy(x) copies a leaf",
    "contiguous": "numpy handles strides: drop .contiguous()",
    "clamp": "x.clip(low, high)",
    "clamp_min": "x.clip(low=...)",
    "clamp_max": "x.clip(high=...)",
    "amax": "x.max(axis) (numpy's max: the values only)",
    "amin": "x.min(axis) (numpy's min: the values only)",
    "cat": "Tensor.concatenate(tensors, axis)",
    "mm": "x @ y",
    "t": "x.T",
    "view_as": "x.reshape(other.shape)",
    "reshape_as": "x.reshape(other.shape)",
    "expand": "broadcasting does it: x * Tensor.ones(shape)",
    "norm": "(x * x).sum().sqrt()",
    "square": "x * x",
    "pow": "x ** e",
    "add": "x + y", "sub": "x - y", "mul": "x * y", "div": "x / y", "neg": "-x",
    "new_zeros": "Tensor.zeros(*shape)", "new_ones": "Tensor.ones(*shape)",
    "data_ptr": "x.data (a numpy array)",
    "repeat": "Tensor.concatenate([x] * n, axis) (in the graph)",
    "chunk": "slices: x[:, :k], x[:, k:] (each in the graph)",
    "split": "slices: x[:, :k], x[:, k:] (each in the graph)",
    "masked_fill": "x * ~mask + np.where(mask, value, 0.0), mask a numpy bool array (value may be -np.inf)",
    "where": ("x * mask + y * ~mask, mask a numpy bool array (x and y finite: inf * 0 is NaN; with -inf use "
              "masked_fill's form)"),
    "all": "(x.data != 0).all() (a numpy array; comparisons give numpy bools already)",
    "any": "(x.data != 0).any() (a numpy array; comparisons give numpy bools already)",
    "prod": "not an op here: np.prod(x.data, axis) outside the graph",
    "cumsum": "not an op here: np.cumsum(x.data, axis) outside the graph",
    "mT": "x.swapaxes(-2, -1)",
}

# a Module's PyTorch-only names (Module.__getattr__ reads this when normal lookup fails)
MODULE_ATTRIBUTES = {
    "to": "numpy runs on the CPU only: drop .to(device); for a dtype, build the layers with dtype=",
    "cuda": ATTRIBUTES["cuda"], "cpu": ATTRIBUTES["cpu"], "half": ATTRIBUTES["half"],
    "double": "build the layers with dtype=np.float64, or call set_default_dtype(np.float64) before building them",
    "float": "layers take the default dtype (float32 unless set_default_dtype); dtype= when building one",
    "type": "build the layers with dtype=np.float64 (or np.float32)",
    "register_parameter": "set the attribute: self.name = Tensor(array, requires_grad=True)",
    "add_module": "set the attribute: self.name = module (or hold several in nn.ModuleList / nn.ModuleDict)",
}


# PyTorch's in-place methods a user reaches for
IN_PLACE = ("add_", "sub_", "mul_", "div_", "pow_", "neg_", "abs_", "exp_", "log_", "sqrt_", "relu_", "sigmoid_",
            "tanh_", "clamp_", "clamp_min_", "clamp_max_", "zero_", "fill_", "copy_", "normal_", "uniform_",
            "masked_fill_", "unsqueeze_", "squeeze_", "transpose_", "t_", "resize_", "detach_", "addmm_", "lerp_")


def attribute_hint(name: str) -> str | None:
    """What to write instead of PyTorch's ``x.<name>``, or None when the name means nothing to us."""
    if name in ATTRIBUTES:
        return ATTRIBUTES[name]
    if name in IN_PLACE:
        return NO_IN_PLACE.format(name=f"x.{name}(...)", base=name[:-1])
    return None


class Unavailable:
    """A PyTorch-only attribute: reading it on an instance raises AttributeError with what to write (so ``hasattr``
    is False, as for any missing attribute); on the class it is this object."""

    def __init__(self, hint: str):
        self.hint = hint

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        raise AttributeError(f"{type(obj).__name__!r} object has no attribute {self.name!r}: {self.hint}")


def add_unavailable(cls) -> None:
    """An ``Unavailable`` on ``cls`` for each PyTorch-only name it does not define itself."""
    for name in (*ATTRIBUTES, *IN_PLACE):
        if not hasattr(cls, name):
            descriptor = Unavailable(attribute_hint(name))
            setattr(cls, name, descriptor)
            descriptor.__set_name__(cls, name)


class Size(int):
    """``x.size``: the number of elements, an int (numpy's meaning). PyTorch's ``x.size()`` is ``x.shape`` here:
    calling it raises TypeError saying so."""

    def __new__(cls, shape: tuple):
        n = 1
        for d in shape:
            n *= d
        size = super().__new__(cls, n)
        size.shape = shape
        return size

    def __call__(self, dim=None):
        which = f"; x.size({dim}) is x.shape[{dim}] = {self.shape[dim]}" if isinstance(dim, int) and \
            -len(self.shape) <= dim < len(self.shape) else ""
        raise TypeError(f"x.size is the number of elements ({int(self)}), numpy's meaning, not a method; PyTorch's "
                        f"x.size() is x.shape here = {self.shape}{which}")
