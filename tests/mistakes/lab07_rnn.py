"""Lab 07 (RNN): mistakes in the RNN step, its backward pass, BPTT over a sequence and gradient
clipping."""
from . import Mistake

STEP = "h_next = np.tanh(x @ Wx + h_prev @ Wh + b)"
DA = "da = dh_next * (1 - h_next**2)"
FORWARD_STEP = "h_prev, step_cache = rnn_step_forward(x[:, t], h_prev, Wx, Wh, b)"
AFTER_LOOP = "    cache = caches\n"
BPTT_STEP = "rnn_step_backward(dh[:, t] + dh_next, cache[t])"
CLIP = ("        for grad in grads.values():\n"
        "            grad *= max_norm / total_norm\n")
IF_CLIP = "    if total_norm > max_norm:\n" + CLIP

MISTAKES = [
    Mistake("rnn_step_forward: forgot the tanh", "rnn_step_forward",
            (STEP, "h_next = x @ Wx + h_prev @ Wh + b"),
            hint="did you forget the tanh?"),
    Mistake("rnn_step_forward: h_prev @ Wh.T", "rnn_step_forward",
            ("h_prev @ Wh + b", "h_prev @ Wh.T + b"),
            hint="not h_prev @ Wh.T"),
    Mistake("rnn_step_forward: the bias added after the tanh", "rnn_step_forward",
            (STEP, "h_next = np.tanh(x @ Wx + h_prev @ Wh) + b"),
            hint="the bias goes inside the tanh"),
    Mistake("rnn_step_forward: a sigmoid instead of tanh", "rnn_step_forward",
            (STEP, "h_next = 1 / (1 + np.exp(-(x @ Wx + h_prev @ Wh + b)))"),
            hint="uses tanh, not the sigmoid"),
    Mistake("rnn_step_backward: tanh's derivative from the pre-activation, 1 - a**2",
            "rnn_step_backward", (DA, "a = np.arctanh(h_next)  # the pre-activation\n"
                                      "    da = dh_next * (1 - a**2)"),
            hint="take tanh's derivative from its output"),
    Mistake("rnn_step_backward: forgot the tanh derivative", "rnn_step_backward",
            (DA, "da = dh_next"),
            hint="go back through the tanh"),
    Mistake("rnn_step_backward: 1 - h_next instead of 1 - h_next**2", "rnn_step_backward",
            ("(1 - h_next**2)", "(1 - h_next)"),
            hint="tanh's derivative is not 1 - h"),
    Mistake("rnn_step_backward: dh_prev without the transpose of Wh", "rnn_step_backward",
            ("dh_prev = da @ Wh.T", "dh_prev = da @ Wh"),
            hint="did you forget the transpose?"),
    Mistake("rnn_step_backward: dWh transposed", "rnn_step_backward",
            ("dWh = h_prev.T @ da", "dWh = da.T @ h_prev"),
            hint="dWh is transposed"),
    Mistake("rnn_step_backward: db averaged over the batch", "rnn_step_backward",
            ("db = da.sum(axis=0)", "db = da.mean(axis=0)"),
            hint="not a mean"),
    Mistake("rnn_step_backward: db summed over the hidden units", "rnn_step_backward",
            ("db = da.sum(axis=0)", "db = da.sum(axis=1)"),
            hint="sum over the batch, axis 0"),
    Mistake("rnn_step_backward: multiplies dh_next in place", "rnn_step_backward",
            (DA, "dh_next *= 1 - h_next**2\n    da = dh_next"),
            hint="rnn_step_backward changed dh_next in place"),
    Mistake("rnn_forward: every step starts from h0", "rnn_forward",
            [(FORWARD_STEP, "h_t, step_cache = rnn_step_forward(x[:, t], h0, Wx, Wh, b)"),
             ("h[:, t] = h_prev", "h[:, t] = h_t")],
            hint="every step must start from the state the previous step produced"),
    Mistake("rnn_forward: returns h0 as the first state", "rnn_forward",
            (AFTER_LOOP, AFTER_LOOP + "    h = np.concatenate([h0[:, None], h], axis=1)\n"),
            hint="leave h0 out"),
    Mistake("rnn_forward: stacks the states along axis 0 (time first)", "rnn_forward",
            (AFTER_LOOP, AFTER_LOOP + "    h = h.transpose(1, 0, 2)\n"),
            hint="time is axis 1"),
    Mistake("rnn_backward: walks time forwards", "rnn_backward",
            ("reversed(range(T))", "range(T)"),
            hint="in which order must the loop visit the steps?"),
    Mistake("rnn_backward: forgot the gradient from the next step", "rnn_backward",
            (BPTT_STEP, "rnn_step_backward(dh[:, t], cache[t])"),
            hint="the gradient coming back from the next step"),
    Mistake("rnn_backward: = instead of += for the shared weights' gradients",
            "rnn_backward", [("dWx += dWx_t", "dWx = dWx_t"), ("dWh += dWh_t", "dWh = dWh_t"),
                             ("db += db_t", "db = db_t")],
            hint="their gradient is a sum over time"),
    Mistake("rnn_backward: adds dh_next into the caller's dh in place", "rnn_backward",
            (BPTT_STEP, "rnn_step_backward(dh[:, t], cache[t])"
                        " if not dh.__setitem__((slice(None), t), dh[:, t] + dh_next) else None"),
            hint="rnn_backward changed dh in place"),
    Mistake("rnn_backward: dh0 left at zero", "rnn_backward",
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
            [("init_rng.uniform(-0.25, 0.25, (inputs.shape[2], H))", "np.zeros((inputs.shape[2], H))"),
             ("init_rng.uniform(-0.25, 0.25, (H, H))", "np.zeros((H, H))"),
             ("init_rng.standard_normal((H, 1)) * 0.25", "np.zeros((H, 1))")],
            hint="are your weights all starting at zero?"),
    Mistake("rnn_step_backward: a Python loop over the examples of the batch", "rnn_step_backward",
            [("    dx = da @ Wx.T\n    dh_prev = da @ Wh.T\n    dWx = x.T @ da\n    dWh = h_prev.T @ da\n",
              "    dx, dh_prev = np.empty(x.shape), np.empty(h_prev.shape)\n"
              "    dWx, dWh = np.zeros(Wx.shape), np.zeros(Wh.shape)\n"
              "    for n in range(len(x)):\n"
              "        dx[n], dh_prev[n] = da[n] @ Wx.T, da[n] @ Wh.T\n"
              "        dWx += np.outer(x[n], da[n])\n"
              "        dWh += np.outer(h_prev[n], da[n])\n")],
            hint="vectorize", speed=True),
]
