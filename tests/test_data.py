"""backprop.data: bundled datasets, toy sets, splits, standardization, mini-batches."""
import numpy as np
import pytest

from backprop import data


# -- bundled datasets ------------------------------------------------------------------------
def test_load_digits_is_flat_float_pixels_in_unit_interval():
    X, y = data.load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert X.min() == 0.0 and X.max() == 1.0
    assert y.shape == (1797,) and y.dtype == np.int64
    assert set(np.unique(y)) == set(range(10))


def test_load_digits_as_images_is_the_same_data_in_nchw_layout():
    X_flat, y_flat = data.load_digits()
    X_img, y_img = data.load_digits(as_images=True)
    assert X_img.shape == (1797, 1, 8, 8) and X_img.dtype == np.float64
    np.testing.assert_array_equal(X_img.reshape(1797, 64), X_flat)
    np.testing.assert_array_equal(y_img, y_flat)


def test_load_breast_cancer_shapes_and_binary_labels():
    X, y = data.load_breast_cancer()
    assert X.shape == (569, 30) and X.dtype == np.float64
    assert y.shape == (569,) and y.dtype == np.int64
    assert set(np.unique(y)) == {0, 1}
    assert X.max() > 100  # raw, unscaled features (areas are in the hundreds)


def test_load_diabetes_is_regression_with_float_targets():
    X, y = data.load_diabetes()
    assert X.shape == (442, 10) and X.dtype == np.float64
    assert y.shape == (442,) and y.dtype == np.float64
    assert len(np.unique(y)) > 100


# -- toy 2-D sets ----------------------------------------------------------------------------
def test_make_spirals_shapes_balance_and_radii():
    X, y = data.make_spirals(n_per_class=50, n_classes=4, noise=0.3, rng=np.random.default_rng(0))
    assert X.shape == (200, 2) and X.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [50] * 4)
    # noise perturbs only the angle, so each arm's radii are exactly 0 .. 1
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), np.tile(np.linspace(0, 1, 50), 4))


@pytest.mark.parametrize("make", [data.make_spirals, data.make_moons, data.make_xor])
def test_toy_sets_are_reproducible_with_a_seeded_generator(make):
    X1, y1 = make(rng=np.random.default_rng(7))
    X2, y2 = make(rng=np.random.default_rng(7))
    X3, _ = make(rng=np.random.default_rng(8))
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.allclose(X1, X3)


def test_make_moons_shapes_and_balanced_binary_labels():
    X, y = data.make_moons(n=100, noise=0.1, rng=np.random.default_rng(0))
    assert X.shape == (100, 2) and X.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(y), [50, 50])


def test_make_xor_label_is_xor_of_the_coordinate_signs():
    X, y = data.make_xor(n=202, noise=0.1, rng=np.random.default_rng(0))
    assert X.shape == (202, 2) and X.dtype == np.float64 and y.dtype == np.int64
    np.testing.assert_array_equal(y, ((X[:, 0] > 0) != (X[:, 1] > 0)).astype(np.int64))
    quadrant_counts = np.unique(np.sign(X), axis=0, return_counts=True)[1]
    assert sorted(quadrant_counts) == [50, 50, 51, 51]


def test_toy_sets_reject_a_seed_in_place_of_a_generator():
    with pytest.raises(TypeError, match="make_xor: rng must be a np.random.Generator"):
        data.make_xor(rng=0)


def test_make_spirals_rejects_a_single_class():
    with pytest.raises(ValueError, match="n_classes >= 2"):
        data.make_spirals(n_classes=1)


# -- train / validation / test split ---------------------------------------------------------
def _labelled_indices(n=200):
    """X holds each sample's index, so splits can be traced back to the original rows."""
    X = np.arange(n, dtype=np.float64).reshape(n, 1)
    y = (np.arange(n) % 4 == 0).astype(np.int64)  # 25 % positives
    return X, y


def test_split_sizes_are_disjoint_and_cover_every_sample():
    X, y = _labelled_indices()
    s = data.train_val_test_split(X, y, val=0.15, test=0.15, seed=0)
    assert (len(s.X_train), len(s.X_val), len(s.X_test)) == (140, 30, 30)
    ids = np.concatenate([s.X_train, s.X_val, s.X_test]).ravel()
    np.testing.assert_array_equal(np.sort(ids), np.arange(200))
    for X_part, y_part in [(s.X_train, s.y_train), (s.X_val, s.y_val), (s.X_test, s.y_test)]:
        np.testing.assert_array_equal(y_part, y[X_part[:, 0].astype(int)])


def test_split_is_identical_for_the_same_seed_and_differs_for_another():
    X, y = _labelled_indices()
    a = data.train_val_test_split(X, y, seed=3)
    b = data.train_val_test_split(X, y, seed=3)
    c = data.train_val_test_split(X, y, seed=4)
    for key in a.keys():
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a.X_test, c.X_test)


def test_split_keeps_class_proportions_when_stratified():
    X, y = _labelled_indices()
    s = data.train_val_test_split(X, y, val=0.2, test=0.2, seed=1)
    for y_part in (s.y_train, s.y_val, s.y_test):
        assert y_part.mean() == pytest.approx(0.25, abs=0.01)


def test_split_of_regression_targets_does_not_stratify():
    X, y = data.load_diabetes()
    s = data.train_val_test_split(X, y, seed=0)
    assert len(s.y_train) + len(s.y_val) + len(s.y_test) == 442
    assert s.y_test.dtype == np.float64


def test_split_supports_dict_style_access():
    X, y = _labelled_indices()
    s = data.train_val_test_split(X, y)
    assert dict(s).keys() == {"X_train", "y_train", "X_val", "y_val", "X_test", "y_test"}
    assert s["X_val"] is s.X_val
    with pytest.raises(KeyError):
        s["X_bogus"]


def test_split_with_no_validation_set_gives_empty_arrays():
    X, y = _labelled_indices()
    s = data.train_val_test_split(X, y, val=0.0, test=0.25)
    assert s.X_val.shape == (0, 1) and len(s.X_train) == 150


@pytest.mark.parametrize("val, test", [(0.6, 0.5), (-0.1, 0.2), (0.2, 1.0)])
def test_split_rejects_impossible_fractions(val, test):
    X, y = _labelled_indices()
    with pytest.raises(ValueError, match="val \\+ test < 1"):
        data.train_val_test_split(X, y, val=val, test=test)


def test_split_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="X has 10 samples but y has 9"):
        data.train_val_test_split(np.zeros((10, 2)), np.zeros(9, dtype=int))


# -- standardize -----------------------------------------------------------------------------
def test_standardize_uses_training_statistics_for_every_array():
    rng = np.random.default_rng(0)
    X_train = rng.normal(3.0, 2.0, size=(500, 3))
    X_test = X_train[:10] + 1.0
    train_std, test_std = data.standardize(X_train, X_test)
    np.testing.assert_allclose(train_std.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(train_std.std(axis=0), 1.0)
    np.testing.assert_allclose(test_std, train_std[:10] + 1.0 / X_train.std(axis=0))


def test_standardize_centres_constant_features_without_dividing_by_zero():
    X = np.column_stack([np.full(5, 4.0), np.arange(5.0)])
    (X_std,) = data.standardize(X)
    assert np.all(np.isfinite(X_std))
    np.testing.assert_array_equal(X_std[:, 0], 0.0)


def test_standardize_keeps_float32_and_converts_integers():
    (X32,) = data.standardize(np.arange(8, dtype=np.float32).reshape(4, 2))
    (Xint,) = data.standardize(np.arange(8).reshape(4, 2))
    assert X32.dtype == np.float32 and Xint.dtype == np.float64


def test_standardize_rejects_a_different_feature_shape():
    with pytest.raises(ValueError, match=r"array 1 has feature shape \(3,\), expected \(2,\)"):
        data.standardize(np.zeros((4, 2)), np.zeros((4, 3)))


# -- minibatches -----------------------------------------------------------------------------
def test_minibatches_cover_every_sample_exactly_once():
    X = np.arange(103, dtype=np.float64).reshape(103, 1)
    y = np.arange(103)
    batches = list(data.minibatches(X, y, 10, rng=np.random.default_rng(0)))
    assert [len(xb) for xb, _ in batches] == [10] * 10 + [3]
    seen = np.concatenate([yb for _, yb in batches])
    np.testing.assert_array_equal(np.sort(seen), y)
    assert not np.array_equal(seen, y)  # shuffled
    for xb, yb in batches:
        np.testing.assert_array_equal(xb[:, 0], yb)  # pairs stay together


def test_minibatches_without_shuffle_keep_the_order():
    y = np.arange(7)
    batches = list(data.minibatches(y * 2.0, y, 3, shuffle=False))
    assert [b[1].tolist() for b in batches] == [[0, 1, 2], [3, 4, 5], [6]]


def test_minibatches_order_is_reproducible_and_changes_between_epochs():
    y = np.arange(50)
    order = lambda rng: np.concatenate([yb for _, yb in data.minibatches(y, y, 8, rng=rng)])
    np.testing.assert_array_equal(order(np.random.default_rng(1)), order(np.random.default_rng(1)))
    rng = np.random.default_rng(1)
    assert not np.array_equal(order(rng), order(rng))


def test_minibatches_reject_bad_arguments_at_the_call():
    with pytest.raises(ValueError, match="X has 5 samples but y has 4"):
        data.minibatches(np.zeros(5), np.zeros(4), 2)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
            data.minibatches(np.zeros(5), np.zeros(5), bad)


def test_shuffled_minibatches_require_an_explicit_generator():
    """A default seed would give every epoch the same order; the error names the fix."""
    with pytest.raises(TypeError, match=r"shuffle=True needs rng=np.random.default_rng\(seed\)"):
        data.minibatches(np.zeros(5), np.zeros(5), 2)
    with pytest.raises(TypeError, match="got rng=int"):
        data.minibatches(np.zeros(5), np.zeros(5), 2, rng=0)
    batches = list(data.minibatches(np.zeros(5), np.arange(5), 2, shuffle=False))  # no rng needed
    assert [yb.tolist() for _, yb in batches] == [[0, 1], [2, 3], [4]]
