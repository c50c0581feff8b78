"""Convolution, pooling and flattening layers for images, vectorized with im2col.

Images are ``(N, C, H, W)`` arrays (batch, channels, height, width), as in PyTorch. Every layer
has the `backprop.layers.Layer` interface (``forward``, ``backward``, ``params``, ``grads``).

im2col turns a convolution into one matrix product: each column of ``cols`` holds the
``C * kh * kw`` input values under one placement of the kernel, so

    out[f, position] = sum_k W_mat[f, k] * cols[k, position]     (W_mat = W reshaped (F, C*kh*kw))

The windows come from `np.lib.stride_tricks.sliding_window_view`, a strided view that reads each
input value in place; ``cols`` is its one copy. The explicit-loop versions that say the same
thing one pixel at a time are in `backprop.conv_naive`.

Memory layout: the arrays these layers return have shape (N, C, H, W) but are transposed views
of memory ordered (C, H, W, N), batch last. On small images (8x8 digits) a row of an image
holds only a handful of values, so NumPy loops over short rows; with the batch last, every
vectorized operation here runs over rows of N contiguous values instead, several times faster.
Any layout is accepted as input; the layers work on the ``(C, H, W, N)`` view ``x_m``.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .layers import Layer, as_float_array, as_layer_input, require_rng


def _pair(value, owner, name, minimum):
    """``value`` (an int or a pair of ints) as a pair ``(height, width)`` of ints >= minimum."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool)
                                 for v in pair):
        raise TypeError(f"{owner}: {name} must be an int or a pair of ints, got {value!r}")
    if min(pair) < minimum:
        raise ValueError(f"{owner}: {name} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def _show(pair):
    """``3`` for (3, 3), ``(3, 5)`` otherwise, as PyTorch's reprs would read if it squeezed them."""
    return str(pair[0]) if pair[0] == pair[1] else str(pair)


def output_size(size, kernel, stride, padding):
    """Positions of a window along one axis: ``(size + 2 * padding - kernel) // stride + 1``."""
    return (size + 2 * padding - kernel) // stride + 1


def _check_image(x, owner, channels=None, dtype=None):
    """`x` as a float (N, C, H, W) array (of exactly `dtype` if given: see `as_layer_input`),
    or a ValueError naming `owner` and the shape."""
    x = as_float_array(x, owner) if dtype is None else as_layer_input(x, owner, dtype)
    if x.ndim != 4:
        raise ValueError(f"{owner}: expected a 4-D input (N, C, H, W), got shape {x.shape}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(
            f"{owner}: expected input of shape (N, {channels}, H, W), got {x.shape} "
            f"({x.shape[1]} channels instead of {channels})"
        )
    return x


def _check_fits(owner, what, kernel, spatial, padding=None):
    """A ValueError unless a `kernel` window fits the (padded) `spatial` size (H, W) once."""
    (kh, kw), (h, w), (ph, pw) = kernel, spatial, padding or (0, 0)
    if kh > h + 2 * ph or kw > w + 2 * pw:
        pad = "" if padding is None else f" with padding {_show(padding)}"
        raise ValueError(f"{owner}: {what} {kh}x{kw} does not fit a {h}x{w} input{pad}")


def _batch_last(x):
    """The (C, H, W, N) view of an (N, C, H, W) array (no copy)."""
    return x.transpose(1, 2, 3, 0)


def _batch_first(x_m):
    """The (N, C, H, W) view of a (C, H, W, N) array (no copy)."""
    return x_m.transpose(3, 0, 1, 2)


def _windows(x_m, kernel, stride):
    """Strided view (C, H', W', N, kh, kw) of every kernel placement in x_m (C, H, W, N)."""
    view = sliding_window_view(x_m, kernel, axis=(1, 2))
    return view[:, :: stride[0], :: stride[1]]


def _offset_slices(kernel, stride, out_hw):
    """For each kernel offset (i, j): the (rows, cols) slices of the input it touches."""
    (sh, sw), (ho, wo) = stride, out_hw
    return [(i, j, slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw))
            for i in range(kernel[0]) for j in range(kernel[1])]


class Conv2d(Layer):
    """2-D convolution (cross-correlation) with zero padding, as PyTorch's ``nn.Conv2d``.

    ``out[n, f, r, c] = b[f] + sum_{ch, i, j} W[f, ch, i, j] * xpad[n, ch, r*s + i, c*s + j]``

    Shapes: x ``(N, C, H, W)``; W ``(F, C, kh, kw)``; b ``(F,)``; out ``(N, F, H', W')`` with
    ``H' = (H + 2p - kh) // s + 1`` (likewise W'). kernel_size, stride and padding are an int or
    a (height, width) pair. Weights are drawn from N(0, 2 / (C kh kw)) (He/Kaiming, for ReLU
    networks) unless ``weight_scale`` gives the standard deviation; biases start at zero.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, rng=None,
                 dtype=np.float64, weight_scale=None):
        super().__init__()
        if int(in_channels) < 1 or int(out_channels) < 1:
            raise ValueError(f"Conv2d: in_channels and out_channels must be >= 1, "
                             f"got {in_channels} and {out_channels}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, "Conv2d", "kernel_size", 1)
        self.stride = _pair(stride, "Conv2d", "stride", 1)
        self.padding = _pair(padding, "Conv2d", "padding", 0)
        rng = require_rng(rng, f"{self!r}")
        fan_in = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        scale = np.sqrt(2.0 / fan_in) if weight_scale is None else weight_scale
        W = rng.standard_normal((self.out_channels, self.in_channels, *self.kernel_size)) * scale
        self.params = {"W": W.astype(dtype), "b": np.zeros(self.out_channels, dtype=dtype)}

    def output_shape(self, input_shape):
        """``(N, F, H', W')`` for an input of shape ``(N, C, H, W)``."""
        n, _, h, w = input_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (n, self.out_channels, output_size(h, kh, sh, ph), output_size(w, kw, sw, pw))

    def forward(self, x):
        x = _check_image(x, repr(self), self.in_channels, self.params["W"].dtype)
        _check_fits(repr(self), "kernel", self.kernel_size, x.shape[2:], self.padding)
        (ph, pw), (n, f, ho, wo) = self.padding, self.output_shape(x.shape)
        c, h, w = x.shape[1:]
        # The padded input, batch last: zeros plus one assignment (cheaper than np.pad).
        xp_m = np.zeros((c, h + 2 * ph, w + 2 * pw, n), dtype=x.dtype)
        xp_m[:, ph:ph + h, pw:pw + w, :] = _batch_last(x)
        # cols (C*kh*kw, H'*W'*N): row k = (channel, i, j) holds the input value at kernel
        # offset (i, j) for every output position; its row order matches W.reshape(F, -1).
        windows = _windows(xp_m, self.kernel_size, self.stride)
        cols = windows.transpose(0, 4, 5, 1, 2, 3).reshape(-1, ho * wo * n)
        out_m = self.params["W"].reshape(f, -1) @ cols  # (F, H'*W'*N): the one matrix product
        out_m += self.params["b"][:, None]
        self._cache = (x.shape, xp_m.shape, cols)
        return _batch_first(out_m.reshape(f, ho, wo, n))

    def backward(self, dout, input_grad=True):
        """Fill grads and return dx; ``input_grad=False`` skips dx (a matrix product and the
        col2im) and returns None, for a first layer whose input is data."""
        x_shape, xp_shape, cols = self._cache if self._cache is not None else (None,) * 3
        out_shape = self.output_shape(x_shape) if x_shape is not None else ()
        dout = self._check_dout(dout, out_shape, self.params["W"].dtype)
        n, f, ho, wo = out_shape
        dout_mat = _batch_last(dout).reshape(f, -1)  # (F, H'*W'*N); a view for our own outputs
        W = self.params["W"]
        self.grads["W"] = (dout_mat @ cols.T).reshape(W.shape)
        self.grads["b"] = dout_mat.sum(axis=1)
        if not input_grad:
            return None
        # col2im: every entry of dcols goes back to the input value it was copied from; a value
        # under several placements collects all their contributions, so the loop adds, one
        # kernel offset at a time (kh*kw vectorized slice-adds, never a loop over pixels).
        dcols = (W.reshape(f, -1).T @ dout_mat).reshape(*W.shape[1:], ho, wo, n)
        dxp_m = np.zeros(xp_shape, dtype=dcols.dtype)
        for i, j, rows, columns in _offset_slices(self.kernel_size, self.stride, (ho, wo)):
            dxp_m[:, rows, columns, :] += dcols[:, i, j]
        (ph, pw), (h, w) = self.padding, x_shape[2:]
        return _batch_first(dxp_m[:, ph:ph + h, pw:pw + w, :])

    def __repr__(self):
        return (f"Conv2d({self.in_channels}, {self.out_channels}, "
                f"kernel_size={_show(self.kernel_size)}, stride={_show(self.stride)}, "
                f"padding={_show(self.padding)})")


class _Pool2d(Layer):
    """Shared set-up of the pooling layers: a window of kernel_size moved by stride, no params."""

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = _pair(kernel_size, name, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else _pair(stride, name, "stride", 1)

    def _prepare(self, x):
        """Validate x; return it with the output's spatial size. Windows that would run past
        the edge are dropped (PyTorch's default floor mode)."""
        x = _check_image(x, repr(self))
        _check_fits(repr(self), "window", self.kernel_size, x.shape[2:])
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        return x, (output_size(x.shape[2], kh, sh, 0), output_size(x.shape[3], kw, sw, 0))

    def __repr__(self):
        return (f"{type(self).__name__}(kernel_size={_show(self.kernel_size)}, "
                f"stride={_show(self.stride)})")


class MaxPool2d(_Pool2d):
    """Maximum over each window, per channel: ``(N, C, H, W) -> (N, C, H', W')`` with
    ``H' = (H - kh) // s + 1``; stride defaults to kernel_size.

    The gradient of a maximum flows only to the entry that won; on ties the first one in
    row-major order within the window wins (so exactly one entry per window gets the gradient).
    With overlapping windows (stride < kernel_size) an entry can win several windows and then
    collects the sum of their gradients.
    """

    def forward(self, x):
        x, out_hw = self._prepare(x)
        x_m = _batch_last(x)
        # One pass per offset in the window over all windows at once (kh*kw vectorized steps),
        # keeping the running maximum and the offset it came from; strict ">" keeps the earlier
        # offset on ties. Offsets come in increasing order, so "the latest offset that beat the
        # maximum" is a running np.maximum of offset * better: cheaper than a masked copy, and
        # far cheaper than copying windows to (..., kh*kw) for argmax (a per-window overhead).
        offsets = _offset_slices(self.kernel_size, self.stride, out_hw)
        out_m = x_m[:, offsets[0][2], offsets[0][3], :].copy()
        index_type = np.min_scalar_type(len(offsets) - 1)
        winner = np.zeros(out_m.shape, dtype=index_type)
        for offset, (_, _, rows, columns) in enumerate(offsets[1:], start=1):
            candidate = x_m[:, rows, columns, :]
            better = (candidate > out_m).view(np.uint8)
            np.maximum(winner, better * index_type.type(offset), out=winner)
            np.maximum(out_m, candidate, out=out_m)
        self._cache = (x.shape, winner)
        return _batch_first(out_m)

    def backward(self, dout):
        x_shape, winner = self._cache if self._cache is not None else (None, None)
        # winner is (C, H', W', N), like the output's memory
        out_shape = (x_shape[0], x_shape[1], *winner.shape[1:3]) if winner is not None else ()
        dout_m = _batch_last(self._check_dout(dout, out_shape))
        dx_m = np.zeros((*x_shape[1:], x_shape[0]), dtype=dout_m.dtype)
        overlapping = any(s < k for s, k in zip(self.stride, self.kernel_size))
        # Per offset: where it won, its input entry gets the window's gradient. Overlapping
        # windows share entries, so those must add up (+=); otherwise each entry belongs to one
        # window at most and the product can go straight into dx.
        for offset, (_, _, rows, columns) in enumerate(
                _offset_slices(self.kernel_size, self.stride, out_shape[2:])):
            if overlapping:
                dx_m[:, rows, columns, :] += dout_m * (winner == offset)
            else:
                np.multiply(dout_m, winner == offset, out=dx_m[:, rows, columns, :])
        return _batch_first(dx_m)


class AvgPool2d(_Pool2d):
    """Mean over each window, per channel: ``(N, C, H, W) -> (N, C, H', W')``; stride defaults
    to kernel_size. Every entry of a window gets ``1 / (kh * kw)`` of the window's gradient.
    """

    def forward(self, x):
        x, out_hw = self._prepare(x)
        x_m = _batch_last(x)
        offsets = _offset_slices(self.kernel_size, self.stride, out_hw)
        total = x_m[:, offsets[0][2], offsets[0][3], :].copy()
        for _, _, rows, columns in offsets[1:]:
            total += x_m[:, rows, columns, :]
        total /= len(offsets)
        self._cache = (x.shape, (x.shape[0], x.shape[1], *out_hw))
        return _batch_first(total)

    def backward(self, dout):
        x_shape, out_shape = self._cache if self._cache is not None else (None, ())
        dout_m = _batch_last(self._check_dout(dout, out_shape))
        share = dout_m / (self.kernel_size[0] * self.kernel_size[1])
        dx_m = np.zeros((*x_shape[1:], x_shape[0]), dtype=share.dtype)
        for _, _, rows, columns in _offset_slices(self.kernel_size, self.stride, out_shape[2:]):
            dx_m[:, rows, columns, :] += share
        return _batch_first(dx_m)


class Flatten(Layer):
    """``(N, d1, d2, ...) -> (N, d1 * d2 * ...)``; backward restores the shape."""

    def forward(self, x):
        x = as_float_array(x, repr(self))
        if x.ndim < 2:
            raise ValueError(f"{self!r}: expected input of shape (N, ...) with at least 2 "
                             f"dimensions, got {x.shape}")
        self._cache = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dout):
        x_shape = self._cache
        dout = self._check_dout(dout, (x_shape[0], int(np.prod(x_shape[1:]))) if x_shape else ())
        return dout.reshape(x_shape)
