"""backprop.checks.fresh(): lab test cells get checks that an answer cell cannot switch off.

An answer cell runs in the test cells' process, so it can replace the checks or NumPy's
comparisons. The lab pipeline test (test_grading_pipeline.py, the tamper_* students) proves the
same through nbgrader; these tests pin the behaviour down quickly.
"""
import numpy as np
import pytest

import backprop.checks
from backprop.checks import LabCheckError, fresh

never_fail = lambda *args, **kwargs: None  # noqa: E731 (what a tampering student writes)


def test_fresh_checks_pass_right_values_and_fail_wrong_ones():
    checks = fresh()
    checks.check_close("x", np.ones(3), np.ones(3))
    with pytest.raises(LabCheckError, match=r"x\[0\] = 0, expected 1"):
        checks.check_close("x", np.zeros(3), np.ones(3))


def test_replacing_the_module_functions_does_not_reach_a_fresh_copy(monkeypatch):
    for name in ("check_close", "check_scalar", "check_shape", "check_true"):
        monkeypatch.setattr(backprop.checks, name, never_fail)
    checks = fresh()
    with pytest.raises(LabCheckError):
        checks.check_close("x", np.zeros(3), np.ones(3))
    with pytest.raises(LabCheckError):
        checks.check_scalar("loss", 0.0, 1.0)
    with pytest.raises(LabCheckError):
        checks.check_shape("x", np.zeros(3), (2,))
    with pytest.raises(LabCheckError):
        checks.check_true(False, "a failed check")


def test_replacing_numpy_comparisons_does_not_reach_a_fresh_copy(monkeypatch):
    monkeypatch.setattr(np, "allclose", lambda *args, **kwargs: True)
    monkeypatch.setattr(np, "isclose", lambda a, b, **kwargs: np.ones(np.shape(a), bool))
    monkeypatch.setattr(np, "array_equal", lambda *args, **kwargs: True)
    with pytest.raises(LabCheckError, match="3 of 3 entries differ"):
        fresh().check_close("x", np.zeros(3), np.ones(3))


def test_a_fresh_copy_raises_the_one_lab_check_error_class():
    with pytest.raises(backprop.checks.LabCheckError):
        fresh().check_true(False, "caught by the class everyone imports")
    assert fresh().LabCheckError is LabCheckError


def test_a_fresh_copy_is_new_each_time_and_leaves_the_module_alone():
    first, second = fresh(), fresh()
    assert first is not second and first is not backprop.checks
    first.check_close = never_fail
    with pytest.raises(LabCheckError):
        second.check_close("x", np.zeros(3), np.ones(3))
    assert backprop.checks.check_close is not never_fail


# -- a lab's checks (backprop.labchecks.<lab>) -------------------------------------------------
def test_every_lab_checks_module_is_captured_at_the_first_import():
    from notebooks import lab_names
    labs = {lab.split("_")[0] for lab in lab_names()}
    assert labs <= set(backprop.checks._AS_IMPORTED.labs), "a lab's checks are not captured"


def test_fresh_lab_checks_use_fresh_checks_numpy_and_gradcheck(monkeypatch):
    import backprop.gradcheck
    lab = sorted(backprop.checks._AS_IMPORTED.labs)[0]
    monkeypatch.setattr(backprop.checks, "check_close", never_fail)
    monkeypatch.setattr(backprop.gradcheck, "numerical_gradient", never_fail)
    monkeypatch.setattr(np, "allclose", lambda *args, **kwargs: True)
    module = fresh(lab)
    assert module.__name__ == f"backprop.labchecks.{lab}"
    assert module.checks is not backprop.checks and module.gradcheck is not backprop.gradcheck
    assert module.np is not np and module.np.allclose is not np.allclose
    assert module.gradcheck.numerical_gradient is not never_fail
    with pytest.raises(LabCheckError):
        module.checks.check_close("x", np.zeros(3), np.ones(3))


def test_fresh_names_the_labs_it_knows():
    with pytest.raises(ValueError, match=r"no lab checks named 'lab00'.*lab01"):
        fresh("lab00")
