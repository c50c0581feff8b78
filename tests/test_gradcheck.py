"""The gradient checker itself: it must pass correct gradients and catch wrong ones."""
import numpy as np
import pytest

from backprop.gradcheck import check_layer, numerical_gradient, rel_error
from backprop.layers import Layer, Linear


def test_numerical_gradient_of_a_known_function():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    grad = numerical_gradient(lambda v: np.sum(v**3), x)
    np.testing.assert_allclose(grad, 3 * x**2, rtol=1e-8)
    np.testing.assert_array_equal(x, [[1.0, -2.0], [0.5, 3.0]])  # restored after perturbing


def test_numerical_gradient_of_an_array_function_uses_the_upstream_gradient():
    x, dout = np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(numerical_gradient(np.sin, x, dout), np.cos(x) * dout, rtol=1e-8)


def test_numerical_gradient_rejects_integer_arrays_and_non_scalar_functions():
    with pytest.raises(TypeError, match="must be a float ndarray"):
        numerical_gradient(np.sum, np.array([1, 2]))
    with pytest.raises(ValueError, match="pass dout"):
        numerical_gradient(lambda v: v * 2, np.ones(3))


def test_rel_error_is_scale_free_and_floored():
    a = np.array([1.0, 2.0])
    assert rel_error(a, a) == 0.0
    assert rel_error(a * 1e6, a * 1e6 * (1 + 1e-9)) < 1e-8
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert rel_error(np.array([1.0]), np.array([-1.0])) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shapes differ"):
        rel_error(np.zeros(2), np.zeros(3))


class _Square(Layer):
    """y = x**2 with a deliberately wrong or right derivative."""

    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        self._cache = x
        return x**2

    def backward(self, dout):
        return self.factor * self._cache * dout


def test_check_layer_passes_a_correct_layer_and_fails_a_wrong_one():
    x = np.random.default_rng(0).standard_normal((3, 2))
    assert check_layer(_Square(2.0), x).ok
    bad = check_layer(_Square(1.0), x)  # forgot the 2 of d(x^2)/dx
    assert not bad.ok
    assert bad.max_rel_error == pytest.approx(1 / 3, rel=1e-5)
    text = str(bad)
    assert "FAILED" in text and "worst entry dx[" in text and "analytic" in text and "numeric" in text


def test_check_layer_works_on_a_float32_layer_in_float64_and_leaves_it_untouched():
    rng = np.random.default_rng(0)
    layer = Linear(3, 2, rng=rng, dtype=np.float32)
    before = layer.params["W"].copy()
    report = check_layer(layer, rng.standard_normal((4, 3)).astype(np.float32))
    assert report.max_rel_error < 1e-7, str(report)
    assert layer.params["W"].dtype == np.float32
    np.testing.assert_array_equal(layer.params["W"], before)
    assert not layer.grads  # the original was never run
