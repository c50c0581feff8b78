"""Every graded test cell fails on the blank release, and the release is broken nowhere else.

A test cell that passes on the release would give points for no work. Each lab's committed
release (labs/) is executed once in its own folder. nbgrader scores a graded code cell 0 exactly
when it raises, so "passes" here means "runs without an error".

The other half, every cell of the solution (graded tests, hidden tests included, with the run's
course secret) runs without an error, is nbval's: pytest collects solutions/ (pyproject.toml's
testpaths), and a cell that raises fails its notebook's test there. Executing the solutions here
again would double their cost in every test run; the grading pipeline test
(test_grading_pipeline.py) then proves that nbgrader gives the solution full marks.
"""
from dataclasses import dataclass

import nbformat
import pytest

from notebooks import (LABS_DIR, REGENERATE, cell_error, committed_lab_or_fail, error_name,
                       execute_notebooks, graded_test_cells, lab_notebooks, nbgrader_meta,
                       source_path)

# Errors in a release that mean the lab itself is broken, not merely unanswered.
BROKEN_LAB_ERRORS = {"SyntaxError", "IndentationError", "TabError", "ImportError",
                     "ModuleNotFoundError", "KeyboardInterrupt"}  # KeyboardInterrupt: timeout


@dataclass
class ExecutedLab:
    name: str  # "<lab>/<notebook>.ipynb"
    solution: nbformat.NotebookNode  # as committed: not executed
    release: nbformat.NotebookNode  # executed


@pytest.fixture(scope="module", params=lab_notebooks())
def executed(request):
    """The lab's committed release, executed once per test session, and its source."""
    name = request.param
    release = committed_lab_or_fail(name)
    source = source_path(name)
    release_dir = LABS_DIR / name.split("/")[0]
    [release_run] = execute_notebooks([
        (release, release_dir if release_dir.is_dir() else source.parent)])
    return ExecutedLab(name, nbformat.read(source, as_version=4), release_run)


def _label(grade_id, cell):
    points = nbgrader_meta(cell).get("points", 0)
    return f"{grade_id} ({points} point{'' if points == 1 else 's'})"


def test_lab_has_graded_tests(executed):
    points = sum(nbgrader_meta(cell).get("points", 0) for _, cell in
                 graded_test_cells(executed.solution))
    assert points > 0, (f"solutions/{executed.name} has no graded test cell with points: mark "
                        "test cells grade=True, locked=True, points > 0 (nbgrader metadata).")


def test_release_has_the_same_graded_tests(executed):
    ids = [grade_id for grade_id, _ in graded_test_cells(executed.solution)]
    released = [grade_id for grade_id, _ in graded_test_cells(executed.release)]
    assert released == ids, (f"labs/{executed.name} has graded cells {released}, the source "
                             f"has {ids}. {REGENERATE}")


def test_graded_cells_fail_on_the_release(executed):
    passing = [_label(grade_id, cell) for grade_id, cell in graded_test_cells(executed.release)
               if not cell_error(cell)]
    assert not passing, (f"graded test cells pass on the blank labs/{executed.name}, giving "
                         f"points for no work: {passing}. Make each one call the function it "
                         "grades (the release's answer raises NotImplementedError) and check "
                         "its result.")


def test_release_fails_only_for_missing_answers(executed):
    broken = [f"cell {i} ({nbgrader_meta(cell).get('grade_id', cell.get('id'))}):\n"
              f"{cell_error(cell)}"
              for i, cell in enumerate(executed.release.cells)
              if cell.cell_type == "code" and error_name(cell) in BROKEN_LAB_ERRORS]
    assert not broken, (f"labs/{executed.name} is broken beyond its missing answers (a syntax or "
                        "import error, or a cell that timed out); a learner could not work on "
                        "it:\n\n" + "\n\n".join(broken))
