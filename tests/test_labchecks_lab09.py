"""Lab 09's visible checks: the stored expected labels agree with independent computations, and
the saddle check refuses points that are not certified saddles."""
import numpy as np
import pytest
from scipy.stats import mode

from backprop.checks import LabCheckError, fresh
from backprop.labchecks import lab09


def test_stored_ensemble_labels_are_the_argmax_of_the_averaged_probabilities():
    rng = np.random.default_rng(5)
    probabilities = [lab09._random_probabilities(rng, 7, 4) for _ in range(3)]
    probabilities[0][0], probabilities[1][0], probabilities[2][0] = \
        [0.51, 0.49, 0, 0], [0.51, 0.49, 0, 0], [0, 1, 0, 0]
    average = sum(probabilities) / 3
    assert lab09.ENSEMBLE_EXPECTED == [int(np.argmax(row)) for row in average]


def test_stored_majority_votes_are_scipys_mode():
    rng = np.random.default_rng(6)
    labels = np.array([rng.integers(0, 4, size=12) for _ in range(4)])
    assert lab09.MAJORITY_EXPECTED == list(mode(labels, axis=0).mode)


def test_the_saddle_check_refuses_a_point_that_is_not_critical():
    net, *_ = lab09.saddle_problem()
    point = np.zeros(net.num_parameters())      # output biases 0, not the mean targets
    with pytest.raises(LabCheckError, match="not a critical point"):
        fresh("lab09").check_build_and_train(point, 1.0, -0.69, "saddle", np.ones_like(point),
                                             point)


def test_the_saddle_check_names_an_eigenvalue_left_shifted():
    net, x, y, *_ = lab09.saddle_problem()
    saddle = np.zeros(net.num_parameters())
    saddle[-2:] = y.mean(axis=0)
    lab09.set_flat_params(net, saddle)
    low, high = lab09.hessian_extreme_eigenvalues(net, lab09.mse_loss, x, y,
                                                 rng=np.random.default_rng(0))
    with pytest.raises(LabCheckError, match="undo the shift"):
        fresh("lab09").check_build_and_train(saddle, high, low - high, "saddle", saddle, saddle)
