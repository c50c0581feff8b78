"""Plots the lessons reuse: training curves, 2-D decision boundaries, digit grids.

Matplotlib only, and no backend choice or ``plt.show()`` here: Jupyter displays the returned
figure itself, and tests select the Agg backend.
"""
import math

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap

from .train import predicted_classes


def plot_history(history, ax=None):
    """Training curves from `fit`: loss, and accuracy when recorded; train solid, validation dashed.

    history: dict of per-epoch lists ("loss", optional "accuracy", "val_loss", "val_accuracy").
    ax: None (a new figure with one panel per metric), one Axes (loss only), or a sequence of
    two Axes (loss, accuracy). Returns the list of Axes drawn on, loss first.
    """
    if not history.get("loss"):
        raise ValueError("plot_history: history has no 'loss' entries (train at least one epoch)")
    metrics = ["loss"] + (["accuracy"] if history.get("accuracy") else [])
    if ax is None:
        _, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.5), squeeze=False)
        axes = list(axes[0])
    else:
        axes = list(np.atleast_1d(ax))[: len(metrics)]
    for metric, axis in zip(metrics, axes):
        for key, style, label in [(metric, "-", "train"), ("val_" + metric, "--", "validation")]:
            values = history.get(key)
            if values:
                epochs = np.arange(1, len(values) + 1)
                marker = "o" if len(values) <= 20 else None  # dots help only on short runs
                axis.plot(epochs, values, style, marker=marker, label=label)
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.legend()
    return axes


def plot_decision_boundary(predict_fn, X, y, ax=None, resolution=200, padding=0.5):
    """Colour the plane by predicted class and scatter the data on top.

    predict_fn: maps points (M, 2) to class scores (M, C), binary logits (M,) / (M, 1), or
    labels (M,) (see `backprop.train.predicted_classes`). X: (N, 2); y: (N,) integer labels.
    resolution: grid points per axis; padding: margin around the data, in data units.
    Returns the Axes (its collections: the filled contour, then the scatter).
    """
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"plot_decision_boundary: expected X of shape (N, 2), got {X.shape}")
    if y.shape != (len(X),):
        raise ValueError(f"plot_decision_boundary: expected y of shape ({len(X)},), got {y.shape}")
    low, high = X.min(axis=0) - padding, X.max(axis=0) + padding
    xx, yy = np.meshgrid(np.linspace(low[0], high[0], resolution),
                         np.linspace(low[1], high[1], resolution))
    grid = np.column_stack([xx.ravel(), yy.ravel()])
    scores = np.asarray(predict_fn(grid))
    if len(scores) != len(grid):
        raise ValueError(
            f"plot_decision_boundary: predict_fn returned {len(scores)} rows for {len(grid)} points"
        )
    classes = predicted_classes(scores).reshape(xx.shape)
    n_classes = int(max(classes.max(), y.max())) + 1
    palette = plt.get_cmap("tab10" if n_classes <= 10 else "tab20").colors
    cmap = ListedColormap(palette[:n_classes])  # the first colours: blue, orange, green, ...
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 5))
    # one colour band per class: boundaries halfway between integer class ids
    levels = np.arange(n_classes + 1) - 0.5
    ax.contourf(xx, yy, classes, levels=levels, cmap=cmap, alpha=0.3)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap=cmap, vmin=-0.5, vmax=n_classes - 0.5,
               s=15, edgecolors="k", linewidths=0.3)
    ax.set_xlim(low[0], high[0])
    ax.set_ylim(low[1], high[1])
    return ax


def plot_images(images, labels=None, predictions=None, ncols=10):
    """A grid of grey-scale images with their labels; wrong predictions titled in red.

    images: (N, H*W) with square images (e.g. (N, 64) digits), (N, H, W) or (N, 1, H, W).
    labels, predictions: optional (N,) integers (predictions may also be (N, C) scores).
    Titles read "7" (label), "p 7" (prediction) or "7 / p 1" (label / prediction).
    Returns the Figure; ``fig.axes`` holds ``rows * ncols`` Axes, the unused ones switched off.
    """
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    elif images.ndim == 2:
        side = math.isqrt(images.shape[1])
        if side * side != images.shape[1]:
            raise ValueError(
                f"plot_images: rows of length {images.shape[1]} are not square images"
            )
        images = images.reshape(-1, side, side)
    if images.ndim != 3 or len(images) == 0:
        raise ValueError(
            f"plot_images: expected images (N, H*W), (N, H, W) or (N, 1, H, W), "
            f"got {np.shape(images)}"
        )
    n = len(images)
    if predictions is not None:
        predictions = predicted_classes(predictions)
    for name, values in [("labels", labels), ("predictions", predictions)]:
        if values is not None and len(values) != n:
            raise ValueError(f"plot_images: {n} images but {len(values)} {name}")
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * 0.9, nrows * 1.1), squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i], cmap="gray_r")
        parts = [] if labels is None else [str(labels[i])]
        if predictions is not None:
            parts.append(f"p {predictions[i]}")
        wrong = labels is not None and predictions is not None and predictions[i] != labels[i]
        ax.set_title(" / ".join(parts), fontsize=8, color="red" if wrong else "black")
    return fig
