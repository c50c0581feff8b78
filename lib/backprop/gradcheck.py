"""Gradient checking: compare analytic gradients with centred finite differences.

Always check in float64: with h = 1e-6 the centred difference has truncation error ~h**2 and
round-off error ~1e-16 / h, both far below the 1e-7 relative error a correct backward reaches.
"""
import copy
from dataclasses import dataclass, field

import numpy as np


def numerical_gradient(f, x, dout=None, h=1e-6):
    """Centred-difference gradient of ``f`` at ``x`` (modified in place, then restored).

    f: a function of x returning a scalar, or an array (then ``dout``, the upstream gradient of
    the same shape as f(x), turns it into the scalar ``sum(f(x) * dout)``).
    Returns an array shaped like x: ``(f(x + h e_i) - f(x - h e_i)) / (2h)`` for every entry i.
    """
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        raise TypeError("numerical_gradient: x must be a float ndarray (it is perturbed in place)")

    def scalar(value):
        if dout is None:
            value = np.asarray(value)
            if value.size != 1:
                raise ValueError(
                    f"numerical_gradient: f returned shape {value.shape}; pass dout to "
                    "check an array-valued function"
                )
            return float(value)
        return float(np.sum(np.asarray(value) * dout))

    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        plus = scalar(f(x))
        x[i] = old - h
        minus = scalar(f(x))
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def rel_error(a, b, floor=1e-8):
    """Relative error ``max|a - b| / max(max|a| + max|b|, floor)``.

    The difference is measured against the size of the gradient as a whole, not entry by entry:
    an entry that is ~1e-5 of the largest one carries only rounding noise from the finite
    difference, and dividing by it would flag a correct gradient. Any real mistake moves some
    entry by a sizeable fraction of the gradient's scale and so shows up far above 1e-7.
    The floor keeps an all-zero pair from dividing by zero.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    scale = max(np.max(np.abs(a)) + np.max(np.abs(b)), floor)
    return float(np.max(np.abs(a - b)) / scale)


@dataclass
class GradCheckEntry:
    """The comparison for one gradient (``dx`` or a parameter)."""

    name: str
    rel_error: float
    worst_index: tuple
    analytic: float
    numeric: float


@dataclass
class GradCheckReport:
    """Result of `check_layer`: one entry per gradient, worst first in ``str()``."""

    layer: str
    tol: float
    entries: list = field(default_factory=list)

    @property
    def max_rel_error(self):
        return max((e.rel_error for e in self.entries), default=0.0)

    @property
    def ok(self):
        return self.max_rel_error < self.tol

    def __str__(self):
        lines = [f"gradient check of {self.layer}: "
                 f"{'OK' if self.ok else 'FAILED'} (max relative error "
                 f"{self.max_rel_error:.2e}, tolerance {self.tol:.0e})"]
        for e in sorted(self.entries, key=lambda e: -e.rel_error):
            lines.append(
                f"  {e.name:>8}: rel error {e.rel_error:.2e}; worst entry {e.name}{list(e.worst_index)}"
                f" analytic {e.analytic:+.6e} vs numeric {e.numeric:+.6e}"
            )
        return "\n".join(lines)

    __repr__ = __str__


def _entry(name, analytic, numeric):
    if analytic.shape != numeric.shape:
        raise ValueError(f"check_layer: {name} has shape {analytic.shape}, "
                         f"expected {numeric.shape} (the shape of what it is the gradient of)")
    if analytic.size == 0:
        return GradCheckEntry(name, 0.0, (), 0.0, 0.0)
    idx = np.unravel_index(np.argmax(np.abs(analytic - numeric)), analytic.shape)
    return GradCheckEntry(name, rel_error(analytic, numeric), tuple(int(i) for i in idx),
                          float(analytic[idx]), float(numeric[idx]))


def check_layer(layer, x, seed=0, h=1e-6, tol=1e-7):
    """Check every gradient a layer's backward computes against finite differences.

    Works on a float64 deep copy of ``layer`` and ``x`` (the originals are untouched), with a
    random upstream gradient (an all-ones one can hide bugs, e.g. a missing transpose of a
    square matrix). Checks ``dx`` and every entry of ``grads``. Returns a `GradCheckReport`.
    """
    rng = np.random.default_rng(seed)
    layer = copy.deepcopy(layer)
    _to_float64(layer)
    x = np.array(x, dtype=np.float64)

    out = layer.forward(x)
    dout = rng.standard_normal(np.shape(out))
    dx = layer.backward(dout)
    analytic = {"dx": np.array(dx, dtype=np.float64)}
    analytic.update({f"d{k}": np.array(v, dtype=np.float64) for k, v in layer.grads.items()})

    report = GradCheckReport(layer=repr(layer).replace("\n", " "), tol=tol)
    report.entries.append(
        _entry("dx", analytic["dx"], numerical_gradient(layer.forward, x, dout, h))
    )
    for name, param in layer.params.items():
        num = numerical_gradient(lambda _p: layer.forward(x), param, dout, h)
        report.entries.append(_entry(f"d{name}", analytic[f"d{name}"], num))
    return report


def _to_float64(layer):
    """Cast the parameters and float buffers (running statistics) of every layer in the tree to
    float64, in place of the copy."""
    nodes = [node for _, node in layer.named_layers()] if hasattr(layer, "named_layers") else [layer]
    for node in nodes:  # a duck-typed layer (not a backprop Layer) just has params
        own = node.own_params() if hasattr(node, "own_params") else node.params
        for name in list(own):
            own[name] = np.asarray(own[name], dtype=np.float64)
        buffers = node.own_buffers() if hasattr(node, "own_buffers") else {}
        for name in [name for name, buffer in buffers.items() if buffer.dtype.kind == "f"]:
            buffers[name] = buffers[name].astype(np.float64)
