"""Lab 12's visible checks: the forward pass they differentiate is the library's (and
PyTorch's) multi-head attention, cutting v's path removes exactly v's block of gradients, the
build-and-train check refuses the library's attention and a model that sees the future, and the
lab's target separates a trained transformer from the bag-of-characters baseline."""
import numpy as np
import pytest

from backprop.attention import MultiHeadAttention
from backprop.checks import LabCheckError, fresh
from backprop.layers import Layer
from backprop.labchecks import lab12
from backprop.optim import Adam
from backprop.sequence import sequence_cross_entropy

NAMES = ["in_proj_weight", "in_proj_bias", "out_proj_weight", "out_proj_bias"]


def _library_layer(E, H, causal, rng):
    layer = MultiHeadAttention(E, H, is_causal=causal, rng=rng)
    for name in NAMES:
        layer.params[name][...] = rng.standard_normal(layer.params[name].shape)
    return layer


@pytest.mark.parametrize("N, L, E, H, causal", [(2, 4, 6, 2, True), (1, 1, 4, 4, True),
                                                (3, 5, 6, 3, False)])
def test_the_checks_forward_pass_is_the_librarys_attention(N, L, E, H, causal):
    rng = np.random.default_rng(0)
    layer = _library_layer(E, H, causal, rng)
    x = rng.standard_normal((N, L, E))
    padding = rng.random((N, L)) < 0.3
    padding[0, 0] = True  # a query with no allowed key when causal
    expected = layer.forward(x, key_padding_mask=padding)
    values = lab12.layer_forward(x, {k: layer.params[k] for k in NAMES}, H,
                                 lab12.allowed_mask(L, causal, padding))
    np.testing.assert_allclose(values["out"], expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(values["probs"], layer.attn_weights, rtol=1e-12, atol=1e-12)


def test_the_checks_forward_pass_is_pytorchs_attention():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    N, L, E, H = 2, 5, 8, 2
    params, x, allowed, _ = lab12.problem(N, L, E, H, rng)
    module = torch.nn.MultiheadAttention(E, H, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        for name in NAMES:
            module.get_parameter(name.replace("out_proj_", "out_proj.")).copy_(
                torch.tensor(params[name]))
    causal = torch.triu(torch.ones(L, L, dtype=torch.bool), 1)
    xt = torch.tensor(x)
    expected, _ = module(xt, xt, xt, attn_mask=causal, need_weights=False)
    np.testing.assert_allclose(lab12.layer_forward(x, params, H, allowed)["out"],
                               expected.detach().numpy(), rtol=1e-12, atol=1e-12)


def test_holding_v_constant_removes_exactly_vs_block_of_the_gradient():
    rng = np.random.default_rng(2)
    N, L, E, H = 2, 3, 4, 2
    params, x, allowed, dout = lab12.problem(N, L, E, H, rng)
    values = lab12.layer_forward(x, params, H, allowed)
    full = lab12._numeric(values, params, H, allowed, dout, "qkv")
    cut = lab12._numeric(values, params, H, allowed, dout, "qkv", frozen=("v",))
    np.testing.assert_allclose(cut[..., :2 * E], full[..., :2 * E], atol=1e-8)
    assert np.abs(cut[..., 2 * E:]).max() < 1e-8 < np.abs(full[..., 2 * E:]).max()


def test_a_query_with_no_allowed_key_gets_zero_weights_without_warnings():
    scores = np.array([[1.0, 2.0], [3.0, 4.0]])
    allowed = np.array([[False, False], [True, False]])
    with np.errstate(all="raise"):
        probs = lab12._probs(scores, allowed)
    np.testing.assert_array_equal(probs, [[0.0, 0.0], [1.0, 0.0]])


class _LeakyAttention(Layer):
    """A learner's layer that forgot the causal mask (forward only: the check never trains)."""

    def __init__(self, E, H, rng):
        super().__init__()
        self.params = {k: v.copy() for k, v in MultiHeadAttention(E, H, rng=rng).params.items()}
        self.num_heads = H

    def forward(self, x):
        L = x.shape[1]
        return lab12.layer_forward(x, self.params, self.num_heads,
                                   lab12.allowed_mask(L, causal=False))["out"]


def _model(make_attention):
    from backprop.attention import PositionalEmbedding, TransformerBlock
    from backprop.layers import Sequential
    from backprop.normalization import LayerNorm
    from backprop.sequence import Embedding, TemporalLinear
    rng = np.random.default_rng(0)
    E, H = 16, 2
    block = TransformerBlock(E, H, rng=rng, attention=make_attention(E, H, rng))
    return Sequential(Embedding(lab12.VOCAB, E, rng=rng),
                      PositionalEmbedding(2 * lab12.DIGITS, E, rng=rng), block, LayerNorm(E),
                      TemporalLinear(E, lab12.VOCAB, rng=rng))


def test_the_build_and_train_check_refuses_the_librarys_attention():
    model = _model(lambda E, H, rng: MultiHeadAttention(E, H, is_causal=True, rng=rng))
    with pytest.raises(LabCheckError, match="YOUR layer"):
        fresh("lab12").check_build_and_train(model)


def test_the_build_and_train_check_names_a_model_that_sees_the_future():
    with pytest.raises(LabCheckError, match="sees the future"):
        fresh("lab12").check_build_and_train(_model(_LeakyAttention))


def test_the_labs_target_separates_a_trained_transformer_from_the_bag_of_characters():
    """The lab's solution settings (embed 32, 4 heads, one block, Adam 0.01, 200 steps of 32
    strings, seed 0) with the library's attention: far below the target, which is itself far
    below the bag-of-characters baseline."""
    model = lab12.reference_transformer(32, 4, 1, None)
    from backprop.labchecks.lab12 import reversal_data
    optimizer, rng = Adam(model, lr=0.01), np.random.default_rng(1)
    model.train()
    for _ in range(200):
        inputs, targets, mask = reversal_data(32, rng)
        loss, dlogits = sequence_cross_entropy(model.forward(inputs), targets, mask)
        model.backward(dlogits)
        optimizer.step()
    inputs, targets, mask = lab12.heldout_strings()
    heldout = sequence_cross_entropy(lab12._logits(model, inputs), targets, mask)[0]
    baseline = lab12.bag_of_characters_loss(inputs, targets, mask)
    assert heldout < lab12.TEST_TARGET / 3
    assert baseline > 5 * lab12.TEST_TARGET
