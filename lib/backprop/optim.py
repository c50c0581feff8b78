"""Optimizers: turn the gradients left by ``model.backward`` into parameter updates.

Every optimizer shares one loop (`Optimizer.step`) and differs only in `update`, the rule for a
single parameter, so a new method (Adam, RMSprop) is a subclass with one method. Parameters are
changed IN PLACE (``param -= ...``): the model's layers hold references to the same arrays.

Typical use, once per mini-batch::

    out = model.forward(X_batch)
    loss, dout = loss_fn(out, y_batch)
    model.backward(dout)      # fills the gradients
    optimizer.step()          # updates every parameter
"""
import math

import numpy as np


def _check_number(owner, name, value, low, high=math.inf, low_inclusive=False):
    """Return `value` as a float, or raise a ValueError stating the allowed range."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}") from None
    above_low = number >= low if low_inclusive else number > low
    if not (above_low and number < high and math.isfinite(number)):
        bracket = "[" if low_inclusive else "("
        upper = "inf)" if high == math.inf else f"{high})"
        raise ValueError(f"{owner}: {name} must lie in {bracket}{low}, {upper}, got {value!r}")
    return number


class Optimizer:
    """Base class. Subclasses implement ``update(name, param, grad)``.

    model: anything with ``named_parameters()`` yielding ``(name, param, grad)`` (a `Layer`).
    lr: learning rate, a public attribute you may change between steps (a schedule).
    state: ``{parameter name: dict}`` of per-parameter buffers (e.g. momentum), kept across steps.
    """

    def __init__(self, model, lr):
        if not hasattr(model, "named_parameters"):
            raise TypeError(
                f"{type(self).__name__}: model must have named_parameters() (a backprop Layer), "
                f"got {type(model).__name__}"
            )
        self.model = model
        self.lr = lr
        self.state = {}

    @property
    def lr(self):
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = _check_number(type(self).__name__, "lr", value, 0.0)

    def step(self):
        """Update every parameter of the model from its current gradient."""
        for name, param, grad in self.model.named_parameters():
            if grad is None:
                raise RuntimeError(
                    f"{type(self).__name__}.step: parameter {name!r} has no gradient; "
                    "call model.backward(dout) before optimizer.step()"
                )
            if np.shape(grad) != param.shape:
                raise ValueError(
                    f"{type(self).__name__}.step: gradient of {name!r} has shape "
                    f"{np.shape(grad)} but the parameter has shape {param.shape}"
                )
            self.update(name, param, grad)

    def update(self, name, param, grad):
        """Change `param` (an array, any shape) in place using `grad` (same shape)."""
        raise NotImplementedError(f"{type(self).__name__} must implement update()")

    def zero_grad(self):
        """Reset the model's gradients to zero."""
        self.model.zero_grad()

    def __repr__(self):
        return f"{type(self).__name__}(lr={self.lr:g})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum and L2 weight decay (PyTorch's rule).

    For each parameter ``p`` with gradient ``g``::

        g = g + weight_decay * p            # weight decay: gradient of (wd / 2) * ||p||^2
        v = momentum * v + g                # velocity, starts at 0, kept in state[name]["velocity"]
        g = g + momentum * v if nesterov else v
        p -= lr * g

    With ``momentum == 0`` this is plain ``p -= lr * g``.
    """

    def __init__(self, model, lr=0.01, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(model, lr)
        self.momentum = _check_number("SGD", "momentum", momentum, 0.0, 1.0, low_inclusive=True)
        self.weight_decay = _check_number(
            "SGD", "weight_decay", weight_decay, 0.0, low_inclusive=True
        )
        if nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)

    def update(self, name, param, grad):
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        if self.momentum:
            state = self.state.setdefault(name, {})
            velocity = state.setdefault("velocity", np.zeros_like(param))
            velocity *= self.momentum
            velocity += grad
            grad = grad + self.momentum * velocity if self.nesterov else velocity
        param -= self.lr * grad

    def __repr__(self):
        return (
            f"SGD(lr={self.lr:g}, momentum={self.momentum:g}, "
            f"weight_decay={self.weight_decay:g}, nesterov={self.nesterov})"
        )
