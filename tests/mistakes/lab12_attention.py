"""Lab 12 (causal multi-head self-attention): mistakes in the head reshapes, in the masked
softmax (the mask after the softmax, NaN on a row with no allowed key, overflow), in the
layer's backward pass (transposes, the 1/sqrt(d), the softmax's axis, the heads, v's path, the
biases) and in the layer built on them (a layer that sees the future)."""
from . import Mistake

SCORES = 'grads["scores"] = probs * grads["probs"] - probs * through_sum'

LOOP_OVER_HEADS = '''def mha_backward(dout, cache, params, num_heads):
    x, q, k, v, probs = (cache[key] for key in ("x", "q", "k", "v", "probs"))
    N, H, L, d = q.shape
    grads = {"out_proj_bias": dout.sum(axis=(0, 1)),
             "out_proj_weight": np.einsum("nli,nlj->ij", dout, cache["merged"])}
    grads["merged"] = dout @ params["out_proj_weight"]
    grads["context"] = split_heads(grads["merged"], num_heads)
    for key in ("v", "probs", "scores", "q", "k"):
        grads[key] = np.zeros_like(probs if key in ("probs", "scores") else q)
    for n in range(N):
        for h in range(H):
            p, dc = probs[n, h], grads["context"][n, h]
            grads["v"][n, h] = p.T @ dc
            dp = dc @ v[n, h].T
            grads["probs"][n, h] = dp
            ds = p * (dp - (p * dp).sum(axis=1, keepdims=True))
            grads["scores"][n, h] = ds
            grads["q"][n, h] = ds @ k[n, h] / np.sqrt(d)
            grads["k"][n, h] = ds.T @ q[n, h] / np.sqrt(d)
    grads["qkv"] = np.concatenate([merge_heads(grads["q"]), merge_heads(grads["k"]),
                                   merge_heads(grads["v"])], axis=-1)
    grads["in_proj_bias"] = grads["qkv"].sum(axis=(0, 1))
    grads["in_proj_weight"] = np.einsum("nli,nlj->ij", grads["qkv"], x)
    grads["x"] = grads["qkv"] @ params["in_proj_weight"]
    return grads
'''

MISTAKES = [
    Mistake("split_heads: a reshape to (N, H, L, d) without the transpose", "split_merge_heads",
            ("return x.reshape(N, L, num_heads, E // num_heads).transpose(0, 2, 1, 3)",
             "return x.reshape(N, num_heads, L, E // num_heads)"),
            hint="the heads got mixed"),
    Mistake("split_heads: head h takes every H-th feature (reshape to (N, L, d, H))",
            "split_merge_heads",
            ("return x.reshape(N, L, num_heads, E // num_heads).transpose(0, 2, 1, 3)",
             "return x.reshape(N, L, E // num_heads, num_heads).transpose(0, 3, 1, 2)"),
            hint="CONSECUTIVE features"),
    Mistake("merge_heads: a reshape to (N, L, E) without the transpose", "split_merge_heads",
            ("return y.transpose(0, 2, 1, 3).reshape(N, L, H * d)",
             "return y.reshape(N, L, H * d)"),
            hint="the heads got mixed"),
    Mistake("masked_softmax: the mask applied after the softmax", "masked_softmax",
            [("masked = np.where(allowed, scores, -np.inf)", "masked = scores"),
             ("out=np.zeros_like(weights), where=total > 0)",
              "out=np.zeros_like(weights), where=total > 0) * allowed")],
            hint="the mask goes BEFORE the softmax"),
    Mistake("masked_softmax: NaN on a row with no allowed key (-inf minus -inf)",
            "masked_softmax", ("    top[~np.isfinite(top)] = 0.0  # (a row with no allowed key)\n",
                               ""),
            hint="no allowed key"),
    Mistake("masked_softmax: masked scores filled with -1e9 (a row with no allowed key "
            "becomes uniform)", "masked_softmax",
            [("masked = np.where(allowed, scores, -np.inf)",
              "masked = np.where(allowed, scores, -1e9)")],
            hint="a row with every key masked must give weights 0"),
    Mistake("masked_softmax: the mask's meaning flipped (True taken as masked)",
            "masked_softmax", ("masked = np.where(allowed, scores, -np.inf)",
                               "masked = np.where(allowed, -np.inf, scores)"),
            hint="allowed is True where a query MAY attend"),
    Mistake("masked_softmax: no subtraction of the row's largest score (exp overflows)",
            "masked_softmax", ("weights = np.exp(masked - top)", "weights = np.exp(masked)"),
            hint="an overflow in exp"),
    Mistake("mha_backward: out_proj_bias's gradient averaged instead of summed",
            "mha_backward", ('"out_proj_bias": dout.sum(axis=(0, 1))',
                             '"out_proj_bias": dout.mean(axis=(0, 1))'),
            hint="a sum, not a mean"),
    Mistake("mha_backward: out_proj_weight's gradient transposed (x.T @ dout's layout)",
            "mha_backward", ('np.einsum("nli,nlj->ij", dout, cache["merged"])',
                             'np.einsum("nli,nlj->ji", dout, cache["merged"])'),
            hint="the weight's gradient has the weight's layout"),
    Mistake("mha_backward: the out-projection transposed in merged's gradient",
            "mha_backward", ('grads["merged"] = dout @ params["out_proj_weight"]',
                             'grads["merged"] = dout @ params["out_proj_weight"].T'),
            hint="enters the forward transposed"),
    Mistake("mha_backward: merged's gradient split into heads by a reshape without the "
            "transpose", "mha_backward",
            ('grads["context"] = split_heads(grads["merged"], num_heads)',
             'grads["context"] = grads["merged"].reshape(v.shape)'),
            hint="the heads got mixed"),
    Mistake("mha_backward: v's gradient with probs not transposed", "mha_backward",
            ('grads["v"] = probs.transpose(0, 1, 3, 2) @ grads["context"]',
             'grads["v"] = probs @ grads["context"]'),
            hint="v's gradient needs probs with its last two axes swapped"),
    Mistake("mha_backward: the softmax's backward sums over the queries (axis -2)",
            "mha_backward", ("axis=-1, keepdims=True)", "axis=-2, keepdims=True)"),
            hint="the sum in its backward pass runs over that axis too"),
    Mistake("mha_backward: the softmax's backward without the term through the sum",
            "mha_backward", (SCORES, 'grads["scores"] = probs * grads["probs"]'),
            hint="coupled through their sum"),
    Mistake("mha_backward: the 1/sqrt(d) of the scores missing in the backward pass",
            "mha_backward", ("root_d = np.sqrt(q.shape[-1])", "root_d = 1"),
            hint="carries the same 1/sqrt(d)"),
    Mistake("mha_backward: k's gradient with dscores not transposed", "mha_backward",
            ('grads["scores"].transpose(0, 1, 3, 2) @ q', 'grads["scores"] @ q'),
            hint="k's gradient needs dscores with its last two axes swapped"),
    Mistake("mha_backward: v's path forgotten (qkv's last block of columns left 0)",
            "mha_backward", ("merge_heads(grads[\"v\"])]", "0 * merge_heads(grads[\"v\"])]"),
            hint="v's path is missing"),
    Mistake("mha_backward: q, k, v's gradients merged by a reshape without the transpose",
            "mha_backward",
            ('np.concatenate([merge_heads(grads["q"]), merge_heads(grads["k"]),\n'
             '                                   merge_heads(grads["v"])], axis=-1)',
             'np.concatenate([grads[key].reshape(x.shape) for key in "qkv"], axis=-1)'),
            hint="the heads got mixed"),
    Mistake("mha_backward: in_proj_bias's gradient summed over the batch only",
            "mha_backward", ('grads["in_proj_bias"] = grads["qkv"].sum(axis=(0, 1))',
                             'grads["in_proj_bias"] = grads["qkv"].sum(axis=0)'),
            hint="sums over the batch AND the positions"),
    Mistake("mha_backward: in_proj_weight's gradient transposed", "mha_backward",
            ('np.einsum("nli,nlj->ij", grads["qkv"], x)',
             'np.einsum("nli,nlj->ji", grads["qkv"], x)'),
            hint="the weight's gradient has the weight's layout"),
    Mistake("mha_backward: Python loops over the examples and heads (not vectorized)",
            "mha_backward", LOOP_OVER_HEADS, hint="vectorize, no Python loops", speed=True),
    Mistake("build_and_train: the layer attends to the future (causal=False)",
            "build_and_train", ("self.num_heads, causal=True)", "self.num_heads, causal=False)"),
            hint="your attention sees the future"),
    Mistake("build_and_train: too few training steps", "build_and_train",
            ("steps=200", "steps=20"), hint="held-out loss of your model"),
]
