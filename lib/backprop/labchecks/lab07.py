"""Visible checks of lab 07 (GRU): one GRU step forward and backward, backpropagation through
time with the GRU, gradient clipping, and the learner's GRU trained on sine waves, measured on
held-out waves.

Expected values come from the course library (`backprop.gated.GRU`, `backprop.sequence`) and
from finite differences; the values of known mistakes are built here, one gate at a time.
"""
from backprop import checks
from backprop import gradcheck
import numpy as np

from backprop import functional as library_functional
from backprop import rnn as library
from backprop.gated import GRU
from backprop.layers import Sequential
from backprop.sequence import TemporalLinear
from backprop.sequence import clip_grad_norm as library_clip_grad_norm

NAMES = ["dx", "dh_prev", "dWx", "dWh", "db"]
SEQUENCE_NAMES = ["dx", "dh0", "dWx", "dWh", "db"]
GATED = ["Wx", "Wh", "b"]  # the gradients with a block of columns per gate
CHECK_ORDER = [2, 4, 3, 0, 1]  # dWx, db, dWh, then dx and the state's gradient
GATES = ["the reset gate r", "the update gate z", "the candidate n"]
STEP_HINTS = {
    "z_sign": "the update gate z: your dz has the wrong sign. A larger z moves h_next towards "
              "h_prev and away from n",
    "no_direct": "h_prev reaches h_next twice: through Wh into the gates, and directly through "
                 "the update gate's interpolation. Did you leave the direct path out of dh_prev?",
    "dn_no_weight": "the candidate n: it enters h_next weighted by the update gate; did you "
                    "leave that weight out of dn?",
    "tanh_from_a": "the candidate n: take tanh's derivative from its output n, not from the "
                   "pre-activation",
    "dr_no_product": "the reset gate r: it multiplies the n block of h_prev @ Wh, so its "
                     "gradient needs that block (keep it in the cache)",
    "dah_no_r": "the candidate n: its hidden-side block is multiplied by the reset gate r; the "
                "gradient that reaches that block (and so dWh, dh_prev) must be too",
    "db_hidden": "b is added on the input side, with x @ Wx, outside the reset gate: its n "
                 "block is not multiplied by r",
    "no_sigmoid": "the reset and update gates: go back through their sigmoid (its derivative, "
                  "from its output, Lesson 07, section 8)",
}


def _sigmoid(a):
    return library_functional.sigmoid(a)


def _gru_step(x, h_prev, Wx, Wh, b):
    """(h_next, r, z, n, the n block of h_prev @ Wh, the n block's pre-activation)."""
    H = Wh.shape[0]
    ax, ah = x @ Wx + b, h_prev @ Wh
    r = _sigmoid(ax[:, :H] + ah[:, :H])
    z = _sigmoid(ax[:, H:2 * H] + ah[:, H:2 * H])
    a_n = ax[:, 2 * H:] + r * ah[:, 2 * H:]
    n = np.tanh(a_n)
    return (1 - z) * n + z * h_prev, r, z, n, ah[:, 2 * H:], a_n


def _library_step(x, h_prev, Wx, Wh, b):
    """One step of the library's GRU: h_next (N, H)."""
    layer = GRU(Wx.shape[0], Wh.shape[0], rng=np.random.default_rng(0))
    layer.load_state_dict({"Wx": Wx, "Wh": Wh, "b": b})
    return layer.forward(np.asarray(x)[:, None], h0=h_prev)[:, 0]


def _step_grads(x, h_prev, Wx, Wh, b, dh_next, wrong=None):
    """The five gradients of one step, or those that the mistake `wrong` (a key of STEP_HINTS)
    produces."""
    _, r, z, n, ah_n, a_n = _gru_step(x, h_prev, Wx, Wh, b)
    dn = dh_next if wrong == "dn_no_weight" else dh_next * (1 - z)
    dz = dh_next * ((n - h_prev) if wrong == "z_sign" else (h_prev - n))
    dan = dn * ((1 - a_n**2) if wrong == "tanh_from_a" else (1 - n**2))
    slope_r, slope_z = (1, 1) if wrong == "no_sigmoid" else (r * (1 - r), z * (1 - z))
    dar = dan * (1 if wrong == "dr_no_product" else ah_n) * slope_r
    daz = dz * slope_z
    dax = np.concatenate([dar, daz, dan], axis=1)
    dah = np.concatenate([dar, daz, dan if wrong == "dah_no_r" else dan * r], axis=1)
    direct = 0 if wrong == "no_direct" else dh_next * z
    db = (dah if wrong == "db_hidden" else dax).sum(axis=0)
    return [dax @ Wx.T, direct + dah @ Wh.T, x.T @ dax, h_prev.T @ dah, db]


def _step_mistakes(x, h_prev, Wx, Wh, b, dh_next):
    """{gradient name: {hint: the value a typical mistake gives}} for one step."""
    mistakes = {name: {} for name in NAMES}
    for wrong, hint in STEP_HINTS.items():
        for name, value in zip(NAMES, _step_grads(x, h_prev, Wx, Wh, b, dh_next, wrong)):
            mistakes[name][hint] = value
    right = _step_grads(x, h_prev, Wx, Wh, b, dh_next)
    mistakes["db"]["db is a sum over the batch, not a mean (the loss already holds any 1/N)"] = \
        right[4] / len(x)
    return mistakes


def gate_hint(received, expected, rtol=1e-5, atol=1e-7):
    """Which gates' columns of a (.., 3H) gradient are wrong, as a hint ('' if none or not
    (.., 3H))."""
    received, expected = np.asarray(received, dtype=float), np.asarray(expected, dtype=float)
    if received.shape != expected.shape or expected.shape[-1] % 3:
        return None
    H = expected.shape[-1] // 3
    wrong = [gate for k, gate in enumerate(GATES) if not np.allclose(
        received[..., k * H:(k + 1) * H], expected[..., k * H:(k + 1) * H], rtol=rtol, atol=atol)]
    if not wrong:
        return None
    right = [gate for gate in GATES if gate not in wrong]
    return (f"the wrong columns are those of {' and '.join(wrong)}"
            + (f"; those of {' and '.join(right)} are right" if right else "")
            + ": derive that gate's gradient again on the step's graph")


def _step_args(rng, N, D, H, scale=0.5):
    x, h_prev = rng.standard_normal((N, D)), rng.standard_normal((N, H))
    Wx, Wh, b = (rng.standard_normal(shape) * scale
                 for shape in [(D, 3 * H), (H, 3 * H), (3 * H,)])
    return x, h_prev, Wx, Wh, b


def _unchanged(arrays, saved):
    return all(np.array_equal(a, s) for a, s in zip(arrays, saved))


def check_gru_step_forward(gru_step_forward):
    with checks.report("gru_step_forward"):
        rng = np.random.default_rng(1)
        x, h_prev, Wx, Wh, b = args = _step_args(rng, 4, 3, 5)
        saved = [a.copy() for a in args]
        result = checks.check_call("gru_step_forward(x, h_prev, Wx, Wh, b)", gru_step_forward,
                                   *args)
        checks.check_tuple("gru_step_forward", result, ["h_next", "cache"])
        expected = _library_step(*args)
        H = 5
        _, r, z, n, ah_n, _ = _gru_step(*args)
        ax = x @ Wx + b
        swapped = np.concatenate([Wx[:, H:2 * H], Wx[:, :H], Wx[:, 2 * H:]], axis=1), \
            np.concatenate([Wh[:, H:2 * H], Wh[:, :H], Wh[:, 2 * H:]], axis=1), \
            np.concatenate([b[H:2 * H], b[:H], b[2 * H:]])
        r_outside = np.tanh(r * (ax[:, 2 * H:] + ah_n))
        checks.check_close("h_next", result[0], expected, mistakes={
            "z weighs the OLD state h_prev and 1 - z the candidate n (PyTorch's convention), "
            "not the other way round": z * n + (1 - z) * h_prev,
            "the blocks of Wx, Wh and b are in PyTorch's order r, z, n: the first H columns "
            "are the reset gate's": _gru_step(x, h_prev, *swapped)[0],
            "the reset gate multiplies only the hidden-side product h_prev @ Wh (its n block), "
            "not x @ Wx + b": (1 - z) * r_outside + z * h_prev,
            "did you forget the bias b?": _gru_step(x, h_prev, Wx, Wh, 0 * b)[0],
            "the new state is the interpolation of n and h_prev, not the candidate n alone": n})
        checks.check_true(_unchanged(args, saved),
                          "gru_step_forward changed one of its inputs in place.")


def check_gru_step_backward(gru_step_backward, gru_step_forward):
    with checks.report("gru_step_backward"):
        rng = np.random.default_rng(2)
        for N, D, H in [(4, 3, 5), (1, 2, 3), (3, 1, 2)]:
            args = _step_args(rng, N, D, H)
            dh_next = rng.standard_normal((N, H))
            dh_next_saved = dh_next.copy()
            _, cache = checks.check_call("gru_step_forward", gru_step_forward, *args)
            result = checks.check_call("gru_step_backward(dh_next, cache)", gru_step_backward,
                                       dh_next, cache)
            checks.check_tuple("gru_step_backward", result, NAMES)
            checks.check_true(np.array_equal(dh_next, dh_next_saved),
                              "gru_step_backward changed dh_next in place (dh_next *= ...): "
                              "make a new array; the caller still needs dh_next.")
            mistakes = _step_mistakes(*args, dh_next)
            for i in CHECK_ORDER:  # the gradients with a block per gate first: they name it
                name, received = NAMES[i], result[i]
                def h_next_of(value, i=i):
                    return _library_step(*[value if j == i else arg for j, arg in enumerate(args)])
                numeric = gradcheck.numerical_gradient(h_next_of, args[i].copy(), dh_next)
                hint = gate_hint(received, numeric) if name[1:] in GATED else None
                checks.check_close(f"{name} for (N, D, H) = {(N, D, H)}, against finite "
                                   "differences", received, numeric, rtol=1e-5, atol=1e-7,
                                   batch_size=N, mistakes=mistakes[name], hint=hint)


def check_gru_forward(gru_forward):
    with checks.report("gru_forward"):
        rng = np.random.default_rng(3)
        N, T, D, H = 3, 5, 2, 4
        x, h0 = rng.standard_normal((N, T, D)), rng.standard_normal((N, H))
        layer = GRU(D, H, rng=rng)
        layer.params["b"][...] = rng.standard_normal(3 * H)
        Wx, Wh, b = (layer.params[k] for k in ["Wx", "Wh", "b"])
        saved = [a.copy() for a in (x, h0)]
        result = checks.check_call("gru_forward(x, h0, Wx, Wh, b)", gru_forward, x, h0, Wx, Wh, b)
        checks.check_tuple("gru_forward", result, ["h", "cache"])
        expected = layer.forward(x, h0=h0)
        stuck = np.stack([_library_step(x[:, t], h0, Wx, Wh, b) for t in range(T)], axis=1)
        checks.check_close("h", result[0], expected, mistakes={
            "every step must start from the state the previous step produced, not from h0":
                stuck,
            "h holds the T states after each step; leave h0 out":
                np.concatenate([h0[:, None], expected], axis=1),
            "h is (N, T, H): time is axis 1, not axis 0": expected.transpose(1, 0, 2)})
        checks.check_true(_unchanged((x, h0), saved), "gru_forward changed x or h0 in place.")


def _bptt_mistakes(dh, x, h0, Wx, Wh, b):
    """Gradients that typical BPTT mistakes produce, built step by step."""
    N, T, _ = x.shape
    layer = GRU(Wx.shape[0], Wh.shape[0], rng=np.random.default_rng(0))
    layer.load_state_dict({"Wx": Wx, "Wh": Wh, "b": b})
    states = layer.forward(x, h0=h0)
    previous = [h0] + [states[:, t] for t in range(T - 1)]

    def run(order, carry=True):
        dx, dh_next, sums, last = np.zeros(x.shape), np.zeros_like(h0), [0, 0, 0], None
        for t in order:
            total = dh[:, t] + (dh_next if carry else 0)
            dx[:, t], dh_next, *grads = _step_grads(x[:, t], previous[t], Wx, Wh, b, total)
            sums, last = [s + g for s, g in zip(sums, grads)], grads
        return [dx, dh_next, *sums], last

    _, overwritten = run(reversed(range(T)))
    hints = {
        "step t needs the gradient that comes back from step t + 1: in which order must "
        "the loop visit the steps?": run(range(T))[0],
        "h_t reaches the loss along two paths (Lesson 07, section 3): did you leave out the "
        "gradient coming back from the next step?": run(reversed(range(T)), carry=False)[0],
    }
    mistakes = {name: {hint: value[i] for hint, value in hints.items()}
                for i, name in enumerate(SEQUENCE_NAMES)}
    for name, value in zip(SEQUENCE_NAMES[2:], overwritten):
        mistakes[name]["yours is one step's gradient: the weights are shared by all steps, so "
                       "their gradient is a sum over time (= instead of +=?)"] = value
    mistakes["dh0"]["dh0 is the gradient that flows out of the first step, not zeros"] = \
        np.zeros_like(h0)
    return mistakes


def check_gru_backward(gru_backward, gru_forward):
    with checks.report("gru_backward"):
        rng = np.random.default_rng(4)
        for N, T, D, H in [(3, 5, 2, 4), (1, 3, 3, 2)]:
            x, h0, dh = (rng.standard_normal(shape) for shape in [(N, T, D), (N, H), (N, T, H)])
            Wx, Wh, b = (rng.standard_normal(shape) * 0.6
                         for shape in [(D, 3 * H), (H, 3 * H), (3 * H,)])
            args = [x, h0, Wx, Wh, b]
            dh_saved = dh.copy()
            _, cache = checks.check_call("gru_forward", gru_forward, *args)
            result = checks.check_call("gru_backward(dh, cache)", gru_backward, dh, cache)
            checks.check_tuple("gru_backward", result, SEQUENCE_NAMES)
            checks.check_true(np.array_equal(dh, dh_saved),
                              "gru_backward changed dh in place (dh[:, t] += ... writes into "
                              "the caller's array): make a new array.")
            mistakes = _bptt_mistakes(dh, *args)
            layer = GRU(D, H, rng=rng)

            def all_states(i, value):
                x_, h0_, Wx_, Wh_, b_ = [value if j == i else arg for j, arg in enumerate(args)]
                layer.load_state_dict({"Wx": Wx_, "Wh": Wh_, "b": b_})
                return layer.forward(x_, h0=h0_)

            for i in CHECK_ORDER:
                name, received = SEQUENCE_NAMES[i], result[i]
                numeric = gradcheck.numerical_gradient(lambda v, i=i: all_states(i, v),
                                                       args[i].copy(), dh)
                hint = gate_hint(received, numeric) if name[1:] in GATED else None
                checks.check_close(f"{name} for (N, T, D, H) = {(N, T, D, H)}, against finite "
                                   "differences", received, numeric, rtol=1e-5, atol=1e-7,
                                   mistakes=mistakes[name], hint=hint)


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
    library's GRU (from h0 = 0) and the readout h @ Wy + by."""
    Wx, Wh, b, Wy, by = (np.asarray(params[k], dtype=float) for k in ["Wx", "Wh", "b", "Wy", "by"])
    layer = GRU(Wx.shape[0], Wh.shape[0], rng=np.random.default_rng(0))
    layer.load_state_dict({"Wx": Wx, "Wh": Wh, "b": b})
    return float(np.mean((layer.forward(inputs) @ Wy + by - targets) ** 2))


def check_build_and_train(params):
    with checks.report("build_and_train"):
        checks.check_true(isinstance(params, dict) and all(
            k in params for k in ["Wx", "Wh", "b", "Wy", "by"]),
            "params should be a dict with the keys 'Wx', 'Wh', 'b', 'Wy', 'by'; got "
            f"{type(params).__name__} {sorted(params) if isinstance(params, dict) else ''}")
        H = np.shape(params["Wh"])[0]
        for name, shape in [("Wx", (1, 3 * H)), ("Wh", (H, 3 * H)), ("b", (3 * H,)), ("Wy", (H, 1)),
                            ("by", (1,))]:
            checks.check_shape(f"params[{name!r}]", params[name], shape)
        inputs, targets = sine_waves(256, seed=1)   # held out: not the waves you trained on
        copy_mse = float(np.mean((inputs - targets) ** 2))
        mse = sine_mse(params, inputs, targets)
        checks.check_true(np.isfinite(mse) and mse < TARGET_MSE,
                          f"your GRU's mean squared error on 256 held-out waves is "
                          f"{checks.format_number(mse)}; the target is below {TARGET_MSE} "
                          f"(repeating the last value scores {checks.format_number(copy_mse)})."
                          "\n  Hint: check that the loss falls while you train (print it every 50 "
                          "steps); if it rises or jumps, lower the learning rate or clip; if it barely "
                          "moves, are your weights all starting at zero?")
        print(f"held-out MSE {mse:.4f} (target < {TARGET_MSE}; repeating the last value: "
              f"{copy_mse:.4f})")
