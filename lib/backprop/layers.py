"""Dense layers, activations and `Sequential`, each with an explicit forward and backward pass.

The interface they share, the layer tree, the rule against using one layer object twice, and
the dtype rule are those of the `Layer` base class (`backprop.base`, re-exported here so that
``from backprop.layers import Layer`` works): ``forward(x)`` returns the output and keeps what
``backward`` needs; ``backward(dout)`` fills ``grads`` (the keys and shapes of ``params``) and
returns ``dx``. Parameters are NumPy arrays that optimizers update in place.
"""
import numpy as np

from . import functional as F
from . import init as initializers
from .base import (Layer, LayerReuseError, ParameterView, _constant, _dot,  # noqa: F401
                   as_float_array, as_layer_input, require_rng)


class Linear(Layer):
    """Affine layer ``y = x @ W + b``.

    Shapes: x ``(N, in_features)``, W ``(in_features, out_features)``, b ``(out_features,)``,
    y ``(N, out_features)``.

    rng: a ``np.random.Generator`` (required: initial weights are random and must be
    reproducible). ``init`` names a scheme of `backprop.init` (``"lecun_normal"``, the default:
    N(0, 1/in_features); ``"xavier_uniform"``, ``"he_normal"``, ...) or is a function
    ``(shape, rng) -> array``; ``weight_scale`` instead draws N(0, weight_scale**2).
    Biases start at zero.
    """

    def __init__(self, in_features, out_features, rng=None, dtype=np.float64, weight_scale=None,
                 init=None):
        super().__init__()
        if int(in_features) < 1 or int(out_features) < 1:
            raise ValueError(
                f"Linear: in_features and out_features must be >= 1, "
                f"got {in_features} and {out_features}"
            )
        self.in_features, self.out_features = int(in_features), int(out_features)
        rng = require_rng(rng, f"Linear({in_features}, {out_features})")
        shape = (self.in_features, self.out_features)
        if weight_scale is not None and init is not None:
            raise ValueError(f"{self!r}: give init or weight_scale, not both")
        if weight_scale is not None:
            W = rng.standard_normal(shape) * weight_scale
        elif callable(init):
            W = init(shape, rng)
        else:
            name = init or "lecun_normal"
            if name not in initializers.SCHEMES:
                raise ValueError(f"{self!r}: unknown init {name!r}; "
                                 f"choose one of {sorted(initializers.SCHEMES)}")
            W = initializers.SCHEMES[name](shape, rng)
        self.params = {"W": W.astype(dtype), "b": np.zeros(self.out_features, dtype=dtype)}

    def forward(self, x):
        params = self.params
        W = params["W"]
        x = self._input(x, W.dtype)
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.in_features}), got {x.shape}"
            )
        self._cache = x
        out = _dot(x, W)  # x @ W, with less dispatch (base._dot)
        out += params["b"]  # in place: one (N, out_features) array, not two
        return out

    def backward(self, dout, input_grad=True):
        """Fill grads and return dx; ``input_grad=False`` skips dx (a matrix product as large
        as the forward one) and returns None, for a first layer whose input is data."""
        x, W, grads = self._cache, self.params["W"], self.grads
        dout = self._check_dout(dout, (len(x) if x is not None else 0, self.out_features),
                                W.dtype)
        grads["W"] = _dot(x.T, dout)
        # the column sums as a matrix-vector product: BLAS does it faster than dout.sum(axis=0)
        grads["b"] = _dot(_constant(len(dout), dout.dtype, 1.0), dout)
        return _dot(dout, W.T) if input_grad else None

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features})"


class _Elementwise(Layer):
    """An activation applied entrywise; input of any shape, output of the same shape.

    Each derivative here is a function of the output alone, so only the output is kept for
    backward (it is the next layer's input anyway) and the input can be freed at once."""

    def forward(self, x):
        out = self._f(self._input(x))
        self._cache = out
        return out

    def backward(self, dout):
        out = self._cache
        dout = self._check_dout(dout, out.shape if out is not None else (),
                                out.dtype if out is not None else None)
        return dout * self._local_grad(out)


class ReLU(_Elementwise):
    """``max(x, 0)``; its derivative is 1 where x > 0 and 0 elsewhere (0 at x = 0)."""

    def _f(self, x):
        return F.relu(x)

    def _local_grad(self, out):
        return out > 0  # where x > 0; booleans: the product with dout keeps dout's dtype


class Sigmoid(_Elementwise):
    """``1 / (1 + exp(-x))``; derivative ``s (1 - s)``."""

    def _f(self, x):
        return F.sigmoid(x)

    def _local_grad(self, out):
        return out * (1 - out)


class Tanh(_Elementwise):
    """``tanh(x)``; derivative ``1 - tanh(x)**2``."""

    def _f(self, x):
        return F.tanh(x)

    def _local_grad(self, out):
        return 1 - out**2


class Sequential(Layer):
    """Layers applied in order; backward runs them in reverse.

    The layers are its children, named ``"0"``, ``"1"``, ..., so ``params`` and ``grads`` are
    flat views named ``"<index>.<name>"`` (``"0.W"``, ``"0.b"``, ...) over the children's own
    arrays: an optimizer updating them updates the children, and ``model.params["0.W"] = W``
    stores W in layer 0. ``layers`` is the tuple of layers. The same layer object twice
    (``Sequential(lin, ReLU(), lin)``) raises `LayerReuseError`.
    """

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is {layer!r}, not a Layer")
            self.add_child(str(i), layer)

    @property
    def layers(self):
        return tuple(self._children.values())

    def forward(self, x):
        for layer in self._children.values():
            x = layer.forward(x)
        return x

    def backward(self, dout, input_grad=True):
        """Backward through the layers in reverse; returns dx. ``input_grad=False`` (the
        model's input is data, as in a training step) returns None and lets the first layer
        skip its dx when it can (``skips_input_grad``); the gradients are the same."""
        layers = self.layers
        for layer in reversed(layers[1:]):
            dout = layer.backward(dout)
        if not layers:
            return dout if input_grad else None
        if input_grad:
            return layers[0].backward(dout)
        if layers[0].skips_input_grad:
            return layers[0].backward(dout, input_grad=False)
        layers[0].backward(dout)
        return None

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self._children)

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self):
        inner = ",\n".join(f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"
