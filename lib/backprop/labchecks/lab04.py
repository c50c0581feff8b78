"""Visible checks of lab 04 (backprop, line by line, through a tanh network with a skip
connection and a stable log-sum-exp loss).

The lab gives the forward pass as thirteen atomic lines (`STEPS` below is the same network).
Every gradient the learner returns, ``dL/dv`` for an intermediate or parameter ``v``, is compared
with finite differences of the loss with ``v`` set free and every line after it recomputed
(`gradcheck.numerical_gradient`), one line at a time in reverse order, so the first wrong line is
the one named. The training step is compared with the library's layers (`Residual`, `Tanh`,
`Linear`); a wrong answer is named by comparing it with what a known mistake computes.
"""
import re

import numpy as np

from backprop import checks
from backprop import gradcheck
from backprop.labchecks import heldout
from backprop.layers import Linear, Sequential, Tanh
from backprop.losses import softmax_cross_entropy
from backprop.residual import Residual

TEST_TARGET = 0.93  # accuracy of the learner's digits network on the test split
PARAMS = ("W1", "b1", "W2", "b2", "W3", "b3")

# The lab's network_forward, one line a step: (name, line as the lab writes it, computation).
STEPS = [
    ("a1", 'a1 = X @ params["W1"] + params["b1"]', lambda v: v["X"] @ v["W1"] + v["b1"]),
    ("h1", "h1 = np.tanh(a1)", lambda v: np.tanh(v["a1"])),
    ("a2", 'a2 = h1 @ params["W2"] + params["b2"]', lambda v: v["h1"] @ v["W2"] + v["b2"]),
    ("h2", "h2 = np.tanh(a2)", lambda v: np.tanh(v["a2"])),
    ("r", "r = h1 + h2", lambda v: v["h1"] + v["h2"]),
    ("s", 's = r @ params["W3"] + params["b3"]', lambda v: v["r"] @ v["W3"] + v["b3"]),
    ("m", "m = s.max(axis=1, keepdims=True)", lambda v: v["s"].max(axis=1, keepdims=True)),
    ("shifted", "shifted = s - m", lambda v: v["s"] - v["m"]),
    ("e", "e = np.exp(shifted)", lambda v: np.exp(v["shifted"])),
    ("z", "z = e.sum(axis=1, keepdims=True)", lambda v: v["e"].sum(axis=1, keepdims=True)),
    ("lse", "lse = np.log(z)", lambda v: np.log(v["z"])),
    ("logp", "logp = shifted - lse", lambda v: v["shifted"] - v["lse"]),
    ("loss", "loss = -logp[np.arange(N), y].mean()",
     lambda v: -v["logp"][np.arange(len(v["y"])), v["y"]].mean()),
]
LINES = {name: line for name, line, _ in STEPS}
LOSS_KEYS = ["logp", "lse", "z", "e", "shifted", "m", "s"]            # loss_backward's, in order
NETWORK_KEYS = ["r", "W3", "b3", "h2", "a2", "W2", "b2", "h1", "a1", "W1", "b1"]


def forward(params, X, y, free=None, value=None):
    """Every value of the network, as a dict; with `free`, the value named `free` is `value`
    and only the lines that come after it are computed from it."""
    values = {**params, "X": X, "y": y}
    if free is not None:
        values[free] = value
    for name, _, step in STEPS:
        if name != free:
            values[name] = step(values)
    return values


def problem(N, D, H, C, seed):
    """A random problem: (params, X, y), weights at a scale where tanh bends but rarely
    saturates, no two scores of a row within 1e-3 (the max has one argmax)."""
    rng = np.random.default_rng(seed)
    while True:
        params = {"W1": rng.standard_normal((D, H)) * 1.5 / np.sqrt(D),
                  "b1": 0.3 * rng.standard_normal(H),
                  "W2": rng.standard_normal((H, H)) * 1.5 / np.sqrt(H),
                  "b2": 0.3 * rng.standard_normal(H),
                  "W3": rng.standard_normal((H, C)) * 2 / np.sqrt(H),
                  "b3": 0.3 * rng.standard_normal(C)}
        X, y = rng.standard_normal((N, D)), rng.integers(0, C, size=N)
        s = np.sort(forward(params, X, y)["s"], axis=1)
        if C == 1 or np.min(np.diff(s, axis=1)) > 1e-3:
            return params, X, y


def cache_of(values):
    """What the lab's network_forward returns as its cache: X, y and every intermediate."""
    return {k: v.copy() if isinstance(v, np.ndarray) else v for k, v in values.items()
            if k not in PARAMS and k != "loss"}


def numeric(values, name):
    """dL/d(name) by finite differences, with `name` free and the lines after it recomputed."""
    base = {k: values[k] for k in PARAMS + ("X", "y")}
    return gradcheck.numerical_gradient(
        lambda v: forward(base, base["X"], base["y"], free=name, value=v)["loss"],
        np.array(values[name], dtype=float))


def _unchanged(name, arrays, saved):
    checks.check_true(all(np.array_equal(a, s) for a, s in zip(arrays, saved)),
                      f"{name} changed one of its input arrays in place: compute new arrays "
                      "and return them.")


def _grads_dict(name, result, keys):
    checks.check_true(isinstance(result, dict),
                      f"{name} should return a dict of gradients, got {type(result).__name__}")
    missing = [k for k in keys if k not in result]
    checks.check_true(not missing, f"{name}'s dict has no key {', '.join(map(repr, missing))}: "
                      f"it should hold {', '.join(map(repr, keys))}")


def _label(key, shape):
    """"dz in lse = np.log(z), (N, D, H, C) = (5, 4, 6, 3)": the gradient's name, then the
    lines whose backward passes make it."""
    return f"d{key} in {_users(key)}, (N, D, H, C) = {shape}"


def _loss_mistakes(v, g, N):
    """{key: {hint: wrong value}}: what some mistakes compute, given the right gradients g."""
    rows = np.arange(N)
    dlogp, e, z = g["logp"], v["e"], v["z"]
    onehot = np.zeros_like(dlogp)
    onehot[rows, v["y"]] = 1.0
    twice = ("shifted is used in two lines (e = np.exp(shifted) and logp = shifted - lse): "
             "add the contributions of both")
    return {
        "logp": {"the loss is MINUS the mean of the labels' logp: check the sign": -dlogp,
                 "only the entry of each row's label enters the loss; the others get 0":
                     np.full_like(dlogp, -1.0 / N)},
        "lse": {"lse is SUBTRACTED in logp = shifted - lse: check the sign":
                    dlogp.sum(axis=1, keepdims=True),
                "lse (N, 1) is broadcast over its row in logp = shifted - lse: sum over the "
                "row (axis=1, keepdims=True)": -dlogp},
        "z": {"the derivative of log(z) is 1 / z": g["lse"] * z,
              "dz: chain rule, multiply the upstream dlse by the local derivative":
                  1 / z},
        "e": {"e is summed into z: every entry of a row gets that row's dz (a sum's "
              "derivative with respect to each term is 1)": g["z"] * e,
              "de has the shape of e, (N, C): the row's dz goes to every "
              "entry of the row": g["z"]},
        "shifted": {twice: dlogp, twice + " (you kept only the path through e)": g["e"] * e,
                    "the derivative of exp(shifted) is exp(shifted) = e itself: multiply "
                    "de by e": dlogp + g["e"]},
        "s": {"s enters shifted = s - m with a plus sign: check the sign": -g["shifted"]},
    }


def check_loss_backward(loss_backward, network_forward=None):
    """Every gradient of loss_backward against finite differences, line by line in reverse."""
    with checks.report("loss_backward"):
        for N, D, H, C, seed in [(5, 4, 6, 3, 1), (1, 3, 4, 5, 2), (8, 2, 3, 2, 3)]:
            params, X, y = problem(N, D, H, C, seed)
            values = forward(params, X, y)
            cache = cache_of(values)
            saved = {k: np.copy(v) for k, v in cache.items()}
            shape = (N, D, H, C)
            grads = checks.check_call(f"loss_backward for (N, D, H, C) = {shape}",
                                      loss_backward, cache)
            _grads_dict("loss_backward", grads, LOSS_KEYS)
            right = {key: numeric(values, key) for key in LOSS_KEYS}
            mistakes = _loss_mistakes(values, right, N)
            for key in LOSS_KEYS:
                checks.check_close(_label(key, shape), grads[key], right[key], batch_size=N,
                                   mistakes=mistakes.get(key), hint=(
                    "a gradient comes from each line that reads the value: its upstream "
                    "gradient times its local derivative, summed when several lines read it"))
            _unchanged("loss_backward", [cache[k] for k in saved], saved.values())


def _users(key):
    """The lines that read `key`, for hints."""
    return "; ".join(line for name, line, _ in STEPS
                     if name != key and _reads(line.split(" = ", 1)[1], key))


def _reads(code, key):
    return re.search(rf'(?<![\w"]){key}(?![\w"])|params\["{key}"\]', code) is not None


def _network_mistakes(v, g):
    rows_sum = {"b3": "s", "b2": "a2", "b1": "a1"}
    tanh_h2 = {"tanh's local derivative, written with its output h2 = tanh(a2), is "
               "not 1 - a2**2": g["h2"] * (1 - v["a2"] ** 2),
               "h2 * (1 - h2) is the sigmoid's derivative, not tanh's":
                   g["h2"] * v["h2"] * (1 - v["h2"]),
               "multiply dh2 by tanh's local derivative": g["h2"]}
    tanh_h1 = {"tanh's local derivative, written with its output h1 = tanh(a1), is "
               "not 1 - a1**2": g["h1"] * (1 - v["a1"] ** 2),
               "h1 * (1 - h1) is the sigmoid's derivative, not tanh's":
                   g["h1"] * v["h1"] * (1 - v["h1"]),
               "multiply dh1 by tanh's local derivative": g["h1"]}
    skip = ("h1 is used twice, in a2 = h1 @ W2 + b2 and in the skip connection r = h1 + h2: "
            "add both contributions")
    mistakes = {
        "r": {}, "h2": {}, "W3": {}, "W2": {}, "W1": {},
        "a2": tanh_h2, "a1": tanh_h1,
        "h1": {skip + " (you kept only the skip)": g["r"],
               skip + " (you kept only the path through a2)": g["h1"] - g["r"]},
    }
    inputs = {"W3": ("r", "s"), "W2": ("h1", "a2"), "W1": ("X", "a1")}
    wrong_inputs = {"W3": "h2", "W2": "a1", "W1": None}
    for W, (x, out) in inputs.items():
        if wrong_inputs[W]:
            mistakes[W][f"the input of the line {LINES[out]} is {x}, not "
                        f"{wrong_inputs[W]}"] = v[wrong_inputs[W]].T @ g[out]
    for b, out in rows_sum.items():
        mistakes[b] = {"a bias is added to every row: sum over the batch (axis=0), one entry "
                       "per unit": g[out].sum(axis=1)}
    return mistakes


def check_network_backward(network_backward):
    """Every gradient of network_backward against finite differences, line by line in reverse,
    given the right ds."""
    with checks.report("network_backward"):
        for N, D, H, C, seed in [(5, 4, 6, 3, 4), (1, 3, 4, 5, 5), (7, 2, 3, 2, 6)]:
            params, X, y = problem(N, D, H, C, seed)
            values = forward(params, X, y)
            cache = cache_of(values)
            ds = numeric(values, "s")
            saved = [np.copy(a) for a in [ds, *cache.values(), *params.values()]]
            shape = (N, D, H, C)
            grads = checks.check_call(f"network_backward for (N, D, H, C) = {shape}",
                                      network_backward, ds, cache, params)
            _grads_dict("network_backward", grads, NETWORK_KEYS)
            right = {key: numeric(values, key) for key in NETWORK_KEYS}
            mistakes = _network_mistakes(values, {**right, "s": ds})
            for key in NETWORK_KEYS:
                checks.check_close(_label(key, shape), grads[key], right[key], batch_size=N,
                                   mistakes=mistakes.get(key), hint=(
                    "a gradient comes from each line that reads the value: its upstream "
                    "gradient times its local derivative, summed when several lines read it"))
            _unchanged("network_backward", [ds, *cache.values(), *params.values()], saved)


def library_network(params):
    """The library's linear -> tanh -> Residual(linear -> tanh) -> linear network holding
    ``params`` (``W1`` (D, H), ``b1``, ``W2`` (H, H), ``b2``, ``W3`` (H, C), ``b3``)."""
    (D, H), C = np.shape(params["W1"]), np.shape(params["W3"])[1]
    rng = np.random.default_rng(0)  # the starting weights are overwritten below
    model = Sequential(Linear(D, H, rng=rng), Tanh(),
                       Residual(Sequential(Linear(H, H, rng=rng), Tanh())), Linear(H, C, rng=rng))
    model.load_state_dict({"0.W": params["W1"], "0.b": params["b1"],
                           "2.block.0.W": params["W2"], "2.block.0.b": params["b2"],
                           "3.W": params["W3"], "3.b": params["b3"]})
    return model


LIBRARY_NAMES = {"W1": "0.W", "b1": "0.b", "W2": "2.block.0.W", "b2": "2.block.0.b",
                 "W3": "3.W", "b3": "3.b"}


def _reference_step(N, D, H, C, seed):
    """A random problem; the library's loss, parameters and gradients for one step."""
    params, X, y = problem(N, D, H, C, seed)
    model = library_network(params)
    loss, dscores = softmax_cross_entropy(model.forward(X), y)
    model.backward(dscores)
    grads = {k: model.grads[v].copy() for k, v in LIBRARY_NAMES.items()}
    return X, y, loss, params, grads


def check_train_step(train_step):
    """One step against the library's model: the loss, and every parameter, updated in place."""
    with checks.report("train_step"):
        lr = 0.1
        for N, D, H, C, seed in [(6, 5, 7, 3, 7), (1, 3, 4, 2, 8)]:
            X, y, expected_loss, old, grads = _reference_step(N, D, H, C, seed)
            params = {k: v.copy() for k, v in old.items()}
            arrays = dict(params)
            shape = f"(N, D, H, C) = {(N, D, H, C)}"
            loss = checks.check_call(f"train_step for {shape}", train_step, params, X, y, lr)
            new = {k: old[k] - lr * grads[k] for k in old}
            loss_after = softmax_cross_entropy(library_network(new).forward(X), y)[0]
            checks.check_scalar(f"loss of train_step for {shape}", loss, expected_loss,
                                mistakes={"return the loss of the forward pass, computed "
                                          "before the update": loss_after})
            for k in PARAMS:
                checks.check_close(f"params['{k}'] after one step for {shape}", params[k],
                                   new[k], mistakes={
                    "did you add the gradient instead of subtracting it? Step against the "
                    "gradient": old[k] + lr * grads[k],
                    "multiply the gradient by the learning rate": old[k] - grads[k],
                    f"params['{k}'] did not change: update every array in params, in place":
                        old[k],
                    "the gradients already hold the 1/N of the mean loss: do not divide by the "
                    "batch size again": old[k] - lr * grads[k] / len(X)})
                checks.check_true(params[k] is arrays[k],
                                  f"train_step replaced params['{k}'] with a new array: update "
                                  "it in place (-=), so that everything holding the array "
                                  "sees the new values.")


def digits_splits():
    """The digits split of the lab (seed 0), standardized with the training statistics:
    ``((X_train, y_train), (X_val, y_val), (X_test, y_test))``."""
    return heldout.standardized_digits()


def network_params(params, what, inputs=64, classes=10):
    """The learner's trained parameters as float arrays, keys and shapes checked."""
    checks.check_true(isinstance(params, dict) and set(PARAMS) <= set(params),
                      f"{what} should be a dict with the keys {', '.join(PARAMS)}, got "
                      f"{type(params).__name__}"
                      + (f" with the keys {', '.join(map(str, params))}"
                         if isinstance(params, dict) else ""))
    arrays = {k: np.asarray(params[k], dtype=float) for k in PARAMS}
    hidden = arrays["W1"].shape[-1] if arrays["W1"].ndim else 0
    for key, shape in [("W1", (inputs, hidden)), ("b1", (hidden,)), ("W2", (hidden, hidden)),
                       ("b2", (hidden,)), ("W3", (hidden, classes)), ("b3", (classes,))]:
        checks.check_shape(f'{what}["{key}"]', arrays[key], shape)
    return arrays


def check_build_and_train(digits_params):
    """The learner's trained network, run through the library's layers, measured on the test
    split it never saw and on a copy with a little fixed noise."""
    with checks.report("build_and_train"):
        params = network_params(digits_params, "digits_params")
        _, _, (X_test, y_test) = digits_splits()
        noisy = heldout.noisy(X_test, heldout.visible_rng())
        accuracy, _ = heldout.check_classifier(
            "your network", library_network(params), X_test, y_test, noisy, TEST_TARGET,
            hint="is the training loss falling? Try more epochs or another learning rate, "
                 "chosen on the validation split.")
    print(f"  test accuracy {accuracy:.3f} (target {TEST_TARGET})")
