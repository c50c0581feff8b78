"""nbgrader configuration for Backprop Lab.

Folders: `solutions/` holds the nbgrader source notebooks, `labs/` the generated student
versions. Grading state (gradebook, exchange, submissions) lives in git-ignored places inside
the repository, so nothing outside it is touched and nothing of a class is ever committed.
"""
import os
import re
import sys

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearHiddenTests,
                                    ClearOutput, GetGrades, IgnorePattern, NbGraderPreprocessor,
                                    OverwriteCells, OverwriteKernelspec, SaveAutoGrades)

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)  # the course's grading machinery, grading/
try:
    from grading.cells import SortOutCells
    from grading.markup import StudentMarkupAsText
    from grading.preprocessors import LimitOutputBytes, SandboxedExecute
except ImportError as missing:  # this file copied without grading/: only autograde needs it
    _why = (f"grading/ must sit next to nbgrader_config.py for autograde ({missing}); copy "
            "it from the Backprop Lab repository")

    class _NeedsGrading(NbGraderPreprocessor):
        def preprocess(self, nb, resources):
            raise RuntimeError(_why)
    LimitOutputBytes = SandboxedExecute = _NeedsGrading
    SortOutCells = StudentMarkupAsText = _NeedsGrading

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

# A submission is files, nothing else (grading/exchange.py): collect takes a folder of the
# exchange's inbound only from the account its name says submitted it, and collect and
# autograde copy regular files only (no links, pipes or devices), each at most 20 MB and
# 100 MB per submission (nbgrader's kilobytes); what they refuse is logged by name. Set
# c.SafeCollect.require_owner = False where student ids are not accounts of this machine.
c.CourseDirectory.max_file_size = 20_000
c.CourseDirectory.max_dir_size = 100_000
try:
    from grading.exchange import SafeCollect, guard_nbgrader_file_reads
except ImportError:  # without grading/: nbgrader's own collect, and autograde stops (above)
    pass
else:
    c.ExchangeFactory.collect = SafeCollect
    guard_nbgrader_file_reads()

# A student's infinite loop is interrupted after this many seconds in one cell; every cell of
# every lab runs in well under a second on the solution.
c.Execute.timeout = 30
c.Execute.interrupt_on_timeout = True
# A flood of print() output is cut, so feedback stays readable and the gradebook small: 200
# lines and 100,000 characters per cell (one 30 MB line is one line).
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 60
c.LimitOutputBytes.max_bytes = 100_000

# A test cell the student deleted is put back from the gradebook and run, never silently 0;
# SortOutCells (below) puts back any other locked cell (setup code, markdown) too.
c.OverwriteCells.add_missing_cells = True

# Autograding runs every submission's kernel in a sandbox (grading/sandbox.py; needs root and
# Debian's bubblewrap, see docs/instructors.md): no access to anything but a private copy of the
# student's own folder, no network, rlimits, and every process it starts dies with it. Graded
# test cells reach the kernel through a file it deletes before running them. Without root or
# bubblewrap, autograde stops with a message saying so; to grade unsandboxed anyway (as stock
# nbgrader does), set c.SandboxedKernelManager.sandbox = False. `nbgrader validate` (the
# learner's Validate button) is not affected: it runs the learner's own notebook as they are.
#
# Honest mistakes with cells never stop a submission's grading (grading/cells.py): of cells
# sharing a grade id (a duplicated cell) one is graded, and cells the learner marked in the
# nbgrader toolbar under grade ids the lab does not have run as plain cells; each is named in
# autograde's log. SortOutCells does what nbgrader's DeduplicateIds would, without leaving
# cells that make OverwriteCells fail.
c.Autograde.sanitize_preprocessors = [SortOutCells, ClearOutput, OverwriteKernelspec,
                                      OverwriteCells, CheckCellMetadata]
# What the learner's code displays, and the markdown they write, reach autograded/ (which
# feedback and formgrader render) as text: HTML, Markdown, JavaScript, SVG and widget outputs
# are dropped (their text/plain form stays; images stay), the learner's markdown has its HTML
# escaped (grading/markup.py). nbconvert's SanitizeHTML does it, set to drop rich outputs
# rather than clean them: cleaned HTML can still look like the page's score.
c.SanitizeHTML.sanitized_output_types = set()
c.Autograde.autograde_preprocessors = [SandboxedExecute, StudentMarkupAsText, IgnorePattern,
                                       ClearMetadataPreprocessor, LimitOutputBytes,
                                       SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
# `nbgrader validate` prints a failed test cell's code and its error, each line after a 4-space
# indent and cut with "..." beyond width - 3 characters (the Validate dialog shows the error
# uncut, in a box that scrolls sideways). A failed check's lines are at most
# backprop.checks.MESSAGE_WIDTH = 88 characters, the labs' test cells' code lines at most 94,
# so 102 shows both whole (tests/test_validate_messages.py). The ===== rules are `width` long.
c.Validator.width = 102

# Late work (grading/late.py; due dates in duedates.csv, `make duedates`): a submission loses
# 10% of the lab's points for each day, or part of a day, after its due date, never more than
# it scored (so after 10 days it earns 0). Change the rule here: per_day = 0 switches penalties
# off, grace_minutes counts the first minutes after the due date as on time. `make duedates`
# (run by `make grades`) applies a changed rule to work already graded.
# `make grades FORMAT=canvas|moodle|csv` exports with grading/export.py (nbgrader's own export
# with quoted fields by default).
try:
    from grading.export import CsvExport
    from grading.late import LatePolicy
except ImportError:  # without grading/: nbgrader's defaults (no late penalty)
    pass
else:
    c.AssignLatePenalties.plugin_class = LatePolicy
    c.ExportApp.plugin_class = CsvExport
c.LatePolicy.per_day = 0.10
c.LatePolicy.grace_minutes = 0


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
# Feedback pages and formgrader (which renders autograded/ with this config) sanitize HTML and
# leave out scripts of outputs, should an autograded notebook hold any (one graded before
# StudentMarkupAsText was configured). nbgrader's templates render markdown cells unsanitized:
# StudentMarkupAsText has escaped the learner's.
c.HTMLExporter.sanitize_html = True
