"""Hidden tests that knowing the public repository does not help to pass (issue 21, item 2).

A student who reads solutions/ knows every hidden test's code. The strongest answer they can
write from it special-cases the inputs: run the tests once, store what each function returned
for each input, and return the stored value when an input comes again (and anything otherwise).
Here that student even knows a course secret (secret A) and their grading key, so their stored
table covers every visible and hidden check of lab 01 under secret A.

Graded by the real path (nbgrader autograde, the sandbox when the machine has it, the checker),
that answer scores every special-cased test cell under secret A, and none under secret B: the
hidden tests draw other inputs, and their expected values come from the reference answers in
the checker. Without any course secret, autograde stops with a message saying how to set one.
"""
import base64
import os
import pickle
import shutil
import sys

import nbformat
import pytest
from nbgrader.api import Gradebook

from notebooks import REPO_ROOT, graded_test_cells, source_path
from submissions import Lab, Submission, _OFF_BY_HALF, _functions, _wrapped
from test_grading_pipeline import (COURSE_ID, COURSE_SECRET, NO_SANDBOX, GradedCourse,
                                   _make_course, _submit)

sys.path.insert(0, str(REPO_ROOT))
from grading.source_cells import read_source_notebook  # noqa: E402

pytestmark = pytest.mark.grading
LAB = "lab01_forward_pass"
NAME = f"{LAB}/{LAB}.ipynb"
STUDENT = "special_caser"
SECRET_A, SECRET_B = "the secret the student learned", "the instructor's real secret"
# The answers the student special-cases (the pure functions); build_and_train is left blank,
# so its test fails under either secret (and costs no training time).
SPECIAL_CASED = ["sigmoid", "tanh", "relu", "dense_forward", "mlp_forward", "predict"]

# How the student recognises an input: the same code records the calls and, in the submitted
# answer, looks them up. Arrays by dtype, shape and bytes (a list as the array it makes).
FINGERPRINT = '''
import hashlib as _hashlib
import numpy as _np


def _plain(value):
    if isinstance(value, dict):
        return ("dict", tuple(sorted((str(k), _plain(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple, _np.ndarray, float, int, _np.generic)):
        try:
            array = _np.asarray(value)
        except ValueError:  # a list of arrays of different shapes
            array = None
        if array is not None and array.dtype != object:
            return ("array", array.dtype.str, array.shape, array.tobytes())
    if isinstance(value, (list, tuple)):
        return ("seq", tuple(_plain(v) for v in value))
    return ("other", repr(value))


def _fingerprint(name, args, kwargs):
    return _hashlib.sha256(repr((name, _plain(list(args)), _plain(kwargs))).encode()).hexdigest()
'''


def _recorded_calls(secret, key):
    """{fingerprint: result} of every call lab 01's test cells make to the special-cased
    answers, the source notebook run in this process with the hidden tests' context the
    grader would give (`secret`, grading `key`)."""
    from backprop.labchecks import secret as course_secret

    path = source_path(NAME)
    reference, problems = course_secret.reference_from_cells(read_source_notebook(path).reference)
    assert not problems, problems
    helpers = {}
    exec(FINGERPRINT, helpers)
    table = {}

    def recording(function):
        def call(*args, **kwargs):
            fingerprint = helpers["_fingerprint"](function.__name__, args, kwargs)
            table[fingerprint] = function(*args, **kwargs)
            return table[fingerprint]
        return call

    namespace = {"__name__": "__main__"}
    cwd = os.getcwd()
    os.chdir(path.parent)
    course_secret.use_grading_context(secret, key, reference, str(path))
    try:
        for cell in nbformat.read(path, as_version=4).cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            if cell.cell_type != "code" or grade_id in (None, "test_build_and_train"):
                continue
            exec(compile(cell.source, grade_id, "exec"), namespace)
            for name in set(SPECIAL_CASED) & set(namespace):
                if not hasattr(namespace[name], "recording"):
                    namespace[name] = recording(namespace[name])
                    namespace[name].recording = True
    finally:
        course_secret._grading.update(active=False, secret=None, key="", reference=None)
        os.chdir(cwd)
    return table


def _special_casing_submission(lab, table):
    """Lab 01 answered by a student who returns the stored result for an input they have seen
    and a wrong one (the right one shifted by 0.5) for any other."""
    stored = base64.b64encode(pickle.dumps(table)).decode()
    lookup = (FINGERPRINT + _OFF_BY_HALF + "import base64, pickle, sys\n"
              f"_STORED = pickle.loads(base64.b64decode({stored!r}))\n"
              "def _stored_or_wrong(args, kwargs, value):  # called by the answer's function\n"
              "    name = sys._getframe(1).f_code.co_name\n"
              "    found = _STORED.get(_fingerprint(name, args, kwargs))\n"
              "    return _off_by_half(value) if found is None else found\n")
    sources = {answer: lookup + _wrapped(lab, answer, "_stored_or_wrong(args, kwargs, value)")
               for answer in lab.answer_ids
               if set(_functions(lab.student_code(answer))) & set(SPECIAL_CASED)}
    sources["build_and_train"] = None  # left as released
    return Submission(lab.answered(**sources), 0)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    course = GradedCourse(tmp_path_factory.mktemp("secret-course"))
    _make_course(course.root)
    shutil.rmtree(course.root / "solutions")  # only lab 01
    shutil.copytree(source_path(NAME).parent, course.root / "solutions" / LAB)
    run = course.nbgrader("generate_assignment", LAB, "--force")
    assert run.returncode == 0, course.log("generate_assignment")[-3000:]
    with Gradebook(course.db_url, COURSE_ID) as gradebook:
        gradebook.update_or_create_student(STUDENT)
    lab = Lab(nbformat.read(source_path(NAME), as_version=4),
              nbformat.read(course.root / "labs" / NAME, as_version=4), NAME)
    table = _recorded_calls(SECRET_A, f"{LAB}/{LAB}/{STUDENT}")
    _submit(course.root, STUDENT, LAB, {f"{LAB}.ipynb": _special_casing_submission(lab, table)})
    course.lab = lab
    return course


def _autograde(course, secret):
    course.secret = secret  # GradedCourse.nbgrader sets BACKPROP_COURSE_SECRET to it
    sandbox = [] if not NO_SANDBOX else ["--SandboxedKernelManager.sandbox=False"]
    return course.nbgrader("autograde", LAB, "--force", "--Execute.timeout=20", *sandbox)


def _passed_cells(course):
    """Grade ids of lab 01's test cells that scored their points."""
    with Gradebook(course.db_url, COURSE_ID) as gradebook:
        return {grade_id for grade_id, _ in graded_test_cells(course.lab.solution)
                if gradebook.find_grade(grade_id, LAB, LAB, STUDENT).score
                == course.lab.test_points[grade_id]}


def _score(course):
    with Gradebook(course.db_url, COURSE_ID) as gradebook:
        return gradebook.find_submission(LAB, STUDENT).score


def _special_cased_tests(course):
    """Grade ids of the test cells of the special-cased answers (one each)."""
    tests = {f"test_{name}" for name in SPECIAL_CASED}
    assert tests <= set(course.lab.test_points), sorted(course.lab.test_points)
    return tests


def test_the_special_casing_answer_passes_with_the_secret_it_was_made_for(course):
    """The control: the stored table does pass every test it was made for, visible and hidden
    checks alike (so the next test can fail only because of the secret)."""
    run = _autograde(course, SECRET_A)
    assert run.returncode == 0, course.log("autograde")[-4000:]
    missed = _special_cased_tests(course) - _passed_cells(course)
    assert not missed, (f"the answer special-cased for secret A fails {sorted(missed)} under "
                        "secret A: the recording does not match what the grader runs")
    assert _score(course) == sum(course.lab.test_points[t] for t in _special_cased_tests(course))


def test_the_special_casing_answer_fails_with_another_secret(course):
    run = _autograde(course, SECRET_B)
    assert run.returncode == 0, course.log("autograde")[-4000:]
    passed = _special_cased_tests(course) & _passed_cells(course)
    assert not passed, (f"an answer that stores the results for secret A's inputs passes "
                        f"{sorted(passed)} under secret B: those hidden tests do not depend on "
                        "the course secret")
    assert _score(course) == 0
    graded = nbformat.read(course.root / "autograded" / STUDENT / NAME, as_version=4)
    printed = {grade_id: "".join(o.get("text", "") for o in cell.outputs)
               for grade_id, cell in graded_test_cells(graded)}
    visible_only = [t for t in _special_cased_tests(course) if "checks passed" not in printed[t]]
    assert not visible_only, (f"{visible_only} failed their visible checks: the stored table "
                              "should pass those, and fail the hidden tests only")


def test_autograde_without_a_course_secret_stops_with_a_message_saying_how_to_set_it(course):
    run = _autograde(course, "")
    log = course.log("autograde")
    assert run.returncode != 0, "autograde graded the hidden tests without a course secret"
    assert ("autograding needs the course secret" in log and COURSE_SECRET in log
            and "docs/instructors.md" in log), log[-3000:]
    assert not (course.root / "autograded" / STUDENT / NAME).exists(), (
        "a notebook was graded without the course secret")

