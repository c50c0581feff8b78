"""Losses: values against direct formulas, gradients against finite differences, bad input."""
import numpy as np
import pytest

from backprop.gradcheck import numerical_gradient, rel_error
from backprop.losses import binary_cross_entropy_with_logits, mse_loss, softmax_cross_entropy

TOL = 1e-7


@pytest.mark.parametrize("shape", [(1,), (1, 1), (5, 3), (2, 3, 4)])
def test_mse_value_and_gradient(shape):
    rng = np.random.default_rng(len(shape))
    pred, target = rng.standard_normal(shape), rng.standard_normal(shape)
    loss, dpred = mse_loss(pred, target)
    assert loss == pytest.approx(np.mean((pred - target) ** 2))
    num = numerical_gradient(lambda p: mse_loss(p, target)[0], pred)
    assert rel_error(dpred, num) < TOL


def test_mse_matches_pytorch_convention_of_mean_over_all_elements():
    loss, dpred = mse_loss(np.array([[1.0, 2.0], [3.0, 4.0]]), np.zeros((2, 2)))
    assert loss == pytest.approx(30 / 4)
    np.testing.assert_allclose(dpred, 2 * np.array([[1, 2], [3, 4]]) / 4)


def test_mse_refuses_silent_broadcasting():
    with pytest.raises(ValueError, match=r"pred has shape \(3,\) but target has shape \(3, 1\)"):
        mse_loss(np.zeros(3), np.zeros((3, 1)))


@pytest.mark.parametrize("n,c", [(1, 2), (5, 3), (4, 10), (3, 7)])
def test_softmax_cross_entropy_value_and_gradient(n, c):
    rng = np.random.default_rng(n + c)
    logits, labels = rng.standard_normal((n, c)), rng.integers(0, c, n)
    loss, dlogits = softmax_cross_entropy(logits, labels)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(probs[np.arange(n), labels])))
    num = numerical_gradient(lambda z: softmax_cross_entropy(z, labels)[0], logits)
    assert rel_error(dlogits, num) < TOL


def test_softmax_cross_entropy_is_stable_for_logits_of_plus_minus_1000():
    logits = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, 1000.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, dlogits = softmax_cross_entropy(logits, np.array([1, 2]))
    assert loss == pytest.approx(2000.0 / 2)
    assert np.all(np.isfinite(dlogits))
    np.testing.assert_allclose(dlogits, [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]], atol=1e-12)


def test_softmax_cross_entropy_of_uniform_logits_is_log_c():
    loss, _ = softmax_cross_entropy(np.zeros((4, 10)), np.arange(4))
    assert loss == pytest.approx(np.log(10))


def test_label_outside_the_classes_is_a_value_error():
    with pytest.raises(ValueError, match=r"label 3 is outside the 3 classes \(valid labels are 0..2\)"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="label -1 is outside"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, -1]))


def test_float_or_misshaped_labels_are_rejected():
    with pytest.raises(TypeError, match="labels must be integer class indices, got dtype float64"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"expected labels of shape \(2,\), got \(2, 1\)"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([[0], [1]]))
    with pytest.raises(ValueError, match=r"expected logits of shape \(N, C\), got \(3,\)"):
        softmax_cross_entropy(np.zeros(3), np.array([0, 1, 2]))


def test_nan_logits_are_reported_not_propagated():
    logits = np.zeros((2, 3))
    logits[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"contains NaN or inf \(first at index \(1, 2\)\)"):
        softmax_cross_entropy(logits, np.array([0, 1]))


@pytest.mark.parametrize("shape", [(1,), (6,), (3, 1), (2, 5)])
def test_binary_cross_entropy_with_logits_value_and_gradient(shape):
    rng = np.random.default_rng(sum(shape))
    z, t = rng.standard_normal(shape) * 2, rng.integers(0, 2, shape).astype(float)
    loss, dz = binary_cross_entropy_with_logits(z, t)
    s = 1 / (1 + np.exp(-z))
    assert loss == pytest.approx(np.mean(-t * np.log(s) - (1 - t) * np.log(1 - s)))
    num = numerical_gradient(lambda v: binary_cross_entropy_with_logits(v, t)[0], z)
    assert rel_error(dz, num) < TOL


def test_binary_cross_entropy_is_stable_and_validates_targets():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, _ = binary_cross_entropy_with_logits(np.array([1000.0, -1000.0]), np.array([0.0, 1.0]))
    assert loss == pytest.approx(1000.0)
    with pytest.raises(ValueError, match=r"targets must lie in \[0, 1\]"):
        binary_cross_entropy_with_logits(np.zeros(2), np.array([0.0, 2.0]))
    with pytest.raises(ValueError, match=r"logits have shape \(2,\) but targets have shape \(2, 1\)"):
        binary_cross_entropy_with_logits(np.zeros(2), np.zeros((2, 1)))


def test_losses_keep_float32_gradients():
    pred = np.ones((3, 2), dtype=np.float32)
    assert mse_loss(pred, np.zeros((3, 2)))[1].dtype == np.float32
    assert softmax_cross_entropy(pred, np.array([0, 1, 0]))[1].dtype == np.float32
    assert binary_cross_entropy_with_logits(pred, np.zeros((3, 2)))[1].dtype == np.float32
