"""nbgrader preprocessors for sandboxed autograding (configured in nbgrader_config.py).

- `SandboxedExecute`: nbgrader's Execute with each kernel in the sandbox of grading/sandbox.py,
  and each graded test cell run by the kernel's checker process (grading/checker.py), never in
  the kernel: the kernel only answers the checker's requests (`%graded_test`, see
  grading/kernel_startup.py), and the cell's outcome is what the checker reports.
- `LimitOutputBytes`: nbgrader's LimitOutput, plus a cap on the bytes of each cell's output
  (a single 30 MB line is one line).
- `RestoreLockedCells`: puts back every locked cell (setup code, markdown, tests) that a
  student deleted, in the source's order; nbgrader itself only puts back graded cells.
"""
import secrets

from nbclient.util import run_sync
from nbformat import v4
from nbgrader import utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import Execute, LimitOutput, NbGraderPreprocessor
from traitlets import Integer

from .sandbox import SandboxedKernelManager


def _grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def is_test_cell(cell):
    return cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell)


class SandboxedExecute(Execute):
    """Execute in a sandboxed kernel; graded test cells run in its checker process."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(*args, **kwargs)

    def create_kernel_manager(self):
        km = super().create_kernel_manager()
        km.cell_timeout = self.timeout
        return km

    async def async_execute_cell(self, cell, cell_index, execution_count=None,
                                 store_history=True):
        checker = getattr(self.km, "checker", None)
        if not (checker and is_test_cell(cell)):
            return await super().async_execute_cell(cell, cell_index, execution_count,
                                                    store_history)
        token = secrets.token_hex(16)
        timeout = self.timeout or 30
        checker.submit(token, cell.source, timeout)
        source, cell.source = cell.source, f"%graded_test {checker.socket_path} {token}"
        try:
            await super().async_execute_cell(cell, cell_index, execution_count,
                                             store_history=False)
        finally:
            cell.source = source
        report = checker.result(token, timeout=10)
        if report is None:  # the checker hung or died: this test fails, the next gets a new one
            self.log.error("The checker gave no result for %s; restarting it", _grade_id(cell))
            self.km.restart_checker()
            report = {"ok": False, "stdout": "", "stderr": "", "error": {
                "ename": "GradingError", "evalue": "the test did not finish",
                "traceback": ["GradingError: the test did not finish"]}}
        # What the student's code printed while the test called it stays; whether the test
        # passed is the checker's word alone (the kernel's own errors here are not).
        cell.outputs = [o for o in cell.outputs if o.output_type in ("stream", "display_data")]
        for name in ("stdout", "stderr"):
            if report.get(name):
                cell.outputs.append(v4.new_output("stream", name=name, text=report[name]))
        if not report.get("ok"):
            error = report.get("error") or {}
            cell.outputs.append(v4.new_output(
                "error", ename=str(error.get("ename", "Error")),
                evalue=str(error.get("evalue", "")),
                traceback=[str(line) for line in error.get("traceback", [])]))
        return cell

    # nbconvert calls the synchronous wrapper, which is bound to the method it wraps.
    execute_cell = run_sync(async_execute_cell)


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


class RestoreLockedCells(NbGraderPreprocessor):
    """Put back, from the gradebook, every locked cell missing from a submission (a deleted
    setup cell otherwise makes every later test fail). Runs after nbgrader's OverwriteCells,
    which restores the contents of locked cells that are present and re-adds graded ones."""

    def preprocess(self, nb, resources):
        with Gradebook(resources["nbgrader"]["db_url"]) as gradebook:
            try:
                source = gradebook.find_notebook(resources["nbgrader"]["notebook"],
                                                 resources["nbgrader"]["assignment"])
            except MissingEntry:
                return nb, resources
            present = {_grade_id(c) for c in nb.cells if utils.is_locked(c)
                       or utils.is_grade(c) or utils.is_solution(c)} - {None}
            position = 0  # index in nb.cells after the last source cell seen so far
            for cell in source.source_cells:
                if cell.name in present:
                    position = 1 + next(i for i, c in enumerate(nb.cells)
                                        if _grade_id(c) == cell.name)
                elif cell.locked:
                    self.log.warning("Locked cell %s is missing: put back", cell.name)
                    nb.cells.insert(position, self._cell(cell))
                    position += 1
        return nb, resources

    @staticmethod
    def _cell(source_cell):
        make = v4.new_code_cell if source_cell.cell_type == "code" else v4.new_markdown_cell
        cell = make(source_cell.source)
        cell.metadata.update(deletable=False, editable=False, nbgrader={
            "grade": False, "grade_id": source_cell.name, "locked": True, "solution": False,
            "schema_version": 3, "checksum": source_cell.checksum})
        return cell
