"""Lab 04 (backprop through an MLP): mistakes in the linear, ReLU and sigmoid backward passes and
in the training step."""
from . import Mistake

UPDATE = "params[name] -= lr * grad"

TRIPLE_LOOP = """def linear_backward(dout, x, W):
    N, D = x.shape
    M = W.shape[1]
    dx, dW, db = np.zeros((N, D)), np.zeros((D, M)), np.zeros(M)
    for n in range(N):
        for m in range(M):
            db[m] += dout[n, m]
            for d in range(D):
                dx[n, d] += dout[n, m] * W[d, m]
                dW[d, m] += x[n, d] * dout[n, m]
    return dx, dW, db
"""

W2_FIRST = """def train_step(params, x, y, lr):
    z1 = x @ params["W1"] + params["b1"]
    h = np.maximum(z1, 0)
    loss, dlogits = softmax_cross_entropy(h @ params["W2"] + params["b2"], y)
    _, dW2, db2 = linear_backward(dlogits, h, params["W2"])
    params["W2"] -= lr * dW2
    params["b2"] -= lr * db2
    dh, _, _ = linear_backward(dlogits, h, params["W2"])
    _, dW1, db1 = linear_backward(relu_backward(dh, z1), x, params["W1"])
    params["W1"] -= lr * dW1
    params["b1"] -= lr * db1
    return loss
"""

MISTAKES = [
    Mistake("linear_backward: divided dW by the batch size", "linear_backward",
            ("dW = x.T @ dout", "dW = x.T @ dout / x.shape[0]"),
            hint="no 1/N in dW"),
    Mistake("linear_backward: dW transposed, dout.T @ x", "linear_backward",
            ("dW = x.T @ dout", "dW = dout.T @ x"),
            hint="dout.T @ x is its transpose"),
    Mistake("linear_backward: forgot to transpose x in dW", "linear_backward",
            ("dW = x.T @ dout", "dW = x @ dout"),
            hint="did you forget to transpose x?"),
    Mistake("linear_backward: forgot to transpose W in dx", "linear_backward",
            ("dx = dout @ W.T", "dx = dout @ W"),
            hint="did you forget to transpose W?"),
    Mistake("linear_backward: db summed over the wrong axis", "linear_backward",
            ("dout.sum(axis=0)", "dout.sum(axis=1)"),
            hint="sum over the batch (axis=0)"),
    Mistake("linear_backward: db averaged over the batch", "linear_backward",
            ("dout.sum(axis=0)", "dout.mean(axis=0)"),
            hint="not a mean"),
    Mistake("relu_backward: returns dout unchanged (forgot the derivative)", "relu_backward",
            ("return dout * (x > 0)", "return dout"),
            hint="you returned dout unchanged"),
    Mistake("relu_backward: multiplies by ReLU(x) instead of its derivative", "relu_backward",
            ("return dout * (x > 0)", "return dout * np.maximum(x, 0)"),
            hint="not by ReLU(x) itself"),
    Mistake("relu_backward: x >= 0 at the kink", "relu_backward",
            ("(x > 0)", "(x >= 0)"),
            hint="x > 0, not x >= 0"),
    Mistake("relu_backward: zeroes dout in place", "relu_backward",
            ("return dout * (x > 0)", "dout[x <= 0] = 0\n    return dout"),
            hint="relu_backward changed one of its input arrays in place"),
    Mistake("sigmoid_backward: applies the sigmoid to out again", "sigmoid_backward",
            ("return dout * out * (1 - out)",
             "s = 1 / (1 + np.exp(-out))\n    return dout * s * (1 - s)"),
            hint="do not apply the sigmoid again"),
    Mistake("sigmoid_backward: tanh's derivative 1 - out**2", "sigmoid_backward",
            ("out * (1 - out)", "(1 - out**2)"),
            hint="the derivative of tanh"),
    Mistake("sigmoid_backward: forgot to multiply by dout", "sigmoid_backward",
            ("return dout * out * (1 - out)", "return out * (1 - out)"),
            hint="chain rule: multiply the local derivative"),
    Mistake("train_step: added the gradient (wrong sign of the update)", "train_step",
            (UPDATE, "params[name] += lr * grad"),
            hint="did you add the gradient instead of subtracting it?"),
    Mistake("train_step: forgot the learning rate", "train_step",
            (UPDATE, "params[name] -= grad"),
            hint="multiply the gradient by the learning rate"),
    Mistake("train_step: divided the gradients by the batch size again", "train_step",
            (UPDATE, "params[name] -= lr * grad / len(x)"),
            hint="already hold the 1/N"),
    Mistake("train_step: replaces the parameter arrays instead of updating them in place",
            "train_step", (UPDATE, "params[name] = params[name] - lr * grad"),
            hint="update it in place"),
    Mistake("train_step: forgot the ReLU's derivative in the backward pass", "train_step",
            ("dz1 = relu_backward(dh, z1)", "dz1 = dh"),
            hint="ReLU's derivative"),
    Mistake("train_step: dW2 from the pre-activation z1 instead of h = relu(z1)",
            "train_step", ("linear_backward(dlogits, h,", "linear_backward(dlogits, z1,"),
            hint="layer 2's input is H = relu(Z1)"),
    Mistake("train_step: returns the loss after the update", "train_step",
            ("    return loss\n",
             "    return softmax_cross_entropy(np.maximum(x @ params[\"W1\"] + params[\"b1\"], 0)"
             " @ params[\"W2\"] + params[\"b2\"], y)[0]\n"),
            hint="computed before the update"),
    Mistake("linear_backward: Python loops over every entry (not vectorized)",
            "linear_backward", TRIPLE_LOOP, hint="vectorize, no Python loops", speed=True),
    Mistake("train_step: updates W2 before computing dH with it", "train_step", W2_FIRST,
            hint="W2 was updated before dH was computed"),
    Mistake("build_and_train: a learning rate far too small to train in the epochs given",
            "build_and_train", ("lr=0.1)", "lr=1e-4)"), hint="is the training loss falling?"),
    Mistake("build_and_train: all weights initialised to zero", "build_and_train",
            [("init_rng.standard_normal((D, H)) * np.sqrt(2 / D)", "np.zeros((D, H))"),
             ("init_rng.standard_normal((H, C)) * np.sqrt(1 / H)", "np.zeros((H, C))")],
            hint="is the training loss falling?"),
]
