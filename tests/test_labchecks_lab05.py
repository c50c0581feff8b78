"""The visible checks of lab 05 accept correct answers written differently from the solution
(the library's optimizers), reject blank ones with a message saying so, and name the lax cases
of issue 12: betas, eps or lr not passed on, a path without its first row."""
import numpy as np
import pytest

from backprop.checks import LabCheckError, fresh
from backprop.optim import SGD, Adam


@pytest.fixture(scope="module")
def lab():
    return fresh("lab05")


class Point:
    def __init__(self, w0):
        self.params = {"w": np.array(w0, dtype=float)}
        self.grads = {"w": np.zeros_like(self.params["w"])}

    def named_parameters(self):
        yield "w", self.params["w"], self.grads["w"]


def momentum_update(w, dw, v, lr, momentum):
    point = Point(w)
    optimizer = SGD(point, lr=lr, momentum=momentum)
    optimizer.state["w"] = {"velocity": np.array(v, dtype=float)}
    point.grads["w"][:] = dw
    optimizer.step()
    return point.params["w"], optimizer.state["w"]["velocity"]


def adam_update(w, dw, m, v, t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8):
    point = Point(w)
    optimizer = Adam(point, lr=lr, betas=(beta1, beta2), eps=eps)
    optimizer.state["w"] = {"t": t - 1, "m": np.array(m, dtype=float),
                            "v": np.array(v, dtype=float)}
    point.grads["w"][:] = dw
    optimizer.step()
    return point.params["w"], optimizer.state["w"]["m"], optimizer.state["w"]["v"]


def minimise_with_adam(grad_f, w0, lr, steps, beta1=0.9, beta2=0.999, eps=1e-8, *,
                       forward=("lr", "betas"), first_row=True):
    w, m, v = np.array(w0, dtype=float), np.zeros(len(w0)), np.zeros(len(w0))
    path = [w] if first_row else []
    options = {**({"lr": lr} if "lr" in forward else {}),
               **({"beta1": beta1, "beta2": beta2, "eps": eps} if "betas" in forward else {})}
    for t in range(1, steps + 1):
        w, m, v = adam_update(w, grad_f(w), m, v, t, **options)
        path.append(w)
    return np.array(path)


def test_answers_written_another_way_pass(lab, capsys):
    lab.check_sgd_momentum_update(momentum_update)
    lab.check_adam_moments(adam_update)
    lab.check_adam_step(adam_update)
    lab.check_minimise_with_adam(minimise_with_adam, adam_update)
    assert capsys.readouterr().out.count("\u2713") == 4


def not_written(*args, **kwargs):
    raise NotImplementedError()


@pytest.mark.parametrize("check", ["check_sgd_momentum_update", "check_adam_moments",
                                   "check_adam_step"])
def test_a_blank_answer_is_told_it_is_not_written(lab, check):
    with pytest.raises(LabCheckError, match="not written yet"):
        getattr(lab, check)(not_written)


@pytest.mark.parametrize("forward, hint", [
    (("lr",), "pass beta1, beta2 and eps on"),
    (("betas",), "pass lr on to adam_update"),
    ((), "pass lr, beta1, beta2 and eps on")])
def test_hyperparameters_not_passed_on_are_named(lab, forward, hint):
    with pytest.raises(LabCheckError, match=hint):
        lab.check_minimise_with_adam(
            lambda *args: minimise_with_adam(*args, forward=forward), adam_update)


def test_a_path_without_w0_is_named(lab):
    with pytest.raises(LabCheckError, match="row 0 is w0"):
        lab.check_minimise_with_adam(
            lambda *args: minimise_with_adam(*args, first_row=False), adam_update)


def test_a_wrong_update_is_reported_before_the_path(lab):
    with pytest.raises(LabCheckError, match="make test_adam_moments and test_adam_step pass"):
        lab.check_minimise_with_adam(minimise_with_adam,
                                     lambda w, dw, m, v, t, *rest: (w - dw, m, v))


def test_build_and_train_fails_untrained_parameters(lab):
    """The returned parameters are measured with the library's linear layer: zeros (what
    training starts from) classify every digit as 0."""
    def untrained(method, lr, epochs, seed=0):
        return {"W": np.zeros((64, 10)), "b": np.zeros(10)}
    with pytest.raises(LabCheckError, match="held-out accuracy .* expected at least .* on both"):
        lab.check_build_and_train(untrained, 0.1, 0.03)
