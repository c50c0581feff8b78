"""nbgrader configuration for Backprop Lab.

Folders: `solutions/` holds the nbgrader source notebooks, `labs/` the generated student
versions. Grading state (gradebook, exchange, submissions) lives in git-ignored places inside
the repository, so nothing outside it is touched and nothing of a class is ever committed.
"""
import os
import re
import sys

from nbgrader.preprocessors import ClearHiddenTests, GetGrades, NbGraderPreprocessor
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

HERE = os.path.dirname(os.path.abspath(__file__))

# nbgrader runs the `alembic` command (from PATH) when it creates a new gradebook; without this,
# `.venv/bin/nbgrader ...` in a fresh clone fails unless the virtual environment is activated.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")

c.CourseDirectory.course_id = "backprop-lab"
c.CourseDirectory.root = HERE
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "labs"
# Class work, never committed (see .gitignore).
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(HERE, ".nbgrader", "gradebook.db")
c.Exchange.root = os.path.join(HERE, ".nbgrader", "exchange")
os.makedirs(os.path.join(HERE, ".nbgrader", "exchange"), exist_ok=True)

# A student's infinite loop is interrupted after this many seconds in one cell; every cell of
# every lab runs in well under a second on the solution.
c.Execute.timeout = 30
c.Execute.interrupt_on_timeout = True
# A flood of print() output is cut, so feedback stays readable and the gradebook small.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 60

# A test cell the student deleted is put back from the gradebook and run, never silently 0.
c.OverwriteCells.add_missing_cells = True
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}


class HideHiddenTestsInTracebacks(NbGraderPreprocessor):
    """A traceback shows the lines around the line that failed, which in a test cell can be
    hidden tests (ClearHiddenTests removes them from the cell's code, not from its output).
    Those lines are left out of the feedback's tracebacks; the error message stays."""

    def preprocess_cell(self, cell, resources, index):
        secret = self._secret_lines(cell.source) if cell.cell_type == "code" else set()
        for output in cell.get("outputs", []) if secret else []:
            if output.get("output_type") == "error":
                output.traceback = [self._without(frame, secret) for frame in output.traceback]
        return cell, resources

    @staticmethod
    def _secret_lines(source):
        hidden, shown, inside = set(), set(), False
        for line in source.splitlines():
            if "BEGIN HIDDEN TESTS" in line or "END HIDDEN TESTS" in line:
                inside = "BEGIN" in line
                hidden.add(line.strip())
            else:
                (hidden if inside else shown).add(line.strip())
        return {line for line in hidden - shown if len(line) > 3}

    @staticmethod
    def _without(frame, secret):
        kept = []
        for line in frame.split("\n"):
            plain = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", line)  # without terminal colours
            if not any(s in plain for s in secret):
                kept.append(line)
            elif not kept or kept[-1] != HIDDEN_NOTE:
                kept.append(HIDDEN_NOTE)
        return "\n".join(kept)


HIDDEN_NOTE = "        (hidden test: not shown)"

# Feedback shows the visible tests and their results, never the hidden tests' code (nor the
# lines a traceback shows around a failing hidden test).
c.GenerateFeedback.preprocessors = [HideHiddenTestsInTracebacks, ClearHiddenTests, GetGrades,
                                    CSSHTMLHeaderPreprocessor]
