"""Fighting overfitting: dropout, L1/L2 penalties, data augmentation for the digits, ensembles.

Early stopping lives with the training loop (`backprop.train.EarlyStopping`). A penalty joins
training through ``fit(..., regularizer=L2Penalty(1e-3))``: after ``model.backward`` it adds its
gradient to the model's gradients, before ``optimizer.step``.
"""
import math

import numpy as np
from scipy import ndimage

from . import functional as F
from .layers import Layer, as_float_array, require_rng
from .train import accuracy, predict


# -- dropout ---------------------------------------------------------------------------------
class Dropout(Layer):
    """Inverted dropout, as PyTorch's ``nn.Dropout``: in training mode each entry is zeroed with
    probability `p` and the survivors are scaled by ``1 / (1 - p)``, so the expected output
    equals the input and evaluation mode needs no rescaling: there it is the identity.

    Shapes: x any ``(N, ...)``; out the same. backward multiplies ``dout`` by the mask that the
    last forward used. p: in [0, 1); p = 0 is the identity. rng: a ``np.random.Generator``
    (required: the masks are random and must be reproducible).

    resample: True (default) draws a fresh mask at every training forward. False draws one
    mask at the first training forward and reuses it afterwards, which makes the layer a fixed
    function of its input: that is what a gradient check needs, because `check_layer` calls
    forward many times. A later input of another shape is then an error.
    """

    def __init__(self, p=0.5, rng=None, resample=True):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float, np.floating, np.integer)) \
                or not 0 <= p < 1:
            raise ValueError(f"Dropout: p, the probability of dropping a unit, must lie in "
                             f"[0, 1), got {p!r}")
        self.p = float(p)
        self.rng = require_rng(rng, f"Dropout(p={p})")
        self.resample = bool(resample)
        self._fixed_mask = None

    def _mask(self, x):
        if not self.resample and self._fixed_mask is not None:
            if self._fixed_mask.shape != x.shape:
                raise ValueError(
                    f"{self!r}: resample=False reuses the mask of shape "
                    f"{self._fixed_mask.shape}, but the input has shape {x.shape}"
                )
            return self._fixed_mask.astype(x.dtype, copy=False)
        keep = self.rng.random(x.shape) >= self.p
        mask = (keep / (1.0 - self.p)).astype(x.dtype)
        if not self.resample:
            self._fixed_mask = mask
        return mask

    def forward(self, x):
        x = as_float_array(x, repr(self))
        # None means "identity": evaluation mode, or p = 0 (nothing to drop, no draw)
        mask = self._mask(x) if self.training and self.p > 0 else None
        self._cache = (x.shape, mask)
        return x if mask is None else x * mask

    def backward(self, dout):
        shape, mask = self._cache if self._cache is not None else ((), None)
        dout = self._check_dout(dout, shape)
        return dout if mask is None else dout * mask

    def __repr__(self):
        return f"Dropout(p={self.p:g})"


# -- L1 and L2 penalties ---------------------------------------------------------------------
def _check_strength(owner, name, value):
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: {name} must be a number, got {value!r}") from None
    if not (math.isfinite(number) and number >= 0):
        raise ValueError(f"{owner}: {name} must be a finite number >= 0, got {value!r}")
    return number


def _penalized_parameters(model, include_biases):
    """(name, param) of the weights: arrays with >= 2 dimensions (matrices, filters).

    1-D parameters (biases, normalisation scales) only with include_biases, as is customary:
    they are few and shrinking them does not reduce the model's capacity.
    """
    for name, param, _ in model.named_parameters():
        if param.ndim >= 2 or include_biases:
            yield name, param


def l2_penalty(model, weight_decay, include_biases=False):
    """``(weight_decay / 2) * sum ||W||^2`` over the weights, and its gradient ``weight_decay * W``.

    The factor 1/2 makes the gradient the same as ``SGD(weight_decay=...)`` adds (PyTorch's
    convention). Returns ``(penalty: float, {parameter name: gradient})``.
    """
    weight_decay = _check_strength("l2_penalty", "weight_decay", weight_decay)
    params = dict(_penalized_parameters(model, include_biases))
    penalty = 0.5 * weight_decay * sum(float(np.sum(p * p)) for p in params.values())
    return penalty, {name: weight_decay * p for name, p in params.items()}


def l1_penalty(model, strength, include_biases=False):
    """``strength * sum |W|`` over the weights, and its subgradient ``strength * sign(W)``.

    ``|w|`` has no derivative at 0; the subgradient 0 used there (``np.sign(0) == 0``) leaves
    weights that are exactly zero where they are. Returns ``(penalty, {name: gradient})``.
    """
    strength = _check_strength("l1_penalty", "strength", strength)
    params = dict(_penalized_parameters(model, include_biases))
    penalty = strength * sum(float(np.sum(np.abs(p))) for p in params.values())
    return penalty, {name: strength * np.sign(p) for name, p in params.items()}


def add_penalty_grads(model, grads):
    """Add ``grads`` ({parameter name: array}) to the model's gradients, in place.

    Call it after ``model.backward`` (which fills the gradients) and before ``optimizer.step``.
    """
    current = {name: grad for name, _, grad in model.named_parameters()}
    for name, extra in grads.items():
        if name not in current:
            raise KeyError(f"add_penalty_grads: {name!r} is not a parameter of the model "
                           f"(parameters: {sorted(current)})")
        if current[name] is None:
            raise RuntimeError(f"add_penalty_grads: parameter {name!r} has no gradient yet; "
                               "call model.backward(dout) first")
        np.add(current[name], extra, out=current[name])


class _Penalty:
    """A regularizer for `fit`: ``(model) -> penalty``, adding the penalty's gradient in place."""

    def __init__(self, strength, include_biases=False, name="strength"):
        self.strength = _check_strength(type(self).__name__, name, strength)
        self.include_biases = bool(include_biases)

    def __call__(self, model):
        penalty, grads = self._penalty(model, self.strength, self.include_biases)
        add_penalty_grads(model, grads)
        return penalty

    def __repr__(self):
        return f"{type(self).__name__}({self.strength:g}, include_biases={self.include_biases})"


class L2Penalty(_Penalty):
    """``fit(..., regularizer=L2Penalty(weight_decay))``: `l2_penalty` as a regularizer."""

    _penalty = staticmethod(l2_penalty)

    def __init__(self, weight_decay, include_biases=False):
        super().__init__(weight_decay, include_biases, name="weight_decay")


class L1Penalty(_Penalty):
    """``fit(..., regularizer=L1Penalty(strength))``: `l1_penalty` as a regularizer."""

    _penalty = staticmethod(l1_penalty)


# -- data augmentation -----------------------------------------------------------------------
def augment_digits(images, rng, max_shift=1, max_rotation_deg=10.0):
    """Randomly shifted and rotated copies of 8x8 digit images (one new copy per image).

    images: (N, 64), (N, 8, 8) or (N, 1, 8, 8), background 0 (as `load_digits` scales them).
    Each image is rotated about its centre by an angle drawn uniformly from
    ``[-max_rotation_deg, max_rotation_deg]`` and shifted by a whole number of pixels drawn
    uniformly from ``-max_shift..max_shift`` along each axis, with bilinear interpolation and
    zeros coming in from outside. Returns an array of the input's shape and dtype whose values
    stay within the input's range (and 0). All randomness comes from `rng`.
    """
    rng = require_rng(rng, "augment_digits")
    arr = as_float_array(images, "augment_digits")
    if arr.ndim not in (2, 3, 4) or arr.shape[1:] not in [(64,), (8, 8), (1, 8, 8)]:
        raise ValueError(f"augment_digits: expected images of shape (N, 64), (N, 8, 8) or "
                         f"(N, 1, 8, 8), got {arr.shape}")
    if not (isinstance(max_shift, (int, np.integer)) and max_shift >= 0):
        raise ValueError(f"augment_digits: max_shift must be an integer >= 0, got {max_shift!r}")
    max_rotation_deg = _check_strength("augment_digits", "max_rotation_deg", max_rotation_deg)
    stack = arr.reshape(-1, 8, 8)
    n = len(stack)
    angles = np.deg2rad(rng.uniform(-max_rotation_deg, max_rotation_deg, n))
    shifts = rng.integers(-max_shift, max_shift + 1, size=(n, 2))

    # For every output pixel, the input position it samples: undo the shift, then the rotation
    # about the centre (3.5, 3.5). Row/column coordinates, shape (n, 8, 8) each.
    rows, cols = np.meshgrid(np.arange(8.0), np.arange(8.0), indexing="ij")
    r = rows - 3.5 - shifts[:, 0, None, None]
    c = cols - 3.5 - shifts[:, 1, None, None]
    cos, sin = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    src_rows, src_cols = cos * r - sin * c + 3.5, sin * r + cos * c + 3.5
    # One call for the whole batch: the image index is a whole-number coordinate, so the
    # bilinear interpolation never mixes two images.
    index = np.broadcast_to(np.arange(n, dtype=np.float64)[:, None, None], src_rows.shape)
    out = ndimage.map_coordinates(stack.astype(np.float64), [index, src_rows, src_cols],
                                  order=1, mode="constant", cval=0.0)
    out = np.clip(out, arr.min(initial=0.0), arr.max(initial=0.0))
    return out.reshape(arr.shape).astype(arr.dtype)


# -- ensembles -------------------------------------------------------------------------------
def ensemble_predict(models, X, batch_size=256):
    """Average of the models' predicted class probabilities (each model in evaluation mode).

    models: a non-empty sequence of classifiers whose outputs have the same shape: (N, C)
    class scores (softmax is applied) or (N,) / (N, 1) binary logits (sigmoid is applied).
    X: (N, ...). Returns the mean probabilities, shaped like one model's output.
    """
    models = list(models)
    if not models:
        raise ValueError("ensemble_predict: models is empty")
    total = None
    for i, model in enumerate(models):
        scores = predict(model, X, batch_size)
        binary = scores.ndim == 1 or (scores.ndim == 2 and scores.shape[1] == 1)
        probs = F.sigmoid(scores) if binary else F.softmax(scores, axis=1)
        if total is not None and probs.shape != total.shape:
            raise ValueError(f"ensemble_predict: model {i} outputs shape {probs.shape}, "
                             f"model 0 outputs {total.shape}")
        total = probs if total is None else total + probs
    return total / len(models)


def ensemble_accuracy(models, X, y, batch_size=256):
    """Accuracy of the ensemble's averaged probabilities (`ensemble_predict`) against labels y."""
    probs = ensemble_predict(models, X, batch_size)
    return accuracy(probs, y, threshold=0.5)
