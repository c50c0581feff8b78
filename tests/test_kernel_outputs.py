"""The grading kernel cuts what a cell prints and an error's text before sending them to the
grader (grading/kernel_startup.py, `_cap_outputs`): nbgrader's own cut comes only after it has
received the whole message (a 200 MB error message held 1.77 GB in the grader)."""
import nbformat
import pytest
from nbclient import NotebookClient

from notebooks import REPO_ROOT

LIMIT = 200_000  # characters, as in _cap_outputs
CUT = "output cut in the kernel"


@pytest.fixture(scope="module")
def outputs():
    """Each cell's outputs, run by a kernel with the grading start-up code (unsandboxed)."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code) for code in (
        "for i in range(3):\n    print('a' * 100_000)",
        "raise ValueError('x' * 50_000_000)",
        "class Loud(Exception):\n    def __str__(self):\n        return 'y' * 50_000_000\n"
        "raise Loud()",
        "print('short'); import sys; print('also short', file=sys.stderr)",
    )]
    startup = REPO_ROOT / "grading" / "kernel_startup.py"
    NotebookClient(nb, allow_errors=True, timeout=120,
                   extra_arguments=[f"--IPKernelApp.exec_files={startup}"]).execute()
    return [cell.outputs for cell in nb.cells]


def test_printed_output_is_cut_per_cell(outputs):
    text = "".join(o.text for o in outputs[0] if o.output_type == "stream")
    assert LIMIT <= len(text) < LIMIT + 100 and CUT in text


@pytest.mark.parametrize("cell, name", [(1, "ValueError"), (2, "Loud")])
def test_an_errors_message_and_traceback_are_cut(outputs, cell, name):
    (error,) = [o for o in outputs[cell] if o.output_type == "error"]
    assert error.ename == name
    assert len(error.evalue) < LIMIT + 100 and CUT in error.evalue
    assert sum(map(len, error.traceback)) < LIMIT + 100


def test_short_output_is_untouched_in_the_next_cell(outputs):
    assert [(o.name, o.text) for o in outputs[3]] == [("stdout", "short\n"),
                                                      ("stderr", "also short\n")]
