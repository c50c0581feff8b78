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
import functools
import math

import numpy as np

from .base import Layer, _constant, _dot

_DIVERGED = ("if this happened in training, an earlier layer diverged: lower the learning "
             "rate; otherwise check the data for missing values")


def _is_int(value):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_eps(owner, eps):
    if isinstance(eps, bool) or not isinstance(eps, (int, float, np.floating, np.integer)) \
            or not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"{owner}: eps, added to the variance, must be a number >= 0, "
                         f"got {eps!r}")
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


# -- the computation, on a matrix whose ROWS are normalized ---------------------------------------
# Every layer here views its input as a matrix `a` (R, M) and normalizes each row over its M
# entries (layer norm: one row per example; batch norm: one row per channel). A row's sum is a
# matrix-vector product with a vector of ones, which BLAS does several times faster than
# NumPy's reductions on matrices this small; the statistics come back as (R, 1) columns.
def _row_statistics(a, eps, centred=True):
    """``(mean, xc, var, inv_std)`` of the rows of `a`: the means (R,) (None unless
    `centred`: RMS norm does not centre), `a` minus them, the biased mean square var (R,) of
    `xc`, and ``1 / sqrt(var + eps)`` as an (R, 1) column."""
    mean_weights = _constant(a.shape[1], a.dtype, 1.0 / a.shape[1])
    mean = _dot(a, mean_weights) if centred else None
    xc = a - mean[:, None] if centred else a
    if xc.flags.c_contiguous:  # rows contiguous: row dot products, without an (R, M) temporary
        var = np.vecdot(xc, xc) * (1.0 / a.shape[1])
    else:  # np.vecdot along strided rows is slower than the temporary (x.T of batch norm)
        var = _dot(xc * xc, mean_weights)
    return mean, xc, var, ((var + eps) ** -0.5)[:, None]  # one call fewer than 1 / sqrt


class _BatchNorm(Layer):
    """What BatchNorm1d and BatchNorm2d share; they differ in the input shapes they accept.

    The input is viewed as a matrix with one row per channel: axes ``(C, <positions>, N)``
    flattened to ``(C, M)``. For (N, C) input that is ``x.T``; for images stored batch-last,
    as `backprop.conv` returns them, it is a view too, and the output keeps that layout.
    """

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

    @staticmethod
    @functools.lru_cache(maxsize=8)
    def _axis_orders(ndim):
        """The axis order (C, <positions>, N) of the matrix view, and the order undoing it."""
        order = (1, *range(2, ndim), 0)
        return order, tuple(int(i) for i in np.argsort(order))

    def _rows(self, x):
        """The (C, M) matrix view of x (a copy when x's memory order does not allow a view),
        its shape before flattening, and the axis order that undoes the transposition."""
        order, undo = self._axis_orders(x.ndim)
        a = x.transpose(order)
        return a.reshape(self.num_features, -1), a.shape, undo

    def forward(self, x):
        params, buffers = self.own_params(), self.own_buffers()
        # the dtype of the parameters, else of the running statistics, else any float dtype
        x = self._input(x, params["weight"].dtype if params else
                        buffers["running_mean"].dtype if buffers else None)
        if x.ndim not in self._ndims or x.shape[1] != self.num_features:
            raise ValueError(f"{self!r}: expected input of shape {self._layout} with "
                             f"C = {self.num_features} channels, got {x.shape}")
        a, shape, undo = self._rows(x)
        count = a.shape[1]
        batch_stats = self.training or not self.track_running_stats
        if batch_stats:
            if count == 1:
                raise ValueError(
                    f"{self!r}: expected more than 1 value per channel when training, got input "
                    f"of shape {x.shape}: batch statistics of a single value are meaningless "
                    "(its variance is 0). Use a batch of 2 or more, or model.eval() to use the "
                    "running averages")
            mean, xc, var, inv_std = _row_statistics(a, self.eps)
            if not math.isfinite(np.add.reduce(var)):  # NaN or inf somewhere in x
                raise _non_finite(repr(self), x)
            if self.training and self.track_running_stats:
                self._update_running_stats(mean, var, count)
        else:
            if not np.isfinite(a).all():
                raise _non_finite(repr(self), x)
            xc = a - self.running_mean[:, None]
            inv_std = (1.0 / np.sqrt(self.running_var + self.eps))[:, None]
        # weight * xhat + bias with xhat = xc * inv_std, in one product: scale = weight * inv_std
        scale = inv_std * params["weight"][:, None] if self.affine else inv_std
        out = xc * scale
        if self.affine:
            out += params["bias"][:, None]
        self._cache = (xc, inv_std, scale, x.shape, shape, undo, batch_stats)
        return out.reshape(shape).transpose(undo)

    def _update_running_stats(self, mean, var, count):
        """PyTorch's update: ``running = (1 - momentum) * running + momentum * batch``, with the
        batch's unbiased variance ``var * M / (M - 1)``; momentum None averages every batch so
        far equally (factor 1 / num_batches_tracked)."""
        buffers = self._buffers
        buffers["num_batches_tracked"] += 1
        factor = (1.0 / float(buffers["num_batches_tracked"]) if self.momentum is None
                  else self.momentum)
        for name, batch in (("running_mean", mean),
                            ("running_var", var * (count / (count - 1)))):
            buffers[name] *= 1.0 - factor
            buffers[name] += factor * batch

    def backward(self, dout):
        xc, inv_std, scale, x_shape, shape, undo, batch_stats = \
            self._cache if self._cache is not None else (None,) * 7
        dout = self._check_dout(dout, x_shape, xc.dtype if xc is not None else None)
        g = self._rows(dout)[0]
        if self.affine or batch_stats:
            ones = _constant(g.shape[1], g.dtype, 1.0)
            g_xc = g * xc
            dbias, dweight = _dot(g, ones), _dot(g_xc, ones) * inv_std[:, 0]
        if self.affine:
            self.grads["bias"], self.grads["weight"] = dbias, dweight
        dx = g * scale
        if batch_stats:  # the paths through the batch mean and variance (compact form)
            along_xc = scale * inv_std * (dweight / g.shape[1])[:, None]
            dx -= np.multiply(xc, along_xc, out=g_xc)  # g_xc's memory, used up
            dx -= scale * (dbias / g.shape[1])[:, None]
        return dx.reshape(shape).transpose(undo)

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
    """What LayerNorm and RMSNorm share: each example is normalized over its last axes, the
    same way in training and evaluation mode. The input is viewed as a matrix with one row
    per example, ``x.reshape(-1, prod(normalized_shape))``."""

    _centred = True  # LayerNorm subtracts the mean; RMSNorm does not

    def _setup(self, normalized_shape, eps, affine, bias, dtype):
        name = type(self).__name__
        self.normalized_shape = _check_shape(name, normalized_shape)
        self.eps = None if eps is None else _check_eps(name, eps)
        self.elementwise_affine, self.dtype = bool(affine), _check_dtype(name, dtype)
        self._size = math.prod(self.normalized_shape)
        params = {}
        if self.elementwise_affine:
            params["weight"] = np.ones(self.normalized_shape, dtype=dtype)
            if bias:
                params["bias"] = np.zeros(self.normalized_shape, dtype=dtype)
        self.params = params

    def forward(self, x):
        params = self.own_params()
        x = self._input(x, params["weight"].dtype if params else None)
        k = len(self.normalized_shape)
        if x.shape[x.ndim - k:] != self.normalized_shape or x.ndim < k:
            raise ValueError(f"{self!r}: expected input of shape (..., "
                             f"{', '.join(map(str, self.normalized_shape))}) (its last {k} "
                             f"ax{'i' if k == 1 else 'e'}s normalized), got {x.shape}")
        eps = np.finfo(x.dtype).eps if self.eps is None else self.eps  # None: RMSNorm's default
        rows = x.ndim == 2 and k == 1  # (N, D): x is the row matrix itself, no reshapes
        _, xc, var, inv_std = _row_statistics(x if rows else x.reshape(-1, self._size), eps,
                                              self._centred)
        if not math.isfinite(np.add.reduce(var)):  # NaN or inf somewhere in x
            raise _non_finite(repr(self), x)
        if self._centred:  # xc is ours: normalize it in place (fewer fresh arrays to cache)
            xc *= inv_std
            xhat = xc
        else:  # xc is the input itself
            xhat = xc * inv_std
        self._cache = (xhat, inv_std, x.shape)
        if not params:
            return xhat.reshape(x.shape).copy()  # the cached xhat must stay as it is
        weight = params["weight"]
        out = xhat * (weight if k == 1 else weight.reshape(-1))
        if "bias" in params:
            bias = params["bias"]
            out += bias if k == 1 else bias.reshape(-1)
        return out if rows else out.reshape(x.shape)

    def backward(self, dout):
        """The compact backward along each row (one example), with g = weight * dout:
        ``dx = inv_std * (g - mean(g) - xhat * mean(g * xhat))``, without ``mean(g)`` for RMS
        norm. The row sums of ``g * xhat`` and ``g`` are those of ``dout * xhat`` and ``dout``
        weighted by the weight (products with it), so g itself is never summed."""
        xhat, inv_std, x_shape = self._cache if self._cache is not None else (None,) * 3
        dout = self._check_dout(dout, x_shape, xhat.dtype if xhat is not None else None)
        rows = len(x_shape) == 2 and len(self.normalized_shape) == 1  # no reshapes
        if not rows:
            dout = dout.reshape(xhat.shape)
        dout_xhat = dout * xhat
        params = self.own_params()
        if params:  # the parameters' gradients: sums over the examples, products with ones
            ones = _constant(dout.shape[0], dout.dtype, 1.0)
            grads, flat = self.grads, len(self.normalized_shape) == 1
            dweight = _dot(ones, dout_xhat)
            grads["weight"] = dweight if flat else dweight.reshape(self.normalized_shape)
            if "bias" in params:
                dbias = _dot(ones, dout)
                grads["bias"] = dbias if flat else dbias.reshape(self.normalized_shape)
            weights = params["weight"]
            if not flat:
                weights = weights.reshape(-1)
            g = dout * weights
        else:
            weights, g = _constant(dout.shape[1], dout.dtype, 1.0), dout
        to_mean = inv_std * (1.0 / self._size)  # (R, 1): the mean's 1/M and the final scale
        along_xhat = to_mean * _dot(dout_xhat, weights)[:, None]
        shift = to_mean * _dot(dout, weights)[:, None] if self._centred else None
        if g is dout:
            dx = g * inv_std
        else:  # g is ours: scaled in place
            g *= inv_std
            dx = g
        dx -= np.multiply(xhat, along_xhat, dout_xhat)  # dout_xhat's memory, used up
        if shift is not None:
            dx -= shift
        return dx if rows else dx.reshape(x_shape)


class LayerNorm(_LastAxesNorm):
    """Layer normalization, as PyTorch's ``nn.LayerNorm``: each example is normalized over its
    last ``len(normalized_shape)`` axes, the same way in training and evaluation mode.

    Shapes: x ``(..., *normalized_shape)``, e.g. ``(N, D)`` with ``normalized_shape=D``; out
    the same. Parameters ``weight`` and ``bias`` of shape normalized_shape, starting at 1 and 0
    (``elementwise_affine=False``: none; ``bias=False``: no bias).
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 dtype=np.float64):
        super().__init__()
        self._setup(normalized_shape, eps, elementwise_affine, bias, dtype)

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
        self._setup(normalized_shape, eps, elementwise_affine, False, dtype)

    def __repr__(self):
        extra = "" if self.eps is None else f", eps={self.eps:g}"
        return f"RMSNorm({self.normalized_shape}{extra})"
