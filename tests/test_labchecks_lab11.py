"""Lab 11's visible checks: the wrong forward passes that name mistakes differentiate to what
those mistakes compute, the build-and-train check refuses the library's layer, and the lab's
claim that the plain 20-block stack does not learn in the budget where the normalized residual
network does."""
import numpy as np
import pytest

from backprop.checks import LabCheckError, fresh
from backprop.gradcheck import numerical_gradient
from backprop.labchecks import lab11
from backprop.losses import softmax_cross_entropy
from backprop.optim import SGD
from backprop.train import accuracy, fit, predict


def test_holding_a_statistic_constant_removes_exactly_its_path_from_dx():
    rng = np.random.default_rng(0)
    x, dout, eps = rng.standard_normal((5, 3)), rng.standard_normal((5, 3)), 1e-5
    mean, var = x.mean(axis=0), x.var(axis=0)
    inv_std = 1 / np.sqrt(var + eps)
    xhat = (x - mean) * inv_std

    def dx_of(**variant):
        return numerical_gradient(lambda x_: lab11._normalized(x_, eps, **variant), x.copy(), dout)

    # the compact form's three terms: direct, through the mean, through the variance
    direct = inv_std * dout
    through_mean = -inv_std * dout.mean(axis=0)
    through_var = -inv_std * xhat * (dout * xhat).mean(axis=0)
    np.testing.assert_allclose(dx_of(), direct + through_mean + through_var, atol=1e-7)
    np.testing.assert_allclose(dx_of(frozen_mean=mean[None]), direct + through_var, atol=1e-7)
    np.testing.assert_allclose(dx_of(frozen_var=var[None]), direct + through_mean, atol=1e-7)


def test_the_build_and_train_check_refuses_the_librarys_batch_norm():
    net = lab11.deep_reference(8)
    with pytest.raises(LabCheckError, match="YOUR layer"):
        fresh("lab11").check_build_and_train(net)


@pytest.mark.parametrize("norm", [True, False])
def test_only_the_normalized_residual_network_learns_in_the_labs_budget(norm):
    (X_train, y_train), _, (X_test, y_test) = lab11.digits_splits()
    net = lab11.deep_reference(32, norm=norm)  # the lab's solution: width 32, seed 0
    fit(net, softmax_cross_entropy, SGD(net, lr=0.05, momentum=0.9), X_train, y_train,
        epochs=8, batch_size=32, rng=np.random.default_rng(1), progress=False)
    test_accuracy = accuracy(predict(net, X_test), y_test)
    if norm:
        assert test_accuracy >= lab11.TEST_TARGET + 0.03
    else:
        assert test_accuracy < 0.2, "the plain 20-block stack learned: the lab's contrast is gone"
