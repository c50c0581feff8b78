"""Visible checks of lab 05 (optimizers: momentum and Adam).

Expected values come from the course library's optimizers (`backprop.optim.SGD` and `Adam`),
driven one step at a time on a one-parameter model from a given state; a wrong answer is named
by comparing it with what a known mistake computes.
"""
import numpy as np

from backprop import checks
from backprop.labchecks import heldout
from backprop.labchecks.lab04 import digits_splits  # the same split and standardization
from backprop.optim import SGD, Adam

TEST_TARGET = 0.92  # test accuracy of each optimizer's softmax regression after the budget
EPOCH_BUDGET = 2


class _Point:
    """The smallest model the library's optimizers drive: one parameter "w"."""

    def __init__(self, w0):
        self.params = {"w": np.array(w0, dtype=float)}
        self.grads = {"w": np.zeros_like(self.params["w"])}

    def named_parameters(self):
        yield "w", self.params["w"], self.grads["w"]


def _library_step(optimizer_class, w, dw, state, **options):
    """One step of a backprop.optim optimizer from weights w and buffers `state`:
    (w_new, the new buffers)."""
    point = _Point(w)
    optimizer = optimizer_class(point, **options)
    optimizer.state["w"] = {k: np.array(v, dtype=float) if np.ndim(v) else v
                            for k, v in state.items()}
    point.grads["w"][:] = dw
    optimizer.step()
    return point.params["w"], optimizer.state["w"]


def _unchanged(name, arrays, saved):
    checks.check_true(all(np.array_equal(a, s) for a, s in zip(arrays, saved)),
                      f"{name} changed an input array in place (w -= ..., v *= ...): compute "
                      "new arrays and return them.")


def _pair(name, result, size):
    checks.check_true(isinstance(result, (tuple, list)) and len(result) == size,
                      f"{name} should return a tuple of {size} arrays, got "
                      f"{type(result).__name__}")
    return result


def check_sgd_momentum_update(sgd_momentum_update):
    """One step from a non-zero velocity against backprop.optim.SGD, then two from zero."""
    with checks.report("sgd_momentum_update"):
        rng = np.random.default_rng(5)
        for (lr, momentum), shape in [((0.1, 0.9), (4, 2)), ((0.05, 0.5), (3,))]:
            w, dw, v = rng.standard_normal((3, *shape))
            saved = [w.copy(), dw.copy(), v.copy()]
            name = f"sgd_momentum_update(w, dw, v, lr={lr}, momentum={momentum})"
            returned = checks.check_call(name, sgd_momentum_update, w, dw, v, lr, momentum)
            w_new, v_new = _pair(name, returned, 2)
            _unchanged("sgd_momentum_update", (w, dw, v), saved)
            expected_w, state = _library_step(SGD, w, dw, {"velocity": v}, lr=lr,
                                              momentum=momentum)
            expected_v = state["velocity"]
            checks.check_close(f"v_new of {name}", v_new, expected_v, mistakes={
                "the velocity adds up raw gradients; lr comes in the step":
                    momentum * v + lr * dw,
                "that is CS231n's form (velocity -= lr * dw); this lab uses the library's form, "
                "where the velocity adds up the gradients": momentum * v - lr * dw,
                "that is an exponential moving average (Adam's m); momentum adds the whole "
                "gradient": momentum * v + (1 - momentum) * dw,
                "the old velocity is multiplied by momentum": v + dw,
                "(w_new, v_new) in this order: you returned w_new where v_new belongs":
                    expected_w})
            checks.check_close(f"w_new of {name}", w_new, expected_w, mistakes={
                "wrong sign: step against the velocity": w + lr * expected_v,
                "move along the NEW velocity v_new, not the old v": w - lr * v,
                "the step ignores the velocity: plain gradient descent": w - lr * dw,
                "lr multiplies the whole velocity, not only the gradient":
                    w - momentum * v - lr * dw,
                "that is CS231n's form; here w moves by -lr times the new velocity":
                    w + momentum * v - lr * dw,
                "multiply the step by the learning rate lr": w - expected_v})


def check_adam_moments(adam_update):
    """m_new and v_new of one step from non-zero moments, against backprop.optim.Adam."""
    with checks.report("adam_update (moments)"):
        rng = np.random.default_rng(6)
        w, dw, m = rng.standard_normal((3, 3, 2))
        v = rng.uniform(0.1, 1.0, (3, 2))  # a running mean of squares is never negative
        t, lr, beta1, beta2, eps = 3, 0.01, 0.8, 0.9, 1e-8
        saved = [w.copy(), dw.copy(), m.copy(), v.copy()]
        name = f"adam_update(w, dw, m, v, t={t}, lr={lr}, beta1={beta1}, beta2={beta2})"
        returned = checks.check_call(name, adam_update, w, dw, m, v, t, lr, beta1, beta2, eps)
        result = _pair(name, returned, 3)
        _unchanged("adam_update", (w, dw, m, v), saved)
        _, state = _library_step(Adam, w, dw, {"t": t - 1, "m": m, "v": v}, lr=lr,
                                 betas=(beta1, beta2), eps=eps)
        expected_m, expected_v = state["m"], state["v"]
        _, m_new, v_new = result
        checks.check_close(f"m_new of {name}", m_new, expected_m, mistakes={
            "m is a moving average: the new gradient comes in with weight (1 - beta1)":
                beta1 * m + dw,
            "beta1 belongs to m and beta2 to v": beta2 * m + (1 - beta2) * dw,
            "return m_new WITHOUT bias correction; the corrected m is only used for the step":
                expected_m / (1 - beta1**t),
            "(w_new, m_new, v_new) in this order: you returned v_new where m_new belongs":
                expected_v})
        checks.check_close(f"v_new of {name}", v_new, expected_v, mistakes={
            "v averages the SQUARED gradient": beta2 * v + (1 - beta2) * dw,
            "v is a moving average: the new squared gradient comes in with weight (1 - beta2)":
                beta2 * v + dw**2,
            "beta1 belongs to m and beta2 to v": beta1 * v + (1 - beta1) * dw**2,
            "return v_new WITHOUT bias correction; the corrected v is only used for the step":
                expected_v / (1 - beta2**t)})


def check_adam_step(adam_update):
    """w_new of one step (a large eps, so its place shows), the first step, and three steps,
    against backprop.optim.Adam."""
    with checks.report("adam_update (step)"):
        rng = np.random.default_rng(7)
        w, dw, m = rng.standard_normal((3, 3, 2))
        v = rng.uniform(0.1, 1.0, (3, 2))
        t, lr, beta1, beta2 = 3, 0.01, 0.8, 0.9
        eps = 0.1  # large on purpose, so that where eps goes makes a visible difference
        name = f"adam_update(w, dw, m, v, t={t}, lr={lr}, beta1={beta1}, beta2={beta2}, eps={eps})"
        returned = checks.check_call(name, adam_update, w, dw, m, v, t, lr, beta1, beta2, eps)
        w_new = _pair(name, returned, 3)[0]
        expected, _ = _library_step(Adam, w, dw, {"t": t - 1, "m": m, "v": v}, lr=lr,
                                    betas=(beta1, beta2), eps=eps)
        m_new, v_new = beta1 * m + (1 - beta1) * dw, beta2 * v + (1 - beta2) * dw**2
        m_hat, v_hat = m_new / (1 - beta1**t), v_new / (1 - beta2**t)
        checks.check_close(f"w_new of {name}", w_new, expected, mistakes={
            "wrong sign: Adam steps against the gradient":
                w + lr * m_hat / (np.sqrt(v_hat) + eps),
            "missing bias correction: the moments started at 0, so correct both before the "
            "step": w - lr * m_new / (np.sqrt(v_new) + eps),
            "only m is bias-corrected; correct v too": w - lr * m_hat / (np.sqrt(v_new) + eps),
            "only v is bias-corrected; correct m too": w - lr * m_new / (np.sqrt(v_hat) + eps),
            "bias correction with t starting at 0: t is the number of this update, counted "
            "from 1": w - lr * (m_new / (1 - beta1**(t - 1)))
                / (np.sqrt(v_new / (1 - beta2**(t - 1))) + eps),
            "eps goes outside the square root": w - lr * m_hat / np.sqrt(v_hat + eps),
            "the step uses the (corrected) running mean of the gradient, not dw itself":
                w - lr * dw / (np.sqrt(v_hat) + eps),
            "correct the UPDATED averages (m_new, v_new), not the old ones":
                w - lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)})
        zeros = np.zeros_like(w)
        with np.errstate(divide="ignore", invalid="ignore"):
            w_first = adam_update(w, dw, zeros, zeros, 1, lr, beta1, beta2, 1e-12)[0]
        checks.check_true(np.all(np.isfinite(w_first)),
                          "adam_update returned NaN or inf for the first update (t = 1): is "
                          "your bias correction dividing by 1 - beta**0 = 0?")
        expected_first, _ = _library_step(Adam, w, dw, {}, lr=lr, betas=(beta1, beta2),
                                          eps=1e-12)
        checks.check_close("w_new of the first update (t = 1, m = v = 0)", w_first,
                           expected_first, mistakes={
            "missing bias correction: at t = 1 it undoes the pull of the zeros m and v "
            "started from": w - lr * (1 - beta1) * dw / (np.sqrt(1 - beta2) * np.abs(dw)
                                                         + 1e-12)})
        grads, state = rng.standard_normal((3, 3, 2)), {}
        w_yours, m_yours, v_yours, w_library = w.copy(), zeros, zeros, w.copy()
        for step, g in enumerate(grads, start=1):
            w_yours, m_yours, v_yours = adam_update(w_yours, g, m_yours, v_yours, step, lr=0.05)
            w_library, state = _library_step(Adam, w_library, g, state, lr=0.05)
            checks.check_close(f"w after {step} step(s) with the default betas and eps, "
                               "compared with backprop.optim.Adam", w_yours, w_library)


def _library_path(optimizer_class, grad_f, w0, steps, forget=(), **options):
    """The path of a backprop.optim optimizer from w0; the state entries in `forget` are
    set back to zero before every step (to imitate mistakes)."""
    point = _Point(w0)
    optimizer, path = optimizer_class(point, **options), [np.array(w0, dtype=float)]
    for _ in range(steps):
        for key in forget:
            if "w" in optimizer.state:
                optimizer.state["w"][key] *= 0
        point.grads["w"][:] = grad_f(point.params["w"])
        optimizer.step()
        path.append(point.params["w"].copy())
    return np.array(path)


def _check_path(name, minimise, args, grad_f, w0, steps, library_path, mistakes):
    w0_before = np.array(w0, copy=True)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        path = checks.check_call(name, minimise, grad_f, w0, *args)
    checks.check_true(np.array_equal(w0, w0_before), f"{name} changed w0 in place.")
    shape = (steps + 1, len(w0_before))
    checks.check_true(np.shape(path) != (steps, shape[1]) or not np.allclose(
                          path, library_path[1:], rtol=1e-6, atol=1e-8),
                      f"{name}: the path has {steps} rows, without its first: row 0 is w0, "
                      "then one row per update.")
    checks.check_true(np.shape(path) == shape,
                      f"{name}: the path should have shape {shape} (row 0 is w0, then one row "
                      f"per update), got {np.shape(path)}.")
    path = np.asarray(path, dtype=float)
    checks.check_true(not np.all(path == path[-1]),
                      f"{name}: every row of the path is the same point: did you append one "
                      "array and then change it in place (w[:] = ..., w -= ...)? Append a "
                      "copy, or the new array each update returns.")
    checks.check_true(np.all(np.isfinite(path)),
                      f"{name}: the path contains NaN or inf: does t start at 0? At the first "
                      "update t = 1.")
    checks.check_close(f"path of {name}", path, library_path, mistakes=mistakes)


def _bowl():
    A = np.array([[3.0, 1.0, 0.0], [1.0, 2.0, 0.0], [0.0, 0.0, 0.5]])
    w_star = np.array([0.5, -1.0, 2.0])
    return lambda w: A @ (np.asarray(w) - w_star)


def _prerequisite(name, update, args, expected, test):
    result = checks.check_call(name, update, *args)
    checks.check_true(isinstance(result, (tuple, list)) and len(result) == len(expected) and all(
                          np.allclose(r, e) for r, e in zip(result, expected)),
                      f"this test runs your {name}, which is not right yet: make {test} pass "
                      "first.")


def check_minimise_with_momentum(minimise_with_momentum, sgd_momentum_update):
    """The whole path on a 3-D bowl against backprop.optim.SGD with momentum."""
    with checks.report("minimise_with_momentum"):
        w, dw, v = np.array([1.0, -1.0]), np.array([2.0, 0.5]), np.array([0.5, 1.0])
        w_new, state = _library_step(SGD, w, dw, {"velocity": v}, lr=0.1, momentum=0.9)
        _prerequisite("sgd_momentum_update", sgd_momentum_update, (w, dw, v, 0.1, 0.9),
                      (w_new, state["velocity"]), "test_sgd_momentum_update")
        grad_f, w0, lr, momentum, steps = _bowl(), np.array([-1.5, 2.0, 0.5]), 0.05, 0.8, 25
        name = f"minimise_with_momentum(grad_f, w0, lr={lr}, momentum={momentum}, steps={steps})"
        library = _library_path(SGD, grad_f, w0, steps, lr=lr, momentum=momentum)
        _check_path(name, minimise_with_momentum, (lr, momentum, steps), grad_f, w0, steps,
                    library, mistakes={
            "the velocity must carry over from step to step: create it (zeros) once, before "
            "the loop, and continue from the v_new each update returns":
                _library_path(SGD, grad_f, w0, steps, lr=lr)})


def check_minimise_with_adam(minimise_with_adam, adam_update):
    """The whole path on a 3-D bowl, with non-default betas and eps, against backprop.optim.Adam."""
    with checks.report("minimise_with_adam"):
        w, dw, m, v = (np.array(a) for a in ([1.0, -1.0], [2.0, 0.5], [1.0, 0.5], [1.0, 2.0]))
        w_new, state = _library_step(Adam, w, dw, {"t": 1, "m": m, "v": v}, lr=0.1,
                                     betas=(0.5, 0.6), eps=2.0)
        _prerequisite("adam_update", adam_update, (w, dw, m, v, 2, 0.1, 0.5, 0.6, 2.0),
                      (w_new, state["m"], state["v"]), "test_adam_moments and test_adam_step")
        grad_f, w0, lr, steps = _bowl(), np.array([-1.5, 2.0, 0.5]), 0.3, 30
        betas, eps = (0.8, 0.95), 1e-2
        name = (f"minimise_with_adam(grad_f, w0, lr={lr}, steps={steps}, beta1={betas[0]}, "
                f"beta2={betas[1]}, eps={eps})")
        options = dict(lr=lr, betas=betas, eps=eps)
        library = _library_path(Adam, grad_f, w0, steps, **options)
        _check_path(name, minimise_with_adam, (lr, steps, *betas, eps), grad_f, w0, steps,
                    library, mistakes={
            "t must count the updates (1, 2, 3, ...), not stay at 1":
                _library_path(Adam, grad_f, w0, steps, forget=["t"], **options),
            "m and v must carry over from step to step: create them (zeros) once, before the "
            "loop": _library_path(Adam, grad_f, w0, steps, forget=["m", "v"], **options),
            "m, v and t must carry over from step to step: create them once, before the loop":
                _library_path(Adam, grad_f, w0, steps, forget=["t", "m", "v"], **options),
            "pass beta1, beta2 and eps on to adam_update (your path is the one for its "
            "defaults)": _library_path(Adam, grad_f, w0, steps, lr=lr),
            "pass lr on to adam_update (your path is the one for its default lr)":
                _library_path(Adam, grad_f, w0, steps, betas=betas, eps=eps),
            "pass lr, beta1, beta2 and eps on to adam_update (your path is the one for its "
            "defaults)": _library_path(Adam, grad_f, w0, steps)})


def check_build_and_train(train_softmax_regression, momentum_lr, adam_lr):
    """Each optimizer, at the learner's learning rate, within the epoch budget: the trained
    (W, b), as the library's linear layer, on the test split and on a copy with a little fixed
    noise."""
    _, _, (X_test, y_test) = digits_splits()
    noisy = heldout.noisy(X_test, heldout.visible_rng())
    figures = {}
    with checks.report("build_and_train"):
        for method, lr in [("momentum", momentum_lr), ("adam", adam_lr)]:
            checks.check_true(np.ndim(lr) == 0 and np.isfinite(lr) and lr > 0,
                              f"{method}_lr should be a positive number, got {lr!r:.40}")
            name = f"train_softmax_regression({method!r}, lr={lr:g}, epochs={EPOCH_BUDGET})"
            params = checks.check_call(name, train_softmax_regression, method, lr, EPOCH_BUDGET)
            checks.check_true(isinstance(params, dict) and {"W", "b"} <= set(params),
                              f"{name} should return the dict of trained parameters "
                              "{'W': (64, 10), 'b': (10,)}.")
            checks.check_shape(f"{name}['W']", params["W"], (64, 10))
            checks.check_shape(f"{name}['b']", params["b"], (10,))
            figures[method], _ = heldout.check_classifier(
                name, heldout.library_linear(params["W"], params["b"]), X_test, y_test, noisy,
                TEST_TARGET,
                hint=f"tune {method}_lr on the validation split (a default learning rate "
                     "is rarely right), and check that every epoch visits every mini-batch and "
                     "that the optimizer state carries over from step to step.")
    print("  test accuracy after {} epochs: momentum {:.3f}, Adam {:.3f} (target {})".format(
        EPOCH_BUDGET, figures["momentum"], figures["adam"], TEST_TARGET))
