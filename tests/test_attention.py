"""Attention and the transformer (backprop.attention): every backward against finite differences
in float64 (batch 1, L = 1, odd sizes, causal and padding masks, fully masked rows), float32,
named errors, and agreement with PyTorch (scaled_dot_product_attention, nn.MultiheadAttention,
the same block written in torch) to 1e-10 when it is installed; `load_text`."""
import warnings

import numpy as np
import pytest

from backprop.attention import (GELU, CharTransformer, MultiHeadAttention, PositionalEmbedding,
                                TransformerBlock, scaled_dot_product_attention,
                                scaled_dot_product_attention_backward, sinusoidal_positions)
from backprop.data import load_text
from backprop.gradcheck import check_layer, numerical_gradient, rel_error
from backprop.layers import Layer
from backprop.optim import Adam
from backprop.sequence import sequence_cross_entropy

TOL = 1e-7


def _randomize(layer, seed, scale=0.5):
    """Random parameters (biases and norm weights too), so no gradient hides behind 0 or 1."""
    rng = np.random.default_rng(seed)
    for _, param, _ in layer.named_parameters():
        param[...] = rng.standard_normal(param.shape) * scale + (param.ndim == 1) * 0.1
    return layer


def _check(layer, x):
    report = check_layer(layer, x, seed=x.size)
    assert report.max_rel_error < TOL, str(report)
    names = {f"d{name}" for name, _, _ in layer.named_parameters()}
    assert {e.name for e in report.entries} == {"dx", *names}
    return report


# -- scaled dot-product attention against finite differences ------------------------------------
def _sdpa_check(shapes, seed, **kwargs):
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal(s) for s in shapes)
    out, weights = scaled_dot_product_attention(q, k, v, **kwargs)
    dout = rng.standard_normal(out.shape)
    scale = kwargs.get("scale")
    dq, dk, dv = scaled_dot_product_attention_backward(dout, q, k, v, weights, scale=scale)
    for name, arr, analytic in (("query", q, dq), ("key", k, dk), ("value", v, dv)):
        numeric = numerical_gradient(
            lambda _a: scaled_dot_product_attention(q, k, v, **kwargs)[0], arr, dout)
        err = rel_error(analytic, numeric)
        assert err < TOL, f"d{name}: relative error {err:.2e}"
    return out, weights, (dq, dk, dv)


@pytest.mark.parametrize("shapes,kwargs", [
    (((1, 1, 1), (1, 1, 1), (1, 1, 1)), {}),  # batch 1, L = S = 1, E = 1
    (((3, 4), (5, 4), (5, 2)), {}),  # no batch axis, L != S, Ev != E
    (((2, 3, 5), (2, 3, 5), (2, 3, 7)), {"is_causal": True}),
    (((2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 3)), {"scale": 0.7}),
    (((2, 1, 4, 3), (1, 3, 4, 3), (1, 3, 4, 2)), {"is_causal": True}),  # broadcast batch axes
])
def test_attention_gradients_match_finite_differences(shapes, kwargs):
    _sdpa_check(shapes, seed=len(shapes[0]), **kwargs)


def test_masks_give_zero_weight_and_fully_masked_rows_give_zero_without_nan():
    rng = np.random.default_rng(3)
    allowed = rng.random((2, 5, 6)) > 0.4
    allowed[0, 2] = False  # query 2 of example 0 may attend to nothing
    allowed[1, :, 0] = True  # the other rows have at least one key
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning (0/0, -inf - -inf) either
        out, weights, grads = _sdpa_check(((2, 5, 4), (2, 6, 4), (2, 6, 3)), seed=4,
                                          attn_mask=allowed)
    assert np.all(weights[~allowed] == 0)
    np.testing.assert_allclose(weights.sum(-1)[allowed.any(-1)], 1.0, rtol=1e-12)
    assert np.all(weights[0, 2] == 0) and np.all(out[0, 2] == 0)
    assert np.all(grads[0][0, 2] == 0)  # the dead query gets no gradient
    assert all(np.isfinite(g).all() for g in grads)


def test_float_mask_is_added_and_causal_combines_with_a_padding_mask():
    rng = np.random.default_rng(5)
    q, k, v = rng.standard_normal((3, 2, 4, 3))
    bias = rng.standard_normal((4, 4))
    out, weights = scaled_dot_product_attention(q, k, v, attn_mask=bias)
    scores = q @ np.swapaxes(k, -1, -2) / np.sqrt(3) + bias
    expected = np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)
    np.testing.assert_allclose(weights, expected, rtol=1e-12)
    pad = np.array([True, True, False, True])  # key 2 is padding
    _, weights = scaled_dot_product_attention(q, k, v, attn_mask=pad, is_causal=True)
    assert np.all(weights[..., 2] == 0) and np.all(np.triu(weights[0], 1) == 0)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-12)


# -- layers against finite differences ----------------------------------------------------------
LAYER_CASES = [
    (lambda rng: MultiHeadAttention(4, 2, rng=rng), (1, 1, 4)),  # batch 1, L = 1
    (lambda rng: MultiHeadAttention(6, 3, rng=rng), (2, 5, 6)),
    (lambda rng: MultiHeadAttention(5, 1, is_causal=True, rng=rng), (3, 3, 5)),  # one head
    (lambda rng: MultiHeadAttention(6, 2, bias=False, is_causal=True, rng=rng), (1, 7, 6)),
    (lambda rng: PositionalEmbedding(7, 3, rng=rng), (2, 5, 3)),
    (lambda rng: PositionalEmbedding(1, 2, rng=rng), (1, 1, 2)),
    (lambda rng: GELU(), (2, 3, 5)),
    (lambda rng: GELU("none"), (3, 4)),
    (lambda rng: TransformerBlock(4, 2, rng=rng), (1, 1, 4)),
    (lambda rng: TransformerBlock(6, 3, mlp_hidden=5, rng=rng), (2, 5, 6)),
    (lambda rng: TransformerBlock(4, 1, is_causal=False, activation="relu", rng=rng), (3, 3, 4)),
    (lambda rng: TransformerBlock(6, 2, activation="gelu_exact", rng=rng), (1, 4, 6)),
]


@pytest.mark.parametrize("make,shape", LAYER_CASES)
def test_layer_gradients_match_finite_differences(make, shape):
    layer = _randomize(make(np.random.default_rng(0)), seed=sum(shape))
    x = np.random.default_rng(len(shape)).standard_normal(shape)
    _check(layer, x)


@pytest.mark.parametrize("mask_kind", ["bool", "float"])
def test_multi_head_attention_with_masks_matches_finite_differences(mask_kind):
    rng = np.random.default_rng(7)
    layer = _randomize(MultiHeadAttention(6, 2, is_causal=True, rng=rng), seed=8)
    x = rng.standard_normal((3, 4, 6))
    padding = np.zeros((3, 4), dtype=bool)
    padding[1, 2:] = True  # example 1: the last two positions are padding
    padding[2, 0] = True  # example 2: position 0 is padding, so query 0 sees no key at all
    attn = rng.random((3 * 2, 4, 4)) < 0.2  # (N*H, L, L), True = not allowed
    if mask_kind == "float":
        padding = np.where(padding, -np.inf, 0.0)
        attn = np.where(attn, -np.inf, rng.standard_normal(attn.shape))
    dout = rng.standard_normal(x.shape)

    def run(_):
        return layer.forward(x, attn_mask=attn, key_padding_mask=padding)

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = run(None)
        dx = layer.backward(dout)
    assert np.all(layer.attn_weights[2, :, 0] == 0)  # the query without keys: weights 0
    np.testing.assert_allclose(out[2, 0], layer.params["out_proj_bias"], rtol=1e-12)
    grads = {name: grad.copy() for name, grad in layer.grads.items()}
    assert rel_error(dx, numerical_gradient(run, x, dout)) < TOL
    for name, param in layer.params.items():
        assert rel_error(grads[name], numerical_gradient(run, param, dout)) < TOL, name


@pytest.mark.parametrize("sizes,shape", [
    ((5, 4, 2, 2, 4, 6), (2, 3)),  # 2 blocks; L = 3 < max_len: pos_emb's last row gets 0
    ((3, 3, 1, 1, 2, 5), (1, 1)),  # batch 1, L = 1, one head of odd size 3
])
def test_char_transformer_gradients_match_finite_differences(sizes, shape):
    rng = np.random.default_rng(9)
    vocab, embed, heads, layers, max_len, hidden = sizes
    model = _randomize(CharTransformer(vocab, embed, heads, layers, max_len=max_len,
                                       mlp_hidden=hidden, rng=rng), seed=10)
    ids = rng.integers(0, vocab, shape)
    dout = rng.standard_normal((*shape, vocab))
    model.forward(ids)
    assert model.backward(dout) is None
    grads = {name: grad.copy() for name, _, grad in model.named_parameters()}
    assert np.all(grads["pos_emb.weight"][shape[1]:] == 0)
    for name, param, _ in model.named_parameters():
        numeric = numerical_gradient(lambda _p: model.forward(ids), param, dout)
        assert rel_error(grads[name], numeric) < TOL, name


def test_skipping_dx_gives_the_same_gradients():
    rng = np.random.default_rng(11)
    for layer in (MultiHeadAttention(6, 2, is_causal=True, rng=rng),
                  PositionalEmbedding(5, 6, rng=rng)):
        x, dout = rng.standard_normal((2, 2, 4, 6))
        layer.forward(x)
        dx = layer.backward(dout)
        grads = {name: grad.copy() for name, grad in layer.grads.items()}
        layer.forward(x)
        assert layer.skips_input_grad and layer.backward(dout, input_grad=False) is None
        for name, grad in layer.grads.items():
            np.testing.assert_array_equal(grad, grads[name])
        assert dx.shape == x.shape


# -- invariants and behaviour -------------------------------------------------------------------
def test_attention_weights_are_causal_rows_of_probabilities():
    rng = np.random.default_rng(12)
    layer = MultiHeadAttention(8, 4, is_causal=True, rng=rng)
    x = rng.standard_normal((3, 6, 8))
    out = layer.forward(x)
    weights = layer.attn_weights
    assert out.shape == x.shape and weights.shape == (3, 4, 6, 6)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-12)
    assert np.all(np.triu(weights, 1) == 0) and np.all(weights[..., 0, 0] == 1)
    # causal: the output at position t does not depend on the inputs after t
    x2 = x.copy()
    x2[:, 4:] += 10.0
    np.testing.assert_allclose(layer.forward(x2)[:, :4], out[:, :4], rtol=1e-12, atol=1e-12)


def test_heads_are_independent_attentions_on_slices_of_the_projections():
    rng = np.random.default_rng(13)
    E, H = 6, 3
    layer = _randomize(MultiHeadAttention(E, H, rng=rng), seed=14)
    x = rng.standard_normal((2, 5, E))
    out = layer.forward(x)
    W, b = layer.params["in_proj_weight"], layer.params["in_proj_bias"]
    q, k, v = np.split(x @ W.T + b, 3, axis=-1)
    d = E // H  # head h works on features h*d .. (h+1)*d - 1 of q, k and v
    heads = [scaled_dot_product_attention(q[..., h * d:(h + 1) * d], k[..., h * d:(h + 1) * d],
                                          v[..., h * d:(h + 1) * d])[0] for h in range(H)]
    expected = np.concatenate(heads, axis=-1) @ layer.params["out_proj_weight"].T \
        + layer.params["out_proj_bias"]
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)


def test_sinusoidal_positions_follow_the_formula_and_shift_by_rotation():
    P = sinusoidal_positions(50, 8)
    assert P.shape == (50, 8) and P.dtype == np.float64
    p, i = 7, 2
    assert P[p, 2 * i] == pytest.approx(np.sin(p / 10000 ** (2 * i / 8)))
    assert P[p, 2 * i + 1] == pytest.approx(np.cos(p / 10000 ** (2 * i / 8)))
    # P[p + k] is the same linear map of P[p] for every p: a rotation of each (sin, cos) pair
    k = 3
    A, B = P[:40], P[k:40 + k]
    R = np.linalg.lstsq(A, B, rcond=None)[0]
    np.testing.assert_allclose(A @ R, B, atol=1e-9)
    odd = sinusoidal_positions(4, 5, dtype=np.float32)
    assert odd.shape == (4, 5) and odd.dtype == np.float32
    np.testing.assert_allclose(odd[:, 4], np.sin(np.arange(4) / 10000 ** (4 / 5)), rtol=1e-6)


def test_positional_embedding_adds_its_first_rows_and_accepts_the_sinusoids():
    layer = PositionalEmbedding(6, 4, rng=np.random.default_rng(0))
    layer.params["weight"][...] = sinusoidal_positions(6, 4)
    x = np.ones((2, 3, 4))
    expected = np.broadcast_to(1 + sinusoidal_positions(6, 4)[:3], x.shape)
    np.testing.assert_array_equal(layer.forward(x), expected)


def test_block_with_a_plugged_in_attention_layer_uses_it():
    rng = np.random.default_rng(15)
    own = MultiHeadAttention(6, 2, is_causal=True, rng=rng)
    block = TransformerBlock(6, 2, attention=own, rng=rng)
    assert block.attn is own and "attn.in_proj_weight" in block.params
    assert [name for name, _ in block.named_children()] == ["ln1", "attn", "ln2", "mlp"]

    class Identity(Layer):  # the simplest "attention": no parameters, dx = dout
        def forward(self, x):
            self._cache = x.shape
            return x * 1.0

        def backward(self, dout):
            return dout

    block = _randomize(TransformerBlock(4, 1, attention=Identity(), rng=rng), seed=16)
    x = rng.standard_normal((2, 3, 4))
    _check(block, x)
    h = x + block.ln1.forward(x)
    np.testing.assert_allclose(block.forward(x), h + block.mlp.forward(block.ln2.forward(h)),
                               rtol=1e-12)


def test_char_transformer_learns_and_generates_deterministically():
    rng = np.random.default_rng(17)
    text = np.tile(np.arange(6), 30)  # 0 1 2 3 4 5 0 1 ...: the next id is always known
    model = CharTransformer(6, 16, 2, 1, max_len=8, rng=rng)
    optimizer = Adam(model, lr=1e-2)
    losses = []
    for _ in range(30):
        starts = rng.integers(0, len(text) - 9, 8)
        window = text[starts[:, None] + np.arange(9)]
        loss, dlogits = sequence_cross_entropy(model.forward(window[:, :-1]), window[:, 1:])
        model.backward(dlogits)
        optimizer.step()
        losses.append(loss)
    assert losses[-1] < 0.2 * losses[0]
    greedy = model.generate([0, 1], 10, np.random.default_rng(0), temperature=0)
    np.testing.assert_array_equal(greedy, np.arange(12) % 6)
    a = model.generate(np.array([[3], [4]]), 20, np.random.default_rng(1))
    b = model.generate(np.array([[3], [4]]), 20, np.random.default_rng(1))
    assert a.shape == (2, 21) and a.dtype == np.int64 and (a == b).all()
    assert ((a >= 0) & (a < 6)).all()
    assert model.generate([1] * 12, 0, np.random.default_rng(0)).shape == (12,)  # > max_len


def test_state_dict_round_trip_restores_the_outputs():
    rng = np.random.default_rng(18)
    model = CharTransformer(7, 8, 2, 2, max_len=5, rng=rng)
    ids = rng.integers(0, 7, (2, 5))
    before, state = model.forward(ids), model.state_dict()
    other = CharTransformer(7, 8, 2, 2, max_len=5, rng=np.random.default_rng(99))
    other.load_state_dict(state)
    np.testing.assert_array_equal(other.forward(ids), before)


# -- float32 ------------------------------------------------------------------------------------
@pytest.mark.parametrize("make,shape", [
    (lambda rng, dtype: MultiHeadAttention(6, 2, is_causal=True, rng=rng, dtype=dtype),
     (2, 5, 6)),
    (lambda rng, dtype: PositionalEmbedding(5, 6, rng=rng, dtype=dtype), (2, 5, 6)),
    (lambda rng, dtype: TransformerBlock(6, 3, rng=rng, dtype=dtype), (2, 5, 6)),
])
def test_float32_layers_compute_in_float32_close_to_float64(make, shape):
    layer64 = _randomize(make(np.random.default_rng(0), np.float64), seed=19)
    layer32 = make(np.random.default_rng(0), np.float32)
    layer32.load_state_dict(layer64.state_dict())
    x = np.random.default_rng(20).standard_normal(shape)
    dout = np.random.default_rng(21).standard_normal(shape)
    out64, out32 = layer64.forward(x), layer32.forward(x.astype(np.float32))
    dx64, dx32 = layer64.backward(dout), layer32.backward(dout.astype(np.float32))
    assert out32.dtype == dx32.dtype == np.float32
    assert all(g.dtype == np.float32 for _, _, g in layer32.named_parameters())
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(dx32, dx64, rtol=1e-4, atol=1e-4)
    for (name, _, g32), (_, _, g64) in zip(layer32.named_parameters(),
                                           layer64.named_parameters()):
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-4, err_msg=name)


@pytest.mark.parametrize("make", [
    lambda rng: MultiHeadAttention(4, 2, is_causal=True, rng=rng, dtype=np.float32),
    lambda rng: PositionalEmbedding(3, 4, rng=rng, dtype=np.float32),
    lambda rng: TransformerBlock(4, 2, rng=rng, dtype=np.float32),
])
def test_check_layer_checks_float32_layers_in_float64(make):
    layer = make(np.random.default_rng(0))
    report = check_layer(layer, np.random.default_rng(1).standard_normal((2, 3, 4)))
    assert report.max_rel_error < TOL, str(report)
    assert all(p.dtype == np.float32 for _, p, _ in layer.named_parameters())  # untouched


def test_any_memory_layout_gives_the_same_results():
    rng = np.random.default_rng(25)
    block = _randomize(TransformerBlock(6, 2, rng=rng), seed=26)
    x = rng.standard_normal((2, 5, 6))
    dout = rng.standard_normal(x.shape)
    out, dx = block.forward(x), block.backward(dout)
    grads = {name: grad.copy() for name, grad in block.grads.items()}
    for layout in (np.asfortranarray(x), x.transpose(1, 0, 2).copy().transpose(1, 0, 2)):
        np.testing.assert_allclose(block.forward(layout), out, rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(block.backward(np.asfortranarray(dout)), dx, rtol=1e-13,
                                   atol=1e-13)
        for name, grad in block.grads.items():
            np.testing.assert_allclose(grad, grads[name], rtol=1e-12, atol=1e-12)


def test_float32_attention_function_and_char_transformer():
    rng = np.random.default_rng(22)
    q, k, v = rng.standard_normal((3, 2, 4, 3)).astype(np.float32)
    out, weights = scaled_dot_product_attention(q, k, v, is_causal=True)
    grads = scaled_dot_product_attention_backward(np.ones_like(out), q, k, v, weights)
    assert out.dtype == weights.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads)
    model = CharTransformer(5, 8, 2, 1, max_len=4, rng=rng, dtype=np.float32)
    logits = model.forward(rng.integers(0, 5, (2, 4)))
    assert logits.dtype == np.float32
    model.backward(np.ones_like(logits))
    assert all(g.dtype == np.float32 for _, _, g in model.named_parameters())


# -- bad input gets named errors ----------------------------------------------------------------
Q, K, V = (np.zeros((2, 3, 4)), np.zeros((2, 5, 4)), np.zeros((2, 5, 6)))


@pytest.mark.parametrize("args,kwargs,error,message", [
    ((np.zeros(4), K, V), {}, ValueError, r"query must have shape \(\.\.\., L, E\)"),
    ((Q, np.zeros((2, 5, 3)), V), {}, ValueError, "key's last axis must match query's"),
    ((Q, K, np.zeros((2, 4, 6))), {}, ValueError, "value must have one row per key"),
    ((Q, np.zeros((3, 5, 4)), np.zeros((3, 5, 6))), {}, ValueError, "do not broadcast"),
    ((Q, K, V.astype(np.float32)), {}, TypeError, "must have one dtype"),
    ((Q, K, V), {"attn_mask": np.ones((3, 4), dtype=bool)}, ValueError,
     r"attn_mask of shape \(3, 4\) does not broadcast to the scores' shape"),
    ((Q, K, V), {"attn_mask": np.ones((3, 5), dtype=int)}, TypeError,
     r"attn_mask must be boolean \(True = may attend\) or float"),
    ((Q, K, V), {"scale": float("nan")}, ValueError, "scale must be a finite number"),
    ((np.full((2, 3, 4), np.nan), K, V), {}, ValueError, r"query contains NaN or inf"),
    ((Q, K, np.where(np.arange(6) == 2, np.inf, V)), {}, ValueError, "value contains NaN"),
])
def test_attention_function_errors_are_named(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        scaled_dot_product_attention(*args, **kwargs)


def test_attention_backward_errors_are_named():
    out, weights = scaled_dot_product_attention(Q, K, V)
    with pytest.raises(ValueError, match=r"dout must have the output's shape \(2, 3, 6\)"):
        scaled_dot_product_attention_backward(np.zeros((2, 3, 4)), Q, K, V, weights)
    with pytest.raises(ValueError, match=r"weights must have shape \(\.\.\., L, S\)"):
        scaled_dot_product_attention_backward(out, Q, K, V, weights[..., :4])
    with pytest.raises(TypeError, match="dout and weights must have the inputs' dtype"):
        scaled_dot_product_attention_backward(out.astype(np.float32), Q, K, V, weights)


RNG = np.random.default_rng(0)


@pytest.mark.parametrize("call,error,message", [
    (lambda: MultiHeadAttention(6, 4, rng=RNG), ValueError,
     r"embed_dim \(6\) must be divisible by num_heads \(4\)"),
    (lambda: MultiHeadAttention(6, 0, rng=RNG), ValueError, "num_heads must be an integer >= 1"),
    (lambda: MultiHeadAttention(6, 2), TypeError, "pass rng=np.random.default_rng"),
    (lambda: MultiHeadAttention(6, 2, rng=RNG, dtype=int), TypeError, "dtype must be a float"),
    (lambda: MultiHeadAttention(6, 2, rng=RNG).forward(np.zeros((3, 6))), ValueError,
     r"expected input of shape \(N, L, E\) with E = 6, got \(3, 6\)"),
    (lambda: MultiHeadAttention(6, 2, rng=RNG).forward(np.zeros((1, 3, 5))), ValueError,
     r"with E = 6, got \(1, 3, 5\)"),
    (lambda: MultiHeadAttention(6, 2, rng=RNG).forward(np.zeros((1, 3, 6), np.float32)),
     TypeError, "input has dtype float32 but the layer's parameters are float64"),
    (lambda: MultiHeadAttention(6, 2, rng=RNG).forward(
        np.zeros((2, 3, 6)), attn_mask=np.zeros((3, 4), bool)), ValueError,
     r"attn_mask must have shape \(L, L\) = \(3, 3\) or \(N\*H, L, L\) = \(4, 3, 3\)"),
    (lambda: MultiHeadAttention(6, 2, rng=RNG).forward(
        np.zeros((2, 3, 6)), key_padding_mask=np.zeros((3, 2), bool)), ValueError,
     r"key_padding_mask must have shape \(N, L\) = \(2, 3\)"),
    (lambda: MultiHeadAttention(6, 2, rng=RNG).forward(
        np.zeros((2, 3, 6)), key_padding_mask=np.zeros((2, 3), int)), TypeError,
     r"key_padding_mask must be boolean \(True = may NOT attend\) or float"),
    (lambda: MultiHeadAttention(6, 2, rng=RNG).forward(
        np.zeros((2, 3, 6)), attn_mask=np.full((3, 3), np.nan)), ValueError,
     "attn_mask contains NaN"),
    (lambda: MultiHeadAttention(6, 2, rng=RNG).forward(np.full((2, 3, 6), np.nan)), ValueError,
     r"input contains NaN or inf \(first at index \(0, 0, 0\)\)"),
    (lambda: MultiHeadAttention(6, 2, rng=RNG).backward(np.zeros((2, 3, 6))), RuntimeError,
     r"backward\(\) called before forward\(\)"),
    (lambda: PositionalEmbedding(4, 6, rng=RNG).forward(np.zeros((2, 5, 6))), ValueError,
     r"1 <= L <= max_len = 4, got \(2, 5, 6\)"),
    (lambda: sinusoidal_positions(0, 4), ValueError, "max_len must be an integer >= 1"),
    (lambda: GELU("erf"), ValueError, "approximate must be 'tanh' or 'none'"),
    (lambda: TransformerBlock(6, 2, attention=lambda x: x, rng=RNG), TypeError,
     r"attention must be a Layer mapping \(N, L, E\) to \(N, L, E\)"),
    (lambda: TransformerBlock(6, 2, activation="tanh", rng=RNG), ValueError,
     "activation must be one of"),
    (lambda: TransformerBlock(6, 2, attention=PositionalEmbedding(2, 6, rng=RNG), rng=RNG)
     .forward(np.zeros((1, 3, 6))), ValueError, r"PositionalEmbedding\(2, 6\): expected input"),
    (lambda: TransformerBlock(6, 2, attention=GELU(), rng=RNG).forward(np.zeros((1, 3, 4))),
     ValueError, r"with E = 6, got \(1, 3, 4\)"),
    (lambda: TransformerBlock(6, 2, attention=GELU(), rng=RNG).forward(
        np.zeros((1, 3, 6)), key_padding_mask=np.zeros((1, 3), bool)), TypeError,
     r"the attention layer GELU\(\) takes no key_padding_mask"),
    (lambda: CharTransformer(5, 4, 2, 1, max_len=3, rng=RNG).forward(np.zeros((2, 4), int)),
     ValueError, r"1 <= L <= max_len = 3, got shape \(2, 4\)"),
    (lambda: CharTransformer(5, 4, 2, 1, max_len=3, rng=RNG).forward(np.zeros((2, 3))),
     TypeError, "expected integer ids"),
    (lambda: CharTransformer(5, 4, 2, 1, max_len=3, rng=RNG).forward(np.full((2, 3), 5)),
     ValueError, r"id 5 is out of range; valid ids are 0..4"),
    (lambda: CharTransformer(5, 4, 2, 1, max_len=3, rng=RNG).generate([0], 2, rng=None),
     TypeError, "pass rng=np.random.default_rng"),
    (lambda: CharTransformer(5, 4, 2, 1, max_len=3, rng=RNG).generate([], 2, RNG),
     ValueError, r"prompt_ids must be integer ids of shape \(L0,\) or \(N, L0\) with L0 >= 1"),
    (lambda: CharTransformer(5, 4, 2, 1, max_len=3, rng=RNG).generate([0], 2, RNG, -1.0),
     ValueError, "temperature must be a number >= 0"),
])
def test_layer_errors_are_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_a_block_whose_attention_changes_the_shape_is_refused():
    class Halve(Layer):
        def forward(self, x):
            return x[..., :2]

    block = TransformerBlock(4, 2, attention=Halve(), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"maps \(N, L, E\) = \(1, 3, 4\) to \(1, 3, 2\); the "
                                         r"residual sum x \+ attn\(ln1\(x\)\) needs the same"):
        block.forward(np.zeros((1, 3, 4)))


def test_reprs():
    rng = np.random.default_rng(0)
    assert repr(MultiHeadAttention(8, 2, rng=rng)) == "MultiHeadAttention(8, 2)"
    assert repr(MultiHeadAttention(8, 2, bias=False, is_causal=True, rng=rng)) == \
        "MultiHeadAttention(8, 2, bias=False, is_causal=True)"
    assert repr(TransformerBlock(8, 2, mlp_hidden=16, rng=rng)) == \
        "TransformerBlock(8, 2, mlp_hidden=16)"
    assert repr(CharTransformer(5, 8, 2, 1, 4, rng=rng)) == ("CharTransformer(vocab_size=5, "
                                                             "embed_dim=8, num_heads=2, "
                                                             "num_layers=1, max_len=4)")


# -- the text -----------------------------------------------------------------------------------
def test_load_text_is_offline_deterministic_printable_english():
    text = load_text()
    assert text == load_text("pydoc_topics")
    assert 100_000 < len(text) < 300_000
    assert set(text) <= {chr(c) for c in range(32, 127)} | {"\n"}
    assert 80 <= len(set(text)) <= 96
    words = text.split()
    assert words.count("the") > 0.03 * len(words)  # English prose, not code
    assert "\n\n\n" not in text and "::=" not in text
    with pytest.raises(ValueError, match="unknown text 'shakespeare'"):
        load_text("shakespeare")


# -- equal to PyTorch ---------------------------------------------------------------------------
TORCH_TOL = 1e-10


def _close(ours, theirs, what):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    err = np.max(np.abs(ours - theirs)) / max(np.max(np.abs(theirs)), 1e-300)
    assert err < TORCH_TOL, f"{what}: relative difference {err:.2e}"


@pytest.mark.parametrize("shapes,mask,kwargs", [
    (((2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 7)), "bool", {}),
    (((2, 3, 5, 4), (2, 3, 6, 4), (2, 3, 6, 7)), "float", {"scale": 0.3}),
    (((1, 1, 4), (1, 1, 4), (1, 1, 2)), None, {}),
    (((3, 7, 5), (3, 7, 5), (3, 7, 3)), None, {"is_causal": True}),
    (((2, 4, 3), (2, 6, 3), (2, 6, 3)), "bool_dead", {}),  # rows without any key
    (((2, 3, 4), (2, 5, 4), (2, 5, 2)), None, {"is_causal": True}),  # L < S: j <= i, top left
    (((2, 1, 3, 4), (1, 2, 3, 4), (1, 2, 3, 5)), None, {}),  # broadcast leading axes
])
def test_attention_function_equals_pytorchs(shapes, mask, kwargs):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(len(shapes[0]))
    q, k, v = (rng.standard_normal(s) for s in shapes)
    L, S = shapes[0][-2], shapes[1][-2]
    attn_mask = None
    if mask is not None:
        attn_mask = rng.random((L, S)) > 0.3
        attn_mask[:, 0] = mask != "bool_dead"
        if mask == "bool_dead":
            attn_mask[1] = False
        if mask == "float":
            attn_mask = np.where(attn_mask, rng.standard_normal((L, S)), -np.inf)
    out, weights = scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, **kwargs)
    tensors = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    theirs = F.scaled_dot_product_attention(
        *tensors, attn_mask=None if attn_mask is None else torch.tensor(attn_mask), **kwargs)
    _close(out, theirs, "out")
    dout = rng.standard_normal(out.shape)
    theirs.backward(torch.tensor(dout))
    grads = scaled_dot_product_attention_backward(dout, q, k, v, weights,
                                                  scale=kwargs.get("scale"))
    for name, ours, tensor in zip(("dquery", "dkey", "dvalue"), grads, tensors):
        _close(ours, tensor.grad, name)


def _torch_mha(torch, ours):
    theirs = torch.nn.MultiheadAttention(ours.embed_dim, ours.num_heads, bias=ours.bias,
                                         batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.tensor(ours.params["in_proj_weight"]))
        theirs.out_proj.weight.copy_(torch.tensor(ours.params["out_proj_weight"]))
        if ours.bias:
            theirs.in_proj_bias.copy_(torch.tensor(ours.params["in_proj_bias"]))
            theirs.out_proj.bias.copy_(torch.tensor(ours.params["out_proj_bias"]))
    return theirs


def _torch_grads(torch_module, names):
    found = dict(torch_module.named_parameters())
    return {ours: found[theirs].grad for ours, theirs in names.items() if theirs in found}


MHA_NAMES = {"in_proj_weight": "in_proj_weight", "in_proj_bias": "in_proj_bias",
             "out_proj_weight": "out_proj.weight", "out_proj_bias": "out_proj.bias"}


@pytest.mark.parametrize("E,H,N,L,causal,masks", [
    (8, 2, 3, 5, True, ()),
    (6, 3, 1, 1, False, ()),  # batch 1, L = 1
    (6, 1, 2, 4, False, ("attn_bool", "padding_bool")),
    (8, 4, 2, 5, True, ("attn_float3d", "padding_float")),
    (6, 2, 2, 3, False, ("no_bias",)),
])
def test_multi_head_attention_equals_pytorchs(E, H, N, L, causal, masks):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(E * L)
    ours = _randomize(MultiHeadAttention(E, H, bias="no_bias" not in masks, is_causal=causal,
                                         rng=rng), seed=E + L)
    theirs = _torch_mha(torch, ours)
    x = rng.standard_normal((N, L, E))
    kwargs, torch_kwargs = {}, {}
    attn = np.triu(np.ones((L, L), bool), 1) if causal else None  # torch: True = not allowed
    if "attn_bool" in masks:
        kwargs["attn_mask"] = attn = rng.random((L, L)) < 0.3
        np.fill_diagonal(attn, False)
    if "attn_float3d" in masks:
        kwargs["attn_mask"] = rng.standard_normal((N * H, L, L))
        attn = kwargs["attn_mask"] + np.where(attn, -np.inf, 0.0)[None]
    if "padding_bool" in masks:
        kwargs["key_padding_mask"] = np.zeros((N, L), bool)
        kwargs["key_padding_mask"][0, 2:] = True
    if "padding_float" in masks:
        kwargs["key_padding_mask"] = np.where(rng.random((N, L)) < 0.3, -np.inf, 0.0)
        kwargs["key_padding_mask"][:, 0] = 0.0  # every query keeps key 0
    if attn is not None:
        torch_kwargs["attn_mask"] = torch.tensor(attn)
    if "key_padding_mask" in kwargs:
        torch_kwargs["key_padding_mask"] = torch.tensor(kwargs["key_padding_mask"])
    out = ours.forward(x, **kwargs)
    xt = torch.tensor(x, requires_grad=True)
    y, weights = theirs(xt, xt, xt, need_weights=True, average_attn_weights=False,
                        **torch_kwargs)
    _close(out, y, "out")
    _close(ours.attn_weights, weights, "attn_weights")
    dout = rng.standard_normal(out.shape)
    y.backward(torch.tensor(dout))
    _close(ours.backward(dout), xt.grad, "dx")
    for name, grad in _torch_grads(theirs, MHA_NAMES).items():
        if name in ours.grads:
            _close(ours.grads[name], grad, name)


def _torch_block(torch, block):
    """`block` written in torch: nn.LayerNorm, nn.MultiheadAttention, nn.Linear, activation."""
    nn = torch.nn
    E = block.embed_dim

    def linear(temporal):
        layer = temporal.layer
        theirs = nn.Linear(layer.in_features, layer.out_features, dtype=torch.float64)
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(layer.params["W"].T))
            theirs.bias.copy_(torch.tensor(layer.params["b"]))
        return theirs

    def norm(ln):
        theirs = nn.LayerNorm(E, dtype=torch.float64)
        with torch.no_grad():
            theirs.weight.copy_(torch.tensor(ln.params["weight"]))
            theirs.bias.copy_(torch.tensor(ln.params["bias"]))
        return theirs

    activation = {"gelu": nn.GELU(approximate="tanh"), "gelu_exact": nn.GELU(),
                  "relu": nn.ReLU()}[block.activation]

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.attn, self.ln2 = norm(block.ln1), _torch_mha(torch, block.attn), \
                norm(block.ln2)
            self.mlp = nn.Sequential(linear(block.mlp[0]), activation, linear(block.mlp[2]))

        def forward(self, x):
            L = x.shape[1]
            mask = torch.triu(torch.ones(L, L, dtype=torch.bool), 1) \
                if block.attn.is_causal else None
            a = self.ln1(x)
            h = x + self.attn(a, a, a, attn_mask=mask, need_weights=False)[0]
            return h + self.mlp(self.ln2(h))

    return Block()


BLOCK_NAMES = {**{f"attn.{k}": f"attn.{v}" for k, v in MHA_NAMES.items()},
               **{f"{n}.{p}": f"{n}.{p}" for n in ("ln1", "ln2") for p in ("weight", "bias")},
               "mlp.0.b": "mlp.0.bias", "mlp.2.b": "mlp.2.bias"}


@pytest.mark.parametrize("E,H,hidden,causal,activation,shape", [
    (8, 2, None, True, "gelu", (3, 5)),
    (6, 3, 10, False, "gelu_exact", (1, 1)),
    (6, 1, 7, True, "relu", (2, 4)),
])
def test_transformer_block_equals_the_same_block_in_pytorch(E, H, hidden, causal, activation,
                                                            shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(E + H)
    ours = _randomize(TransformerBlock(E, H, mlp_hidden=hidden, is_causal=causal,
                                       activation=activation, rng=rng), seed=E, scale=0.3)
    theirs = _torch_block(torch, ours)
    x = rng.standard_normal((*shape, E))
    xt = torch.tensor(x, requires_grad=True)
    y = theirs(xt)
    _close(ours.forward(x), y, "out")
    dout = rng.standard_normal(x.shape)
    y.backward(torch.tensor(dout))
    _close(ours.backward(dout), xt.grad, "dx")
    grads = _torch_grads(theirs, BLOCK_NAMES)
    grads["mlp.0.W"] = theirs.mlp[0].weight.grad.T
    grads["mlp.2.W"] = theirs.mlp[2].weight.grad.T
    assert set(grads) == set(ours.grads)
    for name, grad in grads.items():
        _close(ours.grads[name], grad, name)


def test_char_transformer_equals_the_same_model_in_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(23)
    ours = _randomize(CharTransformer(7, 8, 2, 2, max_len=6, rng=rng), seed=24, scale=0.3)
    blocks = [_torch_block(torch, block) for block in ours.blocks]
    tok = torch.tensor(ours.tok_emb.params["W"], requires_grad=True)
    pos = torch.tensor(ours.pos_emb.params["weight"], requires_grad=True)
    ln_f = torch.nn.LayerNorm(8, dtype=torch.float64)
    head_W = torch.tensor(ours.head.layer.params["W"], requires_grad=True)
    head_b = torch.tensor(ours.head.layer.params["b"], requires_grad=True)
    with torch.no_grad():
        ln_f.weight.copy_(torch.tensor(ours.ln_f.params["weight"]))
        ln_f.bias.copy_(torch.tensor(ours.ln_f.params["bias"]))
    ids = rng.integers(0, 7, (3, 5))
    x = tok[torch.tensor(ids)] + pos[:5]
    for block in blocks:
        x = block(x)
    logits = ln_f(x) @ head_W + head_b
    targets = rng.integers(0, 7, (3, 5))
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 7), torch.tensor(targets).ravel())
    loss.backward()
    ours_loss, dlogits = sequence_cross_entropy(ours.forward(ids), targets)
    assert ours_loss == pytest.approx(loss.item(), rel=TORCH_TOL)
    ours.backward(dlogits)
    _close(ours.grads["tok_emb.W"], tok.grad, "tok_emb.W")
    _close(ours.grads["pos_emb.weight"], pos.grad, "pos_emb.weight")
    _close(ours.grads["head.W"], head_W.grad, "head.W")
    _close(ours.grads["blocks.1.attn.in_proj_weight"], blocks[1].attn.in_proj_weight.grad,
           "blocks.1.attn.in_proj_weight")
    _close(ours.grads["blocks.0.ln1.weight"], blocks[0].ln1.weight.grad, "blocks.0.ln1.weight")


def test_block_passes_masks_to_its_attention():
    rng = np.random.default_rng(27)
    block = _randomize(TransformerBlock(6, 2, is_causal=False, rng=rng), seed=28)
    x = rng.standard_normal((2, 4, 6))
    padding = np.array([[False, False, True, True], [False] * 4])
    out = block.forward(x, key_padding_mask=padding)
    assert np.all(block.attn.attn_weights[0, :, :, 2:] == 0)
    h = x + block.attn.forward(block.ln1.forward(x), key_padding_mask=padding)
    np.testing.assert_allclose(out, h + block.mlp.forward(block.ln2.forward(h)), rtol=1e-12)
    assert not np.allclose(block.forward(x), out)  # without the mask: another result
