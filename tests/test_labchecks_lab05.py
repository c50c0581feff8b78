"""The visible checks of lab 05 accept correct answers written differently from the solution
(Nesterov through the library's optimizer, Adamax coordinate by coordinate), reject blank ones
with a message saying so, name the lax cases of issue 12 (betas, eps or lr not passed on, a path
without its first row), and the build-and-train check names a wrong rule that trains well
enough (issue 22: old velocity, no bias correction)."""
import numpy as np
import pytest

from backprop.checks import LabCheckError, fresh
from backprop.optim import SGD


@pytest.fixture(scope="module")
def lab():
    return fresh("lab05")


class Point:
    def __init__(self, w0):
        self.params = {"w": np.array(w0, dtype=float)}
        self.grads = {"w": np.zeros_like(self.params["w"])}

    def named_parameters(self):
        yield "w", self.params["w"], self.grads["w"]


def nesterov_update(w, dw, v, lr, momentum):
    point = Point(w)
    optimizer = SGD(point, lr=lr, momentum=momentum, nesterov=momentum > 0)
    optimizer.state["w"] = {"velocity": np.array(v, dtype=float)}
    point.grads["w"][:] = dw
    optimizer.step()
    return point.params["w"], optimizer.state["w"]["velocity"]


def adamax_update(w, dw, m, u, t, lr=2e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    """Adamax one coordinate at a time, with the step size corrected instead of m."""
    w, dw, m, u = (np.array(a, dtype=float) for a in (w, dw, m, u))
    w_new, m_new, u_new = w.copy(), m.copy(), u.copy()
    step_size = lr / (1 - beta1**t)
    for i in np.ndindex(w.shape):
        m_new[i] = beta1 * m[i] + (1 - beta1) * dw[i]
        u_new[i] = max(beta2 * u[i], abs(dw[i]))
        w_new[i] = w[i] - step_size * m_new[i] / (u_new[i] + eps)
    return w_new, m_new, u_new


def minimise_with_adamax(grad_f, w0, lr, steps, beta1=0.9, beta2=0.999, eps=1e-8, *,
                         forward=("lr", "betas"), first_row=True):
    w, m, u = np.array(w0, dtype=float), np.zeros(len(w0)), np.zeros(len(w0))
    path = [w] if first_row else []
    options = {**({"lr": lr} if "lr" in forward else {}),
               **({"beta1": beta1, "beta2": beta2, "eps": eps} if "betas" in forward else {})}
    for t in range(1, steps + 1):
        w, m, u = adamax_update(w, grad_f(w), m, u, t, **options)
        path.append(w)
    return np.array(path)


def minimise_with_nesterov(grad_f, w0, lr, momentum, steps):
    point = Point(w0)
    optimizer, path = SGD(point, lr=lr, momentum=momentum, nesterov=True), [point.params["w"].copy()]
    for _ in range(steps):
        point.grads["w"][:] = grad_f(point.params["w"])
        optimizer.step()
        path.append(point.params["w"].copy())
    return np.array(path)


def test_answers_written_another_way_pass(lab, capsys):
    lab.check_nesterov_update(nesterov_update)
    lab.check_adamax_moments(adamax_update)
    lab.check_adamax_step(adamax_update)
    lab.check_minimise_with_nesterov(minimise_with_nesterov, nesterov_update)
    lab.check_minimise_with_adamax(minimise_with_adamax, adamax_update)
    assert capsys.readouterr().out.count("\u2713") == 5


def not_written(*args, **kwargs):
    raise NotImplementedError()


@pytest.mark.parametrize("check", ["check_nesterov_update", "check_adamax_moments",
                                   "check_adamax_step"])
def test_a_blank_answer_is_told_it_is_not_written(lab, check):
    with pytest.raises(LabCheckError, match="not written yet"):
        getattr(lab, check)(not_written)


@pytest.mark.parametrize("forward, hint", [
    (("lr",), "pass beta1, beta2 and eps on"),
    (("betas",), "pass lr on to adamax_update"),
    ((), "pass lr, beta1, beta2 and eps on")])
def test_hyperparameters_not_passed_on_are_named(lab, forward, hint):
    with pytest.raises(LabCheckError, match=hint):
        lab.check_minimise_with_adamax(
            lambda *args: minimise_with_adamax(*args, forward=forward), adamax_update)


def test_a_path_without_w0_is_named(lab):
    with pytest.raises(LabCheckError, match="row 0 is w0"):
        lab.check_minimise_with_adamax(
            lambda *args: minimise_with_adamax(*args, first_row=False), adamax_update)


def test_a_wrong_update_is_reported_before_the_path(lab):
    with pytest.raises(LabCheckError, match="make test_adamax_moments and test_adamax_step pass"):
        lab.check_minimise_with_adamax(minimise_with_adamax,
                                       lambda w, dw, m, u, t, *rest: (w - dw, m, u))


def test_adamax_on_a_constant_gradient_steps_by_lr_whatever_the_gradient(lab):
    """The invariant the step check relies on, for the answer written another way."""
    w, m, u, g = np.zeros(3), np.zeros(3), np.zeros(3), np.array([1e-3, -2.0, 50.0])
    for t in range(1, 6):
        w_new, m, u = adamax_update(w, g, m, u, t, lr=0.05, eps=1e-12)
        np.testing.assert_allclose(np.abs(w_new - w), 0.05, rtol=1e-6)
        w = w_new


def untrained(method, lr, epochs, seed=0):
    return {"W": np.zeros((64, 10)), "b": np.zeros(10)}


def test_build_and_train_fails_untrained_parameters(lab):
    """The returned parameters are measured with the library's linear layer: zeros (what
    training starts from) classify every digit as 0."""
    with pytest.raises(LabCheckError, match="held-out accuracy .* expected at least .* on both"):
        lab.check_build_and_train(untrained, 0.1, 0.1, nesterov_update, adamax_update)


def test_build_and_train_names_a_nesterov_rule_with_the_old_velocity(lab):
    def old_velocity(w, dw, v, lr, momentum):
        return w - lr * (dw + momentum * v), momentum * v + dw
    with pytest.raises(LabCheckError, match="the look-ahead uses the old velocity"):
        lab.check_build_and_train(untrained, 0.1, 0.1, old_velocity, adamax_update)


def test_build_and_train_names_adamax_without_bias_correction(lab):
    def no_correction(w, dw, m, u, t, lr=2e-3, beta1=0.9, beta2=0.999, eps=1e-8):
        return adamax_update(w, dw, m, u, 1 + 0 * t + 10**6, lr, beta1, beta2, eps)
    with pytest.raises(LabCheckError, match="no bias correction of m"):
        lab.check_build_and_train(untrained, 0.1, 0.1, nesterov_update, no_correction)
