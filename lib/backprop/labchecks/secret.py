"""What a lab's hidden tests draw their inputs from, and compute their expected values with, so
that knowing the public source notebooks (solutions/) does not let an answer special-case them.

    from backprop.labchecks import reference, secret_rng
    rng = secret_rng("linear_backward")          # a generator only the course secret decides
    x, W, dout = (rng.standard_normal(s) for s in [(5, 3), (3, 4), (5, 4)])
    expected = reference.linear_backward(dout, x, W)   # the source notebook's own answer

`secret_rng(test_id)` is a NumPy generator seeded with HMAC-SHA256(course secret, grading key
and `test_id`). The course secret is the instructor's (environment variable
``BACKPROP_COURSE_SECRET``, or ``c.SandboxedExecute.course_secret`` in a configuration file that
is never committed; see docs/instructors.md); the grading key names the lab, notebook and
student, so each student's hidden inputs are their own. `reference` gives the functions and
classes of the source notebook's answer and setup cells.

While autograding, the grader's checker process (grading/checker.py) installs all three with
`use_grading_context`: the secret (never in the student's kernel), the key, and a `reference`
built by `reference_from_cells` from the source notebook's cells, apart from the student's
answers. Outside the grader (the solution notebook run by nbval or by hand), the secret comes
from the environment, or, when it is unset, from the operating system's entropy (other draws
on every run), and `reference` is the notebook's own namespace: in a solution notebook, its
answers.
"""
import ast
import hashlib
import hmac
import os
import sys
import types

import numpy as np

SECRET_VARIABLE = "BACKPROP_COURSE_SECRET"
HOW_TO_SET = (f"set the environment variable {SECRET_VARIABLE} (a long random string, kept out "
              "of the repository, the same for every grading run of the course) or "
              "c.SandboxedExecute.course_secret in a configuration file that is not committed "
              "(e.g. ~/.jupyter/nbgrader_config.py); see docs/instructors.md, \"The course "
              "secret\"")


class CourseSecretMissing(RuntimeError):
    """Hidden tests need the course secret and none is set."""


class ReferenceMissing(RuntimeError):
    """A hidden test asked for a reference answer that is not available."""


# Set by the grader's checker (use_grading_context); None outside grading.
_grading = {"active": False, "secret": None, "key": "", "reference": None, "source": ""}


def use_grading_context(secret, key="", reference=None, source=""):
    """Grade from now on: `secret_rng` draws from `secret` and the grading `key` (lab, notebook,
    student), and `reference` is the module `reference` (None: a hidden test that uses it fails,
    naming `source`, the notebook the reference should come from)."""
    _grading.update(active=True, secret=secret or None, key=key, reference=reference,
                    source=source)


def use_reference(module):
    """Outside grading: take the reference answers from `module` (e.g. built with
    `reference_from_cells` from the solution notebook), not from the notebook's namespace."""
    _grading["reference"] = module


def course_secret():
    """The course secret: the grader's while grading, else the environment's (None if unset)."""
    if _grading["active"]:
        if not _grading["secret"]:
            raise CourseSecretMissing(f"the hidden tests need the course secret: {HOW_TO_SET}")
        return _grading["secret"]
    return os.environ.get(SECRET_VARIABLE) or None


def secret_rng(test_id):
    """A NumPy generator for the hidden test `test_id`, seeded from the course secret and the
    grading key: the same draws on every grading run of one student's notebook, draws nobody
    can compute without the secret. Outside grading, with no secret set, fresh entropy."""
    secret = course_secret()
    if secret is None:
        return np.random.default_rng()
    message = f"{_grading['key']}\0{test_id}".encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return np.random.default_rng(np.frombuffer(digest, dtype=np.uint32))


class _Reference:
    """The reference answers: ``reference.sigmoid`` is the source notebook's `sigmoid`."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        module = _grading["reference"]
        if module is None and _grading["active"]:
            raise ReferenceMissing(
                f"the hidden tests need the reference answers, which the grader reads from "
                f"the source notebook {_grading['source'] or '(unknown)'}: it must be there "
                "when grading (solutions/<lab>/<notebook>.ipynb)")
        if module is None:  # a notebook run outside the grader: its own answers
            module = sys.modules["__main__"]
        try:
            return getattr(module, name)
        except AttributeError:
            raise ReferenceMissing(f"the reference answers define no {name!r}") from None

    def __repr__(self):
        return "<the reference answers of the source notebook>"


reference = _Reference()

# What of a cell the reference keeps: definitions and imports run, computations do not (no
# training, no data loading, no output), so building it takes milliseconds.
_KEPT = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _kept(node):
    if isinstance(node, _KEPT):
        return True
    if isinstance(node, ast.Assign):  # a constant (NAMES = [...]) an answer may read
        try:
            ast.literal_eval(node.value)
        except (ValueError, TypeError, SyntaxError, RecursionError):
            return False
        return True
    return False


def reference_from_cells(cells, name="reference"):
    """A module holding what the source notebook's `cells` (the code of its setup and answer
    cells, in order) define: their imports, functions, classes and literal constants, run in a
    namespace of their own (functions call each other there). Returns ``(module, problems)``,
    problems being one line per cell that failed."""
    module = types.ModuleType(name, "The reference answers (the source notebook's cells).")
    problems = []
    for number, code in enumerate(cells, start=1):
        try:
            tree = ast.parse(code)
            tree.body = [node for node in tree.body if _kept(node)]
            exec(compile(tree, f"<reference cell {number}>", "exec"), module.__dict__)
        except Exception as error:  # reported by the caller; the other cells still count
            problems.append(f"cell {number}: {type(error).__name__}: {error}")
    return module, problems
