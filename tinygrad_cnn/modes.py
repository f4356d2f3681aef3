"""Per-thread switches and the context managers that flip them: grad mode (``no_grad``, ``enable_grad``,
``set_grad_enabled``), the create_graph walk's mark (``recording_backward``), and the base that ``detect_anomaly``
builds on. No Tensor import.

Each switch is a ``threading.local``, so a mode set in one thread never changes another (as PyTorch's grad mode).
"""

from __future__ import annotations

import contextlib
import threading


class ThreadSwitch(threading.local):
    """One on/off flag per thread, starting at ``default``."""

    def __init__(self, default: bool):
        self.enabled = default


class SwitchContext(contextlib.ContextDecorator):
    """Context manager and decorator that sets ``switch.enabled = value`` inside and restores the previous value on
    exit, in the calling thread only. ``with C():``, ``@C()`` and bare ``@C`` all work; a decorated function gets a
    fresh context per call, so two threads running it at once do not share a saved value."""

    switch: ThreadSwitch
    value: bool

    def __new__(cls, func=None):
        self = super().__new__(cls)
        return self(func) if callable(func) else self  # bare @C: decorate func right away

    def __init__(self, func=None):
        pass

    def _recreate_cm(self):
        return type(self)()

    def __enter__(self):
        self._previous = self.switch.enabled
        self.switch.enabled = self.value
        return self

    def __exit__(self, *exc):
        self.switch.enabled = self._previous
        return False


grad_mode = ThreadSwitch(True)
recording_walk = ThreadSwitch(False)  # on while backward(create_graph=True) runs the closures as ops (higher_order)


def is_grad_enabled() -> bool:
    """False inside ``no_grad()`` (in this thread)."""
    return grad_mode.enabled


class no_grad(SwitchContext):
    """Context manager and decorator: ops inside record nothing (results are plain leaves). Per thread."""

    switch, value = grad_mode, False


class enable_grad(SwitchContext):
    """Context manager and decorator: record ops again inside a ``no_grad()`` block. Per thread."""

    switch, value = grad_mode, True


class recording_backward(SwitchContext):
    """Context manager: this thread runs the create_graph walk (``higher_order.run_graph_backward``), so the ops
    called now are the library's own backward (conv2d's layout warning stays quiet for them)."""

    switch, value = recording_walk, True


class set_grad_enabled(contextlib.ContextDecorator):
    """``set_grad_enabled(False)`` turns recording off in this thread now; as ``with set_grad_enabled(mode):``
    it also restores the previous mode on exit, and as ``@set_grad_enabled(mode)`` it sets the mode only inside
    each call of the function (as PyTorch)."""

    def __init__(self, mode: bool):
        self.mode, self._previous = bool(mode), grad_mode.enabled
        grad_mode.enabled = self.mode

    def __call__(self, func):
        grad_mode.enabled = self._previous  # decorating: the mode was set by __init__, but belongs inside func only
        return super().__call__(func)

    def _recreate_cm(self):
        return set_grad_enabled(self.mode)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        grad_mode.enabled = self._previous
        return False
