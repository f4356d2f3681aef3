"""Running a model once on zeros and watching each of its modules' calls: ``trace_calls`` and ``check_input_shape``
(which ``summary`` and interop.py use), and ``summary_text``, the table that ``nn.summary`` prints.

A model here is a Module, read through its public methods only (``named_modules``, ``named_parameters``,
``named_buffers``, ``parameters``, ``eval``, ``forward``): this file does not import module.py, so that
``Module.summary`` can use it without an import cycle (as viz/ reads a graph without importing the Tensor class).

Imports: numpy and tensor.py only.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..tensor import Tensor, set_grad_enabled

__all__ = ["check_input_shape", "trace_calls", "summary_text"]


def check_input_shape(who: str, input_shape) -> tuple:
    """``input_shape`` as a tuple of positive ints, batch axis included (``[1, 28, 28, 1]`` -> ``(1, 28, 28, 1)``).

    TypeError otherwise, its message starting with ``who``: the public function the user called (``"summary"``).
    """
    ok = isinstance(input_shape, (tuple, list)) and all(
        isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0 for n in input_shape)
    if not ok or not input_shape:
        raise TypeError(f"{who}: input_shape must be a tuple of positive ints, batch axis included "
                        f"(e.g. (1, 28, 28, 1)), got {input_shape!r}")
    return tuple(int(n) for n in input_shape)


def trace_calls(model, input_shape: tuple, record, grad: bool = False) -> None:
    """Run ``model`` once on zeros of ``input_shape``, calling ``record(module, args, out)`` after each call of the
    forward of the model or of any module below it (a module called twice is recorded twice).

    input_shape: a tuple of positive ints, batch axis included (see ``check_input_shape``). The zeros take the
    dtype of the model's first parameter (float32 if it has none). The run is in eval mode; each module's
    ``training`` flag is restored after, even when the model raises (the error propagates). grad=False runs under
    ``no_grad``; grad=True records the graph (the zeros require grad), so ``record`` can walk the ops that made a
    module's input (interop.py follows a Linear's input back to a flatten).

    How: for the run, each module's ``forward`` is shadowed by an instance attribute that calls it, then
    ``record`` (set with ``object.__setattr__``, so the Module registers nothing); after it, the attribute is
    removed and a ``forward`` the user had set on the instance is put back.
    """
    modules = [m for _, m in model.named_modules()]
    saved = [(m.training, m.__dict__.get("forward")) for m in modules]

    def recording(module, forward):
        def forward_and_record(*args, **kwargs):
            out = forward(*args, **kwargs)
            record(module, args, out)
            return out
        return forward_and_record

    params = model.parameters()
    x = Tensor(np.zeros(input_shape, params[0].dtype if params else np.float32), requires_grad=grad)
    try:
        for m in modules:
            object.__setattr__(m, "forward", recording(m, m.forward))
        model.eval()
        with set_grad_enabled(grad):
            model(x)
    finally:
        for m, (training, own_forward) in zip(modules, saved, strict=True):
            object.__setattr__(m, "training", training)
            m.__dict__.pop("forward", None)
            if own_forward is not None:
                object.__setattr__(m, "forward", own_forward)


def summary_text(model, input_shape) -> str:
    """The text of ``nn.summary(model, input_shape)``'s table (see there for what its rows and counts mean): the
    model runs once on zeros of ``input_shape`` (``trace_calls``) and each module's first output shape is noted."""
    shape = check_input_shape("summary", input_shape)
    shapes = _output_shapes(model, shape)
    counted = [*model.named_parameters(), *_float_buffers(model)]
    owned = {}
    for name, p in counted:
        owner = name.rpartition(".")[0]
        owned[owner] = owned.get(owner, 0) + p.size
    rows = [(name, type(m).__name__, shapes.get(id(m), "-"), f"{owned.get(name, 0):,}")
            for name, m in model.named_modules() if name]
    trainable = sum(p.size for _, p in counted if isinstance(p, Tensor) and p.requires_grad)
    total = sum(p.size for _, p in counted)
    table = _table(("Layer", "Type", "Output shape", "Params"), rows)
    rule = "=" * len(table[0])
    lines = [f"Model: {type(model).__name__}, input {shape} -> output {shapes.get(id(model), '-')}", rule,
             table[0], rule, *table[1:], rule, f"Total params: {total:,}", f"Trainable params: {trainable:,}",
             f"Non-trainable params: {total - trainable:,}"]
    return "\n".join(lines)


def _float_buffers(model) -> list:
    """(name, array) of the model's float buffers, each array once."""
    seen, found = set(), []
    for name, array in model.named_buffers():
        if array.dtype.kind == "f" and id(array) not in seen:
            seen.add(id(array))
            found.append((name, array))
    return found


def _shape_text(out) -> str:
    if isinstance(out, Tensor):
        return str(out.shape)
    if isinstance(out, (tuple, list)) and out and all(isinstance(o, Tensor) for o in out):
        return ", ".join(str(o.shape) for o in out)
    return "-"


def _output_shapes(model, input_shape: tuple) -> dict:
    """{id(module): its first output's shape as text}, from one eval-mode, no-grad pass on zeros."""
    shapes = {}

    def record(module, args, out):
        shapes.setdefault(id(module), _shape_text(out))
    trace_calls(model, input_shape, record)
    return shapes


def _table(header: tuple, rows: list) -> list:
    """Lines of text: columns padded to their widest cell, numbers (the last column) right-aligned."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells):
        left = "  ".join(c.ljust(w) for c, w in zip(cells[:-1], widths, strict=False))
        return f"{left}  {cells[-1].rjust(widths[-1])}"
    return [line(header)] + [line(r) for r in rows]
