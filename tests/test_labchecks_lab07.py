"""Lab 07's build-and-train check measures held-out waves itself: an untrained model fails it,
a GRU trained as the solution trains meets the target on every draw; its gate hint names the
gate whose columns of a gradient are wrong."""
import numpy as np
import pytest

from backprop.checks import LabCheckError, fresh
from backprop.labchecks import lab07


def test_held_out_waves_are_not_the_training_waves():
    assert not np.allclose(lab07.sine_waves(64, seed=0)[0][:5], lab07.sine_waves(256, seed=1)[0][:5])


def test_an_untrained_model_misses_the_target():
    H = 4
    params = {"Wx": np.zeros((1, 3 * H)), "Wh": np.zeros((H, 3 * H)), "b": np.zeros(3 * H),
              "Wy": np.zeros((H, 1)), "by": np.zeros(1)}
    with pytest.raises(LabCheckError, match="held-out waves"):
        fresh("lab07").check_build_and_train(params)


def test_the_gate_hint_names_the_gate_whose_columns_are_wrong():
    expected = np.arange(12.0).reshape(2, 6)         # H = 2: columns r 0-1, z 2-3, n 4-5
    received = expected.copy()
    received[1, 3] += 1.0
    hint = lab07.gate_hint(received, expected)
    assert "the update gate z" in hint and "the reset gate r and the candidate n are right" in hint
    assert lab07.gate_hint(expected, expected) is None


def test_a_wrong_gate_that_is_no_known_mistake_is_named_by_its_columns():
    def gru_step_forward(x, h_prev, Wx, Wh, b):
        return lab07._library_step(x, h_prev, Wx, Wh, b), (x, h_prev, Wx, Wh, b)

    def gru_step_backward(dh_next, cache):
        grads = lab07._step_grads(*cache, dh_next)
        H = cache[3].shape[0]
        grads[2][:, H:2 * H] *= 0.5                   # the update gate's columns of dWx
        return tuple(grads)

    with pytest.raises(LabCheckError, match="the wrong columns are those of the update gate z"):
        fresh("lab07").check_gru_step_backward(gru_step_backward, gru_step_forward)


def _trained_gru(hidden_size=16, steps=500, lr=0.3, max_norm=0.5, seed=0):
    """The lab's model trained as its solution does (plain gradient descent, global clipping),
    with the library's GRU: the weights a correct answer produces."""
    from backprop.gated import GRU
    from backprop.layers import Sequential
    from backprop.losses import mse_loss
    from backprop.optim import SGD
    from backprop.sequence import TemporalLinear, clip_grad_norm
    inputs, targets = lab07.sine_waves(64, seed=0)
    init_rng = np.random.default_rng(seed)
    model = Sequential(GRU(1, hidden_size, rng=init_rng),
                       TemporalLinear(hidden_size, 1, rng=init_rng))
    model.load_state_dict({
        "0.Wx": init_rng.uniform(-0.25, 0.25, (1, 3 * hidden_size)),
        "0.Wh": init_rng.uniform(-0.25, 0.25, (hidden_size, 3 * hidden_size)),
        "0.b": np.zeros(3 * hidden_size),
        "1.W": init_rng.standard_normal((hidden_size, 1)) * 0.25, "1.b": np.zeros(1)})
    optimizer = SGD(model, lr=lr)
    for _ in range(steps):
        _, dout = mse_loss(model.forward(inputs), targets)
        optimizer.zero_grad()
        model.backward(dout)
        clip_grad_norm(model, max_norm)
        optimizer.step()
    state = model.state_dict()
    return {"Wx": state["0.Wx"], "Wh": state["0.Wh"], "b": state["0.b"], "Wy": state["1.W"],
            "by": state["1.b"]}


def test_a_trained_gru_meets_the_target_on_every_draw():
    params = _trained_gru()
    errors = [lab07.sine_mse(params, *lab07.sine_waves(200, seed=seed)) for seed in range(40)]
    assert max(errors) < 0.75 * lab07.TARGET_MSE, errors
    fresh("lab07").check_build_and_train(params)
