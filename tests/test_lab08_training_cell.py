"""Lab 08's locked training cell says what is wrong when the learner's best_epoch is.

The cell's early-stopping callback keeps the weights of the epoch `best_epoch` names. A
best_epoch counted from 0 never names the current epoch, so no weights were kept and loading
them failed with a bare ``TypeError: 'NoneType' object is not iterable``; the callback now
stops at the first epoch with a message that names the numbering.
"""
import nbformat
import numpy as np
import pytest

from notebooks import SOLUTIONS_DIR, nbgrader_meta

NOTEBOOK = SOLUTIONS_DIR / "lab08_overfitting" / "lab08_overfitting.ipynb"


def _callback_class(best_epoch):
    """YourEarlyStopping as the lab's locked cell defines it, with this best_epoch."""
    cell = next(c for c in nbformat.read(NOTEBOOK, as_version=4).cells
                if nbgrader_meta(c).get("grade_id") == "your_early_stopping")
    namespace = {"np": np, "best_epoch": best_epoch, "should_stop": lambda losses, p: False}
    exec(cell.source.split("\n\ndef train_with_your_parts")[0], namespace)
    return namespace["YourEarlyStopping"]


class _Model:
    def state_dict(self):
        return {"W": np.ones(2)}


def test_a_best_epoch_counted_from_zero_stops_with_a_message_naming_the_numbering():
    stopper = _callback_class(lambda losses: int(np.argmin(losses)))(patience=3)
    with pytest.raises(ValueError, match=r"best_epoch returned 0 after epoch 1: it numbers the "
                                         r"epochs from 1"):
        stopper(1, {"val_loss": [0.5]}, _Model())


def test_a_best_epoch_counted_from_one_keeps_the_best_weights():
    stopper = _callback_class(lambda losses: int(np.argmin(losses)) + 1)(patience=3)
    history = {"val_loss": []}
    for epoch, loss in enumerate([0.5, 0.4, 0.45], 1):
        history["val_loss"].append(loss)
        assert stopper(epoch, history, _Model()) is False
    assert stopper.best_state is not None
