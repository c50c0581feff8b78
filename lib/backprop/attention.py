"""Attention and a small transformer: `scaled_dot_product_attention` and its backward,
`MultiHeadAttention`, positional embeddings, a pre-norm `TransformerBlock` and `CharTransformer`,
a character-level causal language model built from them.

**Scaled dot-product attention.** Each query row ``q_i`` scores every key row ``k_j``, the
scores go through a softmax along the keys, and the output is the weighted mean of the values:

    S = Q K^T * scale        (..., L, S)     scale = 1 / sqrt(E) by default
    P = softmax(S + M)       (..., L, S)     along the last axis (the keys)
    out = P V                (..., L, Ev)

``M`` is the mask as an additive bias: 0 where query i may attend to key j, -inf where it may
not (a causal mask forbids j > i), so the masked entries of ``P`` are exactly 0. (Boolean
masks are applied as booleans: the softmax skips the forbidden entries instead of computing
``exp(-inf)``; float masks are added.) A row of ``M`` that is -inf everywhere (a query with no
key to look at, e.g. a padding position) gets ``P = 0`` and ``out = 0`` here, with no NaN and
no warning (a plain softmax would give 0/0).

The backward, with ``dP = dout V^T``:

    dV = P^T dout
    dS = P * (dP - rowsum(P * dP))         (the softmax's backward, row by row)
    dQ = dS K * scale,    dK = dS^T Q * scale

``rowsum(P * dP)`` equals ``rowsum(dout * out)`` (since ``out = P V``), the cheaper form the
layer uses. The mask needs no backward of its own: masked entries have ``P = 0``, so their
``dS`` is 0. Without the scale, the scores of random unit-variance Q and K have variance E, the
softmax saturates (one weight near 1, the others near 0) and its gradient vanishes.

**Multi-head attention** runs H attentions of size ``d = E / H`` side by side: one projection
``x W_in^T + b_in`` gives Q, K and V (N, L, 3E); each is reshaped ``(N, L, H, d) -> (N, H, L, d)``
so that every (example, head) pair is one matrix product, the heads' outputs are put back
``(N, H, L, d) -> (N, L, E)`` and projected by ``W_out``. The backward runs the same reshapes in
reverse. Parameters have PyTorch's names and layouts (``torch.nn.MultiheadAttention``).

**The transformer block** (pre-norm, as GPT-2):
``h = x + attn(ln1(x))``, ``out = h + mlp(ln2(h))``, the MLP ``Linear -> GELU -> Linear`` applied
at every position. Its backward: ``dh = dout + ln2'(mlp'(dout))``, ``dx = dh + ln1'(attn'(dh))``
(each residual sum hands its gradient unchanged to both branches).

Everything is vectorized over the batch and the heads (matrix products on 4-D arrays), in
float64 or float32 as the layers are built. Bad shapes, dtypes, masks and NaN input raise errors
that name the problem.
"""
import functools
import inspect
import math

import numpy as np

from .base import Layer, _constant, as_float_array, require_rng
from .layers import ReLU, Sequential
from .normalization import LayerNorm, _check_dtype, _is_int, _non_finite
from .sequence import Embedding, TemporalLinear

__all__ = ["scaled_dot_product_attention", "scaled_dot_product_attention_backward",
           "MultiHeadAttention", "PositionalEmbedding", "sinusoidal_positions", "GELU",
           "TransformerBlock", "CharTransformer"]


# -- the function and its backward -------------------------------------------------------------

@functools.lru_cache(maxsize=32)
def _causal_allowed(L, S):
    """(L, S) booleans, read-only: True where key j <= query i (the lower triangle)."""
    allowed = np.tri(L, S, dtype=bool)
    allowed.flags.writeable = False
    return allowed


class _Masks:
    """The masks of one attention call, gathered as ``allowed`` (booleans, True = may attend,
    broadcastable to the scores; None: everything) and ``bias`` (floats added to the scores;
    None: nothing). Boolean masks stay boolean: the softmax then skips the forbidden entries
    (``np.exp(..., where=allowed)``) instead of computing ``exp(-inf)``."""

    def __init__(self):
        self.allowed, self.bias = None, None

    def forbid(self, allowed):
        self.allowed = allowed if self.allowed is None else self.allowed & allowed

    def add(self, bias):
        self.bias = bias if self.bias is None else self.bias + bias

    def shapes(self):
        return [m.shape for m in (self.allowed, self.bias) if m is not None]

    def take(self, mask, owner, what, dtype, blocked_when):
        """Add `mask`: booleans (``blocked_when`` is the value that forbids attending) or
        floats (added to the scores); a mask of another dtype, or with NaN, is refused."""
        mask = np.asarray(mask)
        if mask.dtype == bool:
            self.forbid(~mask if blocked_when else mask)
        elif mask.dtype.kind == "f":
            bias = mask.astype(dtype, copy=False)
            if np.isnan(bias).any():
                raise ValueError(f"{owner}: {what} contains NaN (use -inf to forbid "
                                 "attending, 0 to allow it)")
            self.add(bias)
        else:
            meaning = "True = may attend" if not blocked_when else "True = may NOT attend"
            raise TypeError(f"{owner}: {what} must be boolean ({meaning}) or float (added to "
                            f"the scores, -inf to forbid), got dtype {mask.dtype}")
        return mask


def _softmax_rows(scores, masks):
    """Softmax along the last axis of `scores` after applying `masks` (a `_Masks`, or None);
    `scores` is used up (it becomes the result, or scratch space).

    Forbidden entries get weight exactly 0. A row where every entry is forbidden (or -inf)
    becomes 0: its maximum, -inf, is replaced by 0 and its sum, 0, by 1, so that no
    ``-inf - -inf = NaN`` and no 0/0 happens."""
    allowed = bias = None
    if masks is not None:
        allowed, bias = masks.allowed, masks.bias
    if bias is not None:
        scores += bias
    if allowed is None:
        peak = scores.max(axis=-1, keepdims=True)
    else:
        peak = np.max(scores, axis=-1, keepdims=True, where=allowed, initial=-np.inf)
    dead = None
    if masks is not None:
        dead = peak == -np.inf
        if dead.any():
            peak[dead] = 0.0
        else:
            dead = None
    scores -= peak
    if allowed is None:
        weights = np.exp(scores, out=scores)
    else:  # exp of the allowed entries only; the others stay 0
        weights = np.zeros_like(scores)
        np.exp(scores, out=weights, where=allowed)
    total = weights.sum(axis=-1, keepdims=True)
    if dead is not None:
        total[dead] = 1.0
    weights *= 1.0 / total
    return weights


def _sum_to(grad, shape):
    """Sum `grad` over the axes that broadcasting added or stretched, back to `shape`."""
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(
        extra + i for i, n in enumerate(shape) if n == 1 and grad.shape[extra + i] != 1)
    return grad.sum(axis=axes).reshape(shape)


def _check_scale(owner, scale, size):
    if scale is None:
        return 1.0 / math.sqrt(size)
    if isinstance(scale, bool) or not isinstance(scale, (int, float, np.integer, np.floating)) \
            or not math.isfinite(scale):
        raise ValueError(f"{owner}: scale must be a finite number or None (1/sqrt(E)), "
                         f"got {scale!r}")
    return float(scale)


def _qkv_arrays(owner, query, key, value):
    """query, key, value as float arrays of one dtype with compatible shapes, or an error."""
    arrays = []
    for name, arr, layout in (("query", query, "(..., L, E)"), ("key", key, "(..., S, E)"),
                              ("value", value, "(..., S, Ev)")):
        arr = as_float_array(arr, f"{owner}({name})")
        if arr.ndim < 2:
            raise ValueError(f"{owner}: {name} must have shape {layout} (at least 2 "
                             f"dimensions), got {arr.shape}")
        arrays.append(arr)
    q, k, v = arrays
    if len({q.dtype, k.dtype, v.dtype}) > 1:
        raise TypeError(f"{owner}: query, key and value must have one dtype, got {q.dtype}, "
                        f"{k.dtype} and {v.dtype} (convert with .astype)")
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"{owner}: key's last axis must match query's (E = {q.shape[-1]}): "
                         f"query {q.shape}, key {k.shape}")
    if v.shape[-2] != k.shape[-2]:
        raise ValueError(f"{owner}: value must have one row per key (S = {k.shape[-2]}): "
                         f"key {k.shape}, value {v.shape}")
    try:
        batch = np.broadcast_shapes(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    except ValueError:
        raise ValueError(f"{owner}: the leading (batch) axes of query {q.shape}, key {k.shape} "
                         f"and value {v.shape} do not broadcast together") from None
    return q, k, v, batch


def _check_mask_shape(owner, what, mask, target):
    try:
        fits = np.broadcast_shapes(mask.shape, target) == tuple(target)
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{owner}: {what} of shape {mask.shape} does not broadcast to the "
                         f"scores' shape (..., L, S) = {tuple(target)}")


def _raise_non_finite(owner, named):
    """The ValueError naming the first of `named` ((name, array) pairs) holding NaN or inf."""
    for name, arr in named:
        if not np.isfinite(arr).all():
            bad = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
            raise ValueError(f"{owner}: {name} contains NaN or inf (first at index {bad}); if "
                             "this happened in training, an earlier layer diverged: lower the "
                             "learning rate")
    raise ValueError(f"{owner}: the output is not finite: the inputs are so large that the "
                     "scores overflow, or a float mask holds +inf")


def scaled_dot_product_attention(query, key, value, attn_mask=None, is_causal=False,
                                 scale=None):
    """``softmax(query @ key^T * scale + mask) @ value``, as
    ``torch.nn.functional.scaled_dot_product_attention`` (which returns only ``out``).

    Shapes: query ``(..., L, E)``, key ``(..., S, E)``, value ``(..., S, Ev)`` (leading axes
    broadcast); returns ``(out (..., L, Ev), weights (..., L, S))``, weights the softmax
    probabilities (keep them for `scaled_dot_product_attention_backward`).

    attn_mask: boolean (True = may attend, PyTorch's convention here) or float (added to the
    scores; -inf forbids), broadcastable to ``(..., L, S)``. is_causal: query i attends only to
    keys j <= i (combined with attn_mask if both are given). scale: default ``1/sqrt(E)``.
    A query whose every key is masked gets weights 0 and output 0 (no NaN).
    """
    owner = "scaled_dot_product_attention"
    q, k, v, batch = _qkv_arrays(owner, query, key, value)
    L, S = q.shape[-2], k.shape[-2]
    scale = _check_scale(owner, scale, q.shape[-1])
    masks = _Masks()
    if attn_mask is not None:
        mask = masks.take(attn_mask, owner, "attn_mask", q.dtype, blocked_when=False)
        _check_mask_shape(owner, "attn_mask", mask, (*batch, L, S))
    if is_causal:
        masks.forbid(_causal_allowed(L, S))
    scores = np.matmul(q * q.dtype.type(scale), np.swapaxes(k, -1, -2))
    full = np.broadcast_shapes(scores.shape, *masks.shapes())
    if full != scores.shape:  # a mask with more leading axes than query, key and value
        scores = np.broadcast_to(scores, full).copy()
    with np.errstate(invalid="ignore", over="ignore"):
        weights = _softmax_rows(scores, masks)
        out = np.matmul(weights, v)
    if not math.isfinite(np.add.reduce(out, axis=None)):
        _raise_non_finite(owner, (("query", q), ("key", k), ("value", v)))
    return out, weights


def scaled_dot_product_attention_backward(dout, query, key, value, weights, scale=None):
    """The gradients of `scaled_dot_product_attention` with respect to query, key and value.

    dout ``(..., L, Ev)`` (the gradient of the loss with respect to ``out``), the forward's
    query, key, value and returned ``weights (..., L, S)``, and its scale (default 1/sqrt(E)).
    Returns ``(dquery, dkey, dvalue)`` shaped like query, key and value (summed over the axes
    that broadcasting stretched). No mask argument: masked entries have weight 0, and so
    gradient 0, whatever mask produced them.
    """
    owner = "scaled_dot_product_attention_backward"
    q, k, v, batch = _qkv_arrays(owner, query, key, value)
    L, S, Ev = q.shape[-2], k.shape[-2], v.shape[-1]
    scale = _check_scale(owner, scale, q.shape[-1])
    weights = as_float_array(weights, f"{owner}(weights)")
    dout = as_float_array(dout, f"{owner}(dout)")
    if weights.shape[-2:] != (L, S) or weights.ndim < 2:
        raise ValueError(f"{owner}: weights must have shape (..., L, S) = (..., {L}, {S}) (what "
                         f"the forward returned), got {weights.shape}")
    if dout.shape != weights.shape[:-1] + (Ev,):
        raise ValueError(f"{owner}: dout must have the output's shape "
                         f"{weights.shape[:-1] + (Ev,)} (weights' leading axes, L, Ev), "
                         f"got {dout.shape}")
    if dout.dtype != q.dtype or weights.dtype != q.dtype:
        raise TypeError(f"{owner}: dout and weights must have the inputs' dtype {q.dtype}, got "
                        f"{dout.dtype} and {weights.dtype}")
    dweights = np.matmul(dout, np.swapaxes(v, -1, -2))  # (..., L, S)
    dvalue = _sum_to(np.matmul(np.swapaxes(weights, -1, -2), dout), v.shape)
    # softmax backward: dS = P * (dP - rowsum(P * dP)), in place in dP's memory
    dweights -= np.vecdot(weights, dweights)[..., None]
    dweights *= weights
    dweights *= q.dtype.type(scale)  # the scale's chain rule, for both dQ and dK
    dquery = _sum_to(np.matmul(dweights, k), q.shape)
    dkey = _sum_to(np.matmul(np.swapaxes(dweights, -1, -2), q), k.shape)
    return dquery, dkey, dvalue


# -- layers ------------------------------------------------------------------------------------

def _check_size(owner, name, value, minimum=1):
    if not _is_int(value) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


class MultiHeadAttention(Layer):
    """Multi-head self-attention, as ``torch.nn.MultiheadAttention(E, H, batch_first=True)``
    called with ``query = key = value = x``.

    Shapes: x ``(N, L, E)`` -> out ``(N, L, E)``; H heads of size ``d = E / H``. Parameters
    (PyTorch's names and layouts; ``y = x @ W.T + b``): ``in_proj_weight (3E, E)`` (the rows of
    W_q, W_k, W_v stacked), ``in_proj_bias (3E,)``, ``out_proj_weight (E, E)``,
    ``out_proj_bias (E,)`` (``bias=False``: no biases). Initialized as PyTorch does: Xavier
    uniform for in_proj_weight, U(-1/sqrt(E), 1/sqrt(E)) for out_proj_weight, zero biases.

    ``forward(x, attn_mask=None, key_padding_mask=None)``, PyTorch's mask conventions:
    attn_mask ``(L, L)`` or ``(N*H, L, L)``, key_padding_mask ``(N, L)``; boolean True means
    NOT allowed (for key_padding_mask: a padding position nobody attends to), float is added to
    the scores. ``is_causal=True`` adds the causal mask (position i sees j <= i) to any other.
    After forward, ``attn_weights`` holds the softmax weights ``(N, H, L, L)`` (0 where masked;
    a query with every key masked gets weights 0 and output ``out_proj_bias``, not NaN).
    ``backward(dout, input_grad=True)`` fills ``grads`` and returns dx.
    """

    def __init__(self, embed_dim, num_heads, bias=True, is_causal=False, rng=None,
                 dtype=np.float64):
        super().__init__()
        name = "MultiHeadAttention"
        E = _check_size(name, "embed_dim", embed_dim)
        H = _check_size(name, "num_heads", num_heads)
        if E % H:
            raise ValueError(f"{name}: embed_dim ({E}) must be divisible by num_heads ({H}): "
                             f"each head gets E / H features")
        self.embed_dim, self.num_heads, self.head_dim = E, H, E // H
        self.bias, self.is_causal = bool(bias), bool(is_causal)
        self.dtype = _check_dtype(name, dtype)
        rng = require_rng(rng, repr(self))
        limit_in = math.sqrt(6.0 / (E + 3 * E))  # Xavier uniform of the (3E, E) matrix
        limit_out = 1.0 / math.sqrt(E)
        params = {"in_proj_weight": rng.uniform(-limit_in, limit_in, (3 * E, E)).astype(dtype)}
        if self.bias:
            params["in_proj_bias"] = np.zeros(3 * E, dtype=dtype)
        params["out_proj_weight"] = rng.uniform(-limit_out, limit_out, (E, E)).astype(dtype)
        if self.bias:
            params["out_proj_bias"] = np.zeros(E, dtype=dtype)
        self.params = params
        self.attn_weights = None

    def _masks(self, attn_mask, key_padding_mask, N, L, dtype):
        """The causal mask and the given ones as a `_Masks` broadcastable to (N, H, L, L)."""
        owner, H = repr(self), self.num_heads
        masks = _Masks()
        if self.is_causal:
            masks.forbid(_causal_allowed(L, L))
        if attn_mask is not None:
            shape = np.shape(attn_mask)
            if shape not in ((L, L), (N * H, L, L)):
                raise ValueError(f"{owner}: attn_mask must have shape (L, L) = {(L, L)} or "
                                 f"(N*H, L, L) = {(N * H, L, L)}, got {shape}")
            extra = _Masks()
            extra.take(attn_mask, owner, "attn_mask", dtype, blocked_when=True)
            for mask, use in ((extra.allowed, masks.forbid), (extra.bias, masks.add)):
                if mask is not None:
                    use(mask.reshape(N, H, L, L) if mask.ndim == 3 else mask)
        if key_padding_mask is not None:
            if np.shape(key_padding_mask) != (N, L):
                raise ValueError(f"{owner}: key_padding_mask must have shape (N, L) = "
                                 f"{(N, L)} (True at the padding positions), got "
                                 f"{np.shape(key_padding_mask)}")
            extra = _Masks()
            extra.take(key_padding_mask, owner, "key_padding_mask", dtype, blocked_when=True)
            for mask, use in ((extra.allowed, masks.forbid), (extra.bias, masks.add)):
                if mask is not None:
                    use(mask.reshape(N, 1, 1, L))
        return masks if masks.shapes() else None

    def forward(self, x, attn_mask=None, key_padding_mask=None):
        params = self.own_params()
        W_in, W_out = params["in_proj_weight"], params["out_proj_weight"]
        x = self._input(x, W_in.dtype)
        E, H, d = self.embed_dim, self.num_heads, self.head_dim
        if x.ndim != 3 or x.shape[2] != E:
            raise ValueError(f"{self!r}: expected input of shape (N, L, E) with E = {E}, "
                             f"got {x.shape}")
        N, L, _ = x.shape
        masks = self._masks(attn_mask, key_padding_mask, N, L, x.dtype)
        x2 = x.reshape(N * L, E)
        if not math.isfinite(np.add.reduce(x2, axis=None)):
            raise _non_finite(repr(self), x)
        qkv = x2 @ W_in.T  # (N*L, 3E): the three projections in one product
        if self.bias:
            qkv += params["in_proj_bias"]
        heads = qkv.reshape(N, L, 3, H, d).transpose(2, 0, 3, 1, 4)  # (3, N, H, L, d), a view
        q = heads[0] * x.dtype.type(1.0 / math.sqrt(d))  # scaled once here, on (N, H, L, d)
        k, v = heads[1], heads[2]
        scores = np.matmul(q, k.transpose(0, 1, 3, 2))  # (N, H, L, L)
        with np.errstate(over="ignore"):
            weights = _softmax_rows(scores, masks)
        att = np.matmul(weights, v)  # (N, H, L, d)
        merged = att.transpose(0, 2, 1, 3).reshape(N * L, E)  # heads side by side again
        out = merged @ W_out.T
        if self.bias:
            out += params["out_proj_bias"]
        self.attn_weights = weights
        self._cache = (x2, q, k, v, weights, att, merged, x.shape)
        return out.reshape(N, L, E)

    def backward(self, dout, input_grad=True):
        """Fill grads and return dx (``input_grad=False``: skip dx, return None)."""
        x2, q, k, v, weights, att, merged, shape = \
            self._cache if self._cache is not None else (None,) * 7 + ((),)
        params, grads = self.own_params(), self.grads
        W_in, W_out = params["in_proj_weight"], params["out_proj_weight"]
        dout = self._check_dout(dout, shape, W_in.dtype)
        N, L, E = shape
        H, d = self.num_heads, self.head_dim
        dy = dout.reshape(N * L, E)
        grads["out_proj_weight"] = dy.T @ merged
        if self.bias:
            grads["out_proj_bias"] = _constant(N * L, dy.dtype, 1.0) @ dy
        datt = (dy @ W_out).reshape(N, L, H, d).transpose(0, 2, 1, 3)  # (N, H, L, d), a view
        dheads = np.empty((N, L, 3, H, d), dtype=dy.dtype)
        dq, dk, dv = dheads.transpose(2, 0, 3, 1, 4)  # views into dheads: (N, H, L, d) each
        np.matmul(weights.transpose(0, 1, 3, 2), datt, out=dv)
        dscores = np.matmul(datt, v.transpose(0, 1, 3, 2))  # dP (N, H, L, L)
        # softmax backward in place: dS = P * (dP - rowsum(P * dP)), rowsum(P dP) = datt . att
        dscores -= np.vecdot(datt, att)[..., None]
        dscores *= weights
        np.matmul(dscores, k, out=dq)
        dq *= dy.dtype.type(1.0 / math.sqrt(d))
        np.matmul(dscores.transpose(0, 1, 3, 2), q, out=dk)  # q was scaled in forward
        dqkv = dheads.reshape(N * L, 3 * E)
        grads["in_proj_weight"] = dqkv.T @ x2
        if self.bias:
            grads["in_proj_bias"] = _constant(N * L, dy.dtype, 1.0) @ dqkv
        return (dqkv @ W_in).reshape(shape) if input_grad else None

    def __repr__(self):
        extra = "".join(f", {name}={value}" for name, value, default in (
            ("bias", self.bias, True), ("is_causal", self.is_causal, False)) if value != default)
        return f"MultiHeadAttention({self.embed_dim}, {self.num_heads}{extra})"


def sinusoidal_positions(max_len, embed_dim, dtype=np.float64):
    """The fixed positional encodings of Vaswani et al. (2017), ``(max_len, embed_dim)``:
    ``P[p, 2i] = sin(p / 10000**(2i / E))``, ``P[p, 2i + 1] = cos(p / 10000**(2i / E))``.

    Each pair of columns is a rotation at its own frequency, so ``P[p + k]`` is a linear
    function of ``P[p]`` for every offset k. An odd E has one more sine than cosine column."""
    owner = "sinusoidal_positions"
    max_len = _check_size(owner, "max_len", max_len)
    embed_dim = _check_size(owner, "embed_dim", embed_dim)
    dtype = _check_dtype(owner, dtype)
    positions = np.arange(max_len, dtype=np.float64)[:, None]
    freqs = 10000.0 ** (-np.arange(0, embed_dim, 2, dtype=np.float64) / embed_dim)
    angles = positions * freqs  # (max_len, ceil(E / 2))
    table = np.empty((max_len, embed_dim))
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles[:, :embed_dim // 2])
    return table.astype(dtype)


class PositionalEmbedding(Layer):
    """A learned position vector added to every position: x ``(N, L, E)`` -> ``x + weight[:L]``.

    Parameter ``weight (max_len, E)``, N(0, 0.02**2) at the start (set it to
    ``sinusoidal_positions(max_len, E)`` for the fixed encodings). Any L <= max_len works. The
    backward: ``dweight[:L]`` is dout summed over the batch (rows past L get 0) and dx is dout
    (``input_grad=False``: None).
    """

    def __init__(self, max_len, embed_dim, rng=None, dtype=np.float64):
        super().__init__()
        name = "PositionalEmbedding"
        self.max_len = _check_size(name, "max_len", max_len)
        self.embed_dim = _check_size(name, "embed_dim", embed_dim)
        self.dtype = _check_dtype(name, dtype)
        rng = require_rng(rng, repr(self))
        weight = 0.02 * rng.standard_normal((self.max_len, self.embed_dim))
        self.params = {"weight": weight.astype(dtype)}

    def forward(self, x):
        weight = self.own_params()["weight"]
        x = self._input(x, weight.dtype)
        if x.ndim != 3 or x.shape[2] != self.embed_dim or not 1 <= x.shape[1] <= self.max_len:
            raise ValueError(f"{self!r}: expected input of shape (N, L, E) with E = "
                             f"{self.embed_dim} and 1 <= L <= max_len = {self.max_len}, "
                             f"got {x.shape}")
        self._cache = x.shape
        return x + weight[:x.shape[1]]

    def backward(self, dout, input_grad=True):
        shape = self._cache or ()
        weight = self.own_params()["weight"]
        dout = self._check_dout(dout, shape, weight.dtype)
        N, L, E = shape
        dweight = np.zeros_like(weight)
        # the sum over the batch as a vector-matrix product (BLAS), into the first L rows
        np.matmul(_constant(N, dout.dtype, 1.0), dout.reshape(N, L * E),
                  out=dweight[:L].reshape(L * E))
        self.grads["weight"] = dweight
        return dout if input_grad else None

    def __repr__(self):
        return f"PositionalEmbedding({self.max_len}, {self.embed_dim})"


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


class GELU(Layer):
    """The Gaussian error linear unit ``x * Phi(x)`` (Phi the standard normal CDF), as
    ``torch.nn.GELU``. ``approximate="tanh"`` (the default here, GPT-2's) uses
    ``Phi(x) ~ (1 + tanh(u)) / 2`` with ``u = sqrt(2/pi) (x + 0.044715 x**3)``, computed as
    ``sigmoid(2u) = 1 / (1 + exp(-2u))`` (the same function, one exp instead of a slower tanh);
    ``approximate="none"`` the exact ``Phi(x) = (1 + erf(x / sqrt(2))) / 2`` (PyTorch's
    default). Input of any shape.

    Derivative: ``Phi(x) + x Phi'(x)``, with ``Phi'`` of the formula used.
    """

    def __init__(self, approximate="tanh"):
        super().__init__()
        if approximate not in ("tanh", "none"):
            raise ValueError(f"GELU: approximate must be 'tanh' or 'none', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x):
        x = self._input(x)
        if self.approximate == "tanh":
            # (1 + tanh(u)) / 2 = sigmoid(2u) = 1 / (1 + exp(-2u)): one exp instead of a tanh,
            # which costs NumPy twice as much; exp overflows to inf for very negative x, where
            # the weight is then exactly 0, as it should be
            weight = x * x
            weight *= -2 * _SQRT_2_OVER_PI * 0.044715
            weight -= 2 * _SQRT_2_OVER_PI
            weight *= x  # -2u
            with np.errstate(over="ignore"):
                np.exp(weight, out=weight)
            weight += 1.0
            np.reciprocal(weight, out=weight)  # Phi(x) ~ sigmoid(2u)
        else:
            from scipy.special import erf  # scipy comes with scikit-learn
            weight = erf(x * (1.0 / math.sqrt(2.0)))
            weight += 1.0
            weight *= 0.5  # Phi(x)
        self._cache = (x, weight)
        return x * weight

    def backward(self, dout):
        x, cdf = self._cache if self._cache is not None else (None, None)
        dout = self._check_dout(dout, x.shape if x is not None else (),
                                x.dtype if x is not None else None)
        if self.approximate == "tanh":  # s + x s (1 - s) 2u'(x), with s = sigmoid(2u)
            local = x * x
            local *= 2 * _SQRT_2_OVER_PI * 3 * 0.044715
            local += 2 * _SQRT_2_OVER_PI
            local *= x
            slope = 1.0 - cdf
            slope *= cdf  # s (1 - s), the sigmoid's derivative
            local *= slope
        else:  # Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
            local = x * x
            local *= -0.5
            np.exp(local, out=local)
            local *= x * (1.0 / math.sqrt(2.0 * math.pi))
        local += cdf
        local *= dout
        return local

    def __repr__(self):
        return "GELU()" if self.approximate == "tanh" else "GELU(approximate='none')"


_ACTIVATIONS = {"gelu": GELU, "gelu_exact": lambda: GELU("none"), "relu": ReLU}


class TransformerBlock(Layer):
    """A pre-norm transformer block: ``h = x + attn(ln1(x))``, ``out = h + mlp(ln2(h))``.

    Shapes: x ``(N, L, E)`` -> out ``(N, L, E)``. Children (parameters ``"attn.in_proj_weight"``,
    ``"ln1.weight"``, ``"mlp.0.W"``, ...): ``ln1``, ``ln2`` `LayerNorm(E)`; ``attn`` a
    `MultiHeadAttention(E, num_heads, is_causal=is_causal)`, or the layer given as
    ``attention`` (any Layer mapping (N, L, E) to (N, L, E), used instead: num_heads and
    is_causal are then its business); ``mlp`` ``Sequential(TemporalLinear(E, mlp_hidden),
    activation, TemporalLinear(mlp_hidden, E))``, mlp_hidden 4E by default, activation
    ``"gelu"`` (tanh approximation), ``"gelu_exact"`` or ``"relu"``.

    ``forward(x, attn_mask=None, key_padding_mask=None)`` passes the masks, when given, to the
    attention layer. ``backward(dout)`` returns dx:
    ``dh = dout + ln2'(mlp'(dout))``, ``dx = dh + ln1'(attn'(dh))``.
    """

    def __init__(self, embed_dim, num_heads, mlp_hidden=None, is_causal=True, attention=None,
                 rng=None, dtype=np.float64, activation="gelu"):
        super().__init__()
        name = "TransformerBlock"
        E = self.embed_dim = _check_size(name, "embed_dim", embed_dim)
        hidden = self.mlp_hidden = _check_size(name, "mlp_hidden",
                                               4 * E if mlp_hidden is None else mlp_hidden)
        dtype = _check_dtype(name, dtype)
        if activation not in _ACTIVATIONS:
            raise ValueError(f"{name}: activation must be one of {sorted(_ACTIVATIONS)}, "
                             f"got {activation!r}")
        if attention is not None and not isinstance(attention, Layer):
            raise TypeError(f"{name}: attention must be a Layer mapping (N, L, E) to "
                            f"(N, L, E), got {attention!r}")
        rng = require_rng(rng, name)
        self.activation = activation
        self.ln1 = self.add_child("ln1", LayerNorm(E, dtype=dtype))
        self.attn = self.add_child("attn", attention if attention is not None else
                                   MultiHeadAttention(E, num_heads, is_causal=is_causal,
                                                      rng=rng, dtype=dtype))
        self.ln2 = self.add_child("ln2", LayerNorm(E, dtype=dtype))
        self.mlp = self.add_child("mlp", Sequential(
            TemporalLinear(E, hidden, rng=rng, dtype=dtype), _ACTIVATIONS[activation](),
            TemporalLinear(hidden, E, rng=rng, dtype=dtype)))
        self.dtype = dtype

    def forward(self, x, attn_mask=None, key_padding_mask=None):
        dtype = self.ln1.own_params()["weight"].dtype  # the parameters' (check_layer casts them)
        x = self._input(x, dtype)
        if x.ndim != 3 or x.shape[2] != self.embed_dim:
            raise ValueError(f"{self!r}: expected input of shape (N, L, E) with E = "
                             f"{self.embed_dim}, got {x.shape}")
        masks = {name: mask for name, mask in (("attn_mask", attn_mask),
                                               ("key_padding_mask", key_padding_mask))
                 if mask is not None}
        if masks:
            accepted = inspect.signature(self.attn.forward).parameters
            missing = [name for name in masks if name not in accepted]
            if missing and not any(p.kind == p.VAR_KEYWORD for p in accepted.values()):
                raise TypeError(f"{self!r}: the attention layer {self.attn!r} takes no "
                                f"{' or '.join(missing)} (its forward has no such argument)")
        a = self.attn.forward(self.ln1.forward(x), **masks)
        if getattr(a, "shape", None) != x.shape:
            raise ValueError(f"{self!r}: the attention layer {self.attn!r} maps (N, L, E) = "
                             f"{x.shape} to {getattr(a, 'shape', type(a).__name__)}; the "
                             "residual sum x + attn(ln1(x)) needs the same shape")
        h = x + a  # a new array: a plugged-in attention may keep its output for its backward
        out = self.mlp.forward(self.ln2.forward(h))
        out += h  # the MLP's last Linear returns a fresh array that nothing keeps
        self._cache = (x.shape, dtype)
        return out

    def backward(self, dout):
        shape, dtype = self._cache or ((), None)
        dout = self._check_dout(dout, shape, dtype)
        dh = self.ln2.backward(self.mlp.backward(dout))
        dh += dout
        da = self.attn.backward(dh)
        if getattr(da, "shape", None) != dh.shape:
            raise ValueError(f"{self!r}: the attention layer's backward returned "
                             f"{getattr(da, 'shape', type(da).__name__)}, expected dx of "
                             f"shape {dh.shape}")
        dx = self.ln1.backward(da)
        dx += dh
        return dx

    def __repr__(self):
        own = isinstance(self.attn, MultiHeadAttention)
        heads = f"{self.attn.num_heads}" if own else f"attention={self.attn!r}"
        extra = "" if self.mlp_hidden == 4 * self.embed_dim else f", mlp_hidden={self.mlp_hidden}"
        return f"TransformerBlock({self.embed_dim}, {heads}{extra})"


class CharTransformer(Layer):
    """A character-level causal language model (a small GPT): ids ``(N, L)`` -> logits
    ``(N, L, vocab_size)``, the logits at position t predicting the character at t + 1.

    ``tok_emb`` `Embedding(vocab_size, E)` + ``pos_emb`` `PositionalEmbedding(max_len, E)`,
    ``blocks`` a `Sequential` of num_layers causal `TransformerBlock`\\ s (parameters
    ``"blocks.0.attn.in_proj_weight"``, ...), ``ln_f`` a final `LayerNorm(E)`, ``head``
    `TemporalLinear(E, vocab_size)`. Train it with `backprop.sequence.sequence_cross_entropy`
    and any optimizer; ``backward(dlogits)`` fills the gradients and returns None (ids have no
    gradient). L may be anything from 1 to max_len. `generate` samples text.
    """

    def __init__(self, vocab_size, embed_dim, num_heads, num_layers, max_len, mlp_hidden=None,
                 rng=None, dtype=np.float64, activation="gelu"):
        super().__init__()
        name = "CharTransformer"
        self.vocab_size = _check_size(name, "vocab_size", vocab_size)
        self.embed_dim = _check_size(name, "embed_dim", embed_dim)
        self.num_layers = _check_size(name, "num_layers", num_layers)
        self.max_len = _check_size(name, "max_len", max_len)
        self.dtype = _check_dtype(name, dtype)
        rng = require_rng(rng, name)
        E = self.embed_dim
        self.tok_emb = self.add_child("tok_emb", Embedding(self.vocab_size, E, rng=rng,
                                                           dtype=dtype))
        self.pos_emb = self.add_child("pos_emb", PositionalEmbedding(self.max_len, E, rng=rng,
                                                                     dtype=dtype))
        self.blocks = self.add_child("blocks", Sequential(*[
            TransformerBlock(E, num_heads, mlp_hidden=mlp_hidden, is_causal=True, rng=rng,
                             dtype=dtype, activation=activation)
            for _ in range(self.num_layers)]))
        self.ln_f = self.add_child("ln_f", LayerNorm(E, dtype=dtype))
        self.head = self.add_child("head", TemporalLinear(E, self.vocab_size, rng=rng,
                                                          dtype=dtype))

    def forward(self, ids):
        ids = np.asarray(ids)
        if ids.ndim != 2 or not 1 <= ids.shape[1] <= self.max_len:
            raise ValueError(f"{self!r}: expected integer ids of shape (N, L) with "
                             f"1 <= L <= max_len = {self.max_len}, got shape {ids.shape}")
        x = self.pos_emb.forward(self.tok_emb.forward(ids))
        x = self.blocks.forward(x)
        self._cache = ids.shape
        return self.head.forward(self.ln_f.forward(x))

    def backward(self, dout, input_grad=False):
        """Fill every gradient; returns None (the input is integer ids)."""
        dout = self._check_dout(dout, (*(self._cache or ()), self.vocab_size),
                                self.head.layer.params["W"].dtype)
        dx = self.blocks.backward(self.ln_f.backward(self.head.backward(dout)))
        self.tok_emb.backward(self.pos_emb.backward(dx))
        return None

    def generate(self, prompt_ids, length, rng, temperature=1.0):
        """Sample `length` more ids after `prompt_ids`, one at a time, each from the softmax
        of the last position's logits divided by `temperature` (0: always the most likely id).
        The model sees the last max_len ids. prompt_ids ``(L0,)`` or ``(N, L0)``, L0 >= 1;
        returns the prompt followed by the new ids, ``(L0 + length,)`` or ``(N, L0 + length)``.
        """
        owner = f"{self!r}.generate"
        ids = np.asarray(prompt_ids)
        if ids.dtype.kind not in "iu" or ids.ndim not in (1, 2) or ids.shape[-1] < 1:
            raise ValueError(f"{owner}: prompt_ids must be integer ids of shape (L0,) or "
                             f"(N, L0) with L0 >= 1, got {ids.dtype} {ids.shape}")
        length = _check_size(owner, "length", length, minimum=0)
        rng = require_rng(rng, owner)
        if isinstance(temperature, bool) or not isinstance(
                temperature, (int, float, np.integer, np.floating)) or not temperature >= 0:
            raise ValueError(f"{owner}: temperature must be a number >= 0, got {temperature!r}")
        single = ids.ndim == 1
        ids = ids[None].astype(np.int64) if single else ids.astype(np.int64)
        out = np.empty((ids.shape[0], ids.shape[1] + length), dtype=np.int64)
        out[:, :ids.shape[1]] = ids
        for t in range(ids.shape[1], out.shape[1]):
            logits = self.forward(out[:, max(0, t - self.max_len):t])[:, -1]
            if temperature == 0:
                out[:, t] = logits.argmax(axis=1)
                continue
            z = logits * (1.0 / temperature)
            z -= z.max(axis=1, keepdims=True)
            probs = np.exp(z)
            cumulative = probs.cumsum(axis=1)
            u = rng.random(len(out))[:, None] * cumulative[:, -1:]
            out[:, t] = np.minimum((cumulative <= u).sum(axis=1), self.vocab_size - 1)
        return out[0] if single else out

    def __repr__(self):
        return (f"CharTransformer(vocab_size={self.vocab_size}, embed_dim={self.embed_dim}, "
                f"num_heads={self.blocks[0].attn.num_heads}, num_layers={self.num_layers}, "
                f"max_len={self.max_len})")
