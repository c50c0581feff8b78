"""Lab 07's build-and-train check measures held-out waves itself: an untrained model fails it."""
import numpy as np
import pytest

from backprop.checks import LabCheckError, fresh
from backprop.labchecks import lab07


def test_held_out_waves_are_not_the_training_waves():
    assert not np.allclose(lab07.sine_waves(64, seed=0)[0][:5], lab07.sine_waves(256, seed=1)[0][:5])


def test_an_untrained_model_misses_the_target():
    H = 4
    params = {"Wx": np.zeros((1, H)), "Wh": np.zeros((H, H)), "b": np.zeros(H),
              "Wy": np.zeros((H, 1)), "by": np.zeros(1)}
    with pytest.raises(LabCheckError, match="held-out waves"):
        fresh("lab07").check_build_and_train(params)
