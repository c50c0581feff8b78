"""Lab 07's build-and-train check measures held-out waves itself: an untrained model fails it;
its gate hint names the gate whose columns of a gradient are wrong."""
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
