"""Backprop Lab's small NumPy backpropagation library."""
__version__ = "0.1.0"
