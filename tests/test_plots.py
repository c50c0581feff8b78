"""backprop.plots: training curves, decision boundaries and image grids (Agg backend)."""
import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.contour import QuadContourSet  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from backprop.data import load_digits, make_spirals  # noqa: E402
from backprop.plots import plot_decision_boundary, plot_history, plot_images  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


HISTORY = {
    "loss": [1.0, 0.6, 0.4],
    "accuracy": [0.5, 0.7, 0.9],
    "val_loss": [1.1, 0.7, 0.5],
    "val_accuracy": [0.4, 0.6, 0.8],
}


# -- plot_history ----------------------------------------------------------------------------
def test_plot_history_draws_train_and_validation_for_loss_and_accuracy():
    axes = plot_history(HISTORY)
    assert len(axes) == 2
    for ax, metric in zip(axes, ["loss", "accuracy"]):
        assert ax.get_ylabel() == metric
        assert [line.get_label() for line in ax.get_lines()] == ["train", "validation"]
        np.testing.assert_array_equal(ax.get_lines()[0].get_xdata(), [1, 2, 3])
        np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), HISTORY[metric])
        np.testing.assert_array_equal(ax.get_lines()[1].get_ydata(), HISTORY["val_" + metric])


def test_plot_history_of_regression_has_a_single_loss_panel():
    axes = plot_history({"loss": [3.0, 2.0]})
    assert len(axes) == 1 and len(axes[0].get_lines()) == 1
    assert len(axes[0].figure.axes) == 1


def test_plot_history_draws_on_given_axes():
    fig, given = plt.subplots(1, 2)
    axes = plot_history(HISTORY, ax=given)
    assert axes[0] is given[0] and axes[1] is given[1]
    assert len(fig.axes) == 2 and len(given[1].get_lines()) == 2


def test_plot_history_rejects_an_empty_history():
    with pytest.raises(ValueError, match="no 'loss' entries"):
        plot_history({"loss": []})


# -- plot_decision_boundary ------------------------------------------------------------------
def test_decision_boundary_draws_one_filled_contour_and_one_scatter():
    X, y = make_spirals(n_per_class=20, rng=np.random.default_rng(0))
    received = []

    def predict_fn(points):
        received.append(points)
        scores = np.zeros((len(points), 3))
        scores[:, 1] = points[:, 0]  # class 1 right of x = 0, class 0 left of it
        return scores

    ax = plot_decision_boundary(predict_fn, X, y, resolution=50, padding=0.5)
    (points,) = received
    assert points.shape == (2500, 2)
    np.testing.assert_allclose(points.min(axis=0), X.min(axis=0) - 0.5)
    np.testing.assert_allclose(points.max(axis=0), X.max(axis=0) + 0.5)
    contour, scatter = ax.collections
    assert isinstance(contour, QuadContourSet)
    np.testing.assert_array_equal(contour.levels, [-0.5, 0.5, 1.5, 2.5])
    np.testing.assert_allclose(scatter.get_offsets(), X)
    np.testing.assert_array_equal(scatter.get_array(), y)


def test_decision_boundary_accepts_binary_logits_and_an_existing_axes():
    X = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    y = np.array([0, 1, 1])
    fig, ax = plt.subplots()
    returned = plot_decision_boundary(lambda p: p[:, 0], X, y, ax=ax, resolution=20)
    assert returned is ax and len(ax.collections) == 2 and len(fig.axes) == 1


def test_decision_boundary_rejects_non_2d_points_and_wrong_prediction_count():
    with pytest.raises(ValueError, match=r"expected X of shape \(N, 2\), got \(4, 3\)"):
        plot_decision_boundary(lambda p: p, np.zeros((4, 3)), np.zeros(4, dtype=int))
    with pytest.raises(ValueError, match="returned 1 rows for 100 points"):
        plot_decision_boundary(lambda p: np.zeros(1), np.eye(2), np.array([0, 1]), resolution=10)


# -- plot_images -----------------------------------------------------------------------------
def test_plot_images_grid_has_one_image_per_digit_and_titles():
    X, y = load_digits()
    fig = plot_images(X[:12], labels=y[:12], ncols=5)
    assert len(fig.axes) == 15  # 3 rows of 5
    assert [len(ax.images) for ax in fig.axes] == [1] * 12 + [0] * 3
    assert fig.axes[0].images[0].get_array().shape == (8, 8)
    assert [ax.get_title() for ax in fig.axes[:3]] == [str(label) for label in y[:3]]


def test_plot_images_marks_wrong_predictions_in_red():
    images, _ = load_digits(as_images=True)
    labels = np.array([0, 1, 2])
    predictions = np.array([0, 7, 2])
    fig = plot_images(images[:3], labels=labels, predictions=predictions)
    titles = [ax.title for ax in fig.axes]
    assert [t.get_text() for t in titles] == ["0 / p 0", "1 / p 7", "2 / p 2"]
    assert [to_hex(t.get_color()) for t in titles] == ["#000000", "#ff0000", "#000000"]


def test_plot_images_rejects_non_square_rows_and_label_mismatch():
    with pytest.raises(ValueError, match="rows of length 10 are not square"):
        plot_images(np.zeros((2, 10)))
    with pytest.raises(ValueError, match="2 images but 3 labels"):
        plot_images(np.zeros((2, 64)), labels=[0, 1, 2])
