"""Visible checks of lab 07 (RNN): one step forward and backward, BPTT, gradient clipping, and
the learner's RNN trained on sine waves, measured on held-out waves.

Expected values come from the course library (`backprop.rnn`, `backprop.sequence`) and from
finite differences; the values of known mistakes are built from the library's step functions.
"""
from backprop import checks
from backprop import gradcheck
import numpy as np

from backprop import rnn as library
from backprop.layers import Sequential
from backprop.sequence import TemporalLinear
from backprop.sequence import clip_grad_norm as library_clip_grad_norm

NAMES = ["dx", "dh_prev", "dWx", "dWh", "db"]
SEQUENCE_NAMES = ["dx", "dh0", "dWx", "dWh", "db"]
TANH_FROM_OUTPUT = ("take tanh's derivative from its output h_next (Lesson 07, section 3), "
                    "not from the pre-activation")


def _step_args(rng, N, D, H, scale=0.5):
    x, h_prev = rng.standard_normal((N, D)), rng.standard_normal((N, H))
    Wx, Wh, b = (rng.standard_normal(shape) * scale for shape in [(D, H), (H, H), (H,)])
    return x, h_prev, Wx, Wh, b


def _unchanged(arrays, saved):
    return all(np.array_equal(a, s) for a, s in zip(arrays, saved))


def check_rnn_step_forward(rnn_step_forward):
    with checks.report("rnn_step_forward"):
        rng = np.random.default_rng(1)
        x, h_prev, Wx, Wh, b = args = _step_args(rng, 4, 3, 5)
        saved = [a.copy() for a in args]
        result = checks.check_call("rnn_step_forward(x, h_prev, Wx, Wh, b)", rnn_step_forward,
                                   *args)
        checks.check_tuple("rnn_step_forward", result, ["h_next", "cache"])
        expected, _ = library.rnn_step_forward(*args)
        a = x @ Wx + h_prev @ Wh + b
        checks.check_close("h_next", result[0], expected, mistakes={
            "the new state goes through the nonlinearity: did you forget the tanh?": a,
            "Wh maps the old state to the new one as Wx maps the input: did you transpose "
            "Wh? (not h_prev @ Wh.T)": np.tanh(x @ Wx + h_prev @ Wh.T + b),
            "did you forget the bias b?": np.tanh(x @ Wx + h_prev @ Wh),
            "the bias goes inside the tanh, with the two products, not after it":
                np.tanh(x @ Wx + h_prev @ Wh) + b,
            "the RNN of the lesson uses tanh, not the sigmoid": 1 / (1 + np.exp(-a))})
        checks.check_true(_unchanged(args, saved),
                          "rnn_step_forward changed one of its inputs in place.")


def _step_mistakes(x, h_prev, Wx, Wh, b, dh_next):
    """The five gradients that typical mistakes in the step's backward pass produce."""
    h_next, _ = library.rnn_step_forward(x, h_prev, Wx, Wh, b)
    a = np.arctanh(h_next)
    wrong_da = {TANH_FROM_OUTPUT: dh_next * (1 - a**2),
                "did you forget to go back through the tanh (its derivative) first?": dh_next,
                "tanh's derivative is not 1 - h: differentiate tanh again (Lesson 01)":
                    dh_next * (1 - h_next)}
    mistakes = {name: {} for name in NAMES}
    for hint, da in wrong_da.items():
        for name, value in zip(NAMES, [da @ Wx.T, da @ Wh.T, x.T @ da, h_prev.T @ da,
                                       da.sum(axis=0)]):
            mistakes[name][hint] = value
    da = dh_next * (1 - h_next**2)
    mistakes["dh_prev"]["shapes alone do not decide it here (Wh is square): did you forget "
                        "the transpose?"] = da @ Wh
    mistakes["dWh"]["dWh is transposed: its entry [i, j] belongs to h_prev unit i and new "
                    "unit j"] = da.T @ h_prev
    mistakes["dWx"]["dWx is transposed: it must have Wx's shape (D, H)"] = da.T @ x
    mistakes["db"]["db is a sum over the batch, not a mean (the loss already holds any 1/N)"] = \
        da.mean(axis=0)
    mistakes["db"]["db has one entry per hidden unit: sum over the batch, axis 0"] = \
        da.sum(axis=1)
    return mistakes


def check_rnn_step_backward(rnn_step_backward, rnn_step_forward):
    with checks.report("rnn_step_backward"):
        rng = np.random.default_rng(2)
        for N, D, H in [(4, 3, 5), (3, 2, 2)]:
            args = _step_args(rng, N, D, H)
            dh_next = rng.standard_normal((N, H))
            dh_next_saved = dh_next.copy()
            _, cache = checks.check_call("rnn_step_forward", rnn_step_forward, *args)
            result = checks.check_call("rnn_step_backward(dh_next, cache)", rnn_step_backward,
                                       dh_next, cache)
            checks.check_tuple("rnn_step_backward", result, NAMES)
            checks.check_true(np.array_equal(dh_next, dh_next_saved),
                              "rnn_step_backward changed dh_next in place (dh_next *= ...): "
                              "make a new array; the caller still needs dh_next.")
            mistakes = _step_mistakes(*args, dh_next)
            for i, (name, received) in enumerate(zip(NAMES, result)):
                def h_next_of(value, i=i):
                    return library.rnn_step_forward(
                        *[value if j == i else arg for j, arg in enumerate(args)])[0]
                numeric = gradcheck.numerical_gradient(h_next_of, args[i].copy(), dh_next)
                checks.check_close(f"{name} for (N, D, H) = {(N, D, H)}, against finite "
                                   "differences", received, numeric, rtol=1e-5, atol=1e-7,
                                   batch_size=N, mistakes=mistakes[name])


def check_rnn_forward(rnn_forward):
    with checks.report("rnn_forward"):
        rng = np.random.default_rng(3)
        N, T, D, H = 3, 5, 2, 4
        x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
        layer = library.RNN(D, H, rng=rng)
        layer.params["b"][...] = rng.standard_normal(H)
        Wx, Wh, b = (layer.params[k] for k in ["Wx", "Wh", "b"])
        saved = [a.copy() for a in (x, h0)]
        result = checks.check_call("rnn_forward(x, h0, Wx, Wh, b)", rnn_forward, x, h0, Wx, Wh, b)
        checks.check_tuple("rnn_forward", result, ["h", "cache"])
        expected = layer.forward(x, h0=h0)
        stuck = np.stack([library.rnn_step_forward(x[:, t], h0, Wx, Wh, b)[0]
                          for t in range(T)], axis=1)
        checks.check_close("h", result[0], expected, mistakes={
            "every step must start from the state the previous step produced, not from h0":
                stuck,
            "h holds the T states after each step; leave h0 out":
                np.concatenate([h0[:, None], expected], axis=1),
            "h is (N, T, H): time is axis 1, not axis 0": expected.transpose(1, 0, 2)})
        checks.check_true(_unchanged((x, h0), saved), "rnn_forward changed x or h0 in place.")


def _bptt_mistakes(dh, x, h0, Wx, Wh, b):
    """Gradients that typical BPTT mistakes produce, built from the library's step functions."""
    T = x.shape[1]
    caches, h_prev = [], h0
    for t in range(T):
        h_prev, cache = library.rnn_step_forward(x[:, t], h_prev, Wx, Wh, b)
        caches.append(cache)

    def run(order, carry=True, derivative_of_a=False):
        dx, dh_next, sums, last = np.zeros(x.shape), np.zeros_like(h0), [0, 0, 0], None
        for t in order:
            total = dh[:, t] + (dh_next if carry else 0)
            if derivative_of_a:  # rescaled so that the step's (1 - h**2) becomes (1 - a**2)
                h_t = caches[t][4]
                total = total * (1 - np.arctanh(h_t) ** 2) / (1 - h_t**2)
            dx[:, t], dh_next, *grads = library.rnn_step_backward(total, caches[t])
            sums, last = [s + g for s, g in zip(sums, grads)], grads
        return [dx, dh_next, *sums], last

    correct, overwritten = run(reversed(range(T)))
    hints = {
        "step t needs the gradient that comes back from step t + 1: in which order must "
        "the loop visit the steps?": run(range(T))[0],
        "h_t reaches the loss along two paths (Lesson 07, section 3): did you leave out the "
        "gradient coming back from the next step?": run(reversed(range(T)), carry=False)[0],
        TANH_FROM_OUTPUT: run(reversed(range(T)), derivative_of_a=True)[0],
    }
    mistakes = {name: {hint: value[i] for hint, value in hints.items()}
                for i, name in enumerate(SEQUENCE_NAMES)}
    for name, value in zip(SEQUENCE_NAMES[2:], overwritten):
        mistakes[name]["yours is one step's gradient: the weights are shared by all steps, so "
                       "their gradient is a sum over time (= instead of +=?)"] = value
    mistakes["dWh"]["dWh is transposed"] = correct[3].T
    mistakes["dWx"]["dWx is transposed"] = correct[2].T
    mistakes["dh0"]["dh0 is the gradient that flows out of the first step, not zeros"] = \
        np.zeros_like(h0)
    return mistakes


def check_rnn_backward(rnn_backward, rnn_forward):
    with checks.report("rnn_backward"):
        rng = np.random.default_rng(4)
        for N, T, D, H in [(3, 5, 2, 4), (2, 3, 3, 2)]:
            x, h0, dh = (rng.standard_normal(shape) for shape in [(N, T, D), (N, H), (N, T, H)])
            Wx, Wh, b = (rng.standard_normal(shape) * 0.6 for shape in [(D, H), (H, H), (H,)])
            args = [x, h0, Wx, Wh, b]
            dh_saved = dh.copy()
            _, cache = checks.check_call("rnn_forward", rnn_forward, *args)
            result = checks.check_call("rnn_backward(dh, cache)", rnn_backward, dh, cache)
            checks.check_tuple("rnn_backward", result, SEQUENCE_NAMES)
            checks.check_true(np.array_equal(dh, dh_saved),
                              "rnn_backward changed dh in place (dh[:, t] += ... writes into "
                              "the caller's array): make a new array.")
            mistakes = _bptt_mistakes(dh, *args)
            layer = library.RNN(D, H, rng=rng)

            def all_states(i, value):
                x_, h0_, Wx_, Wh_, b_ = [value if j == i else arg for j, arg in enumerate(args)]
                layer.load_state_dict({"Wx": Wx_, "Wh": Wh_, "b": b_})
                return layer.forward(x_, h0=h0_)

            for i, (name, received) in enumerate(zip(SEQUENCE_NAMES, result)):
                numeric = gradcheck.numerical_gradient(lambda v, i=i: all_states(i, v),
                                                       args[i].copy(), dh)
                checks.check_close(f"{name} for (N, T, D, H) = {(N, T, D, H)}, against finite "
                                   "differences", received, numeric, rtol=1e-5, atol=1e-7,
                                   mistakes=mistakes[name])


def check_clip_grad_norm(clip_grad_norm):
    with checks.report("clip_grad_norm"):
        rng = np.random.default_rng(5)
        model = Sequential(library.RNN(3, 4, rng=rng), TemporalLinear(4, 2, rng=rng))
        out = model.forward(rng.standard_normal((2, 6, 3)))
        model.backward(rng.standard_normal(out.shape))
        original = {name: grad.copy() for name, _, grad in model.named_parameters()}
        norm = np.sqrt(sum(np.sum(g**2) for g in original.values()))
        for factor in [0.5, 2.0]:             # one clips, one must leave every array alone
            max_norm = factor * norm
            grads = {name: g.copy() for name, g in original.items()}
            arrays = dict(grads)              # the same array objects, to check in place
            returned = checks.check_call("clip_grad_norm(grads, max_norm)", clip_grad_norm,
                                         grads, max_norm)
            replaced = [name for name in arrays if grads[name] is not arrays[name]]
            checks.check_true(not replaced, f"clip_grad_norm put new arrays into the dict (for "
                              f"{replaced}): change the arrays themselves; an optimizer holds "
                              "the old arrays and would never see new ones.")
            for name, g in original.items():
                model.grads[name][...] = g
            expected_norm = library_clip_grad_norm(model, max_norm)
            case = f"max_norm = {factor} x the norm"
            checks.check_scalar(f"clip_grad_norm(grads, max_norm) for {case}", returned,
                                expected_norm,
                                mistakes={
                "return the norm BEFORE clipping (the size of the raw gradient)":
                    min(norm, max_norm),
                "a norm is the square root of the sum of squares": norm**2})
            for name, grad in arrays.items():
                separately = original[name] * min(1.0, max_norm / np.linalg.norm(original[name]))
                checks.check_close(f"grads[{name!r}] ({case})", grad, model.grads[name], mistakes={
                    "clip with the GLOBAL norm of all gradients together, not each array by its "
                    "own norm: one common factor keeps the direction of the update": separately,
                    "scale only when the norm exceeds max_norm; below it, leave the gradients "
                    "alone": original[name] * max_norm / norm})
        grads = {"W": np.zeros((2, 3)), "b": np.zeros(3)}
        returned = checks.check_call("clip_grad_norm of all-zero gradients", clip_grad_norm,
                                     grads, 1.0, hint="scale only when the norm exceeds max_norm")
        checks.check_scalar("clip_grad_norm of all-zero gradients", returned, 0.0)
        checks.check_true(not np.isnan(grads["W"]).any(), "all-zero gradients became NaN: "
                          "scale only when the norm exceeds max_norm.")


# -- build and train: next values of sine waves of unknown phase and frequency -----------------
SINE_STEPS, TARGET_MSE = 30, 0.02


def sine_waves(n, seed):
    """``(inputs, targets)``, each (n, 30, 1): n sine waves, each with its own phase and
    frequency (0.2 to 0.5 radians per step); the target at every step is the next value."""
    rng = np.random.default_rng(seed)
    phase = rng.uniform(0, 2 * np.pi, (n, 1))
    frequency = rng.uniform(0.2, 0.5, (n, 1))
    waves = np.sin(frequency * np.arange(SINE_STEPS + 1) + phase)[:, :, None]
    return waves[:, :-1], waves[:, 1:]


def sine_mse(params, inputs, targets):
    """The mean squared error of the model ``params`` on these waves, computed with the
    library's RNN (from h0 = 0) and the readout h @ Wy + by."""
    Wx, Wh, b, Wy, by = (np.asarray(params[k], dtype=float) for k in ["Wx", "Wh", "b", "Wy", "by"])
    layer = library.RNN(Wx.shape[0], Wh.shape[0], rng=np.random.default_rng(0))
    layer.load_state_dict({"Wx": Wx, "Wh": Wh, "b": b})
    return float(np.mean((layer.forward(inputs) @ Wy + by - targets) ** 2))


def check_build_and_train(params):
    with checks.report("build_and_train"):
        checks.check_true(isinstance(params, dict) and all(
            k in params for k in ["Wx", "Wh", "b", "Wy", "by"]),
            "params should be a dict with the keys 'Wx', 'Wh', 'b', 'Wy', 'by'; got "
            f"{type(params).__name__} {sorted(params) if isinstance(params, dict) else ''}")
        H = np.shape(params["Wh"])[0]
        for name, shape in [("Wx", (1, H)), ("Wh", (H, H)), ("b", (H,)), ("Wy", (H, 1)),
                            ("by", (1,))]:
            checks.check_shape(f"params[{name!r}]", params[name], shape)
        inputs, targets = sine_waves(256, seed=1)   # held out: not the waves you trained on
        copy_mse = float(np.mean((inputs - targets) ** 2))
        mse = sine_mse(params, inputs, targets)
        checks.check_true(np.isfinite(mse) and mse < TARGET_MSE,
                          f"your RNN's mean squared error on 256 held-out waves is "
                          f"{checks.format_number(mse)}; the target is below {TARGET_MSE} "
                          f"(repeating the last value scores {checks.format_number(copy_mse)})."
                          "\n  Hint: check that the loss falls while you train (print it every 50 "
                          "steps); if it rises or jumps, lower the learning rate or clip; if it barely "
                          "moves, are your weights all starting at zero?")
        print(f"held-out MSE {mse:.4f} (target < {TARGET_MSE}; repeating the last value: "
              f"{copy_mse:.4f})")
