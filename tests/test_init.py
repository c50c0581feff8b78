"""Weight initialisation: fans for both layouts, the statistics each scheme promises, and errors."""
import numpy as np
import pytest

from backprop import init
from backprop.conv import Conv2d
from backprop.layers import Linear

RANDOM_SCHEMES = ["small_random", "lecun_normal", "xavier_uniform", "xavier_normal",
                  "he_normal", "he_uniform"]


def test_fans_of_a_linear_weight_read_our_in_out_layout():
    assert init.fan_in_and_fan_out((784, 128)) == (784, 128)  # W is (in_features, out_features)


def test_fans_of_conv_weights_follow_pytorch():
    assert init.fan_in_and_fan_out((16, 3, 5, 5)) == (3 * 25, 16 * 25)  # (out_c, in_c, kh, kw)
    assert init.fan_in_and_fan_out((8, 4, 3)) == (4 * 3, 8 * 3)  # 1-D conv (out_c, in_c, k)


@pytest.mark.parametrize("bad", [(5,), 5, ()])
def test_fans_need_at_least_two_dimensions(bad):
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.fan_in_and_fan_out(bad)


@pytest.mark.parametrize("name", RANDOM_SCHEMES + ["zeros"])
@pytest.mark.parametrize("shape", [(3, 4), (6, 2, 3, 3)])
def test_every_scheme_returns_the_shape_and_dtype_asked_for(name, shape):
    scheme = init.SCHEMES[name]
    W = scheme(shape, np.random.default_rng(0))
    assert W.shape == shape and W.dtype == np.float64
    assert scheme(shape, np.random.default_rng(0), dtype=np.float32).dtype == np.float32


def test_zeros_takes_a_bias_shape():
    b = init.zeros(5)
    assert b.shape == (5,) and not b.any()


@pytest.mark.parametrize("name", RANDOM_SCHEMES)
def test_a_seeded_generator_gives_the_same_weights(name):
    scheme = init.SCHEMES[name]
    first = scheme((20, 30), np.random.default_rng(42))
    np.testing.assert_array_equal(first, scheme((20, 30), np.random.default_rng(42)))
    assert not np.array_equal(first, scheme((20, 30), np.random.default_rng(43)))


# Big matrices, so that the sample variance is within ~2% of the true one (its relative standard
# error is sqrt(2 / n) ~ 0.3% for n = 200,000 normal entries).
@pytest.mark.parametrize("name,expected_variance", [
    ("he_normal", 2 / 400),
    ("he_uniform", 2 / 400),
    ("lecun_normal", 1 / 400),
    ("xavier_normal", 2 / (400 + 500)),
    ("xavier_uniform", 2 / (400 + 500)),
])
def test_variance_matches_the_scheme(name, expected_variance):
    W = init.SCHEMES[name]((400, 500), np.random.default_rng(1))
    assert abs(W.var() / expected_variance - 1) < 0.02
    assert abs(W.mean()) < 0.02 * np.sqrt(expected_variance)  # ~9 standard errors


def test_he_normal_uses_fan_in_of_conv_kernels():
    W = init.he_normal((64, 32, 3, 3), np.random.default_rng(2))  # fan_in 288, fan_out 576
    assert abs(W.var() / (2 / 288) - 1) < 0.03


def test_uniform_schemes_stay_inside_their_bound():
    rng = np.random.default_rng(3)
    bound = np.sqrt(6 / (300 + 100))
    W = init.xavier_uniform((300, 100), rng)
    assert np.abs(W).max() <= bound and np.abs(W).max() > 0.99 * bound
    W = init.xavier_uniform((300, 100), rng, gain=2.0)
    assert np.abs(W).max() <= 2 * bound and np.abs(W).max() > 1.98 * bound
    W = init.he_uniform((300, 100), rng)
    assert np.abs(W).max() <= np.sqrt(6 / 300) and np.abs(W).max() > 0.99 * np.sqrt(6 / 300)


def test_small_random_has_the_given_scale():
    W = init.small_random((500, 400), np.random.default_rng(4), scale=0.05)
    assert abs(W.std() / 0.05 - 1) < 0.01


def test_lecun_normal_reproduces_the_linear_default():
    layer = Linear(7, 3, rng=np.random.default_rng(5))
    expected = init.lecun_normal((7, 3), np.random.default_rng(5))
    np.testing.assert_array_equal(layer.params["W"], expected)


def test_init_linear_overwrites_the_arrays_in_place():
    layer = Linear(50, 40, rng=np.random.default_rng(0), dtype=np.float32)
    W, b = layer.params["W"], layer.params["b"]
    b += 1.0
    assert init.init_linear(layer, "he_normal", np.random.default_rng(6)) is layer
    assert layer.params["W"] is W and layer.params["b"] is b  # an optimizer's references hold
    assert W.dtype == np.float32 and not b.any()
    np.testing.assert_allclose(W, init.he_normal((50, 40), np.random.default_rng(6)), rtol=1e-6)


def test_init_linear_passes_options_and_accepts_a_function():
    layer = Linear(30, 20, rng=np.random.default_rng(0))
    init.init_linear(layer, "small_random", np.random.default_rng(7), scale=1e-3)
    assert layer.params["W"].std() < 2e-3
    init.init_linear(layer, lambda shape, rng: np.full(shape, 0.5), None)
    assert np.all(layer.params["W"] == 0.5)


def test_init_linear_rejects_unknown_schemes_and_non_linear_layers():
    layer = Linear(3, 2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown scheme 'kaiming'.*he_normal"):
        init.init_linear(layer, "kaiming", np.random.default_rng(0))
    with pytest.raises(TypeError, match=r"expected a Linear layer \(params W of shape"):
        init.init_linear(np.zeros((3, 2)), "he_normal", np.random.default_rng(0))
    conv = Conv2d(1, 2, 3, rng=np.random.default_rng(0))  # W is 4-D: not a linear layer
    with pytest.raises(TypeError, match="expected a Linear layer"):
        init.init_linear(conv, "he_normal", np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"returned shape \(2, 3\), expected \(3, 2\)"):
        init.init_linear(layer, lambda shape, rng: np.zeros(shape[::-1]), None)


@pytest.mark.parametrize("shape,error,message", [
    ((3, 0), ValueError, "must be >= 1"),
    ((3, -2), ValueError, "must be >= 1"),
    ((3.0, 2), TypeError, "ints only"),
    ("3x2", TypeError, "ints only"),
    (None, TypeError, "an int or a tuple"),
    ((7,), ValueError, "use zeros for a bias"),
])
def test_bad_shapes_raise_naming_the_scheme(shape, error, message):
    with pytest.raises(error, match=f"xavier_uniform: .*{message}"):
        init.xavier_uniform(shape, np.random.default_rng(0))


def test_bad_rng_and_gain_raise():
    with pytest.raises(TypeError, match="he_normal: rng must be a numpy.random.Generator"):
        init.he_normal((3, 2), 0)
    with pytest.raises(TypeError, match="rng must be a numpy.random.Generator"):
        init.small_random((3, 2), np.random.RandomState(0))
    with pytest.raises(ValueError, match="gain must be a positive finite number"):
        init.xavier_normal((3, 2), np.random.default_rng(0), gain=-1.0)
    with pytest.raises(ValueError, match="scale must be a positive finite number"):
        init.small_random((3, 2), np.random.default_rng(0), scale=0)
