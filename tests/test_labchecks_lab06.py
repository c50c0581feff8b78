"""The visible checks of lab 06 accept a correct answer written differently from the solution
(the library's loop versions in `backprop.conv_naive`), reject a blank one with a message
saying so, and name the forgotten window offset of a max-pool backward pass."""
import numpy as np
import pytest

from backprop import conv_naive
from backprop.checks import LabCheckError, fresh


@pytest.fixture(scope="module")
def lab():
    return fresh("lab06")


def not_written(*args, **kwargs):
    raise NotImplementedError()


@pytest.mark.parametrize("check, answer", [
    ("check_conv_forward", conv_naive.conv2d_forward_naive),
    ("check_conv_backward", conv_naive.conv2d_backward_naive),
    ("check_conv_backward_stride_padding", conv_naive.conv2d_backward_naive),
    ("check_max_pool_forward", conv_naive.max_pool_forward_naive),
    ("check_max_pool_backward", conv_naive.max_pool_backward_naive),
])
def test_the_librarys_loop_versions_pass(lab, check, answer, capsys):
    getattr(lab, check)(answer)
    assert "\u2713" in capsys.readouterr().out


@pytest.mark.parametrize("check", ["check_conv_forward", "check_conv_backward",
                                   "check_max_pool_forward", "check_max_pool_backward"])
def test_a_blank_answer_is_told_it_is_not_written(lab, check):
    with pytest.raises(LabCheckError, match="not written yet"):
        getattr(lab, check)(not_written)


def test_a_max_pool_backward_without_the_window_offset_is_named(lab):
    def at_origin(dout, x, pool, stride):
        dx = np.zeros(x.shape)
        for n, ch, r, c in np.ndindex(*dout.shape):
            window = x[n, ch, r * stride:r * stride + pool, c * stride:c * stride + pool]
            i, j = np.unravel_index(np.argmax(window), window.shape)
            dx[n, ch, i, j] += dout[n, ch, r, c]
        return dx
    with pytest.raises(LabCheckError, match="from the array's origin") as failure:
        lab.check_max_pool_backward(at_origin)
    assert "constant factor" not in str(failure.value)


def test_a_forward_pass_that_assumes_a_square_kernel_is_named(lab):
    def assumes_square(x, W, b, stride=1, padding=0):
        k = W.shape[2]
        xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        size = (xp.shape[2] - k) // stride + 1, (xp.shape[3] - k) // stride + 1
        out = np.zeros((len(x), len(W), *size))
        for r, c in np.ndindex(*size):
            window = xp[:, :, r * stride:r * stride + k, c * stride:c * stride + k]
            out[:, :, r, c] = np.tensordot(window, W, axes=([1, 2, 3], [1, 2, 3])) + b
        return out
    with pytest.raises(LabCheckError, match="kernels need not be square"):
        lab.check_conv_forward(assumes_square)


def test_assignment_instead_of_accumulation_in_per_image_loops_is_named(lab):
    def assigns(dout, x, W, stride=1, padding=0):
        kh, kw = W.shape[2:]
        xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
        dxp, dW = np.zeros(xp.shape), np.zeros(W.shape)
        for n, f, r, c in np.ndindex(*dout.shape):
            window = (n, slice(None), slice(r * stride, r * stride + kh),
                      slice(c * stride, c * stride + kw))
            dxp[window] = dout[n, f, r, c] * W[f]  # = where += belongs
            dW[f] += dout[n, f, r, c] * xp[window]
        crop = dxp[:, :, padding:padding + x.shape[2], padding:padding + x.shape[3]]
        return crop, dW, dout.sum(axis=(0, 2, 3))
    with pytest.raises(LabCheckError, match=r"use \+= : every image, filter and position"):
        lab.check_conv_backward(assigns)


def test_an_output_size_counted_window_by_window_passes(lab, capsys):
    def counted(size, kernel, stride, pad):
        windows, start = 0, 0
        while start + kernel <= size + 2 * pad:
            windows, start = windows + 1, start + stride
        return windows
    lab.check_conv_output_size(counted)
    assert "\u2713" in capsys.readouterr().out


def test_a_blank_output_size_is_told_it_is_not_written(lab):
    with pytest.raises(LabCheckError, match="not written yet"):
        lab.check_conv_output_size(not_written)


@pytest.mark.parametrize("wrong, hint", [
    (lambda n, k, s, p: (n + p - k) // s + 1, "p zeros on EACH side"),
    (lambda n, k, s, p: -(-(n + 2 * p - k) // s) + 1, "round down, not up"),
    (lambda n, k, s, p: float((n + 2 * p - k) // s + 1), "a size is a whole number"),
])
def test_a_wrong_output_size_is_named_with_numbers_first(lab, wrong, hint):
    with pytest.raises(LabCheckError, match=hint) as failure:
        lab.check_conv_output_size(wrong)
    first_line = str(failure.value).splitlines()[0]
    assert first_line.startswith("conv_output_size(") and "expected" in first_line
    assert str(failure.value).splitlines()[1].lstrip().startswith("Hint:")


def test_a_wrong_gradient_with_stride_and_padding_always_gets_a_hint(lab):
    def crops_a_column_too_few(dout, x, W, stride=1, padding=0):
        dx, dW, db = conv_naive.conv2d_backward_naive(dout, x, W, stride, padding)
        wider = np.pad(dx, ((0, 0), (0, 0), (0, 0), (0, 1)))  # a shape no known mistake gives
        return (wider if (stride, padding) != (1, 0) else dx), dW, db
    with pytest.raises(LabCheckError, match="has shape") as failure:
        lab.check_conv_backward_stride_padding(crops_a_column_too_few)
    assert "Hint: right with stride 1 and no padding, wrong here?" in str(failure.value)
