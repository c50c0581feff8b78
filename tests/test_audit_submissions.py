"""tools/audit_submissions.py points an instructor at the tampering grading cannot stop, and is
quiet about honest work (every lab's own answers).

The tampering students of the simulated class are audited in test_grading_pipeline.py; here,
without running anything, the one cheat no test cell can defend against: an answer cell that
tells IPython to skip the test cells (nbgrader then gives full marks for nothing).
"""
import importlib.util
import re
import shutil

import nbformat
import pytest

from notebooks import REPO_ROOT, LABS_DIR, lab_notebooks, source_path
from submissions import STUDENTS, Lab

spec = importlib.util.spec_from_file_location("audit_submissions",
                                              REPO_ROOT / "tools" / "audit_submissions.py")
audit_submissions = importlib.util.module_from_spec(spec)
spec.loader.exec_module(audit_submissions)

SKIP_TEST_CELLS = ("get_ipython().input_transformers_cleanup.append(\n"
                   "    lambda lines: ['pass\\n'] if 'checks' in ''.join(lines) else lines)\n")


def _course(tmp_path, lab_notebook, notebook):
    """A course folder with the lab's release and one student's submission of `notebook`."""
    lab, name = lab_notebook.split("/")
    (tmp_path / "labs" / lab).mkdir(parents=True)
    shutil.copy(LABS_DIR / lab_notebook, tmp_path / "labs" / lab_notebook)
    (tmp_path / "submitted" / "student" / lab).mkdir(parents=True)
    nbformat.write(notebook, tmp_path / "submitted" / "student" / lab_notebook)
    return tmp_path


def _lab(lab_notebook):
    return Lab(nbformat.read(source_path(lab_notebook), as_version=4),
               nbformat.read(LABS_DIR / lab_notebook, as_version=4))


RELEASED = [name for name in lab_notebooks() if (LABS_DIR / name).is_file()]


@pytest.mark.parametrize("lab_notebook", RELEASED)
def test_honest_answers_are_not_flagged(tmp_path, lab_notebook):
    notebook = STUDENTS["correct"](_lab(lab_notebook)).notebook
    found = audit_submissions.audit(_course(tmp_path, lab_notebook, notebook))
    assert not found, (f"the audit flags the solution of {lab_notebook}: {found}. Make the "
                       "pattern in tools/audit_submissions.py stricter, or the answer plainer.")


@pytest.mark.parametrize("lab_notebook", RELEASED[:1])
def test_an_answer_that_makes_ipython_skip_the_tests_is_flagged(tmp_path, lab_notebook):
    lab = _lab(lab_notebook)
    first = lab.answer_ids[0]
    notebook = lab.answered(**{first: SKIP_TEST_CELLS + lab.student_code(first)})
    found = audit_submissions.audit(_course(tmp_path, lab_notebook, notebook))
    reasons = [reason for findings in found.values() for _, _, reason in findings]
    assert any("IPython" in reason for reason in reasons), found


def test_the_command_line_exits_1_and_names_student_and_line(tmp_path, capsys):
    lab_notebook = RELEASED[0]
    lab = _lab(lab_notebook)
    first = lab.answer_ids[0]
    notebook = lab.answered(**{first: "import numpy\nnumpy.allclose = lambda *a, **k: True\n"
                                      + lab.student_code(first)})
    root = _course(tmp_path, lab_notebook, notebook)
    assert audit_submissions.main(["*", "--root", str(root)]) == 1
    printed = capsys.readouterr().out
    assert "student" in printed and "numpy.allclose = lambda" in printed


@pytest.mark.parametrize("lab_notebook", RELEASED[:1])
def test_a_copy_of_a_locked_cell_holding_new_code_is_flagged(tmp_path, lab_notebook):
    """Autograde puts back the first cell of a locked grade id and runs a copy as written
    (grading/cells.py): the copy is the student's code, audited like any other; an unchanged
    copy (duplicated_test_cell) is not flagged."""
    lab = _lab(lab_notebook)
    honest = STUDENTS["duplicated_test_cell"](lab).notebook
    assert not audit_submissions.audit(_course(tmp_path / "honest", lab_notebook, honest))
    tampered = STUDENTS["duplicated_test_cell"](lab).notebook
    copies = [c for c in tampered.cells if c.metadata.get("nbgrader", {}).get("grade_id")
              == next(iter(lab.test_points))]
    copies[1].source = SKIP_TEST_CELLS
    found = audit_submissions.audit(_course(tmp_path / "tampered", lab_notebook, tampered))
    assert any("IPython" in reason for findings in found.values() for _, _, reason in findings)


@pytest.mark.parametrize("line, flagged", [
    ("model.eval()", False), ("vae.eval()  # evaluation mode", False), ("net.exec()", False),
    ("eval('np.tanh')", True), ("x = eval(code)", True), ("exec(source)", True),
    ("builtins.eval('1')", True)])
def test_builtin_eval_and_exec_are_flagged_a_layers_eval_method_is_not(line, flagged):
    machinery = audit_submissions.SUSPICIOUS["reaches into Python's machinery"]
    assert bool(re.search(machinery, line, re.MULTILINE)) == flagged, line
