"""Lab 08's locked training cell says what is wrong when the learner's early-stopping rule is.

The cell's early-stopping callback keeps the weights of the epoch that
`early_stopping_on_accuracy` names as the best. A best epoch counted from 0 never names the
current epoch, so no weights were kept and loading them failed with a bare
``TypeError: 'NoneType' object is not iterable``; the callback now stops at the first epoch with
a message that names the numbering, and one for a rule that does not return the pair.
"""
import nbformat
import numpy as np
import pytest

from notebooks import SOLUTIONS_DIR, nbgrader_meta

NOTEBOOK = SOLUTIONS_DIR / "lab08_overfitting" / "lab08_overfitting.ipynb"


def _callback_class(rule):
    """YourEarlyStopping as the lab's locked cell defines it, with this early-stopping rule."""
    cell = next(c for c in nbformat.read(NOTEBOOK, as_version=4).cells
                if nbgrader_meta(c).get("grade_id") == "your_early_stopping")
    namespace = {"np": np, "early_stopping_on_accuracy": rule}
    exec(cell.source.split("\n\ndef train_with_your_parts")[0], namespace)
    return namespace["YourEarlyStopping"]


class _Model:
    def state_dict(self):
        return {"W": np.ones(2)}


def _best_from(start):
    """A rule that never stops and names the best accuracy's epoch, numbered from `start`."""
    return lambda accuracies, patience, min_delta=0.0: (False, int(np.argmax(accuracies)) + start)


def test_a_best_epoch_counted_from_zero_stops_with_a_message_naming_the_numbering():
    stopper = _callback_class(_best_from(0))(patience=3)
    with pytest.raises(ValueError, match=r"returned best_epoch 0 after epoch 1: it numbers the "
                                         r"epochs from 1"):
        stopper(1, {"val_accuracy": [0.5]}, _Model())


def test_a_rule_that_returns_only_the_decision_is_told_to_return_the_pair():
    stopper = _callback_class(lambda accuracies, patience, min_delta=0.0: False)(patience=3)
    with pytest.raises(TypeError, match=r"returned False after epoch 1: it must return the pair "
                                        r"\(stop, best_epoch\)"):
        stopper(1, {"val_accuracy": [0.5]}, _Model())


def test_a_best_epoch_counted_from_one_keeps_the_best_weights_and_passes_the_decision_on():
    stopper = _callback_class(_best_from(1))(patience=3)
    history = {"val_accuracy": []}
    for epoch, accuracy in enumerate([0.5, 0.6, 0.55], 1):
        history["val_accuracy"].append(accuracy)
        assert stopper(epoch, history, _Model()) is False
    assert stopper.best_state is not None
