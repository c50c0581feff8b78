"""backprop.train: fit, History, DivergenceError, predict, evaluate, accuracy."""
import numpy as np
import pytest

from backprop.data import make_xor
from backprop.layers import Layer, Linear, ReLU, Sequential
from backprop.losses import mse_loss, softmax_cross_entropy
from backprop.optim import SGD, Optimizer
from backprop.train import DivergenceError, History, accuracy, evaluate, fit, predict


def _mlp(seed=0, hidden=16):
    rng = np.random.default_rng(seed)
    return Sequential(Linear(2, hidden, rng=rng), ReLU(), Linear(hidden, 2, rng=rng))


class _Frozen(Optimizer):
    """Leaves parameters alone, so every batch of an epoch sees the same model."""

    def update(self, name, param, grad):
        pass


class _ModeSpy(Layer):
    """Identity layer that records the `training` flag at every forward call."""

    def __init__(self):
        super().__init__()
        self.modes = []

    def forward(self, x):
        self.modes.append(self.training)
        self._cache = x
        return x

    def backward(self, dout):
        return dout


# -- fit -------------------------------------------------------------------------------------
def test_fit_learns_xor_to_high_accuracy():
    X, y = make_xor(n=200, noise=0.2, rng=np.random.default_rng(0))
    model = _mlp()
    history = fit(model, softmax_cross_entropy, SGD(model, lr=0.1, momentum=0.9), X, y,
                  epochs=30, batch_size=20, rng=np.random.default_rng(1), progress=False)
    assert isinstance(history, History) and isinstance(history, dict)
    assert history["loss"][-1] < 0.25 * history["loss"][0]
    assert history["accuracy"][-1] >= 0.95
    assert accuracy(predict(model, X), y) >= 0.95


def test_history_has_one_entry_per_epoch_and_validation_keys_with_val_data():
    X, y = make_xor(n=60, rng=np.random.default_rng(0))
    model = _mlp()
    history = fit(model, softmax_cross_entropy, SGD(model, lr=0.05), X[:40], y[:40], epochs=4,
                  val_data=(X[40:], y[40:]), rng=np.random.default_rng(0), progress=False)
    assert list(history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    assert all(len(values) == 4 for values in history.values())
    assert history.epochs == 4
    assert all(0.0 <= a <= 1.0 for a in history["accuracy"] + history["val_accuracy"])


def test_regression_history_has_no_accuracy():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((50, 2))
    y = X @ np.array([[1.0], [-2.0]])
    model = Linear(2, 1, rng=rng)
    history = fit(model, mse_loss, SGD(model, lr=0.1), X, y, epochs=20, batch_size=10,
                  val_data=(X, y), rng=rng, progress=False)
    assert list(history) == ["loss", "val_loss"]
    assert history["loss"][-1] < 1e-3


def test_epoch_metrics_are_sample_weighted_means_over_uneven_batches():
    X, y = make_xor(n=50, noise=0.5, rng=np.random.default_rng(0))
    model = _mlp(seed=3)
    history = fit(model, softmax_cross_entropy, _Frozen(model, lr=1.0), X, y, epochs=1,
                  batch_size=20, rng=np.random.default_rng(0), progress=False)  # 20 + 20 + 10
    scores = predict(model, X)
    assert history["loss"][0] == pytest.approx(softmax_cross_entropy(scores, y)[0], rel=1e-12)
    assert history["accuracy"][0] == pytest.approx(accuracy(scores, y), rel=1e-12)


def test_fit_is_reproducible_with_seeded_generators():
    X, y = make_xor(n=80, rng=np.random.default_rng(0))
    runs = []
    for _ in range(2):
        model = _mlp(seed=5)
        runs.append(fit(model, softmax_cross_entropy, SGD(model, lr=0.1), X, y, epochs=3,
                        batch_size=8, rng=np.random.default_rng(9), progress=False))
    assert runs[0] == runs[1]


def test_fit_trains_in_training_mode_validates_in_eval_mode_and_restores_the_mode():
    spy = _ModeSpy()
    model = Sequential(spy, Linear(2, 2, rng=np.random.default_rng(0)))
    model.eval()
    X, y = make_xor(n=12, rng=np.random.default_rng(0))
    fit(model, softmax_cross_entropy, SGD(model, lr=0.01), X, y, epochs=2, batch_size=6,
        val_data=(X, y), rng=np.random.default_rng(0), progress=False)
    # per epoch: two training batches, then one validation batch
    assert spy.modes == [True, True, False] * 2
    assert model.training is False and spy.training is False


def test_huge_learning_rate_raises_divergence_error_naming_epoch_and_batch():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 3))
    y = X @ np.array([[1.0], [2.0], [3.0]])
    model = Linear(3, 1, rng=rng)
    with np.errstate(over="ignore", invalid="ignore"):
        message = r"at epoch \d+, batch [1-4] of 4.*lower the learning rate \(it is 1000\)"
        with pytest.raises(DivergenceError, match=message) as info:
            fit(model, mse_loss, SGD(model, lr=1e3), X, y, epochs=100, batch_size=16, rng=rng,
                progress=False)
    error = info.value
    assert isinstance(error, FloatingPointError)
    assert f"epoch {error.epoch}, batch {error.batch} of 4" in str(error)
    assert 1 < error.epoch < 100


def test_non_finite_output_is_reported_before_the_loss_sees_it():
    model = Linear(2, 2, rng=np.random.default_rng(0))
    model.params["W"][:] = np.inf
    X, y = make_xor(n=10, rng=np.random.default_rng(0))
    with np.errstate(invalid="ignore"):
        message = r"output contains NaN or inf at epoch 1, batch 1 of 2"
        with pytest.raises(DivergenceError, match=message):
            fit(model, softmax_cross_entropy, SGD(model, lr=0.1), X, y, epochs=1, batch_size=5,
                rng=np.random.default_rng(0), progress=False)


def test_on_epoch_end_returning_true_stops_training():
    X, y = make_xor(n=20, rng=np.random.default_rng(0))
    model = _mlp()
    calls = []

    def stop_after_three(epoch, history, trained_model):
        calls.append((epoch, len(history["loss"]), trained_model is model))
        return epoch == 3

    history = fit(model, softmax_cross_entropy, SGD(model, lr=0.01), X, y, epochs=10,
                  rng=np.random.default_rng(0), progress=False, on_epoch_end=stop_after_three)
    assert calls == [(1, 1, True), (2, 2, True), (3, 3, True)]
    assert history.epochs == 3


def test_progress_false_prints_nothing(capsys):
    X, y = make_xor(n=20, rng=np.random.default_rng(0))
    model = _mlp()
    fit(model, softmax_cross_entropy, SGD(model, lr=0.01), X, y, epochs=2,
        rng=np.random.default_rng(0), progress=False)
    assert capsys.readouterr() == ("", "")


def test_progress_bar_shows_epochs_and_the_latest_loss(capsys):
    X, y = make_xor(n=20, rng=np.random.default_rng(0))
    model = _mlp()
    fit(model, softmax_cross_entropy, SGD(model, lr=0.01), X, y, epochs=2,
        rng=np.random.default_rng(0), progress=True)
    err = capsys.readouterr().err
    assert "2/2" in err and "loss=" in err and "acc=" in err


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"epochs": 0}, ValueError, "epochs must be an integer >= 1"),
        ({"batch_size": 0}, ValueError, "batch_size must be an integer >= 1"),
        ({"val_data": (np.zeros((2, 2)),)}, ValueError, r"val_data must be a pair"),
        ({"rng": 0}, TypeError, r"fit: rng must be a np.random.Generator"),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, error, message):
    model = _mlp()
    X, y = make_xor(n=8, rng=np.random.default_rng(0))
    with pytest.raises(error, match=message):
        fit(model, softmax_cross_entropy, SGD(model), X, y, progress=False, **kwargs)


def test_fit_rejects_mismatched_x_and_y_before_training():
    model = _mlp()
    W_before = model[0].params["W"].copy()
    with pytest.raises(ValueError, match="X has 8 samples but y has 7"):
        fit(model, softmax_cross_entropy, SGD(model), np.zeros((8, 2)), np.zeros(7, dtype=int),
            progress=False)
    np.testing.assert_array_equal(model[0].params["W"], W_before)


# -- predict, evaluate, accuracy -------------------------------------------------------------
def test_predict_batches_match_one_forward_pass_and_restore_training_mode():
    spy = _ModeSpy()
    model = Sequential(spy, Linear(2, 3, rng=np.random.default_rng(0)))
    X = np.random.default_rng(1).standard_normal((10, 2))
    scores = predict(model, X, batch_size=4)
    assert scores.shape == (10, 3)
    np.testing.assert_allclose(scores, model.forward(X))
    assert spy.modes[:3] == [False] * 3 and model.training is True


def test_evaluate_returns_sample_mean_loss_and_accuracy():
    model = _mlp(seed=2)
    X, y = make_xor(n=10, rng=np.random.default_rng(0))
    loss, acc = evaluate(model, softmax_cross_entropy, X, y, batch_size=3)
    scores = model.forward(X)
    assert loss == pytest.approx(softmax_cross_entropy(scores, y)[0], rel=1e-12)
    assert acc == accuracy(scores, y)


def test_evaluate_regression_gives_no_accuracy():
    model = Linear(2, 1, rng=np.random.default_rng(0))
    X = np.ones((5, 2))
    loss, acc = evaluate(model, mse_loss, X, np.zeros((5, 1)))
    assert acc is None and loss == pytest.approx(float(np.mean(model.forward(X) ** 2)))


def test_accuracy_uses_argmax_for_class_scores():
    scores = np.array([[0.1, 0.9], [2.0, -1.0], [0.0, 3.0], [5.0, 4.0]])
    assert accuracy(scores, np.array([1, 0, 0, 0])) == 0.75


def test_accuracy_thresholds_binary_logits_at_zero():
    labels = np.array([1, 0, 1, 0])
    logits = np.array([0.5, -0.2, -3.0, 0.1])
    assert accuracy(logits, labels) == 0.5
    assert accuracy(logits[:, None], labels[:, None]) == 0.5
    assert accuracy(1 / (1 + np.exp(-logits)), labels, threshold=0.5) == 0.5


def test_accuracy_accepts_predicted_labels():
    assert accuracy(np.array([2, 1, 0]), np.array([2, 1, 1])) == pytest.approx(2 / 3)


def test_accuracy_rejects_float_labels_and_length_mismatch():
    with pytest.raises(TypeError, match="labels must be integer classes"):
        accuracy(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="3 predictions but 2 labels"):
        accuracy(np.zeros((3, 2)), np.zeros(2, dtype=int))
