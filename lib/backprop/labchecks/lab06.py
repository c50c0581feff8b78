"""Visible checks of lab 06 (output size, convolution and pooling, forward and backward).

The output size is checked against sizes counted window by window (stored) and the library's
Conv2d. Other expected values come from the course library's fast layers (`backprop.conv`) and from finite
differences of their forward passes; kernels are not square and strides do not always divide,
so code that assumes either is caught. A wrong answer is named by comparing it with what a known
mistake computes (mostly the library's layers with the mistake's settings).
"""
import numpy as np

from backprop import checks
from backprop import gradcheck
from backprop import data
from backprop.conv import AvgPool2d, Conv2d, Flatten, MaxPool2d
from backprop.labchecks import heldout
from backprop.layers import Layer, Linear, ReLU, Sequential

TEST_TARGET = 0.95  # accuracy of the learner's CNN on the test split

WINDOW_START = ("the window of output (r, c) starts at row r * stride and column c * stride "
                "of the padded input")
STRIDE_AND_PADDING = (
    "right with stride 1 and no padding, wrong here? Output (r, c) reads rows r * stride to "
    "r * stride + kh - 1 and columns c * stride to c * stride + kw - 1 of the PADDED input "
    "(check both axes), so its gradient goes there in the padded dx, which you crop by p on "
    "every side at the end")
ACCUMULATE = ("use += : overlapping windows (and all filters, images and positions) add up")
ACCUMULATE_EVERY = ("use += : every image, filter and position adds its part; with = only the "
                    "last iteration of your loops is left")


def _unchanged(name, arrays, saved):
    checks.check_true(all(np.array_equal(a, s) for a, s in zip(arrays, saved)),
                      f"{name} changed one of its input arrays in place: compute new arrays.")


# (size, kernel, stride, pad): windows along one axis, counted one by one on the padded axis
# (the way lesson 06, section 3 counts them) and confirmed with the library's Conv2d
OUTPUT_SIZES = {(5, 3, 1, 0): 3, (7, 2, 3, 2): 4, (6, 3, 2, 0): 2, (5, 3, 2, 1): 3,
                (8, 3, 1, 1): 8, (7, 3, 2, 1): 4, (9, 4, 3, 1): 3, (28, 5, 1, 2): 28,
                (224, 7, 2, 3): 112, (5, 5, 2, 0): 1, (6, 1, 4, 0): 2, (4, 3, 3, 1): 2,
                (3, 5, 1, 1): 1}
OUTPUT_SIZE_HINT = ("count the start positions 0, s, 2s, ... of the windows that fit in the "
                    "padded axis (p zeros on each side); lesson 06, section 3 counts examples")


def _output_size_mistakes(cases):
    """{hint: the sizes a known mistake gives for `cases`}."""
    def sizes(rule):
        return np.array([rule(n, k, s, p) for n, k, s, p in cases], dtype=float)
    return {
        "the output size must count the padding: the padded axis is longer than size":
            sizes(lambda n, k, s, p: (n - k) // s + 1),
        "padding adds p zeros on EACH side of the axis, not p in all":
            sizes(lambda n, k, s, p: (n + p - k) // s + 1),
        "windows start `stride` pixels apart: only every stride-th position starts a window":
            sizes(lambda n, k, s, p: n + 2 * p - k + 1),
        "a window that would run past the edge is left out: round down, not up":
            sizes(lambda n, k, s, p: -(-(n + 2 * p - k) // s) + 1),
        "count the first window too (the one that starts at position 0)":
            sizes(lambda n, k, s, p: (n + 2 * p - k) // s),
        "windows are whole: a fraction of a window is no window (floor division //)":
            sizes(lambda n, k, s, p: (n + 2 * p - k) / s + 1),
        "the stride spaces the start positions, it does not divide the whole axis":
            sizes(lambda n, k, s, p: (n + 2 * p - k + 1) // s)}


def _library_output_size(size, kernel, stride, pad):
    layer = Conv2d(1, 1, (kernel, 1), stride=stride, padding=pad, rng=np.random.default_rng(0))
    return layer(np.zeros((1, 1, size, 1))).shape[2]


def _check_output_sizes(conv_output_size, cases, expected, mistakes=None):
    received = []
    for case in cases:
        received.append(checks.check_call(f"conv_output_size{case}", conv_output_size, *case,
                                          hint=OUTPUT_SIZE_HINT))
    try:
        as_numbers = np.array(received, dtype=float)
    except (TypeError, ValueError):
        as_numbers = None
    named = [hint for hint, wrong in (mistakes or {}).items()
             if as_numbers is not None and as_numbers.shape == wrong.shape
             and np.allclose(as_numbers, wrong)]
    for case, got, want in zip(cases, received, expected):
        checks.check_scalar(f"conv_output_size{case}", got, want,
                            mistakes={hint: got for hint in named}, hint=OUTPUT_SIZE_HINT)
    return received


def check_conv_output_size(conv_output_size):
    """Sizes counted window by window (stored), then every small case against Conv2d, and the
    result an int."""
    with checks.report("conv_output_size"):
        cases = list(OUTPUT_SIZES)
        received = _check_output_sizes(conv_output_size, cases, list(OUTPUT_SIZES.values()),
                                       _output_size_mistakes(cases))
        sweep = [(n, k, s, p) for n in range(1, 10) for p in range(3) for s in range(1, 4)
                 for k in range(1, n + 2 * p + 1)]
        _check_output_sizes(conv_output_size, sweep,
                            [_library_output_size(*case) for case in sweep])
        for case, size in zip(cases, received):
            checks.check_true(isinstance(size, (int, np.integer)), (
                f"conv_output_size{case} = {size} (a {type(size).__name__}), expected "
                f"{OUTPUT_SIZES[case]} (an int)\n  Hint: a size is a whole number (np.zeros and range "
                "need an int): use // or int(...), not / or np.floor alone"))


def _conv(W, b, stride, padding):
    """The library's Conv2d with filters W and biases b."""
    layer = Conv2d(W.shape[1], W.shape[0], W.shape[2:], stride=stride, padding=padding,
                   rng=np.random.default_rng(0))
    layer.load_state_dict({"W": W, "b": b})
    return layer


def check_conv_forward(conv_forward_naive):
    """out against the library's Conv2d, for a 3x2 kernel, strides 1 to 3 and paddings 0 to 2."""
    with checks.report("conv_forward_naive"):
        rng = np.random.default_rng(1)
        x = rng.standard_normal((2, 3, 6, 7))  # odd sizes; strides 2 and 3 do not divide
        W, b = rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
        saved = x.copy(), W.copy(), b.copy()
        for stride, padding in [(1, 0), (1, 1), (2, 0), (2, 1), (3, 2)]:
            expected = _conv(W, b, stride, padding)(x)
            out_h, out_w = expected.shape[2:]
            unpadded_h, unpadded_w = (6 - 3) // stride + 1, (7 - 2) // stride + 1
            stride_1 = _conv(W, b, 1, padding)(x)
            mistakes = {
                "deep-learning convolution is a cross-correlation: do not flip the kernel":
                    _conv(W[:, :, ::-1, ::-1].copy(), b, stride, padding)(x),
                "add the bias b[f] to every output of filter f": expected - b[:, None, None],
                "the output size must count the padding: conv_output_size(H, kh, stride, "
                "padding)":
                    expected[:, :, :unpadded_h, :unpadded_w],
                "pad x with `padding` zeros on every side (np.pad on the last two axes) "
                "before taking windows": _conv(W, b, stride, 0)(x),
                WINDOW_START: stride_1[:, :, :out_h, :out_w],
                "the output size must use the stride: conv_output_size(H, kh, stride, "
                "padding)": stride_1}
            name = f"conv_forward_naive(x, W, b, stride={stride}, padding={padding})"
            out = checks.check_call(name, conv_forward_naive, x, W, b, stride, padding, hint=(
                "a window ran past the edge of the input, or does not match the kernel: pad x "
                "before taking windows; the output size uses the stride and the padding "
                "(conv_output_size); "
                "kernels need not be square (kh, kw = W.shape[2:])"))
            checks.check_close(f"{name} for x {x.shape}, W {W.shape}", out, expected,
                               mistakes=mistakes)
        _unchanged("conv_forward_naive", (x, W, b), saved)


def _finite_differences(layer, x, dout):
    return {"dx": gradcheck.numerical_gradient(lambda x_: layer(x_), x.copy(), dout),
            "dW": gradcheck.numerical_gradient(lambda W_: layer(x), layer.params["W"], dout),
            "db": gradcheck.numerical_gradient(lambda b_: layer(x), layer.params["b"], dout)}


def _assigned(dout, x, W, stride, padding, per_image_and_filter=False):
    """What `=` instead of `+=` gives: (dx, dW), in a loop over output positions (r, c), or
    over images, filters and positions."""
    kh, kw = W.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    dxp, dW = np.zeros(xp.shape), np.zeros(W.shape)
    for r in range(dout.shape[2]):
        for c in range(dout.shape[3]):
            rows = slice(r * stride, r * stride + kh)
            cols = slice(c * stride, c * stride + kw)
            if not per_image_and_filter:
                dxp[:, :, rows, cols] = np.tensordot(dout[:, :, r, c], W, axes=(1, 0))
                dW = np.tensordot(dout[:, :, r, c], xp[:, :, rows, cols], axes=(0, 0))
    if per_image_and_filter:
        for n, f, r, c in np.ndindex(*dout.shape):
            rows = slice(r * stride, r * stride + kh)
            cols = slice(c * stride, c * stride + kw)
            dxp[n, :, rows, cols] = dout[n, f, r, c] * W[f]
            dW[f] = dout[n, f, r, c] * xp[n, :, rows, cols]
    return dxp[:, :, padding:padding + x.shape[2], padding:padding + x.shape[3]], dW


def _check_backward(conv_backward_naive, x, W, b, stride, padding, dout, mistakes):
    layer = _conv(W, b, stride, padding)
    expected = _finite_differences(layer, x, dout)
    saved = dout.copy(), x.copy(), W.copy()
    where = f"x {x.shape}, W {W.shape}, stride={stride}, padding={padding}"
    result = checks.check_call(f"conv_backward_naive for {where}", conv_backward_naive, dout,
                               x, W, stride, padding, hint=(
        "a window ran past the edge, or does not match the kernel: work on the padded input "
        "(dx of the padded input has its shape), window (r, c) starts at (r * stride, "
        "c * stride), and kernels need not be square"))
    checks.check_tuple("conv_backward_naive", result, ["dx", "dW", "db"])
    # with stride or padding, every wrong gradient gets a hint (one of its own, or this one)
    hint = STRIDE_AND_PADDING if (stride, padding) != (1, 0) else None
    for name, received in zip(["dx", "dW", "db"], result):
        _hinted(hint, checks.check_close, f"{name} for {where}", received, expected[name],
                rtol=1e-5, atol=1e-7, batch_size=len(x), mistakes=mistakes[name], hint=hint)
    _unchanged("conv_backward_naive", (dout, x, W), saved)


def _hinted(fallback, check, *args, **kwargs):
    """`check(*args, **kwargs)`, its failure message given `fallback` when it has no hint."""
    try:
        return check(*args, **kwargs)
    except checks.LabCheckError as failure:
        if fallback is None or "Hint:" in str(failure):
            raise
        raise checks.LabCheckError(f"{failure}\n  Hint: {fallback}") from None


def _db_mistakes(dout):
    return {"db has one entry per filter: sum dout over the images and positions":
                dout.sum(axis=0),
            "db sums over the batch as well": dout.sum(axis=(1, 2, 3)),
            "db keeps one entry per filter: do not sum over the filter axis": dout.sum(),
            "db is a sum over images and positions, not a mean": dout.mean(axis=(0, 2, 3)),
            "db has shape (F,): sum without keepdims=True": dout.sum(axis=(0, 2, 3),
                                                                     keepdims=True),
            ACCUMULATE: dout[:, :, -1, -1].sum(axis=0),
            ACCUMULATE_EVERY: dout[-1, :, -1, -1]}


def check_conv_backward(conv_backward_naive):
    """dx, dW, db with stride 1 and no padding, against finite differences of Conv2d."""
    with checks.report("conv_backward_naive (stride 1, padding 0)"):
        rng = np.random.default_rng(2)
        x, W = rng.standard_normal((2, 3, 5, 6)), rng.standard_normal((4, 3, 3, 2))
        b = rng.standard_normal(4)
        layer = _conv(W, b, 1, 0)
        dout = rng.standard_normal(layer(x).shape)
        flipped = _conv(W[:, :, ::-1, ::-1].copy(), b, 1, 0)
        flipped(x)
        dx_assigned, dW_assigned = _assigned(dout, x, W, 1, 0)
        dx_assigned_nf, dW_assigned_nf = _assigned(dout, x, W, 1, 0, per_image_and_filter=True)
        layer(x)
        layer.backward(dout)
        mistakes = {
            "dx": {"dx is the full convolution of dout with the FLIPPED kernel (or, with loops: "
                   "each window receives dout times the kernel as it is, not flipped)":
                       flipped.backward(dout),
                   ACCUMULATE: dx_assigned,
                   ACCUMULATE_EVERY: dx_assigned_nf,
                   "with padding 0, a[:, :, p:-p, p:-p] is empty: crop with p:p + H instead":
                       np.zeros((2, 3, 0, 0))},
            "dW": {"dW collects dout times each window, with the window as it is (not flipped)":
                       layer.grads["W"][:, :, ::-1, ::-1],
                   ACCUMULATE: dW_assigned,
                   ACCUMULATE_EVERY: dW_assigned_nf,
                   "sum dW over the whole batch, not over the last image only":
                       gradcheck.numerical_gradient(lambda W_: layer(x[-1:]), layer.params["W"],
                                                    dout[-1:]),
                   "dW is a sum over the batch: do not divide by the batch size":
                       layer.grads["W"] / len(x)},
            "db": _db_mistakes(dout)}
        _check_backward(conv_backward_naive, x, W, b, 1, 0, dout, mistakes)


def check_conv_backward_stride_padding(conv_backward_naive):
    """dx, dW, db with strides that do not divide and padding, against finite differences."""
    with checks.report("conv_backward_naive (stride and padding)"):
        rng = np.random.default_rng(3)
        for (N, C, H, Wd), (F, kh, kw), stride, padding in [
                ((2, 2, 7, 5), (3, 3, 2), 2, 1), ((1, 3, 6, 5), (2, 2, 3), 3, 1),
                ((1, 2, 5, 5), (2, 3, 3), 1, 1)]:
            x, W = rng.standard_normal((N, C, H, Wd)), rng.standard_normal((F, C, kh, kw))
            b = rng.standard_normal(F)
            dout = rng.standard_normal(_conv(W, b, stride, padding)(x).shape)
            # a layer without padding on the padded input computes the same outputs, so its dx
            # is what a forgotten crop returns
            on_padded = _conv(W, b, stride, 0)
            on_padded(np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding))))
            dx_padded = on_padded.backward(dout)
            stride_1 = _conv(W, b, 1, padding)
            dout_1 = np.zeros(stride_1(x).shape)
            dout_1[:, :, :dout.shape[2], :dout.shape[3]] = dout
            dx_1 = stride_1.backward(dout_1)
            flipped = _conv(W[:, :, ::-1, ::-1].copy(), b, stride, padding)
            flipped(x)
            mistakes = {
                "dx": {"crop the padding off dx: the zeros added around x were not inputs":
                           dx_padded,
                       "each window receives dout times the kernel as it is (not flipped)":
                           flipped.backward(dout),
                       "crop p rows and columns from EACH side of the padded gradient":
                           dx_padded[:, :, :H, :Wd],
                       WINDOW_START: dx_1},
                "dW": {WINDOW_START: stride_1.grads["W"]},
                "db": _db_mistakes(dout)}
            _check_backward(conv_backward_naive, x, W, b, stride, padding, dout, mistakes)


def check_max_pool_forward(max_pool_forward):
    """out against the library's MaxPool2d, with strides that do and do not divide."""
    with checks.report("max_pool_forward"):
        rng = np.random.default_rng(4)
        x = rng.standard_normal((2, 3, 5, 7))
        saved = (x.copy(),)
        for pool, stride in [(2, 2), (3, 2), (2, 1), (3, 3)]:
            expected = MaxPool2d(pool, stride)(x)
            out_h, out_w = expected.shape[2:]
            stride_1 = MaxPool2d(pool, 1)(x)
            name = f"max_pool_forward(x, pool={pool}, stride={stride})"
            out = checks.check_call(name, max_pool_forward, x, pool, stride, hint=(
                "a window ran past the edge of x or is empty: the output size uses the stride "
                "(conv_output_size(H, pool, stride, 0)), and window (r, c) "
                "starts at (r * stride, c * stride)"))
            checks.check_close(f"{name} for x {x.shape}", out, expected, mistakes={
                "take the maximum of each window, not the mean": AvgPool2d(pool, stride)(x),
                "windows start `stride` pixels apart: (r * stride, c * stride)":
                    stride_1[:, :, :out_h, :out_w],
                "the output size uses the stride: the windows are placed as a convolution's "
                "without padding, conv_output_size(H, pool, stride, 0)": stride_1})
        _unchanged("max_pool_forward", (x,), saved)


def _pool_backward_at_origin(dout, x, pool, stride):
    """What a max-pool backward pass computes that forgets where each window starts."""
    dx = np.zeros(x.shape)
    for r in range(dout.shape[2]):
        for c in range(dout.shape[3]):
            window = x[:, :, r * stride:r * stride + pool, c * stride:c * stride + pool]
            flat = window.reshape(*window.shape[:2], -1).argmax(axis=2)
            i, j = np.unravel_index(flat, window.shape[2:])
            n, ch = np.indices(flat.shape)
            np.add.at(dx, (n, ch, i, j), dout[:, :, r, c])
    return dx


ORIGIN = ("the position of the maximum inside its pooling window is relative to the window: "
          "did you index dx from the array's origin instead of the window's start?")


def check_max_pool_backward(max_pool_backward):
    """dx by hand for overlapping windows, then against finite differences and ties."""
    with checks.report("max_pool_backward"):
        x = np.array([[[[1.0, 2.0, 3.0], [4.0, 9.0, 5.0], [6.0, 7.0, 8.0]]]])
        dout = np.array([[[[1.0, 10.0], [100.0, 1000.0]]]])
        name = "max_pool_backward(dout, x, pool=2, stride=1)"
        dx = checks.check_call(name, max_pool_backward, dout, x, 2, 1, hint=(
            "an index ran past the edge of dx: np.argmax gives an index into the flattened "
            "window; np.unravel_index(k, window.shape) turns it into (row, column) inside "
            "the window"))
        checks.check_close(f"{name} for the 3x3 example (the 9 wins all four windows)", dx,
                           [[[[0.0, 0.0, 0.0], [0.0, 1111.0, 0.0], [0.0, 0.0, 0.0]]]], mistakes={
            "the 9 wins four overlapping windows and must receive all four gradients: "
            "accumulate with += instead of =": [[[[0.0, 0.0, 0.0], [0.0, 1000.0, 0.0],
                                                 [0.0, 0.0, 0.0]]]],
            "send each window's gradient only to its maximum, not to every entry of the window":
                [[[[1.0, 11.0, 10.0], [101.0, 1111.0, 1010.0], [100.0, 1100.0, 1000.0]]]],
            "that is average pooling's backward pass: max pooling gives the whole gradient to "
            "the maximum only": [[[[0.25, 2.75, 2.5], [25.25, 277.75, 252.5],
                                   [25.0, 275.0, 250.0]]]],
            ORIGIN: _pool_backward_at_origin(dout, x, 2, 1)})
        rng = np.random.default_rng(5)
        # distinct values 0.1 apart: no ties, and no finite-difference step changes a maximum
        x = rng.permutation(2 * 3 * 5 * 7).reshape(2, 3, 5, 7) * 0.1
        saved = (x.copy(),)
        for pool, stride in [(2, 2), (3, 2)]:
            layer = MaxPool2d(pool, stride)
            dout = rng.standard_normal(layer(x).shape)
            expected = gradcheck.numerical_gradient(lambda x_: MaxPool2d(pool, stride)(x_),
                                                    x.copy(), dout)
            average = AvgPool2d(pool, stride)
            average(x)
            stride_1 = MaxPool2d(pool, 1)
            dout_1 = np.zeros(stride_1(x).shape)
            dout_1[:, :, :dout.shape[2], :dout.shape[3]] = dout
            name = f"max_pool_backward(dout, x, pool={pool}, stride={stride})"
            received = checks.check_call(name, max_pool_backward, dout, x, pool, stride)
            checks.check_close(f"dx of {name} for x {x.shape}", received, expected, rtol=1e-5,
                               atol=1e-7, mistakes={
                "send each window's gradient only to its maximum, not to every entry":
                    average.backward(dout) * pool * pool,
                "max pooling gives the whole gradient to the maximum, not 1 / pool**2 of it "
                "to every entry": average.backward(dout),
                "the window of output (r, c) starts at (r * stride, c * stride)":
                    stride_1.backward(dout_1),
                ORIGIN: _pool_backward_at_origin(dout, x, pool, stride)})
        _unchanged("max_pool_backward", (x,), saved)
        checks.check_close("max_pool_backward for a window of four equal values",
                           max_pool_backward(np.array([[[[3.0]]]]), np.full((1, 1, 2, 2), 2.0),
                                             2, 2),
                           [[[[3.0, 0.0], [0.0, 0.0]]]], mistakes={
            "when a window's maximum appears more than once, only the first one (np.argmax) "
            "gets the gradient": np.full((1, 1, 2, 2), 3.0)})


def digit_images_splits():
    """The digits as (N, 1, 8, 8) images, split (seed 0) and standardized as in the lab."""
    X, y = data.load_digits(as_images=True)
    splits = data.train_val_test_split(X, y, seed=0)
    X_train, X_val, X_test = data.standardize(splits.X_train, splits.X_val, splits.X_test)
    return (X_train, splits.y_train), (X_val, splits.y_val), (X_test, splits.y_test)


def library_cnn(cnn):
    """The library's network of the lab, Sequential(Conv2d(1, F, 3, 1, 1), ReLU(),
    MaxPool2d(2), Flatten(), Linear(16 F, 10)), holding the trained weights of `cnn`, the
    learner's network of that shape."""
    state = checks.check_call("cnn.state_dict()", cnn.state_dict)
    shapes = {name: np.shape(value) for name, value in dict(state).items()}
    filters = shapes.get("0.W", (0,))[0]
    expected = {"0.W": (filters, 1, 3, 3), "0.b": (filters,), "4.W": (filters * 16, 10),
                "4.b": (10,)}
    checks.check_true(filters > 0 and shapes == expected, (
        "cnn should be Sequential(MyConv2d(1, F, 3, 1, 1, rng), ReLU(), MaxPool2d(2), "
        f"Flatten(), Linear(F * 16, 10)) as the lab asks; its parameters have the shapes "
        f"{shapes}"))
    rng = np.random.default_rng(0)  # the starting weights are overwritten below
    model = Sequential(Conv2d(1, filters, 3, stride=1, padding=1, rng=rng), ReLU(),
                       MaxPool2d(2), Flatten(), Linear(filters * 16, 10, rng=rng))
    model.load_state_dict({name: np.asarray(value, dtype=float) for name, value in state.items()})
    return model


def check_build_and_train(cnn):
    """The learner's trained CNN, with their convolution layer: its weights, run through the
    library's layers, measured on the test split and on a copy with a little fixed noise."""
    with checks.report("build_and_train"):
        checks.check_true(isinstance(cnn, Layer),
                          f"cnn should be your trained model (a backprop Layer, such as a "
                          f"Sequential), got {type(cnn).__name__}.")
        layers = getattr(cnn, "layers", [cnn])
        convs = [layer for layer in layers if np.ndim(layer.params.get("W")) == 4]
        checks.check_true(convs and not any(isinstance(layer, Conv2d) for layer in convs),
                          "cnn should contain YOUR convolution layer (a Layer whose forward and "
                          "backward call your conv_forward_naive and conv_backward_naive), "
                          "not the library's Conv2d.")
        _, _, (X_test, y_test) = digit_images_splits()
        noisy = heldout.noisy(X_test, heldout.visible_rng())
        test_accuracy, _ = heldout.check_classifier(
            "your CNN", library_cnn(cnn), X_test, y_test, noisy, TEST_TARGET,
            hint="is the training loss falling? Does your layer fill grads with the same "
                 "keys as params? Try more epochs or another learning rate, chosen on the "
                 "validation split.")
    print(f"  test accuracy {test_accuracy:.3f} (target {TEST_TARGET})")
