"""backprop.optim: the Optimizer loop and SGD's update rules, checked against hand computation."""
import numpy as np
import pytest

from backprop.layers import Linear, ReLU, Sequential
from backprop.optim import SGD, Optimizer


def _layer_with_grads(seed=0):
    """A Linear(3, 2) whose gradients are set to known arrays. Returns (layer, W0, b0, gW, gb)."""
    rng = np.random.default_rng(seed)
    layer = Linear(3, 2, rng=rng)
    layer.params["b"][:] = rng.standard_normal(2)
    gW, gb = rng.standard_normal((3, 2)), rng.standard_normal(2)
    layer.grads = {"W": gW, "b": gb}
    return layer, layer.params["W"].copy(), layer.params["b"].copy(), gW, gb


def test_plain_sgd_step_is_param_minus_lr_times_grad():
    layer, W0, b0, gW, gb = _layer_with_grads()
    SGD(layer, lr=0.1).step()
    np.testing.assert_allclose(layer.params["W"], W0 - 0.1 * gW, rtol=1e-15)
    np.testing.assert_allclose(layer.params["b"], b0 - 0.1 * gb, rtol=1e-15)


def test_step_updates_the_same_arrays_in_place():
    model = Sequential(Linear(3, 4, rng=np.random.default_rng(0)), ReLU(), Linear(4, 2, rng=np.random.default_rng(1)))
    W_object = model[0].params["W"]
    W_before = W_object.copy()
    out = model.forward(np.ones((5, 3)))
    model.backward(np.ones_like(out))
    SGD(model, lr=0.5).step()
    assert model[0].params["W"] is W_object
    assert model.params["0.W"] is W_object
    assert not np.allclose(W_object, W_before)


def test_momentum_two_steps_match_hand_computation():
    layer, W0, _, g1, _ = _layer_with_grads()
    g2 = np.arange(6.0).reshape(3, 2) - 2.5
    lr, mu = 0.1, 0.9
    optimizer = SGD(layer, lr=lr, momentum=mu)
    optimizer.step()
    W1 = W0 - lr * g1  # the velocity starts at zero, so v1 = g1
    np.testing.assert_allclose(layer.params["W"], W1, rtol=1e-14)
    layer.grads["W"] = g2
    optimizer.step()
    v2 = mu * g1 + g2
    np.testing.assert_allclose(layer.params["W"], W1 - lr * v2, rtol=1e-14)
    np.testing.assert_allclose(optimizer.state["W"]["velocity"], v2, rtol=1e-14)


def test_nesterov_momentum_matches_hand_computation():
    layer, W0, _, g1, _ = _layer_with_grads()
    g2 = np.full((3, 2), 0.5)
    lr, mu = 0.05, 0.8
    optimizer = SGD(layer, lr=lr, momentum=mu, nesterov=True)
    optimizer.step()
    W1 = W0 - lr * (g1 + mu * g1)
    np.testing.assert_allclose(layer.params["W"], W1, rtol=1e-14)
    layer.grads["W"] = g2
    optimizer.step()
    v2 = mu * g1 + g2
    np.testing.assert_allclose(layer.params["W"], W1 - lr * (g2 + mu * v2), rtol=1e-14)


def test_weight_decay_adds_wd_times_param_to_the_gradient():
    layer, W0, b0, gW, gb = _layer_with_grads()
    SGD(layer, lr=0.1, weight_decay=0.01).step()
    np.testing.assert_allclose(layer.params["W"], W0 - 0.1 * (gW + 0.01 * W0), rtol=1e-15)
    np.testing.assert_allclose(layer.params["b"], b0 - 0.1 * (gb + 0.01 * b0), rtol=1e-15)


def test_weight_decay_alone_shrinks_params_geometrically():
    layer, W0, _, _, _ = _layer_with_grads()
    layer.zero_grad()
    optimizer = SGD(layer, lr=0.5, weight_decay=0.1)
    for _ in range(3):
        optimizer.step()
    np.testing.assert_allclose(layer.params["W"], W0 * (1 - 0.5 * 0.1) ** 3, rtol=1e-14)


def test_step_does_not_modify_the_gradients():
    layer, _, _, gW, _ = _layer_with_grads()
    gW_before = gW.copy()
    SGD(layer, lr=0.1, momentum=0.9, weight_decay=0.1).step()
    np.testing.assert_array_equal(layer.grads["W"], gW_before)


def test_changing_lr_changes_the_next_step():
    layer, W0, _, gW, _ = _layer_with_grads()
    optimizer = SGD(layer, lr=0.1)
    optimizer.lr = 0.01
    optimizer.step()
    np.testing.assert_allclose(layer.params["W"], W0 - 0.01 * gW, rtol=1e-15)


def test_float32_parameters_stay_float32():
    layer = Linear(2, 2, rng=np.random.default_rng(0), dtype=np.float32)
    layer.zero_grad()
    layer.grads["W"] += 1.0
    SGD(layer, lr=0.1, momentum=0.9).step()
    assert layer.params["W"].dtype == np.float32


def test_step_before_backward_names_the_parameter():
    model = Sequential(Linear(2, 2, rng=np.random.default_rng(0)))
    with pytest.raises(RuntimeError, match=r"'0\.W' has no gradient.*model\.backward"):
        SGD(model).step()


def test_step_rejects_a_gradient_of_the_wrong_shape():
    layer, *_ = _layer_with_grads()
    layer.grads["W"] = np.zeros((2, 3))
    message = r"'W' has shape \(2, 3\) but the parameter has shape \(3, 2\)"
    with pytest.raises(ValueError, match=message):
        SGD(layer).step()


def test_zero_grad_resets_the_models_gradients():
    layer, *_ = _layer_with_grads()
    SGD(layer).zero_grad()
    assert all(np.all(g == 0) for g in layer.grads.values())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lr": 0}, r"lr must lie in \(0"),
        ({"lr": -1e-3}, r"lr must lie in \(0"),
        ({"lr": float("nan")}, r"lr must lie in \(0"),
        ({"momentum": 1.0}, r"momentum must lie in \[0.0, 1.0\)"),
        ({"momentum": -0.1}, r"momentum must lie in \[0.0, 1.0\)"),
        ({"weight_decay": -1}, r"weight_decay must lie in \[0.0"),
        ({"nesterov": True}, "nesterov=True needs momentum > 0"),
    ],
)
def test_sgd_rejects_bad_hyperparameters(kwargs, message):
    layer, *_ = _layer_with_grads()
    with pytest.raises(ValueError, match=message):
        SGD(layer, **kwargs)


def test_setting_a_negative_lr_later_is_rejected_too():
    layer, *_ = _layer_with_grads()
    optimizer = SGD(layer)
    with pytest.raises(ValueError, match="lr must lie in"):
        optimizer.lr = -0.1


def test_model_without_parameters_interface_is_a_type_error():
    with pytest.raises(TypeError, match="named_parameters"):
        SGD([np.zeros(3)])


def test_a_new_optimizer_only_needs_update():
    class SignSGD(Optimizer):
        def update(self, name, param, grad):
            param -= self.lr * np.sign(grad)

    layer, W0, _, gW, _ = _layer_with_grads()
    SignSGD(layer, lr=0.25).step()
    np.testing.assert_allclose(layer.params["W"], W0 - 0.25 * np.sign(gW))


def test_base_optimizer_update_is_abstract():
    layer, *_ = _layer_with_grads()
    with pytest.raises(NotImplementedError, match="update"):
        Optimizer(layer, lr=0.1).step()


@pytest.mark.parametrize(
    "momentum, nesterov, weight_decay", [(0.0, False, 0.0), (0.9, False, 1e-2), (0.9, True, 1e-2)]
)
def test_sgd_matches_torch_over_several_steps(momentum, nesterov, weight_decay):
    """The documented semantics are PyTorch's; torch is optional (the `bench` extra)."""
    torch = pytest.importorskip("torch")
    layer, W0, _, _, _ = _layer_with_grads()
    grads = np.random.default_rng(1).standard_normal((4, 3, 2))
    ours = SGD(layer, lr=0.1, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay)
    theirs_param = torch.tensor(W0, requires_grad=True)
    theirs = torch.optim.SGD([theirs_param], lr=0.1, momentum=momentum, nesterov=nesterov,
                             weight_decay=weight_decay)
    for g in grads:
        layer.grads = {"W": g, "b": np.zeros(2)}
        ours.step()
        theirs_param.grad = torch.tensor(g)
        theirs.step()
    np.testing.assert_allclose(layer.params["W"], theirs_param.detach().numpy(), rtol=1e-12)
