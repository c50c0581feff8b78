"""Every graded test cell passes on the solution and fails on the blank release.

A test cell that fails on the solution would cost a correct learner points; one that passes on
the release would give points for no work. Each lab's source notebook (solutions/) and committed
release (labs/) are executed once, side by side, in their own folders. nbgrader scores a graded
code cell 0 exactly when it raises, so "passes" here means "runs without an error".
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
    solution: nbformat.NotebookNode
    release: nbformat.NotebookNode


@pytest.fixture(scope="module", params=lab_notebooks())
def executed(request):
    """The lab's solution and committed release, executed once per test session."""
    name = request.param
    release = committed_lab_or_fail(name)
    source = source_path(name)
    release_dir = LABS_DIR / name.split("/")[0]
    solution_run, release_run = execute_notebooks([
        (source, source.parent),
        (release, release_dir if release_dir.is_dir() else source.parent),
    ])
    return ExecutedLab(name, solution_run, release_run)


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


def test_graded_cells_pass_on_the_solution(executed):
    failures = [f"{_label(grade_id, cell)}:\n{cell_error(cell)}"
                for grade_id, cell in graded_test_cells(executed.solution) if cell_error(cell)]
    assert not failures, (f"graded test cells fail on solutions/{executed.name}, so a correct "
                          "answer would lose points; fix the solution or the test:\n\n"
                          + "\n\n".join(failures))


def test_graded_cells_fail_on_the_release(executed):
    passing = [_label(grade_id, cell) for grade_id, cell in graded_test_cells(executed.release)
               if not cell_error(cell)]
    assert not passing, (f"graded test cells pass on the blank labs/{executed.name}, giving "
                         f"points for no work: {passing}. Make each one call the function it "
                         "grades (the release's answer raises NotImplementedError) and check "
                         "its result.")


def test_every_solution_cell_runs(executed):
    errors = [f"cell {i} ({nbgrader_meta(cell).get('grade_id', cell.get('id'))}):\n"
              f"{cell_error(cell)}"
              for i, cell in enumerate(executed.solution.cells)
              if cell.cell_type == "code" and cell_error(cell)]
    assert not errors, (f"solutions/{executed.name} does not run cleanly:\n\n"
                        + "\n\n".join(errors))


def test_release_fails_only_for_missing_answers(executed):
    broken = [f"cell {i} ({nbgrader_meta(cell).get('grade_id', cell.get('id'))}):\n"
              f"{cell_error(cell)}"
              for i, cell in enumerate(executed.release.cells)
              if cell.cell_type == "code" and error_name(cell) in BROKEN_LAB_ERRORS]
    assert not broken, (f"labs/{executed.name} is broken beyond its missing answers (a syntax or "
                        "import error, or a cell that timed out); a learner could not work on "
                        "it:\n\n" + "\n\n".join(broken))
