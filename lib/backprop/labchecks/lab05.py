"""Visible checks of lab 05 (optimizers: Nesterov momentum and Adamax).

Nesterov's update is compared with the library's `SGD(..., nesterov=True)` (PyTorch's form),
driven one step at a time on a one-parameter model. Adamax is not in the library: its checks use
values stored from the source's answer, and invariants (the first step, a constant gradient) that
hold whatever the inputs. A wrong answer is named by comparing it with what a known mistake
computes. The loops are checked against the library's path (Nesterov) or against a replay of the
learner's own update, once that update is right (Adamax).
"""
import numpy as np

from backprop import checks
from backprop.labchecks import heldout
from backprop.labchecks.lab04 import digits_splits  # the same split and standardization
from backprop.optim import SGD

TEST_TARGET = 0.92  # test accuracy of each optimizer's softmax regression after the budget
EPOCH_BUDGET = 2

# Inputs of the Adamax checks, and what the source's answer returns for them (stored).
_W = np.array([[0.5, -1.2, 2.0], [-0.3, 0.8, 1.5]])
_DW = np.array([[1.5, -0.4, -2.5], [0.2, -1.0, 0.6]])
_M = np.array([[0.3, 0.2, -0.5], [-0.1, 0.4, 0.0]])
_U = np.array([[1.0, 2.0, 0.5], [0.1, 1.5, 3.0]])
_T, _LR, _BETA1, _BETA2, _EPS = 3, 0.01, 0.8, 0.9, 0.1
_STORED_M = np.array([[0.54, 0.08, -0.9], [-0.04, 0.12, 0.12]])
_STORED_U = np.array([[1.5, 1.8, 2.5], [0.2, 1.35, 2.7]])
_STORED_W = np.array([[0.4930840163934426, -1.200862812769629, 2.007093316519546],
                      [-0.2972677595628415, 0.798304126625212, 1.4991217798594847]])
# Three Adamax updates (lr 0.1, betas 0.8 and 0.9, eps 1e-8) from (1, -2) on a small bowl.
_TINY_A, _TINY_STAR, _TINY_START = np.array([[3.0, 1.0], [1.0, 2.0]]), np.array([0.5, -1.0]), \
    np.array([1.0, -2.0])
_STORED_TINY_PATH = np.array([[1.0, -2.0], [0.900000002, -1.9000000006666666],
                              [0.8135802501755829, -1.7968253982063491],
                              [0.7423481778009178, -1.689247102166981]])


class _Point:
    """The smallest model the library's optimizers drive: one parameter "w"."""

    def __init__(self, w0):
        self.params = {"w": np.array(w0, dtype=float)}
        self.grads = {"w": np.zeros_like(self.params["w"])}

    def named_parameters(self):
        yield "w", self.params["w"], self.grads["w"]


def _nesterov_step(w, dw, v, lr, momentum):
    """One step of backprop.optim.SGD(nesterov=True) from velocity v: (w_new, v_new)."""
    point = _Point(w)
    optimizer = SGD(point, lr=lr, momentum=momentum, nesterov=True)
    optimizer.state["w"] = {"velocity": np.array(v, dtype=float)}
    point.grads["w"][:] = dw
    optimizer.step()
    return point.params["w"], optimizer.state["w"]["velocity"]


def _unchanged(name, arrays, saved):
    checks.check_true(all(np.array_equal(a, s) for a, s in zip(arrays, saved)),
                      f"{name} changed an input array in place (w -= ..., v *= ...): compute "
                      "new arrays and return them.")


def _pair(name, result, size):
    checks.check_true(isinstance(result, (tuple, list)) and len(result) == size,
                      f"{name} should return a tuple of {size} arrays, got "
                      f"{type(result).__name__}")
    return result


def _nesterov_mistakes_w(w, dw, v, lr, momentum, v_new):
    return {
        "that is heavy-ball momentum (the step along v_new alone): Nesterov's step also "
        "looks ahead, from the point your parameters stand for": w - lr * v_new,
        "the look-ahead uses the OLD velocity v; it should use v_new":
            w - lr * (dw + momentum * v),
        "wrong sign: step against the gradient and the velocity":
            w + lr * (dw + momentum * v_new),
        "the step ignores the velocity: plain gradient descent": w - lr * dw,
        "the step lost this step's gradient: only the velocity term is left":
            w - lr * momentum * v_new,
        "multiply the whole step by the learning rate lr": w - (dw + momentum * v_new)}


def check_nesterov_update(nesterov_update):
    """One step from a non-zero velocity against backprop.optim.SGD(nesterov=True), twice, and
    the first step from v = 0."""
    with checks.report("nesterov_update"):
        rng = np.random.default_rng(5)
        for (lr, momentum), shape in [((0.1, 0.9), (4, 2)), ((0.05, 0.5), (3,))]:
            w, dw, v = rng.standard_normal((3, *shape))
            saved = [w.copy(), dw.copy(), v.copy()]
            name = f"nesterov_update(w, dw, v, lr={lr}, momentum={momentum})"
            returned = checks.check_call(name, nesterov_update, w, dw, v, lr, momentum)
            w_new, v_new = _pair(name, returned, 2)
            _unchanged("nesterov_update", (w, dw, v), saved)
            expected_w, expected_v = _nesterov_step(w, dw, v, lr, momentum)
            checks.check_close(f"v_new of {name}", v_new, expected_v, mistakes={
                "the velocity adds up raw gradients; lr comes in the step":
                    momentum * v + lr * dw,
                "that is an exponential moving average (Adam's m); the velocity adds the "
                "whole gradient": momentum * v + (1 - momentum) * dw,
                "the old velocity is multiplied by momentum": v + dw,
                "(w_new, v_new) in this order: you returned w_new where v_new belongs":
                    expected_w})
            checks.check_close(f"w_new of {name}", w_new, expected_w,
                               mistakes=_nesterov_mistakes_w(w, dw, v, lr, momentum, expected_v))
        w, dw = rng.standard_normal((2, 3))
        name = "nesterov_update(w, dw, v=0, lr=0.1, momentum=0.9), a first step"
        first = _pair(name, checks.check_call(name, nesterov_update, w, dw, np.zeros(3), 0.1,
                                              0.9), 2)[0]
        checks.check_close("the first step from v = 0 (lr 0.1, momentum 0.9)",
                           np.asarray(first) - w, -0.1 * 1.9 * dw, mistakes={
            "that is heavy-ball momentum's first step (plain gradient descent): Nesterov's "
            "first step also looks ahead": -0.1 * dw})


def _adamax_mistakes_mu(m, u, dw, t, beta1, beta2):
    """Wrong (m_new, u_new) pairs of one Adamax step, by the mistake that makes them."""
    m_new, u_new = _STORED_M, _STORED_U
    return {
        "m is a moving average: the new gradient comes in with weight (1 - beta1)":
            (beta1 * m + dw, u_new),
        "return m_new WITHOUT bias correction; the corrected m is only used for the step":
            (m_new / (1 - beta1**t), u_new),
        "u is a decaying maximum: multiply the old u by beta2 before comparing":
            (m_new, np.maximum(u, np.abs(dw))),
        "u is a maximum of sizes: compare with |dw|, not dw": (m_new, np.maximum(beta2 * u, dw)),
        "u is a decaying MAXIMUM, not a moving average of |dw|":
            (m_new, beta2 * u + (1 - beta2) * np.abs(dw)),
        "that is Adam's v (a mean of squares); Adamax keeps a decaying maximum":
            (m_new, beta2 * u + (1 - beta2) * dw**2),
        "beta1 belongs to m and beta2 to u":
            (beta2 * m + (1 - beta2) * dw, np.maximum(beta1 * u, np.abs(dw))),
        "u needs no bias correction (work out u after t updates of a constant gradient)":
            (m_new, u_new / (1 - beta2**t))}


def check_adamax_moments(adamax_update):
    """m_new and u_new of one step from non-zero m and u (t = 3), against stored values."""
    with checks.report("adamax_update (moments)"):
        w, dw, m, u = (a.copy() for a in (_W, _DW, _M, _U))
        name = (f"adamax_update(w, dw, m, u, t={_T}, lr={_LR}, beta1={_BETA1}, "
                f"beta2={_BETA2}, eps={_EPS})")
        returned = checks.check_call(name, adamax_update, w, dw, m, u, _T, _LR, _BETA1, _BETA2,
                                     _EPS)
        _, m_new, u_new = _pair(name, returned, 3)
        _unchanged("adamax_update", (w, dw, m, u), (_W, _DW, _M, _U))
        wrong = _adamax_mistakes_mu(_M, _U, _DW, _T, _BETA1, _BETA2)
        checks.check_close(f"m_new of {name}", m_new, _STORED_M, mistakes={
            **{hint: pair[0] for hint, pair in wrong.items()},
            "(w_new, m_new, u_new) in this order: you returned u_new where m_new belongs":
                _STORED_U})
        checks.check_close(f"u_new of {name}", u_new, _STORED_U,
                           mistakes={hint: pair[1] for hint, pair in wrong.items()})


def check_adamax_step(adamax_update):
    """w_new of one step (a large eps, so its place shows) against a stored value, then two
    invariants: the first step from m = u = 0, and steps on a constant gradient."""
    with checks.report("adamax_update (step)"):
        w, dw, m, u, t, lr, beta1, beta2, eps = _W, _DW, _M, _U, _T, _LR, _BETA1, _BETA2, _EPS
        name = (f"adamax_update(w, dw, m, u, t={t}, lr={lr}, beta1={beta1}, beta2={beta2}, "
                f"eps={eps})")
        returned = checks.check_call(name, adamax_update, w.copy(), dw.copy(), m.copy(),
                                     u.copy(), t, lr, beta1, beta2, eps)
        w_new = _pair(name, returned, 3)[0]
        m_new, u_new = _STORED_M, _STORED_U
        m_hat = m_new / (1 - beta1**t)
        checks.check_close(f"w_new of {name}", w_new, _STORED_W, mistakes={
            "missing bias correction of m: m started at 0, so its early values fall short":
                w - lr * m_new / (u_new + eps),
            "u needs no bias correction (work out u after t updates of a constant gradient)":
                w - lr * m_hat / (u_new / (1 - beta2**t) + eps),
            "bias correction with t starting at 0: t is the number of this update, counted "
            "from 1": w - lr * (m_new / (1 - beta1**(t - 1))) / (u_new + eps),
            "eps is added to u in the denominator, not inside the maximum":
                w - lr * m_hat / np.maximum(beta2 * u, np.abs(dw) + eps),
            "wrong sign: Adamax steps against the gradient": w + lr * m_hat / (u_new + eps),
            "the step uses the (corrected) running mean of the gradient, not dw itself":
                w - lr * dw / (u_new + eps),
            "correct and divide by the UPDATED m_new and u_new, not the old ones":
                w - lr * (m / (1 - beta1**t)) / (u + eps),
            "divide by u (plus eps), the decaying maximum of |dw|, not by its square root":
                w - lr * m_hat / (np.sqrt(u_new) + eps)})
        zeros = np.zeros_like(w)
        with np.errstate(divide="ignore", invalid="ignore"):
            first = adamax_update(w.copy(), dw.copy(), zeros, zeros, 1, 0.05, beta1, beta2, 1e-12)
        first_step = np.asarray(_pair("adamax_update", first, 3)[0]) - w
        checks.check_true(np.all(np.isfinite(first_step)),
                          "adamax_update returned NaN or inf for the first update (t = 1): is "
                          "a bias correction dividing by 1 - beta**0 = 0?")
        checks.check_close("the size of the first step (t = 1, m = u = 0, lr 0.05)",
                           np.abs(first_step),
                           np.full_like(w, 0.05), mistakes={
            "missing bias correction of m: at t = 1 it undoes the pull of the zero m started "
            "from": np.full_like(w, 0.05 * (1 - beta1)),
            "u needs no bias correction: u after the first update is already |dw|":
                np.full_like(w, 0.05 * (1 - beta2))})
        checks.check_close("the sign of the first step (t = 1)", np.sign(first_step),
                           -np.sign(dw), mistakes={
            "wrong sign: Adamax steps against the gradient": np.sign(dw)})
        g, w_now, m_now, u_now, steps = dw * 3, w.copy(), zeros, zeros, []
        for step in range(1, 6):
            w_next, m_now, u_now = adamax_update(w_now, g, m_now, u_now, step, 0.05, beta1,
                                                 beta2, 1e-12)
            steps.append(np.abs(np.asarray(w_next) - w_now))
            w_now = np.asarray(w_next)
        checks.check_close("the step sizes of 5 updates on a constant gradient (lr 0.05)",
                           np.array(steps), np.full((5, *w.shape), 0.05), rtol=1e-9,
                           atol=1e-12, mistakes={
            "u needs no bias correction: with a constant gradient u is |dw| at every step":
                np.array([np.full_like(w, 0.05 * (1 - beta2**k)) for k in range(1, 6)])},
                           hint="on a constant gradient every Adamax step is lr in every "
                                "coordinate: check the bias correction of m and what you "
                                "divide by")


def _adamax_replay(adamax_update, grad_f, w0, steps, reset=False, t_fixed=None, **options):
    """The path of the learner's own adamax_update driven by a correct loop (or, with `reset`
    or `t_fixed`, by a known wrong one)."""
    w = np.array(w0, dtype=float)
    m, u, path = np.zeros_like(w), np.zeros_like(w), [w]
    for t in range(1, steps + 1):
        if reset:
            m, u = np.zeros_like(w), np.zeros_like(w)
        w, m, u = adamax_update(w, grad_f(w), m, u, t_fixed or t, **options)
        path.append(np.array(w, dtype=float))
    return np.array(path)


def _library_path(grad_f, w0, steps, reset=False, **options):
    """The path of backprop.optim.SGD from w0; with `reset` the velocity is set back to zero
    before every step (to imitate a mistake)."""
    point = _Point(w0)
    optimizer, path = SGD(point, **options), [np.array(w0, dtype=float)]
    for _ in range(steps):
        if reset and "w" in optimizer.state:
            optimizer.state["w"]["velocity"] *= 0
        point.grads["w"][:] = grad_f(point.params["w"])
        optimizer.step()
        path.append(point.params["w"].copy())
    return np.array(path)


def _check_path(name, minimise, args, grad_f, w0, steps, expected_path, mistakes):
    w0_before = np.array(w0, copy=True)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        path = checks.check_call(name, minimise, grad_f, w0, *args)
    checks.check_true(np.array_equal(w0, w0_before), f"{name} changed w0 in place.")
    shape = (steps + 1, len(w0_before))
    checks.check_true(np.shape(path) != (steps, shape[1]) or not np.allclose(
                          path, expected_path[1:], rtol=1e-6, atol=1e-8),
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
    checks.check_close(f"path of {name}", path, expected_path, mistakes=mistakes)


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


def check_minimise_with_nesterov(minimise_with_nesterov, nesterov_update):
    """The whole path on a 3-D bowl against backprop.optim.SGD(nesterov=True)."""
    with checks.report("minimise_with_nesterov"):
        w, dw, v = np.array([1.0, -1.0]), np.array([2.0, 0.5]), np.array([0.5, 1.0])
        _prerequisite("nesterov_update", nesterov_update, (w, dw, v, 0.1, 0.9),
                      _nesterov_step(w, dw, v, 0.1, 0.9), "test_nesterov_update")
        grad_f, w0, lr, momentum, steps = _bowl(), np.array([-1.5, 2.0, 0.5]), 0.05, 0.8, 25
        name = f"minimise_with_nesterov(grad_f, w0, lr={lr}, momentum={momentum}, steps={steps})"
        options = dict(lr=lr, momentum=momentum, nesterov=True)
        _check_path(name, minimise_with_nesterov, (lr, momentum, steps), grad_f, w0, steps,
                    _library_path(grad_f, w0, steps, **options), mistakes={
            "the velocity must carry over from step to step: create it (zeros) once, before "
            "the loop, and continue from the v_new each update returns":
                _library_path(grad_f, w0, steps, reset=True, **options),
            "pass lr and momentum on, in the order nesterov_update takes them":
                _library_path(grad_f, w0, steps, lr=momentum, momentum=lr, nesterov=True)})


def check_minimise_with_adamax(minimise_with_adamax, adamax_update):
    """The whole path on a 3-D bowl, with non-default betas and eps, against your (checked)
    adamax_update driven step by step."""
    with checks.report("minimise_with_adamax"):
        _prerequisite("adamax_update", adamax_update,
                      (_W.copy(), _DW.copy(), _M.copy(), _U.copy(), _T, _LR, _BETA1, _BETA2, _EPS),
                      (_STORED_W, _STORED_M, _STORED_U),
                      "test_adamax_moments and test_adamax_step")
        grad_f, w0, lr, steps = _bowl(), np.array([-1.5, 2.0, 0.5]), 0.3, 30
        betas, eps = (0.8, 0.95), 1e-2
        name = (f"minimise_with_adamax(grad_f, w0, lr={lr}, steps={steps}, beta1={betas[0]}, "
                f"beta2={betas[1]}, eps={eps})")
        options = dict(lr=lr, beta1=betas[0], beta2=betas[1], eps=eps)

        def replay(**how):
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                return _adamax_replay(adamax_update, grad_f, w0, steps, **how)
        _check_path(name, minimise_with_adamax, (lr, steps, *betas, eps), grad_f, w0, steps,
                    replay(**options), mistakes={
            "t must count the updates (1, 2, 3, ...), not stay at 1":
                replay(t_fixed=1, **options),
            "m and u must carry over from step to step: create them (zeros) once, before the "
            "loop": replay(reset=True, **options),
            "pass beta1, beta2 and eps on to adamax_update (your path is the one for its "
            "defaults)": replay(lr=lr),
            "pass lr on to adamax_update (your path is the one for its default lr)":
                replay(beta1=betas[0], beta2=betas[1], eps=eps),
            "pass lr, beta1, beta2 and eps on to adamax_update (your path is the one for its "
            "defaults)": replay()})


def _check_rules_replayed(nesterov_update, adamax_update):
    """Three updates of each rule on a tiny bowl, as the training loop makes them: a rule that
    is wrong is named here, where accuracy alone would not see it."""
    grad_f = lambda w: _TINY_A @ (np.asarray(w) - _TINY_STAR)  # noqa: E731
    w, v, path = _TINY_START.copy(), np.zeros(2), [_TINY_START.copy()]
    for _ in range(3):
        w, v = _pair("nesterov_update", checks.check_call(
            "nesterov_update(w, dw, v, lr=0.1, momentum=0.9)", nesterov_update, w, grad_f(w), v,
            0.1, 0.9), 2)
        path.append(np.array(w, dtype=float))
    options = dict(lr=0.1, momentum=0.9)
    old_velocity, heavy_ball, v_old = [_TINY_START.copy()], _library_path(
        grad_f, _TINY_START, 3, **options), np.zeros(2)
    for _ in range(3):
        w_old = old_velocity[-1]
        g = grad_f(w_old)
        old_velocity.append(w_old - 0.1 * (g + 0.9 * v_old))
        v_old = 0.9 * v_old + g
    checks.check_close("the path of 3 'nesterov' updates (lr 0.1) on a tiny bowl", np.array(path),
                       _library_path(grad_f, _TINY_START, 3, nesterov=True, **options),
                       mistakes={"the look-ahead uses the old velocity; it should use v_new":
                                     np.array(old_velocity),
                                 "that is heavy-ball momentum, not Nesterov's": heavy_ball})
    name = "adamax_update(w, dw, m, u, t, lr=0.1, beta1=0.8, beta2=0.9, eps=1e-8)"
    _pair(name, checks.check_call(name, adamax_update, _TINY_START.copy(), grad_f(_TINY_START),
                                  np.zeros(2), np.zeros(2), 1, 0.1, 0.8, 0.9, 1e-8), 3)
    with np.errstate(divide="ignore", invalid="ignore"):
        path = _adamax_replay(adamax_update, grad_f, _TINY_START, 3, lr=0.1, beta1=0.8,
                              beta2=0.9, eps=1e-8)
    no_correction = [_TINY_START.copy()]
    m, u = np.zeros(2), np.zeros(2)
    for t in range(1, 4):
        g = grad_f(no_correction[-1])
        m, u = 0.8 * m + 0.2 * g, np.maximum(0.9 * u, np.abs(g))
        no_correction.append(no_correction[-1] - 0.1 * m / (u + 1e-8))
    checks.check_close("the path of 3 'adamax' updates (lr 0.1) on a tiny bowl", path,
                       _STORED_TINY_PATH, mistakes={
                           "no bias correction of m: m starts at 0": np.array(no_correction)})


def check_build_and_train(train_softmax_regression, nesterov_lr, adamax_lr,
                          nesterov_update=None, adamax_update=None):
    """The two update rules replayed on a tiny bowl (when given), then each optimizer, at the
    learner's learning rate, within the epoch budget: the trained (W, b), as the library's
    linear layer, on the test split and on a copy with a little fixed noise."""
    _, _, (X_test, y_test) = digits_splits()
    noisy = heldout.noisy(X_test, heldout.visible_rng())
    figures = {}
    with checks.report("build_and_train"):
        if nesterov_update is not None and adamax_update is not None:
            _check_rules_replayed(nesterov_update, adamax_update)
        for method, lr in [("nesterov", nesterov_lr), ("adamax", adamax_lr)]:
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
    print("  test accuracy after {} epochs: Nesterov {:.3f}, Adamax {:.3f} (target {})".format(
        EPOCH_BUDGET, figures["nesterov"], figures["adamax"], TEST_TARGET))
