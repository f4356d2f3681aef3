"""Learning-rate schedules, as ``torch.optim.lr_scheduler``: each sets ``opt.lr`` at every ``step()`` exactly as
PyTorch's sets a group's ``lr``, with the same (chained) formulas, so the two agree step for step.

    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.StepLR(opt, step_size=30, gamma=0.1)
    for epoch in range(90):
        train_one_epoch(model, opt)      # opt.step() inside
        sched.step()                     # once per epoch, after the optimizer's steps

Building a scheduler takes its first step (epoch 0: ``opt.lr`` stays the lr you gave), as PyTorch's does. The state
(``state_dict()``, ``load_state_dict()``) is plain numbers and lists, so a checkpoint (``tinygrad_cnn.save``) holds it.
Not taken from PyTorch: ``last_epoch=`` (restore with ``load_state_dict`` instead), ``step(epoch)`` (deprecated
there) and the warning when ``sched.step()`` comes before ``opt.step()``.

Imports: math, hints.py, optimizers.py.
"""

from __future__ import annotations

import math
import numbers

from ..hints import pytorch_args
from .optimizers import Optimizer

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR"]

MISSING = {"last_epoch": "restore a scheduler with sched.load_state_dict(saved) instead",
           "verbose": "print(sched.get_last_lr()) after step()"}


def _positive_int(who: str, name: str, value) -> int:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{who}: {name} must be a positive int, got {value!r}")
    return int(value)


def _finite(who: str, name: str, value) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{who}: {name} must be a finite number, got {value!r}")
    return float(value)


class LRScheduler:
    """Base class: holds the optimizer, ``base_lrs`` (a list of one, as PyTorch: the optimizer's ``initial_lr``, its lr
    when the first scheduler on it was built, which that scheduler sets and later ones keep) and ``last_epoch`` (the
    number of ``step()`` calls; 0 after building); subclasses define ``_next_lr(lr)``."""

    FIELDS: tuple = ()  # the subclass's own settings, saved by state_dict

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: optimizer must be an Optimizer (optim.SGD, optim.Adam), got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        if optimizer.initial_lr is None:  # PyTorch: group.setdefault("initial_lr", group["lr"])
            optimizer.initial_lr = optimizer.lr
        self.base_lrs = [optimizer.initial_lr]
        self.last_epoch, self._step_count = -1, 0
        self.step()

    def step(self) -> None:
        """One more epoch: set ``opt.lr`` to this epoch's rate (PyTorch's chained formula)."""
        self._step_count += 1
        self.last_epoch += 1
        self.optimizer.lr = self._next_lr(self.optimizer.lr)
        self._last_lr = [self.optimizer.lr]

    def _next_lr(self, lr: float) -> float:
        raise NotImplementedError

    def get_last_lr(self) -> list:
        """[the lr the last step() set] (a list, one entry per group as PyTorch; there is one group)."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """{name: number or list}: the epoch count, base_lrs and the settings (not the optimizer), as PyTorch."""
        state = {"last_epoch": self.last_epoch, "_step_count": self._step_count, "base_lrs": list(self.base_lrs),
                 "_last_lr": list(self._last_lr)}
        state.update({name: getattr(self, name) for name in self.FIELDS})
        return state

    def load_state_dict(self, state) -> None:
        """Restore what ``state_dict()`` gave (from the same kind of scheduler)."""
        expected = {"last_epoch", "_step_count", "base_lrs", "_last_lr", *self.FIELDS}
        if not hasattr(state, "keys") or set(state.keys()) != expected:
            found = sorted(state.keys()) if hasattr(state, "keys") else type(state).__name__
            raise ValueError(f"{type(self).__name__}.load_state_dict: expected the keys {sorted(expected)} "
                             f"(sched.state_dict() of a {type(self).__name__}), got {found}")
        for name in expected:
            value = state[name]
            setattr(self, name, list(value) if isinstance(value, (list, tuple)) else value)


class StepLR(LRScheduler):
    """lr times ``gamma`` every ``step_size`` epochs: lr_epoch = base_lr * gamma ** (epoch // step_size)."""

    FIELDS = ("step_size", "gamma")

    @pytorch_args("StepLR", ("optimizer", "step_size", "gamma"), missing=MISSING)
    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        self.step_size = _positive_int("StepLR", "step_size", step_size)
        self.gamma = _finite("StepLR", "gamma", gamma)
        super().__init__(optimizer)

    def _next_lr(self, lr):
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return lr
        return lr * self.gamma


class MultiStepLR(LRScheduler):
    """lr times ``gamma`` at each epoch listed in ``milestones`` (a milestone listed twice: gamma ** 2)."""

    FIELDS = ("milestones", "gamma")

    @pytorch_args("MultiStepLR", ("optimizer", "milestones", "gamma"), missing=MISSING)
    def __init__(self, optimizer, milestones, gamma: float = 0.1):
        try:
            self.milestones = sorted(_positive_int("MultiStepLR", "a milestone", m) for m in milestones)
        except TypeError:
            raise TypeError(f"MultiStepLR: milestones must be a list of epochs, got {milestones!r}") from None
        self.gamma = _finite("MultiStepLR", "gamma", gamma)
        super().__init__(optimizer)

    def _next_lr(self, lr):
        hits = self.milestones.count(self.last_epoch)
        return lr * self.gamma ** hits if hits else lr


class ExponentialLR(LRScheduler):
    """lr times ``gamma`` every epoch: lr_epoch = base_lr * gamma ** epoch."""

    FIELDS = ("gamma",)

    @pytorch_args("ExponentialLR", ("optimizer", "gamma"), missing=MISSING)
    def __init__(self, optimizer, gamma: float):
        self.gamma = _finite("ExponentialLR", "gamma", gamma)
        super().__init__(optimizer)

    def _next_lr(self, lr):
        return lr if self.last_epoch == 0 else lr * self.gamma


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from base_lr down to ``eta_min`` over ``T_max`` epochs, then back up (no restarts), by PyTorch's
    chained rule: lr_epoch = eta_min + (base_lr - eta_min) * (1 + cos(pi * epoch / T_max)) / 2 up to rounding."""

    FIELDS = ("T_max", "eta_min")

    @pytorch_args("CosineAnnealingLR", ("optimizer", "T_max", "eta_min"), missing=MISSING)
    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0):
        self.T_max = _positive_int("CosineAnnealingLR", "T_max", T_max)
        self.eta_min = _finite("CosineAnnealingLR", "eta_min", eta_min)
        super().__init__(optimizer)

    def _next_lr(self, lr):
        epoch, T, eta_min, base_lr = self.last_epoch, self.T_max, self.eta_min, self.base_lrs[0]
        if epoch == 0:
            return lr
        if (epoch - 1 - T) % (2 * T) == 0:
            return lr + (base_lr - eta_min) * (1 - math.cos(math.pi / T)) / 2
        ratio = (1 + math.cos(math.pi * epoch / T)) / (1 + math.cos(math.pi * (epoch - 1) / T))
        return ratio * (lr - eta_min) + eta_min
