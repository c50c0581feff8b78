"""Normalization layers and the residual block: every backward against finite differences in
float64 in training and evaluation mode, the invariants of the compact backward, the running
averages, float32, bad input, and agreement with PyTorch when it is installed."""
import copy

import numpy as np
import pytest

from backprop.gradcheck import check_layer, rel_error
from backprop.landscape import linear_interpolation
from backprop.layers import Layer, LayerReuseError, Linear, ReLU, Sequential, Tanh
from backprop.losses import mse_loss
from backprop.normalization import BatchNorm1d, BatchNorm2d, LayerNorm, RMSNorm
from backprop.residual import Residual
from backprop.train import evaluate

TOL = 1e-7


def _randomize(layer, seed):
    """Random weights and biases, so that no gradient can hide behind ones and zeros."""
    rng = np.random.default_rng(seed)
    for param in layer.params.values():
        param[...] = rng.standard_normal(param.shape)
    return layer


def _warm_up(layer, shape, seed, steps=3):
    """A few training batches, so that the running statistics are not their initial 0 and 1."""
    rng = np.random.default_rng(seed)
    layer.train()
    norms = [node for _, node in layer.named_layers() if node.own_buffers()]
    for _ in range(steps if norms else 0):
        layer.forward((rng.standard_normal(shape) * 2 + 1).astype(norms[0].dtype))
    return layer


def _check(layer, x, names):
    report = check_layer(layer, x, seed=x.size)
    assert report.max_rel_error < TOL, str(report)
    assert {e.name for e in report.entries} == {"dx", *names}
    assert all(abs(e.analytic) > 1e-6 for e in report.entries), str(report)  # nothing vacuous


# -- gradients against finite differences ------------------------------------------------------
# (layer factory, input shape): batch size 1 where it is defined, odd sizes, extra axes
TRAINING_CASES = [
    (lambda: BatchNorm1d(3), (3, 3)),  # (two examples: out = ±1 whatever x, dx ~ eps)
    (lambda: BatchNorm1d(5), (7, 5)),
    (lambda: BatchNorm1d(3), (1, 3, 4)),  # one example, 4 positions: 4 values per channel
    (lambda: BatchNorm1d(2, momentum=None), (3, 2, 5)),
    (lambda: BatchNorm2d(3), (2, 3, 4, 5)),
    (lambda: BatchNorm2d(2), (1, 2, 3, 3)),
    (lambda: BatchNorm2d(1, eps=1e-3), (5, 1, 1, 2)),
    (lambda: LayerNorm(5), (1, 5)),
    (lambda: LayerNorm(5), (4, 5)),
    (lambda: LayerNorm(5), (2, 3, 5)),
    (lambda: LayerNorm((3, 5)), (2, 3, 5)),
    (lambda: LayerNorm((3, 5), eps=1e-2), (3, 5)),  # no batch axis at all, as PyTorch allows
    (lambda: RMSNorm(5), (1, 5)),
    (lambda: RMSNorm(5), (4, 5)),
    (lambda: RMSNorm((2, 3), eps=1e-3), (3, 2, 3)),
]
PARAM_NAMES = {"dweight", "dbias"}


@pytest.mark.parametrize("make,shape", TRAINING_CASES)
def test_training_mode_gradients_match_finite_differences(make, shape):
    layer = _randomize(make(), seed=len(shape))
    x = np.random.default_rng(sum(shape)).standard_normal(shape) * 3 + 1
    names = PARAM_NAMES if not isinstance(layer, RMSNorm) else {"dweight"}
    _check(layer, x, names)


@pytest.mark.parametrize("make,shape", TRAINING_CASES + [
    (lambda: BatchNorm1d(3), (1, 3)),  # batch size 1 is fine in evaluation mode
    (lambda: BatchNorm2d(2), (1, 2, 1, 1)),
])
def test_evaluation_mode_gradients_match_finite_differences(make, shape):
    layer = _warm_up(_randomize(make(), seed=len(shape)), (4, *shape[1:]), seed=1).eval()
    x = np.random.default_rng(sum(shape)).standard_normal(shape) * 3 + 1
    names = PARAM_NAMES if not isinstance(layer, RMSNorm) else {"dweight"}
    _check(layer, x, names)


@pytest.mark.parametrize("make,shape,names", [
    (lambda: BatchNorm1d(4, affine=False), (6, 4), set()),
    (lambda: BatchNorm2d(2, track_running_stats=False), (3, 2, 2, 3), PARAM_NAMES),
    (lambda: LayerNorm(4, elementwise_affine=False), (3, 4), set()),
    (lambda: LayerNorm(4, bias=False), (3, 4), {"dweight"}),
    (lambda: RMSNorm(4, elementwise_affine=False), (3, 4), set()),
])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_variants_without_parameters_or_running_stats(make, shape, names, mode):
    layer = getattr(_randomize(make(), seed=3), mode)()
    assert {f"d{name}" for name in layer.params} == names
    _check(layer, np.random.default_rng(4).standard_normal(shape) + 2, names)


def _block(rng, d=4, hidden=6, last=None):
    layers = [Linear(d, hidden, rng=rng), ReLU(), Linear(hidden, d, rng=rng)]
    return Sequential(*layers, *([last] if last else []))


@pytest.mark.parametrize("norm,pre_norm", [
    (None, True), (LayerNorm, True), (LayerNorm, False), (RMSNorm, True), (BatchNorm1d, True),
    # post-norm batch norm removes any constant the block adds, so the block's last bias would
    # get an exact zero gradient that proves nothing: end the block with a Tanh instead
    (BatchNorm1d, False),
])
@pytest.mark.parametrize("n", [1, 5])
def test_residual_gradients_match_finite_differences(norm, pre_norm, n):
    rng = np.random.default_rng(n)
    if norm is BatchNorm1d and n == 1:
        n = 3  # batch norm needs two examples in training mode, and with two its output is ±1
    block = _block(rng, last=Tanh() if norm is BatchNorm1d and not pre_norm else None)
    layer = Residual(block, norm=None if norm is None else _randomize(norm(4), 5),
                     pre_norm=pre_norm)
    names = {f"d{name}" for name in layer.params}
    assert {"dblock.0.W", "dblock.2.b"} <= names
    assert norm is None or "dnorm.weight" in names
    _check(layer, rng.standard_normal((n, 4)), names)
    _check(_warm_up(layer, (8, 4), seed=2).eval(), rng.standard_normal((n, 4)), names)


def test_residual_backward_is_dout_plus_the_blocks_backward():
    rng = np.random.default_rng(0)
    layer = Residual(_block(rng), norm=LayerNorm(4))
    x, dout = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    layer.forward(x)
    dx = layer.backward(dout)
    block, norm = copy.deepcopy(layer.block), copy.deepcopy(layer.norm)
    block.forward(norm.forward(x))
    np.testing.assert_allclose(dx, dout + norm.backward(block.backward(dout)), rtol=1e-14)


# -- invariants ---------------------------------------------------------------------------------
@pytest.mark.parametrize("layer,shape,axes", [
    (BatchNorm1d(4, affine=False), (6, 4), (0,)),
    (BatchNorm1d(3, affine=False), (2, 3, 5), (0, 2)),
    (BatchNorm2d(2, affine=False), (3, 2, 4, 3), (0, 2, 3)),
    (LayerNorm(5, elementwise_affine=False), (4, 5), (1,)),
    (LayerNorm((2, 3), elementwise_affine=False), (4, 2, 3), (1, 2)),
])
def test_training_output_is_standardized_and_dx_is_orthogonal_to_shift_and_scale(layer, shape,
                                                                                  axes):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape) * 5 + 3
    out = layer.forward(x)
    np.testing.assert_allclose(out.mean(axis=axes), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=axes), 1, rtol=1e-4)  # var / (var + eps)
    dx = layer.backward(rng.standard_normal(shape))
    # the output ignores a shift of x along the normalized axes, and (up to eps) a rescaling
    np.testing.assert_allclose(dx.sum(axis=axes), 0, atol=1e-12)
    np.testing.assert_allclose((dx * out).sum(axis=axes), 0, atol=1e-5)


def test_rms_norm_output_has_unit_root_mean_square():
    x = np.random.default_rng(0).standard_normal((4, 7)) * 3
    out = RMSNorm(7, elementwise_affine=False).forward(x)
    np.testing.assert_allclose(np.sqrt((out**2).mean(axis=1)), 1, rtol=1e-12)


def test_a_bias_just_before_batch_norm_gets_no_gradient():
    rng = np.random.default_rng(0)
    model = Sequential(Linear(3, 4, rng=rng), BatchNorm1d(4), ReLU(), Linear(4, 2, rng=rng))
    model.forward(rng.standard_normal((8, 3)))
    model.backward(rng.standard_normal((8, 2)))
    assert np.abs(model.grads["0.b"]).max() < 1e-14
    assert np.abs(model.grads["0.W"]).max() > 1e-2


def test_batch_statistics_couple_the_examples_and_evaluation_mode_uncouples_them():
    rng = np.random.default_rng(0)
    layer = _randomize(BatchNorm1d(3), 1)
    x = rng.standard_normal((5, 3))
    other = x.copy()
    other[1:] += 10  # the same first example in another batch
    assert not np.allclose(layer.forward(x)[0], layer.forward(other)[0])
    layer.eval()
    np.testing.assert_array_equal(layer.forward(x)[0], layer.forward(other)[0])
    np.testing.assert_array_equal(layer.forward(x[:1])[0], layer.forward(x)[0])


@pytest.mark.parametrize("momentum", [0.1, 0.5, None])
def test_running_averages_follow_the_formula(momentum):
    rng = np.random.default_rng(0)
    layer = BatchNorm2d(3, momentum=momentum)
    mean, var = np.zeros(3), np.ones(3)
    for step in range(1, 6):
        x = rng.standard_normal((4, 3, 2, 5)) * step + step
        layer.forward(x)
        factor = 1 / step if momentum is None else momentum
        unbiased = x.var(axis=(0, 2, 3), ddof=1)  # 40 values per channel: M / (M - 1)
        mean = (1 - factor) * mean + factor * x.mean(axis=(0, 2, 3))
        var = (1 - factor) * var + factor * unbiased
    np.testing.assert_allclose(layer.running_mean, mean, rtol=1e-13)
    np.testing.assert_allclose(layer.running_var, var, rtol=1e-13)
    assert layer.num_batches_tracked == 5
    layer.eval().forward(x)
    assert layer.num_batches_tracked == 5  # evaluation leaves them alone
    if momentum is None:  # a cumulative average: the mean of the five batches' means
        assert np.isclose(mean[0], 3.0, atol=1.0)


def test_evaluation_normalizes_with_the_running_statistics():
    layer = _warm_up(_randomize(BatchNorm1d(3), 2), (6, 3), seed=3).eval()
    x = np.random.default_rng(4).standard_normal((2, 3))
    expected = ((x - layer.running_mean) / np.sqrt(layer.running_var + layer.eps)
                * layer.params["weight"] + layer.params["bias"])
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-13)


def test_without_running_stats_batch_statistics_are_used_in_both_modes():
    layer = BatchNorm1d(3, track_running_stats=False)
    assert layer.running_mean is None and not dict(layer.named_buffers())
    x = np.random.default_rng(0).standard_normal((4, 3)) + 5
    np.testing.assert_array_equal(layer.forward(x), layer.eval().forward(x))


def test_containers_switch_modes_and_evaluate_uses_the_running_statistics():
    rng = np.random.default_rng(0)
    model = Sequential(Linear(3, 4, rng=rng),
                       Residual(_block(rng), norm=BatchNorm1d(4)), Linear(4, 1, rng=rng))
    bn = model[1].norm
    model.forward(rng.standard_normal((8, 3)))
    assert bn.num_batches_tracked == 1
    assert model.eval() is model and bn.training is False
    assert model.train() is model and bn.training is True
    X, y = rng.standard_normal((10, 3)), rng.standard_normal((10, 1))
    evaluate(model, mse_loss, X, y, batch_size=1)  # batch size 1 works: evaluation mode
    assert bn.num_batches_tracked == 1 and bn.training is True


def test_state_dict_holds_the_running_statistics_and_restores_them():
    rng = np.random.default_rng(0)
    model = Sequential(Linear(3, 4, rng=rng), BatchNorm1d(4))
    model.forward(rng.standard_normal((6, 3)))
    saved = model.state_dict()
    assert list(saved) == ["0.W", "0.b", "1.weight", "1.bias", "1.running_mean",
                           "1.running_var", "1.num_batches_tracked"]
    assert list(model.params) == ["0.W", "0.b", "1.weight", "1.bias"]
    model.forward(rng.standard_normal((6, 3)) + 4)
    model.load_state_dict(saved)
    np.testing.assert_array_equal(model[1].running_mean, saved["1.running_mean"])
    assert model[1].num_batches_tracked == 1
    del saved["1.running_var"]
    with pytest.raises(KeyError, match="no entry for buffer '1.running_var'"):
        model.load_state_dict(saved)


def test_a_line_through_parameter_space_accepts_state_dicts_with_buffers():
    rng = np.random.default_rng(0)
    model = Sequential(Linear(3, 4, rng=rng), BatchNorm1d(4), Linear(4, 1, rng=rng))
    X, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 1))
    model.forward(X)
    a = model.state_dict()
    b = {name: value + 0.1 if name in model.params else value for name, value in a.items()}
    losses = linear_interpolation(model, a, b, mse_loss, X, y, [0.0, 1.0])
    assert losses.shape == (2,) and losses[0] != losses[1]


@pytest.mark.parametrize("make,shape", [(lambda: BatchNorm1d(4, dtype=np.float32), (5, 4)),
                                        (lambda: BatchNorm2d(2, dtype=np.float32), (3, 2, 3, 3)),
                                        (lambda: LayerNorm(4, dtype=np.float32), (5, 4)),
                                        (lambda: RMSNorm(4, dtype=np.float32), (5, 4))])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_float32_layers_compute_in_float32_close_to_float64(make, shape, mode):
    rng = np.random.default_rng(0)
    layer32 = getattr(_warm_up(_randomize(make(), 1), shape, seed=2), mode)()
    layer64 = copy.deepcopy(layer32)
    for node in (layer64,):
        node.params = {k: v.astype(np.float64) for k, v in node.params.items()}
        node._buffers = {k: v.astype(np.float64) if v.dtype.kind == "f" else v
                         for k, v in node.own_buffers().items()}
    x, dout = rng.standard_normal(shape), rng.standard_normal(shape)
    out32 = layer32.forward(x.astype(np.float32))
    dx32 = layer32.backward(dout.astype(np.float32))
    assert out32.dtype == dx32.dtype == np.float32
    assert all(g.dtype == np.float32 for g in layer32.grads.values())
    assert all(b.dtype == np.float32 for b in layer32.own_buffers().values() if b.ndim)
    assert rel_error(out32, layer64.forward(x)) < 1e-6
    assert rel_error(dx32, layer64.backward(dout)) < 1e-5
    with pytest.raises(TypeError,
                       match="has dtype float64 but the layer's parameters are float32"):
        layer32.forward(x)


@pytest.mark.parametrize("make,shape", [(lambda: BatchNorm2d(3), (4, 3, 2, 5)),
                                        (lambda: BatchNorm1d(3), (4, 3, 5)),
                                        (lambda: LayerNorm((2, 5)), (4, 3, 2, 5))])
def test_any_memory_layout_gives_the_same_results(make, shape):
    """Convolutions return batch-last views (backprop.conv); the layers take any layout."""
    rng = np.random.default_rng(0)
    layer = _randomize(make(), 1)
    x, dout = rng.standard_normal(shape), rng.standard_normal(shape)
    out, dx = layer.forward(x), layer.backward(dout)
    grads = {k: v.copy() for k, v in layer.grads.items()}
    order = (*range(1, len(shape)), 0)  # memory batch-last, shape unchanged
    x_view = np.ascontiguousarray(x.transpose(order)).transpose(np.argsort(order))
    dout_view = np.ascontiguousarray(dout.transpose(order)).transpose(np.argsort(order))
    assert not x_view.flags.c_contiguous
    np.testing.assert_allclose(layer.forward(x_view), out, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(layer.backward(dout_view), dx, rtol=1e-12, atol=1e-14)
    for key, grad in layer.grads.items():
        np.testing.assert_allclose(grad, grads[key], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("make", [lambda: BatchNorm1d(3, dtype=np.float32),
                                  lambda: BatchNorm1d(3, affine=False, dtype=np.float32),
                                  lambda: LayerNorm(3, dtype=np.float32)])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_check_layer_checks_float32_layers_in_float64(make, mode):
    layer = getattr(_warm_up(_randomize(make(), 0), (5, 3), seed=1), mode)()
    report = check_layer(layer, np.random.default_rng(2).standard_normal((4, 3)))
    assert report.max_rel_error < TOL, str(report)
    assert all(p.dtype == np.float32 for p in layer.params.values())  # the original is untouched


# -- errors -------------------------------------------------------------------------------------
@pytest.mark.parametrize("layer,x,message", [
    (BatchNorm1d(3), np.ones((4, 5)), r"BatchNorm1d\(3\): expected input of shape \(N, C\) or "
                                      r"\(N, C, L\) with C = 3 channels, got \(4, 5\)"),
    (BatchNorm1d(3), np.ones(3), r"\(N, C\) or \(N, C, L\).*got \(3,\)"),
    (BatchNorm2d(3), np.ones((4, 3)), r"BatchNorm2d\(3\): expected input of shape \(N, C, H, W\)"),
    (LayerNorm(4), np.ones((2, 5)), r"LayerNorm\(\(4,\)\): expected input of shape \(\.\.\., 4\)"
                                    r" \(its last 1 axis normalized\), got \(2, 5\)"),
    (LayerNorm((2, 4)), np.ones((3, 4)), r"last 2 axes normalized\), got \(3, 4\)"),
    (RMSNorm(4), np.ones((4,)), None),  # one example without a batch axis is fine
])
def test_wrong_shapes_are_named(layer, x, message):
    if message is None:
        assert layer.forward(x).shape == x.shape
        return
    with pytest.raises(ValueError, match=message):
        layer.forward(x)


@pytest.mark.parametrize("layer,shape", [(BatchNorm1d(2), (1, 2)), (BatchNorm1d(2), (1, 2, 1)),
                                         (BatchNorm2d(2), (1, 2, 1, 1)),
                                         (BatchNorm1d(2, track_running_stats=False), (1, 2))])
def test_one_value_per_channel_in_training_is_refused(layer, shape):
    with pytest.raises(ValueError, match="expected more than 1 value per channel when training"):
        layer.forward(np.ones(shape))
    if layer.track_running_stats:
        assert layer.eval().forward(np.ones(shape)).shape == shape


@pytest.mark.parametrize("layer", [BatchNorm1d(3), LayerNorm(3), RMSNorm(3),
                                   BatchNorm1d(3).eval()])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_input_is_named_and_leaves_running_stats_alone(layer, bad):
    x = np.ones((4, 3))
    x[2, 1] = bad
    with pytest.raises(ValueError, match=r"input contains NaN or inf \(first at index \(2, 1\)\)"
                                         r".*lower the learning rate"), \
            np.errstate(invalid="ignore"):  # inf - mean = inf - inf: NaN, then the error
        layer.forward(x)
    if isinstance(layer, BatchNorm1d):
        assert np.isfinite(layer.running_mean).all() and layer.num_batches_tracked == 0


@pytest.mark.parametrize("call,message", [
    (lambda: BatchNorm1d(0), "num_features .* must be an integer >= 1, got 0"),
    (lambda: BatchNorm2d(2.5), "num_features .* got 2.5"),
    (lambda: BatchNorm1d(3, momentum=1.5), r"momentum must lie in \[0, 1\]"),
    (lambda: BatchNorm1d(3, eps=-1), "eps, added to the variance, must be a number >= 0"),
    (lambda: LayerNorm(()), "normalized_shape must be an integer >= 1 or a non-empty tuple"),
    (lambda: LayerNorm((3, 0)), r"normalized_shape .* got \(3, 0\)"),
    (lambda: RMSNorm("4"), "normalized_shape .* got '4'"),
    (lambda: RMSNorm(4, eps=float("nan")), "eps"),
])
def test_bad_arguments_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_bad_dtype_and_backward_misuse_are_named():
    with pytest.raises(TypeError, match="dtype must be a float type"):
        LayerNorm(3, dtype=np.int64)
    layer = BatchNorm1d(3)
    with pytest.raises(RuntimeError, match=r"backward\(\) called before forward\(\)"):
        layer.backward(np.ones((2, 3)))
    layer.forward(np.ones((2, 3)) * [[1], [2]])
    with pytest.raises(ValueError, match=r"expected dout of shape \(2, 3\)"):
        layer.backward(np.ones((3, 3)))


def test_residual_refuses_a_block_that_changes_the_shape_and_a_reused_layer():
    rng = np.random.default_rng(0)
    layer = Residual(Linear(4, 3, rng=rng))
    with pytest.raises(ValueError, match=r"block maps input of shape \(2, 4\) to \(2, 3\); "
                                         r"x \+ block\(x\) needs the same shape"):
        layer.forward(np.ones((2, 4)))
    norm = LayerNorm(4)
    with pytest.raises(LayerReuseError, match="would appear twice"):
        Residual(Sequential(norm, Linear(4, 4, rng=rng)), norm=norm)
    with pytest.raises(TypeError, match="Residual: block must be a Layer"):
        Residual(lambda x: x)


def test_reprs_show_what_differs_from_the_defaults():
    assert repr(BatchNorm1d(4)) == "BatchNorm1d(4)"
    assert repr(BatchNorm2d(4, momentum=None, affine=False)) == \
        "BatchNorm2d(4, momentum=None, affine=False)"
    assert repr(LayerNorm((3, 4), eps=1e-6)) == "LayerNorm((3, 4), eps=1e-06)"
    assert repr(RMSNorm(8)) == "RMSNorm((8,))"
    rng = np.random.default_rng(0)
    assert repr(Residual(Linear(4, 4, rng=rng), norm=LayerNorm(4), pre_norm=False)) == \
        "Residual(Linear(4, 4), norm=LayerNorm((4,)), pre_norm=False)"
    assert isinstance(Residual(Linear(4, 4, rng=rng)), Layer)


# -- agreement with PyTorch ---------------------------------------------------------------------
TORCH_CASES = [
    ("BatchNorm1d", dict(num_features=4), (6, 4)),
    ("BatchNorm1d", dict(num_features=3, momentum=None, eps=1e-3), (2, 3, 5)),
    ("BatchNorm1d", dict(num_features=4, affine=False), (5, 4)),
    ("BatchNorm1d", dict(num_features=4, track_running_stats=False), (5, 4)),
    ("BatchNorm2d", dict(num_features=3, momentum=0.3), (4, 3, 5, 2)),
    ("LayerNorm", dict(normalized_shape=5), (4, 5)),
    ("LayerNorm", dict(normalized_shape=(3, 5), eps=1e-3), (2, 4, 3, 5)),
    ("LayerNorm", dict(normalized_shape=5, bias=False), (3, 5)),
    ("RMSNorm", dict(normalized_shape=5), (4, 5)),
    ("RMSNorm", dict(normalized_shape=(2, 5), eps=1e-4), (3, 2, 5)),
    ("RMSNorm", dict(normalized_shape=5, elementwise_affine=False), (4, 5)),
]


@pytest.mark.parametrize("name,kwargs,shape", TORCH_CASES)
def test_forward_backward_and_running_stats_equal_pytorchs(name, kwargs, shape):
    torch = pytest.importorskip("torch")
    import backprop.normalization as ours_module

    rng = np.random.default_rng(0)
    ours = _randomize(getattr(ours_module, name)(**kwargs), 1)
    theirs = getattr(torch.nn, name)(**kwargs, dtype=torch.float64)
    with torch.no_grad():
        for key, param in ours.params.items():
            getattr(theirs, key).copy_(torch.from_numpy(param))
    for mode in ["train"] * 3 + ["eval"] * 2:
        getattr(ours, mode)(), getattr(theirs, mode)()
        x, dout = rng.standard_normal(shape) * 2 + 1, rng.standard_normal(shape)
        xt = torch.tensor(x, requires_grad=True)
        out_t = theirs(xt)
        out_t.backward(torch.from_numpy(dout))
        assert rel_error(ours.forward(x), out_t.detach().numpy()) < 1e-10, mode
        assert rel_error(ours.backward(dout), xt.grad.numpy()) < 1e-10, mode
        for key, grad in ours.grads.items():
            assert rel_error(grad, getattr(theirs, key).grad.numpy()) < 1e-10, (mode, key)
            getattr(theirs, key).grad = None
        for key, buffer in ours.named_buffers():
            assert rel_error(buffer, getattr(theirs, key).numpy()) < 1e-10, (mode, key)
    assert set(ours.state_dict()) == set(theirs.state_dict())
