"""backprop.labchecks.secret: what hidden tests draw their inputs from and compare with."""
import sys
import types

import numpy as np
import pytest

from backprop.labchecks import secret


@pytest.fixture
def grading():
    """Grading context installed for one test, and removed after it."""
    yield secret.use_grading_context
    secret._grading.update(active=False, secret=None, key="", reference=None, source="")


def draws(test_id="test_x"):
    return secret.secret_rng(test_id).random(4)


def test_the_same_secret_key_and_test_give_the_same_draws(grading):
    grading("course secret", "lab01/lab01/ada")
    assert np.array_equal(draws(), draws())


@pytest.mark.parametrize("other", [("another secret", "lab01/lab01/ada", "test_x"),
                                   ("course secret", "lab01/lab01/bob", "test_x"),
                                   ("course secret", "lab02/lab02/ada", "test_x"),
                                   ("course secret", "lab01/lab01/ada", "test_y")])
def test_another_secret_student_lab_or_test_draws_otherwise(grading, other):
    grading("course secret", "lab01/lab01/ada")
    first = draws()
    grading(other[0], other[1])
    assert not np.allclose(first, draws(other[2]))


def test_grading_without_a_secret_fails_saying_how_to_set_it(grading):
    grading(None, "lab01/lab01/ada")
    with pytest.raises(secret.CourseSecretMissing, match="BACKPROP_COURSE_SECRET"):
        secret.secret_rng("test_x")


def test_outside_grading_the_environments_secret_is_used(monkeypatch):
    monkeypatch.setenv(secret.SECRET_VARIABLE, "course secret")
    assert np.array_equal(draws(), draws())
    monkeypatch.delenv(secret.SECRET_VARIABLE)
    assert not np.array_equal(draws(), draws())  # fresh entropy


def test_reference_builds_definitions_and_skips_computations():
    module, problems = secret.reference_from_cells([
        "import numpy as np\nSCALE = 2.0\nprint('setup')\n",
        "def double(x):\n    return SCALE * np.asarray(x)\n"
        "trained = double(1) / 0  # a computation: not run\n",
        "def quadruple(x):\n    return double(double(x))\n"])
    assert problems == []
    assert module.quadruple(1.5) == 6.0 and not hasattr(module, "trained")


def test_a_failing_reference_cell_is_reported_and_the_others_kept():
    module, problems = secret.reference_from_cells(["import no_such_module_here\n",
                                                    "def f():\n    return 1\n"])
    assert len(problems) == 1 and "cell 1" in problems[0] and module.f() == 1


def test_reference_is_the_installed_answers_while_grading(grading):
    answers = types.SimpleNamespace(sigmoid=lambda x: "the reference's")
    grading("course secret", "k", answers)
    assert secret.reference.sigmoid(0) == "the reference's"
    with pytest.raises(secret.ReferenceMissing, match="no 'tanh'"):
        secret.reference.tanh


def test_reference_without_answers_while_grading_names_the_source(grading):
    grading("course secret", "k", None, "lab01/lab01.ipynb")
    with pytest.raises(secret.ReferenceMissing, match="lab01/lab01.ipynb"):
        secret.reference.sigmoid


def test_outside_grading_reference_is_the_notebooks_own_namespace(monkeypatch):
    main = types.ModuleType("__main__")
    main.sigmoid = "the notebook's"
    monkeypatch.setitem(sys.modules, "__main__", main)
    assert secret.reference.sigmoid == "the notebook's"
