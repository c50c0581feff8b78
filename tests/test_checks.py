"""backprop.checks: lab failures name the wrong entry, both values, and the likely mistake."""
import numpy as np
import pytest

from backprop import checks

from backprop.checks import (LabCheckError, check_call, check_close, check_scalar, check_shape,
                             check_true)

X = np.arange(1.0, 13.0).reshape(3, 4) - 6.5


def fails_with(fn, *patterns):
    with pytest.raises(LabCheckError) as info:
        fn()
    for pattern in patterns:
        assert pattern in str(info.value), f"{pattern!r} not in:\n{info.value}"
    return str(info.value)


def test_correct_values_pass_silently():
    check_close("dW", X + 1e-12, X)
    check_scalar("loss", np.float64(0.5), 0.5)
    check_shape("out", X, (3, 4))
    check_true(True, "never shown")


def test_failures_are_assertion_errors_so_nbgrader_counts_them():
    assert issubclass(LabCheckError, AssertionError)


def test_message_names_the_worst_entry_with_expected_and_received():
    wrong = X.copy()
    wrong[1, 2] = 99.0
    message = fails_with(lambda: check_close("dW", wrong, X),
                         "dW[1, 2] = 99, expected 0.5; 1 of 12 entries differ")
    assert message.splitlines()[0] == "dW[1, 2] = 99, expected 0.5; 1 of 12 entries differ"


def test_flipped_sign_hint():
    fails_with(lambda: check_close("dW", -X, X), "opposite sign")


def test_missing_one_over_n_hint():
    fails_with(lambda: check_close("dW", X * 3, X, batch_size=3),
               "3 times too large: did you divide by the batch size N = 3")
    fails_with(lambda: check_close("dW", X / 3, X, batch_size=3), "divide by the batch size N = 3 twice")


def test_transposed_hints_for_square_and_rectangular_results():
    fails_with(lambda: check_close("dW", X.T, X), "dW has shape (4, 3), expected (3, 4)",
               "transpose")
    square = X[:3, :3]
    fails_with(lambda: check_close("dW", square.T, square), "transpose of the expected one")


def test_constant_factor_and_constant_offset_hints():
    fails_with(lambda: check_close("grad", X * 0.5, X), "0.5 times the expected value")
    fails_with(lambda: check_close("out", X + 2, X), "off by the same amount (2)", "bias")


def test_wrong_axis_hints():
    fails_with(lambda: check_close("db", X.sum(axis=0), X), "one axis is missing")
    fails_with(lambda: check_close("db", X.sum(axis=0, keepdims=True), X[:1] * 0 + X.sum(0) / 2),
               "times the expected value")
    fails_with(lambda: check_close("db", np.zeros((1, 4)), np.zeros((3, 4))), "wrong axis")


def test_nan_none_zeros_and_non_numeric_hints():
    fails_with(lambda: check_close("p", np.full((3, 4), np.nan), X), "NaN", "subtract the maximum")
    fails_with(lambda: check_close("p", None, X), "p is None", "return")
    fails_with(lambda: check_close("p", np.zeros_like(X), X), "every entry is zero")
    fails_with(lambda: check_close("p", "abc", X), "should be a numeric array, got str")


def test_known_mistakes_take_precedence_with_their_own_hint():
    relu_without_derivative = X.copy()
    fails_with(lambda: check_close("dx", relu_without_derivative, np.where(X > 0, X, 0),
                                   mistakes={"did you forget the ReLU's derivative?": X}),
               "did you forget the ReLU's derivative?")


def test_check_scalar_requires_one_number():
    fails_with(lambda: check_scalar("loss", np.ones(3), 1.0), "single number", "np.mean")
    fails_with(lambda: check_scalar("loss", 6.0, 2.0, batch_size=3), "3 times too large")


def test_check_shape_and_check_true_messages():
    fails_with(lambda: check_shape("out", np.zeros((4, 3)), (3, 4)),
               "out has shape (4, 3), expected (3, 4)")
    fails_with(lambda: check_true(False, "the loss should decrease"), "the loss should decrease")


def test_no_factor_hint_for_a_ratio_of_one():
    message = fails_with(lambda: check_close("x", X * (1 + 1e-5), X, rtol=1e-9, atol=0))
    assert "times the expected value" not in message, message


def test_check_call_returns_the_result_or_names_the_error_with_a_hint():
    assert check_call("f(2)", lambda v: v + 1, 2) == 3
    with pytest.raises(LabCheckError) as info:
        check_call("conv(x)", lambda: np.ones(3) + np.ones(2), hint="check the output size")
    message = str(info.value)
    assert message.startswith("conv(x) raised ValueError: operands could not be broadcast"), message
    assert "Hint: check the output size" in message
    assert isinstance(info.value.__cause__, ValueError)  # the learner's traceback is kept


def test_round_off_prints_as_zero_so_messages_read_the_same_everywhere():
    assert checks.format_values([-2.0, -1.0, -4.22e-17, 1.39e-16]) == "[-2, -1, 0, 0]"
    assert checks.format_number(-1.39e-16) == "0"
    assert checks.format_number(0.000123) == "0.000123"
    assert checks.format_number(3.2e-9) == "3.2000e-09"
    with pytest.raises(checks.LabCheckError, match=r"^x\[0\] = 0, expected 1$"):
        checks.check_close("x", [1e-17], [1.0])


def test_report_prints_one_line_counting_the_checks_that_passed(capsys):
    with checks.report("sigmoid"):
        checks.check_close("a", [1.0], [1.0])
        checks.check_scalar("b", 2.0, 2.0)
        checks.check_shape("c", np.zeros((2, 3)), (2, 3))
        checks.check_true(True, "never shown")
    assert capsys.readouterr().out == "\u2713 sigmoid: 4 checks passed\n"
    with checks.report("one"):
        checks.check_true(True, "never shown")
    assert capsys.readouterr().out == "\u2713 one: 1 check passed\n"


def test_report_prints_nothing_when_a_check_fails(capsys):
    with pytest.raises(checks.LabCheckError):
        with checks.report("sigmoid"):
            checks.check_true(True, "passes")
            checks.check_true(False, "fails")
    assert capsys.readouterr().out == ""


def test_an_unwritten_answer_is_named_as_such():
    def stub(x):
        raise NotImplementedError()
    with pytest.raises(LabCheckError, match=r"^sigmoid\(x\) is not written yet: fill in the cell"):
        checks.check_call("sigmoid(x)", stub, 1.0)


def test_check_tuple_names_the_parts_expected_and_what_came_back():
    checks.check_tuple("linear_backward", (1, 2, 3), ["dx", "dW", "db"])
    with pytest.raises(LabCheckError, match=r"^linear_backward should return the tuple "
                                            r"\(dx, dW, db\), got list: \[1, 2\]$"):
        checks.check_tuple("linear_backward", [1, 2], ["dx", "dW", "db"])
    with pytest.raises(LabCheckError, match=r"got NoneType: None"):
        checks.check_tuple("rnn_forward", None, ["h", "cache"])


def test_the_first_line_gives_the_numbers_and_the_label_appears_once():
    message = fails_with(lambda: check_close(
        "dx for (N, T, D, H) = (3, 5, 2, 4), against finite differences", -X, X))
    first, context, hint = message.splitlines()
    assert first == "dx[0, 0] = 5.5, expected -5.5; 12 of 12 entries differ"
    assert context == "  (dx for (N, T, D, H) = (3, 5, 2, 4), against finite differences)"
    assert hint.startswith("  Hint: every entry has the opposite sign")
    assert message.count("(N, T, D, H)") == 1


def test_a_prose_label_is_named_whole_before_its_numbers():
    message = fails_with(lambda: check_close("the path of momentum", X + 1, X))
    assert message.startswith("the path of momentum, entry [0, 0] = -4.5, expected -5.5; "
                              "12 of 12 entries differ\n  Hint: every entry is off"), message
    fails_with(lambda: check_scalar("the fraction of dropped entries", 0.5, 0.3),
               "the fraction of dropped entries is 0.5, expected 0.3")
    fails_with(lambda: check_scalar("a.grad (it held 0.25 before)", 2.0, 2.25),
               "a.grad = 2, expected 2.25\n  (it held 0.25 before)")


def test_failure_text_wraps_every_line_to_the_width_and_keeps_every_word():
    message = fails_with(lambda: check_close(
        "dense_forward(x, W, b) for x (4, 3), W (3, 3), with a label long enough to wrap", X.T,
        X))
    text = checks.failure_text("LabCheckError", message)
    lines = text.splitlines()
    assert lines[0].startswith("\u2717 LabCheckError: dense_forward(x, W, b) has shape (4, 3), "
                               "expected (3, 4)")
    assert max(map(len, lines)) <= checks.MESSAGE_WIDTH < max(map(len, message.splitlines()))
    assert text.split() == ["\u2717", "LabCheckError:", *message.split()]
    hint = lines.index(next(line for line in lines if line.startswith("  Hint:")))
    assert lines[hint + 1].startswith("    ") and not lines[hint + 1].startswith("     ")
    assert checks.failure_text("LabCheckError", text.split(": ", 1)[1]) == text  # idempotent


def test_one_wrong_number_gets_a_factor_hint_only_for_a_simple_factor():
    """Any number is some multiple of another: 1.99 times says nothing, 3 times may."""
    assert "times the expected value" not in fails_with(lambda: check_scalar("g", 9.425, 4.725))
    assert "off by the same amount" not in fails_with(lambda: check_scalar("g", 9.425, 4.725))
    fails_with(lambda: check_scalar("g", 3 * 4.725, 4.725), "3 times the expected value")
    fails_with(lambda: check_scalar("g", 4.725 / 2, 4.725), "0.5 times the expected value")


def test_a_long_call_is_shortened_only_when_its_numbers_would_not_fit_the_first_line():
    long_call = "conv_forward_naive(x, W, b, stride=1, padding=0) for x (2, 3, 6, 7)"
    message = fails_with(lambda: check_close(long_call, X + 1, X))
    assert message.startswith("conv_forward_naive(...)[0, 0] = -4.5, expected -5.5; 12 of 12 "
                              f"entries differ\n  ({long_call})"), message
    fails_with(lambda: check_scalar("best_epoch([0.9, 0.7, 0.5])", 1, 3),
               "best_epoch([0.9, 0.7, 0.5]) = 1, expected 3")
