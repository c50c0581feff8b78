"""Weight initialisation schemes.

Every scheme takes a weight ``shape`` and (if random) an explicit ``np.random.Generator`` and
returns a new array. Fans follow PyTorch's ``_calculate_fan_in_and_fan_out`` with one deliberate
difference for 2-D weights, because our `backprop.layers.Linear` stores W as (in, out):

- 2-D ``(in_features, out_features)``: fan_in = in_features, fan_out = out_features
  (PyTorch's Linear weight is (out, in), so it reads the axes the other way round);
- 3-D and more, convolution kernels ``(out_channels, in_channels, *kernel)`` as in PyTorch:
  fan_in = in_channels * prod(kernel), fan_out = out_channels * prod(kernel).

Biases are 1-D and have no fans: initialise them with `zeros`.
"""
import math
from numbers import Integral, Real

import numpy as np


def _check_shape(shape, owner, min_ndim=1):
    shape = (shape,) if isinstance(shape, Integral) else shape
    try:
        shape = tuple(shape)
    except TypeError:
        raise TypeError(
            f"{owner}: shape must be an int or a tuple of ints, got {shape!r}"
        ) from None
    if not all(isinstance(n, Integral) for n in shape):
        raise TypeError(f"{owner}: shape must contain ints only, got {shape}")
    if any(n < 1 for n in shape):
        raise ValueError(f"{owner}: every dimension must be >= 1, got shape {shape}")
    if len(shape) < min_ndim:
        raise ValueError(
            f"{owner}: needs a weight shape with at least {min_ndim} dimensions, (in, out) or "
            f"(out_channels, in_channels, kh, kw), got {shape} (use zeros for a bias)"
        )
    return tuple(int(n) for n in shape)


def _check_rng(rng, owner):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"{owner}: rng must be a numpy.random.Generator, e.g. np.random.default_rng(0); "
            f"got {type(rng).__name__}"
        )


def _check_positive(value, name, owner):
    if isinstance(value, bool) or not isinstance(value, Real) or not value > 0 or math.isinf(value):
        raise ValueError(f"{owner}: {name} must be a positive finite number, got {value!r}")


def fan_in_and_fan_out(shape):
    """``(fan_in, fan_out)`` of a weight of this shape: see the module docstring for layouts."""
    return _fans(shape, "fan_in_and_fan_out")[1:]


def _fans(shape, owner):
    """``(shape, fan_in, fan_out)``, with errors naming ``owner``."""
    shape = _check_shape(shape, owner, min_ndim=2)
    if len(shape) == 2:
        return shape, shape[0], shape[1]
    receptive_field = math.prod(shape[2:])
    return shape, shape[1] * receptive_field, shape[0] * receptive_field


def zeros(shape, dtype=np.float64):
    """All zeros. Right for biases; for weights it leaves every unit of a layer identical."""
    return np.zeros(_check_shape(shape, "zeros"), dtype=dtype)


def small_random(shape, rng, scale=0.01, dtype=np.float64):
    """N(0, scale**2) entries, CS231n's ``weight_scale * randn``; signals shrink in deep nets."""
    shape = _check_shape(shape, "small_random")
    _check_rng(rng, "small_random")
    _check_positive(scale, "scale", "small_random")
    return (rng.standard_normal(shape) * scale).astype(dtype, copy=False)


def lecun_normal(shape, rng, dtype=np.float64):
    """N(0, 1/fan_in): keeps the variance of a linear layer's output equal to its input's.

    The default of `backprop.layers.Linear` (same draws from the same generator).
    """
    shape, fan_in, _ = _fans(shape, "lecun_normal")
    _check_rng(rng, "lecun_normal")
    return (rng.standard_normal(shape) * math.sqrt(1.0 / fan_in)).astype(dtype, copy=False)


def xavier_uniform(shape, rng, gain=1.0, dtype=np.float64):
    """Glorot: U(-a, a) with ``a = gain * sqrt(6 / (fan_in + fan_out))``, for tanh/sigmoid nets."""
    shape, fan_in, fan_out = _fans(shape, "xavier_uniform")
    _check_rng(rng, "xavier_uniform")
    _check_positive(gain, "gain", "xavier_uniform")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-bound, bound, shape).astype(dtype, copy=False)


def xavier_normal(shape, rng, gain=1.0, dtype=np.float64):
    """Glorot: N(0, std**2) with ``std = gain * sqrt(2 / (fan_in + fan_out))``."""
    shape, fan_in, fan_out = _fans(shape, "xavier_normal")
    _check_rng(rng, "xavier_normal")
    _check_positive(gain, "gain", "xavier_normal")
    std = gain * math.sqrt(2.0 / (fan_in + fan_out))
    return (rng.standard_normal(shape) * std).astype(dtype, copy=False)


def he_normal(shape, rng, dtype=np.float64):
    """Kaiming (fan_in mode, for ReLU): N(0, 2/fan_in).

    ReLU zeroes half of its input, halving the signal's second moment; the 2 makes up for it.
    """
    shape, fan_in, _ = _fans(shape, "he_normal")
    _check_rng(rng, "he_normal")
    return (rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(dtype, copy=False)


def he_uniform(shape, rng, dtype=np.float64):
    """Kaiming (fan_in mode, for ReLU): U(-a, a), ``a = sqrt(6 / fan_in)`` (variance 2/fan_in)."""
    shape, fan_in, _ = _fans(shape, "he_uniform")
    _check_rng(rng, "he_uniform")
    bound = math.sqrt(6.0 / fan_in)
    return rng.uniform(-bound, bound, shape).astype(dtype, copy=False)


SCHEMES = {
    "zeros": lambda shape, rng, dtype=np.float64: zeros(shape, dtype),
    "small_random": small_random,
    "lecun_normal": lecun_normal,
    "xavier_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
}
"""Every scheme by name, each callable as ``scheme(shape, rng, dtype=...)``."""


def init_linear(layer, scheme, rng, **scheme_kwargs):
    """Re-initialise a `backprop.layers.Linear` in place: W by ``scheme``, b to zeros.

    Any layer whose ``params`` are ``W (in, out)`` and ``b (out,)`` qualifies (also
    `backprop.sequence.TemporalLinear`); it is recognised by its parameters, not its class, so
    this module does not import `backprop.layers` (which imports it).

    scheme: a name from `SCHEMES` (e.g. ``"he_normal"``) or a function ``(shape, rng) -> array``.
    ``scheme_kwargs`` go to the scheme (``scale=0.1`` for small_random, ``gain=`` for Xavier).
    The arrays are overwritten, not replaced, so an optimizer holding them keeps working; their
    dtype is kept. Returns the layer.
    """
    params = getattr(layer, "params", None)
    W, b = (params.get("W"), params.get("b")) if hasattr(params, "get") else (None, None)
    if not (isinstance(W, np.ndarray) and W.ndim == 2 and isinstance(b, np.ndarray)
            and b.shape == W.shape[1:]):
        raise TypeError(f"init_linear: expected a Linear layer (params W of shape (in, out) and "
                        f"b of shape (out,)), got {layer!r}")
    if isinstance(scheme, str):
        if scheme not in SCHEMES:
            raise ValueError(
                f"init_linear: unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}"
            )
        scheme = SCHEMES[scheme]
    elif not callable(scheme):
        raise TypeError(f"init_linear: scheme must be a name or a function, got {scheme!r}")
    new_W = np.asarray(scheme(W.shape, rng, **scheme_kwargs))
    if new_W.shape != W.shape:
        raise ValueError(
            f"init_linear: the scheme returned shape {new_W.shape}, expected {W.shape}"
        )
    W[...] = new_W
    b[...] = 0
    return layer
