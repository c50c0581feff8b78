"""Convolution and max pooling written with explicit loops, one output pixel at a time.

These are the definitions, spelled out for teaching and for testing the fast layers in
`backprop.conv` against; they are hundreds of times slower, so use them on tiny inputs only.
Shapes as in `backprop.conv`: x ``(N, C, H, W)``, W ``(F, C, kh, kw)``, b ``(F,)``.
"""
import numpy as np

from .conv import _pair, output_size


def _pad(x, padding):
    ph, pw = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))


def _check(x, W, stride, padding, owner):
    x, W = np.asarray(x), np.asarray(W)
    if x.ndim != 4 or W.ndim != 4 or x.shape[1] != W.shape[1]:
        raise ValueError(f"{owner}: expected x (N, C, H, W) and W (F, C, kh, kw) with the same C, "
                         f"got x {x.shape} and W {W.shape}")
    return x, W, _pair(stride, owner, "stride", 1), _pair(padding, owner, "padding", 0)


def conv2d_forward_naive(x, W, b, stride=1, padding=0):
    """``out[n, f, r, c] = b[f] + sum(W[f] * xpad[n, :, r*s : r*s + kh, c*s : c*s + kw])``.

    Returns out ``(N, F, H', W')`` with ``H' = (H + 2p - kh) // s + 1``.
    """
    x, W, (sh, sw), padding = _check(x, W, stride, padding, "conv2d_forward_naive")
    (n_images, _, h, w), (n_filters, _, kh, kw) = x.shape, W.shape
    ho, wo = output_size(h, kh, sh, padding[0]), output_size(w, kw, sw, padding[1])
    xp = _pad(x, padding)
    out = np.zeros((n_images, n_filters, ho, wo), dtype=np.result_type(x, W))
    for n in range(n_images):
        for f in range(n_filters):
            for r in range(ho):
                for c in range(wo):
                    window = xp[n, :, r * sh : r * sh + kh, c * sw : c * sw + kw]
                    out[n, f, r, c] = np.sum(window * W[f]) + b[f]
    return out


def conv2d_backward_naive(dout, x, W, stride=1, padding=0):
    """Gradients of `conv2d_forward_naive` given dout ``(N, F, H', W')``: ``(dx, dW, db)``.

    Each output pixel was ``sum(W[f] * window) + b[f]``, so it sends ``dout * W[f]`` back to
    its window of the input, ``dout * window`` to W[f] and ``dout`` to b[f]; the loops add up
    those contributions (windows overlap, so one input value collects several).
    """
    x, W, (sh, sw), (ph, pw) = _check(x, W, stride, padding, "conv2d_backward_naive")
    dout = np.asarray(dout)
    kh, kw = W.shape[2:]
    xp = _pad(x, (ph, pw))
    dxp, dW = np.zeros_like(xp, dtype=np.result_type(x, W)), np.zeros_like(W)
    db = np.zeros(W.shape[0], dtype=W.dtype)
    n_images, n_filters, ho, wo = dout.shape
    for n in range(n_images):
        for f in range(n_filters):
            for r in range(ho):
                for c in range(wo):
                    rows, cols = slice(r * sh, r * sh + kh), slice(c * sw, c * sw + kw)
                    dxp[n, :, rows, cols] += dout[n, f, r, c] * W[f]
                    dW[f] += dout[n, f, r, c] * xp[n, :, rows, cols]
                    db[f] += dout[n, f, r, c]
    dx = dxp[:, :, ph : ph + x.shape[2], pw : pw + x.shape[3]]
    return dx, dW, db


def max_pool_forward_naive(x, kernel_size=2, stride=None):
    """Maximum of every kernel_size window moved by stride (default: kernel_size), per channel.

    x ``(N, C, H, W)`` -> out ``(N, C, H', W')`` with ``H' = (H - kh) // s + 1``.
    """
    kh, kw = _pair(kernel_size, "max_pool_forward_naive", "kernel_size", 1)
    sh, sw = (kh, kw) if stride is None else _pair(stride, "max_pool_forward_naive", "stride", 1)
    x = np.asarray(x)
    n_images, channels, h, w = x.shape
    ho, wo = output_size(h, kh, sh, 0), output_size(w, kw, sw, 0)
    out = np.zeros((n_images, channels, ho, wo), dtype=x.dtype)
    for n in range(n_images):
        for ch in range(channels):
            for r in range(ho):
                for c in range(wo):
                    out[n, ch, r, c] = x[n, ch, r * sh : r * sh + kh, c * sw : c * sw + kw].max()
    return out


def max_pool_backward_naive(dout, x, kernel_size=2, stride=None):
    """Gradient of `max_pool_forward_naive`: each window's dout goes to its (first) maximum."""
    kh, kw = _pair(kernel_size, "max_pool_backward_naive", "kernel_size", 1)
    sh, sw = (kh, kw) if stride is None else _pair(stride, "max_pool_backward_naive", "stride", 1)
    x, dout = np.asarray(x), np.asarray(dout)
    dx = np.zeros_like(x, dtype=dout.dtype)
    n_images, channels, ho, wo = dout.shape
    for n in range(n_images):
        for ch in range(channels):
            for r in range(ho):
                for c in range(wo):
                    window = x[n, ch, r * sh : r * sh + kh, c * sw : c * sw + kw]
                    i, j = np.unravel_index(np.argmax(window), window.shape)
                    dx[n, ch, r * sh + i, c * sw + j] += dout[n, ch, r, c]
    return dx
