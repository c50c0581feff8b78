"""backprop.optim: the Optimizer loop and the update rules of SGD, RMSprop, Adam and AdamW,
checked against hand computation and (when it is installed) against torch.optim."""
import math

import numpy as np
import pytest

from backprop.layers import Linear, ReLU, Sequential
from backprop.optim import SGD, Adam, AdamW, Optimizer, RMSprop


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


def test_lr_may_be_lowered_to_zero_later_where_a_schedule_ends():
    layer, W0, *_ = _layer_with_grads()
    optimizer = SGD(layer, lr=0.1)
    optimizer.lr = 0
    optimizer.step()
    np.testing.assert_array_equal(layer.params["W"], W0)


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


# -- RMSprop, Adam, AdamW ----------------------------------------------------------------------
def _grad_sequence(steps=3, seed=1):
    """`steps` gradients for W (3, 2), with different signs and sizes per entry."""
    return np.random.default_rng(seed).standard_normal((steps, 3, 2)) * [[1.0, 0.1]]


def _run(optimizer, layer, grads):
    """Apply one optimizer step per gradient in `grads` (for W; b gets zero gradients)."""
    for g in grads:
        layer.grads = {"W": g, "b": np.zeros(2)}
        optimizer.step()
    return layer.params["W"]


def test_rmsprop_three_steps_match_hand_computation():
    layer, W, *_ = _layer_with_grads()
    grads = _grad_sequence()
    lr, alpha, eps = 0.01, 0.9, 1e-8
    _run(RMSprop(layer, lr=lr, alpha=alpha, eps=eps), layer, grads)
    square_avg = np.zeros_like(W)
    for g in grads:
        square_avg = alpha * square_avg + (1 - alpha) * g**2
        W = W - lr * g / (np.sqrt(square_avg) + eps)
    np.testing.assert_allclose(layer.params["W"], W, rtol=1e-14)


def test_rmsprop_first_step_is_lr_over_sqrt_one_minus_alpha_times_the_sign():
    layer, W0, _, gW, _ = _layer_with_grads()
    RMSprop(layer, lr=0.01, alpha=0.99, eps=1e-12).step()
    np.testing.assert_allclose(layer.params["W"], W0 - 0.01 / math.sqrt(0.01) * np.sign(gW),
                               rtol=1e-9)


def test_adam_three_steps_match_hand_computation():
    layer, W, *_ = _layer_with_grads()
    grads = _grad_sequence()
    lr, beta1, beta2, eps = 0.1, 0.8, 0.9, 1e-3
    optimizer = Adam(layer, lr=lr, betas=(beta1, beta2), eps=eps)
    _run(optimizer, layer, grads)
    m, v = np.zeros_like(W), np.zeros_like(W)
    for t, g in enumerate(grads, start=1):
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g**2
        m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
        W = W - lr * m_hat / (np.sqrt(v_hat) + eps)
    np.testing.assert_allclose(layer.params["W"], W, rtol=1e-13)
    assert optimizer.state["W"]["t"] == 3
    np.testing.assert_allclose(optimizer.state["W"]["m"], m, rtol=1e-14)
    np.testing.assert_allclose(optimizer.state["W"]["v"], v, rtol=1e-14)


def test_adam_first_step_moves_every_entry_by_lr_whatever_the_gradient_scale():
    """With bias correction m_hat = g and v_hat = g**2 at t = 1, so the step is lr * sign(g)."""
    layer, W0, _, gW, _ = _layer_with_grads()
    layer.grads["W"] = gW * np.array([[1e-4, 1e3]])
    Adam(layer, lr=0.01, eps=1e-12).step()
    np.testing.assert_allclose(layer.params["W"], W0 - 0.01 * np.sign(gW), rtol=1e-7)


def test_adam_counts_steps_per_parameter():
    layer, *_ = _layer_with_grads()
    optimizer = Adam(layer)
    optimizer.step()
    optimizer.step()
    assert optimizer.state["W"]["t"] == optimizer.state["b"]["t"] == 2


def test_adam_weight_decay_is_added_to_the_gradient():
    layer, W, *_ = _layer_with_grads()
    grads = _grad_sequence(steps=2)
    lr, wd, eps = 0.1, 0.5, 1e-8
    _run(Adam(layer, lr=lr, eps=eps, weight_decay=wd), layer, grads)
    m, v = np.zeros_like(W), np.zeros_like(W)
    for t, g in enumerate(grads, start=1):
        g = g + wd * W
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g**2
        W = W - lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + eps)
    np.testing.assert_allclose(layer.params["W"], W, rtol=1e-13)


def test_decoupled_weight_decay_shrinks_the_parameter_before_the_adam_step():
    layer, W, *_ = _layer_with_grads()
    grads = _grad_sequence(steps=2)
    lr, wd, eps = 0.1, 0.5, 1e-8
    _run(Adam(layer, lr=lr, eps=eps, weight_decay=wd, decoupled_weight_decay=True), layer, grads)
    m, v = np.zeros_like(W), np.zeros_like(W)
    for t, g in enumerate(grads, start=1):
        W = W * (1 - lr * wd)
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g**2
        W = W - lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + eps)
    np.testing.assert_allclose(layer.params["W"], W, rtol=1e-13)


def test_adamw_is_adam_with_decoupled_weight_decay_of_0_01():
    grads = _grad_sequence()
    layer_a, *_ = _layer_with_grads()
    layer_b, *_ = _layer_with_grads()
    adamw = AdamW(layer_a, lr=0.05)
    assert adamw.weight_decay == 0.01 and adamw.decoupled_weight_decay
    _run(adamw, layer_a, grads)
    _run(Adam(layer_b, lr=0.05, weight_decay=0.01, decoupled_weight_decay=True), layer_b, grads)
    np.testing.assert_array_equal(layer_a.params["W"], layer_b.params["W"])


@pytest.mark.parametrize("make", [
    lambda model: RMSprop(model, lr=0.01),
    lambda model: Adam(model, lr=0.01, weight_decay=0.1),
    lambda model: AdamW(model, lr=0.01),
], ids=["RMSprop", "Adam", "AdamW"])
def test_adaptive_optimizers_update_the_same_arrays_in_place(make):
    model = Sequential(Linear(3, 4, rng=np.random.default_rng(0)), ReLU(),
                       Linear(4, 2, rng=np.random.default_rng(1)))
    arrays = {name: param for name, param, _ in model.named_parameters()}
    before = {name: param.copy() for name, param in arrays.items()}
    out = model.forward(np.random.default_rng(2).standard_normal((5, 3)))
    model.backward(np.ones_like(out))
    grads_before = {name: g.copy() for name, g in model.grads.items()}
    make(model).step()
    for name, param, grad in model.named_parameters():
        assert param is arrays[name]
        assert not np.array_equal(param, before[name])
        np.testing.assert_array_equal(grad, grads_before[name])  # gradients are left alone


@pytest.mark.parametrize("cls", [RMSprop, Adam, AdamW])
def test_adaptive_optimizers_keep_float32_parameters_float32(cls):
    layer = Linear(2, 2, rng=np.random.default_rng(0), dtype=np.float32)
    layer.zero_grad()
    layer.grads["W"] += 1.0
    optimizer = cls(layer, lr=0.1)
    optimizer.step()
    optimizer.step()
    assert layer.params["W"].dtype == np.float32
    assert all(buffer.dtype == np.float32 for state in optimizer.state.values()
               for buffer in state.values() if isinstance(buffer, np.ndarray))


def test_adam_uses_the_current_lr_at_each_step():
    layer, W0, _, gW, _ = _layer_with_grads()
    optimizer = Adam(layer, lr=0.1, eps=1e-12)
    optimizer.lr = 0.001
    optimizer.step()
    np.testing.assert_allclose(layer.params["W"], W0 - 0.001 * np.sign(gW), rtol=1e-7)


@pytest.mark.parametrize(
    "cls, kwargs, message",
    [
        (Adam, {"lr": 0}, r"Adam: lr must lie in \(0"),
        (Adam, {"lr": -1e-3}, r"lr must lie in \(0"),
        (Adam, {"betas": (1.0, 0.999)}, r"betas\[0\] must lie in \[0.0, 1.0\)"),
        (Adam, {"betas": (0.9, 1.0)}, r"betas\[1\] must lie in \[0.0, 1.0\)"),
        (Adam, {"betas": (-0.1, 0.999)}, r"betas\[0\] must lie in \[0.0, 1.0\)"),
        (Adam, {"betas": 0.9}, r"betas must be a pair"),
        (Adam, {"betas": (0.9, 0.99, 0.999)}, r"betas must be a pair"),
        (Adam, {"eps": 0}, r"eps must lie in \(0"),
        (Adam, {"weight_decay": -0.1}, r"weight_decay must lie in \[0.0"),
        (AdamW, {"betas": (0.9, 1.5)}, r"AdamW: betas\[1\] must lie in"),
        (RMSprop, {"lr": 0}, r"RMSprop: lr must lie in \(0"),
        (RMSprop, {"alpha": 1.0}, r"alpha must lie in \[0.0, 1.0\)"),
        (RMSprop, {"alpha": -0.5}, r"alpha must lie in \[0.0, 1.0\)"),
        (RMSprop, {"eps": -1e-8}, r"eps must lie in \(0"),
        (RMSprop, {"weight_decay": -1}, r"weight_decay must lie in \[0.0"),
    ],
)
def test_adaptive_optimizers_reject_bad_hyperparameters(cls, kwargs, message):
    layer, *_ = _layer_with_grads()
    with pytest.raises(ValueError, match=message):
        cls(layer, **kwargs)


def test_a_non_numeric_hyperparameter_is_a_type_error():
    layer, *_ = _layer_with_grads()
    with pytest.raises(TypeError, match="Adam: betas\\[0\\] must be a number"):
        Adam(layer, betas=("0.9x", 0.999))


def test_reprs_show_the_hyperparameters():
    layer, *_ = _layer_with_grads()
    assert repr(Adam(layer)) == "Adam(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0)"
    assert repr(AdamW(layer)) == "AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01)"
    assert repr(RMSprop(layer)) == "RMSprop(lr=0.01, alpha=0.99, eps=1e-08, weight_decay=0)"


def _torch_run(torch, make_theirs, W0, grads):
    param = torch.tensor(W0, requires_grad=True)
    theirs = make_theirs([param])
    for g in grads:
        param.grad = torch.tensor(g)
        theirs.step()
    return param.detach().numpy()


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_rmsprop_matches_torch_over_several_steps(weight_decay):
    torch = pytest.importorskip("torch")
    layer, W0, *_ = _layer_with_grads()
    grads = _grad_sequence(steps=5)
    ours = _run(RMSprop(layer, lr=0.01, alpha=0.9, weight_decay=weight_decay), layer, grads)
    theirs = _torch_run(torch, lambda p: torch.optim.RMSprop(
        p, lr=0.01, alpha=0.9, weight_decay=weight_decay), W0, grads)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.mark.parametrize("weight_decay, decoupled", [(0.0, False), (0.1, False), (0.1, True)])
def test_adam_matches_torch_over_several_steps(weight_decay, decoupled):
    torch = pytest.importorskip("torch")
    layer, W0, *_ = _layer_with_grads()
    grads = _grad_sequence(steps=5)
    ours = _run(Adam(layer, lr=0.05, betas=(0.8, 0.95), weight_decay=weight_decay,
                     decoupled_weight_decay=decoupled), layer, grads)
    make = (lambda p: torch.optim.AdamW(p, lr=0.05, betas=(0.8, 0.95), weight_decay=weight_decay)
            ) if decoupled else (lambda p: torch.optim.Adam(
                p, lr=0.05, betas=(0.8, 0.95), weight_decay=weight_decay))
    theirs = _torch_run(torch, make, W0, grads)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_adamw_matches_torch_adamw_defaults():
    torch = pytest.importorskip("torch")
    layer, W0, *_ = _layer_with_grads()
    grads = _grad_sequence(steps=4)
    ours = _run(AdamW(layer, lr=0.02), layer, grads)
    theirs = _torch_run(torch, lambda p: torch.optim.AdamW(p, lr=0.02), W0, grads)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_a_subclass_of_sgd_that_overrides_update_is_used():
    """Plain SGD runs its rule inside step() (a call fewer per parameter); a subclass's own
    update() must still be the one that runs, and a missing gradient still names itself."""
    class HalfStep(SGD):
        def update(self, name, param, grad):
            param -= 0.5 * self.lr * grad

    layer, W0, b0, gW, gb = _layer_with_grads()
    HalfStep(layer, lr=0.1).step()
    np.testing.assert_array_equal(layer.params["W"], W0 - 0.5 * 0.1 * gW)
    layer.grads = {"W": gW}
    with pytest.raises(RuntimeError, match="'b' has no gradient"):
        SGD(layer, lr=0.1).step()
