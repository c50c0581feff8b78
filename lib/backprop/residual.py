"""`Residual`: a block with a skip connection, ``out = x + f(x)``, optionally with a norm.

The sum's backward hands ``dout`` unchanged to both of its inputs, so

    dx = dout + (the block's backward of dout)

The first term is a gradient highway: however small the block's gradient, ``dout`` reaches the
input of every residual block of a deep stack undiminished.

Where the norm goes (the two placements of the Transformer literature):

- pre-norm (``pre_norm=True``, the default): ``out = x + f(norm(x))``; the highway ``x -> out``
  passes through nothing, so a stack of blocks keeps an identity path from the loss to the input;
- post-norm (``pre_norm=False``, the original Transformer's): ``out = norm(x + f(x))``; every
  block's norm sits on the highway, and its backward rescales the gradient at every block.
"""
from .base import Layer, _name


class Residual(Layer):
    """``x + block(x)``, pre-norm ``x + block(norm(x))`` or post-norm ``norm(x + block(x))``.

    block: any layer whose output has the shape of its input, e.g.
    ``Sequential(Linear(D, H), ReLU(), Linear(H, D))``. norm: optional layer (`LayerNorm`,
    `BatchNorm1d`, ...) placed by ``pre_norm``. Both are children, so the parameters are named
    ``"block.<name>"`` and ``"norm.<name>"`` (``"block.0.W"``, ``"norm.weight"``) and
    ``train()`` / ``eval()`` reach them. Shapes: x ``(N, ...)``; out the same.
    """

    def __init__(self, block, norm=None, pre_norm=True):
        super().__init__()
        for what, layer in (("block", block), ("norm", norm)):
            if not isinstance(layer, Layer) and (layer is not None or what == "block"):
                raise TypeError(f"Residual: {what} must be a Layer (a function can be "
                                f"wrapped in a Layer subclass), got {layer!r}")
        self.block = self.add_child("block", block)
        self.norm = None if norm is None else self.add_child("norm", norm)
        self.pre_norm = bool(pre_norm)

    def forward(self, x):
        x = self._input(x)
        inner = self.norm.forward(x) if self.norm is not None and self.pre_norm else x
        fx = self.block.forward(inner)
        if getattr(fx, "shape", None) != x.shape:
            raise ValueError(
                f"{self!r}: the block maps input of shape {x.shape} to "
                f"{getattr(fx, 'shape', type(fx).__name__)}; x + block(x) needs the same shape, "
                "so the block's last layer must output as many features as its first takes in")
        out = x + fx
        if self.norm is not None and not self.pre_norm:
            out = self.norm.forward(out)
        self._cache = x.shape
        return out

    def backward(self, dout):
        dout = self._check_dout(dout, self._cache or ())
        if self.norm is not None and not self.pre_norm:
            dout = self.norm.backward(dout)  # post-norm: the norm comes last, so first back
        dinner = self.block.backward(dout)
        if self.norm is not None and self.pre_norm:
            dinner = self.norm.backward(dinner)
        return dout + dinner

    def __repr__(self):
        if self.norm is None:
            return f"Residual({_name(self.block)})"
        return (f"Residual({_name(self.block)}, norm={_name(self.norm)}, "
                f"pre_norm={self.pre_norm})")
