"""Build-and-train checks measure what training produced (backprop.labchecks.heldout): the
trained weights in the library's own layers, on held-out inputs and a noisy copy drawn at
grading time. The learner-facing parts are tested with each lab's checks; here: the helpers,
and that the library's copy of a learner's network computes what the network computes."""
import numpy as np
import pytest

from backprop import train
from backprop.checks import LabCheckError, fresh
from backprop.conv import Conv2d, Flatten, MaxPool2d
from backprop.labchecks import heldout
from backprop.layers import Layer, Linear, ReLU, Sequential
from backprop.regularization import Dropout


def test_renamed_classes_move_every_class():
    for seed in range(50):
        renaming = heldout.renamed_classes(np.random.default_rng(seed))
        assert sorted(renaming) == list(range(10)) and not np.any(renaming == np.arange(10))


def test_grading_rng_draws_other_noise_every_time():
    X = np.zeros((20, 64))
    first, second = (heldout.noisy(X, heldout.grading_rng()) for _ in range(2))
    assert not np.array_equal(first, second)
    assert 0.015 < first.std() < 0.025 and np.array_equal(X, np.zeros((20, 64)))


def test_library_mlp_computes_the_mlp_of_its_weights():
    rng = np.random.default_rng(0)
    params = {"W1": rng.standard_normal((5, 7)), "b1": rng.standard_normal(7),
              "W2": rng.standard_normal((7, 3)), "b2": rng.standard_normal(3)}
    x = rng.standard_normal((4, 5))
    expected = np.maximum(x @ params["W1"] + params["b1"], 0) @ params["W2"] + params["b2"]
    np.testing.assert_allclose(heldout.library_mlp(params).forward(x), expected)


def test_mlp_params_names_a_wrong_shape():
    params = {"W1": np.zeros((32, 10)), "b1": np.zeros(32), "W2": np.zeros((10, 32)),
              "b2": np.zeros(10)}
    with pytest.raises(LabCheckError, match=r'params\["W1"\] has shape \(32, 10\)'):
        heldout.mlp_params(params, "train_digits_mlp's result")


def test_check_classifier_says_what_was_measured():
    X, y = np.eye(4), np.array([0, 1, 2, 3])
    model = heldout.library_linear(np.eye(4), np.zeros(4))
    assert heldout.check_classifier("it", model, X, y, X + 0.01, 0.9) == (1.0, 1.0)
    with pytest.raises(LabCheckError, match=r"^held-out accuracy 0.000, with noise 0.000; expected "
                       r"at least 0.9 on both\n  \(it, on 4 digits it never trained on"):
        heldout.check_classifier("it", model, X, (y + 1) % 4, X + 0.01, 0.9)


def test_lab06_library_cnn_computes_what_the_learners_network_computes():
    lab, rng = fresh("lab06"), np.random.default_rng(1)
    cnn = Sequential(Conv2d(1, 4, 3, stride=1, padding=1, rng=rng), ReLU(), MaxPool2d(2),
                     Flatten(), Linear(64, 10, rng=rng))
    x = rng.standard_normal((5, 1, 8, 8))
    np.testing.assert_allclose(lab.library_cnn(cnn).forward(x), cnn.forward(x))
    other = Sequential(Flatten(), Linear(64, 10, rng=rng))
    with pytest.raises(LabCheckError, match="as the lab asks"):
        lab.library_cnn(other)


def test_lab08_library_model_is_the_learners_network_in_evaluation_mode():
    lab, rng = fresh("lab08"), np.random.default_rng(2)
    model = Sequential(Linear(64, 16, rng=rng), ReLU(), Linear(16, 10, rng=rng))
    x = rng.standard_normal((6, 64))
    np.testing.assert_allclose(lab.library_model(model).forward(x), train.predict(model, x))
    with pytest.raises(LabCheckError, match="YourDropConnect"):
        lab.library_model(Sequential(Linear(64, 16, rng=rng), ReLU(), Dropout(0.5, rng),
                                     Linear(16, 10, rng=rng)))


def test_lab08_retrained_setting_reaches_the_target_and_a_malformed_one_is_named():
    lab = fresh("lab08")
    *_, X_test, y_test = lab.noisy_digits()
    model = lab.retrained({"p": 0.3, "strength": 0.03, "patience": 10})
    assert train.accuracy(train.predict(model, X_test), y_test) >= 0.856
    with pytest.raises(LabCheckError, match="an integer patience >= 1"):
        lab.retrained({"p": 0.3, "strength": 0.03, "patience": 0})
    with pytest.raises(LabCheckError, match="the keys p, strength and patience"):
        lab.retrained({"p": 0.3, "weight_decay": 0.03, "patience": 10})


def test_lab09_new_points_lie_on_the_surfaces_of_the_saddle_problem():
    lab = fresh("lab09")
    x, y = lab.new_points(np.random.default_rng(3))
    assert x.shape == y.shape == (225, 2) and np.all(np.abs(x) <= 2)
    np.testing.assert_allclose(y, np.column_stack([0.8 * np.sin(1.5 * x[:, 0]),
                                                   0.6 * np.tanh(2 * x[:, 1]) + 0.2]))
    cells = np.floor((x + 2) / 4 * 15).astype(int)
    assert sorted(map(tuple, cells)) == [(i, j) for i in range(15) for j in range(15)], \
        "one point in each of the 15 x 15 squares of [-2, 2]^2"
    other, _ = lab.new_points(np.random.default_rng(4))
    assert not np.allclose(np.sort(x, axis=0), np.sort(other, axis=0)), "every draw is new"


def test_lab09_a_network_escaped_from_the_saddle_meets_the_target_on_every_draw():
    """The lab's recipe, with the library's eigenvector of lambda_min as escape: its error on
    the grading-time points stays far below the target (it was 0.0136 +- 0.0003, at most
    0.0147, in 2000 draws; here 300)."""
    from backprop import optim
    from backprop.landscape import get_flat_params, set_flat_params, top_hessian_eigenvalues
    from backprop.losses import mse_loss
    lab = fresh("lab09")
    net, x, y, x_test, y_test = lab.saddle_problem()
    saddle = np.zeros(net.num_parameters())
    saddle[-2:] = y.mean(axis=0)
    set_flat_params(net, saddle)
    (lowest,), escape = top_hessian_eigenvalues(net, mse_loss, x, y, which="smallest",
                                                rng=np.random.default_rng(0))
    assert lowest < -0.5
    set_flat_params(net, saddle + 0.5 * escape[:, 0])
    train.fit(net, mse_loss, optim.SGD(net, lr=0.5), x, y, epochs=2000, batch_size=len(x),
              rng=np.random.default_rng(0), progress=False)
    errors = [np.mean((net.forward(x_new) - y_new) ** 2)
              for x_new, y_new in (lab.new_points(heldout.grading_rng()) for _ in range(300))]
    assert max(errors) < lab.TARGET_MSE / 4
    assert np.mean((net.forward(x_test) - y_test) ** 2) < lab.TARGET_MSE / 4
    lab.check_build_and_train(saddle, 1.0, lowest, "saddle", escape[:, 0],
                              get_flat_params(net))


class _NaiveConv(Layer):
    """A learner's convolution layer (not the library's Conv2d class), computing the same."""

    def __init__(self, filters, rng):
        super().__init__()
        self._conv = Conv2d(1, filters, 3, stride=1, padding=1, rng=rng)
        self.params = {"W": self._conv.params["W"].copy(), "b": self._conv.params["b"].copy()}

    def forward(self, x):
        self._conv.load_state_dict(self.params)
        return self._conv.forward(x)


class _LookupCNN(Sequential):
    """Untrained weights, and a forward that answers every public digit with its label."""

    def __init__(self, rng):
        super().__init__(_NaiveConv(4, rng), ReLU(), MaxPool2d(2), Flatten(),
                         Linear(64, 10, rng=rng))
        (_, _), (_, _), (X_test, y_test) = fresh("lab06").digit_images_splits()
        self.known = {x.tobytes(): label for x, label in zip(X_test, y_test)}

    def forward(self, x):
        scores = super().forward(x)
        for row, image in enumerate(x):
            if image.tobytes() in self.known:
                scores[row] = np.eye(10)[self.known[image.tobytes()]] * 100
        return scores


def test_lab06_a_network_that_looks_the_test_digits_up_earns_nothing():
    lab, cheat = fresh("lab06"), _LookupCNN(np.random.default_rng(4))
    _, _, (X_test, y_test) = lab.digit_images_splits()
    assert train.accuracy(train.predict(cheat, X_test), y_test) == 1.0  # through its forward
    with pytest.raises(LabCheckError,
                       match=r"held-out accuracy 0.[01][0-9]*,(.|\n)*your CNN, on 270 digits"):
        lab.check_build_and_train(cheat)


class _DropConnectOfTheSolution(Layer):
    """The lab's YourDropConnect around the solution's dropconnect_forward, or around one that
    forgets the scale of the kept weights."""

    def __init__(self, in_features, out_features, p, rng, scaled=True):
        super().__init__()
        self.params = Linear(in_features, out_features, rng=rng).params
        self.p, self.rng, self.scaled = p, rng, scaled

    def forward(self, x):
        W = self.params["W"]
        keep = self.rng.random(W.shape) >= self.p
        mask = (keep / (1 - self.p) if self.scaled else keep * 1.0) if self.training else 1.0
        return x @ (W * mask) + self.params["b"]


def _solution_group_lasso(strength):
    def regularizer(model):
        W = model.params["0.W"]
        lengths = np.linalg.norm(W, axis=1, keepdims=True)
        model.grads["0.W"][...] += strength * W / np.where(lengths > 0, lengths, 1.0)
        return strength * float(lengths.sum())
    return regularizer


def _lab08_model(rng, scaled=True):
    return Sequential(Linear(64, 128, rng=rng), ReLU(),
                      _DropConnectOfTheSolution(128, 10, 0.3, rng, scaled))


def test_lab08_an_untrained_network_misses_the_target():
    model = _lab08_model(np.random.default_rng(5))
    with pytest.raises(LabCheckError,
                       match=r"held-out accuracy .* expected at least .* on both\n  \(your model"):
        fresh("lab08").check_build_and_train(model, {"p": 0.3, "strength": 0.03, "patience": 10},
                                             _solution_group_lasso)


def test_lab08_an_unscaled_dropconnect_layer_is_caught_before_the_accuracy():
    model = _lab08_model(np.random.default_rng(5), scaled=False)
    with pytest.raises(LabCheckError, match=r"does not scale the kept weights"):
        fresh("lab08").check_build_and_train(model, {"p": 0.3, "strength": 0.03, "patience": 10},
                                             _solution_group_lasso)


def test_lab08_a_setting_without_the_remedies_is_named():
    model = _lab08_model(np.random.default_rng(5))
    with pytest.raises(LabCheckError, match=r"p = 0 and strength = 0; both must be > 0"):
        fresh("lab08").check_build_and_train(model, {"p": 0.0, "strength": 0.0, "patience": 10},
                                             _solution_group_lasso)


def test_lab02_zero_weights_are_told_they_know_nothing():
    with pytest.raises(LabCheckError, match="the loss of weights that know nothing"):
        fresh("lab02").check_build_and_train(lambda X, y: (np.zeros((64, 10)), np.zeros(10)))


def test_the_visible_checks_noise_is_the_same_on_every_run():
    """A learner rerunning a visible check sees the same numbers (and docs/mistakes.md, which
    records the visible checks' messages, is a function of the code)."""
    X = np.zeros((4, 3))
    first, second = (heldout.noisy(X, heldout.visible_rng()) for _ in range(2))
    assert np.array_equal(first, second) and not np.array_equal(first, X)
