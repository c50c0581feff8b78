"""nbgrader preprocessors for sandboxed autograding (configured in nbgrader_config.py).

- `SandboxedExecute`: nbgrader's Execute with each kernel in the sandbox of grading/sandbox.py,
  and each graded test cell run by the kernel's checker process (grading/checker.py), never in
  the kernel: the checker runs the source notebook's setup cells in its own namespace, the
  kernel only answers its requests for the answers' names (`%graded_test`, see
  grading/kernel_startup.py), and the cell's outcome is what the checker reports; what the
  kernel printed during the test is dropped (a note says how much).
- `LimitOutputBytes`: nbgrader's LimitOutput, plus a cap on the bytes of each cell's output
  (a single 30 MB line is one line).

Deleted, duplicated and stray cells are sorted out before execution by `SortOutCells`
(grading/cells.py).
"""
import os
import secrets

from nbclient.util import run_sync
from nbformat import v4
from nbgrader import utils
from nbgrader.preprocessors import Execute, LimitOutput
from traitlets import Integer, Unicode

from .sandbox import COURSE_SECRET_VARIABLE, SandboxedKernelManager
from .source_cells import source_cells


class CourseSecretMissing(RuntimeError):
    """Autograding a notebook with hidden tests, and no course secret is set."""


def _grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def is_test_cell(cell):
    return cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)


class SandboxedExecute(Execute):
    """Execute in a sandboxed kernel; graded test cells run in its checker process.

    What the checker runs comes from the instructor's source notebook (`source_cells`), never
    from the submission: its locked setup cells, each when the notebook reaches it (and any
    the submission lacks, before the first test that follows it in the source), in the
    checker's own namespace as well as in the kernel; and the source's code of each graded test
    cell, for the first cell of the submission that carries its grade id. Every other cell,
    whatever its metadata says, runs in the kernel as the student's code."""

    course_secret = Unicode("", help=(
        "The course secret the hidden tests draw their inputs from (backprop.labchecks.secret). "
        f"Empty: the environment variable {COURSE_SECRET_VARIABLE}. Set it in a configuration "
        "file that is never committed, never in the course's nbgrader_config.py.")
    ).tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(*args, **kwargs)
        self._source = None  # the source's SourceCells, for the notebook being graded
        self._grading = {}  # resources["nbgrader"]: assignment, notebook, student
        self._context_sent = False  # whether the checker has the hidden tests' context
        self._sent = []  # grade ids of the setup cells the checker has run, in order
        self._tested = set()  # grade ids of the test cells already run

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        km.cell_timeout = self.timeout
        return km

    def preprocess(self, nb, resources=None, km=None):
        self._source = source_cells(self.config, resources or {}, self.log)
        self._sent, self._tested = [], set()
        self._grading = dict((resources or {}).get("nbgrader", {}))
        self._context_sent = False
        if self._source is not None and self._source.hidden_tests and not self._secret():
            raise CourseSecretMissing(
                "autograding needs the course secret, from which the hidden tests draw their "
                f"inputs: set the environment variable {COURSE_SECRET_VARIABLE} (the same "
                "long random string for every grading run of the course, kept out of the "
                "repository) or c.SandboxedExecute.course_secret in a configuration file that "
                "is not committed (e.g. ~/.jupyter/nbgrader_config.py); see "
                "docs/instructors.md, \"The course secret\".")
        if (self._source is not None and self._source.hidden_tests
                and self._source.reference is None):
            self.log.error("The source notebook is missing: the hidden tests have no reference "
                           "answers to compare with, and fail")
        return super().preprocess(nb, resources, km)

    def _secret(self):
        return self.course_secret or os.environ.get(COURSE_SECRET_VARIABLE, "")

    async def async_execute_cell(self, cell, cell_index, execution_count=None,
                                 store_history=True):
        checker = getattr(self.km, "checker", None)
        grade_id = _grade_id(cell) if cell.cell_type == "code" else None
        if checker and self._source is None and is_test_cell(cell):
            return self._unsourced(cell)
        source = self._source
        if checker and source and not self._context_sent:
            self._send_context()
        if not (checker and source and grade_id):
            return await super().async_execute_cell(cell, cell_index, execution_count,
                                                    store_history)
        if grade_id in source.setup and grade_id not in self._sent:
            self._catch_up(grade_id)
            token = self._submit_setup(grade_id)
            try:
                return await super().async_execute_cell(cell, cell_index, execution_count,
                                                        store_history)
            finally:
                self._setup_result(grade_id, token)
        if grade_id in source.tests and grade_id not in self._tested:
            self._tested.add(grade_id)
            self._catch_up(grade_id)
            return await self._graded_test(cell, cell_index, execution_count, grade_id)
        return await super().async_execute_cell(cell, cell_index, execution_count,
                                                store_history)

    # -- the hidden tests' context in the checker
    def _send_context(self):
        """Give the checker the course secret, the grading key (lab, notebook, student: each
        student's hidden inputs are their own) and the source's setup and answer cells, from
        which it builds the reference answers (grading/checker.py, `run_context`)."""
        info = self._grading
        key = "/".join(str(info.get(k, "")) for k in ("assignment", "notebook", "student"))
        token = secrets.token_hex(16)
        self._context_sent = True
        self._checker().submit_context(token, self._secret(), key,
                                       f"{info.get('assignment')}/{info.get('notebook')}.ipynb",
                                       self._source.reference)
        report = self.km.checker.result(token, timeout=self._setup_timeout)
        if report is None:
            self.log.error("The checker did not take the hidden tests' context")
        elif not report.get("ok"):
            error = report.get("error") or {}
            self.log.error("The hidden tests' context failed in the checker (%s: %s); hidden "
                           "tests that need it will fail", error.get("ename"),
                           str(error.get("evalue", ""))[:500])

    # -- setup cells in the checker
    @property
    def _setup_timeout(self):
        """Seconds a setup cell may take in the checker: more than in the kernel, since both
        run it at once (imports, matplotlib's font cache) on a loaded machine."""
        return max(self.timeout or 30, SETUP_SECONDS)

    def _checker(self):
        """The kernel's checker, started again (with the setup cells it had run) if it died."""
        if not self.km.checker.alive():
            self.log.warning("The checker stopped; starting a new one")
            self._restart_checker()
        return self.km.checker

    def _submit_setup(self, grade_id):
        token = secrets.token_hex(16)
        self._checker().submit(token, self._source.setup[grade_id], self._setup_timeout,
                               kind="setup")
        self._sent.append(grade_id)
        return token

    def _setup_result(self, grade_id, token):
        report = self.km.checker.result(token, timeout=self._setup_timeout)
        if report is None:
            self.log.warning("Setup cell %s did not finish in the checker; restarting it",
                             grade_id)
            self._sent.remove(grade_id)
            self._restart_checker()
        elif not report.get("ok"):
            error = report.get("error") or {}
            self.log.warning("Setup cell %s failed in the checker (%s: %s); the tests that "
                             "need what it defines will fail", grade_id, error.get("ename"),
                             str(error.get("evalue", ""))[:300])

    def _catch_up(self, grade_id):
        """Run in the checker the source's setup cells before `grade_id` that the notebook
        has not reached (a submission missing one, or with cells moved)."""
        for missing in self._source.setup_before(grade_id):
            if missing not in self._sent:
                self.log.warning("Setup cell %s not reached before %s: run in the checker "
                                 "from the source", missing, grade_id)
                self._setup_result(missing, self._submit_setup(missing))

    def _restart_checker(self):
        """A new checker, given the setup cells the old one had run (one that does not
        finish now is left out)."""
        self.km.restart_checker()
        self._send_context()
        for grade_id in list(self._sent):
            token = secrets.token_hex(16)
            self.km.checker.submit(token, self._source.setup[grade_id], self._setup_timeout,
                                   kind="setup")
            if self.km.checker.result(token, timeout=self._setup_timeout) is None:
                self.log.warning("Setup cell %s did not finish in the new checker", grade_id)
                self._sent.remove(grade_id)
                return self._restart_checker()

    # -- graded test cells
    async def _graded_test(self, cell, cell_index, execution_count, grade_id):
        checker = self._checker()
        code = self._source.tests[grade_id]
        if not cell.source.endswith(code):  # OverwriteCells restores it: this is not expected
            self.log.warning("Test cell %s differs from the source's: the source's code is run "
                             "and shown", grade_id)
            cell.source = code
        token = secrets.token_hex(16)
        timeout = self.timeout or 30
        checker.submit(token, code, timeout, answers=self._source.answers)
        source, cell.source = cell.source, f"%graded_test {checker.socket_path} {token}"
        try:
            await super().async_execute_cell(cell, cell_index, execution_count,
                                             store_history=False)
        finally:
            cell.source = source
        report = checker.result(token, timeout=10)
        if report is None:  # the checker hung or died: this test fails, the next gets a new one
            self.log.error("The checker gave no result for %s; restarting it", grade_id)
            self._restart_checker()
            report = _failed("the test did not finish")
        # Whether the test passed, and what it printed, is the checker's word alone. What the
        # student's code printed or displayed in the kernel while the test called it is not
        # kept: it could show the test's inputs (a function that prints its arguments).
        printed = sum(_size(output) for output in cell.outputs
                      if output.output_type in ("stream", "display_data", "execute_result"))
        cell.outputs = []
        if printed:
            cell.outputs.append(v4.new_output("stream", name="stdout", text=(
                f"(your code printed {printed} characters during this test; output of graded "
                "tests is not kept)\n")))
        _add_report(cell, report)
        return cell

    def _unsourced(self, cell):
        """A graded test cell of a notebook whose source cannot be found: never run in the
        kernel (it holds hidden tests), failed with a message for the instructor."""
        self.log.error("No source for this notebook: test cell %s is not run", _grade_id(cell))
        cell.outputs = []
        _add_report(cell, _failed("the grader could not find this notebook's source, so this "
                                  "test was not run; ask your instructor"))
        return cell

    # nbconvert calls the synchronous wrapper, which is bound to the method it wraps.
    execute_cell = run_sync(async_execute_cell)


SETUP_SECONDS = 120  # the least a setup cell may take in the checker


def _failed(message):
    return {"ok": False, "stdout": "", "stderr": "", "error": {
        "ename": "GradingError", "evalue": message, "traceback": [f"GradingError: {message}"]}}


def _size(output):
    """Characters of an output (its text, or the longest of its representations)."""
    if output.output_type == "stream":
        return len(output.get("text", ""))
    sizes = [sum(map(len, v)) if isinstance(v, list) else len(str(v))
             for v in output.get("data", {}).values()]
    return max(sizes, default=0)


def _add_report(cell, report):
    """The checker's printed output and error, as the cell's outputs."""
    for name in ("stdout", "stderr"):
        if report.get(name):
            cell.outputs.append(v4.new_output("stream", name=name, text=report[name]))
    if not report.get("ok"):
        error = report.get("error") or {}
        cell.outputs.append(v4.new_output(
            "error", ename=str(error.get("ename", "Error")),
            evalue=str(error.get("evalue", "")),
            traceback=[str(line) for line in error.get("traceback", [])]))


class LimitOutputBytes(LimitOutput):
    """LimitOutput (lines) and at most `max_bytes` characters of text output per cell."""

    max_bytes = Integer(100_000, help="characters of stream, text and error output kept per "
                                      "cell (-1: no limit)").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        cell, resources = super().preprocess_cell(cell, resources, index)
        if cell.cell_type != "code" or self.max_bytes < 0:
            return cell, resources
        budget, kept = self.max_bytes, []
        for output in cell.outputs:
            budget = self._cut(output, budget)
            if budget is not None:
                kept.append(output)
            budget = budget or 0
        cell.outputs = kept
        return cell, resources

    def _cut(self, output, budget):
        """Shorten `output` to `budget` characters; the budget left, None to drop it."""
        note = f"\n... output cut: more than {self.max_bytes} characters in this cell ...\n"
        if output.output_type == "stream":
            if budget <= 0:
                return None
            if len(output.text) > budget:
                output.text = output.text[:budget] + note
            return budget - len(output.text)
        if output.output_type == "error":
            output.evalue = output.evalue[:min(len(output.evalue), max(budget, 2000))]
            lines, used = [], 0
            for line in output.traceback:
                if used + len(line) > max(budget, 4000):
                    lines.append(note.strip())
                    break
                lines.append(line)
                used += len(line)
            output.traceback = lines
            return budget - used
        data = output.get("data", {})
        for mime in list(data):
            value = data[mime]
            size = sum(map(len, value)) if isinstance(value, list) else len(str(value))
            if size > budget:
                del data[mime]
            else:
                budget -= size
        if not data and output.output_type in ("display_data", "execute_result"):
            data["text/plain"] = note.strip()
        return budget
