"""backprop.regularization (dropout, penalties, augmentation, ensembles) and the regularizer
and early-stopping options of backprop.train.fit."""
import numpy as np
import pytest

from backprop import functional as F
from backprop.data import load_digits, make_xor
from backprop.gradcheck import check_layer, numerical_gradient
from backprop.layers import Linear, ReLU, Sequential
from backprop.losses import mse_loss, softmax_cross_entropy
from backprop.optim import SGD
from backprop.regularization import (
    Dropout, L1Penalty, L2Penalty, add_penalty_grads, augment_digits, ensemble_accuracy,
    ensemble_predict, l1_penalty, l2_penalty,
)
from backprop.train import EarlyStopping, accuracy, fit, predict


def _mlp(seed=0, hidden=8, n_in=2, n_out=2):
    rng = np.random.default_rng(seed)
    return Sequential(Linear(n_in, hidden, rng=rng), ReLU(), Linear(hidden, n_out, rng=rng))


# -- Dropout ---------------------------------------------------------------------------------
def test_dropout_zeroes_a_fraction_p_and_keeps_the_mean():
    drop = Dropout(0.3, rng=np.random.default_rng(0))
    out = drop(np.ones((400, 500)))
    assert np.mean(out == 0) == pytest.approx(0.3, abs=0.005)
    np.testing.assert_allclose(out[out != 0], 1 / 0.7, rtol=1e-15)  # survivors scaled up
    assert out.mean() == pytest.approx(1.0, abs=0.01)


def test_dropout_is_the_identity_in_eval_mode_and_with_p_zero():
    x = np.random.default_rng(1).standard_normal((5, 6))
    drop = Dropout(0.5, rng=np.random.default_rng(0)).eval()
    np.testing.assert_array_equal(drop(x), x)
    np.testing.assert_array_equal(drop.backward(2 * x), 2 * x)
    np.testing.assert_array_equal(Dropout(0.0, rng=np.random.default_rng(0))(x), x)


def test_same_seed_gives_the_same_masks_and_each_forward_draws_a_new_one():
    x = np.ones((20, 30))
    a, b = (Dropout(0.5, rng=np.random.default_rng(7)) for _ in range(2))
    first = a(x)
    np.testing.assert_array_equal(first, b(x))
    assert not np.array_equal(first, a(x))


def test_dropout_backward_multiplies_by_the_forward_mask():
    rng = np.random.default_rng(2)
    x = rng.uniform(0.5, 1.5, (6, 7))
    drop = Dropout(0.4, rng=rng)
    out = drop(x)
    dout = rng.standard_normal(x.shape)
    np.testing.assert_allclose(drop.backward(dout), dout * out / x, rtol=1e-14)


def test_dropout_with_a_fixed_mask_passes_the_gradient_check():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 9))
    report = check_layer(Dropout(0.5, rng=rng, resample=False), x)
    assert report.max_rel_error < 1e-7, str(report)
    # the reason for resample=False: a fresh mask per forward makes finite differences noise
    assert not check_layer(Dropout(0.5, rng=rng), x).ok


def test_resample_false_reuses_its_mask_and_rejects_another_shape():
    drop = Dropout(0.5, rng=np.random.default_rng(0), resample=False)
    x = np.ones((3, 4))
    np.testing.assert_array_equal(drop(x), drop(x))
    with pytest.raises(ValueError, match=r"reuses the mask of shape \(3, 4\).*\(2, 4\)"):
        drop(np.ones((2, 4)))


def test_dropout_keeps_float32():
    out = Dropout(0.5, rng=np.random.default_rng(0))(np.ones((2, 3), dtype=np.float32))
    assert out.dtype == np.float32


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5, "0.5", True])
def test_dropout_rejects_a_probability_outside_0_1(p):
    with pytest.raises(ValueError, match=r"Dropout: p, the probability of dropping a unit"):
        Dropout(p, rng=np.random.default_rng(0))


def test_dropout_requires_a_generator():
    with pytest.raises(TypeError, match=r"Dropout\(p=0.5\): pass rng=np.random.default_rng"):
        Dropout(0.5)


def test_predict_with_dropout_is_deterministic_because_it_runs_in_eval_mode():
    rng = np.random.default_rng(0)
    model = Sequential(Linear(2, 16, rng=rng), ReLU(), Dropout(0.5, rng=rng), Linear(16, 2, rng=rng))
    X = rng.standard_normal((10, 2))
    np.testing.assert_array_equal(predict(model, X), predict(model, X))
    assert model.training is True


# -- L1 and L2 penalties ---------------------------------------------------------------------
@pytest.mark.parametrize("penalty_fn", [l2_penalty, l1_penalty])
@pytest.mark.parametrize("include_biases", [False, True])
def test_penalty_gradients_match_finite_differences(penalty_fn, include_biases):
    model = _mlp(seed=4)
    for param in model.params.values():
        param[...] = np.random.default_rng(param.size).uniform(0.1, 1.0, param.shape) * \
            np.random.default_rng(5 + param.size).choice([-1, 1], param.shape)  # away from 0
    _, grads = penalty_fn(model, 0.3, include_biases=include_biases)
    expected = {"0.W", "2.W"} | ({"0.b", "2.b"} if include_biases else set())
    assert set(grads) == expected
    for name in expected:
        numeric = numerical_gradient(
            lambda _: penalty_fn(model, 0.3, include_biases=include_biases)[0], model.params[name])
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-7, atol=1e-9)


def test_penalty_values_by_hand():
    layer = Linear(2, 2, rng=np.random.default_rng(0))
    layer.params["W"][...] = [[1.0, -2.0], [0.0, 3.0]]
    layer.params["b"][...] = [5.0, 5.0]
    assert l2_penalty(layer, 0.1)[0] == pytest.approx(0.05 * 14)
    assert l1_penalty(layer, 0.1)[0] == pytest.approx(0.1 * 6)
    assert l1_penalty(layer, 0.1, include_biases=True)[0] == pytest.approx(0.1 * 16)
    np.testing.assert_array_equal(l1_penalty(layer, 1.0)[1]["W"], [[1, -1], [0, 1]])  # 0 at 0


def test_add_penalty_grads_adds_in_place_after_backward():
    model = _mlp()
    out = model.forward(np.ones((3, 2)))
    model.backward(np.ones_like(out))
    before = {k: v.copy() for k, v in model.grads.items()}
    penalty = L2Penalty(0.5)(model)
    assert penalty == pytest.approx(0.25 * (np.sum(model.params["0.W"] ** 2)
                                            + np.sum(model.params["2.W"] ** 2)))
    np.testing.assert_allclose(model.grads["0.W"], before["0.W"] + 0.5 * model.params["0.W"])
    np.testing.assert_array_equal(model.grads["0.b"], before["0.b"])


def test_add_penalty_grads_before_backward_or_with_unknown_names_is_an_error():
    model = _mlp()
    with pytest.raises(RuntimeError, match="'0.W' has no gradient yet; call model.backward"):
        add_penalty_grads(model, {"0.W": np.zeros((2, 8))})
    model.zero_grad()
    with pytest.raises(KeyError, match="'5.W' is not a parameter"):
        add_penalty_grads(model, {"5.W": np.zeros(1)})
    with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0"):
        l2_penalty(model, -1.0)


def test_fit_with_l2_penalty_on_every_parameter_equals_sgd_weight_decay():
    X, y = make_xor(n=40, rng=np.random.default_rng(0))
    runs = []
    for regularizer, weight_decay in [(L2Penalty(0.1, include_biases=True), 0.0), (None, 0.1)]:
        model = _mlp(seed=1)
        fit(model, softmax_cross_entropy, SGD(model, lr=0.1, weight_decay=weight_decay), X, y,
            epochs=3, batch_size=10, rng=np.random.default_rng(0), progress=False,
            regularizer=regularizer)
        runs.append(model.state_dict())
    for name in runs[0]:
        np.testing.assert_allclose(runs[0][name], runs[1][name], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("regularizer, norm", [(L2Penalty(0.05), lambda W: np.sum(W**2)),
                                               (L1Penalty(0.03), lambda W: np.sum(np.abs(W)))])
def test_fit_with_a_penalty_shrinks_the_weights_and_records_it(regularizer, norm):
    X, y = make_xor(n=60, rng=np.random.default_rng(0))
    sizes, histories = [], []
    for reg in [None, regularizer]:
        model = _mlp(seed=2, hidden=16)
        histories.append(fit(model, softmax_cross_entropy, SGD(model, lr=0.2), X, y, epochs=30,
                             batch_size=20, rng=np.random.default_rng(0), progress=False,
                             regularizer=reg))
        sizes.append(sum(norm(model.params[k]) for k in ("0.W", "2.W")))
    assert sizes[1] < 0.8 * sizes[0]
    assert "penalty" not in histories[0]
    assert len(histories[1]["penalty"]) == 30 and histories[1]["penalty"][-1] > 0


# -- early stopping --------------------------------------------------------------------------
def _scripted_run(val_losses, early_stopping, epochs=20):
    """Train a Linear on a regression task while the validation loss follows a script.

    Returns (history, model, weights after each epoch)."""
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((8, 2)), rng.standard_normal((8, 1))
    model = Linear(2, 1, rng=rng)
    script = iter(val_losses)

    def loss_fn(out, target):
        loss, dout = mse_loss(out, target)
        return (next(script), dout) if not model.training else (loss, dout)

    snapshots = []
    history = fit(model, loss_fn, SGD(model, lr=0.05), X, Y, epochs=epochs, batch_size=4,
                  val_data=(X[:3], Y[:3]), rng=rng, progress=False, early_stopping=early_stopping,
                  on_epoch_end=lambda epoch, h, m: snapshots.append(m.state_dict()))
    return history, model, snapshots


def test_early_stopping_stops_after_patience_epochs_and_restores_the_best_weights():
    losses = [1.0, 0.8, 0.9, 0.7, 0.75, 0.72, 0.71, 0.5, 0.4]
    history, model, snapshots = _scripted_run(losses, EarlyStopping(patience=3))
    assert history.best_epoch == 4 and history.stopped_epoch == 7
    assert history.epochs == 7 and history["val_loss"] == pytest.approx(losses[:7])
    for name, value in snapshots[3].items():  # the weights after epoch 4, bit for bit
        np.testing.assert_array_equal(model.params[name], value)
    assert not np.array_equal(model.params["W"], snapshots[-1]["W"])


def test_min_delta_ignores_tiny_improvements():
    stopper = EarlyStopping(patience=2, min_delta=0.05)
    history, _, _ = _scripted_run([1.0, 0.98, 0.97, 0.5], stopper)
    assert (history.best_epoch, history.stopped_epoch) == (1, 3)
    assert stopper.best_value == 1.0


def test_running_out_of_epochs_still_restores_the_best_weights():
    history, model, snapshots = _scripted_run([0.5, 0.4, 0.6, 0.7], EarlyStopping(patience=5),
                                              epochs=4)
    assert (history.best_epoch, history.stopped_epoch) == (2, None)
    np.testing.assert_array_equal(model.params["W"], snapshots[1]["W"])


def test_restore_best_false_keeps_the_last_weights():
    history, model, snapshots = _scripted_run([0.5, 0.6, 0.7], EarlyStopping(2, restore_best=False))
    assert history.stopped_epoch == 3
    np.testing.assert_array_equal(model.params["W"], snapshots[-1]["W"])


def test_early_stopping_on_accuracy_waits_for_an_increase_and_resets_between_fits():
    X, y = make_xor(n=40, rng=np.random.default_rng(0))
    stopper = EarlyStopping(patience=2, monitor="val_accuracy")
    assert stopper.maximize
    for _ in range(2):
        model = _mlp()
        history = fit(model, softmax_cross_entropy, SGD(model, lr=1e-6), X, y, epochs=10,
                      val_data=(X, y), rng=np.random.default_rng(0), progress=False,
                      early_stopping=stopper)
        # a learning rate this small leaves the accuracy where it is
        assert (history.best_epoch, history.stopped_epoch, history.epochs) == (1, 3, 3)


def test_early_stopping_needs_a_recorded_metric_and_valid_settings():
    model = _mlp()
    X, y = make_xor(n=8, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"monitors 'val_loss'.*pass val_data"):
        fit(model, softmax_cross_entropy, SGD(model), X, y, progress=False,
            early_stopping=EarlyStopping())
    with pytest.raises(TypeError, match="early_stopping must be an EarlyStopping"):
        fit(model, softmax_cross_entropy, SGD(model), X, y, progress=False, early_stopping=3)
    with pytest.raises(TypeError, match="regularizer must be a callable"):
        fit(model, softmax_cross_entropy, SGD(model), X, y, progress=False, regularizer=0.1)
    with pytest.raises(ValueError, match="patience must be an integer >= 1"):
        EarlyStopping(patience=0)


def test_history_without_early_stopping_has_no_best_or_stopped_epoch():
    X, y = make_xor(n=8, rng=np.random.default_rng(0))
    model = _mlp()
    history = fit(model, softmax_cross_entropy, SGD(model), X, y, epochs=1, progress=False)
    assert history.best_epoch is None and history.stopped_epoch is None


# -- augmentation ----------------------------------------------------------------------------
def _shifted(image, dr, dc):
    """An 8x8 image moved by (dr, dc) whole pixels, zeros coming in."""
    out = np.zeros_like(image)
    out[max(dr, 0):8 + min(dr, 0), max(dc, 0):8 + min(dc, 0)] = \
        image[max(-dr, 0):8 + min(-dr, 0), max(-dc, 0):8 + min(-dc, 0)]
    return out


@pytest.mark.parametrize("as_images, dtype", [(False, np.float64), (True, np.float64),
                                              (True, np.float32)])
def test_augmentation_keeps_layout_dtype_and_range(as_images, dtype):
    X, _ = load_digits(as_images=as_images)
    X = X[:200].astype(dtype)
    out = augment_digits(X, np.random.default_rng(0))
    assert out.shape == X.shape and out.dtype == dtype
    assert out.min() >= 0.0 and out.max() <= 1.0
    assert not np.allclose(out, X)
    assert augment_digits(X[:, 0] if as_images else X.reshape(-1, 8, 8),
                          np.random.default_rng(0)).shape[1:] == (8, 8)


def test_augmentation_is_reproducible_with_a_seed():
    X, _ = load_digits()
    a = augment_digits(X[:50], np.random.default_rng(3))
    np.testing.assert_array_equal(a, augment_digits(X[:50], np.random.default_rng(3)))
    assert not np.array_equal(a, augment_digits(X[:50], np.random.default_rng(4)))


def test_shift_without_rotation_moves_every_image_by_whole_pixels():
    X, _ = load_digits()
    images = X[:100].reshape(-1, 8, 8)
    out = augment_digits(images, np.random.default_rng(0), max_shift=1, max_rotation_deg=0)
    moves = []
    for image, moved in zip(images, out):
        matches = [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)
                   if np.allclose(moved, _shifted(image, dr, dc), atol=1e-12)]
        assert matches, "an augmented image is not a one-pixel shift of its original"
        moves.append(matches[0])
    assert len(set(moves)) == 9  # every shift occurs in 100 draws
    single = np.zeros((1, 8, 8))
    single[0, 4, 4] = 1.0
    moved = augment_digits(single, np.random.default_rng(1), max_shift=1, max_rotation_deg=0)[0]
    assert moved.sum() == pytest.approx(1.0) and moved.max() == pytest.approx(1.0)


def test_zero_shift_and_rotation_is_the_identity():
    X, _ = load_digits()
    out = augment_digits(X[:10], np.random.default_rng(0), max_shift=0, max_rotation_deg=0)
    np.testing.assert_allclose(out, X[:10], atol=1e-12)


def test_rotation_turns_the_mass_about_the_centre_within_the_limit():
    image = np.zeros((1, 8, 8))
    image[0, 1:3, 1:3] = 1.0  # a block off the centre (3.5, 3.5)
    rows, cols = np.mgrid[0:8, 0:8]

    def centre_of_mass(im):
        return np.array([(im * rows).sum(), (im * cols).sum()]) / im.sum() - 3.5

    before = centre_of_mass(image[0])
    turns = []
    for seed in range(8):
        after = centre_of_mass(augment_digits(image, np.random.default_rng(seed), max_shift=0,
                                              max_rotation_deg=30)[0])
        assert np.linalg.norm(after) == pytest.approx(np.linalg.norm(before), abs=0.05)
        turns.append(np.degrees(np.arctan2(after[1], after[0]) - np.arctan2(before[1], before[0])))
    assert max(np.abs(turns)) <= 31 and max(np.abs(turns)) > 10


def test_augmentation_rejects_other_shapes_and_missing_generators():
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 64\).*got \(3, 10\)"):
        augment_digits(np.zeros((3, 10)), np.random.default_rng(0))
    with pytest.raises(TypeError, match="augment_digits: pass rng"):
        augment_digits(np.zeros((3, 64)), None)


# -- ensembles -------------------------------------------------------------------------------
def test_ensemble_predict_is_the_mean_of_softmax_probabilities():
    X, y = make_xor(n=30, rng=np.random.default_rng(0))
    models = [_mlp(seed=s) for s in range(3)]
    expected = np.mean([F.softmax(predict(m, X), axis=1) for m in models], axis=0)
    probs = ensemble_predict(models, X, batch_size=7)
    np.testing.assert_allclose(probs, expected, rtol=1e-14)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    assert ensemble_accuracy(models, X, y) == accuracy(expected, y)


def test_ensemble_of_binary_logit_models_averages_sigmoids():
    X, y = make_xor(n=20, rng=np.random.default_rng(0))
    models = [_mlp(seed=s, n_out=1) for s in range(2)]
    expected = np.mean([F.sigmoid(predict(m, X)) for m in models], axis=0)
    np.testing.assert_allclose(ensemble_predict(models, X), expected, rtol=1e-14)
    assert ensemble_accuracy(models, X, y) == accuracy(expected, y, threshold=0.5)


def test_ensemble_rejects_empty_and_mismatched_models():
    X = np.zeros((4, 2))
    with pytest.raises(ValueError, match="models is empty"):
        ensemble_predict([], X)
    with pytest.raises(ValueError, match=r"model 1 outputs shape \(4, 3\), model 0 outputs \(4, 2\)"):
        ensemble_predict([_mlp(), _mlp(n_out=3)], X)
