"""Loss functions. Each returns ``(loss, dpred)``: the scalar loss and its gradient with
respect to the prediction, ready to hand to ``model.backward``.
"""
import numpy as np

from . import functional as F
from .layers import as_float_array


def _check_finite(name, arr):
    if not np.all(np.isfinite(arr)):
        bad = np.argwhere(~np.isfinite(arr))[0]
        raise ValueError(
            f"{name}: input contains NaN or inf (first at index {tuple(int(i) for i in bad)}); "
            "the model's forward pass has diverged: lower the learning rate or check its input"
        )


def mse_loss(pred, target):
    """Mean squared error over all elements, as PyTorch's ``mse_loss``.

    pred, target: arrays of the same shape (any). Returns ``(loss, dpred)`` with
    ``loss = mean((pred - target)**2)`` and ``dpred = 2 (pred - target) / pred.size``.
    Shapes must match exactly: (N,) against (N, 1) would broadcast to (N, N) and silently
    compute the wrong loss, so it is an error here.
    """
    pred = as_float_array(pred, "mse_loss(pred)")
    target = as_float_array(target, "mse_loss(target)", pred.dtype)
    if pred.shape != target.shape:
        raise ValueError(
            f"mse_loss: pred has shape {pred.shape} but target has shape {target.shape}; "
            "they must match (reshape one of them)"
        )
    if pred.size == 0:
        raise ValueError("mse_loss: empty input")
    _check_finite("mse_loss(pred)", pred)
    diff = pred - target
    return float(np.mean(diff**2)), 2.0 * diff / diff.size


def _check_labels(name, labels, n, num_classes):
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(
            f"{name}: labels must be integer class indices, got dtype {labels.dtype}"
        )
    if labels.shape != (n,):
        raise ValueError(f"{name}: expected labels of shape ({n},), got {labels.shape}")
    if n and (labels.min() < 0 or labels.max() >= num_classes):
        first_bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise ValueError(
            f"{name}: label {int(first_bad)} is outside the {num_classes} classes "
            f"(valid labels are 0..{num_classes - 1})"
        )
    return labels


def softmax_cross_entropy(logits, labels):
    """Softmax followed by the negative log-likelihood, averaged over the batch.

    logits: (N, C) unnormalised scores; labels: (N,) integer classes in ``0..C-1``.
    Returns ``(loss, dlogits)`` with ``dlogits = (softmax(logits) - onehot(labels)) / N``.
    Stable for logits as large as ±1000 (max subtraction inside log-softmax).
    """
    logits = as_float_array(logits, "softmax_cross_entropy(logits)")
    if logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] == 0:
        raise ValueError(
            f"softmax_cross_entropy: expected logits of shape (N, C), got {logits.shape}"
        )
    n, num_classes = logits.shape
    labels = _check_labels("softmax_cross_entropy", labels, n, num_classes)
    # log-softmax with the max subtracted, keeping exp(shifted) for the gradient (one exp).
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp_shifted = np.exp(shifted)
    sums = exp_shifted.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    # Sums over n, as .mean() computes them, without its per-call overhead.
    loss = np.log(sums).sum() / n - shifted[rows, labels].sum() / n
    if not np.isfinite(loss):  # NaN or inf somewhere in the logits: say where
        _check_finite("softmax_cross_entropy(logits)", logits)
    dlogits = exp_shifted  # the softmax, in place: exp(shifted) is not needed any more
    dlogits /= sums
    dlogits[rows, labels] -= 1
    dlogits /= n
    return float(loss), dlogits


def binary_cross_entropy_with_logits(logits, targets):
    """Sigmoid followed by binary cross-entropy, averaged over all elements.

    logits: any shape; targets: the same shape, values in [0, 1] (0/1 labels or soft targets).
    ``loss = mean(max(z, 0) - z t + log(1 + exp(-|z|)))``, the stable form of
    ``-t log s(z) - (1 - t) log(1 - s(z))``; ``dlogits = (sigmoid(z) - t) / size``.
    """
    logits = as_float_array(logits, "binary_cross_entropy_with_logits(logits)")
    targets = as_float_array(targets, "binary_cross_entropy_with_logits(targets)", logits.dtype)
    if logits.shape != targets.shape:
        raise ValueError(
            f"binary_cross_entropy_with_logits: logits have shape {logits.shape} but targets "
            f"have shape {targets.shape}; they must match"
        )
    if logits.size == 0:
        raise ValueError("binary_cross_entropy_with_logits: empty input")
    _check_finite("binary_cross_entropy_with_logits(logits)", logits)
    if np.any((targets < 0) | (targets > 1)):
        raise ValueError("binary_cross_entropy_with_logits: targets must lie in [0, 1]")
    z, t = logits, targets
    loss = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    return float(loss.mean()), (F.sigmoid(z) - t) / z.size
