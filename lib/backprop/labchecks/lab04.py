"""Visible checks of lab 04 (backprop through an MLP).

Expected gradients come from finite differences of the forward pass
(`gradcheck.numerical_gradient`) and from the course library's layers; a wrong answer is named
by comparing it with what a known mistake computes.
"""
import numpy as np

from backprop import checks
from backprop import gradcheck
from backprop.labchecks import heldout
from backprop.functional import sigmoid
from backprop.layers import Linear, ReLU, Sequential, Sigmoid
from backprop.losses import softmax_cross_entropy

TEST_TARGET = 0.95  # accuracy of the learner's digits MLP on the test split


def _unchanged(name, arrays, saved):
    checks.check_true(all(np.array_equal(a, s) for a, s in zip(arrays, saved)),
                      f"{name} changed one of its input arrays in place: compute new arrays "
                      "and return them.")


def check_linear_backward(linear_backward):
    """dx, dW, db against finite differences of y = x @ W + b, for square and oblong shapes."""
    with checks.report("linear_backward"):
        rng = np.random.default_rng(1)
        for N, D, M in [(3, 3, 3), (5, 4, 3), (1, 6, 2)]:
            x, W = rng.standard_normal((N, D)), rng.standard_normal((D, M))
            b, dout = rng.standard_normal(M), rng.standard_normal((N, M))
            saved = [a.copy() for a in (dout, x, W)]
            expected = {"dx": gradcheck.numerical_gradient(lambda x_: x_ @ W + b, x.copy(), dout),
                        "dW": gradcheck.numerical_gradient(lambda W_: x @ W_ + b, W.copy(), dout),
                        "db": gradcheck.numerical_gradient(lambda b_: x @ W + b_, b.copy(), dout)}
            mistakes = {
                "dx": {"dx has the shape of x, (N, D): which product of dout (N, M) and W "
                       "(D, M) gives that, with dout first?": W @ dout.T},
                "dW": {"dW has the shape of W, (D, M); dout.T @ x is its transpose":
                           dout.T @ x,
                       "no 1/N in dW: dout already holds the 1/N of a mean loss": x.T @ dout / N},
                "db": {"sum over the batch (axis=0): one entry per output unit":
                           dout.sum(axis=1),
                       "db is a sum over the batch, not a mean (dout already holds the 1/N)":
                           dout.mean(axis=0),
                       "sum over axis 0 only: db has one entry per output unit": dout.sum()}}
            if N == D == M:  # mistakes that only square shapes let through
                mistakes["dx"]["dx: did you forget to transpose W?"] = dout @ W
                mistakes["dW"]["dW: did you forget to transpose x?"] = x @ dout
            result = checks.check_call(f"linear_backward for (N, D, M) = {(N, D, M)}",
                                       linear_backward, dout, x, W, hint=(
                "a shape mismatch in a matrix product: write down the shape of each array "
                "and pick the product whose shape is that of the gradient (lesson 04, "
                "section 2, \"shapes must match\")"))
            checks.check_tuple("linear_backward", result, ["dx", "dW", "db"])
            for name, received in zip(["dx", "dW", "db"], result):
                checks.check_close(f"{name} for (N, D, M) = {(N, D, M)}", received,
                                   expected[name], rtol=1e-5, atol=1e-7, batch_size=N,
                                   mistakes=mistakes[name])
            _unchanged("linear_backward", (dout, x, W), saved)


def _kink_free(rng, shape):
    x = rng.standard_normal(shape)
    x[np.abs(x) < 1e-3] = 0.5  # finite differences mean nothing right at the kink
    return x


def check_relu_backward(relu_backward):
    """dx against finite differences of max(x, 0), and the library's choice at x = 0."""
    with checks.report("relu_backward"):
        rng = np.random.default_rng(2)
        for shape in [(4, 5), (2, 3, 4)]:
            x, dout = _kink_free(rng, shape), rng.standard_normal(shape)
            saved = [dout.copy(), x.copy()]
            expected = gradcheck.numerical_gradient(lambda x_: np.maximum(x_, 0), x.copy(), dout)
            received = checks.check_call(f"relu_backward for shape {shape}", relu_backward, dout, x)
            _unchanged("relu_backward", (dout, x), saved)
            checks.check_close(f"relu_backward(dout, x) for shape {shape}", received, expected,
                               rtol=1e-5, atol=1e-7, mistakes={
                "multiply dout by the local derivative of ReLU; you returned dout unchanged":
                    dout,
                "multiply dout by the derivative of ReLU, not by ReLU(x) itself":
                    dout * np.maximum(x, 0),
                "multiply dout by the derivative of ReLU, not by x": dout * x,
                "chain rule: multiply the local derivative by the upstream gradient dout":
                    (x > 0) * 1.0,
                "the gradient passes where x > 0 and is blocked where x < 0, not the other "
                "way round": dout * (x < 0)})
        x0, dout0 = np.array([[-1.0, 0.0, 2.0]]), np.array([[3.0, 4.0, 5.0]])
        layer = ReLU()
        layer.forward(x0)
        checks.check_close("relu_backward at x = [-1, 0, 2]", relu_backward(dout0, x0),
                           layer.backward(dout0), mistakes={
            "at x = 0 use the derivative 0, as the library and PyTorch do (x > 0, not x >= 0)":
                [[0.0, 4.0, 5.0]]})


def check_sigmoid_backward(sigmoid_backward):
    """dx, from the sigmoid's output, against finite differences of the sigmoid in x."""
    with checks.report("sigmoid_backward"):
        rng = np.random.default_rng(3)
        for shape in [(3, 4), (2, 3, 2)]:
            x, dout = 2 * rng.standard_normal(shape), rng.standard_normal(shape)
            out = sigmoid(x)
            saved = [dout.copy(), out.copy()]
            expected = gradcheck.numerical_gradient(sigmoid, x.copy(), dout)
            received = checks.check_call(f"sigmoid_backward for shape {shape}", sigmoid_backward,
                                         dout, out)
            _unchanged("sigmoid_backward", (dout, out), saved)
            checks.check_close(f"sigmoid_backward(dout, out) for shape {shape}", received,
                               expected, rtol=1e-5, atol=1e-7, mistakes={
                "out is already sigmoid(x): do not apply the sigmoid again":
                    dout * sigmoid(out) * (1 - sigmoid(out)),
                "1 - out**2 is the derivative of tanh, not of the sigmoid":
                    dout * (1 - out**2),
                "chain rule: multiply the local derivative by the upstream gradient dout":
                    out * (1 - out),
                "the local derivative of the sigmoid is not out alone": dout * out,
                "the local derivative of the sigmoid is not 1 - out alone": dout * (1 - out)})
        layer = Sigmoid()
        layer.forward(x)
        checks.check_close("sigmoid_backward compared with backprop.layers.Sigmoid",
                           sigmoid_backward(dout, out), layer.backward(dout))


def _reference_step(N, D, H, C, seed):
    """A random problem; the library's loss, parameters and gradients for one step."""
    rng = np.random.default_rng(seed)
    model = Sequential(Linear(D, H, rng=rng), ReLU(), Linear(H, C, rng=rng))
    for name in ("0.b", "2.b"):
        model.params[name][:] = 0.1 * rng.standard_normal(model.params[name].shape)
    x, y = rng.standard_normal((N, D)), rng.integers(0, C, size=N)
    loss, dlogits = softmax_cross_entropy(model.forward(x), y)
    model.backward(dlogits)
    keys = {"W1": "0.W", "b1": "0.b", "W2": "2.W", "b2": "2.b"}
    old = {k: model.params[v].copy() for k, v in keys.items()}
    grads = {k: model.grads[v].copy() for k, v in keys.items()}
    return x, y, loss, dlogits, old, grads


def _wrong_gradients(x, dlogits, old, lr):
    """{parameter: {hint: gradient}} that some backward-pass mistakes compute."""
    z1 = x @ old["W1"] + old["b1"]
    dh = dlogits @ old["W2"].T
    W2_updated = old["W2"] - lr * np.maximum(z1, 0).T @ dlogits
    dz1_late = (dlogits @ W2_updated.T) * (z1 > 0)
    no_relu = "dH must go through the ReLU's derivative (relu_backward) before the first layer"
    late = ("W2 was updated before dH was computed: layer 2's backward needs the OLD W2, so "
            "compute every gradient first, then update")
    return {"W2": {"layer 2's input is H = relu(Z1), not the pre-activation Z1":
                   z1.T @ dlogits},
            "b2": {},
            "W1": {no_relu: x.T @ dh, late: x.T @ dz1_late},
            "b1": {no_relu: dh.sum(axis=0), late: dz1_late.sum(axis=0)}}


def check_train_step(train_step):
    """One step against the library's model: the loss, and every parameter, updated in place."""
    with checks.report("train_step"):
        lr = 0.1
        for N, D, H, C, seed in [(6, 5, 7, 3, 4), (1, 3, 4, 2, 5)]:
            x, y, expected_loss, dlogits, old, grads = _reference_step(N, D, H, C, seed)
            params = {k: v.copy() for k, v in old.items()}
            arrays = dict(params)
            shape = f"(N, D, H, C) = {(N, D, H, C)}"
            loss = checks.check_call(f"train_step for {shape}", train_step, params, x, y, lr)
            new = {k: old[k] - lr * grads[k] for k in old}
            hidden = np.maximum(x @ new["W1"] + new["b1"], 0)
            loss_after = softmax_cross_entropy(hidden @ new["W2"] + new["b2"], y)[0]
            checks.check_scalar(f"loss of train_step for {shape}", loss,
                                expected_loss, mistakes={
                "return the loss of the forward pass, computed before the update": loss_after})
            wrong = _wrong_gradients(x, dlogits, old, lr)
            for k in ["W2", "b2", "W1", "b1"]:
                checks.check_close(f"params['{k}'] after one step for {shape}", params[k],
                                   new[k], mistakes={
                    "did you add the gradient instead of subtracting it? Step against the "
                    "gradient": old[k] + lr * grads[k],
                    "multiply the gradient by the learning rate": old[k] - grads[k],
                    f"params['{k}'] did not change: update the arrays in params, in place":
                        old[k],
                    "the gradients already hold the 1/N of the mean loss (softmax_cross_entropy "
                    "divides by N): do not divide by the batch size again":
                        old[k] - lr * grads[k] / len(x),
                    **{hint: old[k] - lr * g for hint, g in wrong[k].items()}})
                checks.check_true(params[k] is arrays[k],
                                  f"train_step replaced params['{k}'] with a new array: update "
                                  "it in place (-=), so that everything holding the array "
                                  "sees the new values.")


def digits_splits():
    """The digits split of the lab (seed 0), standardized with the training statistics:
    ``((X_train, y_train), (X_val, y_val), (X_test, y_test))``."""
    return heldout.standardized_digits()


def check_build_and_train(digits_params):
    """The learner's trained MLP, run through the library's layers, measured on the test split
    it never saw and on a copy with a little fixed noise."""
    with checks.report("build_and_train"):
        params = heldout.mlp_params(digits_params, "digits_params", name="digits_params")
        _, _, (X_test, y_test) = digits_splits()
        noisy = heldout.noisy(X_test, heldout.visible_rng())
        accuracy, _ = heldout.check_classifier(
            "your MLP", heldout.library_mlp(params), X_test, y_test, noisy, TEST_TARGET,
            hint="is the training loss falling? Try more epochs or another learning rate, "
                 "chosen on the validation split.")
    print(f"  test accuracy {accuracy:.3f} (target {TEST_TARGET})")
