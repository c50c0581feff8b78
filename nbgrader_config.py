"""nbgrader configuration for Backprop Lab.

Folders: `solutions/` holds the nbgrader source notebooks, `labs/` the generated student
versions. Grading state (gradebook, exchange, submissions) lives in git-ignored places inside
the repository, so nothing outside it is touched and nothing of a class is ever committed.
"""
import os
import sys

from nbgrader.preprocessors import ClearHiddenTests, GetGrades
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

# Feedback shows the visible tests and their results, never the hidden tests' source.
c.GenerateFeedback.preprocessors = [ClearHiddenTests, GetGrades, CSSHTMLHeaderPreprocessor]
