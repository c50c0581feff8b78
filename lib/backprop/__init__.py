"""Backprop Lab's small NumPy backpropagation library.

Submodules load on first use, so ``import backprop`` is quick and ``backprop.data`` works
without a separate import (``from backprop import data`` works too).
"""
import importlib

__version__ = "0.1.0"

_SUBMODULES = {
    "checks", "conv", "conv_naive", "data", "engine", "functional", "gradcheck", "init",
    "landscape", "layers", "losses", "optim", "plots", "regularization", "rnn", "train",
}


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'backprop' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _SUBMODULES)
