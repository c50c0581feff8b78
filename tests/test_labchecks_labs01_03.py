"""The visible checks of labs 01 to 03 (backprop.labchecks.lab01 .. lab03), called directly.

Each check passes on the solution's answers (run from solutions/, without the notebook) and on
the course library's own functions where the library has one, and names a typical mistake in
its message. The notebook-level guarantees (every solution cell runs: nbval on solutions/;
graded cells fail on the blank release: test_grading_pipeline.py; every catalogued mistake caught:
test_mistakes.py) are tested there.
"""
import contextlib
import io

import nbformat
import numpy as np
import pytest

from backprop import checks, functional, losses
from backprop.checks import LabCheckError
from notebooks import SOLUTIONS_DIR, nbgrader_meta


def solution_namespace(lab):
    """The names the solution notebook of `lab` defines: its given and answer cells, run in
    order (demo cells and test cells left out)."""
    nb = nbformat.read(SOLUTIONS_DIR / lab / f"{lab}.ipynb", as_version=4)
    namespace = {}
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in nb.cells:
            meta = nbgrader_meta(cell)
            if cell.cell_type == "code" and meta and not meta.get("grade"):
                exec(compile(cell.source, f"{lab}:{meta['grade_id']}", "exec"), namespace)
    return namespace


@pytest.fixture(scope="module")
def lab01():
    return checks.fresh("lab01"), solution_namespace("lab01_forward_pass")


@pytest.fixture(scope="module")
def lab02():
    return checks.fresh("lab02"), solution_namespace("lab02_losses")


@pytest.fixture(scope="module")
def lab03():
    return checks.fresh("lab03"), solution_namespace("lab03_chain_rule")


def _passes(capsys, check, *args):
    check(*args)
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("\u2713 ") and "passed" in line, line


@pytest.mark.parametrize("answer", ["sigmoid", "tanh", "relu", "dense_forward", "mlp_forward",
                                    "predict"])
def test_lab01_checks_pass_on_the_solution(lab01, answer, capsys):
    lab, ns = lab01
    _passes(capsys, getattr(lab, f"check_{answer}"), ns[answer])


def test_lab01_build_and_train_passes_on_the_solution_and_reports_the_accuracy(lab01, capsys):
    lab, ns = lab01
    lab.check_build_and_train(ns["train_digits_mlp"])
    assert "held-out test accuracy 0.9" in capsys.readouterr().out


def _untrained(X_train, y_train):
    rng = np.random.default_rng(0)
    return {"W1": rng.standard_normal((64, 32)) * 0.1, "b1": np.zeros(32),
            "W2": rng.standard_normal((32, 10)) * 0.1, "b2": np.zeros(10)}


def test_lab01_untrained_weights_miss_the_held_out_target(lab01):
    lab, _ = lab01
    with pytest.raises(LabCheckError, match="expected at least 0.93 on both"):
        lab.check_build_and_train(_untrained)


def test_lab01_renamed_classes_pass_only_when_training_uses_its_arguments(lab01):
    """The hidden test renames the classes before training: the solution learns the new
    names; a function that trains on the public digits instead of its arguments does not."""
    lab, ns = lab01
    splits, rng = lab.digits_splits(), np.random.default_rng(3)
    renaming = lab.heldout.renamed_classes(rng)
    assert not np.any(renaming == np.arange(10))
    noisy = lab.heldout.noisy(splits.X_val, rng)
    assert 0 < np.abs(noisy - splits.X_val).mean() < 0.05
    model = lab.train_and_measure(ns["train_digits_mlp"], splits.X_train,
                                  renaming[splits.y_train])
    clean, with_noise = lab.heldout.check_classifier("it", model, splits.X_val,
                                                      renaming[splits.y_val], noisy, 0.9)
    assert min(clean, with_noise) >= 0.9

    def public_digits(X_train, y_train):
        return ns["train_digits_mlp"](splits.X_train, splits.y_train)
    model = lab.train_and_measure(public_digits, splits.X_train, renaming[splits.y_train])
    with pytest.raises(LabCheckError, match="train on its arguments"):
        lab.heldout.check_classifier("it", model, splits.X_val, renaming[splits.y_val], noisy,
                                     0.9, hint="does train_digits_mlp train on its arguments?")


def test_lab01_textbook_sigmoid_is_told_to_exponentiate_only_numbers_below_zero(lab01):
    lab, _ = lab01
    with pytest.raises(LabCheckError, match="exponentiate only numbers <= 0"):
        lab.check_sigmoid(lambda x: 1 / (1 + np.exp(-x)))


def test_lab01_tanh_from_np_tanh_is_refused_and_np_tanh_is_restored(lab01):
    lab, _ = lab01
    with pytest.raises(LabCheckError, match="tanh called np.tanh"):
        lab.check_tanh(lambda x: np.tanh(x))
    assert np.tanh(0.5) == pytest.approx(0.46211715726000974)


def _huber_one_entry_at_a_time(pred, target, delta=1.0):
    """The Huber loss and its gradient written entry by entry with if/else, the way the lab's
    definition reads (an implementation independent of the solution's vectorized one)."""
    loss, grad = 0.0, np.zeros(np.shape(pred))
    for index, r in np.ndenumerate(np.asarray(pred) - np.asarray(target)):
        loss += r * r / 2 if abs(r) <= delta else delta * (abs(r) - delta / 2)
        grad[index] = r if abs(r) <= delta else delta * np.sign(r)
    return loss / grad.size, grad / grad.size


def test_lab02_huber_check_passes_on_a_one_entry_at_a_time_huber(lab02, capsys):
    lab, _ = lab02
    _passes(capsys, lab.check_huber_loss, _huber_one_entry_at_a_time)


@pytest.mark.parametrize("hint, wrong", [
    ("you forgot the 1/M of the mean",
     lambda p, t, d=1.0: (_huber_one_entry_at_a_time(p, t, d)[0],
                          _huber_one_entry_at_a_time(p, t, d)[1] * np.size(p))),
    ("use the argument delta", lambda p, t, d=1.0: _huber_one_entry_at_a_time(p, t))])
def test_lab02_huber_mistakes_are_named(lab02, hint, wrong):
    lab, _ = lab02
    with pytest.raises(LabCheckError, match=hint):
        lab.check_huber_loss(wrong)


def _smoothed_ce_by_loops(logits, labels, epsilon=0.1):
    """Label-smoothed cross-entropy and its gradient with loops over examples and classes, from
    the library's log_softmax and softmax (independent of the solution's vectorized code)."""
    logits = np.asarray(logits, dtype=float)
    N, C = logits.shape
    log_probs, probs = functional.log_softmax(logits, axis=1), functional.softmax(logits, axis=1)
    loss, grad = 0.0, np.zeros((N, C))
    for n in range(N):
        for k in range(C):
            target = epsilon / C + (1 - epsilon) * (k == labels[n])
            loss -= target * log_probs[n, k] / N
            grad[n, k] = (probs[n, k] - target) / N
    return loss, grad


def test_lab02_smoothed_ce_checks_pass_on_a_loop_implementation(lab02, capsys):
    lab, _ = lab02
    _passes(capsys, lab.check_smoothed_ce_loss, _smoothed_ce_by_loops)
    _passes(capsys, lab.check_smoothed_ce_grad, _smoothed_ce_by_loops)


def test_lab02_smoothed_ce_that_ignores_epsilon_is_named(lab02):
    lab, _ = lab02
    with pytest.raises(LabCheckError, match="you ignored epsilon"):
        lab.check_smoothed_ce_loss(lambda z, y, epsilon=0.1: losses.softmax_cross_entropy(z, y))


def test_lab02_bce_checks_pass_on_the_library_loss(lab02, capsys):
    lab, _ = lab02
    for one in [lab.check_bce_loss, lab.check_bce_grad]:
        _passes(capsys, one, losses.binary_cross_entropy_with_logits)


@pytest.mark.parametrize("check, answer", [
    ("check_huber_loss", "huber_loss"), ("check_log_softmax", "log_softmax"),
    ("check_smoothed_ce_loss", "smoothed_cross_entropy"),
    ("check_smoothed_ce_grad", "smoothed_cross_entropy"),
    ("check_bce_loss", "binary_cross_entropy_with_logits"),
    ("check_bce_grad", "binary_cross_entropy_with_logits"),
    ("check_build_and_train", "train_softmax_regression")])
def test_lab02_checks_pass_on_the_solution(lab02, check, answer, capsys):
    lab, ns = lab02
    _passes(capsys, getattr(lab, check), ns[answer])


def test_lab02_flipped_gradient_is_named(lab02):
    lab, _ = lab02

    def flipped(logits, labels, epsilon=0.1):
        loss, dlogits = _smoothed_ce_by_loops(logits, labels, epsilon)
        return loss, -dlogits
    with pytest.raises(LabCheckError, match="dlogits has the opposite sign"):
        lab.check_smoothed_ce_grad(flipped)


def test_lab02_log_softmax_over_columns_is_named(lab02):
    lab, _ = lab02
    with pytest.raises(LabCheckError, match=r"normalize each row \(axis=1\)"):
        lab.check_log_softmax(lambda z: functional.log_softmax(z, axis=0))


def test_lab02_log_softmax_check_passes_on_the_library(lab02, capsys):
    lab, _ = lab02
    _passes(capsys, lab.check_log_softmax, lambda z: functional.log_softmax(z, axis=1))


def test_lab02_log_of_the_softmax_is_told_not_to_take_log_of_a_probability(lab02):
    lab, _ = lab02
    with pytest.raises(LabCheckError, match="never take np.log of a probability"):
        lab.check_log_softmax(lambda z: np.log(functional.softmax(z, axis=1)))


@pytest.mark.parametrize("rule", ["div_backward", "pow_backward", "exp_backward",
                                  "log_backward", "sigmoid_backward", "max_backward"])
def test_lab03_rule_checks_pass_on_the_solution(lab03, rule, capsys):
    lab, ns = lab03
    _passes(capsys, getattr(lab, f"check_{rule}"), ns[rule], ns["Value"])


def test_lab03_graph_checks_pass_on_the_solution(lab03, capsys):
    lab, ns = lab03
    _passes(capsys, lab.check_topological_order, ns["topological_order"], ns["Value"])
    _passes(capsys, lab.check_backward, ns["backward"])


def test_lab03_overwriting_rule_is_told_to_accumulate(lab03):
    lab, ns = lab03

    def div_overwrites(out, a, b):
        a.grad = out.grad / b.data
        b.grad = -out.data / b.data * out.grad
    ns["div_backward"] = div_overwrites  # the Value class looks its rules up when it runs
    try:
        with pytest.raises(LabCheckError, match=r"did you use = instead of \+="):
            lab.check_div_backward(div_overwrites, ns["Value"])
    finally:
        del ns["div_backward"]
        ns.update(solution_namespace("lab03_chain_rule"))


def test_lab03_build_and_train_fails_when_every_point_gets_one_class(lab03):
    lab, ns = lab03
    with pytest.raises(LabCheckError, match="every point in one class"):
        lab.check_build_and_train(lambda X, y: (lambda point: ns["Value"](1.0)))
