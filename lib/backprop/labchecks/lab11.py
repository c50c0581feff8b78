"""Visible checks of lab 11 (normalization and residual connections).

The forward pass is checked against the library's `BatchNorm1d`; every gradient against finite
differences of the forward pass. A wrong gradient is named by comparing it with the finite
differences of a *wrong forward pass*: the one a mistake differentiates (the variance divided by
N - 1, a batch mean held constant, statistics over the features...), so no message computes a
backward formula.
"""
import numpy as np

from backprop import checks
from backprop import gradcheck
from backprop.labchecks import heldout
from backprop.layers import Layer, Linear, ReLU, Sequential
from backprop.normalization import BatchNorm1d
from backprop.residual import Residual
from backprop.train import accuracy, predict

TEST_TARGET = 0.93  # test accuracy of the learner's deep residual network with their norm
DEPTH = 20          # residual blocks of the build-and-train network


UNBIASED = "the variance of the forward pass divides by N, not N - 1"
NO_EPS = "eps belongs in the backward pass too: the forward divides by sqrt(var + eps)"
A_SUM = "a sum over the batch, not a mean: every example adds its share"
LAYER_AXIS = ("batch norm's statistics are over the batch (axis 0), one per feature; over the "
              "features (axis 1) is layer norm")


def _unchanged(name, arrays, saved):
    checks.check_true(all(np.array_equal(a, s) for a, s in zip(arrays, saved)),
                      f"{name} changed one of its input arrays in place: compute new arrays "
                      "and return them.")


def _batch(rng, N, D):
    """A batch whose features have different means and scales; the last feature's variance
    is about eps (1e-5), so that leaving eps out changes the result visibly."""
    scales = np.linspace(0.5, 3.0, D)
    scales[-1] = 3e-3
    return rng.standard_normal((N, D)) * scales + rng.standard_normal(D)


def _normalized(x, eps, axis=0, ddof=0, frozen_mean=None, frozen_var=None):
    """The normalization of the lab's forward pass, or a variant of it that a mistake
    differentiates: statistics over another axis, the variance divided by N - ddof, or a
    statistic held at a constant value (so that no gradient flows through it)."""
    mean = x.mean(axis=axis, keepdims=True) if frozen_mean is None else frozen_mean
    var = ((x - mean) ** 2).sum(axis=axis, keepdims=True) / (x.shape[axis] - ddof) \
        if frozen_var is None else frozen_var
    return (x - mean) / np.sqrt(var + eps)


def _library_norm(gamma, beta, running_mean, running_var, momentum, eps):
    layer = BatchNorm1d(len(gamma), eps=eps, momentum=momentum)
    layer.load_state_dict({"weight": gamma, "bias": beta, "running_mean": running_mean,
                           "running_var": running_var, "num_batches_tracked": np.array(0)})
    return layer


def check_batchnorm_forward(batchnorm_forward):
    """Training and evaluation mode against backprop.normalization.BatchNorm1d: the output and
    the running averages, updated in place in training mode only."""
    with checks.report("batchnorm_forward"):
        rng = np.random.default_rng(1)
        for N, D, momentum in [(5, 3, 0.1), (2, 4, 0.3), (7, 2, 0.1)]:
            x, shape = _batch(rng, N, D), f"(N, D) = {(N, D)}"
            gamma, beta = 1 + 0.5 * rng.standard_normal(D), rng.standard_normal(D)
            old_mean, old_var = rng.standard_normal(D), 0.5 + rng.random(D)
            running_mean, running_var = old_mean.copy(), old_var.copy()
            saved = [a.copy() for a in (x, gamma, beta)]
            layer = _library_norm(gamma, beta, old_mean, old_var, momentum, 1e-5)
            expected = layer.forward(x)
            out = checks.check_call(f"batchnorm_forward in training mode for {shape}",
                                    batchnorm_forward, x, gamma, beta, running_mean,
                                    running_var, training=True, momentum=momentum, eps=1e-5)
            _unchanged("batchnorm_forward", (x, gamma, beta), saved)
            batch_mean, batch_var = x.mean(axis=0), x.var(axis=0)
            checks.check_close(f"out in training mode for {shape}", out, expected,
                               mistakes={
                "the normalization divides the variance by N (the biased variance); N - 1 "
                "is only for the running average": gamma * _normalized(x, 1e-5, ddof=1) + beta,
                "eps is added to the variance under the square root; it is missing":
                    gamma * _normalized(x, 0.0) + beta,
                "in training mode, normalize with the batch's own statistics, not the running "
                "averages": gamma * (x - old_mean) / np.sqrt(old_var + 1e-5) + beta,
                "the statistics of batch norm are over the batch (axis 0), one per feature":
                    gamma * _normalized(x, 1e-5, axis=1) + beta})
            kept = "running_mean and running_var did not change: update them in place " \
                   "(running_mean[:] = ..., or *= and +=), the caller keeps those arrays"
            checks.check_close(f"running_mean after a training step for {shape}", running_mean,
                               layer.running_mean, mistakes={
                kept: old_mean,
                "momentum is the weight of the NEW batch (PyTorch's convention): "
                "(1 - momentum) * old + momentum * batch": momentum * old_mean +
                    (1 - momentum) * batch_mean})
            checks.check_close(f"running_var after a training step for {shape}", running_var,
                               layer.running_var, mistakes={
                kept: old_var,
                "running_var keeps the unbiased variance (divided by N - 1), as PyTorch does":
                    (1 - momentum) * old_var + momentum * batch_var,
                "momentum is the weight of the NEW batch (PyTorch's convention): "
                "(1 - momentum) * old + momentum * batch": momentum * old_var +
                    (1 - momentum) * batch_var * N / (N - 1)})
            # evaluation mode, on a batch of other examples and on a single example
            layer.eval()
            for x_eval in (_batch(rng, 4, D), _batch(rng, 1, D)):
                stats = running_mean.copy(), running_var.copy()
                where = f"in evaluation mode for a batch of {len(x_eval)}"
                out = checks.check_call(f"batchnorm_forward {where}", batchnorm_forward,
                                        x_eval, gamma, beta, running_mean, running_var,
                                        training=False, momentum=momentum, eps=1e-5, hint=(
                    "in evaluation mode a batch of one is allowed: use the running averages"))
                checks.check_close(f"out {where}", out, layer.forward(x_eval), mistakes={
                    "evaluation mode must use the running averages, not the batch's statistics"
                    " (an example's output may not depend on the rest of its batch)":
                        gamma * _normalized(x_eval, 1e-5) + beta if len(x_eval) > 1 else None})
                checks.check_true(np.array_equal(running_mean, stats[0]) and
                                  np.array_equal(running_var, stats[1]),
                                  "batchnorm_forward changed running_mean or running_var in "
                                  "evaluation mode: only training updates them.")


def _gradients(forward, arrays, dout):
    """Finite-difference gradients of ``sum(forward(*arrays) * dout)`` in every array."""
    grads = []
    for i, array in enumerate(arrays):
        def of_one(a, i=i):
            return forward(*arrays[:i], a, *arrays[i + 1:])
        grads.append(gradcheck.numerical_gradient(of_one, array.copy(), dout))
    return grads


def check_batchnorm_backward(batchnorm_backward):
    """dx, dgamma, dbeta against finite differences of the training-mode forward pass, then the
    invariants that batch statistics imply."""
    with checks.report("batchnorm_backward"):
        rng = np.random.default_rng(2)
        eps = 1e-5
        for N, D in [(2, 3), (4, 4), (7, 5)]:
            shape = f"(N, D) = {(N, D)}"
            x, dout = _batch(rng, N, D), rng.standard_normal((N, D))
            gamma, beta = 1 + 0.5 * rng.standard_normal(D), rng.standard_normal(D)
            saved = [a.copy() for a in (dout, x, gamma)]
            xhat = _normalized(x, eps)

            def forward(x_, gamma_, beta_, **variant):
                return gamma_ * _normalized(x_, eps, **variant) + beta_

            dx, dgamma, dbeta = _gradients(forward, [x, gamma, beta], dout)
            unbiased, layer_axis = _normalized(x, eps, ddof=1), _normalized(x, eps, axis=1)
            mean, var = x.mean(axis=0), x.var(axis=0)

            def wrong_dx(**variant):  # dx of a forward pass that a mistake differentiates
                return gradcheck.numerical_gradient(
                    lambda x_: forward(x_, gamma, beta, **variant), x.copy(), dout)

            result = checks.check_call(f"batchnorm_backward for {shape}", batchnorm_backward,
                                       dout, x, gamma, eps=eps, hint=(
                "a shape mismatch: the batch statistics have one entry per feature (D,); "
                "write down the shape of every array"))
            checks.check_tuple("batchnorm_backward", result, ["dx", "dgamma", "dbeta"])
            _unchanged("batchnorm_backward", (dout, x, gamma), saved)
            received_dx, received_dgamma, received_dbeta = result
            checks.check_close(f"dbeta for {shape}", received_dbeta, dbeta, batch_size=N,
                               mistakes={
                "sum over the batch (axis 0): dbeta has one entry per feature":
                    dout.sum(axis=1),
                A_SUM: dout.mean(axis=0)})
            checks.check_close(f"dgamma for {shape}", received_dgamma, dgamma, batch_size=N,
                               mistakes={
                "sum over the batch (axis 0): dgamma has one entry per feature":
                    (dout * xhat).sum(axis=1),
                "gamma multiplies the NORMALIZED input xhat, not x": (dout * x).sum(axis=0),
                "gamma multiplies xhat: its gradient needs xhat, not dout alone":
                    dout.sum(axis=0),
                UNBIASED: (dout * unbiased).sum(axis=0),
                NO_EPS: (dout * _normalized(x, 0.0)).sum(axis=0),
                A_SUM: (dout * xhat).mean(axis=0),
                LAYER_AXIS: (dout * layer_axis).sum(axis=0)})
            checks.check_close(f"dx for {shape}", received_dx, dx, rtol=1e-5, atol=1e-7,
                               batch_size=N, mistakes={
                "the mean's path is missing: x reaches the output through the batch mean too "
                "(the mean is not a constant)": wrong_dx(frozen_mean=mean[None]),
                "the variance's path is missing: x reaches the output through the batch "
                "variance too": wrong_dx(frozen_var=var[None]),
                "only the direct path: x also reaches the output through the batch mean and "
                "the batch variance": wrong_dx(frozen_mean=mean[None], frozen_var=var[None]),
                UNBIASED: wrong_dx(ddof=1),
                NO_EPS: gradcheck.numerical_gradient(
                    lambda x_: gamma * _normalized(x_, 0.0) + beta, x.copy(), dout),
                "gamma scales xhat, so the gradient reaching xhat is gamma * dout":
                    gradcheck.numerical_gradient(lambda x_: _normalized(x_, eps), x.copy(),
                                                 dout),
                LAYER_AXIS: wrong_dx(axis=1)})
        # invariants: shifting all of a feature's values leaves the output as it is, and one
        # example's gradient moves every example of the batch
        x, gamma = _batch(rng, 6, 3), np.array([0.5, 2.0, 1.0])
        dout = np.zeros((6, 3))
        dout[0] = [1.0, -2.0, 0.5]
        dx = np.asarray(batchnorm_backward(dout, x, gamma, eps=eps)[0], dtype=float)
        checks.check_true(np.allclose(dx.sum(axis=0), 0, atol=1e-8 * np.abs(dx).max()),
                          f"dx should sum to 0 over the batch for every feature (adding a "
                          f"constant to a feature does not change the output), but its sums "
                          f"are {checks.format_values(dx.sum(axis=0))}: is the mean's path "
                          "missing?")
        checks.check_true(np.all(np.abs(dx[1:]) > 0),
                          "a gradient reaching example 0 only must change every example's dx "
                          "(the batch statistics couple them), but some entries of dx[1:] are "
                          "0: are the paths through the mean and the variance missing?")


def residual_forward(x, params):
    """y = x + relu(x @ W1 + b1) @ W2 + b2: the lab's residual block."""
    return x + np.maximum(x @ params["W1"] + params["b1"], 0) @ params["W2"] + params["b2"]


def check_residual_backward(residual_backward):
    """dx and the block's gradients against finite differences of the residual block."""
    keys = ["W1", "b1", "W2", "b2"]
    with checks.report("residual_backward"):
        rng = np.random.default_rng(3)
        for N, D, H in [(3, 4, 5), (1, 2, 6), (5, 3, 3)]:
            shape = f"(N, D, H) = {(N, D, H)}"
            x, dout = rng.standard_normal((N, D)), rng.standard_normal((N, D))
            params = {"W1": rng.standard_normal((D, H)), "b1": rng.standard_normal(H),
                      "W2": rng.standard_normal((H, D)), "b2": rng.standard_normal(D)}
            z = x @ params["W1"] + params["b1"]
            z[np.abs(z) < 1e-3] = 0.5  # (no pre-activation at ReLU's kink)
            params["b1"] = z[0] - x[0] @ params["W1"] if N == 1 else params["b1"]
            saved = [dout.copy(), x.copy(), *(params[k].copy() for k in keys)]

            def forward(x_, *arrays):
                return residual_forward(x_, dict(zip(keys, arrays)))

            dx, *grads = _gradients(forward, [x, *(params[k] for k in keys)], dout)
            block = dx - dout  # the block's path alone (the finite differences of f)
            result = checks.check_call(f"residual_backward for {shape}", residual_backward,
                                       dout, x, params)
            checks.check_tuple("residual_backward", result, ["dx", "grads"])
            _unchanged("residual_backward", (dout, x, *(params[k] for k in keys)), saved)
            received_dx, received_grads = result
            checks.check_true(isinstance(received_grads, dict) and
                              set(received_grads) == set(keys),
                              f"residual_backward should return grads as a dict with the keys "
                              f"{keys}, got {received_grads!r:.80}")
            checks.check_close(f"dx for {shape}", received_dx, dx, rtol=1e-5, atol=1e-7,
                               mistakes={
                "the skip connection is missing: y = x + f(x) sends dout straight to x as "
                "well as through the block": block,
                "the block's path is missing: dout also flows back through f": dout,
                "the two paths to x ADD up (the sum rule); they do not multiply":
                    dout * block})
            for k, expected in zip(keys, grads):
                checks.check_close(f"grads['{k}'] for {shape}", received_grads[k], expected,
                                   rtol=1e-5, atol=1e-7, batch_size=N)
        # the highway: a block whose output weights are 0 passes dout on unchanged
        params = {"W1": rng.standard_normal((3, 4)), "b1": rng.standard_normal(4),
                  "W2": np.zeros((4, 3)), "b2": np.zeros(3)}
        x, dout = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
        checks.check_close("dx when W2 = 0 (the block outputs 0 and passes no gradient, so dx "
                           "is dout itself)", residual_backward(dout, x, params)[0], dout)


# -- build and train ------------------------------------------------------------------------------
def deep_reference(width, depth=DEPTH, norm=True):
    """The lab's deep network built from the library's layers: Linear(64, width), `depth`
    pre-norm residual blocks Linear-ReLU-Linear with BatchNorm1d, BatchNorm1d, ReLU,
    Linear(width, 10); norm=False: the plain stack, the same blocks without norm or skip."""
    rng = np.random.default_rng(0)  # (the weights are replaced by the learner's)

    def block():
        return Sequential(Linear(width, width, rng=rng), ReLU(), Linear(width, width, rng=rng))

    blocks = [Residual(block(), norm=BatchNorm1d(width)) if norm else block()
              for _ in range(depth)]
    head = [BatchNorm1d(width)] if norm else []
    return Sequential(Linear(64, width, rng=rng), *blocks, *head, ReLU(),
                      Linear(width, 10, rng=rng))


def digits_splits():
    """The digits split of the lab (seed 0), standardized with the training statistics:
    ``((X_train, y_train), (X_val, y_val), (X_test, y_test))``."""
    return heldout.standardized_digits()


def check_build_and_train(deep_net):
    """The learner's trained network, its weights and running averages loaded into the same
    network of the library's layers, measured in evaluation mode on the test split."""
    with checks.report("build_and_train"):
        checks.check_true(isinstance(deep_net, Layer),
                          f"deep_net should be your trained network, built with deep_mlp, got "
                          f"{type(deep_net).__name__}.")
        norms = [layer for _, layer in deep_net.named_layers()
                 if "running_mean" in layer.own_buffers()]
        checks.check_true(norms and not any(isinstance(layer, BatchNorm1d) for layer in norms),
                          "deep_net should normalize with YOUR layer (a Layer whose forward and "
                          "backward call your batchnorm_forward and batchnorm_backward, with "
                          "buffers running_mean and running_var), not the library's "
                          "BatchNorm1d.")
        state = deep_net.state_dict()
        width = np.shape(state.get("0.W", np.zeros((64, 0))))[1]
        reference = deep_reference(width)
        expected = set(reference.state_dict()) - {n for n in reference.state_dict()
                                                  if n.endswith("num_batches_tracked")}
        missing, extra = sorted(expected - set(state)), sorted(
            n for n in set(state) - expected if not n.endswith("num_batches_tracked"))
        checks.check_true(width > 0 and not missing and not extra,
                          f"deep_net should be deep_mlp(your norm layer, depth={DEPTH}) with "
                          f"parameters weight, bias and buffers running_mean, running_var: "
                          f"missing {missing[:4]}, unexpected {extra[:4]}.")
        state.update((n, np.array(0)) for n in reference.state_dict()
                     if n.endswith("num_batches_tracked"))
        reference.load_state_dict(state)
        _, _, (X_test, y_test) = digits_splits()
        test_accuracy = accuracy(predict(reference, X_test), y_test)
        checks.check_true(np.isfinite(test_accuracy) and test_accuracy >= TEST_TARGET,
                          f"your network, evaluated with its running averages, classifies "
                          f"{checks.format_number(test_accuracy)} of the {len(y_test)} test "
                          f"digits correctly, below the target {TEST_TARGET}.\n  Hint: does your "
                          "layer update running_mean and running_var in place in training mode "
                          "and use them in evaluation mode? Is the training loss falling?")
        yours = np.asarray(predict(deep_net, X_test), dtype=float)
        checks.check_true(yours.shape == (len(y_test), 10) and np.allclose(
                              yours, predict(reference, X_test), rtol=1e-6, atol=1e-6),
                          "in evaluation mode, your network's outputs differ from those of the "
                          "same weights and running averages in the library's layers: does "
                          "your layer call batchnorm_forward with training=self.training?")
    print(f"  test accuracy {test_accuracy:.3f} (target {TEST_TARGET})")
