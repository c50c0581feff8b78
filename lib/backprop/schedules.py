"""Learning-rate schedules: lower ``optimizer.lr`` as training goes on.

A schedule reads the optimizer's learning rate when it is created (``base_lr``, the rate of
step 0). Each call of ``step()`` advances it by one step and sets ``optimizer.lr`` to the rate
of the new step; ``lr_at(k)`` is the rate of step ``k`` (for plots). Step once per epoch, as in
PyTorch. With `backprop.train.fit`, pass the schedule's `on_epoch_end` as fit's callback::

    optimizer = SGD(model, lr=0.1, momentum=0.9)
    schedule = CosineLR(optimizer, total_steps=20)
    history = fit(model, loss_fn, optimizer, X, y, epochs=20,
                  on_epoch_end=schedule.on_epoch_end)
    history["lr"]      # the learning rate each of the 20 epochs trained with

It combines with fit's ``early_stopping=EarlyStopping(...)``. To combine it with another
callback of your own, call ``schedule.step()`` inside that callback.
"""
import math

import numpy as np

from .data import is_positive_int
from .optim import Optimizer


def _check_factor(owner, name, value):
    """A decay factor in (0, 1], as a float."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}") from None
    if not 0 < number <= 1:
        raise ValueError(f"{owner}: {name} must lie in (0, 1] (a decay factor), got {value!r}")
    return number


class LRSchedule:
    """Base class. Subclasses implement ``lr_at(step)``, the rate after `step` calls of step().

    optimizer: a `backprop.optim.Optimizer`; its current ``lr`` becomes ``base_lr``.
    steps_done: how many times ``step()`` has been called.
    """

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"{type(self).__name__}: expected a backprop.optim Optimizer (SGD, Adam, ...), "
                f"got {type(optimizer).__name__}"
            )
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.steps_done = 0

    def lr_at(self, step):
        """The learning rate of step `step` (an int >= 0; step 0 is ``base_lr``)."""
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
            raise ValueError(f"{type(self).__name__}.lr_at: step must be an integer >= 0, "
                             f"got {step!r}")
        return float(self._lr_at(int(step)))

    def _lr_at(self, step):
        raise NotImplementedError(f"{type(self).__name__} must implement _lr_at()")

    def step(self):
        """Advance one step (one epoch) and set ``optimizer.lr``; returns the new rate."""
        self.steps_done += 1
        self.optimizer.lr = self.lr_at(self.steps_done)
        return self.optimizer.lr

    def on_epoch_end(self, epoch, history, model):
        """A callback for `backprop.train.fit`: appends the rate the epoch trained with to
        ``history["lr"]``, then calls `step`. Returns False (never stops training)."""
        history.setdefault("lr", []).append(self.optimizer.lr)
        self.step()
        return False


class StepLR(LRSchedule):
    """Multiply the rate by `gamma` every `step_size` steps: ``base_lr * gamma**(k // step_size)``."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer)
        if not is_positive_int(step_size):
            raise ValueError(f"StepLR: step_size must be an integer >= 1, got {step_size!r}")
        self.step_size = int(step_size)
        self.gamma = _check_factor("StepLR", "gamma", gamma)

    def _lr_at(self, step):
        return self.base_lr * self.gamma ** (step // self.step_size)

    def __repr__(self):
        return f"StepLR(base_lr={self.base_lr:g}, step_size={self.step_size}, gamma={self.gamma:g})"


class ExponentialLR(LRSchedule):
    """Multiply the rate by `gamma` at every step: ``base_lr * gamma**k``."""

    def __init__(self, optimizer, gamma):
        super().__init__(optimizer)
        self.gamma = _check_factor("ExponentialLR", "gamma", gamma)

    def _lr_at(self, step):
        return self.base_lr * self.gamma**step

    def __repr__(self):
        return f"ExponentialLR(base_lr={self.base_lr:g}, gamma={self.gamma:g})"


class CosineLR(LRSchedule):
    """Cosine annealing (Loshchilov & Hutter, 2017) from ``base_lr`` to `min_lr` in
    `total_steps` steps, then constant::

        lr(k) = min_lr + (base_lr - min_lr) * (1 + cos(pi * min(k, total_steps) / total_steps)) / 2

    It decays slowly at first, fastest halfway, and gently again near the end. Equal to
    PyTorch's ``CosineAnnealingLR(T_max=total_steps, eta_min=min_lr)`` for k <= total_steps.
    """

    def __init__(self, optimizer, total_steps, min_lr=0.0):
        super().__init__(optimizer)
        if not is_positive_int(total_steps):
            raise ValueError(f"CosineLR: total_steps must be an integer >= 1, got {total_steps!r}")
        self.total_steps = int(total_steps)
        min_lr = float(min_lr)
        if not 0 <= min_lr <= self.base_lr:
            raise ValueError(
                f"CosineLR: min_lr must lie in [0, base_lr] = [0, {self.base_lr:g}] (the "
                f"optimizer's lr), got {min_lr!r}"
            )
        self.min_lr = min_lr

    def _lr_at(self, step):
        progress = min(step, self.total_steps) / self.total_steps
        return self.min_lr + (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * progress)) / 2

    def __repr__(self):
        return (f"CosineLR(base_lr={self.base_lr:g}, total_steps={self.total_steps}, "
                f"min_lr={self.min_lr:g})")
