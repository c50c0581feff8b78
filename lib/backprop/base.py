"""The `Layer` base class: one interface for every layer, and the layer tree.

Every layer (in `backprop.layers`, `conv`, `rnn`, `gated`, `sequence`, `regularization`)
subclasses it; import it from `backprop.layers`, which re-exports it. The interface:

- ``forward(x)`` returns the output and keeps what ``backward`` needs. Each forward replaces
  what the previous one kept: ``backward`` always belongs to the LAST forward, so calling
  forward several times (evaluation, finite differences) and then forward + backward is fine;
- ``backward(dout)`` takes the gradient of the loss with respect to the output and returns
  ``dx``, the gradient with respect to the input, after filling ``grads``, a dict with the same
  keys (and array shapes) as ``params``. It ASSIGNS the gradients (it does not add to them).
  A layer that can skip ``dx`` also takes ``backward(dout, input_grad=False)``: it then fills
  ``grads`` the same and returns None, for a caller that has no use for ``dx`` (a model's first
  layer, whose input is data: a training step); its ``skips_input_grad`` is then True.
  `Sequential` passes the request on to its first layer, and PyTorch makes the same saving
  for an input that does not require a gradient. Called as ``backward(dout)``, every layer
  returns ``dx``.

Because a layer keeps one input and assigns its gradients, one layer object must not be used
twice in one model: ``Sequential(lin, ReLU(), lin)`` would compute wrong gradients for ``lin``
without any error. So it is refused with a `LayerReuseError`, at construction (a container
that would hold the same object twice) and at run time (the same layer running twice in one
forward pass of a model in training mode). Use a separate layer per position
(``copy.deepcopy(lin)`` if they should start from the same weights).

Layers form a tree: a container (`Sequential`, `backprop.sequence.TimeDistributed`, or your
own layer) registers its sub-layers with ``add_child(name, layer)``; the base class then
implements, once for every layer, ``named_parameters``, ``params``, ``grads``, ``train`` /
``eval``, ``zero_grad``, ``named_buffers``, ``state_dict`` / ``load_state_dict`` and
``num_parameters`` over the whole tree. A child's parameters are named
``"<child name>.<parameter>"`` (``"0.W"``). Buffers are a layer's state that is not trained
(a batch norm's running statistics): they are in the state dict, not in ``params``.

dtype: a layer with parameters computes in their dtype (float64 by default, or the ``dtype=``
it was built with). Float input of another dtype raises a TypeError rather than being silently
upcast (float32 input to a float64 layer) or rounded (float64 input to a float32 layer); integer
and boolean input is converted to the layer's dtype. The same holds for ``dout`` in backward.
Parameters are NumPy arrays that optimizers update in place, so references stay valid.
"""
import functools
import inspect
import threading
from collections.abc import MutableMapping
from types import MappingProxyType

import numpy as np


def as_float_array(x, owner, dtype=None):
    """Return `x` as a floating-point ndarray, or raise a TypeError that names `owner`.

    Integer and boolean input is converted to `dtype` (float64 when None); float input keeps
    its dtype unless `dtype` is given (then it is cast: use `as_layer_input` to refuse instead).
    """
    arr = np.asarray(x)
    if arr.dtype.kind in "biu":
        return arr.astype(dtype or np.float64)
    if arr.dtype.kind != "f":
        raise TypeError(f"{owner}: expected a real-valued array, got dtype {arr.dtype}")
    return arr if dtype is None else arr.astype(dtype, copy=False)


def as_layer_input(x, owner, dtype, what="input"):
    """`x` as an array of exactly `dtype` (the layer's parameter dtype), or a TypeError.

    Integers and booleans are converted; float input of another precision is refused, because
    NumPy would silently compute in the wider of the two dtypes.
    """
    arr = as_float_array(x, owner, None if np.asarray(x).dtype.kind == "f" else dtype)
    if arr.dtype != dtype:
        raise TypeError(
            f"{owner}: {what} has dtype {arr.dtype} but the layer's parameters are "
            f"{np.dtype(dtype)}; "
            f"convert it with .astype(np.{np.dtype(dtype)}) or build the layer with "
            f"dtype=np.{arr.dtype} (mixing them would silently compute in the wider dtype)"
        )
    return arr


@functools.lru_cache(maxsize=64)
def _constant(m, dtype, value):
    """A read-only vector of m entries equal to `value` (ones; 1 / m for means), cached."""
    vector = np.full(m, value, dtype=dtype)
    vector.flags.writeable = False
    return vector


def _dot(a, b):
    """``a @ b`` for two matrices or a matrix and a vector (`Linear`'s products, the norms'
    sums), never stacks of matrices.

    ``ndarray.dot`` when both operands are contiguous (C or Fortran order): it makes the same
    BLAS call as ``@`` (the same bits, checked on 68,000 random shapes, float64 and float32)
    with less dispatch, 1.05 against 1.8 µs for a 64x64 matrix-vector product, about 0.7 µs
    less per call in general. ``@`` otherwise: for strided operands the two compute
    differently."""
    if a.flags.forc and b.flags.forc:
        return a.dot(b)
    return a @ b


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


class LayerReuseError(ValueError):
    """One layer object used twice in one model, which would give it wrong gradients."""


_REUSE_FIX = ("a layer keeps one input and assigns its gradients, so a second use would "
              "silently give it wrong gradients. Use a separate layer for each use "
              "(copy.deepcopy(layer) for the same initial weights)")


class _ForwardPass(threading.local):
    """How deep in a model forward pass we are, its number, and its outermost layer."""

    def __init__(self):
        self.depth = 0
        self.number = 0
        self.outermost = None


_forward_pass = _ForwardPass()
_OWN = {"params": "_params", "grads": "_grads"}  # where a layer keeps its own dicts
_tree_changes = [0]  # how many children were ever added, to any layer: see _prefixed_layers


def _name(layer):
    """The layer's repr when it fits on one line (a Sequential's does not), else its class name."""
    text = repr(layer)
    return type(layer).__name__ if "\n" in text else text


def _tracked(forward):
    """Wrap a layer's forward so that a second call in the same model forward pass is refused.

    The outermost forward starts a pass; a layer that runs again within it (in training mode)
    raises `LayerReuseError`. ``super().forward(...)`` of the running layer passes through.
    Costs about a microsecond per call.
    """
    @functools.wraps(forward)
    def tracked_forward(self, *args, **kwargs):
        if self._in_forward:  # super().forward(...) of a layer that is already running
            return forward(self, *args, **kwargs)
        state = _forward_pass
        depth = state.depth  # each thread-local attribute read once: they are the cost here
        if depth == 0:
            number = state.number = state.number + 1
            state.outermost = self
        else:
            number = state.number
            if self.training and self._forward_number == number:
                raise LayerReuseError(
                    f"{self!r} ran twice in one forward pass of {_name(state.outermost)}: "
                    f"{_REUSE_FIX}")
        self._forward_number = number
        self._in_forward = True
        state.depth = depth + 1
        try:
            return forward(self, *args, **kwargs)
        finally:
            state.depth = depth
            self._in_forward = False
            if depth == 0:
                state.outermost = None

    return tracked_forward


class ParameterView(MutableMapping):
    """The flat ``{name: array}`` view of a layer tree's ``params`` (or ``grads``).

    Reading gives the children's own arrays (no copies). ``view[name] = array`` stores the
    array in the child that owns ``name``, so writes are never lost; new names and deletion
    are refused, because a container has no parameters of its own to add them to.
    """

    def __init__(self, layer, kind):
        self._layer, self._kind = layer, kind
        self._owners = {name: (owner, key) for name, owner, key in layer._parameter_owners()}

    def _store(self, name):
        """The owning layer's own dict that holds `name`."""
        owner = self._owners[name][0]
        return owner.__dict__.setdefault("_params" if self._kind == "params" else "_grads", {})

    def __getitem__(self, name):
        if name not in self:
            raise KeyError(name)
        return self._store(name)[self._owners[name][1]]

    def __iter__(self):
        if self._kind == "params":
            return iter(self._owners)
        return (name for name in self._owners if name in self)

    def __len__(self):
        return sum(1 for _ in self)

    def __contains__(self, name):
        return name in self._owners and self._owners[name][1] in self._store(name)

    def __setitem__(self, name, value):
        if name not in self._owners:
            raise KeyError(f"{_name(self._layer)}: {name!r} is not a parameter "
                           f"(parameters: {list(self._owners)})")
        self._store(name)[self._owners[name][1]] = value

    def __delitem__(self, name):
        raise TypeError(f"{_name(self._layer)}: {self._kind} of a layer tree cannot be deleted")

    def __repr__(self):
        return repr(dict(self.items()))


class Layer:
    """Base class: a layer with ``params``, ``grads``, sub-layers and a training/evaluation mode.

    A subclass implements ``forward`` and ``backward`` and sets its own parameters with
    ``self.params = {name: array}`` (names without "."); a container registers its sub-layers
    with `add_child`. Everything else (listed in the module docstring) works on the whole tree.
    """

    training = True
    # Whether backward takes input_grad=False (then it skips dx and returns None): set for each
    # class from its backward's signature, so a subclass that overrides backward(dout) says no.
    skips_input_grad = False
    _cache = None
    _forward_number = 0
    _in_forward = False
    _children = MappingProxyType({})

    def __init__(self):
        self._params = {}
        self._grads = {}
        self._children = {}
        self.training = True
        self._cache = None

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "forward" in cls.__dict__:
            cls.forward = _tracked(cls.__dict__["forward"])
        if "backward" in cls.__dict__:
            cls.skips_input_grad = "input_grad" in inspect.signature(
                cls.__dict__["backward"]).parameters

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    # -- the layer tree ---------------------------------------------------------------------
    def add_child(self, name, layer):
        """Register `layer` as a sub-layer called `name`; returns `layer`.

        Its parameters appear as ``"<name>.<parameter>"``. The empty name makes a wrapper whose
        only child's parameters keep their own names (`TimeDistributed`). A layer that is
        already in this tree raises `LayerReuseError`.
        """
        if not isinstance(layer, Layer):
            raise TypeError(f"{self!r}: child {name!r} is {layer!r}, not a Layer")
        if not isinstance(name, str) or "." in name:
            raise ValueError(f"{self!r}: a child's name is a string without '.', got {name!r}")
        if name in self._children:
            raise ValueError(f"{self!r}: there is already a child called {name!r}")
        if "" in self._children or (name == "" and (self._children or self.own_params())):
            raise ValueError(f"{self!r}: a child with the empty name must be the only child "
                             "and the layer's only parameters")
        where = {id(node): path for path, node in self.named_layers()}
        for path, node in layer.named_layers(name):
            if id(node) in where:
                first = where[id(node)] or "the container itself"
                raise LayerReuseError(
                    f"{type(self).__name__}: {node!r} would appear twice in one model, at "
                    f"{first!r} and at {path!r}: {_REUSE_FIX}")
        if "_children" not in self.__dict__:
            self._children = {}
        self._children[name] = layer
        _tree_changes[0] += 1  # every cached walk of a tree (_prefixed_layers) is now stale
        return layer

    def children(self):
        """The direct sub-layers, in registration order."""
        return iter(self._children.values())

    def named_children(self):
        """``(name, layer)`` of the direct sub-layers."""
        return iter(self._children.items())

    def named_layers(self, prefix=""):
        """``(path, layer)`` for this layer (path `prefix`) and every layer below it, depth
        first; paths join child names with "." (``"0"``, ``"1.0"``)."""
        yield prefix, self
        for name, child in self._children.items():
            path = f"{prefix}.{name}" if prefix and name else (prefix or name)
            yield from child.named_layers(path)

    def _prefixed_layers(self):
        """``[(prefix, layer)]``: this layer and every layer below it, depth first, with the
        prefix of its parameters' names (``""``, ``"0."``, ``"1.block.0."``). Kept between calls
        (an optimizer's step walks the tree once per step) until any layer gets a new child."""
        cached = self.__dict__.get("_prefixed_cache")
        if cached is not None and cached[0] == _tree_changes[0]:
            return cached[1]
        layers, stack = [], [("", self)]
        while stack:
            prefix, layer = stack.pop()
            layers.append((prefix, layer))
            stack.extend((f"{prefix}{name}." if name else prefix, child)
                         for name, child in reversed(layer._children.items()))
        self._prefixed_cache = (_tree_changes[0], layers)
        return layers

    def _parameter_owners(self, prefix=""):
        """``(full name, owning layer, own name)`` of every parameter in the tree."""
        for key in self.own_params():
            yield prefix + key, self, key
        for name, child in self._children.items():
            yield from child._parameter_owners(f"{prefix}{name}." if name else prefix)

    def own_params(self):
        """This layer's own parameters (without its children's): a dict."""
        return self.__dict__.get("_params", {})

    @property
    def params(self):
        """``{name: array}`` of every parameter in the tree; the layer's own dict when it has
        no children, otherwise a `ParameterView` whose writes go to the owning child."""
        return self._tree_dict("params")

    @params.setter
    def params(self, value):
        self._params = self._own_dict(value, "params")

    @property
    def grads(self):
        """``{name: gradient}`` with the keys of ``params`` that have one (after backward)."""
        return self._tree_dict("grads")

    @grads.setter
    def grads(self, value):
        self._grads = self._own_dict(value, "grads")

    def _tree_dict(self, kind):
        if not self._children:  # a leaf: its own dict (made on first use)
            own = self.__dict__.get(_OWN[kind])
            if own is None:
                own = self.__dict__[_OWN[kind]] = {}
            return own
        return ParameterView(self, kind)

    def _own_dict(self, value, kind):
        """`value` checked as this layer's own ``params`` / ``grads`` dict."""
        if not isinstance(value, dict):
            raise TypeError(f"{_name(self)}: {kind} must be a dict of arrays, "
                            f"got {type(value).__name__}")
        for name in value:
            if not isinstance(name, str) or "." in name:
                raise ValueError(
                    f"{_name(self)}: {kind} = {{...}} sets the layer's own entries, and {name!r} "
                    f"belongs to a child (or is not a name): write model.{kind}[{name!r}] = "
                    "array, or model.load_state_dict(state) for parameters")
        if value and "" in self._children:
            raise ValueError(f"{_name(self)}: a wrapper has no {kind} of its own; "
                             f"set {kind} of its layer")
        return value

    def named_parameters(self):
        """Yield ``(name, param, grad)`` for every parameter; ``grad`` is None before backward."""
        for prefix, owner in self._prefixed_layers():
            params = owner.__dict__.get("_params")
            if params:
                grads = owner.__dict__.get("_grads", {})
                for key, param in params.items():
                    yield prefix + key, param, grads.get(key)

    def zero_grad(self):
        """Set every gradient in the tree to zeros shaped like its parameter."""
        for _, layer in self.named_layers():
            grads = layer.__dict__.setdefault("_grads", {})
            for key, param in layer.own_params().items():
                grads[key] = np.zeros_like(param)

    def train(self):
        """Switch the whole tree to training mode (matters for dropout); returns self."""
        for _, layer in self.named_layers():
            layer.training = True
        return self

    def eval(self):
        """Switch the whole tree to evaluation mode; returns self."""
        for _, layer in self.named_layers():
            layer.training = False
        return self

    def own_buffers(self):
        """This layer's own buffers: state that is not trained (``{name: array}``, e.g. a batch
        norm's running statistics). A layer sets them with ``self._buffers = {...}`` and updates
        them in place."""
        return self.__dict__.get("_buffers", {})

    def named_buffers(self):
        """Yield ``(name, array)`` for every buffer in the tree, named like parameters."""
        for path, layer in self.named_layers():
            for key, buffer in layer.own_buffers().items():
                yield (f"{path}.{key}" if path else key), buffer

    def state_dict(self):
        """A copy of every parameter and buffer, by name (buffers after the parameters)."""
        state = {name: param.copy() for name, param, _ in self.named_parameters()}
        state.update((name, buffer.copy()) for name, buffer in self.named_buffers())
        return state

    def load_state_dict(self, state):
        """Copy the arrays in `state` into the parameters and buffers, in place (names must
        match exactly)."""
        params = {name: param for name, param, _ in self.named_parameters()}
        buffers = dict(self.named_buffers())
        unknown = sorted(set(state) - set(params) - set(buffers))
        if unknown:
            extra = f"; buffers: {sorted(buffers)}" if buffers else ""
            raise KeyError(f"{self!r}: state has entries {unknown} that are not parameters "
                           f"(parameters: {sorted(params)}{extra})")
        for kind, arrays in (("parameter", params), ("buffer", buffers)):
            for name, array in arrays.items():
                if name not in state:
                    raise KeyError(f"{self!r}: state has no entry for {kind} {name!r}")
                if np.shape(state[name]) != array.shape:
                    raise ValueError(
                        f"{self!r}: {kind} {name!r} has shape {array.shape}, "
                        f"state has {np.shape(state[name])}"
                    )
        for name, array in {**params, **buffers}.items():
            array[...] = state[name]

    def num_parameters(self):
        """Total number of scalar parameters."""
        return sum(param.size for _, param, _ in self.named_parameters())

    # -- helpers shared by every layer -------------------------------------------------
    def _input(self, x, dtype=None):
        """`x` as this layer's input: an array of exactly `dtype` (`as_layer_input`), or with
        `dtype` None of any float dtype (`as_float_array`). An ndarray that already is one, the
        case of every step of a training loop, passes without building the layer's name for an
        error message it would not need."""
        if type(x) is np.ndarray and (x.dtype.kind == "f" if dtype is None else x.dtype == dtype):
            return x
        if dtype is None:
            return as_float_array(x, repr(self))
        return as_layer_input(x, repr(self), dtype)

    def _check_dout(self, dout, out_shape, dtype=None):
        if self._cache is None:
            raise RuntimeError(f"{self!r}: backward() called before forward()")
        if (type(dout) is np.ndarray and dout.shape == out_shape
                and (dout.dtype.kind == "f" if dtype is None else dout.dtype == dtype)):
            return dout  # the usual case, checked without building the error messages' names
        owner = f"{self!r}.backward"
        dout = (as_float_array(dout, owner) if dtype is None
                else as_layer_input(dout, owner, dtype, "dout"))
        if dout.shape != tuple(out_shape):
            raise ValueError(
                f"{self!r}.backward: expected dout of shape {tuple(out_shape)} "
                f"(the shape forward returned), got {dout.shape}"
            )
        return dout

    def __repr__(self):
        return f"{type(self).__name__}()"
