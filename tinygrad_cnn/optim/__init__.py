"""Optimizers and learning-rate schedules, as ``torch.optim``: ``optim.SGD``, ``optim.Adam`` (optimizers.py) and
``optim.lr_scheduler.StepLR``, ``MultiStepLR``, ``ExponentialLR``, ``CosineAnnealingLR`` (lr_scheduler.py, which
imports optimizers.py). This file only re-exports."""

from . import lr_scheduler
from .optimizers import SGD, Adam, Optimizer

__all__ = ["Optimizer", "SGD", "Adam", "lr_scheduler"]
