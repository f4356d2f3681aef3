"""Where the time and the memory of a forward and backward go: ``with profile() as prof:``, per op.

    with profile() as prof:
        loss = cross_entropy(model(Tensor(x)), y)
        loss.backward()
    print(prof)                      # ops by total time, with their share of the wall time
    prof.node(loss)                  # one tensor's forward/backward seconds and saved bytes

What is measured, per op (per tensor in the graph, and summed per op name for ``table()``):

* **forward**: from the entry of the Tensor method that records the op (``x.conv2d(...)``, ``a @ b``,
  ``np.maximum(0, Z)``: its argument checks, constants lifted, numpy forward, closure made) to the end of its
  ``from_op``. When the method records several ops (``mean`` = ``sum`` then ``mul``), each op's time starts where
  the previous one ended, so the method's own lines go to the op that follows them. An op recorded outside any
  Tensor method (``cross_entropy``, the functions of ``functional``, your own ``Tensor.from_op`` ops) counts from
  the end of the previous op in this thread: for those, your Python between two ops is part of the op.
* **backward**: the run of the op's backward closure inside ``backward()`` (not the engine's walk around it:
  ordering, summing broadcast gradients back, accumulation; that is the ``backward walk`` row). Under
  ``backward(create_graph=True)`` a closure records its rule as ops: their time is that closure's backward time (the
  engine's sums, the walk's), so the ops recorded inside ``backward()`` count their calls and saved bytes but no
  forward time.
* **saved bytes**: the distinct arrays the op's backward closure keeps alive (its cells, through tuples, saved
  records, and the Tensors it holds, whose data it reads), a shared buffer counted once (views count their base):
  each buffer goes to the first op, in the order they ran, whose backward keeps it. Parameters' data (leaves
  that require grad) is left out: the model holds it whether or not a graph exists.

``prof.total`` is the profiled wall time (enter to exit); the table splits what is not op time into the backward
walk, the profiler's own bookkeeping (measured) and the rest (your code between ops; also the freeing of a graph
whose last reference goes inside the profile, a few ms for a CNN's batch). Ops that record nothing
(inside ``no_grad()``, or on constants) still count their forward time in the table, under their op name.

How: entering the first profile (in any thread) puts thin timing wrappers on Tensor's op methods, on
``Tensor.from_op`` and on ``Tensor.backward``; leaving the last one takes them off, so outside ``profile()``
the library runs exactly the code it runs without this module (no flag check anywhere). While installed, a
wrapper in a thread that is not profiling only calls through. A profile belongs to the thread that entered it;
profiles do not nest within a thread.

May import: the engine (``tensor``), ``anomaly`` (the user's file:line). Drawn by ``viz`` (``draw(profile=)``,
which only calls ``prof.node(t)``) and shown by ``explorer``.
"""

from __future__ import annotations

import functools
import threading
import types
import weakref
from dataclasses import dataclass
from time import perf_counter

import numpy as np

from .anomaly import user_line
from .tensor import Tensor

__all__ = ["profile", "Profile", "NodeStats", "OpStats"]


@dataclass
class OpStats:
    """An op name summed over its calls: seconds of forward and backward, saved bytes, how many calls."""

    op: str              # the op's name, e.g. "conv2d"
    forward: float = 0.0
    backward: float = 0.0
    saved_bytes: int = 0
    calls: int = 0

    @property
    def total(self) -> float:
        return self.forward + self.backward


@dataclass
class NodeStats(OpStats):
    """One recorded op (one tensor of the graph): its label, the user's line that made it, and its OpStats."""

    label: str = ""      # the op with its hyper-parameters, e.g. "conv2d stride=1 pad=1"
    where: str = ""      # the user's file:line that made it
    calls: int = 1


# ----------------------------------------------------------------------------- per-thread state
class _ThreadState(threading.local):
    """The profile active in this thread (None: call through), its open op methods' entry times, the end of the
    last op, and whether a ``backward()`` of this thread is running."""

    def __init__(self):
        self.prof, self.entries, self.last, self.in_backward = None, [], 0.0, False


_state = _ThreadState()


class Profile:
    """What ``profile()`` returns: a context manager that records, per op, forward and backward seconds and saved
    bytes (see the module docstring for exactly what each covers)."""

    def __init__(self):
        self._nodes: dict[int, tuple] = {}        # id(tensor) -> (weakref to it, NodeStats), for node(t)
        self._records: list[NodeStats] = []       # every recorded op, in order (its tensor may be gone)
        self._ops: dict[str, OpStats] = {}
        self._charged: dict[int, weakref.ref] = {}  # id(base array) -> weakref: buffers already charged to an op
        self._start = self._end = None
        self.walk = 0.0       # seconds in backward() outside the closures: the engine's walk
        self.overhead = 0.0   # seconds of the profiler's own bookkeeping
        self._closures = 0.0  # seconds in backward closures (what backward() time is split by)

    # ------------------------------------------------------------------ entering and leaving
    def __enter__(self) -> Profile:
        if _state.prof is not None:
            raise RuntimeError("profile: this thread is already profiling; profiles do not nest, use one around both")
        if self._start is not None:
            raise RuntimeError("profile: this profile has run already; make a new one with profile()")
        _install()
        _state.prof, _state.entries, _state.in_backward = self, [], False
        self._start = _state.last = perf_counter()
        return self

    def __exit__(self, *exc) -> bool:
        self._end = perf_counter()
        _state.prof = None
        _uninstall()
        return False

    # ------------------------------------------------------------------ what was measured
    @property
    def total(self) -> float:
        """Wall seconds from entering to leaving (to now while it runs); 0 before it ran."""
        if self._start is None:
            return 0.0
        return (self._end if self._end is not None else perf_counter()) - self._start

    @property
    def ops(self) -> list[OpStats]:
        """Per op name, the slowest (forward + backward) first."""
        return sorted(self._ops.values(), key=lambda s: -s.total)

    @property
    def op_time(self) -> float:
        """Seconds of all ops, forward and backward."""
        return sum(s.total for s in self._ops.values())

    @property
    def saved_bytes(self) -> int:
        """Bytes the backward closures of the recorded ops keep alive, each buffer once."""
        return sum(s.saved_bytes for s in self._ops.values())

    @property
    def outside(self) -> float:
        """Seconds neither in an op, nor in the backward walk, nor in the profiler: your code between ops."""
        return self.total - self.op_time - self.walk - self.overhead

    def node(self, t) -> NodeStats | None:
        """The stats of tensor ``t`` if this profile recorded the op that made it, else None."""
        found = self._nodes.get(id(t))
        return found[1] if found is not None and found[0]() is t else None

    def table(self, by: str = "op", limit: int | None = None) -> str:
        """The ops by total time: calls, forward, backward and total ms, share of the wall time, saved MB.

        by: "op" (one row per op name) or "label" (per op name and hyper-parameters, ``conv2d stride=2 pad=1``;
        ops that recorded no graph have no label and are left out).
        limit: at most this many op rows (the slowest).
        """
        if by not in ("op", "label"):
            raise ValueError(f"profile.table: by must be 'op' or 'label', got {by!r}")
        rows = self.ops if by == "op" else self._by_label()
        total = self.total or float("nan")
        head = (f"profile: {sum(r.calls for r in rows)} op calls, {self.total * 1e3:.2f} ms wall; ops "
                f"{self.op_time * 1e3:.2f} ms ({self.op_time / total:.1%}), saved {self.saved_bytes / 2**20:.2f} MB")
        lines = [head, f"{'op':<28}{'calls':>6}{'forward ms':>12}{'backward ms':>13}{'total ms':>10}{'share':>8}"
                       f"{'saved MB':>10}"]
        for r in rows[:limit]:
            lines.append(f"{r.op[:27]:<28}{r.calls:>6}{r.forward * 1e3:>12.3f}{r.backward * 1e3:>13.3f}"
                         f"{r.total * 1e3:>10.3f}{r.total / total:>8.1%}{r.saved_bytes / 2**20:>10.3f}")
        if limit is not None and len(rows) > limit:
            rest = rows[limit:]
            lines.append(f"{f'... {len(rest)} more ops':<28}{'':>31}{sum(r.total for r in rest) * 1e3:>10.3f}"
                         f"{sum(r.total for r in rest) / total:>8.1%}")
        for what, seconds in (("backward walk (engine)", self.walk), ("profiler bookkeeping", self.overhead),
                              ("outside ops (your code)", self.outside)):
            lines.append(f"{what:<28}{'':>31}{seconds * 1e3:>10.3f}{seconds / total:>8.1%}")
        return "\n".join(lines)

    def _by_label(self) -> list[OpStats]:
        rows: dict[str, OpStats] = {}
        for stats in self._records:
            row = rows.setdefault(stats.label, OpStats(stats.label))
            row.calls += 1
            row.forward, row.backward = row.forward + stats.forward, row.backward + stats.backward
            row.saved_bytes += stats.saved_bytes
        return sorted(rows.values(), key=lambda s: -s.total)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        return (f"<Profile {len(self._records)} recorded ops, {self.total * 1e3:.2f} ms wall, ops "
                f"{self.op_time * 1e3:.2f} ms, saved {self.saved_bytes} bytes>")

    # ------------------------------------------------------------------ recording (called by the wrappers)
    def _stats_for(self, op: str) -> tuple[NodeStats, OpStats]:
        """A blank NodeStats for an op about to be recorded, and the OpStats of its op name."""
        agg = self._ops.get(op)
        if agg is None:
            agg = self._ops[op] = OpStats(op)
        return NodeStats(op), agg

    def _record(self, out, stats: NodeStats, agg: OpStats, seconds: float, backward) -> None:
        """Count an op's forward; for a recorded op (out is in a graph) also its node and saved bytes."""
        agg.calls += 1
        agg.forward += seconds
        if out.op is None:  # nothing recorded (no_grad, or no input requires grad)
            return
        stats.forward, stats.label, stats.where = seconds, out.op_label, user_line()
        stats.saved_bytes = sum(a.nbytes for a in kept_arrays(backward, out.parents) if self._claim(a))
        agg.saved_bytes += stats.saved_bytes
        self._nodes[id(out)] = (weakref.ref(out), stats)
        self._records.append(stats)

    def _claim(self, base: np.ndarray) -> bool:
        """True the first time this profile sees the buffer ``base``."""
        ref = self._charged.get(id(base))
        if ref is not None and ref() is base:
            return False
        self._charged[id(base)] = weakref.ref(base)
        return True


def profile() -> Profile:
    """A profiler for a forward and backward: ``with profile() as prof: ...; print(prof)``. See ``Profile``."""
    return Profile()


# ----------------------------------------------------------------------------- saved bytes
_ATOMS = (str, bytes, int, float, complex, bool, type(None), type, types.ModuleType, np.generic, np.dtype, slice,
          range, types.BuiltinFunctionType)
MAX_DEPTH = 6  # how deep into a closure's containers and records to look


def _base(a: np.ndarray) -> np.ndarray:
    """The array that owns a view's buffer (the array itself if it owns its data)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a


def _children(obj) -> list:
    """What a closure's value holds that may hold arrays: items, cells, a record's fields."""
    if isinstance(obj, (tuple, list, set, frozenset)):
        return list(obj)
    if isinstance(obj, dict):
        return list(obj.values())
    if isinstance(obj, types.FunctionType):
        cells = []
        for cell in obj.__closure__ or ():
            try:
                cells.append(cell.cell_contents)
            except ValueError:  # an empty cell
                pass
        return cells
    if isinstance(obj, (_ATOMS, types.MethodType)) or callable(obj):
        return []
    if hasattr(obj, "__dict__"):
        return list(vars(obj).values())
    return [getattr(obj, slot, None) for slot in getattr(type(obj), "__slots__", ())]


def kept_arrays(backward, parents=()) -> list[np.ndarray]:
    """The distinct array buffers (bases) that the closure ``backward`` keeps alive, parameters' data left out.

    Looks through the closure's cells, nested closures, tuples/lists/dicts, records (named tuples, dataclasses)
    and the Tensors it holds (their data, not their graph), at most ``MAX_DEPTH`` levels deep. A parameter's
    buffer (of a leaf that requires grad, among ``parents`` or the Tensors found) is left out even where the
    closure holds the bare array (conv2d keeps W's array in its saved record).
    """
    found: dict[int, np.ndarray] = {}
    params = {id(_base(p.data)) for p in parents if _is_parameter(p)}
    seen: set[int] = set()
    stack = [(backward, 0)]
    while stack:
        obj, depth = stack.pop()
        if id(obj) in seen or depth > MAX_DEPTH:
            continue
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            base = _base(obj)
            found[id(base)] = base
        elif isinstance(obj, Tensor):
            if _is_parameter(obj):
                params.add(id(_base(obj.data)))
            else:
                stack.append((obj.data, depth + 1))
        else:
            stack.extend((child, depth + 1) for child in _children(obj))
    return [base for key, base in found.items() if key not in params]


def _is_parameter(t) -> bool:
    return not t.parents and t.requires_grad


# ----------------------------------------------------------------------------- the wrappers
def _op_method(fn):
    """A Tensor op method that notes when it starts, for the op it records (forward time starts there)."""
    @functools.wraps(fn)
    def timed(*args, **kwargs):
        state = _state
        if state.prof is None:
            return fn(*args, **kwargs)
        state.entries.append(perf_counter())
        try:
            return fn(*args, **kwargs)
        finally:
            state.entries.pop()
            if not state.entries:
                state.last = perf_counter()
    return timed


def _timed_closure(backward, prof: Profile, stats: NodeStats, agg: OpStats):
    """``backward``, adding the seconds of each run inside this thread's profiled ``backward()`` to the op."""
    def timed_backward(g):
        if _state.prof is not prof or not _state.in_backward:
            return backward(g)
        start, overhead = perf_counter(), prof.overhead
        grads = backward(g)
        # under create_graph the closure records ops: their time is its own, the profiler's bookkeeping of them not
        seconds = perf_counter() - start - (prof.overhead - overhead)
        stats.backward += seconds
        agg.backward += seconds
        prof._closures += seconds
        return grads
    return timed_backward


def _from_op(original):
    """Tensor.from_op that times the op it records and wraps its backward closure to time it too."""
    @functools.wraps(original)
    def from_op(cls, data, parents, op, backward, *args, **kwargs):
        state = _state
        prof = state.prof
        if prof is None:
            return original(cls, data, parents, op, backward, *args, **kwargs)
        start = max(state.entries[0], state.last) if state.entries else state.last
        stats, agg = prof._stats_for(op if isinstance(op, str) else op.name)  # a name, or a library op's OpFacts
        out = original(cls, data, parents, op, _timed_closure(backward, prof, stats, agg), *args, **kwargs)
        end = perf_counter()
        # inside backward() (create_graph) an op is part of a closure's backward time or of the walk: no forward time
        prof._record(out, stats, agg, 0.0 if state.in_backward else end - start, backward)
        state.last = perf_counter()
        prof.overhead += state.last - end
        return out
    return classmethod(from_op)


def _backward(original):
    """Tensor.backward that splits its time into the closures (counted per op) and the engine's walk."""
    @functools.wraps(original)
    def backward(self, *args, **kwargs):
        state = _state
        prof = state.prof
        if prof is None or state.in_backward:
            return original(self, *args, **kwargs)
        state.in_backward, closures, overhead, start = True, prof._closures, prof.overhead, perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            state.in_backward, end = False, perf_counter()
            prof.walk += end - start - (prof._closures - closures) - (prof.overhead - overhead)
            state.last = end
    return backward


def op_methods() -> dict:
    """{name: the class attribute} of every op method Tensor inherits from its op mixins (``tinygrad_cnn.ops``):
    public ones and the operators; private helpers are always reached through one of them."""
    found = {}
    for klass in reversed(Tensor.__mro__):
        if not klass.__module__.startswith(f"{__package__}.ops"):
            continue
        for name, attr in vars(klass).items():
            private = name.startswith("_") and not (name.startswith("__") and name.endswith("__"))
            if not private and isinstance(attr, (types.FunctionType, classmethod, staticmethod)):
                found[name] = attr
    return found


def _wrapped(attr):
    if isinstance(attr, classmethod):
        return classmethod(_op_method(attr.__func__))
    if isinstance(attr, staticmethod):
        return staticmethod(_op_method(attr.__func__))
    return _op_method(attr)


_lock = threading.Lock()
_active = 0          # profiles running now, in all threads
_saved_attrs: dict = {}  # name -> Tensor's own attribute before the wrappers (None: it had none, inherited it)


def _install() -> None:
    """Put the wrappers on Tensor (the first profile to start, in any thread)."""
    global _active
    with _lock:
        _active += 1
        if _active > 1:
            return
        wrappers = {name: _wrapped(attr) for name, attr in op_methods().items()}
        wrappers["from_op"] = _from_op(Tensor.__dict__["from_op"].__func__)
        wrappers["backward"] = _backward(Tensor.__dict__["backward"])
        for name, wrapper in wrappers.items():
            _saved_attrs[name] = Tensor.__dict__.get(name)
            setattr(Tensor, name, wrapper)


def _uninstall() -> None:
    """Take the wrappers off (the last profile to end): Tensor runs its own code again."""
    global _active
    with _lock:
        _active -= 1
        if _active:
            return
        for name, attr in _saved_attrs.items():
            if attr is None:
                delattr(Tensor, name)
            else:
                setattr(Tensor, name, attr)
        _saved_attrs.clear()
