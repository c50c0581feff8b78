"""Lab 11 (normalization and residual connections): mistakes in batch norm's forward pass (the
running averages, evaluation mode), in its backward pass (the paths through the batch
statistics, the axes) and in the residual block's backward pass."""
from . import Mistake

DX = "dx = inv_std * (g - g.mean(axis=0) - xhat * (g * xhat).mean(axis=0))"

LOOP_OVER_EXAMPLES = """def batchnorm_backward(dout, x, gamma, eps=1e-5):
    N, D = x.shape
    mean = x.mean(axis=0)
    inv_std = 1 / np.sqrt(x.var(axis=0) + eps)
    xhat = (x - mean) * inv_std
    dgamma, dbeta = np.zeros(D), np.zeros(D)
    for n in range(N):
        dgamma += dout[n] * xhat[n]
        dbeta += dout[n]
    dx = np.zeros_like(x)
    for n in range(N):
        for k in range(N):
            jacobian = ((n == k) - 1 / N - xhat[n] * xhat[k] / N) * inv_std
            dx[n] += gamma * dout[k] * jacobian
    return dx, dgamma, dbeta
"""

MISTAKES = [
    Mistake("batchnorm_forward: normalizes with the unbiased variance (divides by N - 1)",
            "batchnorm_forward", ("x.var(axis=0)", "x.var(axis=0, ddof=1)"),
            hint="the normalization divides the variance by N"),
    Mistake("batchnorm_forward: forgot eps under the square root", "batchnorm_forward",
            ("np.sqrt(var + eps)", "np.sqrt(var)"), hint="eps is added to the variance"),
    Mistake("batchnorm_forward: evaluation mode uses the batch's statistics",
            "batchnorm_forward", ("mean, var = running_mean, running_var",
                                  "mean, var = x.mean(axis=0), x.var(axis=0)"),
            hint="evaluation mode must use the running averages"),
    Mistake("batchnorm_forward: rebinds the running averages instead of updating them in place",
            "batchnorm_forward",
            [("running_mean *= 1 - momentum\n        running_mean += momentum * mean",
              "running_mean = (1 - momentum) * running_mean + momentum * mean"),
             ("running_var *= 1 - momentum\n        running_var += momentum * var * n / (n - 1)",
              "running_var = (1 - momentum) * running_var + momentum * var * n / (n - 1)")],
            hint="update them in place"),
    Mistake("batchnorm_forward: momentum as the weight of the old average (Keras's convention)",
            "batchnorm_forward",
            [("running_mean *= 1 - momentum\n        running_mean += momentum * mean",
              "running_mean *= momentum\n        running_mean += (1 - momentum) * mean"),
             ("running_var *= 1 - momentum\n        running_var += momentum * var * n / (n - 1)",
              "running_var *= momentum\n        running_var += (1 - momentum) * var * n / (n - 1)")],
            hint="momentum is the weight of the NEW batch"),
    Mistake("batchnorm_forward: the running variance keeps the biased variance",
            "batchnorm_forward", ("momentum * var * n / (n - 1)", "momentum * var"),
            hint="running_var keeps the unbiased variance"),
    Mistake("batchnorm_backward: forgot the path through the mean", "batchnorm_backward",
            (DX, "dx = inv_std * (g - xhat * (g * xhat).mean(axis=0))"),
            hint="the mean's path is missing"),
    Mistake("batchnorm_backward: forgot the path through the variance", "batchnorm_backward",
            (DX, "dx = inv_std * (g - g.mean(axis=0))"),
            hint="the variance's path is missing"),
    Mistake("batchnorm_backward: only the direct path (as if the statistics were constants)",
            "batchnorm_backward", (DX, "dx = inv_std * g"), hint="only the direct path"),
    Mistake("batchnorm_backward: the forward's variance taken as unbiased (N - 1)",
            "batchnorm_backward",
            ("inv_std = 1 / np.sqrt(x.var(axis=0) + eps)",
             "inv_std = 1 / np.sqrt(x.var(axis=0, ddof=1) + eps)"),
            hint="divides by N, not N - 1"),
    Mistake("batchnorm_backward: forgot gamma in dx", "batchnorm_backward",
            ("g = gamma * dout", "g = dout"), hint="the gradient reaching xhat is gamma * dout"),
    Mistake("batchnorm_backward: layer norm's axis (statistics over the features)",
            "batchnorm_backward",
            [("inv_std = 1 / np.sqrt(x.var(axis=0) + eps)",
              "inv_std = 1 / np.sqrt(x.var(axis=1, keepdims=True) + eps)"),
             ("xhat = (x - x.mean(axis=0)) * inv_std",
              "xhat = (x - x.mean(axis=1, keepdims=True)) * inv_std"),
             (DX, "dx = inv_std * (g - g.mean(axis=1, keepdims=True) - xhat * "
                  "(g * xhat).mean(axis=1, keepdims=True))")],
            hint="over the features (axis 1) is layer norm"),
    Mistake("batchnorm_backward: dgamma summed over the features instead of the batch",
            "batchnorm_backward",
            ("dgamma = (dout * xhat).sum(axis=0)", "dgamma = (dout * xhat).sum(axis=1)"),
            hint="sum over the batch (axis 0): dgamma"),
    Mistake("batchnorm_backward: dgamma from x instead of xhat", "batchnorm_backward",
            ("dgamma = (dout * xhat).sum(axis=0)", "dgamma = (dout * x).sum(axis=0)"),
            hint="not x"),
    Mistake("batchnorm_backward: dbeta averaged over the batch", "batchnorm_backward",
            ("dbeta = dout.sum(axis=0)", "dbeta = dout.mean(axis=0)"),
            hint="not a mean"),
    Mistake("batchnorm_backward: forgot eps", "batchnorm_backward",
            ("inv_std = 1 / np.sqrt(x.var(axis=0) + eps)",
             "inv_std = 1 / np.sqrt(x.var(axis=0))"),
            hint="eps belongs in the backward pass too"),
    Mistake("batchnorm_backward: a Python loop over pairs of examples (not vectorized)",
            "batchnorm_backward", LOOP_OVER_EXAMPLES, hint="vectorize, no Python loops",
            speed=True),
    Mistake("residual_backward: forgot the skip connection's dout in dx", "residual_backward",
            ("dx = dout + dz @ params[\"W1\"].T", "dx = dz @ params[\"W1\"].T"),
            hint="the skip connection is missing"),
    Mistake("residual_backward: only the skip (the block's path forgotten)",
            "residual_backward", ("dx = dout + dz @ params[\"W1\"].T", "dx = dout"),
            hint="the block's path is missing"),
    Mistake("residual_backward: multiplies the two paths instead of adding them",
            "residual_backward",
            ("dx = dout + dz @ params[\"W1\"].T", "dx = dout * (dz @ params[\"W1\"].T)"),
            hint="ADD up"),
    Mistake("build_and_train: the layer updates copies of its running averages",
            "build_and_train",
            ('self._buffers["running_mean"], self._buffers["running_var"]',
             'self._buffers["running_mean"].copy(), self._buffers["running_var"].copy()'),
            hint="below the target"),
    Mistake("build_and_train: the layer is always in training mode (batch statistics in "
            "evaluation)", "build_and_train",
            ("training=self.training, ", ""), hint="training=self.training"),
]
