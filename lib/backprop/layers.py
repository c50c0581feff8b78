"""Layers with an explicit forward and backward pass.

One interface for every layer (also in `backprop.conv` and `backprop.rnn`):

- ``forward(x)`` returns the output and keeps what ``backward`` needs;
- ``backward(dout)`` takes the gradient of the loss with respect to the output and returns
  ``dx``, the gradient with respect to the input, after filling ``grads``, a dict with the same
  keys (and array shapes) as ``params``.

Parameters are NumPy arrays that optimizers update in place, so references stay valid.
"""
import numpy as np

from . import functional as F
from . import init as initializers


def as_float_array(x, owner, dtype=None):
    """Return `x` as a floating-point ndarray, or raise a TypeError that names `owner`.

    Integer and boolean input is converted to `dtype` (float64 when None); float input keeps
    its dtype unless `dtype` is given.
    """
    arr = np.asarray(x)
    if arr.dtype.kind in "biu":
        return arr.astype(dtype or np.float64)
    if arr.dtype.kind != "f":
        raise TypeError(f"{owner}: expected a real-valued array, got dtype {arr.dtype}")
    return arr if dtype is None else arr.astype(dtype, copy=False)


def require_rng(rng, owner):
    """Return `rng` if it is a NumPy Generator; otherwise explain how to pass one.

    Layers never draw from a hidden global generator, so every run is reproducible.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{owner}: pass rng=np.random.default_rng(seed) (a NumPy Generator) so the random "
            f"initial weights are reproducible; got {type(rng).__name__}"
        )
    return rng


class Layer:
    """Base class: a layer with `params`, `grads`, and a training/evaluation mode."""

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.training = True
        self._cache = None

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    # -- helpers shared by every layer -------------------------------------------------
    def _check_dout(self, dout, out_shape):
        if self._cache is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        dout = as_float_array(dout, f"{self!r}.backward")
        if dout.shape != tuple(out_shape):
            raise ValueError(
                f"{self!r}.backward: expected dout of shape {tuple(out_shape)} "
                f"(the shape forward returned), got {dout.shape}"
            )
        return dout

    def named_parameters(self):
        """Yield ``(name, param, grad)`` for every parameter; ``grad`` is None before backward."""
        for name, param in self.params.items():
            yield name, param, self.grads.get(name)

    def zero_grad(self):
        """Set every gradient to zeros shaped like its parameter."""
        for name, param in self.params.items():
            self.grads[name] = np.zeros_like(param)

    def train(self):
        """Switch to training mode (matters for dropout); returns self."""
        self.training = True
        return self

    def eval(self):
        """Switch to evaluation mode; returns self."""
        self.training = False
        return self

    def state_dict(self):
        """A copy of every parameter, by name."""
        return {name: param.copy() for name, param in self.params.items()}

    def load_state_dict(self, state):
        """Copy the arrays in `state` into the parameters, in place (names must match exactly)."""
        unknown = sorted(set(state) - set(self.params))
        if unknown:
            raise KeyError(f"{self!r}: state has entries {unknown} that are not parameters "
                           f"(parameters: {sorted(self.params)})")
        for name, param in self.params.items():
            if name not in state:
                raise KeyError(f"{self!r}: state has no entry for parameter {name!r}")
            if np.shape(state[name]) != param.shape:
                raise ValueError(
                    f"{self!r}: parameter {name!r} has shape {param.shape}, "
                    f"state has {np.shape(state[name])}"
                )
            param[...] = state[name]

    def num_parameters(self):
        """Total number of scalar parameters."""
        return sum(p.size for p in self.params.values())

    def __repr__(self):
        return f"{type(self).__name__}()"


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
        x = as_float_array(x, repr(self))
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(
                f"{self!r}: expected input of shape (N, {self.in_features}), got {x.shape}"
            )
        self._cache = x
        return x @ self.params["W"] + self.params["b"]

    def backward(self, dout):
        x = self._cache
        dout = self._check_dout(dout, (len(x) if x is not None else 0, self.out_features))
        self.grads["W"] = x.T @ dout
        self.grads["b"] = dout.sum(axis=0)
        return dout @ self.params["W"].T

    def __repr__(self):
        return f"Linear({self.in_features}, {self.out_features})"


class _Elementwise(Layer):
    """An activation applied entrywise; input of any shape, output of the same shape."""

    def forward(self, x):
        x = as_float_array(x, repr(self))
        out = self._f(x)
        self._cache = (x, out)
        return out

    def backward(self, dout):
        x, out = self._cache if self._cache is not None else (None, None)
        dout = self._check_dout(dout, out.shape if out is not None else ())
        return dout * self._local_grad(x, out)


class ReLU(_Elementwise):
    """``max(x, 0)``; its derivative is 1 where x > 0 and 0 elsewhere (0 at x = 0)."""

    def _f(self, x):
        return F.relu(x)

    def _local_grad(self, x, out):
        return (x > 0).astype(x.dtype)


class Sigmoid(_Elementwise):
    """``1 / (1 + exp(-x))``; derivative ``s (1 - s)``."""

    def _f(self, x):
        return F.sigmoid(x)

    def _local_grad(self, x, out):
        return out * (1 - out)


class Tanh(_Elementwise):
    """``tanh(x)``; derivative ``1 - tanh(x)**2``."""

    def _f(self, x):
        return F.tanh(x)

    def _local_grad(self, x, out):
        return 1 - out**2


class Sequential(Layer):
    """Layers applied in order; backward runs them in reverse.

    ``params`` and ``grads`` are flat views named ``"<index>.<name>"`` (``"0.W"``, ``"0.b"``, ...)
    over the children's own arrays, so an optimizer updating them updates the children.
    """

    def __init__(self, *layers):
        super().__init__()
        if len(layers) == 1 and isinstance(layers[0], (list, tuple)):
            layers = tuple(layers[0])
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is {layer!r}, not a Layer")
        self.layers = list(layers)

    @property
    def params(self):
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.params.items()}

    @params.setter
    def params(self, value):  # Layer.__init__ assigns {}; children own the real arrays
        pass

    @property
    def grads(self):
        return {f"{i}.{k}": v for i, layer in enumerate(self.layers) for k, v in layer.grads.items()}

    @grads.setter
    def grads(self, value):
        pass

    def named_parameters(self):
        # Straight from the children: the flat dict views would be rebuilt once per parameter.
        for i, layer in enumerate(self.layers):
            for name, param, grad in layer.named_parameters():
                yield f"{i}.{name}", param, grad

    def zero_grad(self):
        for layer in self.layers:
            layer.zero_grad()

    def train(self):
        for layer in self.layers:
            layer.train()
        self.training = True
        return self

    def eval(self):
        for layer in self.layers:
            layer.eval()
        self.training = False
        return self

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self):
        inner = ",\n".join(f"  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential(\n{inner}\n)"
