"""Building blocks around recurrent layers: token embeddings, per-time-step layers, the sequence
loss, and gradient-norm clipping.

A character-level language model, for instance, is
``Sequential(Embedding(V, E), RNN(E, H), TemporalLinear(H, V))`` trained with
`sequence_cross_entropy` and `clip_grad_norm` (exploding gradients are the classic RNN failure).
"""
import math
import numbers

import numpy as np

from .layers import Layer, require_rng, Linear, as_float_array
from .losses import softmax_cross_entropy


class Embedding(Layer):
    """A lookup table: integer ids ``(N, T)`` (any shape) -> rows of ``W``, ``(N, T, E)``.

    ``W (num_embeddings, embedding_dim)`` starts as N(0, 1) entries, as in PyTorch. Looking up a
    row is the same as multiplying a one-hot vector by ``W``, so ``dW[k]`` is the sum of the
    upstream gradients at every position whose id is k; ``np.add.at`` does that sum (plain
    ``dW[ids] += dout`` would keep only one of the repeated ids).

    ``backward`` returns None: ids are integers, there is no gradient with respect to them, so an
    Embedding has to be the first layer of a model.
    """

    def __init__(self, num_embeddings, embedding_dim, rng=None, dtype=np.float64):
        super().__init__()
        if int(num_embeddings) < 1 or int(embedding_dim) < 1:
            raise ValueError(f"Embedding: num_embeddings and embedding_dim must be >= 1, "
                             f"got {num_embeddings} and {embedding_dim}")
        self.num_embeddings, self.embedding_dim = int(num_embeddings), int(embedding_dim)
        rng = require_rng(rng, "Embedding")
        W = rng.standard_normal((self.num_embeddings, self.embedding_dim))
        self.params = {"W": W.astype(dtype)}

    def forward(self, ids):
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu":
            raise TypeError(f"{self!r}: expected integer ids, got dtype {ids.dtype} "
                            "(convert with ids.astype(int) if they are whole numbers)")
        bad = (ids < 0) | (ids >= self.num_embeddings)
        if bad.any():
            raise ValueError(f"{self!r}: id {int(ids[bad][0])} is out of range; valid ids are "
                             f"0..{self.num_embeddings - 1}")
        self._cache = ids
        return self.params["W"][ids]

    def backward(self, dout):
        ids = self._cache
        out_shape = (ids.shape if ids is not None else ()) + (self.embedding_dim,)
        dout = self._check_dout(dout, out_shape, self.params["W"].dtype)
        dW = np.zeros_like(self.params["W"])
        np.add.at(dW, ids.ravel(), dout.reshape(-1, self.embedding_dim))
        self.grads["W"] = dW
        return None

    def __repr__(self):
        return f"Embedding({self.num_embeddings}, {self.embedding_dim})"


class TimeDistributed(Layer):
    """Apply ``layer`` to every time step: ``(N, T, ...)`` -> ``(N, T, ...)``.

    The batch and time axes are merged into one, ``(N*T, ...)``, for the wrapped layer (every
    step uses the same weights, so this is one big batch), and split again afterwards.
    ``layer`` is its only child, registered under the empty name, so ``params`` and ``grads``
    carry the wrapped layer's own names (``"W"``, ``"b"``) and writes go to it.
    """

    def __init__(self, layer):
        super().__init__()
        if not isinstance(layer, Layer):
            raise TypeError(f"TimeDistributed: expected a Layer, got {layer!r}")
        self.add_child("", layer)

    @property
    def layer(self):
        return self._children[""]

    def forward(self, x):
        x = np.asarray(x)
        if x.dtype.kind not in "biuf":  # the wrapped layer converts integers to its own dtype
            as_float_array(x, repr(self))  # raises the TypeError
        if x.ndim < 3:
            raise ValueError(f"{self!r}: expected input of shape (N, T, ...) with at least 3 "
                             f"dimensions, got {x.shape}")
        N, T = x.shape[:2]
        out = self.layer.forward(x.reshape(N * T, *x.shape[2:]))
        self._cache = (N, T, out.shape)
        return out.reshape(N, T, *out.shape[1:])

    def backward(self, dout):
        N, T, inner_shape = self._cache if self._cache is not None else (0, 0, (0,))
        dout = self._check_dout(dout, (N, T, *inner_shape[1:]))
        dx = self.layer.backward(dout.reshape(inner_shape))
        return None if dx is None else dx.reshape(N, T, *dx.shape[1:])

    def __repr__(self):
        return f"{type(self).__name__}({self.layer!r})"


class TemporalLinear(TimeDistributed):
    """A `Linear` layer at every time step: ``(N, T, in_features)`` -> ``(N, T, out_features)``.

    ``params``: W ``(in_features, out_features)``, b ``(out_features,)``, shared by all steps.
    """

    def __init__(self, in_features, out_features, rng=None, dtype=np.float64):
        super().__init__(Linear(in_features, out_features, rng=rng, dtype=dtype))
        self.in_features, self.out_features = self.layer.in_features, self.layer.out_features

    def forward(self, x):
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[2] != self.in_features:
            raise ValueError(f"{self!r}: expected input of shape (N, T, {self.in_features}), "
                             f"got {x.shape}")
        return super().forward(x)

    def __repr__(self):
        return f"TemporalLinear({self.in_features}, {self.out_features})"


def sequence_cross_entropy(logits, targets, mask=None):
    """Softmax cross-entropy averaged over every (unmasked) time step of every sequence.

    logits ``(N, T, V)``; targets ``(N, T)`` integer classes; mask ``(N, T)`` of bools or 0/1
    (True/1 = count this step; padding gets False), None for all steps. Returns
    ``(loss, dlogits (N, T, V))``; masked steps get zero gradient and may hold any target.
    Same as PyTorch's ``cross_entropy(logits.reshape(-1, V), targets.reshape(-1),
    ignore_index=pad)`` with the mask ``targets != pad``.
    """
    logits = as_float_array(logits, "sequence_cross_entropy(logits)")
    if logits.ndim != 3:
        raise ValueError(f"sequence_cross_entropy: expected logits of shape (N, T, V), "
                         f"got {logits.shape}")
    N, T, V = logits.shape
    targets = np.asarray(targets)
    if targets.dtype.kind not in "iu":
        raise TypeError(f"sequence_cross_entropy: targets must be integer class indices, "
                        f"got dtype {targets.dtype}")
    if targets.shape != (N, T):
        raise ValueError(f"sequence_cross_entropy: expected targets of shape {(N, T)} to match "
                         f"logits {logits.shape}, got {targets.shape}")
    if mask is None:
        keep = np.ones(N * T, dtype=bool)
    else:
        mask = np.asarray(mask)
        if mask.shape != (N, T):
            raise ValueError(f"sequence_cross_entropy: expected mask of shape {(N, T)}, "
                             f"got {mask.shape}")
        if mask.dtype != bool and not np.isin(mask, (0, 1)).all():
            raise ValueError("sequence_cross_entropy: mask must hold booleans or 0/1 values")
        keep = mask.astype(bool).reshape(-1)
        if not keep.any():
            raise ValueError("sequence_cross_entropy: the mask selects no time step")
    rows = logits.reshape(N * T, V)
    loss, drows = softmax_cross_entropy(rows[keep], targets.reshape(-1)[keep])
    dlogits = np.zeros_like(rows)
    dlogits[keep] = drows
    return loss, dlogits.reshape(N, T, V)


def clip_grad_norm(model, max_norm):
    """Scale all gradients of ``model`` in place so their global L2 norm is at most ``max_norm``.

    The norm is over every gradient from ``model.named_parameters()`` taken together, as one
    long vector, so clipping keeps the direction of the update and only shortens it. Returns the
    norm before clipping (worth logging: spikes show exploding gradients). Like PyTorch's
    ``clip_grad_norm_``, except that the scale is exactly ``max_norm / norm`` (PyTorch adds 1e-6
    to the norm).
    """
    if not isinstance(max_norm, numbers.Real) or isinstance(max_norm, bool):
        raise TypeError(f"clip_grad_norm: max_norm must be a number, got {max_norm!r}")
    max_norm = float(max_norm)
    if not (max_norm > 0 and math.isfinite(max_norm)):
        raise ValueError(f"clip_grad_norm: max_norm must be a positive number, got {max_norm}")
    grads = []
    for name, _, grad in model.named_parameters():
        if grad is None:
            raise RuntimeError(f"clip_grad_norm: parameter {name!r} has no gradient; "
                               "call model.backward(dout) first")
        grads.append((name, grad))
    for name, grad in grads:
        if not np.all(np.isfinite(grad)):
            raise ValueError(f"clip_grad_norm: the gradient of {name!r} contains NaN or inf; "
                             "training has diverged (lower the learning rate)")
    total_norm = math.sqrt(sum(float(np.sum(np.square(grad, dtype=np.float64)))
                               for _, grad in grads))
    if total_norm > max_norm:
        scale = max_norm / total_norm
        for _, grad in grads:
            grad *= scale
    return total_norm
