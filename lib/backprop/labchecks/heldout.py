"""Held-out measurements for the labs' build-and-train parts that a learner's code can neither
look up nor decide.

The points of a build-and-train part go to what training produced, so the tests measure the
trained *weights*, run through the course library's own layers (never through a learner's
predict or forward function, which could look each public digit up and return its label), on
the held-out split and on a copy perturbed with noise drawn from a generator seeded at grading
time (so no answer can have stored those inputs). Where the learner's function is given the
training data, the tests also rename the classes at random before training: a model that
learned from what it was given predicts the renamed classes; one trained on anything else (or
not at all) does not.
"""
import numpy as np

from backprop import checks, data, train
from backprop.layers import Linear, ReLU, Sequential

# Standard deviation of the noise added to held-out inputs: for digit pixels (in [0, 1], in
# steps of 1/16) a third of an intensity step, for standardized features 0.02 standard
# deviations. Any noise makes every input differ from the public ones (the weights are measured
# with the library's layers, so no learner's code sees these inputs anyway); a small one keeps
# honest networks within a digit or two of their clean accuracy (lab 02's solution, 0.95 on
# 270 test digits, never fell below 253 correct in 5000 draws; the target needs 252). Noise on
# the raw pixels of standardized data would be blown up by the pixels that are almost always
# blank (std 0.002): add it after standardizing.
NOISE = 0.02


# The visible checks' noise is the same on every run (seed below), so a learner who reruns a
# check sees the same numbers and docs/mistakes.md is a function of the code; the hidden tests
# draw theirs at grading time (`grading_rng`). Neither can be looked up by the learner's code,
# which never sees these inputs: the weights are measured with the library's layers.
VISIBLE_NOISE_SEED = 2024


def visible_rng():
    """The generator of the visible checks' noise: the same draws on every run."""
    return np.random.default_rng(VISIBLE_NOISE_SEED)


def standardized_digits(seed=0):
    """The digits split by `seed` and standardized with the training split's statistics:
    ``((X_train, y_train), (X_val, y_val), (X_test, y_test))``."""
    X, y = data.load_digits()
    splits = data.train_val_test_split(X, y, seed=seed)
    X_train, X_val, X_test = data.standardize(splits.X_train, splits.X_val, splits.X_test)
    return (X_train, splits.y_train), (X_val, splits.y_val), (X_test, splits.y_test)


def grading_rng():
    """A generator seeded from the operating system's entropy: other inputs on every run."""
    return np.random.default_rng()


def noisy(X, rng, scale=NOISE):
    """A copy of the held-out inputs `X` with Gaussian noise of standard deviation `scale`."""
    X = np.asarray(X, dtype=float)
    return X + rng.normal(0.0, scale, X.shape)


def renamed_classes(rng, n_classes=10):
    """A random renaming of the classes, ``new_label = renaming[old_label]``, that moves every
    class (so a model that ignores its training labels scores near chance)."""
    while True:
        renaming = rng.permutation(n_classes)
        if not np.any(renaming == np.arange(n_classes)):
            return renaming


def mlp_params(params, what, name="params", inputs=64, classes=10):
    """The learner's trained ``{"W1", "b1", "W2", "b2"}`` as float arrays, shapes checked
    (`what` says where they came from, `name` is how messages call the dict)."""
    checks.check_true(isinstance(params, dict) and {"W1", "b1", "W2", "b2"} <= set(params),
                      f"{what} should be a dict with the keys W1, b1, W2, b2, got "
                      f"{type(params).__name__}")
    arrays = {k: np.asarray(params[k], dtype=float) for k in ("W1", "b1", "W2", "b2")}
    hidden = arrays["W1"].shape[-1] if arrays["W1"].ndim else 0
    for key, shape in [("W1", (inputs, hidden)), ("b1", (hidden,)), ("W2", (hidden, classes)),
                       ("b2", (classes,))]:
        checks.check_shape(f'{name}["{key}"]', arrays[key], shape)
    return arrays


def library_mlp(params):
    """The library's linear -> ReLU -> linear network holding the weights ``params``
    (``W1`` (D, H), ``b1`` (H,), ``W2`` (H, C), ``b2`` (C,))."""
    (D, H), C = np.shape(params["W1"]), np.shape(params["W2"])[1]
    rng = np.random.default_rng(0)  # the starting weights are overwritten below
    model = Sequential(Linear(D, H, rng=rng), ReLU(), Linear(H, C, rng=rng))
    model.load_state_dict({"0.W": params["W1"], "0.b": params["b1"],
                           "2.W": params["W2"], "2.b": params["b2"]})
    return model


def library_linear(W, b):
    """The library's linear layer holding the weights ``W`` (D, C) and ``b`` (C,)."""
    layer = Linear(*np.shape(W), rng=np.random.default_rng(0))  # weights overwritten below
    layer.load_state_dict({"W": np.asarray(W, dtype=float), "b": np.asarray(b, dtype=float)})
    return layer


def check_classifier(what, model, X, y, X_noisy, target, hint="", note=""):
    """Check that the library model `model` classifies at least `target` of the held-out
    (X, y), and of the same inputs with noise (X_noisy), correctly. Returns both accuracies.
    A failure's message adds `note` and then `hint`, each on a line of its own."""
    clean = float(train.accuracy(train.predict(model, X), y))
    noisy = float(train.accuracy(train.predict(model, X_noisy), y))
    checks.check_true(
        clean >= target and noisy >= target,
        f"held-out accuracy {clean:.3f}, with noise {noisy:.3f}; expected at least "
        f"{checks.format_number(target)} on both\n  ({what}, on {len(y)} digits it never "
        "trained on, and on the same digits with small random noise added)"
        + (f"\n  {note}" if note else "") + (f"\n  Hint: {hint}" if hint else ""))
    return clean, noisy
