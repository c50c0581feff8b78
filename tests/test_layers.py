"""Layers: every backward pass against finite differences in float64, and every bad input."""
import numpy as np
import pytest

from backprop.gradcheck import check_layer
from backprop.layers import Linear, ReLU, Sequential, Sigmoid, Tanh

# (batch, in, out): batch size 1, odd sizes, a square weight (where a missing transpose hides).
SHAPES = [(1, 3, 2), (5, 7, 3), (4, 4, 4), (2, 1, 9)]
TOL = 1e-7


def _nonzero(report):
    """A check where every gradient is zero proves nothing."""
    return all(abs(e.analytic) > 0 or abs(e.numeric) > 0 for e in report.entries)


@pytest.mark.parametrize("n,d,m", SHAPES)
def test_linear_gradients_match_finite_differences(n, d, m):
    rng = np.random.default_rng(n * 100 + d)
    report = check_layer(Linear(d, m, rng=rng), rng.standard_normal((n, d)))
    assert report.max_rel_error < TOL, str(report)
    assert {e.name for e in report.entries} == {"dx", "dW", "db"}
    assert _nonzero(report)


@pytest.mark.parametrize("activation", [ReLU, Sigmoid, Tanh])
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (2, 3, 4)])
def test_activation_gradients_match_finite_differences(activation, shape):
    rng = np.random.default_rng(len(shape))
    x = rng.standard_normal(shape)
    x[np.abs(x) < 1e-3] = 0.5  # keep ReLU's kink away from the finite-difference step
    report = check_layer(activation(), x)
    assert report.max_rel_error < TOL, str(report)


@pytest.mark.parametrize("n,d,m", SHAPES)
def test_sequential_gradients_match_finite_differences(n, d, m):
    rng = np.random.default_rng(7 + n)
    model = Sequential(Linear(d, m, rng=rng), Tanh(), Linear(m, 5, rng=rng), Sigmoid(),
                       Linear(5, 3, rng=rng))
    report = check_layer(model, rng.standard_normal((n, d)))
    assert report.max_rel_error < TOL, str(report)
    expected = {"dx"} | {f"d{i}.{k}" for i in (0, 2, 4) for k in "Wb"}
    assert {e.name for e in report.entries} == expected
    assert _nonzero(report)


def test_check_layer_catches_a_wrong_backward():
    class TransposedLinear(Linear):
        def backward(self, dout):
            dx = super().backward(dout)
            self.grads["W"] = self.grads["W"].T  # the classic mistake, square W hides the shape
            return dx

    rng = np.random.default_rng(0)
    report = check_layer(TransposedLinear(4, 4, rng=rng), rng.standard_normal((3, 4)))
    assert not report.ok
    assert "dW" in str(report).splitlines()[1]


def test_linear_shapes_dtype_and_parameter_layout():
    rng = np.random.default_rng(0)
    layer = Linear(3, 2, rng=rng)
    assert layer.params["W"].shape == (3, 2) and layer.params["b"].shape == (2,)
    x = rng.standard_normal((4, 3))
    out = layer(x)
    np.testing.assert_allclose(out, x @ layer.params["W"] + layer.params["b"])
    layer.backward(np.ones((4, 2)))
    assert set(layer.grads) == set(layer.params)
    assert out.dtype == np.float64


def test_float32_layers_stay_float32():
    rng = np.random.default_rng(0)
    model = Sequential(Linear(3, 4, rng=rng, dtype=np.float32), ReLU(), Linear(4, 2, rng=rng,
                                                                             dtype=np.float32))
    out = model(rng.standard_normal((5, 3)).astype(np.float32))
    assert out.dtype == np.float32
    dx = model.backward(np.ones_like(out))
    assert dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in model.grads.values())


def test_same_generator_seed_gives_same_weights():
    a = Linear(5, 3, rng=np.random.default_rng(42))
    b = Linear(5, 3, rng=np.random.default_rng(42))
    np.testing.assert_array_equal(a.params["W"], b.params["W"])


def test_linear_rejects_wrong_input_shape_naming_layer_and_shapes():
    layer = Linear(3, 2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"Linear\(3, 2\): expected input of shape \(N, 3\), got \(4, 5\)"):
        layer(np.zeros((4, 5)))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 3\), got \(3,\)"):
        layer(np.zeros(3))


def test_backward_rejects_wrong_dout_shape():
    layer = Linear(3, 2, rng=np.random.default_rng(0))
    layer(np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"expected dout of shape \(4, 2\).*got \(2, 4\)"):
        layer.backward(np.zeros((2, 4)))
    relu = ReLU()
    relu(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"ReLU\(\)\.backward: expected dout of shape \(2, 3\)"):
        relu.backward(np.zeros((3, 2)))


@pytest.mark.parametrize("layer", [Linear(2, 2, rng=np.random.default_rng(0)), ReLU(), Tanh()])
def test_backward_before_forward_is_a_clear_error(layer):
    with pytest.raises(RuntimeError, match="backward\\(\\) called before forward\\(\\)"):
        layer.backward(np.zeros((1, 2)))


def test_non_numeric_input_is_a_type_error():
    with pytest.raises(TypeError, match=r"Linear\(2, 2\): expected a real-valued array, got dtype <U1"):
        Linear(2, 2, rng=np.random.default_rng(0))(np.array([["a", "b"]]))


def test_integer_input_is_converted_to_float():
    out = Sigmoid()(np.array([0, 1]))
    np.testing.assert_allclose(out, [0.5, 1 / (1 + np.exp(-1))])


def test_sigmoid_is_stable_for_huge_inputs():
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = Sigmoid()(np.array([-1000.0, 0.0, 1000.0]))
    np.testing.assert_allclose(out, [0.0, 0.5, 1.0])


def test_invalid_linear_sizes_are_rejected():
    with pytest.raises(ValueError, match="in_features and out_features must be >= 1"):
        Linear(0, 3)


def test_sequential_rejects_non_layers():
    with pytest.raises(TypeError, match="item 1 is"):
        Sequential(ReLU(), lambda x: x)


def test_sequential_parameter_views_share_memory_with_children():
    rng = np.random.default_rng(0)
    model = Sequential(Linear(2, 3, rng=rng), ReLU(), Linear(3, 1, rng=rng))
    assert list(model.params) == ["0.W", "0.b", "2.W", "2.b"]
    model.params["0.W"][0, 0] = 123.0
    assert model[0].params["W"][0, 0] == 123.0
    assert model.num_parameters() == 2 * 3 + 3 + 3 + 1


def test_state_dict_round_trip_and_mode_switches():
    rng = np.random.default_rng(0)
    model = Sequential(Linear(2, 3, rng=rng), ReLU())
    saved = model.state_dict()
    model.params["0.W"][...] = 0
    model.load_state_dict(saved)
    np.testing.assert_array_equal(model.params["0.W"], saved["0.W"])
    assert model.eval().training is False and model[1].training is False
    assert model.train().training is True
    with pytest.raises(ValueError, match="parameter '0.W' has shape"):
        model.load_state_dict({"0.W": np.zeros(2), "0.b": np.zeros(3)})


def test_zero_grad_fills_zeros_shaped_like_params():
    layer = Linear(3, 2, rng=np.random.default_rng(0))
    layer.zero_grad()
    assert layer.grads["W"].shape == (3, 2) and not layer.grads["W"].any()


def test_linear_requires_an_explicit_generator():
    with pytest.raises(TypeError, match=r"Linear\(2, 3\): pass rng=np.random.default_rng\(seed\)"):
        Linear(2, 3)


def test_load_state_dict_rejects_unknown_names():
    model = Sequential(Linear(2, 3, rng=np.random.default_rng(0)))
    state = model.state_dict()
    state["1.W"] = np.zeros((3, 3))
    with pytest.raises(KeyError, match=r"entries \['1.W'\] that are not parameters"):
        model.load_state_dict(state)


def test_linear_init_schemes_by_name_or_function_and_bad_names():
    from backprop import init

    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    layer = Linear(50, 40, rng=rng_a, init="he_normal")
    np.testing.assert_array_equal(layer.params["W"], init.he_normal((50, 40), rng_b))
    assert not Linear(3, 2, rng=rng_a, init="zeros").params["W"].any()
    custom = Linear(2, 2, rng=rng_a, init=lambda shape, rng: np.full(shape, 0.5))
    np.testing.assert_array_equal(custom.params["W"], 0.5)
    with pytest.raises(ValueError, match="unknown init 'bogus'"):
        Linear(2, 2, rng=rng_a, init="bogus")
    with pytest.raises(ValueError, match="give init or weight_scale, not both"):
        Linear(2, 2, rng=rng_a, init="zeros", weight_scale=1.0)
