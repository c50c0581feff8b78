"""Lab 07 (GRU): mistakes in the GRU step, the gradient of each of its gates, BPTT over a
sequence and gradient clipping."""
from . import Mistake

STEP = "h_next = (1 - z) * n + z * h_prev"
N_LINE = "n = np.tanh(ax[:, 2 * H:] + r * ah_n)"
FORWARD_STEP = "h_prev, step_cache = gru_step_forward(x[:, t], h_prev, Wx, Wh, b)"
AFTER_LOOP = "    cache = caches\n"
BPTT_STEP = "gru_step_backward(dh[:, t] + dh_next, cache[t])"
CLIP = ("        for grad in grads.values():\n"
        "            grad *= max_norm / total_norm\n")
IF_CLIP = "    if total_norm > max_norm:\n" + CLIP

MISTAKES = [
    Mistake("gru_step_forward: z weighs the candidate, 1 - z the old state", "gru_step_forward",
            (STEP, "h_next = z * n + (1 - z) * h_prev"),
            hint="z weighs the OLD state h_prev"),
    Mistake("gru_step_forward: the gates in the order z, r, n", "gru_step_forward",
            [("r = sigmoid(ax[:, :H] + ah[:, :H])",
              "r = sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])"),
             ("z = sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])",
              "z = sigmoid(ax[:, :H] + ah[:, :H])")],
            hint="PyTorch's order r, z, n"),
    Mistake("gru_step_forward: the reset gate multiplies the whole pre-activation",
            "gru_step_forward", (N_LINE, "n = np.tanh(r * (ax[:, 2 * H:] + ah_n))"),
            hint="the reset gate multiplies only the hidden-side product"),
    Mistake("gru_step_forward: forgot the bias b", "gru_step_forward",
            ("ax = x @ Wx + b", "ax = x @ Wx"),
            hint="did you forget the bias b?"),
    Mistake("gru_step_backward: dz with the wrong sign (n - h_prev)", "gru_step_backward",
            ("dz = dh_next * (h_prev - n)", "dz = dh_next * (n - h_prev)"),
            hint="the update gate z: your dz has the wrong sign"),
    Mistake("gru_step_backward: dh_prev without the direct path through z", "gru_step_backward",
            ("dh_prev = dh_next * z + dah @ Wh.T", "dh_prev = dah @ Wh.T"),
            hint="Did you leave the direct path out of dh_prev?"),
    Mistake("gru_step_backward: dn without the weight 1 - z", "gru_step_backward",
            ("dn = dh_next * (1 - z)", "dn = dh_next"),
            hint="the candidate n: it enters h_next weighted by the update gate"),
    Mistake("gru_step_backward: tanh's derivative from the pre-activation", "gru_step_backward",
            ("dan = dn * (1 - n**2)", "a_n = np.arctanh(n)  # the pre-activation\n"
                                      "    dan = dn * (1 - a_n**2)"),
            hint="take tanh's derivative from its output n"),
    Mistake("gru_step_backward: the reset gate's gradient without h_prev @ Wh's n block",
            "gru_step_backward", ("dar = dan * ah_n * r * (1 - r)", "dar = dan * r * (1 - r)"),
            hint="the reset gate r: it multiplies the n block of h_prev @ Wh"),
    Mistake("gru_step_backward: the hidden side's n block not multiplied by r",
            "gru_step_backward", ("[dar, daz, dan * r]", "[dar, daz, dan]"),
            hint="its hidden-side block is multiplied by the reset gate r"),
    Mistake("gru_step_backward: db from the hidden-side gradient", "gru_step_backward",
            ("db = dax.sum(axis=0)", "db = dah.sum(axis=0)"),
            hint="its n block is not multiplied by r"),
    Mistake("gru_step_backward: forgot the sigmoids' derivatives", "gru_step_backward",
            [("dar = dan * ah_n * r * (1 - r)", "dar = dan * ah_n"),
             ("daz = dz * z * (1 - z)", "daz = dz")],
            hint="go back through their sigmoid"),
    Mistake("gru_step_backward: db averaged over the batch", "gru_step_backward",
            ("db = dax.sum(axis=0)", "db = dax.mean(axis=0)"),
            hint="not a mean"),
    Mistake("gru_step_backward: multiplies dh_next in place", "gru_step_backward",
            ("dn = dh_next * (1 - z)\n    dz = dh_next * (h_prev - n)",
             "dz = dh_next * (h_prev - n)\n    dh_next *= 1 - z\n    dn = dh_next"),
            hint="gru_step_backward changed dh_next in place"),
    Mistake("gru_forward: every step starts from h0", "gru_forward",
            [(FORWARD_STEP, "h_t, step_cache = gru_step_forward(x[:, t], h0, Wx, Wh, b)"),
             ("h[:, t] = h_prev", "h[:, t] = h_t")],
            hint="every step must start from the state the previous step produced"),
    Mistake("gru_forward: stacks the states along axis 0 (time first)", "gru_forward",
            (AFTER_LOOP, AFTER_LOOP + "    h = h.transpose(1, 0, 2)\n"),
            hint="time is axis 1"),
    Mistake("gru_backward: walks time forwards", "gru_backward",
            ("reversed(range(T))", "range(T)"),
            hint="in which order must the loop visit the steps?"),
    Mistake("gru_backward: forgot the gradient from the next step", "gru_backward",
            (BPTT_STEP, "gru_step_backward(dh[:, t], cache[t])"),
            hint="the gradient coming back from the next step"),
    Mistake("gru_backward: = instead of += for the shared weights' gradients",
            "gru_backward", [("dWx += dWx_t", "dWx = dWx_t"), ("dWh += dWh_t", "dWh = dWh_t"),
                             ("db += db_t", "db = db_t")],
            hint="their gradient is a sum over time"),
    Mistake("gru_backward: adds dh_next into the caller's dh in place", "gru_backward",
            (BPTT_STEP, "gru_step_backward(dh[:, t], cache[t])"
                        " if not dh.__setitem__((slice(None), t), dh[:, t] + dh_next) else None"),
            hint="gru_backward changed dh in place"),
    Mistake("gru_backward: dh0 left at zero", "gru_backward",
            ("dh0 = dh_next", "dh0 = np.zeros_like(dh_next)"),
            hint="dh0 is the gradient that flows out of the first step"),
    Mistake("clip_grad_norm: clips each array by its own norm", "clip_grad_norm",
            (IF_CLIP, "    for grad in grads.values():\n"
                      "        own_norm = np.sqrt(np.sum(grad**2))\n"
                      "        if own_norm > max_norm:\n"
                      "            grad *= max_norm / own_norm\n"),
            hint="clip with the GLOBAL norm"),
    Mistake("clip_grad_norm: scales even below max_norm", "clip_grad_norm",
            (IF_CLIP, "    for grad in grads.values():\n"
                      "        grad *= max_norm / total_norm\n"),
            hint="scale only when the norm exceeds max_norm"),
    Mistake("clip_grad_norm: returns the norm after clipping", "clip_grad_norm",
            ("    ### END SOLUTION", "    total_norm = min(total_norm, max_norm)\n"
                                    "    ### END SOLUTION"),
            hint="return the norm BEFORE clipping"),
    Mistake("clip_grad_norm: puts new arrays into the dict", "clip_grad_norm",
            (CLIP, "        for name in grads:\n"
                   "            grads[name] = grads[name] * (max_norm / total_norm)\n"),
            hint="change the arrays themselves"),
    Mistake("clip_grad_norm: the squared norm (no square root)", "clip_grad_norm",
            ("float(np.sqrt(sum(np.sum(grad**2) for grad in grads.values())))",
             "float(sum(np.sum(grad**2) for grad in grads.values()))"),
            hint="the square root of the sum of squares"),
    Mistake("build_and_train: steps up the gradient (+= instead of -=)", "build_and_train",
            ("params[name] -= lr * grads[name]", "params[name] += lr * grads[name]"),
            hint="check that the loss falls while you train"),
    Mistake("build_and_train: every weight starts at zero", "build_and_train",
            [("init_rng.uniform(-0.25, 0.25, (inputs.shape[2], 3 * H))",
              "np.zeros((inputs.shape[2], 3 * H))"),
             ("init_rng.uniform(-0.25, 0.25, (H, 3 * H))", "np.zeros((H, 3 * H))"),
             ("init_rng.standard_normal((H, 1)) * 0.25", "np.zeros((H, 1))")],
            hint="are your weights all starting at zero?"),
    Mistake("gru_step_backward: a Python loop over the examples of the batch",
            "gru_step_backward",
            [("    dx = dax @ Wx.T\n    dh_prev = dh_next * z + dah @ Wh.T\n"
              "    dWx = x.T @ dax\n    dWh = h_prev.T @ dah\n",
              "    dx, dh_prev = np.empty(x.shape), np.empty(h_prev.shape)\n"
              "    dWx, dWh = np.zeros(Wx.shape), np.zeros(Wh.shape)\n"
              "    for k in range(len(x)):\n"
              "        dx[k] = dax[k] @ Wx.T\n"
              "        dh_prev[k] = dh_next[k] * z[k] + dah[k] @ Wh.T\n"
              "        dWx += np.outer(x[k], dax[k])\n"
              "        dWh += np.outer(h_prev[k], dah[k])\n")],
            hint="vectorize", speed=True),
]
