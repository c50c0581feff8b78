"""backprop.landscape: flat parameters, loss along lines and planes, Hessian-vector products,
extreme Hessian eigenvalues and the minimum / saddle classification."""
import numpy as np
import pytest

from backprop.conv import Conv2d
from backprop.gradcheck import numerical_gradient, rel_error
from backprop.landscape import (
    classify_critical_point, get_flat_params, hessian_extreme_eigenvalues,
    hessian_vector_product, linear_interpolation, loss_and_grad, loss_surface_2d,
    random_direction, set_flat_params, top_hessian_eigenvalues,
)
from backprop.layers import Layer, Linear, Sequential, Tanh
from backprop.losses import mse_loss
from backprop.regularization import Dropout


def _tanh_net(seed=0):
    rng = np.random.default_rng(seed)
    model = Sequential(Linear(3, 4, rng=rng), Tanh(), Linear(4, 2, rng=rng))
    X, Y = rng.standard_normal((10, 3)), rng.standard_normal((10, 2))
    return model, X, Y


def _linear_regression(n_out=1, seed=0, n=30):
    """A Linear with MSE (a quadratic loss) and its exact Hessian.

    Flattened, (W (d, m) row by row, then b (m,)) is the augmented matrix [W; b] row by row, so
    with A = [X 1] the Hessian is kron(2 / (N m) A^T A, I_m)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4)) * np.array([3.0, 2.0, 1.0, 0.5])
    Y = rng.standard_normal((n, n_out))
    A = np.column_stack([X, np.ones(n)])
    hessian = np.kron(2.0 / (n * n_out) * A.T @ A, np.eye(n_out))
    return Linear(4, n_out, rng=rng), X, Y, hessian


class _Product(Layer):
    """``out = w[0] * w[1] * x``: the smallest "network" with a saddle at w = 0."""

    def __init__(self, w):
        super().__init__()
        self.params = {"w": np.array(w, dtype=np.float64)}

    def forward(self, x):
        self._cache = x
        return self.params["w"][0] * self.params["w"][1] * x

    def backward(self, dout):
        x, (w0, w1) = self._cache, self.params["w"]
        self.grads["w"] = np.array([np.sum(dout * w1 * x), np.sum(dout * w0 * x)])
        return dout * w0 * w1


def _product_data():
    """x with mean(x^2) = 1 and y = x: at w = 0 the Hessian is [[0, -2], [-2, 0]]."""
    x = np.linspace(-1.0, 1.0, 21)[:, None]
    x = x / np.sqrt(np.mean(x**2))
    return x, x.copy()


# -- flat parameters -------------------------------------------------------------------------
def test_flat_params_round_trip_in_parameter_order():
    model, _, _ = _tanh_net()
    flat = get_flat_params(model)
    assert flat.shape == (model.num_parameters(),)
    np.testing.assert_array_equal(flat[:12], model.params["0.W"].ravel())
    flat[:] = np.arange(flat.size)  # a copy: changing it leaves the model alone
    assert model.params["0.W"][0, 0] != 1.0
    W_object = model[0].params["W"]
    set_flat_params(model, flat)
    assert model[0].params["W"] is W_object  # in place
    np.testing.assert_array_equal(get_flat_params(model), np.arange(flat.size))
    with pytest.raises(ValueError, match=r"has 26 parameters, so expected a vector of shape \(26,\)"):
        set_flat_params(model, np.zeros(5))


def test_loss_and_grad_matches_finite_differences_of_the_loss():
    model, X, Y = _tanh_net()
    loss, grad = loss_and_grad(model, mse_loss, X, Y)
    assert loss == pytest.approx(mse_loss(model.forward(X), Y)[0])
    theta = get_flat_params(model)

    def loss_at(flat):
        set_flat_params(model, flat)
        return mse_loss(model.forward(X), Y)[0]

    numeric = numerical_gradient(loss_at, theta.copy())
    assert rel_error(grad, numeric) < 1e-7


# -- lines and planes ------------------------------------------------------------------------
def test_interpolation_endpoints_are_the_losses_at_the_two_parameter_sets():
    model, X, Y = _tanh_net()
    params_a = model.state_dict()
    params_b = get_flat_params(_tanh_net(seed=1)[0])
    losses = linear_interpolation(model, params_a, params_b, mse_loss, X, Y, [0.0, 0.5, 1.0])
    assert losses.shape == (3,)
    assert losses[0] == pytest.approx(mse_loss(model.forward(X), Y)[0], rel=1e-12)
    set_flat_params(model, params_b)
    assert losses[2] == pytest.approx(mse_loss(model.forward(X), Y)[0], rel=1e-12)
    with pytest.raises(ValueError, match=r"vector of shape \(26,\), got shape \(3,\)"):
        linear_interpolation(model, np.zeros(3), params_b, mse_loss, X, Y, [0.0])


def test_interpolation_of_a_quadratic_is_a_parabola():
    model, X, Y, _ = _linear_regression()
    a, b = get_flat_params(model), np.zeros(model.num_parameters())
    alphas = np.linspace(-0.5, 1.5, 9)
    losses = linear_interpolation(model, a, b, mse_loss, X, Y, alphas)
    coefficients = np.polyfit(alphas, losses, 2)
    np.testing.assert_allclose(np.polyval(coefficients, alphas), losses, rtol=1e-10)


def test_filter_normalised_direction_matches_each_units_weight_norm():
    rng = np.random.default_rng(0)
    model = Sequential(Conv2d(1, 3, 3, rng=rng), Linear(5, 4, rng=rng))
    direction = random_direction(model, np.random.default_rng(1))
    conv_W, conv_b, lin_W, lin_b = np.split(direction, np.cumsum([27, 3, 20]))
    conv_W, lin_W = conv_W.reshape(3, 1, 3, 3), lin_W.reshape(5, 4)
    np.testing.assert_allclose(np.linalg.norm(conv_W.reshape(3, -1), axis=1),   # per filter
                               np.linalg.norm(model.params["0.W"].reshape(3, -1), axis=1))
    np.testing.assert_allclose(np.linalg.norm(lin_W, axis=0),                    # per column
                               np.linalg.norm(model.params["1.W"], axis=0))
    assert not conv_b.any() and not lin_b.any()
    np.testing.assert_array_equal(direction, random_direction(model, np.random.default_rng(1)))
    raw = random_direction(model, np.random.default_rng(1), filter_normalize=False)
    assert raw.shape == direction.shape and np.all(raw != 0)
    with pytest.raises(TypeError, match="random_direction: pass rng"):
        random_direction(model, None)


def test_loss_surface_layout_and_values():
    model, X, Y = _tanh_net()
    d1 = random_direction(model, np.random.default_rng(0))
    d2 = random_direction(model, np.random.default_rng(1))
    alphas, betas = np.array([-1.0, 0.0, 0.5]), np.array([0.0, 2.0])
    Z = loss_surface_2d(model, mse_loss, X, Y, d1, d2, alphas, betas)
    assert Z.shape == (2, 3)
    assert Z[0, 1] == pytest.approx(mse_loss(model.forward(X), Y)[0], rel=1e-12)
    theta = get_flat_params(model)
    set_flat_params(model, theta + 0.5 * d1 + 2.0 * d2)
    assert Z[1, 2] == pytest.approx(mse_loss(model.forward(X), Y)[0], rel=1e-12)


# -- Hessian-vector products and eigenvalues -------------------------------------------------
def test_hvp_equals_the_exact_hessian_of_a_quadratic_loss():
    model, X, Y, hessian = _linear_regression(n_out=2)
    rng = np.random.default_rng(0)
    for scale in (1e-3, 1.0, 1e3):  # h = eps / ||v|| makes the result linear in v
        v = scale * rng.standard_normal(model.num_parameters())
        hv = hessian_vector_product(model, mse_loss, X, Y, v)
        np.testing.assert_allclose(hv, hessian @ v, rtol=1e-6, atol=1e-9 * scale)
    assert not hessian_vector_product(model, mse_loss, X, Y, np.zeros(10)).any()


def test_hvp_matches_second_differences_of_the_loss_on_a_tanh_network():
    model, X, Y = _tanh_net()
    theta, h = get_flat_params(model), 1e-4
    n = theta.size

    def loss_at(flat):
        set_flat_params(model, flat)
        return mse_loss(model.forward(X), Y)[0]

    steps = h * np.eye(n)
    hessian = np.array([[loss_at(theta + steps[i] + steps[j]) - loss_at(theta + steps[i] - steps[j])
                         - loss_at(theta - steps[i] + steps[j]) + loss_at(theta - steps[i] - steps[j])
                         for j in range(n)] for i in range(n)]) / (4 * h * h)
    set_flat_params(model, theta)
    v = np.random.default_rng(0).standard_normal(n)
    assert rel_error(hessian_vector_product(model, mse_loss, X, Y, v), hessian @ v) < 1e-5


def test_top_eigenvalues_of_a_quadratic_loss():
    model, X, Y, hessian = _linear_regression()
    exact = np.linalg.eigvalsh(hessian)  # ascending
    values, vectors = top_hessian_eigenvalues(model, mse_loss, X, Y, k=3, iters=500, tol=1e-12)
    np.testing.assert_allclose(values, exact[::-1][:3], rtol=1e-7)
    np.testing.assert_allclose(hessian @ vectors, vectors * values, atol=1e-4)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(3), atol=1e-8)
    smallest, _ = top_hessian_eigenvalues(model, mse_loss, X, Y, k=2, which="smallest",
                                          iters=2000, tol=1e-12)
    np.testing.assert_allclose(smallest, exact[:2], rtol=1e-6)


def test_extreme_eigenvalues_are_found_when_they_are_plus_and_minus_the_same_number():
    # Plain power iteration cycles on H = [[0, -2], [-2, 0]]; the shifts make it converge.
    x, y = _product_data()
    lambda_min, lambda_max = hessian_extreme_eigenvalues(_Product([0.0, 0.0]), mse_loss, x, y,
                                                         tol=1e-10)
    assert (lambda_min, lambda_max) == (pytest.approx(-2.0, rel=1e-6), pytest.approx(2.0, rel=1e-6))


# -- classification --------------------------------------------------------------------------
def test_origin_of_a_two_weight_product_is_a_saddle_and_w_equal_one_a_minimum():
    x, y = _product_data()
    assert classify_critical_point(_Product([0.0, 0.0]), mse_loss, x, y) == "saddle"
    # along w0 * w1 = 1 the loss is flat: a minimum with one zero eigenvalue
    assert classify_critical_point(_Product([2.0, 0.5]), mse_loss, x, y) == "minimum"
    assert classify_critical_point(_Product([0.3, 0.2]), mse_loss, x, y) == "not critical"


def test_a_two_layer_linear_network_at_zero_is_a_saddle():
    rng = np.random.default_rng(0)
    model = Sequential(Linear(1, 1, rng=rng), Linear(1, 1, rng=rng))
    set_flat_params(model, np.zeros(4))
    x, y = _product_data()
    assert classify_critical_point(model, mse_loss, x, y) == "saddle"


def test_maximum_and_flat_points():
    model, X, Y, _ = _linear_regression()
    # move to the least-squares solution, then climb the negated loss
    A = np.column_stack([X, np.ones(len(X))])
    set_flat_params(model, np.linalg.lstsq(A, Y, rcond=None)[0].ravel())

    def negated_mse(pred, target):
        loss, dpred = mse_loss(pred, target)
        return -loss, -dpred

    assert classify_critical_point(model, mse_loss, X, Y) == "minimum"
    assert classify_critical_point(model, negated_mse, X, Y) == "maximum"
    assert classify_critical_point(model, lambda p, t: (0.0, np.zeros_like(p)), X, Y) == "flat"


# -- the model is left as it was -------------------------------------------------------------
@pytest.mark.parametrize("call", [
    lambda m, X, Y: loss_and_grad(m, mse_loss, X, Y),
    lambda m, X, Y: linear_interpolation(m, np.zeros(26), get_flat_params(m) + 1, mse_loss, X, Y,
                                         [0.0, 1.0]),
    lambda m, X, Y: loss_surface_2d(m, mse_loss, X, Y, np.ones(26), np.ones(26), [1.0], [1.0]),
    lambda m, X, Y: hessian_vector_product(m, mse_loss, X, Y, np.ones(26)),
    lambda m, X, Y: top_hessian_eigenvalues(m, mse_loss, X, Y, k=2, iters=5),
    lambda m, X, Y: classify_critical_point(m, mse_loss, X, Y, grad_tol=1e9, iters=5),
])
def test_parameters_and_mode_are_restored_and_dropout_is_off(call):
    rng = np.random.default_rng(0)
    model = Sequential(Linear(3, 4, rng=rng), Tanh(), Dropout(0.5, rng=rng), Linear(4, 2, rng=rng))
    X, Y = rng.standard_normal((6, 3)), rng.standard_normal((6, 2))
    before = get_flat_params(model)
    first, second = call(model, X, Y), call(model, X, Y)
    np.testing.assert_array_equal(get_flat_params(model), before)
    assert model.training is True and model[2].training is True
    np.testing.assert_array_equal(_numbers(first), _numbers(second))  # eval mode: no masks


def _numbers(result):
    """Every number in a result (a float, an array, a string, or a tuple of those)."""
    if isinstance(result, str):
        return np.array([hash(result)])
    if isinstance(result, tuple):
        return np.concatenate([_numbers(part) for part in result])
    return np.ravel(result)


def test_parameters_are_restored_even_when_the_loss_fails():
    model, X, Y = _tanh_net()
    before = get_flat_params(model)

    def failing_loss(pred, target):
        if not np.array_equal(get_flat_params(model), before):
            raise RuntimeError("boom")
        return mse_loss(pred, target)

    with pytest.raises(RuntimeError, match="boom"):
        linear_interpolation(model, before, before + 1, failing_loss, X, Y, [0.0, 1.0])
    np.testing.assert_array_equal(get_flat_params(model), before)


def test_eigenvalue_arguments_are_checked():
    model, X, Y, _ = _linear_regression()
    with pytest.raises(ValueError, match=r"k must be an integer in 1..5"):
        top_hessian_eigenvalues(model, mse_loss, X, Y, k=6)
    with pytest.raises(ValueError, match="which must be 'largest' or 'smallest'"):
        top_hessian_eigenvalues(model, mse_loss, X, Y, which="middle")


def test_an_inconsistent_hessian_is_an_error_not_an_answer(monkeypatch):
    """A non-smooth loss (ReLU kinks) makes the finite-difference Hessian asymmetric; the
    estimates then cross, and the function says so instead of returning them."""
    from backprop import landscape

    model = Linear(2, 1, rng=np.random.default_rng(0))
    X, y = np.ones((3, 2)), np.zeros((3, 1))
    fake = ((np.array([0.01]), None), (np.array([97.0]), None))  # (largest, smallest) swapped
    monkeypatch.setattr(landscape, "_hessian_eigen", lambda *args: fake)
    with pytest.raises(ValueError, match=r"smallest eigenvalue estimate \(97\) lies above"):
        landscape.hessian_extreme_eigenvalues(model, mse_loss, X, y)
