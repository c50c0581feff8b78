"""Optimizers: turn the gradients left by ``model.backward`` into parameter updates.

Every optimizer shares one loop (`Optimizer.step`) and differs only in `update`, the rule for a
single parameter, so `SGD`, `RMSprop`, `Adam` and `AdamW` are subclasses with one method each,
and swapping one for another is one word. Parameters are changed IN PLACE (``param -= ...``):
the model's layers hold references to the same arrays. The update rules are PyTorch's
(``torch.optim``), so results can be compared number for number. Learning-rate schedules that
change ``optimizer.lr`` between epochs are in `backprop.schedules`.

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
    lr: learning rate, > 0. A public attribute you may change between steps (that is what a
        schedule does); it may then also be 0, where a schedule such as cosine annealing ends.
    state: ``{parameter name: dict}`` of per-parameter buffers (e.g. momentum), kept across steps.
    """

    def __init__(self, model, lr):
        if not hasattr(model, "named_parameters"):
            raise TypeError(
                f"{type(self).__name__}: model must have named_parameters() (a backprop Layer), "
                f"got {type(model).__name__}"
            )
        self.model = model
        self.lr = _check_number(type(self).__name__, "lr", lr, 0.0)  # a zero start is a mistake
        self.state = {}

    @property
    def lr(self):
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = _check_number(type(self).__name__, "lr", value, 0.0, low_inclusive=True)

    def step(self):
        """Update every parameter of the model from its current gradient."""
        update = self.update
        for name, param, grad in self.model.named_parameters():
            if type(grad) is np.ndarray and grad.shape == param.shape:
                update(name, param, grad)  # the usual case, checked in one line
                continue
            self._check_gradient(name, param, grad)
            update(name, param, grad)

    def _check_gradient(self, name, param, grad):
        """Raise the error that explains a missing gradient or one of the wrong shape."""
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

    def step(self):
        """As `Optimizer.step`; plain SGD (no momentum, no weight decay, `update` not
        overridden) runs its one-line rule in the loop itself: a function call fewer per
        parameter, the same arithmetic."""
        if self.momentum or self.weight_decay or type(self).update is not SGD.update:
            return super().step()
        lr = self._lr
        for name, param, grad in self.model.named_parameters():
            if type(grad) is not np.ndarray or grad.shape != param.shape:
                self._check_gradient(name, param, grad)
            param -= lr * grad

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


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e): divide each step by a running root mean square of the
    parameter's recent gradients, so every coordinate moves at a similar pace. PyTorch's rule
    (without its momentum and centered options)::

        g = g + weight_decay * p
        s = alpha * s + (1 - alpha) * g**2     # starts at 0, kept in state[name]["square_avg"]
        p -= lr * g / (sqrt(s) + eps)
    """

    def __init__(self, model, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0):
        super().__init__(model, lr)
        self.alpha = _check_number("RMSprop", "alpha", alpha, 0.0, 1.0, low_inclusive=True)
        self.eps = _check_number("RMSprop", "eps", eps, 0.0)
        self.weight_decay = _check_number(
            "RMSprop", "weight_decay", weight_decay, 0.0, low_inclusive=True
        )

    def update(self, name, param, grad):
        if self.weight_decay:
            grad = grad + self.weight_decay * param
        state = self.state.setdefault(name, {})
        square_avg = state.setdefault("square_avg", np.zeros_like(param))
        square_avg *= self.alpha
        square_avg += (1 - self.alpha) * grad * grad
        param -= self.lr * grad / (np.sqrt(square_avg) + self.eps)

    def __repr__(self):
        return (f"RMSprop(lr={self.lr:g}, alpha={self.alpha:g}, eps={self.eps:g}, "
                f"weight_decay={self.weight_decay:g})")


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015): momentum on the gradient, RMSprop's scaling, and a bias
    correction for both running averages starting at zero. PyTorch's rule; at the t-th update
    of a parameter (t = 1, 2, ..., counted per parameter in state[name]["t"])::

        g = g + weight_decay * p               # L2 penalty (unless decoupled, see below)
        m = beta1 * m + (1 - beta1) * g        # running mean of g,    state[name]["m"]
        v = beta2 * v + (1 - beta2) * g**2     # running mean of g**2, state[name]["v"]
        m_hat = m / (1 - beta1**t)             # unbiased: m and v start at 0
        v_hat = v / (1 - beta2**t)
        p -= lr * m_hat / (sqrt(v_hat) + eps)

    decoupled_weight_decay=True (AdamW, Loshchilov & Hutter 2019) instead shrinks the parameter
    directly, ``p *= 1 - lr * weight_decay``, before the step, so the decay is not rescaled by
    ``1 / sqrt(v_hat)`` like the gradient is. betas: ``(beta1, beta2)``, each in [0, 1).
    """

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False):
        super().__init__(model, lr)
        owner = type(self).__name__
        try:
            beta1, beta2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"{owner}: betas must be a pair (beta1, beta2), got {betas!r}") from None
        self.betas = tuple(_check_number(owner, name, beta, 0.0, 1.0, low_inclusive=True)
                           for name, beta in [("betas[0]", beta1), ("betas[1]", beta2)])
        self.eps = _check_number(owner, "eps", eps, 0.0)
        self.weight_decay = _check_number(owner, "weight_decay", weight_decay, 0.0,
                                          low_inclusive=True)
        self.decoupled_weight_decay = bool(decoupled_weight_decay)

    def update(self, name, param, grad):
        beta1, beta2 = self.betas
        state = self.state.setdefault(name, {})
        if not state:
            state.update(t=0, m=np.zeros_like(param), v=np.zeros_like(param))
        state["t"] += 1
        t, m, v = state["t"], state["m"], state["v"]
        if self.weight_decay and self.decoupled_weight_decay:
            param *= 1 - self.lr * self.weight_decay
        elif self.weight_decay:
            grad = grad + self.weight_decay * param
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        # PyTorch's order of operations: sqrt(v) / sqrt(1 - beta2**t), then + eps
        denominator = np.sqrt(v) / math.sqrt(1 - beta2**t) + self.eps
        param -= (self.lr / (1 - beta1**t)) * (m / denominator)

    def __repr__(self):
        decoupled = ", decoupled_weight_decay=True" if self.decoupled_weight_decay else ""
        return (f"{type(self).__name__}(lr={self.lr:g}, betas=({self.betas[0]:g}, "
                f"{self.betas[1]:g}), eps={self.eps:g}, weight_decay={self.weight_decay:g}"
                f"{decoupled})")


class AdamW(Adam):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW`` (weight_decay defaults to 0.01).

    The same as ``Adam(..., decoupled_weight_decay=True)``.
    """

    def __init__(self, model, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(model, lr, betas, eps, weight_decay, decoupled_weight_decay=True)

    def __repr__(self):
        return super().__repr__().replace(", decoupled_weight_decay=True", "")
