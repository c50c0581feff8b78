"""Visible checks of lab 08 (overfitting): DropConnect forward and backward, the group-lasso
penalty and its gradient, early stopping on the validation accuracy, and a regularized model
chosen on the validation split, measured on the test split against an unregularized baseline.

Lesson 08 works inverted dropout, the L2 penalty and early stopping on the validation loss;
this lab asks for their siblings. Expected values come from the course library (`Linear`,
`EarlyStopping(monitor="val_accuracy")`), from finite differences and from invariants (the
mean over many masks is the plain layer); the values of known mistakes are computed here.
"""
from backprop import checks
from backprop import gradcheck
import numpy as np

from backprop import data, losses, optim, train
from backprop.labchecks import heldout
from backprop.layers import Layer, Linear, ReLU, Sequential
from backprop.train import EarlyStopping


# -- DropConnect ------------------------------------------------------------------------------
def _masked_layer(x, W, b, mask):
    """The library's Linear layer holding the weights W * mask, run on x."""
    layer = Linear(W.shape[0], W.shape[1], rng=np.random.default_rng(0))
    layer.load_state_dict({"W": W * mask, "b": b})
    return layer.forward(x)


def _call_pair(name, dropconnect_forward, *args, **kwargs):
    result = checks.check_call(name, dropconnect_forward, *args, **kwargs)
    checks.check_tuple("dropconnect_forward", result, ["out", "mask"])
    return result


def _check_mask_shape(mask, W):
    shape = np.shape(mask)
    checks.check_true(shape == W.shape, f"mask has shape {shape}, expected {W.shape}, the shape "
                      "of W\n  Hint: DropConnect drops weights, not entries of x or of out: one "
                      "uniform number per weight, rng.random(W.shape)")


def check_dropconnect_forward(dropconnect_forward):
    with checks.report("dropconnect_forward"):
        rng = np.random.default_rng(11)
        x, W, b = rng.standard_normal((5, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
        saved = x.copy(), W.copy(), b.copy()
        for p in (0.25, 0.6):
            u = np.random.default_rng(7).random(W.shape)        # the draws the lab prescribes
            keep = u >= p
            expected_mask = keep / (1 - p)
            out, mask = _call_pair(f"dropconnect_forward(x, W, b, {p}, rng, training=True)",
                                   dropconnect_forward, x, W, b, p, np.random.default_rng(7),
                                   training=True)
            checks.check_true(all(np.array_equal(a, s) for a, s in zip((x, W, b), saved)),
                              "dropconnect_forward changed x, W or b in place: return new arrays.")
            _check_mask_shape(mask, W)
            checks.check_close(f"mask for p = {p}", mask, expected_mask, mistakes={
                "the mask holds the scale of the kept weights too, not 1: the layer's expected "
                "output must stay the plain layer's (as with the lesson's inverted dropout)":
                    keep * 1.0,
                "divide by the probability of KEEPING a weight, not by p": keep / p,
                "p is the probability of DROPPING a weight: keep where u >= p, not where u < p":
                    (u < p) / (1 - p),
                "keep where u >= p, as described: u < 1 - p keeps another (equally likely) set "
                "of weights than the tests": (u < 1 - p) / (1 - p)})
            checks.check_close(f"out for p = {p}", out, _masked_layer(x, W, b, expected_mask),
                               mistakes={
                "did you forget the bias?": _masked_layer(x, W, 0 * b, expected_mask),
                "the kept weights must be scaled in out too (as in the mask)":
                    _masked_layer(x, W, b, keep * 1.0)})
        # the invariant behind the scale: averaged over masks, the plain layer
        draws = np.random.default_rng(3)
        out, _ = _call_pair("dropconnect_forward(x, W, b, 0.5, rng)", dropconnect_forward,
                            x, W, b, 0.5, draws, training=True)
        outs = [out] + [dropconnect_forward(x, W, b, 0.5, draws, training=True)[0]
                        for _ in range(3999)]
        plain = _masked_layer(x, W, b, np.ones_like(W))
        mean = np.mean(outs, axis=0)
        ratio = float(np.sum(mean * plain) / np.sum(plain * plain))
        checks.check_scalar("the mean of out over 4000 masks (p = 0.5), relative to the plain "
                            "layer's output", ratio, 1.0, rtol=0.05, atol=0, mistakes={
            "scale the kept weights so that the expected output is the plain layer's": 0.5,
            "divide by the probability of keeping a weight, not by p": 2.0},
            hint="draw a new mask on every call, from the rng you are given")
        # evaluation mode and p = 0
        u = np.random.default_rng(7).random(W.shape)
        for p, training in ((0.4, False), (0.0, True)):
            out, mask = _call_pair(f"dropconnect_forward(x, W, b, {p}, rng, training={training})",
                                   dropconnect_forward, x, W, b, p, np.random.default_rng(7),
                                   training=training)
            _check_mask_shape(mask, W)
            what = "in evaluation mode (p = 0.4)" if not training else "for p = 0 in training mode"
            checks.check_close(f"mask {what}", mask, np.ones_like(W), mistakes={
                "in evaluation mode nothing is dropped: the mask is all ones":
                    (u >= 0.4) / 0.6,
                "the weights were already scaled during training: do not multiply by 1 - p in "
                "evaluation mode": np.full_like(W, 0.6),
                "p = 0 means: drop nothing (keep where u >= p)": np.zeros_like(W)})
            checks.check_close(f"out {what}", out, _masked_layer(x, W, b, np.ones_like(W)),
                               mistakes={"in evaluation mode the layer is the plain layer: do "
                                         "not scale": _masked_layer(x, W, b, np.full_like(W, 0.6))})


def check_dropconnect_backward(dropconnect_backward):
    with checks.report("dropconnect_backward"):
        rng = np.random.default_rng(12)
        x, W, b = rng.standard_normal((6, 4)), rng.standard_normal((4, 3)), rng.standard_normal(3)
        dout = rng.standard_normal((6, 3))
        for p in (0.3, 0.7):
            mask = (rng.random(W.shape) >= p) / (1 - p)
            saved = [a.copy() for a in (dout, x, W, mask)]
            result = checks.check_call("dropconnect_backward(dout, x, W, mask)",
                                       dropconnect_backward, dout, x, W, mask)
            checks.check_tuple("dropconnect_backward", result, ["dx", "dW", "db"])
            checks.check_true(all(np.array_equal(a, s) for a, s in zip((dout, x, W, mask), saved)),
                              "dropconnect_backward changed dout, x, W or mask in place: return "
                              "new arrays.")
            dx, dW, db = result
            numeric_dx = gradcheck.numerical_gradient(lambda x_: _masked_layer(x_, W, b, mask),
                                                      x.copy(), dout)
            numeric_dW = gradcheck.numerical_gradient(lambda W_: _masked_layer(x, W_, b, mask),
                                                      W.copy(), dout)
            numeric_db = gradcheck.numerical_gradient(lambda b_: _masked_layer(x, W, b_, mask),
                                                      b.copy(), dout)
            plain_dx = gradcheck.numerical_gradient(
                lambda x_: _masked_layer(x_, W, b, np.ones_like(W)), x.copy(), dout)
            plain_dW = gradcheck.numerical_gradient(
                lambda W_: _masked_layer(x, W_, b, np.ones_like(W)), W.copy(), dout)
            binary = mask > 0
            checks.check_shape("dW", dW, W.shape)
            checks.check_close(f"dW for p = {p}, against finite differences", dW, numeric_dW,
                               rtol=1e-5, atol=1e-7, mistakes={
                "a dropped weight gets no gradient: did you use the mask in dW?": plain_dW,
                "the mask holds the scale of the kept weights: use it itself, not (mask > 0)":
                    plain_dW * binary,
                "chain rule: out depends on W * mask, so dW is multiplied by the mask, not "
                "divided": np.divide(plain_dW, mask, out=np.zeros_like(W), where=binary)})
            checks.check_shape("dx", dx, x.shape)
            checks.check_close(f"dx for p = {p}, against finite differences", dx, numeric_dx,
                               rtol=1e-5, atol=1e-7, mistakes={
                "x meets the MASKED weights in the forward pass: dx goes back through them too":
                    plain_dx,
                "the mask holds the scale of the kept weights: use it itself, not (mask > 0)":
                    gradcheck.numerical_gradient(lambda x_: _masked_layer(x_, W, b, binary * 1.0),
                                                 x.copy(), dout)})
            checks.check_shape("db", db, b.shape)
            checks.check_close(f"db for p = {p}, against finite differences", db, numeric_db,
                               rtol=1e-5, atol=1e-7, batch_size=len(x), mistakes={
                "the bias is not masked: db does not depend on the mask": numeric_db * np.mean(mask, axis=0)})


# -- the group lasso --------------------------------------------------------------------------
def _row_lengths(W):
    return np.sqrt(np.einsum("ij,ij->i", W, W))


def check_group_lasso_penalty(group_lasso_penalty):
    with checks.report("group_lasso_penalty"):
        W = np.random.default_rng(13).standard_normal((5, 3))
        W[2] = 0.0                                  # a unit whose weights are all zero
        saved = W.copy()
        for strength in (0.1, 0.003):
            expected = strength * float(np.add.reduce(_row_lengths(W)))
            received = checks.check_call(f"group_lasso_penalty(W, {strength})",
                                         group_lasso_penalty, W, strength)
            checks.check_true(np.array_equal(W, saved), "group_lasso_penalty changed W in place.")
            checks.check_scalar(f"group_lasso_penalty(W, {strength}) for W of shape (5, 3)",
                                received, expected, mistakes={
                "a group is a ROW of W (all the weights of one input): you took the columns":
                    strength * float(np.add.reduce(_row_lengths(W.T))),
                "one length per row, then the sum of the lengths: yours is the length of the "
                "whole W": strength * float(np.sqrt(np.sum(W * W))),
                "the length of a row has a square root: yours sums squares (that is L2)":
                    strength * float(np.sum(W * W)),
                "that is the L1 penalty (absolute values of single weights), not the rows' "
                "lengths": strength * float(np.sum(np.abs(W))),
                "sum the rows' lengths, not their mean": strength * float(np.mean(_row_lengths(W))),
                "did you forget strength?": float(np.add.reduce(_row_lengths(W)))})
        received = checks.check_call("group_lasso_penalty(zeros, 0.5)", group_lasso_penalty,
                                     np.zeros((3, 4)), 0.5)
        checks.check_scalar("group_lasso_penalty(zeros (3, 4), 0.5)", received, 0.0)


def check_group_lasso_grad(group_lasso_grad):
    with checks.report("group_lasso_grad"):
        W = np.random.default_rng(14).standard_normal((4, 6))
        for strength in (0.1, 0.003):
            numeric = gradcheck.numerical_gradient(
                lambda W_: strength * float(np.add.reduce(_row_lengths(W_))), W.copy())
            lengths = _row_lengths(W)[:, None]
            mistakes = {
                "each row is divided by ITS OWN length, not by the length of the whole W":
                    strength * W / np.sqrt(np.sum(W * W)),
                "the derivative of a length is the direction of the row: divide by its length":
                    strength * W,
                "divide by the row's length, not by its square": strength * W / lengths**2,
                "sign(W) is the gradient of the L1 penalty, not of the rows' lengths":
                    strength * np.sign(W),
                "a group is a ROW of W: you divided by the columns' lengths":
                    strength * W / _row_lengths(W.T)[None, :],
                "did you forget strength?": W / lengths,
                "the sign is wrong: the penalty grows away from 0": -strength * W / lengths}
            saved = W.copy()
            grad = checks.check_call(f"group_lasso_grad(W, {strength})", group_lasso_grad, W,
                                     strength)
            checks.check_true(np.array_equal(W, saved), "group_lasso_grad changed W in place: "
                              "return a new array.")
            checks.check_shape("group_lasso_grad(W, strength)", grad, W.shape)
            checks.check_close(f"group_lasso_grad(W, {strength}) (against finite differences)",
                               grad, numeric, rtol=1e-5, atol=1e-8, mistakes=mistakes)
        W[1] = 0.0                                  # a row of zeros: no derivative there
        with np.errstate(divide="ignore", invalid="ignore"):
            grad = checks.check_call("group_lasso_grad(W with a row of zeros, 0.1)",
                                     group_lasso_grad, W, 0.1)
        grad = np.asarray(grad, dtype=float)
        checks.check_true(np.all(np.isfinite(grad)), f"group_lasso_grad gives "
                          f"{np.sum(~np.isfinite(grad))} inf or NaN entries when row 1 of W is "
                          "all zeros; that row's gradient must be finite\n  Hint: a row of length 0 has no direction: "
                          "use the (sub)gradient 0 there, as np.sign(0) == 0 does for L1, and "
                          "divide only where the length is positive")
        checks.check_close("group_lasso_grad(W, 0.1), row 1 (all zeros in W)", grad[1],
                           np.zeros(W.shape[1]))
        others = np.delete(W, 1, axis=0)
        checks.check_close("group_lasso_grad(W, 0.1), the other rows", np.delete(grad, 1, axis=0),
                           gradcheck.numerical_gradient(
                               lambda W_: 0.1 * float(np.add.reduce(_row_lengths(W_))),
                               others.copy()), rtol=1e-5, atol=1e-8)


# -- early stopping on the validation accuracy ------------------------------------------------
def library_decisions(accuracies, patience, min_delta):
    """(stop, best epoch) of the library's EarlyStopping on "val_accuracy" after each epoch
    k = 0..n (0 for the best epoch before any epoch)."""
    rule = EarlyStopping(patience=patience, min_delta=min_delta, monitor="val_accuracy",
                         restore_best=False)
    decisions = [(False, 0)]
    for epoch in range(1, len(accuracies) + 1):
        rule(epoch, {"val_accuracy": list(accuracies[:epoch])}, None)
        decisions.append((rule.epochs_without_improvement >= patience, rule.best_epoch))
    return decisions


def _decisions_if(improves, accuracies, patience, offset=0):
    """(stop, best epoch) after each prefix under a (wrong) test improves(value, best,
    previous), to recognise mistakes; offset shifts the epoch numbers."""
    decisions, best, best_at, waited, previous = [(False, 0)], None, 0, 0, None
    for epoch, value in enumerate(accuracies, start=1):
        if best is None or improves(value, best, previous):
            best, best_at, waited = value, epoch, 0
        else:
            waited += 1
        previous = value
        decisions.append((waited >= patience, best_at + offset if best_at else 0))
    return decisions


def _call_rule(early_stopping_on_accuracy, shown, k, patience, min_delta, kind):
    name = (f"early_stopping_on_accuracy({kind} of {k} accuracies, patience={patience}, "
            f"min_delta={min_delta})")
    result = checks.check_call(
        name, early_stopping_on_accuracy, shown[:k], patience, min_delta,
        hint="val_accuracies may be a NumPy array: `if not val_accuracies` only works for "
             "lists; use len(val_accuracies)")
    checks.check_true(isinstance(result, tuple) and len(result) == 2, f"{name} should return "
                      f"the pair (stop, best_epoch), got {type(result).__name__}: {result!r:.80}")
    return result


def compare_decisions(early_stopping_on_accuracy, accuracies, patience, min_delta, part,
                      mistakes=None, as_array=False):
    """Compare part 0 (stop) or 1 (best epoch) of early_stopping_on_accuracy(accuracies[:k])
    for every k = 0..n with the library's, naming known mistakes."""
    shown = np.asarray(accuracies) if as_array else list(accuracies)
    kind = "np.array" if as_array else "list"
    expected = library_decisions(accuracies, patience, min_delta)
    received = [_call_rule(early_stopping_on_accuracy, shown, k, patience, min_delta, kind)
                for k in range(len(accuracies) + 1)]
    what = ("stop", "best_epoch")[part]
    got = [r[part] for r in received]
    if part == 0:
        ok = all(isinstance(g, (bool, np.bool_)) for g in got)
        checks.check_true(ok, f"stop should be True or False, got {got!r:.80}")
    else:
        ok = all(isinstance(g, (int, np.integer)) and not isinstance(g, (bool, np.bool_))
                 for g in got)
        checks.check_true(ok, f"best_epoch should be an int (0 before any epoch), got "
                          f"{[g for g in got if not isinstance(g, (int, np.integer))][:3]!r:.80}")
    want = [e[part] for e in expected]
    wrong = [k for k in range(len(got)) if got[k] != want[k]]
    if wrong:
        k = wrong[0]
        hints = [hint for hint, decisions in (mistakes or {}).items()
                 if [d[part] for d in decisions] == got]
        epochs = f"{k} epoch" + ("" if k == 1 else "s")
        checks.check_true(False, f"{what} = {got[k]} after {epochs}, expected {want[k]}; "
                          f"{len(wrong)} of the {len(got)} prefixes are wrong\n  (accuracies "
                          f"{checks.format_values(accuracies)}, a {kind}, patience={patience}, "
                          f"min_delta={min_delta})" + "".join(f"\n  Hint: {h}" for h in hints))
    checks.check_true(True, "")


# Ties with min_delta only on values that binary floats hold exactly (eighths).
_CASES = [([0.5, 0.6, 0.6, 0.6, 0.6, 0.7], 2, 0.0, False),
          ([0.5, 0.62, 0.7, 0.69, 0.71, 0.7, 0.74, 0.73, 0.72, 0.735], 3, 0.0, False),
          ([0.25, 0.5, 0.625, 0.6875, 0.75, 0.875, 0.9, 0.91, 0.92, 0.93], 3, 0.125, False),
          ([0.25, 0.5, 0.45, 0.53, 0.5, 0.49, 0.56], 2, 0.02, True)]


def _mistakes(accuracies, patience, min_delta):
    expected = library_decisions(accuracies, patience, min_delta)
    return {
        "compare each accuracy with the BEST so far (of the latest improving epoch), not with "
        "the epoch just before it": _decisions_if(
            lambda v, best, previous: v > previous + min_delta, accuracies, patience),
        "an accuracy equal to the best is no improvement":
            _decisions_if(lambda v, best, previous: v >= best + min_delta, accuracies, patience),
        "an epoch must beat the best by more than min_delta: did you ignore min_delta, or "
        "subtract it?": _decisions_if(lambda v, best, previous: v > best, accuracies, patience),
        "accuracy must go UP to improve (the lesson's loss had to go down)":
            _decisions_if(lambda v, best, previous: v < best - min_delta, accuracies, patience),
        "best_epoch is the latest IMPROVING epoch, whose weights are kept, not simply the "
        "highest accuracy: with min_delta > 0 they differ": [
            (e[0], int(np.argmax(accuracies[:k])) + 1 if k else 0) for k, e in enumerate(expected)],
        "epochs are numbered from 1: val_accuracies[0] is epoch 1": _decisions_if(
            lambda v, best, previous: v > best + min_delta, accuracies, patience, offset=-1),
        f"you stop one epoch too early: {patience} epochs without improvement are allowed "
        "before stopping": _decisions_with_patience(accuracies, patience - 1, min_delta, expected),
        f"you stop one epoch too late: stop as soon as {patience} epochs in a row failed to "
        "improve": _decisions_with_patience(accuracies, patience + 1, min_delta, expected)}


def _decisions_with_patience(accuracies, patience, min_delta, expected):
    if patience < 1:
        return [(k > 0, e[1]) for k, e in enumerate(expected)]
    return [(stop, e[1]) for (stop, _), e in
            zip(library_decisions(accuracies, patience, min_delta), expected)]


def check_early_stopping_stop(early_stopping_on_accuracy):
    with checks.report("early_stopping_on_accuracy: when to stop"):
        result = checks.check_call("early_stopping_on_accuracy([], 3)",
                                   early_stopping_on_accuracy, [], 3)
        checks.check_true(isinstance(result, tuple) and len(result) == 2
                          and not result[0] and isinstance(result[0], (bool, np.bool_)),
                          f"early_stopping_on_accuracy([], 3) (no epoch finished yet) should "
                          f"return (False, 0), got {result!r:.80}")
        for accuracies, patience, min_delta, as_array in _CASES:
            compare_decisions(early_stopping_on_accuracy, accuracies, patience, min_delta, 0,
                              _mistakes(accuracies, patience, min_delta), as_array=as_array)


def check_early_stopping_best_epoch(early_stopping_on_accuracy):
    with checks.report("early_stopping_on_accuracy: the best epoch"):
        result = checks.check_call("early_stopping_on_accuracy([], 3)",
                                   early_stopping_on_accuracy, [], 3)
        checks.check_true(isinstance(result, tuple) and len(result) == 2 and result[1] == 0,
                          f"early_stopping_on_accuracy([], 3) should return (False, 0): best "
                          f"epoch 0 before any epoch, got {result!r:.80}")
        for accuracies, patience, min_delta, as_array in _CASES:
            compare_decisions(early_stopping_on_accuracy, accuracies, patience, min_delta, 1,
                              _mistakes(accuracies, patience, min_delta), as_array=as_array)


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
    the learner's Sequential(Linear(64, H), ReLU(), YourDropConnect(H, 10)) (DropConnect is the
    plain layer once trained, in evaluation mode)."""
    state = checks.check_call("model.state_dict()", model.state_dict,
                              hint="model should be the trained network (a Sequential)")
    shapes = {name: np.shape(value) for name, value in dict(state).items()}
    hidden = shapes.get("0.W", (0, 0))[-1]
    checks.check_true(
        hidden > 0 and shapes == {"0.W": (64, hidden), "0.b": (hidden,), "2.W": (hidden, 10),
                                  "2.b": (10,)},
        "model should be the network train_with_your_parts returns, Linear(64, H), ReLU(), "
        f"YourDropConnect(H, 10); its parameters have the shapes {shapes}")
    return heldout.library_mlp({"W1": state["0.W"], "b1": state["0.b"], "W2": state["2.W"],
                                "b2": state["2.b"]})


def _check_setting(setting):
    checks.check_true(isinstance(setting, dict) and {"p", "strength", "patience"} <= set(setting),
                      "chosen_setting should be a dict with the keys p, strength and patience, "
                      f"got {type(setting).__name__}: {setting!r:.80}")
    p, strength, patience = setting["p"], setting["strength"], setting["patience"]
    checks.check_true(np.ndim(p) == 0 and 0 <= p < 1 and np.ndim(strength) == 0
                      and strength >= 0 and data.is_positive_int(patience),
                      f"chosen_setting should hold 0 <= p < 1, strength >= 0 and an integer "
                      f"patience >= 1, got {setting!r:.120}")
    return float(p), float(strength), int(patience)


def _your_layer_is_used_and_scaled(model, p):
    """The learner's DropConnect layer in `model`: its p is the setting's, and in training mode
    its output averaged over many masks is its evaluation-mode output (the scale is right).
    The layer itself is used (it may live in another process when graded: no copy of it can be
    made) and left as it was found, but for its random generator."""
    layer = model[2]
    found_p = getattr(layer, "p", None)
    checks.check_true(np.isclose(found_p or 0.0, p),
                      f"the DropConnect layer of your model has p = {found_p}, "
                      f"expected {p}, the p of chosen_setting\n  Hint: keep the network that "
                      "train_with_your_parts returned for the chosen setting")
    training = bool(getattr(layer, "training", True))
    h = np.abs(np.random.default_rng(4).standard_normal((3, layer.params["W"].shape[0])))
    try:
        layer.p, layer.rng = 0.5, np.random.default_rng(6)
        layer.eval()
        plain = layer.forward(h) - layer.params["b"]
        layer.train()
        mean = np.mean([layer.forward(h) for _ in range(2000)], axis=0) - layer.params["b"]
    finally:
        layer.p = found_p
        layer.train() if training else layer.eval()
    ratio = float(np.sum(mean * plain) / np.sum(plain * plain))
    checks.check_scalar("your model's DropConnect layer (p = 0.5): its training-mode output, "
                        "averaged over 2000 masks, relative to its evaluation-mode output",
                        ratio, 1.0, rtol=0.05, atol=0, mistakes={
        "your dropconnect_forward does not scale the kept weights: training and evaluation "
        "disagree on average": 0.5},
        hint="the layer must be the plain layer on average (section 1.1)")


def check_build_and_train(model, setting, your_group_lasso):
    """The learner's chosen network, its weights run through the library's layers, on the test
    split and on a copy with a little fixed noise, against the unregularized baseline; and the
    learner's DropConnect layer and group-lasso regularizer, as the model used them."""
    with checks.report("build_and_train"):
        p, strength, _ = _check_setting(setting)
        checks.check_true(p > 0 and strength > 0, f"chosen_setting has p = {p:g} and strength "
                          f"= {strength:g}; both must be > 0\n  Hint: this lab combines the "
                          "three remedies: choose among settings that use DropConnect and the "
                          "group lasso")
        trained = library_model(model)
        _your_layer_is_used_and_scaled(model, p)
        W = np.random.default_rng(9).standard_normal((64, 128))
        W[:6] = 0.0
        probe = Sequential(Linear(64, 128, rng=np.random.default_rng(0)), ReLU(),
                           Linear(128, 10, rng=np.random.default_rng(0)))
        probe.params["0.W"][...] = W
        probe.zero_grad()
        penalty = checks.check_call("your_group_lasso(strength)(model)", your_group_lasso(strength),
                                    probe)
        checks.check_scalar(f"the penalty your regularizer returns (strength {strength:g})",
                            penalty, strength * float(np.add.reduce(_row_lengths(W))),
                            rtol=1e-6)
        checks.check_close(f"the gradient your regularizer adds to dW1 (strength {strength:g})",
                           probe.grads["0.W"], _group_lasso_grad(W, strength), rtol=1e-6,
                           atol=1e-9)
        _, _, X_val, y_val, X_test, y_test = noisy_digits()
        baseline = train.accuracy(train.predict(baseline_model(), X_test), y_test)
        val_accuracy = train.accuracy(train.predict(trained, X_val), y_val)
        noisy = heldout.noisy(X_test, heldout.visible_rng())
        accuracy, _ = heldout.check_classifier(
            "your model", trained, X_test, y_test, noisy, baseline + MIN_GAIN,
            note=f"The unregularized baseline scores {baseline:.3f}, the target is that + "
                 f"{MIN_GAIN}; your model's validation accuracy is {val_accuracy:.3f}.",
            hint="compare several settings on the validation split, and restore the best "
                 "epoch's weights.")
        print(f"test accuracy {accuracy:.3f} (unregularized baseline {baseline:.3f}, target "
              f"{baseline + MIN_GAIN:.3f})")


# -- the setting trained again, with the checks' own parts ------------------------------------
class _DropConnect(Layer):
    """A linear layer with DropConnect (inverted scaling), for `retrained`."""

    def __init__(self, in_features, out_features, p, rng):
        super().__init__()
        self.params = Linear(in_features, out_features, rng=rng).params
        self.p, self.rng = p, rng

    def forward(self, x):
        W = self.params["W"]
        self.mask = ((self.rng.random(W.shape) >= self.p) / (1 - self.p) if self.training
                     else np.ones_like(W))
        self.x = x
        return x @ (W * self.mask) + self.params["b"]

    def backward(self, dout):
        masked = self.params["W"] * self.mask
        self.grads = {"W": (self.x.T @ dout) * self.mask, "b": dout.sum(axis=0)}
        return dout @ masked.T


def _group_lasso_grad(W, strength):
    """The group lasso's gradient, 0 on a row of zeros (for the trained model's checks)."""
    row = _row_lengths(W)[:, None]
    return strength * np.divide(W, row, out=np.zeros_like(W), where=row > 0)


def _group_lasso(strength):
    def regularizer(model):
        W = model.params["0.W"]
        model.grads["0.W"] += _group_lasso_grad(W, strength)
        return strength * float(np.sum(_row_lengths(W)))
    return regularizer


def retrained(setting, epochs=50, seed=1):
    """The lab's 64-128-10 network trained with `setting` (a dict of p, strength and patience)
    as train_with_your_parts trains it, but with the checks' own DropConnect, group lasso and
    the library's EarlyStopping on the validation accuracy: the setting's own worth, whatever
    the learner's parts do."""
    p, strength, patience = _check_setting(setting)
    X_train, y_train, X_val, y_val, _, _ = noisy_digits()
    rng = np.random.default_rng(seed)
    model = Sequential(Linear(64, 128, rng=rng), ReLU(), _DropConnect(128, 10, p, rng))
    train.fit(model, losses.softmax_cross_entropy, optim.SGD(model, lr=0.05, momentum=0.9),
              X_train, y_train, epochs=epochs, val_data=(X_val, y_val), rng=rng,
              progress=False, regularizer=_group_lasso(strength),
              early_stopping=EarlyStopping(patience=patience, monitor="val_accuracy"))
    return model
