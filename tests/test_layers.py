"""Layers: every backward pass against finite differences in float64, and every bad input."""
import copy

import numpy as np
import pytest

from backprop.gradcheck import check_layer
from backprop.layers import Layer, LayerReuseError, Linear, ReLU, Sequential, Sigmoid, Tanh

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


# -- the layer tree --------------------------------------------------------------------------
class Twice(Layer):
    """A custom container whose forward runs its one child twice (weight sharing)."""

    def __init__(self, child):
        super().__init__()
        self.child = self.add_child("inner", child)

    def forward(self, x):
        return self.child.forward(self.child.forward(x))


def _mlp(rng):
    return Sequential(Linear(2, 3, rng=rng), ReLU(), Linear(3, 1, rng=rng))


def test_sequential_registers_its_layers_as_named_children():
    model = _mlp(np.random.default_rng(0))
    assert [name for name, _ in model.named_children()] == ["0", "1", "2"]
    assert list(model.children()) == list(model.layers) == list(model)
    assert [path for path, _ in model.named_layers()] == ["", "0", "1", "2"]


def test_nested_containers_name_parameters_by_path():
    rng = np.random.default_rng(0)
    model = Sequential(_mlp(rng), Tanh(), Linear(1, 2, rng=rng))
    assert list(model.params) == ["0.0.W", "0.0.b", "0.2.W", "0.2.b", "2.W", "2.b"]
    assert model.params["0.2.W"] is model[0][2].params["W"]
    assert model.num_parameters() == 13 + 4
    report = check_layer(model, rng.standard_normal((4, 2)))
    assert report.max_rel_error < TOL, str(report)


def test_writing_a_parameter_through_the_view_reaches_the_child():
    model = _mlp(np.random.default_rng(0))
    new_W = np.ones((2, 3))
    model.params["0.W"] = new_W
    assert model[0].params["W"] is new_W
    model.grads["2.b"] = np.full(1, 7.0)
    assert model[2].grads["b"][0] == 7.0
    with pytest.raises(KeyError, match=r"'9.W' is not a parameter"):
        model.params["9.W"] = new_W
    with pytest.raises(TypeError, match="cannot be deleted"):
        del model.params["0.W"]


def test_assigning_a_containers_params_dict_is_an_error_not_a_silent_no_op():
    model = _mlp(np.random.default_rng(0))
    before = model.params["0.W"].copy()
    with pytest.raises(ValueError, match=r"'0.W' belongs to a child.*load_state_dict"):
        model.params = {"0.W": np.zeros((2, 3))}
    with pytest.raises(ValueError, match="belongs to a child"):
        model.grads = {"2.W": np.zeros((3, 1))}
    np.testing.assert_array_equal(model.params["0.W"], before)


def test_train_eval_and_zero_grad_reach_every_layer_of_a_nested_tree():
    rng = np.random.default_rng(0)
    model = Sequential(_mlp(rng), Linear(1, 1, rng=rng))
    model.eval()
    assert all(not layer.training for _, layer in model.named_layers())
    model.train()
    assert all(layer.training for _, layer in model.named_layers())
    model.zero_grad()
    assert sorted(model.grads) == sorted(model.params)
    assert not any(g.any() for g in model.grads.values())


def test_state_dict_of_a_custom_container_round_trips():
    rng = np.random.default_rng(0)
    model = Twice(Linear(2, 2, rng=rng))
    assert list(model.state_dict()) == ["inner.W", "inner.b"]
    saved = model.state_dict()
    model.params["inner.W"][...] = 0
    model.load_state_dict(saved)
    np.testing.assert_array_equal(model.child.params["W"], saved["inner.W"])


def test_a_layer_used_twice_in_one_sequential_is_refused_at_construction():
    rng = np.random.default_rng(0)
    lin = Linear(3, 3, rng=rng)
    with pytest.raises(LayerReuseError, match=r"Linear\(3, 3\) would appear twice.*'0' and at '2'"
                                              r".*copy.deepcopy"):
        Sequential(lin, ReLU(), lin)
    with pytest.raises(ValueError, match=r"at '0.0' and at '1'"):  # LayerReuseError is one
        Sequential(Sequential(lin), lin)
    copies = Sequential(lin, ReLU(), copy.deepcopy(lin))  # the fix the message suggests
    assert copies(np.ones((2, 3))).shape == (2, 3)


def test_a_layer_running_twice_in_one_training_forward_is_refused():
    model = Twice(Linear(2, 2, rng=np.random.default_rng(0)))
    with pytest.raises(LayerReuseError, match=r"Linear\(2, 2\) ran twice in one forward pass of "
                                              r"Twice\(\)"):
        model(np.ones((1, 2)))
    assert model.eval()(np.ones((1, 2))).shape == (1, 2)  # no backward follows: harmless


def test_forward_called_repeatedly_then_backward_uses_the_last_forward():
    """Evaluation passes and finite differences call forward many times: that is allowed,
    and backward then belongs to the last forward."""
    rng = np.random.default_rng(0)
    model, x = _mlp(rng), rng.standard_normal((4, 2))
    model(rng.standard_normal((7, 2)))
    out = model(x)
    dx = model.backward(np.ones_like(out))
    assert dx.shape == x.shape
    np.testing.assert_allclose(model.grads["2.b"], [4.0])


def test_an_existing_model_can_be_wrapped_and_shared_by_another_model():
    """Reuse is refused only within one tree: two models may share a layer."""
    rng = np.random.default_rng(0)
    base = _mlp(rng)
    prefix = Sequential(*base.layers[:2])
    assert prefix(np.ones((3, 2))).shape == (3, 3)


# -- dtype: no silent upcasting ----------------------------------------------------------------
def test_linear_refuses_input_of_another_float_dtype_naming_the_fix():
    rng = np.random.default_rng(0)
    with pytest.raises(TypeError, match=r"Linear\(3, 2\): input has dtype float32 but the layer's "
                                        r"parameters are float64.*astype\(np.float64\)"):
        Linear(3, 2, rng=rng)(np.ones((4, 3), dtype=np.float32))
    single = Linear(3, 2, rng=rng, dtype=np.float32)
    with pytest.raises(TypeError, match="input has dtype float64 .* dtype=np.float64"):
        single(np.ones((4, 3)))
    assert single(np.ones((4, 3), dtype=np.int64)).dtype == np.float32  # integers are converted
    out = single(np.ones((4, 3), dtype=np.float32))
    with pytest.raises(TypeError, match="dout has dtype float64"):
        single.backward(np.ones(out.shape))


def test_activations_follow_their_input_dtype_and_refuse_a_mismatched_dout():
    relu = ReLU()
    out = relu(np.ones(3, dtype=np.float32))
    assert out.dtype == np.float32
    with pytest.raises(TypeError, match=r"ReLU\(\).backward: dout has dtype float64"):
        relu.backward(np.ones(3))


def _trained_grads(model, x, dout, **kwargs):
    model.forward(x)
    returned = model.backward(dout, **kwargs)
    return returned, {name: grad.copy() for name, grad in model.grads.items()}


def test_input_grad_false_skips_only_dx_and_direct_calls_still_return_it():
    rng = np.random.default_rng(3)
    model = Sequential(Linear(4, 6, rng=rng), ReLU(), Linear(6, 3, rng=rng))
    x, dout = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    dx, grads = _trained_grads(model, x, dout)
    skipped, same_grads = _trained_grads(model, x, dout, input_grad=False)
    assert dx.shape == x.shape and skipped is None
    assert grads.keys() == same_grads.keys()
    for name in grads:
        np.testing.assert_array_equal(same_grads[name], grads[name], err_msg=name)
    first = model[0]
    first.forward(x)
    np.testing.assert_array_equal(first.backward(model[1].backward(model[2].backward(dout))), dx)
    assert first.backward(model[1].backward(model[2].backward(dout)), input_grad=False) is None


def test_a_layer_whose_backward_takes_only_dout_is_never_asked_to_skip_dx():
    calls = []

    class Logged(Linear):  # overrides backward(dout): inherits no input_grad from Linear
        def backward(self, dout):
            calls.append("dx")
            return super().backward(dout)

    rng = np.random.default_rng(4)
    assert Linear.skips_input_grad and Sequential.skips_input_grad
    assert not Logged.skips_input_grad and not ReLU.skips_input_grad
    inner = Sequential(Logged(3, 2, rng=rng), Tanh())
    model = Sequential(inner, Linear(2, 2, rng=rng))
    model.forward(rng.standard_normal((4, 3)))
    assert model.backward(np.ones((4, 2)), input_grad=False) is None
    assert calls == ["dx"] and model.grads["0.0.W"].shape == (3, 2)


def test_parameter_walk_sees_children_and_parameters_added_after_a_step():
    """named_parameters (and so every optimizer step) keeps its walk of the tree between
    calls; a child added anywhere below, or new parameters of a layer, must still be seen."""
    from backprop.optim import SGD

    rng = np.random.default_rng(0)
    inner = Sequential(Linear(3, 3, rng=rng))
    model = Sequential(inner, ReLU())
    assert [name for name, _, _ in model.named_parameters()] == ["0.0.W", "0.0.b"]

    inner.add_child("1", Linear(3, 2, rng=rng))  # a grandchild, after the walk was kept
    assert [name for name, _, _ in model.named_parameters()] == [
        "0.0.W", "0.0.b", "0.1.W", "0.1.b"]

    relu = model[1]
    relu.params = {"scale": np.ones(2)}  # a leaf's parameters replaced by new ones
    relu.grads = {"scale": np.full(2, 0.5)}
    x = rng.standard_normal((4, 3))
    model.forward(x)
    model.backward(np.ones((4, 2)))
    SGD(model, lr=0.1).step()
    assert np.allclose(relu.params["scale"], 0.95)
    assert "1.scale" in dict((name, p) for name, p, _ in model.named_parameters())


def test_the_layers_matrix_products_equal_matmul_bit_for_bit():
    """backprop.base._dot, which Linear and the norms multiply with, computes exactly a @ b:
    ndarray.dot for contiguous operands (C or Fortran order), @ for strided ones."""
    from backprop.base import _dot
    rng = np.random.default_rng(0)
    for trial in range(200):
        dtype = np.float32 if trial % 3 == 0 else np.float64
        m, k, n = (int(size) for size in rng.integers(1, 90, 3))
        a, b = (rng.standard_normal(shape).astype(dtype) for shape in [(m, k), (k, n)])
        u, v = rng.standard_normal(m).astype(dtype), rng.standard_normal(k).astype(dtype)
        for p, q in [(a, b), (np.asfortranarray(a), b), (a, np.asfortranarray(b)), (a.T, u),
                     (a, v), (u, a), (np.asfortranarray(a), v), (a[:, ::2], b[::2]),
                     (a[::2], v)]:
            np.testing.assert_array_equal(_dot(p, q), p @ q)
