"""Visible checks of lab 02 (losses): the Huber loss, log-softmax, label-smoothed
cross-entropy, binary cross-entropy with logits, and softmax regression trained with the
learner's own loss gradient.

Every gradient is compared with a centred finite difference (an independent measurement: it
needs only loss values), and every loss with stored values, an invariant or the library's.
The wrong values of the usual mistakes are computed here, out of the learner's sight.
"""
import time

import numpy as np

from backprop import checks, functional, gradcheck, losses
from backprop.labchecks import heldout
from backprop.labchecks.lab01 import digits_splits  # the same split as lab 01

# The held-out target of the build-and-train part (the solution reaches 0.944).
DIGITS_TARGET = 0.93
TRAIN_SECONDS = 20.0  # far above the fraction of a second full-batch training takes
IN_PLACE = "{name} changed {what} in place: compute new arrays instead."


def _strict(function, *args):
    """``(result, None)``, or ``(None, error)`` when an overflow, 0/0 or log(0) warning fires."""
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        try:
            return function(*args), None
        except FloatingPointError as err:
            return None, err


def _pair(name, function, *args):
    """Call a loss with copies of its inputs kept; check it returns a pair and changes nothing."""
    before = [np.array(a, copy=True) for a in args]
    result = checks.check_call(name, function, *args)
    checks.check_true(all(np.array_equal(a, b) for a, b in zip(args, before)),
                      IN_PLACE.format(name=name, what="its input arrays"))
    checks.check_tuple(name, result, ["loss", "gradient"])
    return result


def _numeric(loss_fn, x, *rest):
    """Finite-difference gradient of the library's loss_fn(x, *rest)[0] with respect to x."""
    return gradcheck.numerical_gradient(lambda v: loss_fn(v, *rest)[0], np.array(x, copy=True))


# (shape, delta, the Huber loss of the case drawn below, the same with delta = 1): stored from
# the source notebook's answer and confirmed with a one-entry-at-a-time loop, so that the check
# never computes the loss the way an answer does.
HUBER_CASES = [((5, 3), 1.0, 0.9629515709071068, 0.9629515709071068),
               ((4,), 0.5, 0.7604348906308396, 1.3322284414634262)]


def check_huber_loss(huber_loss):
    """The loss against stored values and, where every error is small, against half the MSE;
    the gradient against finite differences of the learner's own (checked) loss; shapes (N, K)
    and (N,), the default delta and delta = 0.5."""
    with checks.report("huber_loss"):
        rng = np.random.default_rng(20)
        for shape, delta, expected, with_delta_1 in HUBER_CASES:
            pred, target = 2 * rng.standard_normal(shape), rng.standard_normal(shape)
            args = (pred, target) if delta == 1.0 else (pred, target, delta)
            loss, dpred = _pair("huber_loss", huber_loss, *args)
            diff, M, N = pred - target, pred.size, len(pred)
            small, where = np.abs(diff) <= delta, f" for pred of shape {shape}, delta={delta}"
            per_row = {} if M == N else {
                f"divide by the number of entries pred.size ({M}), not the number of rows "
                f"len(pred) ({N})": expected * M / N}
            other_delta = {} if delta == 1.0 else {
                f"use the argument delta (here {delta}), not a fixed 1.0":
                    with_delta_1}
            checks.check_scalar("loss" + where, loss, expected, mistakes={
                "you summed the entries' losses: the Huber loss is their mean": expected * M,
                "that is the mean squared error: the Huber loss is (1/2) r^2 only where "
                "|r| <= delta, and grows linearly beyond": np.mean(diff ** 2),
                "beyond |r| > delta the loss grows linearly, not as (1/2) r^2":
                    np.mean(diff ** 2) / 2,
                "the linear piece must meet (1/2) r^2 at |r| = delta: you left out its "
                "constant term": np.mean(np.where(small, diff ** 2 / 2, delta * np.abs(diff))),
                **per_row, **other_delta})
            numeric = gradcheck.numerical_gradient(
                lambda v: huber_loss(v, *args[1:])[0], np.array(pred, copy=True))
            per_row = {} if M == N else {
                f"divide by the number of entries pred.size ({M}), not the number of rows "
                f"len(pred) ({N})": numeric * M / N}
            checks.check_close("dpred" + where, dpred, numeric, mistakes={
                "you forgot the 1/M of the mean (M = pred.size entries)": numeric * M,
                "dpred has the opposite sign: a prediction above its target must get a "
                "positive gradient (so that a step against it lowers the prediction)":
                    -numeric,
                "beyond |r| > delta the loss is linear: its slope there is a constant, not r":
                    diff / M,
                "inside |r| <= delta the slope of (1/2) r^2 is r, not a constant":
                    delta * np.sign(diff) / M,
                "the 1/2 of (1/2) r^2 cancels the 2 that the derivative brings down":
                    2 * numeric, **per_row})
        pred = rng.standard_normal((3, 4))
        target = pred + rng.uniform(-0.9, 0.9, (3, 4))
        checks.check_scalar("loss for errors all within delta = 1 (half the MSE)",
                            checks.check_call("huber_loss", huber_loss, pred, target)[0],
                            losses.mse_loss(pred, target)[0] / 2)


def check_log_softmax(log_softmax):
    """log_softmax against the library's and two invariants that define it (each row differs
    from its logits by one constant, and its exponentials sum to 1); no overflow and no log(0)
    for logits 1000 apart; each row its own maximum."""
    with checks.report("log_softmax"):
        rng = np.random.default_rng(21)
        logits = 3 * rng.standard_normal((4, 4))   # square, so a wrong axis still fits
        before = logits.copy()
        log_probs = checks.check_call("log_softmax(logits)", log_softmax, logits)
        checks.check_true(np.array_equal(logits, before), IN_PLACE.format(
            name="log_softmax", what="logits (logits -= ...)"))
        shifted = logits - logits.max(axis=1, keepdims=True)
        wrong_shift = logits - logits.max(axis=1)
        row_sums = np.exp(shifted).sum(axis=1, keepdims=True)
        checks.check_close("log_softmax(logits)", log_probs,
                           functional.log_softmax(logits, axis=1), mistakes={
            "normalize each row (axis=1), not each column (axis=0)":
                shifted - np.log(np.exp(shifted).sum(axis=0, keepdims=True)),
            "normalize each row (axis=1), not each column (axis=0); the maximum to subtract "
            "is each row's too": functional.log_softmax(logits, axis=0),
            "normalize each row separately, not by the sum over the whole array":
                shifted - np.log(np.exp(shifted).sum()),
            "use keepdims=True: a row sum of shape (N,) broadcasts along the wrong axis":
                shifted - np.log(row_sums[:, 0]),
            "use keepdims=True when you subtract the row maximum: a maximum of shape (N,) "
            "broadcasts along the wrong axis": functional.log_softmax(wrong_shift, axis=1),
            "subtracting the maximum is only half of it: subtract the log of each row's sum "
            "of exponentials too": shifted,
            "log(a / b) = log a - log b: subtract the log of the row sum, not the sum itself":
                shifted - row_sums})
        wide = rng.standard_normal((3, 7))
        log_probs = checks.check_call("log_softmax(logits)", log_softmax, wide)
        checks.check_close("the row sums of exp(log_softmax(logits)) for logits (3, 7)",
                           np.sum(np.exp(log_probs), axis=1), np.ones(3))
        offsets = log_probs - wide
        checks.check_close("log_softmax(logits) - logits for logits (3, 7), which should be "
                           "one number per row", offsets, offsets[:, :1] * np.ones((1, 7)))
        big = np.array([[1000.0, 0.0, -1000.0], [-1000.0, -1000.0, -1000.0]])
        log_probs, problem = _strict(log_softmax, big)
        checks.check_true(problem is None, f"log_softmax(big logits) raised '{problem}'.\n  "
                          "Hint: subtract each row's maximum before np.exp, and never take "
                          "np.log of a probability (for logits 1000 apart it rounds to 0).")
        checks.check_close("log_softmax of rows [1000, 0, -1000] and [-1000, -1000, -1000]",
                           log_probs, [[0.0, -1000.0, -2000.0], [-np.log(3)] * 3])
        rows = np.array([[1000.0, 999.0], [-1000.0, -1001.0]])
        log_probs, problem = _strict(log_softmax, rows)
        checks.check_true(problem is None, f"log_softmax raised '{problem}' on rows [1000, 999] "
                          "and [-1000, -1001].\n  Hint: subtract each row's maximum, not the "
                          "maximum of the whole array (the second row then underflows to log 0).")
        checks.check_close("log_softmax of rows [1000, 999] and [-1000, -1001]", log_probs,
                           functional.log_softmax(rows, axis=1))


def _ce_case(rng, N=6, C=5):
    return 2 * rng.standard_normal((N, C)), rng.integers(0, C, size=N)


# The smoothed cross-entropy of the cases drawn below with seeds 22 (epsilon 0.1 and 0.25) and
# 23 (epsilon 0.1), stored from the source notebook's answer and confirmed with a loop over
# examples and classes, so that the checks never compute the loss the way an answer does.
SMOOTHED_LOSS_22 = {0.1: 2.3384137571532464, 0.25: 2.4565947726841384}
SMOOTHED_LOSS_23 = 2.6706717377825018
BIG_LOGITS = np.array([[1000.0, 0.0, -1000.0], [0.0, 1000.0, -1000.0]])
BIG_LABELS = np.array([2, 1])
# For BIG_LOGITS, BIG_LABELS and epsilon 0.1, worked by hand: softmax is one-hot at each row's
# 1000, -log p is [0, 1000, 2000] and [1000, 0, 2000], the targets 1/30 and 1/30 + 0.9.
BIG_LOSS = 1000.0
BIG_DLOGITS = np.array([[29.0, -1.0, -28.0], [-1.0, 2.0, -1.0]]) / 60


def _smoothed_targets(labels, C, epsilon):
    """The targets of the lab's definition: epsilon / C everywhere, 1 - epsilon more at the
    label (only to compute the values the usual mistakes give)."""
    return (1 - epsilon) * np.eye(C)[labels] + epsilon / C


def check_smoothed_ce_loss(smoothed_cross_entropy):
    """The loss against stored values (epsilon 0.1 and 0.25), the library's plain cross-entropy
    for epsilon 0, log C for uniform logits, and logits of +-1000."""
    with checks.report("smoothed_cross_entropy (loss)"):
        logits, labels = _ce_case(np.random.default_rng(22))
        N, C = logits.shape
        log_probs = functional.log_softmax(logits, axis=1)
        plain = losses.softmax_cross_entropy(logits, labels)[0]
        for epsilon, expected in SMOOTHED_LOSS_22.items():
            args = (logits, labels) if epsilon == 0.1 else (logits, labels, epsilon)
            loss, _ = _pair("smoothed_cross_entropy", smoothed_cross_entropy, *args)
            Q = _smoothed_targets(labels, C, epsilon)
            checks.check_scalar(f"loss for epsilon={epsilon}", loss, expected, batch_size=N,
                                mistakes={
                "the loss is the mean over the batch, not the sum: divide by N": N * expected,
                "cross-entropy is MINUS the mean log-probability (it is never negative)":
                    -expected,
                "np.mean over the (N, C) array divides by N*C: sum over the classes, then "
                "average over the N examples": expected / C,
                f"you ignored epsilon (here {epsilon}): that is the plain cross-entropy":
                    plain,
                "the true class's target is 1 - epsilon + epsilon / C, not 1 + epsilon / C":
                    -np.sum((Q + epsilon * np.eye(C)[labels]) * log_probs) / N})
        loss, _ = _pair("smoothed_cross_entropy", smoothed_cross_entropy, logits, labels, 0.0)
        checks.check_scalar("loss for epsilon=0 (the plain cross-entropy of Lesson 02)", loss,
                            plain, batch_size=N)
        loss, _ = _pair("smoothed_cross_entropy", smoothed_cross_entropy, np.zeros((3, 7)),
                        np.array([0, 6, 2]), 0.3)
        checks.check_scalar("loss for logits all 0 and 7 classes (log 7 for any epsilon)", loss,
                            np.log(7))
        result, problem = _strict(smoothed_cross_entropy, BIG_LOGITS, BIG_LABELS)
        checks.check_true(problem is None, f"smoothed_cross_entropy(big logits) raised "
                          f"'{problem}'.\n  Hint: never take np.log of a probability: use your "
                          "log_softmax (instead of np.log(softmax(z))).")
        checks.check_scalar("loss for logits [[1000, 0, -1000], [0, 1000, -1000]]",
                            result[0], BIG_LOSS)


def check_smoothed_ce_grad(smoothed_cross_entropy):
    """dlogits against a finite difference of the learner's loss (its value checked first),
    rows summing to 0, and logits of +-1000 against values worked by hand."""
    with checks.report("smoothed_cross_entropy (gradient)"):
        logits, labels = _ce_case(np.random.default_rng(23))
        N, C = logits.shape
        loss, dlogits = _pair("smoothed_cross_entropy", smoothed_cross_entropy, logits, labels)
        checks.check_scalar("the loss (the gradient is measured on it)", loss, SMOOTHED_LOSS_23,
                            hint="fix the loss first: the test above says how")
        numeric = gradcheck.numerical_gradient(
            lambda z: smoothed_cross_entropy(z, labels)[0], np.array(logits, copy=True))
        P, Y, Q = (functional.softmax(logits, axis=1), np.eye(C)[labels],
                   _smoothed_targets(labels, C, 0.1))
        checks.check_close("dlogits", dlogits, numeric, batch_size=N, mistakes={
            "you forgot the 1/N of the mean over the batch": P - Q,
            "you ignored epsilon in the gradient: subtract the smoothed targets, not the "
            "one-hot labels": (P - Y) / N,
            "you left out the targets' part of the gradient: subtract the smoothed targets":
                P / N,
            "dlogits has the opposite sign: raising the true class's logit must lower the "
            "loss, so its gradient is negative": (Q - P) / N,
            "subtract each row's targets, not 1 from every entry": (P - 1) / N,
            "divide by the batch size N only, not by N * C": (P - Q) / (N * C)})
        checks.check_close("the row sums of dlogits", dlogits.sum(axis=1), np.zeros(N),
                           atol=1e-12)
        result, problem = _strict(smoothed_cross_entropy, BIG_LOGITS, BIG_LABELS)
        checks.check_true(problem is None, f"smoothed_cross_entropy(big logits) raised "
                          f"'{problem}'.\n  Hint: use your log_softmax, which subtracts each "
                          "row's maximum before np.exp.")
        checks.check_close("dlogits for logits [[1000, 0, -1000], [0, 1000, -1000]]",
                           result[1], BIG_DLOGITS, batch_size=2)


def _bce_case(rng):
    z = 2 * rng.standard_normal((4, 3))
    return z, rng.integers(0, 2, size=(4, 3)).astype(float)


Z_BIG = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
T_BIG = np.array([1.0, 0.0, 1.0, 1.0, 0.0])


def check_bce_loss(binary_cross_entropy_with_logits):
    """The loss against the library's, for ordinary and for +-1000 logits."""
    with checks.report("binary_cross_entropy_with_logits (loss)"):
        z, t = _bce_case(np.random.default_rng(24))
        loss, _ = _pair("binary_cross_entropy_with_logits", binary_cross_entropy_with_logits,
                        z, t)
        expected = losses.binary_cross_entropy_with_logits(z, t)[0]
        s = functional.sigmoid(z)
        checks.check_scalar("loss", loss, expected, mistakes={
            "the loss is the mean over all entries, not the sum: divide by logits.size":
                expected * z.size,
            f"average over all entries (logits.size = {z.size}), not over the rows "
            f"({len(z)})": expected * z.size / len(z),
            "binary cross-entropy is never negative: check the signs": -expected,
            "you kept only the t * log(sigmoid(z)) term; the (1 - t) term counts the examples "
            "of class 0": np.mean(-t * np.log(s))})
        result, problem = _strict(binary_cross_entropy_with_logits, Z_BIG, T_BIG)
        checks.check_true(problem is None, "binary_cross_entropy_with_logits(big logits) "
                          f"raised '{problem}'.\n  Hint: use a stable form of the loss: write "
                          "each log as the log of a sum of exponentials and take the largest "
                          "exponent out (section 4 of the lab); np.log1p(x) is log(1 + x).")
        checks.check_scalar("loss for logits [-1000, -50, 0, 50, 1000]", result[0],
                            losses.binary_cross_entropy_with_logits(Z_BIG, T_BIG)[0])


def check_bce_grad(binary_cross_entropy_with_logits):
    """dlogits against a finite difference of the loss, and for +-1000 logits."""
    with checks.report("binary_cross_entropy_with_logits (gradient)"):
        z, t = _bce_case(np.random.default_rng(25))
        _, dlogits = _pair("binary_cross_entropy_with_logits",
                           binary_cross_entropy_with_logits, z, t)
        s, M = functional.sigmoid(z), z.size
        checks.check_close("dlogits", dlogits,
                           _numeric(losses.binary_cross_entropy_with_logits, z, t), mistakes={
            "you forgot the 1/M of the mean (M = logits.size entries)": s - t,
            "dlogits has the opposite sign: a logit that is too large for its target must get "
            "a positive gradient": (t - s) / M,
            "the gradient uses the probability sigmoid(z), not the logit z": (z - t) / M,
            f"divide by the number of entries logits.size ({M}), not the number of rows "
            f"({len(z)})": (s - t) / len(z),
            "that is the gradient of a squared error on sigmoid(z); for cross-entropy the "
            "sigmoid's slope cancels (Lesson 02, section 6)": 2 * (s - t) * s * (1 - s) / M})
        result, problem = _strict(binary_cross_entropy_with_logits, Z_BIG, T_BIG)
        checks.check_true(problem is None, "binary_cross_entropy_with_logits(big logits) "
                          f"raised '{problem}'.\n  Hint: use the stable sigmoid from the setup "
                          "cell.")
        checks.check_close("dlogits for logits [-1000, -50, 0, 50, 1000]", result[1],
                           losses.binary_cross_entropy_with_logits(Z_BIG, T_BIG)[1],
                           batch_size=5)


def train_and_measure(train_softmax_regression, X_train, y_train):
    """Call the learner's train_softmax_regression on (copies of) the training data, in under
    TRAIN_SECONDS; returns the library's linear layer holding the (W, b) it returned."""
    start = time.perf_counter()
    result = checks.check_call(
        "train_softmax_regression(X_train, y_train)", train_softmax_regression,
        np.array(X_train), np.array(y_train),
        hint="check the shapes of your gradients: dW must have W's shape (64, 10) and db "
             "b's shape (10,)")
    seconds = time.perf_counter() - start
    checks.check_tuple("train_softmax_regression", result, ["W", "b"])
    W, b = result
    checks.check_shape("W", W, (64, 10))
    checks.check_shape("b", b, (10,))
    checks.check_true(seconds < TRAIN_SECONDS, f"train_softmax_regression took "
                      f"{seconds:.1f} s; keep it under {TRAIN_SECONDS:.0f} s.")
    return heldout.library_linear(W, b)


def check_build_and_train(train_softmax_regression, target=DIGITS_TARGET):
    """Train the learner's softmax regression on the training split, then measure the (W, b)
    it returns, as the library's linear layer, on the test split (which training never sees)
    and on a copy with a little random noise."""
    with checks.report("build_and_train"):
        digits = digits_splits()
        model = train_and_measure(train_softmax_regression, digits.X_train, digits.y_train)
        train_loss = losses.softmax_cross_entropy(model(digits.X_train), digits.y_train)[0]
        checks.check_true(np.isfinite(train_loss) and train_loss < np.log(10), (
            f"after training, the loss on the training digits is "
            f"{checks.format_number(train_loss)}, no lower than log(10) = 2.3026, the loss of "
            "weights that know nothing.\n  Hint: check the sign of your update (a step AGAINST "
            "the gradient) and your gradients of W and b (the chain rule from dlogits, as "
            "Lesson 02 does for a linear model)."))
        noisy = heldout.noisy(digits.X_test, heldout.visible_rng())
        accuracy, _ = heldout.check_classifier(
            "your softmax regression", model, digits.X_test, digits.y_test, noisy, target,
            hint="train longer or with a larger learning rate, and check that dW sums "
                 "over the batch the way the chain rule says (shape (64, 10)).")
        print(f"held-out test accuracy {accuracy:.3f} (target {target:.2f}), training loss "
              f"{train_loss:.3f}")
