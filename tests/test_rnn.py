"""Recurrent layers and sequence tools: BPTT against finite differences in float64, the
single-step functions, embeddings, the sequence loss, gradient clipping, bad input, and
agreement with PyTorch when it is installed."""
import numpy as np
import pytest

from backprop.gated import GRU, LSTM
from backprop.gradcheck import check_layer, numerical_gradient, rel_error
from backprop.layers import LayerReuseError, Linear, Sequential, Tanh
from backprop.rnn import RNN, rnn_step_backward, rnn_step_forward
from backprop.sequence import (Embedding, TemporalLinear, TimeDistributed, clip_grad_norm,
                               sequence_cross_entropy)

TOL = 1e-7
D, H = 3, 5
RECURRENT = [RNN, LSTM, GRU]
STATES = {RNN: ("h0",), LSTM: ("h0", "c0"), GRU: ("h0",)}


def _layer(cls, seed=0, **kwargs):
    """A layer with random (non-zero) biases, so no bias term can hide behind zeros."""
    rng = np.random.default_rng(seed)
    layer = cls(D, H, rng=rng, **kwargs)
    layer.params["b"][...] = rng.standard_normal(layer.params["b"].shape)
    return layer


# -- gradients of the full layers ------------------------------------------------------------
@pytest.mark.parametrize("cls", RECURRENT)
@pytest.mark.parametrize("n,t", [(1, 1), (2, 3), (3, 5), (1, 5)])
def test_recurrent_gradients_match_finite_differences(cls, n, t):
    layer = _layer(cls, seed=10 * n + t)
    x = np.random.default_rng(t).standard_normal((n, t, D))
    report = check_layer(layer, x, seed=t)
    assert report.max_rel_error < TOL, str(report)
    assert {e.name for e in report.entries} == {"dx", "dWx", "dWh", "db"}


@pytest.mark.parametrize("cls", RECURRENT)
@pytest.mark.parametrize("t", [1, 4])
def test_initial_state_and_parameter_gradients_with_given_states(cls, t):
    rng = np.random.default_rng(t)
    layer, x = _layer(cls, seed=t), rng.standard_normal((2, t, D))
    states = {name: rng.standard_normal((2, H)) for name in STATES[cls]}
    dout = rng.standard_normal((2, t, H))
    layer.forward(x, **states)
    dx = layer.backward(dout)

    def run(**override):
        return layer.forward(x, **{**states, **override})

    for name in STATES[cls]:
        num = numerical_gradient(lambda s, name=name: run(**{name: s}), states[name], dout)
        analytic = getattr(layer, "d" + name)
        assert np.abs(analytic).max() > 1e-3
        assert rel_error(analytic, num) < TOL, name
    assert rel_error(dx, numerical_gradient(lambda v: layer.forward(v, **states), x, dout)) < TOL
    for name, param in layer.params.items():
        num = numerical_gradient(lambda _p: run(), param, dout)
        assert np.abs(num).max() > 1e-3  # with h0 given, dWh is not zero even for T = 1
        assert rel_error(layer.grads[name], num) < TOL, name


@pytest.mark.parametrize("cls", RECURRENT)
def test_initial_state_gradients_are_none_without_initial_states(cls):
    layer = _layer(cls)
    out = layer(np.ones((2, 3, D)))
    layer.backward(np.ones_like(out))
    assert all(getattr(layer, "d" + name) is None for name in STATES[cls])


# -- single-step functions -------------------------------------------------------------------
def _step_inputs(seed=0, n=2):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((n, D)), rng.standard_normal((n, H)),
            rng.standard_normal((D, H)) * 0.5, rng.standard_normal((H, H)) * 0.5,
            rng.standard_normal(H))


@pytest.mark.parametrize("n", [1, 3])
def test_rnn_step_gradients_match_finite_differences(n):
    inputs = _step_inputs(n, n)
    h_next, cache = rnn_step_forward(*inputs)
    np.testing.assert_allclose(h_next, np.tanh(inputs[0] @ inputs[2] + inputs[1] @ inputs[3]
                                               + inputs[4]))
    dh_next = np.random.default_rng(1).standard_normal(h_next.shape)
    grads = rnn_step_backward(dh_next, cache)
    for k, name in enumerate(["dx_t", "dh_prev", "dWx", "dWh", "db"]):
        def f(v, k=k):
            args = list(inputs)
            args[k] = v
            return rnn_step_forward(*args)[0]

        num = numerical_gradient(f, inputs[k].copy(), dh_next)
        assert grads[k].shape == inputs[k].shape, name
        assert rel_error(grads[k], num) < TOL, name


def test_rnn_layer_is_the_step_function_repeated_and_bptt_is_the_step_backward_repeated():
    layer, rng = _layer(RNN, seed=3), np.random.default_rng(3)
    x, h0 = rng.standard_normal((2, 4, D)), rng.standard_normal((2, H))
    dout = rng.standard_normal((2, 4, H))
    out = layer.forward(x, h0)
    dx = layer.backward(dout)
    Wx, Wh, b = (layer.params[k] for k in ("Wx", "Wh", "b"))
    first, _ = rnn_step_forward(x[:, 0], h0, Wx, Wh, b)
    np.testing.assert_allclose(out[:, 0], first, rtol=1e-12)

    h, caches = h0, []
    for t in range(4):
        h, cache = rnn_step_forward(x[:, t], h, Wx, Wh, b)
        caches.append(cache)
        np.testing.assert_allclose(out[:, t], h, rtol=1e-12)
    dh, totals = np.zeros((2, H)), {"Wx": 0, "Wh": 0, "b": 0}
    for t in reversed(range(4)):
        dx_t, dh, dWx, dWh, db = rnn_step_backward(dout[:, t] + dh, caches[t])
        np.testing.assert_allclose(dx[:, t], dx_t, rtol=1e-10)
        for key, g in zip(("Wx", "Wh", "b"), (dWx, dWh, db)):
            totals[key] = totals[key] + g
    np.testing.assert_allclose(layer.dh0, dh, rtol=1e-10)
    for key, total in totals.items():
        np.testing.assert_allclose(layer.grads[key], total, rtol=1e-10, atol=1e-12)


def test_step_functions_reject_mismatched_shapes():
    x_t, h_prev, Wx, Wh, b = _step_inputs()
    with pytest.raises(ValueError, match=r"rnn_step_forward: expected x_t of shape \(N, 3\)"):
        rnn_step_forward(x_t.T, h_prev, Wx, Wh, b)
    with pytest.raises(ValueError, match=r"expected h_prev of shape \(2, 5\), got \(5, 2\)"):
        rnn_step_forward(x_t, h_prev.T, Wx, Wh, b)
    _, cache = rnn_step_forward(x_t, h_prev, Wx, Wh, b)
    with pytest.raises(ValueError, match=r"expected dh_next of shape \(2, 5\), got \(5,\)"):
        rnn_step_backward(np.ones(5), cache)


# -- states, shapes, dtypes, initialisation ----------------------------------------------------
@pytest.mark.parametrize("cls", RECURRENT)
def test_last_state_continues_a_sequence(cls):
    layer, x = _layer(cls), np.random.default_rng(0).standard_normal((2, 5, D))
    whole = layer(x)
    np.testing.assert_array_equal(layer.h_n, whole[:, -1])
    first = layer(x[:, :2])
    carried = (layer.h_n, layer.c_n) if cls is LSTM else (layer.h_n,)
    rest = layer(x[:, 2:], *carried)
    np.testing.assert_allclose(np.concatenate([first, rest], axis=1), whole, rtol=1e-12)


@pytest.mark.parametrize("cls", RECURRENT)
def test_parameter_shapes_and_pytorch_style_initialisation(cls):
    layer = cls(16, 64, rng=np.random.default_rng(0))
    k = {RNN: 1, LSTM: 4, GRU: 3}[cls]
    shapes = {name: p.shape for name, p in layer.params.items()}
    assert shapes == {"Wx": (16, k * 64), "Wh": (64, k * 64), "b": (k * 64,)}
    for name in ("Wx", "Wh"):
        w = layer.params[name]
        assert np.abs(w).max() <= 1 / 8 and np.abs(w).max() > 0.12 and abs(w.mean()) < 0.01
    expected_b = np.zeros(k * 64)
    if cls is LSTM:
        expected_b[64:128] = 1.0  # forget gate
    np.testing.assert_array_equal(layer.params["b"], expected_b)
    same = cls(16, 64, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(same.params["Wh"], layer.params["Wh"])
    assert repr(layer) == f"{cls.__name__}(16, 64)"


def test_lstm_forget_bias_can_start_at_zero():
    assert not LSTM(2, 3, rng=np.random.default_rng(0), forget_bias=0.0).params["b"].any()


@pytest.mark.parametrize("cls", RECURRENT)
def test_float32_layers_stay_float32(cls):
    layer = cls(D, H, rng=np.random.default_rng(0), dtype=np.float32)
    out = layer(np.ones((2, 3, D), dtype=np.float32))
    dx = layer.backward(np.ones_like(out))
    assert out.dtype == dx.dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer.grads.values())


@pytest.mark.parametrize("cls", RECURRENT)
def test_recurrent_layers_reject_bad_shapes_naming_layer_and_shapes(cls):
    layer = _layer(cls)
    name = cls.__name__
    with pytest.raises(ValueError, match=rf"{name}\(3, 5\): expected input of shape \(N, T, 3\) "
                                         r"\(batch, time, features\), got \(2, 3\)"):
        layer(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"expected input of shape \(N, T, 3\).*got \(2, 4, 6\)"):
        layer(np.zeros((2, 4, 6)))
    with pytest.raises(ValueError, match=r"expected at least one time step, got shape \(2, 0, 3\)"):
        layer(np.zeros((2, 0, 3)))
    for state in STATES[cls]:
        with pytest.raises(ValueError, match=rf"expected {state} of shape \(2, 5\) "
                                             r"\(N, hidden_size\), got \(5,\)"):
            layer(np.zeros((2, 4, 3)), **{state: np.zeros(5)})
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        cls(D, H, rng=np.random.default_rng(0)).backward(np.zeros((2, 4, 5)))
    layer(np.zeros((2, 4, 3)))
    with pytest.raises(ValueError, match=rf"{name}\(3, 5\)\.backward: expected dout of shape "
                                         r"\(2, 4, 5\).*got \(2, 5\)"):
        layer.backward(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="input_size and hidden_size must be >= 1"):
        cls(3, 0)


# -- embeddings and per-time-step layers -------------------------------------------------------
def test_embedding_looks_up_rows_and_accumulates_gradients_of_repeated_ids():
    emb = Embedding(6, 4, rng=np.random.default_rng(0))
    ids = np.array([[1, 1, 3], [1, 0, 3]])
    out = emb(ids)
    np.testing.assert_array_equal(out, emb.params["W"][ids])
    dout = np.random.default_rng(1).standard_normal((2, 3, 4))
    assert emb.backward(dout) is None  # ids are integers: no gradient to return
    dW = emb.grads["W"]
    np.testing.assert_allclose(dW[1], dout[0, 0] + dout[0, 1] + dout[1, 0])  # id 1, three times
    np.testing.assert_allclose(dW[3], dout[0, 2] + dout[1, 2])
    assert not dW[[2, 4, 5]].any()  # ids never looked up get no gradient
    num = numerical_gradient(lambda _w: emb.forward(ids), emb.params["W"], dout)
    assert rel_error(dW, num) < TOL


def test_embedding_rejects_bad_ids_and_dout():
    emb = Embedding(5, 2, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"Embedding\(5, 2\): id 5 is out of range; valid ids "
                                         r"are 0\.\.4"):
        emb(np.array([[0, 5]]))
    with pytest.raises(ValueError, match="id -1 is out of range"):
        emb(np.array([-1]))
    with pytest.raises(TypeError, match=r"Embedding\(5, 2\): expected integer ids, "
                                        r"got dtype float64"):
        emb(np.array([[0.0, 1.0]]))
    emb(np.array([[0, 1, 2]]))
    with pytest.raises(ValueError, match=r"expected dout of shape \(1, 3, 2\)"):
        emb.backward(np.zeros((1, 3)))


def test_temporal_linear_is_a_linear_layer_at_every_step():
    rng = np.random.default_rng(0)
    layer, x = TemporalLinear(H, 2, rng=rng), rng.standard_normal((3, 4, H))
    out = layer(x)
    assert out.shape == (3, 4, 2) and repr(layer) == "TemporalLinear(5, 2)"
    for t in range(4):
        np.testing.assert_allclose(out[:, t], x[:, t] @ layer.params["W"] + layer.params["b"])
    report = check_layer(layer, x)
    assert report.max_rel_error < TOL, str(report)
    assert {e.name for e in report.entries} == {"dx", "dW", "db"}
    with pytest.raises(ValueError, match=r"TemporalLinear\(5, 2\): expected input of shape "
                                         r"\(N, T, 5\), got \(3, 5\)"):
        layer(np.zeros((3, 5)))
    layer(x)
    with pytest.raises(ValueError, match=r"expected dout of shape \(3, 4, 2\)"):
        layer.backward(np.zeros((12, 2)))


def test_time_distributed_wraps_any_layer_and_shares_its_parameters():
    linear = Linear(3, 2, rng=np.random.default_rng(0))
    wrapped = TimeDistributed(linear)
    assert wrapped.params["W"] is linear.params["W"]
    assert check_layer(TimeDistributed(Tanh()), np.ones((2, 3, 4)) * 0.3).ok
    with pytest.raises(ValueError, match=r"expected input of shape \(N, T, \.\.\.\)"):
        wrapped(np.zeros((2, 3)))
    with pytest.raises(TypeError, match="expected a Layer"):
        TimeDistributed(np.tanh)


def test_embedding_rnn_readout_model_trains_through_sequential():
    rng = np.random.default_rng(0)
    model = Sequential(Embedding(7, 3, rng=rng), RNN(3, 4, rng=rng), TemporalLinear(4, 7, rng=rng))
    ids = rng.integers(0, 7, size=(2, 5))
    targets, mask = rng.integers(0, 7, size=(2, 5)), rng.random((2, 5)) > 0.3

    def loss_of(_param=None):
        return sequence_cross_entropy(model.forward(ids), targets, mask)[0]

    _, dlogits = sequence_cross_entropy(model.forward(ids), targets, mask)
    assert model.backward(dlogits) is None
    assert list(model.params) == ["0.W", "1.Wx", "1.Wh", "1.b", "2.W", "2.b"]
    for name, param, grad in model.named_parameters():
        assert rel_error(grad, numerical_gradient(loss_of, param)) < TOL, name


# -- sequence loss ------------------------------------------------------------------------------
def _logits_targets(seed=0, n=2, t=3, v=4):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, t, v)) * 2, rng.integers(0, v, size=(n, t))


def test_sequence_cross_entropy_value_and_gradient():
    logits, targets = _logits_targets()
    loss, dlogits = sequence_cross_entropy(logits, targets)
    log_probs = logits - np.log(np.exp(logits).sum(axis=2, keepdims=True))
    expected = -np.mean([log_probs[n, t, targets[n, t]] for n in range(2) for t in range(3)])
    assert loss == pytest.approx(expected, rel=1e-12)
    num = numerical_gradient(lambda z: sequence_cross_entropy(z, targets)[0], logits)
    assert dlogits.shape == logits.shape and rel_error(dlogits, num) < TOL


def test_masked_steps_are_left_out_of_loss_and_gradient():
    logits, targets = _logits_targets(1)
    mask = np.array([[1, 1, 0], [1, 0, 0]])
    targets[mask == 0] = -1  # padding may hold any id: it is never looked at
    loss, dlogits = sequence_cross_entropy(logits, targets, mask)
    keep = mask.astype(bool)
    log_probs = logits - np.log(np.exp(logits).sum(axis=2, keepdims=True))
    expected = -np.mean([log_probs[n, t, targets[n, t]] for n, t in zip(*np.nonzero(keep))])
    assert loss == pytest.approx(expected, rel=1e-12)  # mean over the 3 real steps, not all 6
    assert not dlogits[~keep].any()
    num = numerical_gradient(lambda z: sequence_cross_entropy(z, targets, keep)[0], logits)
    assert rel_error(dlogits, num) < TOL


def test_sequence_cross_entropy_rejects_bad_input():
    logits, targets = _logits_targets()
    with pytest.raises(ValueError, match=r"expected logits of shape \(N, T, V\), got \(2, 4\)"):
        sequence_cross_entropy(logits[:, 0], targets)
    with pytest.raises(ValueError, match=r"expected targets of shape \(2, 3\).*got \(3, 2\)"):
        sequence_cross_entropy(logits, targets.T)
    with pytest.raises(TypeError, match="targets must be integer class indices"):
        sequence_cross_entropy(logits, targets.astype(float))
    with pytest.raises(ValueError, match="the mask selects no time step"):
        sequence_cross_entropy(logits, targets, np.zeros((2, 3), dtype=bool))
    with pytest.raises(ValueError, match="mask must hold booleans or 0/1 values"):
        sequence_cross_entropy(logits, targets, np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match=r"expected mask of shape \(2, 3\), got \(3,\)"):
        sequence_cross_entropy(logits, targets, np.ones(3))
    targets[0, 0] = 9
    with pytest.raises(ValueError, match="label 9 is outside the 4 classes"):
        sequence_cross_entropy(logits, targets)


# -- gradient clipping ---------------------------------------------------------------------------
def _model_with_grads(seed=0):
    rng = np.random.default_rng(seed)
    model = Sequential(RNN(D, H, rng=rng), TemporalLinear(H, 2, rng=rng))
    out = model(rng.standard_normal((2, 4, D)))
    model.backward(rng.standard_normal(out.shape))
    return model


def _global_norm(model):
    return np.sqrt(sum(np.sum(g**2) for _, _, g in model.named_parameters()))


def test_clip_grad_norm_scales_large_gradients_to_max_norm_in_place():
    model = _model_with_grads()
    before = {name: g.copy() for name, _, g in model.named_parameters()}
    norm = _global_norm(model)
    returned = clip_grad_norm(model, norm / 4)
    assert returned == pytest.approx(norm, rel=1e-12)  # the norm before clipping
    assert _global_norm(model) == pytest.approx(norm / 4, rel=1e-12)
    for name, _, grad in model.named_parameters():  # same direction, a quarter of the length
        np.testing.assert_allclose(grad, before[name] / 4, rtol=1e-12)
    assert model[0].grads["Wh"] is dict(model.grads)["0.Wh"]  # the layers' own arrays changed


def test_clip_grad_norm_leaves_small_gradients_untouched():
    model = _model_with_grads(1)
    before = {name: g.copy() for name, _, g in model.named_parameters()}
    norm = _global_norm(model)
    assert clip_grad_norm(model, norm * 2) == pytest.approx(norm, rel=1e-12)
    for name, _, grad in model.named_parameters():
        np.testing.assert_array_equal(grad, before[name])


def test_clip_grad_norm_rejects_bad_input():
    model = _model_with_grads()
    with pytest.raises(ValueError, match="max_norm must be a positive number, got 0.0"):
        clip_grad_norm(model, 0)
    with pytest.raises(TypeError, match="max_norm must be a number"):
        clip_grad_norm(model, "1")
    model[0].grads["b"][0] = np.nan
    with pytest.raises(ValueError, match=r"gradient of '0\.b' contains NaN or inf"):
        clip_grad_norm(model, 1.0)
    with pytest.raises(RuntimeError, match=r"parameter 'Wx' has no gradient"):
        clip_grad_norm(RNN(D, H, rng=np.random.default_rng(0)), 1.0)


# -- agreement with PyTorch (skipped when torch is not installed) -------------------------------
def _torch_layer(torch, cls, layer):
    """The torch module with our weights: its matrices are ours transposed, b_hh zero."""
    module = {RNN: torch.nn.RNN, LSTM: torch.nn.LSTM, GRU: torch.nn.GRU}[cls](
        D, H, batch_first=True).double()
    with torch.no_grad():
        module.weight_ih_l0.copy_(torch.from_numpy(layer.params["Wx"].T.copy()))
        module.weight_hh_l0.copy_(torch.from_numpy(layer.params["Wh"].T.copy()))
        module.bias_ih_l0.copy_(torch.from_numpy(layer.params["b"]))
        module.bias_hh_l0.zero_()
    return module


@pytest.mark.parametrize("cls", RECURRENT)
def test_forward_and_backward_agree_with_pytorch(cls):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(5)
    layer = _layer(cls, seed=5)
    x, dout = rng.standard_normal((3, 4, D)), rng.standard_normal((3, 4, H))
    states = {name: rng.standard_normal((3, H)) for name in STATES[cls]}
    out = layer.forward(x, **states)
    dx = layer.backward(dout)

    module = _torch_layer(torch, cls, layer)
    tx = torch.tensor(x, requires_grad=True)
    tstates = {k: torch.tensor(v[None], requires_grad=True) for k, v in states.items()}
    tout, _ = module(tx, (tstates["h0"], tstates["c0"]) if cls is LSTM else tstates["h0"])
    tout.backward(torch.from_numpy(dout))
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    for ours, theirs in (("Wx", "weight_ih_l0"), ("Wh", "weight_hh_l0"), ("b", "bias_ih_l0")):
        grad = getattr(module, theirs).grad.numpy()
        np.testing.assert_allclose(layer.grads[ours], grad.T, rtol=1e-10, atol=1e-12)
    for name, tstate in tstates.items():
        np.testing.assert_allclose(getattr(layer, "d" + name), tstate.grad.numpy()[0],
                                   rtol=1e-10, atol=1e-12)


def test_sequence_cross_entropy_and_clipping_agree_with_pytorch():
    torch = pytest.importorskip("torch")
    logits, targets = _logits_targets(2, n=3, t=4, v=5)
    targets[2, 2:] = -100  # PyTorch's default ignore_index marks padding
    loss, dlogits = sequence_cross_entropy(logits, targets, targets != -100)
    tlogits = torch.tensor(logits, requires_grad=True)
    tloss = torch.nn.functional.cross_entropy(tlogits.reshape(-1, 5),
                                              torch.from_numpy(targets).reshape(-1))
    tloss.backward()
    assert loss == pytest.approx(tloss.item(), rel=1e-12)
    np.testing.assert_allclose(dlogits, tlogits.grad.numpy(), rtol=1e-10, atol=1e-14)

    model = _model_with_grads()
    params = [torch.nn.Parameter(torch.from_numpy(p.copy()))
              for _, p, _ in model.named_parameters()]
    for tp, (_, _, g) in zip(params, model.named_parameters()):
        tp.grad = torch.from_numpy(g.copy())
    expected = torch.nn.utils.clip_grad_norm_(params, 0.5).item()
    assert clip_grad_norm(model, 0.5) == pytest.approx(expected, rel=1e-12)
    for tp, (_, _, g) in zip(params, model.named_parameters()):
        np.testing.assert_allclose(g, tp.grad.numpy(), rtol=1e-5)  # PyTorch adds 1e-6 to the norm


def test_the_whole_recurrent_toolbox_imports_from_backprop_rnn():
    from backprop import gated, sequence
    from backprop.rnn import GRU, LSTM, Embedding, TemporalLinear, clip_grad_norm

    assert LSTM is gated.LSTM and GRU is gated.GRU
    assert Embedding is sequence.Embedding and TemporalLinear is sequence.TemporalLinear
    assert clip_grad_norm is sequence.clip_grad_norm


def test_recurrent_layers_share_one_base_in_their_own_module():
    from backprop.recurrent import RecurrentLayer

    assert all(issubclass(cls, RecurrentLayer) for cls in RECURRENT)


# -- dtype: a layer computes in its parameters' dtype, mismatched floats are refused ---------------
@pytest.mark.parametrize("cls", RECURRENT)
@pytest.mark.parametrize("layer_dtype,other", [(np.float64, np.float32), (np.float32, np.float64)])
def test_recurrent_layers_refuse_input_states_and_dout_of_another_dtype(cls, layer_dtype, other):
    layer = cls(D, H, rng=np.random.default_rng(0), dtype=layer_dtype)
    name = np.dtype(other).name
    with pytest.raises(TypeError, match=rf"{cls.__name__}\(3, 5\): input has dtype {name}"):
        layer(np.ones((2, 3, D), dtype=other))
    for state in STATES[cls]:
        given = {state: np.zeros((2, H), dtype=other)}
        with pytest.raises(TypeError, match=rf"{state} has dtype {name}"):
            layer(np.ones((2, 3, D), dtype=layer_dtype), **given)
    out = layer(np.ones((2, 3, D), dtype=np.int64))  # integers are converted to the layer's dtype
    assert out.dtype == layer_dtype
    with pytest.raises(TypeError, match=rf"dout has dtype {name}"):
        layer.backward(np.ones(out.shape, dtype=other))


def test_embedding_output_and_gradient_have_the_tables_dtype():
    emb = Embedding(5, 2, rng=np.random.default_rng(0), dtype=np.float32)
    out = emb(np.array([[0, 4, 4]]))
    assert out.dtype == np.float32
    with pytest.raises(TypeError, match=r"Embedding\(5, 2\).backward: dout has dtype float64"):
        emb.backward(np.ones(out.shape))
    emb.backward(np.ones(out.shape, dtype=np.float32))
    assert emb.grads["W"].dtype == np.float32


def test_temporal_linear_converts_integers_and_refuses_another_float_dtype():
    layer = TemporalLinear(3, 2, rng=np.random.default_rng(0), dtype=np.float32)
    assert layer(np.ones((2, 4, 3), dtype=np.int64)).dtype == np.float32
    with pytest.raises(TypeError, match=r"Linear\(3, 2\): input has dtype float64"):
        layer(np.ones((2, 4, 3)))


def test_time_distributed_is_a_container_whose_writes_reach_the_wrapped_layer():
    linear = Linear(3, 2, rng=np.random.default_rng(0))
    wrapped = TimeDistributed(linear)
    assert list(wrapped.children()) == [linear] and list(wrapped.params) == ["W", "b"]
    wrapped.params["b"] = np.ones(2)
    assert linear.params["b"] is wrapped.params["b"]
    wrapped.eval()
    assert linear.training is False
    wrapped.zero_grad()
    assert sorted(linear.grads) == ["W", "b"]
    with pytest.raises(ValueError, match="a wrapper has no params of its own"):
        wrapped.params = {"W": np.zeros((3, 2))}


def test_a_layer_twice_in_a_language_model_is_refused():
    rng = np.random.default_rng(0)
    readout = TemporalLinear(4, 4, rng=rng)
    with pytest.raises(LayerReuseError, match=r"TemporalLinear\(4, 4\) would appear twice"):
        Sequential(Embedding(4, 4, rng=rng), readout, RNN(4, 4, rng=rng), readout)
