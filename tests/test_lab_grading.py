"""Every lab has graded tests, and its committed release has the same graded cells as its source.

What the graded cells do is tested where they run anyway, so that no notebook is executed twice:

- every cell of the solution (graded tests, hidden tests included, with the run's course secret)
  runs without an error: nbval, which collects solutions/ (pyproject.toml's testpaths);
- nbgrader gives the solution full marks and the blank release 0 (every graded cell fails on
  it, so no point is given for no work), and the blank release fails only for its missing
  answers, never for a syntax or import error or a timeout: the grading pipeline test
  (test_grading_pipeline.py), which grades both for every lab in the real sandbox.
"""
import pytest

from notebooks import (REGENERATE, committed_lab_or_fail, graded_test_cells, lab_notebooks,
                       nbgrader_meta, source_path)
import nbformat


@pytest.fixture(scope="module", params=lab_notebooks())
def lab(request):
    """``(name, source, release)``: the lab's source and committed release, as committed."""
    name = request.param
    return name, nbformat.read(source_path(name), as_version=4), committed_lab_or_fail(name)


def test_lab_has_graded_tests(lab):
    name, source, _ = lab
    points = sum(nbgrader_meta(cell).get("points", 0) for _, cell in graded_test_cells(source))
    assert points > 0, (f"solutions/{name} has no graded test cell with points: mark "
                        "test cells grade=True, locked=True, points > 0 (nbgrader metadata).")


def test_release_has_the_same_graded_tests(lab):
    name, source, release = lab
    ids = [grade_id for grade_id, _ in graded_test_cells(source)]
    released = [grade_id for grade_id, _ in graded_test_cells(release)]
    assert released == ids, (f"labs/{name} has graded cells {released}, the source "
                             f"has {ids}. {REGENERATE}")
