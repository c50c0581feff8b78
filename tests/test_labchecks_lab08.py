"""Lab 08's visible checks: what they accept and what they name, beyond the catalogued mistakes
(tests/mistakes/lab08_overfitting.py)."""
import numpy as np
import pytest

from backprop.checks import LabCheckError, fresh


def _dropconnect_forward(x, W, b, p, rng, training=True):
    mask = (rng.random(W.shape) >= p) / (1 - p) if training else np.ones_like(W)
    return x @ (W * mask) + b, mask


def _group_lasso_grad(W, strength):
    lengths = np.linalg.norm(W, axis=1, keepdims=True)
    return strength * W / np.where(lengths > 0, lengths, 1.0)


def _early_stopping(accuracies, patience, min_delta=0.0):
    best, best_epoch, waited = None, 0, 0
    for epoch, accuracy in enumerate(accuracies, start=1):
        if best is None or accuracy > best + min_delta:
            best, best_epoch, waited = accuracy, epoch, 0
        else:
            waited += 1
    return waited >= patience, best_epoch


def test_right_answers_pass():
    lab = fresh("lab08")
    lab.check_dropconnect_forward(_dropconnect_forward)
    lab.check_group_lasso_grad(_group_lasso_grad)
    lab.check_early_stopping_stop(_early_stopping)
    lab.check_early_stopping_best_epoch(_early_stopping)


def test_a_dropconnect_that_draws_its_mask_once_fails_the_average_over_masks():
    kept = {}

    def drawn_once(x, W, b, p, rng, training=True):
        if not training:
            return x @ W + b, np.ones_like(W)
        if (p, W.shape) not in kept or p != 0.5:   # the first masks are the tests' own
            kept[p, W.shape] = (rng.random(W.shape) >= p) / (1 - p)
        mask = kept[p, W.shape]
        return x @ (W * mask) + b, mask

    with pytest.raises(LabCheckError, match=r"the mean of out over 4000 masks(.|\n)*draw a new "
                                            r"mask on every call"):
        fresh("lab08").check_dropconnect_forward(drawn_once)


def test_a_group_lasso_gradient_with_nan_at_a_zero_row_is_told_why():
    def divides_by_zero(W, strength):
        return strength * W / np.linalg.norm(W, axis=1, keepdims=True)

    with pytest.raises(LabCheckError, match=r"inf or NaN entries when row 1 of W is all zeros"):
        fresh("lab08").check_group_lasso_grad(divides_by_zero)


def _loss_rule(accuracies, patience, min_delta=0.0):
    """The lesson's rule on losses (lower is better), applied to accuracies."""
    best, best_epoch, waited = None, 0, 0
    for epoch, accuracy in enumerate(accuracies, start=1):
        if best is None or accuracy < best - min_delta:
            best, best_epoch, waited = accuracy, epoch, 0
        else:
            waited += 1
    return waited >= patience, best_epoch


def test_the_lessons_loss_rule_applied_to_accuracies_is_named():
    with pytest.raises(LabCheckError, match=r"accuracy must go UP to improve"):
        fresh("lab08").check_early_stopping_stop(_loss_rule)
