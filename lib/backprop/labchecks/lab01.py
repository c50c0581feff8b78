"""Visible checks of lab 01 (the forward pass): activations, a dense layer, an MLP, predicted
labels, and a digits network trained with the library and run with the learner's forward pass.

Expected values come from the course library (`backprop.functional`, `backprop.layers`) and
from the definitions of the functions; the mistakes' wrong values are computed here, out of the
learner's sight.
"""
import importlib
import time

import numpy as np

from backprop import checks, data, functional
from backprop.labchecks import heldout
from backprop.layers import Linear, ReLU, Sequential

IN_PLACE = "{name} changed its input array in place: return a new array instead."
OVERFLOW = ("exponentiate only numbers <= 0 (np.exp(-np.abs(x)) never overflows) and write "
            "each case of the formula in terms of that number")
# The held-out target of the build-and-train part (the solution reaches 0.96).
DIGITS_TARGET = 0.93
TRAIN_SECONDS = 20.0  # far above the few tenths of a second training takes


def _strict(function, *args):
    """``(result, None)``, or ``(None, error)`` when an overflow or invalid-value warning fires."""
    with np.errstate(over="raise", invalid="raise"):
        try:
            return function(*args), None
        except FloatingPointError as err:
            return None, err


def _unchanged(name, function, x):
    """Call function(x) on a copy-protected input; check that x is left as it was."""
    before = x.copy()
    out = checks.check_call(name, function, x)
    checks.check_true(np.array_equal(x, before), IN_PLACE.format(name=name))
    return out


def check_sigmoid(sigmoid):
    """sigmoid against the library's stable sigmoid, unchanged input, no overflow."""
    with checks.report("sigmoid"):
        x = np.linspace(-6, 6, 13)
        out = _unchanged("sigmoid", sigmoid, x)
        checks.check_close("sigmoid(x)", out, functional.sigmoid(x), mistakes={
            "that is sigmoid(-x): check the sign of the exponent, or whether you swapped the "
            "two cases (which case belongs to x >= 0?)": functional.sigmoid(-x)})
        x_big = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
        out, problem = _strict(sigmoid, x_big)
        checks.check_true(problem is None, f"sigmoid({checks.format_values(x_big)}) raised "
                          f"'{problem}'.\n  Hint: {OVERFLOW}.")
        checks.check_close("sigmoid(x_big)", out, [0.0, 0.0, 0.5, 1.0, 1.0])
        grid = np.random.default_rng(11).normal(scale=30, size=(3, 4))
        checks.check_close("sigmoid(x) for x of shape (3, 4)", _strict(sigmoid, grid)[0],
                           functional.sigmoid(grid))


def check_tanh(tanh):
    """tanh against np.tanh, built without np.tanh, unchanged input, no overflow."""
    real_numpy = importlib.import_module("numpy")  # the module the learner's code calls
    with checks.report("tanh"):
        x = np.linspace(-3, 3, 13)
        calls, real_tanh = [], real_numpy.tanh
        real_numpy.tanh = lambda *args, **kwargs: calls.append(args) or real_tanh(*args, **kwargs)
        try:
            out = _unchanged("tanh", tanh, x)
        finally:
            real_numpy.tanh = real_tanh
        checks.check_true(not calls, "tanh called np.tanh: build it from np.exp, as the "
                          "definition above does.")
        checks.check_close("tanh(x)", out, np.tanh(x), mistakes={
            "that is sinh(x) = (e^x - e^-x) / 2: the definition divides by e^x + e^-x":
                np.sinh(x),
            "that is tanh(x / 2): check the exponent, e^{-|x|} is not e^{-2|x|}": np.tanh(x / 2),
            "tanh is odd, tanh(-x) = -tanh(x): negative x must give negative values":
                np.abs(np.tanh(x)),
            "that is tanh(-x): check the sign of the exponent": -np.tanh(x)})
        out, problem = _strict(tanh, np.array([-1000.0, 1000.0]))
        checks.check_true(problem is None, f"tanh([-1000, 1000]) raised '{problem}'."
                          f"\n  Hint: {OVERFLOW}.")
        checks.check_close("tanh([-1000, 1000])", out, [-1.0, 1.0])
        grid = np.random.default_rng(12).normal(scale=400, size=(2, 5))
        checks.check_close("tanh(x) for x of shape (2, 5)", _strict(tanh, grid)[0],
                           np.tanh(grid))


def check_relu(relu):
    """relu on a grid with both signs, unchanged input, other shapes."""
    with checks.report("relu"):
        x = np.array([[-2.0, -0.5, 0.0], [0.5, 3.0, -1.0]])
        out = _unchanged("relu", relu, x)
        checks.check_close("relu(x)", out, functional.relu(x), mistakes={
            "np.max(x, 0) is the largest entry of each column; use np.maximum(x, 0)":
                np.max(x, 0),
            "ReLU keeps the positive part, not the negative one": np.minimum(x, 0),
            "ReLU sets negative entries to 0; it does not flip their sign": np.abs(x)})
        x3 = np.random.default_rng(13).standard_normal((2, 3, 4))
        checks.check_close("relu(x) for x of shape (2, 3, 4)", _unchanged("relu", relu, x3),
                           functional.relu(x3))


def _layer(rng, D, M):
    layer = Linear(D, M, rng=rng)
    layer.params["b"][:] = rng.standard_normal(M)
    return layer


def check_dense_forward(dense_forward):
    """dense_forward against the library's Linear layer, on a square and a non-square case."""
    with checks.report("dense_forward"):
        rng = np.random.default_rng(1)
        for N, D, M in [(4, 3, 3), (5, 4, 3), (1, 6, 2)]:  # square first: x @ W.T runs there
            layer = _layer(rng, D, M)
            W, b = layer.params["W"], layer.params["b"]
            x = rng.standard_normal((N, D))
            wrong = {"you forgot to add the bias b": x @ W,
                     "add the bias b, do not subtract it": x @ W - b}
            if D == M:
                wrong["W has shape (D, M), so it is not transposed"] = x @ W.T + b
                wrong["add b after the product, not before it"] = (x + b) @ W
            out = checks.check_call("dense_forward(x, W, b)", dense_forward, x, W, b)
            checks.check_close(f"dense_forward(x, W, b) for x {x.shape}, W {W.shape}", out,
                               layer(x), batch_size=N, mistakes=wrong)


def _mlp(rng, D, H, C):
    """A library MLP with random biases and the same weights as a params dict."""
    reference = Sequential(Linear(D, H, rng=rng), ReLU(), Linear(H, C, rng=rng))
    for name in ("0.b", "2.b"):
        reference.params[name][:] = rng.standard_normal(reference.params[name].shape)
    p = reference.params
    return reference, {"W1": p["0.W"].copy(), "b1": p["0.b"].copy(),
                       "W2": p["2.W"].copy(), "b2": p["2.b"].copy()}


def check_mlp_forward(mlp_forward):
    """mlp_forward against the library's Sequential(Linear, ReLU, Linear)."""
    with checks.report("mlp_forward"):
        rng = np.random.default_rng(2)
        for N, D, H, C in [(6, 5, 7, 3), (1, 4, 3, 6)]:
            reference, params = _mlp(rng, D, H, C)
            saved = {k: v.copy() for k, v in params.items()}
            x = rng.standard_normal((N, D))
            out = checks.check_call("mlp_forward(x, params)", mlp_forward, x, params)
            logits = reference(x)
            pre = x @ params["W1"] + params["b1"]
            checks.check_close(f"mlp_forward(x, params) for x of shape {x.shape}", out, logits,
                               batch_size=N, mistakes={
                "the hidden layer needs a ReLU between the two dense layers":
                    pre @ params["W2"] + params["b2"],
                "no ReLU after the last layer: the logits can be negative":
                    np.maximum(logits, 0),
                "the hidden activation is ReLU, not sigmoid":
                    functional.sigmoid(pre) @ params["W2"] + params["b2"]})
            checks.check_true(all(np.array_equal(params[k], saved[k]) for k in params),
                              "mlp_forward changed params in place: leave the weights alone.")


def check_predict(predict):
    """predict returns the integer argmax of the library MLP's logits, one label per row."""
    with checks.report("predict"):
        rng = np.random.default_rng(3)
        reference, params = _mlp(rng, 4, 6, 5)
        x = rng.standard_normal((8, 4))
        labels = checks.check_call("predict(x, params)", predict, x, params)
        logits = reference(x)
        checks.check_close("predict(x, params)", labels, logits.argmax(axis=1), mistakes={
            "np.argmax without axis looks at all entries at once: one label per row":
                logits.argmax(),
            "axis=0 gives one label per class; use axis=1, one label per row (input)":
                logits.argmax(axis=0),
            "the predicted class has the LARGEST logit": logits.argmin(axis=1)})
        dtype = np.asarray(labels).dtype
        checks.check_true(np.issubdtype(dtype, np.integer),
                          f"predict should return integer labels (np.argmax does), got {dtype}.")
        one = checks.check_call("predict(x[:1], params)", predict, x[:1], params)
        checks.check_shape("predict for a batch of one", one, (1,))


def digits_splits():
    """The digits split of the lab: train / validation / test, seed 0."""
    X, y = data.load_digits()
    return data.train_val_test_split(X, y, seed=0)


def train_and_measure(train_digits_mlp, X_train, y_train):
    """Call the learner's train_digits_mlp on (copies of) the training data, in under
    TRAIN_SECONDS; returns the library's network holding the weights it returned."""
    start = time.perf_counter()
    params = checks.check_call("train_digits_mlp(X_train, y_train)", train_digits_mlp,
                               np.array(X_train), np.array(y_train))
    seconds = time.perf_counter() - start
    arrays = heldout.mlp_params(params, "train_digits_mlp's result")
    checks.check_true(seconds < TRAIN_SECONDS, f"train_digits_mlp took {seconds:.1f} s; "
                      f"keep it under {TRAIN_SECONDS:.0f} s (fewer epochs or hidden units).")
    return heldout.library_mlp(arrays)


def check_build_and_train(train_digits_mlp, target=DIGITS_TARGET):
    """Train the learner's digits MLP on the training split, then measure the weights it
    returns, run through the library's layers, on the test split (held out: training never
    sees it) and on a copy with a little random noise."""
    with checks.report("build_and_train"):
        digits = digits_splits()
        model = train_and_measure(train_digits_mlp, digits.X_train, digits.y_train)
        noisy = heldout.noisy(digits.X_test, heldout.visible_rng())
        accuracy, _ = heldout.check_classifier(
            "your trained MLP", model, digits.X_test, digits.y_test, noisy, target,
            hint="did you copy the trained weights (\"0.W\" is W1, \"2.W\" is W2), and "
                 "train long enough (more epochs, or a larger learning rate)?")
        print(f"held-out test accuracy {accuracy:.3f} (target {target:.2f})")
