"""backprop.claims: the check each lesson puts beside a measured claim in its prose."""
import numpy as np
import pytest

from backprop.claims import ClaimError, claim


def test_a_true_claim_prints_what_it_checked(capsys):
    claim(np.float64(0.05) < 0.1, "the loss falls below 0.1")
    assert capsys.readouterr().out == "\u2713 the loss falls below 0.1\n"


def test_a_false_claim_fails_and_names_the_sentence():
    with pytest.raises(ClaimError, match="the loss falls below 0.1"):
        claim(0.5 < 0.1, "the loss falls below 0.1")


def test_a_false_claim_is_an_assertion_error():
    assert issubclass(ClaimError, AssertionError)


@pytest.mark.parametrize("condition", [np.array([True, False]), 1, None, "yes"])
def test_only_a_bool_is_a_condition(condition):
    with pytest.raises(TypeError, match="condition"):
        claim(condition, "something")


def test_the_statement_must_be_said():
    with pytest.raises(TypeError, match="statement"):
        claim(True, "  ")
