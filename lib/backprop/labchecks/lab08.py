"""Visible checks of lab 08 (overfitting): inverted dropout forward and backward, the L2 penalty
and its gradient, the early-stopping rule, the best epoch, and a regularized model chosen on
the validation split, measured on the test split against an unregularized baseline.

Expected values come from the course library (`Dropout`, `l2_penalty`, `EarlyStopping`) and
from finite differences; the values of known mistakes are computed here.
"""
from backprop import checks
from backprop import gradcheck
import numpy as np

from backprop import data, losses, optim, regularization, train
from backprop.labchecks import heldout
from backprop.layers import Linear, ReLU, Sequential
from backprop.regularization import Dropout
from backprop.train import EarlyStopping


def _call_pair(name, dropout_forward, *args, **kwargs):
    result = checks.check_call(name, dropout_forward, *args, **kwargs)
    checks.check_tuple("dropout_forward", result, ["out", "mask"])
    return result


def check_dropout_forward_training(dropout_forward):
    with checks.report("dropout_forward (training)"):
        x = np.random.default_rng(1).standard_normal((4, 6))
        x_before = x.copy()
        for p in (0.2, 0.75):
            reference = Dropout(p, rng=np.random.default_rng(7))   # draws u from the same seed
            expected_out = reference.forward(x)
            expected_mask = reference.backward(np.ones_like(x))    # backward multiplies by it
            u = np.random.default_rng(7).random(x.shape)           # the same draws, for hints
            keep, keep_low = u >= p, u < p
            out, mask = _call_pair(f"dropout_forward(x, {p}, rng, training=True)",
                                   dropout_forward, x, p, np.random.default_rng(7), training=True)
            checks.check_true(np.array_equal(x, x_before), "dropout_forward changed x in place: "
                              "return a new array.")
            checks.check_close(f"out for p = {p}", out, expected_out, mistakes={
                "inverted dropout scales the kept entries so that the expected output equals x "
                "(Lesson 08, section 5): did you forget the scale?": x * keep,
                "divide by the probability of KEEPING an entry, not by p": x * keep / p,
                "p is the probability of DROPPING an entry: keep where u >= p, not where u < p":
                    x * keep_low / (1 - p),
                "p is the probability of DROPPING an entry (keep where u >= p), and the scale "
                "uses the probability of keeping": x * keep_low / p,
                "keep where u >= p, as described: u < 1 - p keeps a different (equally likely) "
                "set of entries than the tests and the library": x * (u < 1 - p) / (1 - p),
                "you scaled every entry but dropped none": x / (1 - p)})
            checks.check_close(f"mask for p = {p}", mask, expected_mask, mistakes={
                "the mask holds the scale of the kept entries too (not 1): the backward pass "
                "needs it": keep * 1.0,
                "the mask holds 0 for dropped entries (p is the probability of dropping)":
                    keep_low / (1 - p)})
        out, _ = _call_pair("dropout_forward(ones, 0.3, rng)", dropout_forward,
                            np.ones((400, 500)), 0.3, np.random.default_rng(3), training=True)
        checks.check_scalar("the fraction of dropped entries for p = 0.3", np.mean(out == 0), 0.3,
                            rtol=0, atol=0.01, mistakes={
            "p is the probability of DROPPING an entry, not of keeping it": 0.7})
        checks.check_scalar("the mean of dropout_forward(ones, p = 0.3)", np.mean(out), 1.0,
                            rtol=0, atol=0.01, mistakes={
            "scale the kept entries so that the expected output equals x": 0.7,
            "divide by the probability of keeping, not by p": 0.7 / 0.3})


def check_dropout_forward_eval(dropout_forward):
    with checks.report("dropout_forward (evaluation, p = 0)"):
        x = np.random.default_rng(2).standard_normal((3, 5))
        u = np.random.default_rng(7).random(x.shape)
        expected = Dropout(0.4, rng=np.random.default_rng(7)).eval().forward(x)  # the identity
        out, mask = _call_pair("dropout_forward(x, 0.4, rng, training=False)", dropout_forward,
                               x, 0.4, np.random.default_rng(7), training=False)
        checks.check_close("out in evaluation mode (p = 0.4)", out, expected, mistakes={
            "in evaluation mode dropout is the identity: drop nothing when training=False":
                x * (u >= 0.4) / 0.6,
            "inverted dropout already scaled during training: do not multiply by 1 - p in "
            "evaluation mode": x * 0.6,
            "in evaluation mode do not scale at all: out = x": x / 0.6})
        checks.check_close("mask in evaluation mode", mask, np.ones_like(x), mistakes={
            "in evaluation mode the mask is all ones (nothing dropped, nothing scaled)":
                (u >= 0.4) / 0.6,
            "inverted dropout already scaled during training: do not multiply by 1 - p in "
            "evaluation mode": np.full_like(x, 0.6)})
        out, mask = _call_pair("dropout_forward(x, 0.0, rng, training=True)", dropout_forward,
                               x, 0.0, np.random.default_rng(7), training=True)
        checks.check_true(np.all(np.isfinite(out)), "out for p = 0 contains inf or NaN: divide "
                          "by the probability of keeping an entry, not by p.")
        checks.check_close("out for p = 0 in training mode (nothing is dropped)", out, x,
                           mistakes={"p = 0 means: drop nothing. p is the probability of "
                                     "DROPPING an entry (keep where u >= p)": np.zeros_like(x)})
        checks.check_close("mask for p = 0 in training mode", mask, np.ones_like(x))


def check_dropout_backward(dropout_backward):
    with checks.report("dropout_backward"):
        rng = np.random.default_rng(8)
        x, dout = rng.standard_normal((5, 4)), rng.standard_normal((5, 4))
        for p in (0.2, 0.75):
            reference = Dropout(p, rng=np.random.default_rng(9))
            reference.forward(x)
            mask = reference.backward(np.ones_like(x))   # the forward mask: 0 or the scale
            numeric = gradcheck.numerical_gradient(lambda x_: x_ * mask, x.copy(), dout)
            with np.errstate(divide="ignore", invalid="ignore"):
                divided = dout / mask
            mistakes = {
                "dropped entries pass no gradient: did you use the mask?": dout,
                "the mask already holds the scale of the kept entries: use the mask itself, "
                "not by (mask > 0)": dout * (mask > 0),
                "chain rule: the upstream gradient dout must appear in dx": mask,
                "do not divide by it: dropped entries have mask 0": divided}
            dout_before = dout.copy()
            dx = checks.check_call("dropout_backward(dout, mask)", dropout_backward, dout, mask)
            checks.check_true(np.array_equal(dout, dout_before), "dropout_backward changed dout "
                              "in place: return a new array.")
            checks.check_close(f"dx for p = {p}, against finite differences", dx, numeric,
                               rtol=1e-5, atol=1e-7, mistakes=mistakes)


def _l2_reference(W, weight_decay):
    layer = Linear(W.shape[0], W.shape[1], rng=np.random.default_rng(0))
    layer.load_state_dict({"W": W, "b": np.zeros(W.shape[1])})  # the library penalises W only
    return regularization.l2_penalty(layer, weight_decay)


def check_l2_penalty(l2_penalty):
    with checks.report("l2_penalty"):
        W = np.random.default_rng(3).standard_normal((5, 3))
        for weight_decay in (0.1, 0.003):
            expected, _ = _l2_reference(W, weight_decay)
            received = checks.check_call(f"l2_penalty(W, {weight_decay})", l2_penalty, W,
                                         weight_decay)
            checks.check_scalar(f"l2_penalty(W, {weight_decay})", received, expected, mistakes={
                "the penalty has a factor 1/2 (Lesson 08, section 3)": weight_decay * np.sum(W**2),
                "the squared norm has no square root": 0.5 * weight_decay * np.linalg.norm(W),
                "square each entry, then sum (not the square of the sum)":
                    0.5 * weight_decay * np.sum(W)**2,
                "that is the L1 penalty (absolute values); L2 squares the entries":
                    0.5 * weight_decay * np.sum(np.abs(W)),
                "did you forget weight_decay?": 0.5 * np.sum(W**2),
                "sum over all entries, not the mean": 0.5 * weight_decay * np.mean(W**2)})


def check_l2_penalty_grad(l2_penalty_grad):
    with checks.report("l2_penalty_grad"):
        W = np.random.default_rng(4).standard_normal((4, 6))
        for weight_decay in (0.1, 0.003):
            numeric = gradcheck.numerical_gradient(
                lambda W_: 0.5 * weight_decay * np.sum(W_**2), W.copy())
            _, library_grads = _l2_reference(W, weight_decay)
            mistakes = {
                "the 1/2 of the penalty cancels against the factor that the derivative of a "
                "square brings: yours is twice too large": 2 * weight_decay * W,
                "did you forget weight_decay?": W,
                "yours is half the gradient: the derivative of a square brings a factor 2":
                    0.5 * weight_decay * W,
                "sign(W) belongs to the gradient of the L1 penalty": weight_decay * np.sign(W),
                "you returned the penalty of each entry, not its derivative":
                    0.5 * weight_decay * W**2,
                "the sign is wrong: the penalty grows away from 0, so its gradient points away "
                "from 0 as well": -weight_decay * W}
            W_before = W.copy()
            grad = checks.check_call(f"l2_penalty_grad(W, {weight_decay})", l2_penalty_grad, W,
                                     weight_decay)
            checks.check_true(np.array_equal(W, W_before), "l2_penalty_grad changed W in place: "
                              "return a new array.")
            checks.check_close(f"l2_penalty_grad(W, {weight_decay}) (against finite differences)",
                               grad, numeric, rtol=1e-5, atol=1e-8, mistakes=mistakes)
            checks.check_close(f"l2_penalty_grad(W, {weight_decay})", grad, library_grads["W"])


# -- early stopping ---------------------------------------------------------------------------
def library_waits(losses, patience, min_delta):
    """EarlyStopping's count of epochs without improvement after each epoch k = 0..n."""
    rule = EarlyStopping(patience=patience, min_delta=min_delta, restore_best=False)
    waits = [0]
    for epoch in range(1, len(losses) + 1):
        rule(epoch, {"val_loss": list(losses[:epoch])}, None)
        waits.append(rule.epochs_without_improvement)
    return np.array(waits)


def _waits_if(improves, losses):
    """The count of epochs without improvement under a (wrong) test improves(loss, best,
    previous), to recognise mistakes."""
    waits, best, previous = [0], None, None
    for loss in losses:
        if best is None or improves(loss, best, previous):
            best = loss
            waits.append(0)
        else:
            waits.append(waits[-1] + 1)
        previous = loss
    return np.array(waits)


def compare_decisions(should_stop, losses, patience, min_delta, expected, mistakes=None,
                    as_array=False):
    """Compare should_stop(losses[:k]) for every k = 0..n with the expected decisions."""
    shown = np.asarray(losses) if as_array else list(losses)
    kind = "np.array" if as_array else "list"
    received = [bool(checks.check_call(
        f"should_stop({kind} of {k} losses, patience={patience}, min_delta={min_delta})",
        should_stop, shown[:k], patience, min_delta,
        hint="val_losses may be a NumPy array: `if not val_losses` and `val_losses == []` only "
             "work for lists; use len(val_losses)"))
        for k in range(len(losses) + 1)]
    wrong = [k for k, decision in enumerate(received) if decision != expected[k]]
    if wrong:
        k = wrong[0]
        hints = [hint for hint, decisions in (mistakes or {}).items()
                 if list(decisions) == received]
        checks.check_true(False, f"with losses = {checks.format_values(losses)} (a {kind}): "
                          f"should_stop(losses[:{k}], patience={patience}, "
                          f"min_delta={min_delta}) returned {received[k]} but should return "
                          f"{bool(expected[k])} ({len(wrong)} of the {len(received)} prefixes "
                          "are wrong)." + "".join(f"\n  Hint: {hint}" for hint in hints))
    checks.check_true(True, "")


def check_should_stop(should_stop):
    with checks.report("should_stop"):
        received = checks.check_call("should_stop([0.5, 0.6], 1)", should_stop, [0.5, 0.6], 1)
        checks.check_true(isinstance(received, (bool, np.bool_)),
                          f"should_stop should return True or False, got {received!r}")
        try:
            received = should_stop([], 3)
        except IndexError:
            received = "an IndexError"
        checks.check_true(received is False or received is np.False_, f"should_stop([], 3) "
                          f"(no epoch finished yet) should return False, got {received!r}.")
        cases = [([1.0, 0.8, 0.7, 0.75, 0.72, 0.71, 0.69, 0.73, 0.74, 0.76], 3, 0.0, False),
                 ([1.0, 0.9, 0.86, 0.84, 0.83, 0.7, 0.69, 0.68, 0.67, 0.66], 3, 0.05, False),
                 ([0.5, 0.4, 0.4, 0.4, 0.4, 0.3], 2, 0.0, False),
                 ([0.9, 0.8, 0.85, 0.79, 0.8, 0.81, 0.77], 2, 0.02, True)]
        for losses, patience, min_delta, as_array in cases:
            waits = library_waits(losses, patience, min_delta)
            wrong_waits = {
                "compare each loss with the BEST loss so far (of the latest improving epoch), "
                "not with the loss of the epoch just before it":
                    _waits_if(lambda loss, best, previous: loss < previous - min_delta, losses),
                "a loss equal to the best is no improvement":
                    _waits_if(lambda loss, best, previous: loss <= best - min_delta, losses),
                "an epoch must beat the best by more than min_delta: did you ignore min_delta, "
                "or add it the wrong way?":
                    _waits_if(lambda loss, best, previous: loss < best, losses)}
            mistakes = {hint: counts >= patience for hint, counts in wrong_waits.items()}
            mistakes[f"you stop one epoch too early: patience = {patience} epochs without "
                     "improvement are allowed before stopping"] = waits >= patience - 1
            mistakes[f"you stop one epoch too late: stop as soon as {patience} epochs in a "
                     "row failed to improve"] = waits > patience
            compare_decisions(should_stop, losses, patience, min_delta, waits >= patience,
                            mistakes, as_array=as_array)


def check_best_epoch(best_epoch):
    with checks.report("best_epoch"):
        cases = ([0.9, 0.7, 0.5, 0.6, 0.5, 0.8], [2.0, 1.5, 1.2, 1.1], [0.4, 0.6, 0.5])
        for i, losses in enumerate(cases):
            rule = EarlyStopping(patience=100, restore_best=False)
            for epoch in range(1, len(losses) + 1):
                rule(epoch, {"val_loss": losses[:epoch]}, None)
            shown = np.array(losses) if i == 1 else losses
            received = checks.check_call(f"best_epoch({losses})", best_epoch, shown)
            checks.check_scalar(f"best_epoch({losses})", received, rule.best_epoch, mistakes={
                "epochs are numbered from 1: val_losses[0] is epoch 1 (did you return the "
                "index?)": int(np.argmin(losses)),
                "on a tie, return the EARLIEST epoch with the lowest loss":
                    len(losses) - int(np.argmin(losses[::-1])),
                "the best epoch has the LOWEST validation loss": int(np.argmax(losses)) + 1,
                "return the epoch, not the loss": min(losses)})


# -- build and train: a regularized model chosen on the validation split ----------------------
MIN_GAIN = 0.03   # test accuracy above the unregularized baseline


def noisy_digits():
    """The data of Lesson 08 and of this lab: 200 training digits, about 20 % of them with a
    wrong label, and the (correct) validation and test splits.
    Returns (X_train, y_train, X_val, y_val, X_test, y_test)."""
    X, y = data.load_digits()
    splits = data.train_val_test_split(X, y, val=0.2, test=0.3, seed=0)
    X_train, y_train = splits.X_train[:200], splits.y_train[:200].copy()
    label_rng = np.random.default_rng(5)
    wrong = label_rng.random(len(y_train)) < 0.2
    y_train[wrong] = (y_train[wrong] + label_rng.integers(1, 10, wrong.sum())) % 10
    return X_train, y_train, splits.X_val, splits.y_val, splits.X_test, splits.y_test


def baseline_model(epochs=50, seed=1):
    """The unregularized 64-128-10 network, trained with the library as the lab trains yours."""
    X_train, y_train, X_val, y_val, _, _ = noisy_digits()
    rng = np.random.default_rng(seed)
    model = Sequential(Linear(64, 128, rng=rng), ReLU(), Linear(128, 10, rng=rng))
    train.fit(model, losses.softmax_cross_entropy, optim.SGD(model, lr=0.05, momentum=0.9),
              X_train, y_train, epochs=epochs, rng=rng, progress=False)
    return model


def library_model(model):
    """The library's linear -> ReLU -> linear network holding the trained weights of `model`,
    the learner's Sequential(Linear(64, H), ReLU(), YourDropout, Linear(H, 10)) (dropout is the
    identity once trained, in evaluation mode)."""
    state = checks.check_call("model.state_dict()", model.state_dict,
                              hint="model should be the trained network (a Sequential)")
    shapes = {name: np.shape(value) for name, value in dict(state).items()}
    hidden = shapes.get("0.W", (0, 0))[-1]
    checks.check_true(
        hidden > 0 and shapes == {"0.W": (64, hidden), "0.b": (hidden,), "3.W": (hidden, 10),
                                  "3.b": (10,)},
        "model should be the network train_with_your_parts returns, Linear(64, H), ReLU(), "
        f"dropout, Linear(H, 10); its parameters have the shapes {shapes}")
    return heldout.library_mlp({"W1": state["0.W"], "b1": state["0.b"], "W2": state["3.W"],
                                "b2": state["3.b"]})


def check_build_and_train(model):
    """The learner's chosen network, its weights run through the library's layers, on the test
    split and on a copy with a little fixed noise, against the unregularized baseline."""
    with checks.report("build_and_train"):
        _, _, X_val, y_val, X_test, y_test = noisy_digits()
        trained = library_model(model)
        baseline = train.accuracy(train.predict(baseline_model(), X_test), y_test)
        val_accuracy = train.accuracy(train.predict(trained, X_val), y_val)
        noisy = heldout.noisy(X_test, heldout.visible_rng())
        accuracy, _ = heldout.check_classifier(
            "your model", trained, X_test, y_test, noisy, baseline + MIN_GAIN,
            note=f"The unregularized baseline scores {baseline:.3f}, the target is that + "
                 f"{MIN_GAIN}; your model's validation accuracy is {val_accuracy:.3f}.",
            hint="compare several strengths of dropout and L2 on the validation split, and "
                 "restore the best epoch's weights.")
        print(f"test accuracy {accuracy:.3f} (unregularized baseline {baseline:.3f}, target "
              f"{baseline + MIN_GAIN:.3f})")


def retrained(setting, epochs=50, seed=1):
    """The lab's 64-128-10 network trained with `setting` (a dict of p, weight_decay and
    patience) as train_with_your_parts trains it, but with the library's dropout, L2 penalty
    and early stopping: the setting's own worth, whatever the learner's parts do."""
    checks.check_true(isinstance(setting, dict) and {"p", "weight_decay", "patience"} <= set(setting),
                      "chosen_setting should be a dict with the keys p, weight_decay and patience, "
                      f"got {type(setting).__name__}")
    p, weight_decay, patience = setting["p"], setting["weight_decay"], setting["patience"]
    checks.check_true(np.ndim(p) == 0 and 0 <= p < 1 and np.ndim(weight_decay) == 0
                      and weight_decay >= 0 and data.is_positive_int(patience),
                      f"chosen_setting should hold 0 <= p < 1, weight_decay >= 0 and an integer "
                      f"patience >= 1, got {setting!r:.120}")
    X_train, y_train, X_val, y_val, _, _ = noisy_digits()
    rng = np.random.default_rng(seed)
    model = Sequential(Linear(64, 128, rng=rng), ReLU(), Dropout(float(p), rng),
                       Linear(128, 10, rng=rng))
    train.fit(model, losses.softmax_cross_entropy, optim.SGD(model, lr=0.05, momentum=0.9),
              X_train, y_train, epochs=epochs, val_data=(X_val, y_val), rng=rng,
              progress=False, regularizer=regularization.L2Penalty(float(weight_decay)),
              early_stopping=EarlyStopping(patience=int(patience)))
    return model
