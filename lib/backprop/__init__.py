"""Backprop Lab's small NumPy backpropagation library.

Submodules load on first use, so ``import backprop`` is quick and ``backprop.data`` works
without a separate import (``from backprop import data`` works too).
"""
import importlib
import pkgutil

__version__ = "0.1.0"

_SUBMODULES = {m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module 'backprop' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | _SUBMODULES)
