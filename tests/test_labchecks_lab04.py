"""The visible checks of lab 04 accept correct answers written differently from the solution
(the library's layers and losses), reject blank ones with a message saying so, name the line
of the first wrong gradient, and name a skip connection left out of dh1."""
import numpy as np
import pytest

from backprop.checks import LabCheckError, fresh
from backprop.layers import Tanh
from backprop.losses import softmax_cross_entropy


@pytest.fixture(scope="module")
def lab():
    return fresh("lab04")


def network_forward(params, X, y):
    values = fresh("lab04").forward(params, X, y)
    return values["loss"], {k: v for k, v in values.items() if k not in params and k != "loss"}


def loss_backward_another_way(cache):
    """Through the library's softmax cross-entropy, then each line from its neighbours."""
    N, (_, ds) = len(cache["y"]), softmax_cross_entropy(cache["s"], cache["y"])
    dlogp = np.zeros_like(cache["logp"])
    np.add.at(dlogp, (np.arange(N), cache["y"]), -1.0 / N)
    dlse = -np.sum(dlogp, axis=1)[:, None]
    de = np.tile(dlse * np.exp(-cache["lse"]), (1, cache["e"].shape[1]))
    return {"logp": dlogp, "lse": dlse, "z": dlse / cache["z"], "e": de,
            "shifted": ds, "m": np.zeros_like(cache["m"]), "s": ds}


def network_backward_another_way(ds, cache, params):
    """tanh's backward by the library's Tanh layer."""
    def tanh_backward(upstream, a):
        layer = Tanh()
        layer.forward(a)
        return layer.backward(upstream)
    dr = ds @ params["W3"].T
    da2 = tanh_backward(dr, cache["a2"])
    dh1 = da2 @ params["W2"].T
    dh1 = dh1 + dr
    da1 = tanh_backward(dh1, cache["a1"])
    return {"r": dr, "W3": np.einsum("nh,nc->hc", cache["r"], ds), "b3": ds.sum(0),
            "h2": dr.copy(), "a2": da2, "W2": cache["h1"].T @ da2, "b2": da2.sum(0),
            "h1": dh1, "a1": da1, "W1": cache["X"].T @ da1, "b1": da1.sum(0)}


def train_step(params, X, y, lr):
    loss, cache = network_forward(params, X, y)
    grads = network_backward_another_way(loss_backward_another_way(cache)["s"], cache, params)
    for name, grad in grads.items():
        if name in params:
            params[name] -= lr * grad
    return loss


@pytest.mark.parametrize("check, answer", [
    ("check_loss_backward", loss_backward_another_way),
    ("check_network_backward", network_backward_another_way),
    ("check_train_step", train_step),
])
def test_answers_written_another_way_pass(lab, check, answer, capsys):
    getattr(lab, check)(answer)
    assert "\u2713" in capsys.readouterr().out


def not_written(*args):
    raise NotImplementedError()


@pytest.mark.parametrize("check", ["check_loss_backward", "check_network_backward",
                                   "check_train_step"])
def test_a_blank_answer_is_told_it_is_not_written(lab, check):
    with pytest.raises(LabCheckError, match="not written yet"):
        getattr(lab, check)(not_written)


def test_the_first_wrong_line_is_named_with_its_forward_line(lab):
    def wrong_log(cache):
        grads = loss_backward_another_way(cache)
        return {**grads, "z": grads["lse"] * cache["z"]}
    with pytest.raises(LabCheckError, match=r"(?s)^dz\[.*expected.*"
                                            r"\(dz in lse = np\.log\(z\),.*1 / z"):
        lab.check_loss_backward(wrong_log)


def test_a_skip_connection_left_out_of_dh1_is_named(lab):
    def no_skip(ds, cache, params):
        grads = network_backward_another_way(ds, cache, params)
        return {**grads, "h1": grads["h1"] - grads["r"]}
    with pytest.raises(LabCheckError, match="h1 is used twice"):
        lab.check_network_backward(no_skip)


def test_the_library_network_computes_the_labs_forward_pass(lab):
    params, X, y = lab.problem(6, 4, 5, 3, seed=0)
    scores = lab.library_network(params).forward(X)
    assert np.allclose(scores, lab.forward(params, X, y)["s"])


def test_an_untrained_network_misses_the_target(lab):
    rng = np.random.default_rng(0)
    params = {"W1": rng.standard_normal((64, 8)), "b1": np.zeros(8),
              "W2": rng.standard_normal((8, 8)), "b2": np.zeros(8),
              "W3": rng.standard_normal((8, 10)), "b3": np.zeros(10)}
    with pytest.raises(LabCheckError, match="expected at least 0.93 on both"):
        lab.check_build_and_train(params)
