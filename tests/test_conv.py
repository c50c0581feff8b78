"""Convolution, pooling and flatten layers: gradients against finite differences (float64),
fast against naive, hand-computed examples, and every bad input."""
import re

import numpy as np
import pytest

from backprop.conv import AvgPool2d, Conv2d, Flatten, MaxPool2d
from backprop.conv_naive import (conv2d_backward_naive, conv2d_forward_naive,
                                 max_pool_backward_naive, max_pool_forward_naive)
from backprop.gradcheck import check_layer
from backprop.layers import Linear, ReLU, Sequential

TOL = 1e-7

# (N, C, F, H, W, kernel_size, stride, padding): batch size 1, odd sizes (5x7), stride 1 and 2,
# padding 0 and 1, non-square kernels, a 1x1 kernel, per-axis stride and padding, C and F > 1.
CONV_CASES = [
    (1, 1, 1, 5, 7, 3, 1, 0),
    (2, 2, 3, 5, 7, 3, 1, 1),
    (2, 3, 2, 5, 7, 3, 2, 0),
    (2, 2, 3, 6, 5, (2, 3), 2, 1),
    (1, 3, 2, 4, 4, 1, 1, 0),
    (2, 2, 2, 7, 5, (3, 1), (1, 2), (0, 1)),
]


def _conv(c, f, k, s, p, seed=0):
    """A Conv2d with a random (non-zero) bias, so a wrong db or a forgotten bias shows."""
    rng = np.random.default_rng(seed)
    layer = Conv2d(c, f, k, stride=s, padding=p, rng=rng)
    layer.params["b"][:] = rng.standard_normal(f)
    return layer


def _distinct(shape, seed=0):
    """Values 0.1 apart in random order: no ties, and no finite-difference step changes a max."""
    rng = np.random.default_rng(seed)
    return rng.permutation(int(np.prod(shape))).reshape(shape) * 0.1


@pytest.mark.parametrize("n,c,f,h,w,k,s,p", CONV_CASES)
def test_conv_gradients_match_finite_differences(n, c, f, h, w, k, s, p):
    layer = _conv(c, f, k, s, p)
    report = check_layer(layer, np.random.default_rng(1).standard_normal((n, c, h, w)))
    assert report.max_rel_error < TOL, str(report)
    assert {e.name for e in report.entries} == {"dx", "dW", "db"}


@pytest.mark.parametrize("n,c,f,h,w,k,s,p", CONV_CASES)
def test_fast_conv_agrees_with_naive_loops(n, c, f, h, w, k, s, p):
    layer = _conv(c, f, k, s, p, seed=3)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((n, c, h, w))
    out = layer(x)
    W, b = layer.params["W"], layer.params["b"]
    np.testing.assert_allclose(out, conv2d_forward_naive(x, W, b, stride=s, padding=p),
                               rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    for fast, naive in zip((dx, layer.grads["W"], layer.grads["b"]),
                           conv2d_backward_naive(dout, x, W, stride=s, padding=p)):
        np.testing.assert_allclose(fast, naive, rtol=1e-12, atol=1e-12)


def test_conv_forward_on_hand_computed_examples():
    # One channel, 2x2 kernel [[1, 0], [0, -1]]: out[r, c] = x[r, c] - x[r+1, c+1] + b.
    # With x[r, c] = 4r + c that is -5 everywhere, plus the bias 0.5.
    layer = Conv2d(1, 1, 2, rng=np.random.default_rng(0))
    layer.params["W"][...] = [[[[1, 0], [0, -1]]]]
    layer.params["b"][...] = 0.5
    out = layer(np.arange(16.0).reshape(1, 1, 4, 4))
    np.testing.assert_array_equal(out, np.full((1, 1, 3, 3), -4.5))

    # A 2x2 kernel of ones over [[0, 1, 2], [3, 4, 5], [6, 7, 8]] with padding 1 and stride 2:
    # the windows start at padded rows/cols 0 and 2, so they cover {0}, {1, 2}, {3, 6} and
    # {4, 5, 7, 8}. A second input channel holding 10 everywhere adds 10 per covered pixel.
    layer = Conv2d(2, 1, 2, stride=2, padding=1, rng=np.random.default_rng(0))
    layer.params["W"][...] = 1.0
    x = np.stack([np.arange(9.0).reshape(3, 3), np.full((3, 3), 10.0)])[None]
    out = layer(x)
    np.testing.assert_array_equal(out, [[[[0 + 10, 3 + 20], [9 + 20, 24 + 40]]]])
    assert layer.output_shape(x.shape) == out.shape == (1, 1, 2, 2)


@pytest.mark.parametrize("kernel,stride", [(2, None), (3, 2), (2, 1), ((2, 3), (1, 2))])
@pytest.mark.parametrize("pool", [MaxPool2d, AvgPool2d])
def test_pooling_gradients_match_finite_differences(pool, kernel, stride):
    # 5x7 leaves rows/columns that no window covers (dropped, as PyTorch's floor mode);
    # stride < kernel makes windows overlap, so one input entry collects several gradients.
    report = check_layer(pool(kernel, stride), _distinct((2, 3, 5, 7)))
    assert report.max_rel_error < TOL, str(report)
    assert any(e.analytic != 0 for e in report.entries)


@pytest.mark.parametrize("kernel,stride", [(2, None), (3, 2), (2, 1), ((2, 3), (1, 2))])
def test_fast_max_pool_agrees_with_naive_loops_even_with_ties(kernel, stride):
    rng = np.random.default_rng(5)
    x = rng.integers(0, 3, (2, 2, 6, 7)).astype(float)  # many ties: they go to the first max
    layer = MaxPool2d(kernel, stride)
    out = layer(x)
    np.testing.assert_array_equal(out, max_pool_forward_naive(x, kernel, stride))
    dout = rng.standard_normal(out.shape)
    np.testing.assert_allclose(layer.backward(dout),
                               max_pool_backward_naive(dout, x, kernel, stride), atol=1e-15)


def test_max_pool_routes_each_window_to_its_first_maximum_and_accumulates_overlaps():
    x = np.array([[[[1.0, 5.0, 5.0],
                    [2.0, 0.0, 3.0],
                    [7.0, 7.0, 1.0]]]])
    layer = MaxPool2d(2, stride=1)
    np.testing.assert_array_equal(layer(x), [[[[5, 5], [7, 7]]]])
    dx = layer.backward(np.array([[[[1.0, 10.0], [100.0, 1000.0]]]]))
    # Windows: top-left {1, 5, 2, 0} -> the 5 at (0, 1); top-right {5, 5, 0, 3} -> the first 5,
    # also (0, 1); bottom-left {2, 0, 7, 7} -> (2, 0); bottom-right {0, 3, 7, 1} -> (2, 1).
    np.testing.assert_array_equal(dx, [[[[0, 11, 0], [0, 0, 0], [100, 1000, 0]]]])


def test_avg_pool_forward_and_backward_by_hand():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    layer = AvgPool2d(2)
    np.testing.assert_array_equal(layer(x), [[[[2.5, 4.5], [10.5, 12.5]]]])
    dx = layer.backward(np.array([[[[4.0, 8.0], [0.0, -4.0]]]]))
    np.testing.assert_array_equal(dx[0, 0], [[1, 1, 2, 2], [1, 1, 2, 2], [0, 0, -1, -1],
                                             [0, 0, -1, -1]])


def test_flatten_round_trip():
    x = np.random.default_rng(0).standard_normal((3, 2, 4, 5))
    layer = Flatten()
    out = layer(x)
    assert out.shape == (3, 40)
    np.testing.assert_array_equal(out[1], x[1].ravel())
    np.testing.assert_array_equal(layer.backward(out), x)
    assert check_layer(layer, x).max_rel_error < TOL


def test_small_cnn_gradients_match_finite_differences():
    rng = np.random.default_rng(6)
    model = Sequential(Conv2d(2, 3, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2),
                       Conv2d(3, 2, (2, 3), stride=(1, 2), rng=rng), Flatten(),
                       Linear(2 * 2 * 1, 3, rng=rng))
    report = check_layer(model, rng.standard_normal((2, 2, 6, 8)))
    assert report.max_rel_error < TOL, str(report)
    assert {e.name for e in report.entries} == {"dx"} | {f"d{i}.{k}" for i in (0, 3, 5)
                                                         for k in "Wb"}


def test_float32_stays_float32():
    rng = np.random.default_rng(0)
    model = Sequential(Conv2d(1, 4, 3, padding=1, rng=rng, dtype=np.float32), ReLU(),
                       MaxPool2d(2), Conv2d(4, 4, 3, rng=rng, dtype=np.float32), AvgPool2d(2),
                       Flatten())
    out = model(rng.standard_normal((3, 1, 10, 10)).astype(np.float32))
    assert out.dtype == np.float32 and out.shape == (3, 4)
    dx = model.backward(np.ones_like(out))
    assert dx.dtype == np.float32 and dx.shape == (3, 1, 10, 10)
    assert all(g.dtype == np.float32 for g in model.grads.values())


def test_parameters_initialisation_and_repr():
    layer = Conv2d(8, 64, (3, 5), stride=2, padding=(1, 2), rng=np.random.default_rng(0))
    assert layer.params["W"].shape == (64, 8, 3, 5) and layer.params["b"].shape == (64,)
    assert not layer.params["b"].any()
    # He/Kaiming: standard deviation sqrt(2 / fan_in) with fan_in = C * kh * kw = 120.
    assert abs(layer.params["W"].std() / np.sqrt(2 / 120) - 1) < 0.05
    same = Conv2d(8, 64, (3, 5), rng=np.random.default_rng(0))
    np.testing.assert_array_equal(layer.params["W"], same.params["W"])
    assert repr(Conv2d(1, 16, 3, padding=1, rng=np.random.default_rng(0))) == \
        "Conv2d(1, 16, kernel_size=3, stride=1, padding=1)"
    assert repr(layer) == "Conv2d(8, 64, kernel_size=(3, 5), stride=2, padding=(1, 2))"
    assert repr(MaxPool2d(2)) == "MaxPool2d(kernel_size=2, stride=2)"
    assert repr(AvgPool2d(3, stride=1)) == "AvgPool2d(kernel_size=3, stride=1)"
    assert repr(Flatten()) == "Flatten()"
    assert layer.num_parameters() == 64 * 8 * 3 * 5 + 64


def test_any_input_memory_layout_gives_the_same_result():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 4))
    layer = _conv(3, 2, 3, 1, 1)
    fortran = np.asfortranarray(x)
    np.testing.assert_array_equal(layer(x), layer(fortran))
    pool = MaxPool2d(2)
    np.testing.assert_array_equal(pool(x), pool(np.ascontiguousarray(x[:, :, ::-1])[:, :, ::-1]))
    out = Conv2d(1, 1, 1, rng=rng)(np.ones((1, 1, 2, 2), dtype=int))  # ints become float64
    assert out.dtype == np.float64 and out.shape == (1, 1, 2, 2)


def _raises(error, message):
    """pytest.raises matching `message` literally (no regex escaping in the tests)."""
    return pytest.raises(error, match=re.escape(message))


def test_conv_input_errors_name_the_layer_and_the_shapes():
    layer = Conv2d(3, 8, 5, rng=np.random.default_rng(0))
    name = "Conv2d(3, 8, kernel_size=5, stride=1, padding=0)"
    with _raises(ValueError, f"{name}: expected a 4-D input (N, C, H, W), got shape (3, 8, 8)"):
        layer(np.zeros((3, 8, 8)))
    with _raises(ValueError, f"{name}: expected input of shape (N, 3, H, W), got (2, 1, 8, 8)"):
        layer(np.zeros((2, 1, 8, 8)))
    with _raises(ValueError, f"{name}: kernel 5x5 does not fit a 3x3 input with padding 0"):
        layer(np.zeros((2, 3, 3, 3)))
    with _raises(ValueError, "kernel 2x4 does not fit a 4x1 input with padding (0, 1)"):
        Conv2d(1, 1, (2, 4), padding=(0, 1), rng=np.random.default_rng(0))(np.zeros((1, 1, 4, 1)))
    Conv2d(3, 8, 5, padding=1, rng=np.random.default_rng(0))(np.zeros((1, 3, 3, 3)))  # fits once padded: 5 <= 3 + 2


@pytest.mark.parametrize("kwargs,error,message", [
    ({"stride": 0}, ValueError, "Conv2d: stride must be >= 1, got 0"),
    ({"padding": -1}, ValueError, "Conv2d: padding must be >= 0, got -1"),
    ({"stride": 1.5}, TypeError, "Conv2d: stride must be an int or a pair of ints, got 1.5"),
    ({"kernel_size": (3,)}, TypeError, "kernel_size must be an int or a pair of ints, got (3,)"),
    ({"kernel_size": 0}, ValueError, "Conv2d: kernel_size must be >= 1, got 0"),
    ({"in_channels": 0}, ValueError, "in_channels and out_channels must be >= 1, got 0 and 4"),
])
def test_invalid_conv_settings_are_rejected(kwargs, error, message):
    settings = {"in_channels": 2, "out_channels": 4, "kernel_size": 3,
                "rng": np.random.default_rng(0), **kwargs}
    with _raises(error, message):
        Conv2d(**settings)


def test_pooling_and_flatten_errors():
    with _raises(ValueError, "MaxPool2d(kernel_size=3, stride=3): window 3x3 does not fit a "
                             "2x4 input"):
        MaxPool2d(3)(np.zeros((1, 1, 2, 4)))
    with _raises(ValueError, "AvgPool2d(kernel_size=2, stride=2): expected a 4-D input "
                             "(N, C, H, W), got shape (4, 4)"):
        AvgPool2d(2)(np.zeros((4, 4)))
    with _raises(ValueError, "MaxPool2d: stride must be >= 1, got 0"):
        MaxPool2d(2, stride=0)
    with _raises(ValueError, "Flatten(): expected input of shape (N, ...) with at least 2 "
                             "dimensions, got (5,)"):
        Flatten()(np.zeros(5))


@pytest.mark.parametrize("layer,x", [
    (Conv2d(1, 2, 3, rng=np.random.default_rng(0)), np.zeros((2, 1, 5, 5))),
    (MaxPool2d(2), np.zeros((2, 1, 4, 4))),
    (AvgPool2d(2), np.zeros((2, 1, 4, 4))),
    (Flatten(), np.zeros((2, 1, 4, 4))),
])
def test_backward_checks_dout_and_call_order(layer, x):
    with _raises(RuntimeError, "backward() called before forward()"):
        layer.backward(np.zeros((1, 1)))
    out = layer(x)
    with _raises(ValueError, f"{layer!r}.backward: expected dout of shape {out.shape} "
                             "(the shape forward returned), got (7,)"):
        layer.backward(np.zeros(7))


def test_naive_functions_reject_mismatched_channels():
    with _raises(ValueError, "conv2d_forward_naive: expected x (N, C, H, W) and W (F, C, kh, kw) "
                             "with the same C, got x (1, 2, 4, 4) and W (3, 1, 2, 2)"):
        conv2d_forward_naive(np.zeros((1, 2, 4, 4)), np.zeros((3, 1, 2, 2)), np.zeros(3))


def test_conv2d_requires_an_explicit_generator():
    with pytest.raises(TypeError, match=r"Conv2d\(1, 2, kernel_size=3.*pass rng=np.random.default_rng"):
        Conv2d(1, 2, 3)


@pytest.mark.parametrize("layer_dtype,other", [(np.float64, np.float32), (np.float32, np.float64)])
def test_conv_refuses_input_and_dout_of_another_float_dtype(layer_dtype, other):
    layer = Conv2d(1, 2, 3, rng=np.random.default_rng(0), dtype=layer_dtype)
    name = np.dtype(other).name
    with pytest.raises(TypeError, match=rf"Conv2d\(1, 2, kernel_size=3.*\): input has dtype "
                                        rf"{name} but the layer's parameters are "
                                        rf"{np.dtype(layer_dtype).name}"):
        layer(np.ones((2, 1, 5, 5), dtype=other))
    out = layer(np.ones((2, 1, 5, 5), dtype=np.uint8))  # integer images are converted
    assert out.dtype == layer_dtype
    with pytest.raises(TypeError, match=rf"dout has dtype {name}"):
        layer.backward(np.ones(out.shape, dtype=other))


def test_a_first_conv_layer_skips_dx_on_request_with_the_same_gradients():
    rng = np.random.default_rng(9)
    model = Sequential(Conv2d(2, 3, 3, padding=1, rng=rng), ReLU(), MaxPool2d(2), Flatten(),
                       Linear(12, 2, rng=rng))
    x, dout = rng.standard_normal((4, 2, 4, 4)), rng.standard_normal((4, 2))
    model.forward(x)
    dx = model.backward(dout)
    grads = {name: grad.copy() for name, grad in model.grads.items()}
    model.forward(x)
    assert dx.shape == x.shape and model.backward(dout, input_grad=False) is None
    for name, grad in grads.items():
        np.testing.assert_array_equal(model.grads[name], grad, err_msg=name)
