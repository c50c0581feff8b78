"""The training loop, once it has been taught: mini-batches, forward, loss, backward, step.

``fit`` records per-epoch loss (and accuracy for classification) in a `History`, shows a tqdm
progress bar (a widget in Jupyter, text in a terminal) and stops with a `DivergenceError` as
soon as the loss stops being a finite number, instead of training on NaNs. It optionally adds a
penalty's gradient (``regularizer=``, see `backprop.regularization`) and stops early
(`EarlyStopping`).
"""
from contextlib import contextmanager

import numpy as np
from tqdm.auto import tqdm

from .data import _generator, is_positive_int, minibatches


_SHORT = {"accuracy": "acc", "val_accuracy": "val_acc"}  # progress-bar labels


class DivergenceError(FloatingPointError):
    """The loss (or the model's output) became NaN or infinite during training.

    Attributes ``epoch`` and ``batch`` (both 1-based) and ``loss`` say where it happened.
    """

    def __init__(self, message, epoch=None, batch=None, loss=None):
        super().__init__(message)
        self.epoch, self.batch, self.loss = epoch, batch, loss


class History(dict):
    """Per-epoch training curves: ``{"loss": [...], "accuracy": [...], "val_loss": [...], ...}``.

    A plain dict of lists (one entry per finished epoch), so it pickles, prints and plots easily.
    With early stopping, the attributes ``best_epoch`` (1-based epoch of the best monitored
    value) and ``stopped_epoch`` (the epoch after which training stopped early, or None when
    every epoch ran) are set; both are None otherwise.
    """

    best_epoch = None
    stopped_epoch = None

    @property
    def epochs(self):
        """Number of finished epochs."""
        return len(self.get("loss", []))


def is_class_labels(y):
    """True when `y` holds integer class labels, shape (N,) or (N, 1)."""
    y = np.asarray(y)
    return y.dtype.kind in "iub" and (y.ndim == 1 or (y.ndim == 2 and y.shape[1] == 1))


def predicted_classes(scores, threshold=0.0):
    """Class predictions from model outputs.

    scores: (N, C) with C > 1 -> argmax over classes; (N,) or (N, 1) real scores -> 1 where
    the score exceeds `threshold` (0 for logits, use 0.5 for probabilities), else 0;
    (N,) integers -> already predictions, returned unchanged. Returns int64 (N,).
    """
    scores = np.asarray(scores)
    if scores.ndim == 2 and scores.shape[1] > 1:
        return scores.argmax(axis=1)
    if scores.ndim == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.ndim != 1:
        raise ValueError(
            f"predicted_classes: expected scores of shape (N, C) or (N,), got {scores.shape}"
        )
    if scores.dtype.kind in "iub":
        return scores.astype(np.int64)
    return (scores > threshold).astype(np.int64)


def accuracy(scores, labels, threshold=0.0):
    """Fraction of samples whose predicted class equals the label.

    scores: (N, C) class scores, (N,) / (N, 1) binary logits, or (N,) predicted labels (see
    `predicted_classes`); labels: (N,) or (N, 1) integers. Returns a float in [0, 1].
    """
    labels = np.asarray(labels)
    if not is_class_labels(labels):
        raise TypeError(
            f"accuracy: labels must be integer classes of shape (N,) or (N, 1), "
            f"got dtype {labels.dtype} and shape {labels.shape}"
        )
    predictions = predicted_classes(scores, threshold)
    labels = labels.reshape(-1)
    if len(predictions) != len(labels):
        raise ValueError(f"accuracy: {len(predictions)} predictions but {len(labels)} labels")
    return float(np.mean(predictions == labels))


@contextmanager
def _eval_mode(model):
    """Evaluation mode inside the block; the model's previous mode is restored afterwards."""
    was_training = getattr(model, "training", True)
    model.eval()
    try:
        yield model
    finally:
        if was_training:
            model.train()


def predict(model, X, batch_size=256):
    """Model outputs for all of `X` (N, ...), computed in evaluation mode in batches.

    Returns the concatenated outputs, e.g. (N, C) class scores. The model's mode is restored.
    """
    X = np.asarray(X)
    with _eval_mode(model):
        outputs = [model.forward(X[i:i + batch_size]) for i in range(0, len(X), batch_size)]
    return np.concatenate(outputs, axis=0)


def evaluate(model, loss_fn, X, y, batch_size=256):
    """Mean loss over (X, y) and the accuracy (None unless `y` holds integer class labels).

    The mean is over samples (each batch weighted by its size), in evaluation mode.
    Returns ``(loss, accuracy_or_None)``.
    """
    total_loss, correct = 0.0, 0
    classify = is_class_labels(y)
    with _eval_mode(model):
        for Xb, yb in minibatches(X, y, batch_size, shuffle=False):
            out = model.forward(Xb)
            loss, _ = loss_fn(out, yb)
            total_loss += float(loss) * len(Xb)
            if classify:
                correct += accuracy(out, yb) * len(Xb)
    n = len(X)
    return total_loss / n, (correct / n if classify else None)


class EarlyStopping:
    """Stop `fit` once a monitored metric has not improved for `patience` epochs in a row.

    monitor: a History key, by default "val_loss" (so `fit` needs val_data). Keys ending in
    "accuracy" must increase, every other one (losses) must decrease. min_delta: an epoch
    counts as an improvement only if it beats the best value so far by more than this.
    restore_best: at the end of `fit`, load the weights of the best epoch (a copy taken with
    ``model.state_dict()``), whether training stopped early or ran out of epochs.

    Pass it as ``fit(..., early_stopping=EarlyStopping(patience=5))``. Its state is reset at the
    start of every `fit`; afterwards ``best_epoch``, ``best_value`` and ``stopped_epoch``
    (None if every epoch ran) describe the run.
    """

    def __init__(self, patience=5, min_delta=0.0, monitor="val_loss", restore_best=True):
        if not is_positive_int(patience):
            raise ValueError(f"EarlyStopping: patience must be an integer >= 1, got {patience!r}")
        if not (np.isfinite(min_delta) and min_delta >= 0):
            raise ValueError(f"EarlyStopping: min_delta must be a number >= 0, got {min_delta!r}")
        self.patience, self.min_delta = patience, float(min_delta)
        self.monitor, self.restore_best = str(monitor), bool(restore_best)
        self.maximize = self.monitor.endswith("accuracy")
        self.reset()

    def reset(self):
        """Forget any previous run."""
        self.best_value, self.best_epoch, self.best_state = None, None, None
        self.stopped_epoch, self.epochs_without_improvement = None, 0

    def _improves(self, value):
        if self.best_value is None:
            return True
        if self.maximize:
            return value > self.best_value + self.min_delta
        return value < self.best_value - self.min_delta

    def __call__(self, epoch, history, model):
        """Record `epoch`; True when training should stop (the `on_epoch_end` signature)."""
        if self.monitor not in history:
            raise KeyError(f"EarlyStopping: history has no {self.monitor!r} "
                           f"(it has {sorted(history)}); pass val_data to fit for 'val_*' keys")
        value = history[self.monitor][-1]
        if self._improves(value):
            self.best_value, self.best_epoch = value, epoch
            self.epochs_without_improvement = 0
            if self.restore_best:
                self.best_state = model.state_dict()
            return False
        self.epochs_without_improvement += 1
        if self.epochs_without_improvement >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def restore(self, model):
        """Load the best epoch's weights into `model` (when restore_best and any were kept)."""
        if self.restore_best and self.best_state is not None:
            model.load_state_dict(self.best_state)

    def __repr__(self):
        return (f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta:g}, "
                f"monitor={self.monitor!r}, restore_best={self.restore_best})")


def _divergence(problem, epoch, batch, n_batches, optimizer, loss=None):
    lr = getattr(optimizer, "lr", None)
    current = f" (it is {lr:g})" if lr is not None else ""
    return DivergenceError(
        f"fit: {problem} at epoch {epoch}, batch {batch} of {n_batches}; training diverged: "
        f"lower the learning rate{current}",
        epoch, batch, loss,
    )


def fit(model, loss_fn, optimizer, X, y, *, epochs=10, batch_size=32, val_data=None,
        rng=None, progress=True, on_epoch_end=None, regularizer=None, early_stopping=None):
    """Train `model` with mini-batch gradient descent and return its `History`.

    model: a `Layer`; loss_fn(out, y_batch) -> (loss, dout); optimizer: an `Optimizer` on model.
    X: (N, ...) inputs; y: (N, ...) targets. Each epoch visits every sample once, in an order
    drawn from `rng`. val_data: optional ``(X_val, y_val)``, evaluated after each epoch.
    progress: show a tqdm bar over epochs with the latest loss/accuracy (False: silent).
    on_epoch_end: optional ``callable(epoch, history, model)``; returning True stops training
    (early stopping). Raises `DivergenceError` as soon as the output or loss is NaN/inf.
    regularizer: optional ``callable(model) -> penalty`` called after each backward pass; it
    adds the penalty's gradient to the model's gradients in place (e.g.
    `backprop.regularization.L2Penalty`). The "loss" curve stays the data loss, comparable with
    "val_loss"; the penalty's per-epoch mean goes to a "penalty" curve.
    early_stopping: optional `EarlyStopping`; stops when its monitored metric stops improving
    and restores the best weights (see there); sets ``history.best_epoch`` and
    ``history.stopped_epoch``.
    History keys: "loss", and "accuracy" when y holds integer labels; "penalty" with a
    regularizer; "val_loss", "val_accuracy" likewise with val_data. The model's train/eval mode
    is restored at the end.
    """
    if not is_positive_int(epochs):
        raise ValueError(f"fit: epochs must be an integer >= 1, got {epochs!r}")
    if val_data is not None and len(val_data) != 2:
        raise ValueError("fit: val_data must be a pair (X_val, y_val)")
    X, y = np.asarray(X), np.asarray(y)
    minibatches(X, y, batch_size, shuffle=False)  # validates lengths and batch_size first
    if len(X) == 0:
        raise ValueError("fit: X is empty")
    rng = _generator(rng, "fit")
    classify = is_class_labels(y)
    n_batches = -(-len(X) // batch_size)
    history = History(loss=[], **({"accuracy": []} if classify else {}))
    if regularizer is not None:
        if not callable(regularizer):
            raise TypeError(f"fit: regularizer must be a callable (model) -> penalty, "
                            f"got {regularizer!r}")
        history["penalty"] = []
    if val_data is not None:
        history["val_loss"] = []
        if is_class_labels(val_data[1]):
            history["val_accuracy"] = []
    if early_stopping is not None:
        if not isinstance(early_stopping, EarlyStopping):
            raise TypeError(f"fit: early_stopping must be an EarlyStopping, got {early_stopping!r}")
        if early_stopping.monitor not in history:
            raise ValueError(f"fit: early_stopping monitors {early_stopping.monitor!r}, which "
                             f"this run does not record (it records {list(history)}); "
                             "pass val_data=(X_val, y_val)")
        early_stopping.reset()

    was_training = getattr(model, "training", True)
    try:
        with tqdm(range(1, epochs + 1), desc="fit", unit="epoch", disable=not progress) as bar:
            for epoch in bar:
                model.train()
                total_loss, total_penalty, correct = 0.0, 0.0, 0
                for batch, (Xb, yb) in enumerate(minibatches(X, y, batch_size, rng=rng), 1):
                    out = model.forward(Xb)
                    # losses reject non-finite input, so check the output before the loss
                    if not np.all(np.isfinite(out)):
                        raise _divergence("the model's output contains NaN or inf",
                                          epoch, batch, n_batches, optimizer)
                    loss, dout = loss_fn(out, yb)
                    if not np.isfinite(loss):
                        raise _divergence(f"the loss is {loss}", epoch, batch, n_batches,
                                          optimizer, loss)
                    optimizer.zero_grad()
                    # X is data: no gradient with respect to it is needed (base.py)
                    if getattr(model, "skips_input_grad", False):
                        model.backward(dout, input_grad=False)
                    else:
                        model.backward(dout)
                    if regularizer is not None:
                        penalty = float(regularizer(model))
                        if not np.isfinite(penalty):
                            raise _divergence(f"the penalty is {penalty}", epoch, batch,
                                              n_batches, optimizer)
                        total_penalty += penalty * len(Xb)
                    optimizer.step()
                    total_loss += float(loss) * len(Xb)
                    if classify:
                        correct += accuracy(out, yb) * len(Xb)
                history["loss"].append(total_loss / len(X))
                if classify:
                    history["accuracy"].append(correct / len(X))
                if regularizer is not None:
                    history["penalty"].append(total_penalty / len(X))
                if val_data is not None:
                    val_loss, val_acc = evaluate(model, loss_fn, *val_data)
                    history["val_loss"].append(val_loss)
                    if val_acc is not None:
                        history["val_accuracy"].append(val_acc)
                bar.set_postfix(
                    {_SHORT.get(key, key): f"{values[-1]:.4f}" for key, values in history.items()},
                    refresh=False,  # tqdm redraws at its own pace; forcing it floods terminals
                )
                stop = early_stopping is not None and early_stopping(epoch, history, model)
                if on_epoch_end is not None and on_epoch_end(epoch, history, model):
                    stop = True
                if stop:
                    break
    finally:
        if not was_training:
            model.eval()
    if early_stopping is not None:
        early_stopping.restore(model)
        history.best_epoch = early_stopping.best_epoch
        history.stopped_epoch = early_stopping.stopped_epoch
    return history
