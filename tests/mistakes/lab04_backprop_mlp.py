"""Lab 04 (backprop, line by line): mistakes in the backward pass of the stable log-sum-exp
cross-entropy, of the tanh layers and the skip connection, in the training step and in the
training run."""
from . import Mistake

UPDATE = "params[name] -= lr * grads[name]"
DLOGP = "= -1 / N"
DZ = 'dz = dlse / cache["z"]'
DSHIFTED = 'dshifted = dlogp + de * cache["e"]'
DA2 = 'da2 = dh2 * (1 - cache["h2"] ** 2)'
DA1 = 'da1 = dh1 * (1 - cache["h1"] ** 2)'
DH1 = 'dh1 = dr + da2 @ params["W2"].T'

MISTAKES = [
    # loss_backward
    Mistake("loss_backward: forgot the 1/N of the mean in dlogp", "loss_backward",
            (DLOGP, "= -1"), hint="times too large"),
    Mistake("loss_backward: dlogp with the wrong sign (the loss is minus the mean)",
            "loss_backward", (DLOGP, "= 1 / N"), hint="the loss is MINUS the mean"),
    Mistake("loss_backward: -1/N in every entry of dlogp, not only at the labels",
            "loss_backward", ("dlogp = np.zeros_like(cache[\"logp\"])",
                              "dlogp = np.full_like(cache[\"logp\"], -1 / N)"),
            hint="only the entry of each row's label enters the loss"),
    Mistake("loss_backward: dlse with a plus sign", "loss_backward",
            ("dlse = -dlogp.sum", "dlse = dlogp.sum"), hint="lse is SUBTRACTED"),
    Mistake("loss_backward: dlse not summed over the row", "loss_backward",
            ("dlse = -dlogp.sum(axis=1, keepdims=True)", "dlse = -dlogp"),
            hint="sum over the row (axis=1, keepdims=True)"),
    Mistake("loss_backward: multiplied by z where log's derivative is 1 / z", "loss_backward",
            (DZ, 'dz = dlse * cache["z"]'), hint="the derivative of log(z) is 1 / z"),
    Mistake("loss_backward: dz without the upstream gradient", "loss_backward",
            (DZ, 'dz = 1 / cache["z"]'), hint="multiply the upstream dlse"),
    Mistake("loss_backward: de left with the shape of z, (N, 1)", "loss_backward",
            ('de = dz * np.ones_like(cache["e"])', "de = dz"),
            hint="de has the shape of e"),
    Mistake("loss_backward: de multiplied by e (the sum's derivative is 1)", "loss_backward",
            ('de = dz * np.ones_like(cache["e"])', 'de = dz * cache["e"]'),
            hint="a sum's derivative with respect to each term is 1"),
    Mistake("loss_backward: dshifted forgot the path through logp = shifted - lse",
            "loss_backward", (DSHIFTED, 'dshifted = de * cache["e"]'),
            hint="you kept only the path through e"),
    Mistake("loss_backward: dshifted forgot exp's derivative", "loss_backward",
            (DSHIFTED, "dshifted = dlogp + de"),
            hint="the derivative of exp(shifted) is exp(shifted) = e itself"),
    # network_backward
    Mistake("network_backward: dW3 from h2 instead of r = h1 + h2", "network_backward",
            ('dW3 = cache["r"].T @ ds', 'dW3 = cache["h2"].T @ ds'), hint="is r, not h2"),
    Mistake("network_backward: dW3 divided by the batch size", "network_backward",
            ('dW3 = cache["r"].T @ ds', 'dW3 = cache["r"].T @ ds / len(ds)'),
            hint="times too small"),
    Mistake("network_backward: tanh's derivative written with a2 instead of h2",
            "network_backward", (DA2, 'da2 = dh2 * (1 - cache["a2"] ** 2)'),
            hint="is not 1 - a2**2"),
    Mistake("network_backward: the sigmoid's derivative for tanh", "network_backward",
            (DA2, 'da2 = dh2 * cache["h2"] * (1 - cache["h2"])'),
            hint="the sigmoid's derivative, not tanh's"),
    Mistake("network_backward: dW2 from a1 instead of h1 = tanh(a1)", "network_backward",
            ('dW2 = cache["h1"].T @ da2', 'dW2 = cache["a1"].T @ da2'),
            hint="is h1, not a1"),
    Mistake("network_backward: dh1 forgot the skip connection", "network_backward",
            (DH1, 'dh1 = da2 @ params["W2"].T'), hint="you kept only the path through a2"),
    Mistake("network_backward: dh1 forgot the path through layer 2", "network_backward",
            (DH1, "dh1 = dr"), hint="you kept only the skip"),
    Mistake("network_backward: forgot tanh's derivative in layer 1", "network_backward",
            (DA1, "da1 = dh1"), hint="multiply dh1 by tanh's local derivative"),
    Mistake("network_backward: db1 summed over the wrong axis", "network_backward",
            ("db1 = da1.sum(axis=0)", "db1 = da1.sum(axis=1)"),
            hint="a bias is added to every row"),
    Mistake("network_backward: dW1 transposed, da1.T @ X", "network_backward",
            ('dW1 = cache["X"].T @ da1', 'dW1 = da1.T @ cache["X"]'),
            hint="the shape is the transpose of the expected one"),
    # train_step
    Mistake("train_step: added the gradient (wrong sign of the update)", "train_step",
            (UPDATE, "params[name] += lr * grads[name]"),
            hint="did you add the gradient instead of subtracting it?"),
    Mistake("train_step: forgot the learning rate", "train_step",
            (UPDATE, "params[name] -= grads[name]"),
            hint="multiply the gradient by the learning rate"),
    Mistake("train_step: divided the gradients by the batch size again", "train_step",
            (UPDATE, "params[name] -= lr * grads[name] / len(X)"),
            hint="already hold the 1/N"),
    Mistake("train_step: replaces the parameter arrays instead of updating them in place",
            "train_step", (UPDATE, "params[name] = params[name] - lr * grads[name]"),
            hint="update it in place"),
    Mistake("train_step: returns the loss after the update", "train_step",
            ("    return loss\n", "    return network_forward(params, X, y)[0]\n"),
            hint="computed before the update"),
    # build_and_train
    Mistake("build_and_train: a learning rate far too small to train in the epochs given",
            "build_and_train", ("lr=0.1)", "lr=1e-4)"), hint="is the training loss falling?"),
    Mistake("build_and_train: all weights initialised to zero", "build_and_train",
            [("init_rng.standard_normal((D, H)) / np.sqrt(D)", "np.zeros((D, H))"),
             ("init_rng.standard_normal((H, H)) / np.sqrt(H)", "np.zeros((H, H))"),
             ("init_rng.standard_normal((H, C)) / np.sqrt(H)", "np.zeros((H, C))")],
            hint="is the training loss falling?"),
]
