"""The visible checks of lab 04 accept correct answers written differently from the solution
(the library's layers), reject blank ones with a message saying so, and name updating W2
before dH is computed."""
import numpy as np
import pytest

from backprop.checks import LabCheckError, fresh
from backprop.layers import Linear, ReLU, Sigmoid
from backprop.losses import softmax_cross_entropy


@pytest.fixture(scope="module")
def lab():
    return fresh("lab04")


def by_library_linear(dout, x, W):
    layer = Linear(*W.shape, rng=np.random.default_rng(0))
    layer.load_state_dict({"W": W, "b": np.zeros(W.shape[1])})
    layer.forward(x)
    return layer.backward(dout), layer.grads["W"], layer.grads["b"]


def by_library_relu(dout, x):
    layer = ReLU()
    layer.forward(x)
    return layer.backward(dout)


def by_library_sigmoid(dout, out):
    layer = Sigmoid()
    layer.forward(np.log(out) - np.log1p(-out))  # the input whose sigmoid is out
    return layer.backward(dout)


def train_step(params, x, y, lr, update_w2_first=False):
    z1 = x @ params["W1"] + params["b1"]
    h = np.maximum(z1, 0)
    loss, dlogits = softmax_cross_entropy(h @ params["W2"] + params["b2"], y)
    _, dW2, db2 = by_library_linear(dlogits, h, params["W2"])
    if update_w2_first:
        params["W2"] -= lr * dW2
    dh = dlogits @ params["W2"].T
    _, dW1, db1 = by_library_linear(by_library_relu(dh, z1), x, params["W1"])
    if not update_w2_first:
        params["W2"] -= lr * dW2
    params["b2"] -= lr * db2
    params["W1"] -= lr * dW1
    params["b1"] -= lr * db1
    return loss


@pytest.mark.parametrize("check, answer", [
    ("check_linear_backward", by_library_linear),
    ("check_relu_backward", by_library_relu),
    ("check_sigmoid_backward", by_library_sigmoid),
    ("check_train_step", train_step),
])
def test_answers_written_another_way_pass(lab, check, answer, capsys):
    getattr(lab, check)(answer)
    assert "\u2713" in capsys.readouterr().out


def not_written(*args):
    raise NotImplementedError()


@pytest.mark.parametrize("check", ["check_linear_backward", "check_relu_backward",
                                   "check_sigmoid_backward", "check_train_step"])
def test_a_blank_answer_is_told_it_is_not_written(lab, check):
    with pytest.raises(LabCheckError, match="not written yet"):
        getattr(lab, check)(not_written)


def test_updating_w2_before_dh_is_named(lab):
    with pytest.raises(LabCheckError, match="W2 was updated before dH was computed"):
        lab.check_train_step(lambda *args: train_step(*args, update_w2_first=True))


def test_an_untrained_network_misses_the_target(lab):
    rng = np.random.default_rng(0)
    params = {"W1": rng.standard_normal((64, 8)), "b1": np.zeros(8),
              "W2": rng.standard_normal((8, 10)), "b2": np.zeros(10)}
    with pytest.raises(LabCheckError, match="expected at least 0.95 on both"):
        lab.check_build_and_train(params)
