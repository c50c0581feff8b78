"""Attention and the transformer (backprop.attention): every backward against finite differences
in float64 (batch 1, L = 1, odd sizes, causal and padding masks, fully masked rows), float32,
named errors, and agreement with PyTorch (scaled_dot_product_attention, nn.MultiheadAttention,
the same block written in torch) to 1e-10 when it is installed; `load_text`."""
import copy
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


def test_char_transformer_gradients_match_finite_differences():
    rng = np.random.default_rng(9)
    model = _randomize(CharTransformer(5, 4, 2, 2, max_len=4, mlp_hidden=6, rng=rng), seed=10)
    ids = rng.integers(0, 5, (2, 3))  # L = 3 < max_len: pos_emb's last row gets no gradient
    dout = rng.standard_normal((2, 3, 5))
    model.forward(ids)
    assert model.backward(dout) is None
    grads = {name: grad.copy() for name, _, grad in model.named_parameters()}
    assert np.all(grads["pos_emb.weight"][3] == 0)
    for name, param, _ in model.named_parameters():
        numeric = numerical_gradient(lambda _p: model.forward(ids), param, dout)
        assert rel_error(grads[name], numeric) < TOL, name
