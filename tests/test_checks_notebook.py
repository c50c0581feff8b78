"""In a notebook, a failed lab check shows its message alone, and still fails the cell.

nbgrader scores a graded cell 0 exactly when its outputs hold an error; the message must be the
first thing the learner reads (in the cell and in Validate's dialog), without the test code.
"""
import nbformat
from nbclient import NotebookClient


def _run(*sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    NotebookClient(nb, allow_errors=True, timeout=60, kernel_name="python3").execute()
    return [cell.outputs for cell in nb.cells]


def test_a_failed_check_is_an_error_output_showing_only_its_message():
    setup, passing, failing, other = _run(
        "from backprop import checks",
        "with checks.report('double'):\n    checks.check_close('2x', [2.0, 4.0], [2.0, 4.0])",
        "hidden_secret = 41\nchecks.check_close('double(x)', [2.0, 5.0], [2.0, 4.0])",
        "1 / 0")
    assert setup == []
    assert passing[0]["text"] == "\u2713 double: 1 check passed\n"
    (error,) = failing
    assert error["output_type"] == "error" and error["ename"] == "LabCheckError"
    assert error["traceback"] == ["\u2717 LabCheckError: " + error["evalue"]]
    assert "double(x)[1] = 5, expected 4; 1 of 2 entries differ" in error["evalue"]
    assert "hidden_secret" not in "".join(error["traceback"])
    # other errors keep IPython's traceback: it points into the learner's own code
    assert other[0]["ename"] == "ZeroDivisionError" and len(other[0]["traceback"]) > 1


def test_when_the_learners_function_raises_the_message_points_at_their_line():
    _, _, (error,) = _run(
        "from backprop import checks",
        "def double(x):\n    return x * undefined_name",
        "checks.check_call('double(x)', double, 2.0, hint='did you define every name?')")
    assert error["ename"] == "LabCheckError"
    assert error["traceback"][0].startswith("\u2717 LabCheckError: double(x) raised NameError")
    assert error["traceback"][1] == "  (raised at Cell In[2], line 2: return x * undefined_name)"
