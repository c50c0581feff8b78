"""Normalization layers: `BatchNorm1d`, `BatchNorm2d`, `LayerNorm` and `RMSNorm`, as PyTorch's.

Each normalizes its input over some axes, ``xhat = (x - mean) / sqrt(var + eps)`` (the variance
is the biased one, divided by the count M), then scales and shifts it per feature:
``out = weight * xhat + bias``. Parameter, buffer and argument names are PyTorch's (``weight``
and ``bias``, where `backprop.layers.Linear` says ``W`` and ``b``), so a state dict reads like
PyTorch's and the tests compare the two directly.

- Batch norm normalizes each channel over the batch (and the positions L or H, W): the
  statistics couple the examples, so one example's gradient depends on every other's. In
  training mode it uses the batch's statistics and updates the running averages (buffers
  ``running_mean``, ``running_var`` with the unbiased variance, ``num_batches_tracked``); in
  evaluation mode (``model.eval()``) it uses those running averages, so an example's output no
  longer depends on its batch.
- Layer norm and RMS norm normalize each example over its last axes: same in both modes.

The backward passes are the compact forms. With ``g = weight * dout`` (the gradient reaching
``xhat``) and means over the normalized axes,

    batch/layer norm:  dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + eps)
    RMS norm:          dx = (g - xhat * mean(g * xhat)) / sqrt(mean(x**2) + eps)

The first term is the direct path through ``x``; ``mean(g)`` is the path through the mean and
``xhat * mean(g * xhat)`` the path through the variance (and, for RMS norm, the mean square).
In evaluation mode the statistics are constants and batch norm's ``dx`` is ``g / sqrt(var + eps)``.

Non-finite input (NaN or inf) raises a ValueError that names where: batch statistics would
spread it over a whole batch or example, and a running average would keep it for good.
"""
import math

import numpy as np

from .base import Layer, as_float_array, as_layer_input

_DIVERGED = ("if this happened in training, an earlier layer diverged: lower the learning "
             "rate; otherwise check the data for missing values")


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_eps(owner, eps):
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)) \
            or not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"{owner}: eps, added to the variance, must be a number >= 0, got {eps!r}")
    return float(eps)


def _check_dtype(owner, dtype):
    if np.dtype(dtype).kind != "f":
        raise TypeError(f"{owner}: dtype must be a float type (np.float64 or np.float32), "
                        f"got {np.dtype(dtype)}")
    return np.dtype(dtype)


def _non_finite(owner, x):
    """The ValueError for input `x` that contains NaN or inf (or overflows when squared)."""
    bad = np.argwhere(~np.isfinite(x))
    where = (f"NaN or inf (first at index {tuple(int(i) for i in bad[0])})" if len(bad)
             else "values so large that their square overflows")
    return ValueError(f"{owner}: input contains {where}; {_DIVERGED}")


def _compact_dx(g, xhat, inv_std, axes, count, centred=True):
    """``inv_std * (g - mean(g) - xhat * mean(g * xhat))`` with means over `axes` (M = count);
    without the ``mean(g)`` term when not `centred` (RMS norm)."""
    through_scale = (g * xhat).sum(axis=axes, keepdims=True) * (1.0 / count)
    inner = g - xhat * through_scale
    if centred:
        inner -= g.sum(axis=axes, keepdims=True) * (1.0 / count)
    return inner * inv_std


class _BatchNorm(Layer):
    """What BatchNorm1d and BatchNorm2d share; they differ in the input shapes they accept."""

    _ndims = ()       # accepted numbers of dimensions of the input
    _layout = ""      # the accepted shapes, for error messages

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=np.float64):
        super().__init__()
        name = type(self).__name__
        if not _is_int(num_features) or num_features < 1:
            raise ValueError(f"{name}: num_features (channels C) must be an integer >= 1, "
                             f"got {num_features!r}")
        if momentum is not None and (isinstance(momentum, bool) or not isinstance(
                momentum, (int, float, np.floating, np.integer)) or not 0 <= momentum <= 1):
            raise ValueError(f"{name}: momentum must lie in [0, 1] (the weight of the new batch "
                             f"in the running averages), or be None for a cumulative average; "
                             f"got {momentum!r}")
        self.num_features, self.eps = int(num_features), _check_eps(name, eps)
        self.momentum = None if momentum is None else float(momentum)
        self.affine, self.track_running_stats = bool(affine), bool(track_running_stats)
        self.dtype = _check_dtype(name, dtype)
        c = self.num_features
        if self.affine:
            self.params = {"weight": np.ones(c, dtype=dtype), "bias": np.zeros(c, dtype=dtype)}
        if self.track_running_stats:
            self._buffers = {"running_mean": np.zeros(c, dtype=dtype),
                             "running_var": np.ones(c, dtype=dtype),
                             "num_batches_tracked": np.zeros((), dtype=np.int64)}

    # PyTorch's attribute names; None without track_running_stats, as there
    running_mean = property(lambda self: self.own_buffers().get("running_mean"))
    running_var = property(lambda self: self.own_buffers().get("running_var"))
    num_batches_tracked = property(lambda self: self.own_buffers().get("num_batches_tracked"))

    def _check_input(self, x):
        dtype = self.params["weight"].dtype if self.affine else self.dtype
        x = as_layer_input(x, repr(self), dtype)
        if x.ndim not in self._ndims or x.shape[1] != self.num_features:
            raise ValueError(f"{self!r}: expected input of shape {self._layout} with "
                             f"C = {self.num_features} channels, got {x.shape}")
        return x

    def forward(self, x):
        x = self._check_input(x)
        # per-channel statistics: over the batch axis and every axis after the channels
        axes = (0, *range(2, x.ndim))
        count = x.size // self.num_features
        batch_stats = self.training or not self.track_running_stats
        if batch_stats:
            if count == 1:
                raise ValueError(
                    f"{self!r}: expected more than 1 value per channel when training, got input "
                    f"of shape {x.shape}: batch statistics of a single value are meaningless "
                    "(its variance is 0). Use a batch of 2 or more, or model.eval() to use the "
                    "running averages")
            mean = x.sum(axis=axes, keepdims=True) * (1.0 / count)
            xc = x - mean
            var = (xc * xc).sum(axis=axes, keepdims=True) * (1.0 / count)
            if not np.isfinite(var).all():
                raise _non_finite(repr(self), x)
            if self.training and self.track_running_stats:
                self._update_running_stats(mean.ravel(), var.ravel(), count)
        else:
            if not np.isfinite(x).all():
                raise _non_finite(repr(self), x)
            shape = (1, -1) + (1,) * (x.ndim - 2)
            mean = self.running_mean.reshape(shape)
            var = self.running_var.reshape(shape)
            xc = x - mean
        inv_std = 1.0 / np.sqrt(var + self.eps)
        xhat = xc * inv_std
        self._cache = (xhat, inv_std, axes, count if batch_stats else None)
        if not self.affine:
            return xhat
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return xhat * self.params["weight"].reshape(shape) + self.params["bias"].reshape(shape)

    def _update_running_stats(self, mean, var, count):
        """PyTorch's update: ``running = (1 - momentum) * running + momentum * batch``, with the
        batch's unbiased variance ``var * M / (M - 1)``; momentum None averages every batch so
        far equally (factor 1 / num_batches_tracked)."""
        buffers = self._buffers
        buffers["num_batches_tracked"] += 1
        factor = (1.0 / float(buffers["num_batches_tracked"]) if self.momentum is None
                  else self.momentum)
        for name, batch in (("running_mean", mean), ("running_var", var * (count / (count - 1)))):
            buffers[name] *= 1.0 - factor
            buffers[name] += factor * batch

    def backward(self, dout):
        xhat, inv_std, axes, count = self._cache if self._cache is not None else (None,) * 4
        dout = self._check_dout(dout, xhat.shape if xhat is not None else (),
                                xhat.dtype if xhat is not None else None)
        if self.affine:
            shape = (1, -1) + (1,) * (xhat.ndim - 2)
            self.grads["weight"] = (dout * xhat).sum(axis=axes)
            self.grads["bias"] = dout.sum(axis=axes)
            g = dout * self.params["weight"].reshape(shape)
        else:
            g = dout
        if count is None:  # evaluation mode: the running statistics are constants
            return g * inv_std
        return _compact_dx(g, xhat, inv_std, axes, count)

    def __repr__(self):
        extra = [f"{name}={value:g}" if isinstance(value, float) else f"{name}={value}"
                 for name, value, default in (
                     ("eps", self.eps, 1e-5), ("momentum", self.momentum, 0.1),
                     ("affine", self.affine, True),
                     ("track_running_stats", self.track_running_stats, True))
                 if value != default]  # the arguments that differ from the defaults
        return f"{type(self).__name__}({', '.join([str(self.num_features), *extra])})"


class BatchNorm1d(_BatchNorm):
    """Batch normalization of features, as PyTorch's ``nn.BatchNorm1d``.

    Shapes: x ``(N, C)`` (statistics of each feature over the batch) or ``(N, C, L)`` (over the
    batch and the L positions); out the same. Parameters ``weight`` (C,) starting at 1 and
    ``bias`` (C,) at 0 (``affine=False``: none). Buffers ``running_mean`` (C,),
    ``running_var`` (C,), ``num_batches_tracked`` () (``track_running_stats=False``: none, and
    batch statistics in both modes). Training mode needs more than one value per channel.
    """

    _ndims = (2, 3)
    _layout = "(N, C) or (N, C, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalization of image channels, as PyTorch's ``nn.BatchNorm2d``.

    Shapes: x ``(N, C, H, W)``, statistics of each channel over N, H and W; out the same.
    Parameters and buffers as `BatchNorm1d`.
    """

    _ndims = (4,)
    _layout = "(N, C, H, W)"


def _check_shape(owner, normalized_shape):
    shape = (normalized_shape,) if _is_int(normalized_shape) else normalized_shape
    try:
        shape = tuple(shape)
    except TypeError:
        shape = None
    if not shape or not all(_is_int(n) and n >= 1 for n in shape):
        raise ValueError(f"{owner}: normalized_shape must be an integer >= 1 or a non-empty "
                         f"tuple of them (the sizes of the last axes), got {normalized_shape!r}")
    return tuple(int(n) for n in shape)


class _LastAxesNorm(Layer):
    """What LayerNorm and RMSNorm share: each example is normalized over its last axes."""

    def _setup(self, normalized_shape, affine, bias, dtype):
        name = type(self).__name__
        self.normalized_shape = _check_shape(name, normalized_shape)
        self.elementwise_affine, self.dtype = bool(affine), _check_dtype(name, dtype)
        params = {}
        if self.elementwise_affine:
            params["weight"] = np.ones(self.normalized_shape, dtype=dtype)
            if bias:
                params["bias"] = np.zeros(self.normalized_shape, dtype=dtype)
        self.params = params

    def _check_input(self, x):
        params = self.own_params()
        x = (as_layer_input(x, repr(self), params["weight"].dtype) if params
             else as_float_array(x, repr(self)))
        k = len(self.normalized_shape)
        if x.shape[x.ndim - k:] != self.normalized_shape or x.ndim < k:
            raise ValueError(f"{self!r}: expected input of shape (..., "
                             f"{', '.join(map(str, self.normalized_shape))}) (its last {k} "
                             f"ax{'i' if k == 1 else 'e'}s normalized), got {x.shape}")
        return x, tuple(range(x.ndim - k, x.ndim)), tuple(range(x.ndim - k))

    def _affine(self, xhat):
        params = self.own_params()
        out = xhat * params["weight"] if "weight" in params else xhat
        return out + params["bias"] if "bias" in params else out

    def _affine_backward(self, dout, xhat, lead):
        """Fill the parameters' gradients (summed over the leading axes); return ``g``, the
        gradient with respect to ``xhat``."""
        params = self.own_params()
        if "weight" not in params:
            return dout
        self.grads["weight"] = (dout * xhat).sum(axis=lead)
        if "bias" in params:
            self.grads["bias"] = dout.sum(axis=lead)
        return dout * params["weight"]

    def backward(self, dout):
        xhat, inv_std, axes, lead = self._cache if self._cache is not None else (None,) * 4
        dout = self._check_dout(dout, xhat.shape if xhat is not None else (),
                                xhat.dtype if xhat is not None else None)
        g = self._affine_backward(dout, xhat, lead)
        return _compact_dx(g, xhat, inv_std, axes, math.prod(self.normalized_shape),
                           centred=self._centred)


class LayerNorm(_LastAxesNorm):
    """Layer normalization, as PyTorch's ``nn.LayerNorm``: each example is normalized over its
    last ``len(normalized_shape)`` axes, the same way in training and evaluation mode.

    Shapes: x ``(..., *normalized_shape)``, e.g. ``(N, D)`` with ``normalized_shape=D``; out
    the same. Parameters ``weight`` and ``bias`` of shape normalized_shape, starting at 1 and 0
    (``elementwise_affine=False``: none; ``bias=False``: no bias).
    """

    _centred = True

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 dtype=np.float64):
        super().__init__()
        self.eps = _check_eps("LayerNorm", eps)
        self._setup(normalized_shape, elementwise_affine, bias, dtype)

    def forward(self, x):
        x, axes, lead = self._check_input(x)
        count = math.prod(self.normalized_shape)
        xc = x - x.sum(axis=axes, keepdims=True) * (1.0 / count)
        var = (xc * xc).sum(axis=axes, keepdims=True) * (1.0 / count)
        if not np.isfinite(var).all():
            raise _non_finite(repr(self), x)
        inv_std = 1.0 / np.sqrt(var + self.eps)
        xhat = xc * inv_std
        self._cache = (xhat, inv_std, axes, lead)
        return self._affine(xhat)

    def __repr__(self):
        extra = "" if self.eps == 1e-5 else f", eps={self.eps:g}"
        return f"LayerNorm({self.normalized_shape}{extra})"


class RMSNorm(_LastAxesNorm):
    """Root-mean-square normalization, as PyTorch's ``nn.RMSNorm``:
    ``out = weight * x / sqrt(mean(x**2) + eps)`` over the last ``len(normalized_shape)`` axes
    (no centring, no bias). eps None: the machine epsilon of the input's dtype, as PyTorch.

    Shapes as `LayerNorm`; parameter ``weight`` of shape normalized_shape starting at 1
    (``elementwise_affine=False``: none).
    """

    _centred = False

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, dtype=np.float64):
        super().__init__()
        self.eps = None if eps is None else _check_eps("RMSNorm", eps)
        self._setup(normalized_shape, elementwise_affine, False, dtype)

    def forward(self, x):
        x, axes, lead = self._check_input(x)
        mean_square = (x * x).sum(axis=axes, keepdims=True) * (1.0 / math.prod(
            self.normalized_shape))
        if not np.isfinite(mean_square).all():
            raise _non_finite(repr(self), x)
        eps = np.finfo(x.dtype).eps if self.eps is None else self.eps
        inv_rms = 1.0 / np.sqrt(mean_square + eps)
        xhat = x * inv_rms
        self._cache = (xhat, inv_rms, axes, lead)
        return self._affine(xhat)

    def __repr__(self):
        extra = "" if self.eps is None else f", eps={self.eps:g}"
        return f"RMSNorm({self.normalized_shape}{extra})"
