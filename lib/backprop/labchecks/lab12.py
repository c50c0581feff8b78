"""Visible checks of lab 12 (the causal multi-head self-attention layer's backward pass).

The head reshapes are checked entry by entry against an explicit loop and, as a backward pass,
by finite differences (the gradient of `split_heads` is `merge_heads` of the upstream
gradient). The masked softmax is checked against a softmax over each row's allowed entries
(the library's), stored values and invariants (masked entries exactly 0, a row with no allowed
key all 0, no floating-point error). Every gradient of `mha_backward` is checked against finite
differences of this module's own forward pass, restarted from the intermediate value it belongs
to, in reverse order of the forward's lines, so the first wrong gradient named is the first
wrong line of the learner's backward. A wrong gradient is named by comparing it with what a
mistake computes from the right gradients (a factor, a transpose, a wrong axis) or with the
finite differences of a forward pass where a path is cut (v held constant).
"""
import numpy as np

from backprop import checks
from backprop import gradcheck
from backprop.functional import softmax
from backprop.layers import Layer, Sequential
from backprop.normalization import LayerNorm
from backprop.sequence import Embedding, TemporalLinear, sequence_cross_entropy

DIGITS = 6           # length of the digit strings the build-and-train model reverses
SEPARATOR = 10       # the token between a string and its reverse; digits are tokens 0..9
VOCAB = 11
TEST_TARGET = 0.15   # held-out loss (nats per output digit) the learner's model must reach
HELDOUT_SEED = 2024  # the visible held-out strings
HELDOUT_SIZE = 500

# The forward pass's intermediate values, in the order the backward pass meets them (reverse).
PARAMS = ["in_proj_weight", "in_proj_bias", "out_proj_weight", "out_proj_bias"]
CHECK_ORDER = ["out_proj_bias", "out_proj_weight", "merged", "context", "v", "probs", "scores",
               "q", "k", "qkv", "in_proj_bias", "in_proj_weight", "x"]
LINES = {
    "out_proj_bias": "out = merged @ out_proj_weight.T + out_proj_bias",
    "out_proj_weight": "out = merged @ out_proj_weight.T + out_proj_bias",
    "merged": "out = merged @ out_proj_weight.T + out_proj_bias",
    "context": "merged = merge_heads(context)",
    "v": "context = probs @ v",
    "probs": "context = probs @ v",
    "scores": "probs = masked_softmax(scores, allowed)",
    "q": "scores = q @ k^T / sqrt(d)",
    "k": "scores = q @ k^T / sqrt(d)",
    "qkv": "q, k, v = split_heads(qkv[..., :E]), ...",
    "in_proj_bias": "qkv = x @ in_proj_weight.T + in_proj_bias",
    "in_proj_weight": "qkv = x @ in_proj_weight.T + in_proj_bias",
    "x": "qkv = x @ in_proj_weight.T + in_proj_bias",
}
HEADS_MIXED = ("the heads got mixed: head h owns the features h*d ... (h+1)*d - 1 of each "
               "position; a reshape alone interleaves positions and heads, it needs a transpose "
               "of the positions and heads axes too")
NO_SCALE = ("the scores are divided by sqrt(d) in the forward pass, so the gradient reaching q "
            "and k carries the same 1/sqrt(d)")
NO_V = ("v's path is missing: x reaches the output through v = split_heads(qkv[..., 2E:]) too, "
        "so qkv's last E columns get the gradient of v")
BIAS_SUM = ("a bias is added at every position of every sequence: its gradient sums over the "
            "batch AND the positions (axes 0 and 1)")
SOFTMAX_AXIS = ("each query's row of probs is a softmax over the keys (the last axis): the sum "
                "in its backward pass runs over that axis too")
SOFTMAX_COUPLED = ("a softmax's outputs are coupled through their sum: its backward pass is not "
                   "the upstream gradient times probs alone")
TRANSPOSED_WEIGHT = ("the weight has PyTorch's layout (out_features, in_features) and enters the "
                     "forward transposed (@ W.T): did you transpose it once too often?")
WEIGHT_LAYOUT = ("the weight's gradient has the weight's layout (out_features, in_features), "
                 "the transpose of x^T @ dout's")


def _unchanged(name, arrays, saved):
    checks.check_true(all(np.array_equal(a, s) for a, s in zip(arrays, saved)),
                      f"{name} changed one of its input arrays in place: compute new arrays "
                      "and return them.")


# -- 1. split and merge the heads -----------------------------------------------------------------
def _labelled(shape):
    """An array whose entries say where they are, e.g. for (N, L, E):
    x[n, l, e] = 10 n + l + e / 100 + 0.5 (readable in a message while L < 10 and E < 100)."""
    grids = np.indices(shape)
    weights = [100.0, 10.0, 1.0, 0.01][-len(shape):]
    return sum(w * g for w, g in zip(weights, grids)) + 0.5


def _split_by_loop(x, num_heads):
    N, L, E = x.shape
    d = E // num_heads
    out = np.empty((N, num_heads, L, d))
    for n in range(N):
        for h in range(num_heads):
            for pos in range(L):
                out[n, h, pos] = x[n, pos, h * d:(h + 1) * d]
    return out


def _merge_by_loop(y):
    N, H, L, d = y.shape
    out = np.empty((N, L, H * d))
    for n in range(N):
        for h in range(H):
            out[n, :, h * d:(h + 1) * d] = y[n, h]
    return out


def check_heads(split_heads, merge_heads):
    """split_heads and merge_heads entry by entry against a loop, merge(split(x)) = x, and
    merge_heads as split_heads' backward pass (finite differences)."""
    with checks.report("split_heads and merge_heads"):
        rng = np.random.default_rng(1)
        for N, L, E, H in [(2, 3, 8, 4), (1, 5, 6, 2), (3, 2, 6, 3), (2, 4, 4, 1)]:
            d = E // H
            shape = f"(N, L, E) = {(N, L, E)} and {H} heads"
            x = _labelled((N, L, E))
            saved = x.copy()
            split = checks.check_call(f"split_heads for {shape}", split_heads, x, H)
            _unchanged("split_heads", [x], [saved])
            checks.check_close(f"split_heads(x) for {shape}", split, _split_by_loop(x, H),
                               mistakes={
                HEADS_MIXED + " (you reshaped to (N, H, L, d) directly)":
                    x.reshape(N, H, L, d),
                "head h owns CONSECUTIVE features h*d ... (h+1)*d - 1, not every H-th one "
                "(reshape to (N, L, H, d), not (N, L, d, H))":
                    x.reshape(N, L, d, H).transpose(0, 3, 1, 2)})
            y = _labelled((N, H, L, d))
            saved = y.copy()
            merged = checks.check_call(f"merge_heads for {shape}", merge_heads, y)
            _unchanged("merge_heads", [y], [saved])
            checks.check_close(f"merge_heads(y) for {shape}", merged, _merge_by_loop(y),
                               mistakes={
                HEADS_MIXED + " (you reshaped (N, H, L, d) to (N, L, E) directly)":
                    y.reshape(N, L, E)})
            checks.check_close(f"merge_heads(split_heads(x)) for {shape} (should be x)",
                               merge_heads(split_heads(x, H)), x)
            # the backward pass of split_heads: finite differences of it
            x, dsplit = rng.standard_normal((N, L, E)), rng.standard_normal((N, H, L, d))
            numeric = gradcheck.numerical_gradient(lambda x_: _split_by_loop(x_, H), x, dsplit)
            checks.check_close(f"merge_heads(dsplit) as split_heads' backward for {shape}",
                               merge_heads(dsplit), numeric, rtol=1e-5, atol=1e-7)


# -- 2. the masked softmax ------------------------------------------------------------------------
def _softmax_by_rows(scores, allowed):
    """The library's softmax over each row's allowed entries, one row at a time; 0 elsewhere."""
    scores = np.asarray(scores, dtype=float)
    allowed = np.broadcast_to(allowed, scores.shape)
    out = np.zeros(scores.shape)
    for index in np.ndindex(scores.shape[:-1]):
        keep = allowed[index]
        if keep.any():
            out[index + (keep,)] = softmax(scores[index][keep])
    return out


def _plain_softmax(scores):
    return softmax(np.asarray(scores, dtype=float), axis=-1)


def _quietly(masked_softmax, scores, allowed, where):
    """masked_softmax(scores, allowed) with NumPy's floating-point errors raised (an overflow
    in exp, 0/0, inf - inf): each fails the check. (np.errstate, unlike a warnings filter,
    also reaches the learner's code when the grader runs it in another process.)"""
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        return checks.check_call(f"masked_softmax {where}", masked_softmax, scores, allowed,
                                 hint=(
            "NumPy flagged (and the test raised) a floating-point error: an overflow in exp, "
            "or 0/0 or inf - inf on a row with no allowed key? Compute only what is finite, "
            "and give such rows weights 0."))


def check_masked_softmax(masked_softmax):
    """A stored case, then random scores and masks (broadcast), a row with every key masked,
    and scores of +-1000 against a softmax over each row's allowed entries."""
    with checks.report("masked_softmax"):
        scores = np.array([[0.0, np.log(3.0), 5.0, 1.0], [2.0, 2.0, 2.0, 2.0]])
        allowed = np.array([[True, True, False, False], [True, True, True, True]])
        received = _quietly(masked_softmax, scores, allowed,
                            "for a stored case")
        checks.check_close("masked_softmax(scores, allowed) for the stored case "
                           "[[0, log 3, 5, 1], [2, 2, 2, 2]], last two of row 0 masked",
                           received, [[0.25, 0.75, 0, 0], [0.25, 0.25, 0.25, 0.25]], mistakes={
            "the mask goes BEFORE the softmax: zeroing probabilities afterwards leaves rows "
            "that no longer sum to 1": _plain_softmax(scores) * allowed,
            "allowed is True where a query MAY attend: you masked the allowed keys instead":
                _softmax_by_rows(scores, ~allowed)})
        rng = np.random.default_rng(2)
        for shape, mask_shape in [((2, 3, 4, 5), (4, 5)), ((1, 2, 6, 6), (1, 1, 6, 6)),
                                  ((3, 1, 2, 4), (3, 1, 1, 4))]:
            scores = 2 * rng.standard_normal(shape)
            allowed = rng.random(mask_shape) < 0.6
            allowed[..., 0, :] = False  # a row with every key masked
            allowed[..., -1, :] = True
            where = f"for scores {shape} and allowed {mask_shape}"
            saved = [scores.copy(), allowed.copy()]
            received = _quietly(masked_softmax, scores, allowed, where)
            _unchanged("masked_softmax", [scores, allowed], saved)
            expected = _softmax_by_rows(scores, allowed)
            all_masked = np.broadcast_to(~allowed.any(axis=-1, keepdims=True), shape)
            checks.check_close(f"masked_softmax(scores, allowed) {where}", received, expected,
                               mistakes={
                "the mask goes BEFORE the softmax: zeroing probabilities afterwards leaves rows "
                "that no longer sum to 1": _plain_softmax(scores) * allowed,
                "allowed is True where a query MAY attend: you masked the allowed keys "
                "instead": _softmax_by_rows(scores, ~allowed),
                "a row with every key masked must give weights 0 (the query attends to "
                "nothing); filling masked scores with a large negative number gives that row "
                "a uniform softmax": np.where(all_masked, 1 / shape[-1], expected)})
            changed = np.where(allowed, scores, 50.0 + scores)
            checks.check_close(f"masked_softmax with other scores at the masked entries {where} "
                               "(a masked score must not matter)",
                               _quietly(masked_softmax, changed, allowed, where),
                               expected)
        scores = np.array([[1000.0, 999.0, -1000.0], [-1000.0, -1001.0, 0.0]])
        allowed = np.array([True, True, False])
        received = _quietly(masked_softmax, scores, allowed,
                            "for scores of +-1000")
        checks.check_close("masked_softmax for scores of +-1000 (no overflow)", received,
                           _softmax_by_rows(scores, allowed), hint=(
            "exp(1000) overflows: subtract each row's largest allowed score first"))


# -- 3. the layer's backward pass -----------------------------------------------------------------
def allowed_mask(L, causal=True, key_padding_mask=None):
    """(N or 1, 1, L, L) booleans, True where query i may attend to key j: j <= i when causal,
    and key j is no padding (key_padding_mask (N, L), True = padding, as PyTorch)."""
    allowed = np.ones((1, 1, L, L), dtype=bool)
    if causal:
        allowed = allowed & (np.arange(L)[:, None] >= np.arange(L)[None, :])
    if key_padding_mask is not None:
        allowed = allowed & ~np.asarray(key_padding_mask, dtype=bool)[:, None, None, :]
    return allowed


def _steps(H, allowed):
    """The forward pass as (name, function of the values so far and the parameters), in order."""
    def heads(qkv, part):
        E = qkv.shape[-1] // 3
        d = E // H
        return np.stack([qkv[..., part * E + h * d:part * E + (h + 1) * d] for h in range(H)],
                        axis=1)

    def scaled(v):
        return v["q"] @ np.swapaxes(v["k"], -1, -2) / np.sqrt(v["q"].shape[-1])

    return [
        ("qkv", lambda v, p: v["x"] @ p["in_proj_weight"].T + p["in_proj_bias"]),
        ("q", lambda v, p: heads(v["qkv"], 0)),
        ("k", lambda v, p: heads(v["qkv"], 1)),
        ("v", lambda v, p: heads(v["qkv"], 2)),
        ("scores", lambda v, p: scaled(v)),
        ("probs", lambda v, p: _probs(v["scores"], allowed)),
        ("context", lambda v, p: v["probs"] @ v["v"]),
        ("merged", lambda v, p: np.concatenate(list(np.moveaxis(v["context"], 1, 0)), axis=-1)),
        ("out", lambda v, p: v["merged"] @ p["out_proj_weight"].T + p["out_proj_bias"]),
    ]


def _probs(scores, allowed):
    """The masked softmax, vectorized (the check's own: masked entries 0, empty rows 0)."""
    allowed = np.broadcast_to(allowed, scores.shape)
    top = np.max(np.where(allowed, scores, -np.inf), axis=-1, keepdims=True)
    weights = np.exp(np.where(allowed, scores - np.where(np.isfinite(top), top, 0), -np.inf))
    total = weights.sum(axis=-1, keepdims=True)
    return weights / np.maximum(total, 1e-300)


def layer_forward(x, params, num_heads, allowed, start=None, value=None, frozen=()):
    """Every value of the forward pass, {name: array}. `x` is the input, or a dict of values
    (then `start`, one of them, is set to `value` and only the values after it are computed
    again); names in `frozen` keep their values from that dict: their path is cut."""
    steps = _steps(num_heads, allowed)
    values = dict(x) if isinstance(x, dict) else {"x": x}
    if start is not None:
        values[start] = value
    names = [name for name, _ in steps]
    begin = names.index(start) + 1 if start in names else 0
    for name, step in steps[begin:]:
        if name not in frozen:
            values[name] = step(values, params)
    return values


def _numeric(values, params, H, allowed, dout, key, frozen=()):
    """Finite-difference gradient of sum(out * dout) in the value or parameter `key`."""
    if key in params:
        def out_of(array):
            return layer_forward(values, {**params, key: array}, H, allowed,
                                 frozen=frozen)["out"]
        return gradcheck.numerical_gradient(out_of, params[key].copy(), dout)

    def out_of(array):
        return layer_forward(values, params, H, allowed, start=key, value=array,
                             frozen=frozen)["out"]
    return gradcheck.numerical_gradient(out_of, values[key].copy(), dout)


def problem(N, L, E, H, rng, causal=True, padded=False):
    """Random parameters, input, mask and upstream gradient of one check."""
    params = {"in_proj_weight": rng.standard_normal((3 * E, E)) / np.sqrt(E),
              "in_proj_bias": 0.5 * rng.standard_normal(3 * E),
              "out_proj_weight": rng.standard_normal((E, E)) / np.sqrt(E),
              "out_proj_bias": 0.5 * rng.standard_normal(E)}
    x = rng.standard_normal((N, L, E))
    padding = None
    if padded:
        padding = np.zeros((N, L), dtype=bool)
        padding[0, 0] = True        # query 0 of sequence 0 sees no key: a row all masked
        padding[-1, L // 2] = True
    return params, x, allowed_mask(L, causal, padding), rng.standard_normal((N, L, E))


CACHE_KEYS = ["x", "q", "k", "v", "probs", "merged"]


def _mistakes(values, g, params, H, allowed, dout):
    """{key: {hint: what the mistake gives}} from the right gradients `g` and the values."""
    N, L, E = values["x"].shape
    d = E // H
    swap = np.swapaxes
    sum_rows = np.sum(g["probs"] * values["probs"], axis=-2, keepdims=True)
    no_v = {k: _numeric(values, params, H, allowed, dout, k, frozen=("v",))
            for k in ("in_proj_weight", "x")}
    return {
        "out_proj_bias": {BIAS_SUM: dout.sum(axis=0), "a sum, not a mean: every position of "
                          "every sequence adds its share": dout.mean(axis=(0, 1))},
        "out_proj_weight": {WEIGHT_LAYOUT: g["out_proj_weight"].T},
        "merged": {TRANSPOSED_WEIGHT: dout @ params["out_proj_weight"].T},
        "context": {HEADS_MIXED: g["merged"].reshape(N, H, L, d)},
        "v": {"context = probs @ v: v's gradient needs probs with its last two axes swapped "
              "(keys on the rows)": values["probs"] @ g["context"]},
        "probs": {},
        "scores": {SOFTMAX_AXIS: values["probs"] * (g["probs"] - sum_rows),
                   SOFTMAX_COUPLED: values["probs"] * g["probs"]},
        "q": {NO_SCALE: g["q"] * np.sqrt(d)},
        "k": {NO_SCALE: g["k"] * np.sqrt(d),
              "scores = q @ k^T: k's gradient needs dscores with its last two axes swapped "
              "(keys on the rows)": g["scores"] @ values["q"] / np.sqrt(d)},
        "qkv": {NO_V: np.concatenate([g["qkv"][..., :2 * E], 0 * g["qkv"][..., 2 * E:]], -1),
                HEADS_MIXED: np.concatenate([g[k].reshape(N, L, E) for k in "qkv"], -1)},
        "in_proj_bias": {BIAS_SUM: g["qkv"].sum(axis=0)},
        "in_proj_weight": {NO_V: no_v["in_proj_weight"],
                           WEIGHT_LAYOUT: g["in_proj_weight"].T},
        "x": {NO_V: no_v["x"]},
    }


def check_mha_backward(mha_backward):
    """Every gradient of mha_backward against finite differences, from the output back to x,
    then the causal invariant: a position's output sends no gradient to later positions."""
    with checks.report("mha_backward"):
        rng = np.random.default_rng(3)
        for N, L, E, H, causal, padded in [(2, 4, 6, 2, True, True), (1, 3, 4, 2, True, False),
                                           (2, 3, 6, 3, False, True)]:
            shape = (f"(N, L, E) = {(N, L, E)}, {H} heads, "
                     f"{'causal' if causal else 'not causal'}{', padded' if padded else ''}")
            params, x, allowed, dout = problem(N, L, E, H, rng, causal, padded)
            values = layer_forward(x, params, H, allowed)
            cache = {k: values[k].copy() for k in CACHE_KEYS}
            saved = [dout.copy(), *(cache[k].copy() for k in CACHE_KEYS),
                     *(params[k].copy() for k in PARAMS)]
            grads = checks.check_call(f"mha_backward for {shape}", mha_backward, dout, cache,
                                      params, H)
            _unchanged("mha_backward", [dout, *(cache[k] for k in CACHE_KEYS),
                                        *(params[k] for k in PARAMS)], saved)
            checks.check_true(isinstance(grads, dict) and set(CHECK_ORDER) <= set(grads),
                              f"mha_backward should return a dict with the keys "
                              f"{', '.join(CHECK_ORDER)}; "
                              + (f"missing {sorted(set(CHECK_ORDER) - set(grads))}"
                                 if isinstance(grads, dict) else
                                 f"got {type(grads).__name__}"))
            right = {k: _numeric(values, params, H, allowed, dout, k) for k in CHECK_ORDER}
            mistakes = _mistakes(values, right, params, H, allowed, dout)
            for key in CHECK_ORDER:
                name = key if key in PARAMS else f"grads['{key}']"
                checks.check_close(f"{name} for {shape}", grads[key], right[key],
                                   rtol=1e-5, atol=1e-7, mistakes=mistakes.get(key), hint=(
                    f"check the line that reads {key}, {LINES[key]}: the upstream gradient "
                    "of its value times its local derivative, summed over every use (the "
                    "gradients checked before this one are right)"))
        # causal: out at position t reads positions <= t only, so with dout at t alone, dx and
        # the gradients of q, k, v at the positions after t are 0
        N, L, E, H, t = 2, 5, 4, 2, 2
        params, x, allowed, _ = problem(N, L, E, H, rng)
        values = layer_forward(x, params, H, allowed)
        dout = np.zeros((N, L, E))
        dout[:, t] = rng.standard_normal((N, E))
        grads = mha_backward(dout, {k: values[k] for k in CACHE_KEYS}, params, H)
        later = np.abs(np.asarray(grads["x"], dtype=float)[:, t + 1:]).max()
        checks.check_true(later == 0, (
            f"grads['x'] at positions after {t} is {checks.format_number(later)}, expected 0 "
            f"(dout is 0 except at position {t}, whose output reads positions <= {t} only)\n"
            "  Hint: masked probabilities are 0: does your backward pass use a softmax "
            "recomputed without the mask?"))


# -- 4. build and train ---------------------------------------------------------------------------
def reversal_data(n, rng, digits=DIGITS):
    """n strings of `digits` random digits, followed by the separator and the string reversed:
    inputs (n, 2 digits), the next tokens (n, 2 digits), and the mask of the positions whose next
    token is an output digit."""
    strings = rng.integers(0, 10, (n, digits))
    sequences = np.concatenate([strings, np.full((n, 1), SEPARATOR), strings[:, ::-1]], axis=1)
    mask = np.zeros((n, 2 * digits), dtype=bool)
    mask[:, digits:] = True
    return sequences[:, :-1], sequences[:, 1:], mask


def bag_of_characters_loss(inputs, targets, mask, digits=DIGITS):
    """The held-out loss of the best model that knows only which digits the string holds (their
    counts, not their order): each output digit predicted with probability count / digits."""
    counts = np.stack([(inputs[:, :digits] == c).sum(axis=1) for c in range(10)], axis=1)
    rows = np.broadcast_to(counts[:, None, :], targets.shape + (10,))
    picked = np.take_along_axis(rows, np.minimum(targets, 9)[..., None], axis=-1)[..., 0]
    return float(-np.log(picked[mask] / digits).mean())


def heldout_strings(rng=None, n=HELDOUT_SIZE):
    """The held-out strings of the build-and-train check: the visible check's fixed ones, or
    n drawn from `rng` (the hidden test's, from the course secret)."""
    return reversal_data(n, np.random.default_rng(HELDOUT_SEED) if rng is None else rng)


def reference_transformer(embed_dim, num_heads, num_layers, mlp_hidden):
    """The lab's tiny_transformer with the library's causal MultiHeadAttention in every block."""
    from backprop.attention import PositionalEmbedding, TransformerBlock
    rng = np.random.default_rng(0)  # (the weights are replaced by the learner's)
    blocks = [TransformerBlock(embed_dim, num_heads, mlp_hidden=mlp_hidden, is_causal=True,
                               rng=rng) for _ in range(num_layers)]
    return Sequential(Embedding(VOCAB, embed_dim, rng=rng),
                      PositionalEmbedding(2 * DIGITS, embed_dim, rng=rng), *blocks,
                      LayerNorm(embed_dim), TemporalLinear(embed_dim, VOCAB, rng=rng))


def _attention_layers(model):
    return [(name, layer) for name, layer in model.named_layers()
            if "in_proj_weight" in layer.own_params()]


def _reference_of(model):
    """The learner's model as the library's network (their weights loaded into it)."""
    from backprop.attention import MultiHeadAttention
    checks.check_true(isinstance(model, Layer),
                      f"model should be your trained network, built with tiny_transformer, got "
                      f"{type(model).__name__}.")
    attention = _attention_layers(model)
    checks.check_true(attention and not any(isinstance(layer, MultiHeadAttention)
                                            for _, layer in attention),
                      "model should attend with YOUR layer (a Layer whose forward and backward "
                      "call your mha_forward and mha_backward, with the parameters "
                      "in_proj_weight, in_proj_bias, out_proj_weight, out_proj_bias), not the "
                      "library's MultiHeadAttention.")
    heads = {getattr(layer, "num_heads", None) for _, layer in attention}
    checks.check_true(len(heads) == 1 and isinstance(next(iter(heads)), (int, np.integer)),
                      "your attention layer should keep its number of heads in self.num_heads "
                      "(an int), the same in every block.")
    state = model.state_dict()
    embed_dim = int(np.shape(state.get("0.W", np.zeros((0, 0))))[1])
    hidden = [np.shape(value) for key, value in state.items()
              if ".mlp." in key and np.ndim(value) == 2]
    mlp_hidden = next((s[1] for s in hidden if s[0] == embed_dim), None)
    try:
        reference = reference_transformer(embed_dim, next(iter(heads)), len(attention),
                                          mlp_hidden)
        reference.load_state_dict(state)
    except (ValueError, KeyError, TypeError) as error:
        raise checks.LabCheckError(
            f"model should be tiny_transformer(MyCausalSelfAttention, ...), whose weights fit "
            f"the same network with the library's attention; loading them failed: {error}"
        ) from None
    return reference


def _logits(model, inputs):
    model.eval()
    return np.asarray(model.forward(inputs), dtype=float)


def check_build_and_train(model, rng=None):
    """The learner's trained model: its attention does not see the future, and its weights,
    in the same network with the library's causal attention, reach the target held-out loss
    on strings it never saw (visible: fixed strings; rng: strings drawn from it)."""
    with checks.report("build_and_train"):
        reference = _reference_of(model)
        inputs, targets, mask = heldout_strings(rng)
        t = DIGITS + 1
        changed = inputs.copy()[:16]
        changed[:, t + 1:] = (changed[:, t + 1:] + 1 + np.arange(16)[:, None] % 9) % 10
        before, after = _logits(model, inputs[:16]), _logits(model, changed)
        moved = float(np.abs(before[:, :t + 1] - after[:, :t + 1]).max())
        checks.check_true(moved < 1e-8, (
            f"model's logits at positions <= {t} moved by {checks.format_number(moved)}, "
            f"expected 0, when only the tokens after position {t} changed\n"
            "  Hint: your attention sees the future: does your layer call mha_forward with "
            "causal=True?"))
        loss = sequence_cross_entropy(_logits(reference, inputs), targets, mask)[0]
        baseline = bag_of_characters_loss(inputs, targets, mask)
        checks.check_true(np.isfinite(loss) and loss <= TEST_TARGET, (
            f"the held-out loss of your model is {checks.format_number(loss)}, expected at "
            f"most {TEST_TARGET} (the bag-of-characters baseline: "
            f"{checks.format_number(baseline)})\n  Hint: is the training loss falling? Try "
            "more steps or another learning rate, chosen on the validation strings."))
        yours = _logits(model, inputs[:64])
        checks.check_true(np.allclose(yours, _logits(reference, inputs[:64]), rtol=1e-6,
                                      atol=1e-6),
                          "your model's logits differ from those of the same weights with the "
                          "library's causal MultiHeadAttention: does your layer's forward "
                          "return mha_forward's output for the current input?")
    print(f"  held-out loss {loss:.3f} (target {TEST_TARGET}, bag of characters "
          f"{baseline:.3f})")
