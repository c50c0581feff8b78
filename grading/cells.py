"""`SortOutCells`: the honest mistakes a learner makes with cells never stop a submission's
grading. Runs first among autograde's sanitize preprocessors (nbgrader_config.py).

What JupyterLab lets a learner do, and what stock nbgrader 0.9 does with it:
- duplicate a cell (same metadata, same grade id): DeduplicateIds empties the nbgrader
  metadata of all but the last copy, and OverwriteCells then fails the whole submission
  (KeyError 'grade_id' when it looks for missing cells);
- mark a cell of their own in the nbgrader toolbar (a grade id the gradebook does not know):
  OverwriteCells deletes its grade id but leaves `grade: true`, and fails the same way;
- delete an answer cell with its test cell: OverwriteCells puts the test back after the cell
  before it in the source, which is gone too (KeyError);
- drag a test cell above the answer it tests: the test runs before the answer exists.

Here, for every grade id of the gradebook one cell keeps it (see `_keeper`) with the roles
the gradebook gives it (grade, solution, locked, points); every other cell loses its nbgrader
metadata and runs as the learner's plain code or text, ungraded. A deleted locked or graded cell
is put back (after the nearest cell before it in the source that is still there), and a test cell is moved below the answers and setup code that come before it in the
source. Each change is logged as a warning naming the cell.
"""
from dataclasses import dataclass

import nbformat

from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import NbGraderPreprocessor, OverwriteCells

ROLES = ("grade", "solution", "locked", "task")


@dataclass
class Recorded:
    """What the gradebook holds about one cell of the source notebook."""
    grade_id: str
    order: int  # position among the source's recorded cells
    cell_type: str
    locked: bool
    grade: bool
    solution: bool
    task: bool
    points: float | None

    @property
    def is_test(self):
        return self.grade and not self.solution and self.cell_type == "code"

    @property
    def runs_before_tests(self):
        """Code a later test needs: an answer, or locked setup code."""
        return self.cell_type == "code" and not self.is_test and (self.solution or self.locked)

    def describe(self):
        if self.is_test:
            return f"test cell {self.grade_id}"
        if self.solution:
            return f"answer cell {self.grade_id}"
        return f"locked {'setup' if self.cell_type == 'code' else self.cell_type} cell " \
               f"{self.grade_id}"


def recorded_cells(source):
    """{grade id: Recorded} of a source notebook (the gradebook's Notebook), in its order."""
    points = {cell.name: float(cell.max_score) for cell in source.grade_cells}
    solutions = {cell.name for cell in source.solution_cells}
    tasks = {cell.name for cell in source.task_cells}
    return {cell.name: Recorded(cell.name, order, cell.cell_type, bool(cell.locked),
                                cell.name in points, cell.name in solutions, cell.name in tasks,
                                points.get(cell.name))
            for order, cell in enumerate(source.source_cells)}


def _locked_cell(source_cell):
    """A locked, ungraded cell of the source (setup code or markdown) as recorded in the
    gradebook; nbgrader's OverwriteCells then checks it like any other locked cell."""
    make = (nbformat.v4.new_code_cell if source_cell.cell_type == "code"
            else nbformat.v4.new_markdown_cell)
    cell = make(source_cell.source)
    cell.metadata.update(deletable=False, editable=False, nbgrader={
        "grade": False, "grade_id": source_cell.name, "locked": True, "solution": False,
        "schema_version": 3, "checksum": source_cell.checksum})
    return cell


def _meta(cell):
    meta = cell.metadata.get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def _what_the_learner_made(meta):
    roles = [role for role in ROLES if meta.get(role)]
    return "a cell marked " + "/".join(roles) if roles else "a cell with nbgrader metadata"


def _precedes(other, test):
    """Whether `other` (a Recorded or None) is a test cell that comes before `test` in the
    source."""
    return bool(other and other.is_test and other.order < test.order)


class SortOutCells(NbGraderPreprocessor):
    """One cell per recorded grade id, every other nbgrader cell a plain cell, deleted graded
    cells put back and test cells below what they test (see the module's docstring)."""

    def preprocess(self, nb, resources):
        with Gradebook(resources["nbgrader"]["db_url"]) as gradebook:
            try:
                source = gradebook.find_notebook(resources["nbgrader"]["notebook"],
                                                 resources["nbgrader"]["assignment"])
            except MissingEntry:
                return nb, resources
            recorded = recorded_cells(source)
            self.keep_one_cell_per_grade_id(nb, recorded)
            self.put_back_deleted_cells(nb, recorded, source,
                                        OverwriteCells(config=self.config))
        self.move_tests_below_what_they_test(nb, recorded)
        return nb, resources

    # -- one cell per grade id -------------------------------------------------------------
    def keep_one_cell_per_grade_id(self, nb, recorded):
        copies = {}  # grade id -> indices of the cells carrying it
        for index, cell in enumerate(nb.cells):
            if "nbgrader" not in cell.metadata:
                continue
            meta = _meta(cell)
            grade_id = meta.get("grade_id")
            if grade_id in recorded:
                copies.setdefault(grade_id, []).append(index)
            elif any(meta.get(role) for role in ROLES):
                self._demote(cell, f"cell {index}: {_what_the_learner_made(meta)} under the "
                                   f"grade id {grade_id!r}, which this lab does not have")
            else:  # nbgrader metadata with no role: nothing to grade, nothing to tell
                del cell.metadata["nbgrader"]
        for grade_id, indices in copies.items():
            keeper = self._keeper(nb, indices, recorded[grade_id])
            for index in indices:
                if index != keeper:
                    self._demote(nb.cells[index], f"cell {index}: a copy of "
                                 f"{recorded[grade_id].describe()} (cell {keeper} is graded)")
            self._set_roles(nb.cells[keeper], recorded[grade_id])

    @staticmethod
    def _keeper(nb, indices, record):
        """Which copy keeps the grade id: of the copies of the recorded cell type, the last
        for an answer (later definitions replace earlier ones, so the tests see the last
        copy's), the first for a test or locked cell (its place in the source; its content is
        put back from the gradebook anyway)."""
        same_type = [i for i in indices if nb.cells[i].cell_type == record.cell_type] or indices
        return same_type[-1] if record.solution else same_type[0]

    def _demote(self, cell, why):
        kind = "plain code" if cell.cell_type == "code" else f"a plain {cell.cell_type} cell"
        self.log.warning("%s: run as %s, not graded", why, kind)
        del cell.metadata["nbgrader"]

    @staticmethod
    def _set_roles(cell, record):
        """The roles the gradebook gives this cell, whatever the learner set in its toolbar
        (nbgrader's OverwriteCells puts back only `locked` and the points of graded cells)."""
        meta = cell.metadata["nbgrader"]
        meta.update(grade=record.grade, solution=record.solution, locked=record.locked)
        if record.task:
            meta["task"] = True
        else:
            meta.pop("task", None)
        if record.grade:
            meta["points"] = record.points
        else:
            meta.pop("points", None)

    # -- deleted cells ---------------------------------------------------------------------
    def put_back_deleted_cells(self, nb, recorded, source, overwrite):
        """Every locked cell (setup code, markdown) the learner deleted, and every graded cell
        when nbgrader's `OverwriteCells.add_missing_cells` is on, goes back after the nearest
        cell before it in the source that is still there (nbgrader's OverwriteCells puts a
        graded cell after the cell before it in the source, and fails when that one is gone
        too; it puts back no other locked cell). A deleted answer cell is not put back: its
        tests fail."""
        present = {_meta(c).get("grade_id") for c in nb.cells} - {None}
        position = 0  # index in nb.cells after the last source cell seen so far
        for cell in source.source_cells:
            record = recorded[cell.name]
            if cell.name in present:
                position = 1 + next(i for i, c in enumerate(nb.cells)
                                    if _meta(c).get("grade_id") == cell.name)
                continue
            if record.grade and overwrite.add_missing_cells:
                # nbgrader's own cell (a NotebookNode only at its top level)
                restored = nbformat.from_dict(overwrite.missing_cell_transform(
                    cell, record.points, is_solution=record.solution))
            elif record.locked and not record.grade:
                restored = _locked_cell(cell)
            else:
                continue
            self.log.warning("%s is missing: put back from the gradebook at cell %d",
                             record.describe(), position)
            nb.cells.insert(position, restored)
            position += 1

    # -- test cells below what they test ---------------------------------------------------
    def move_tests_below_what_they_test(self, nb, recorded):
        """A test cell must run after every answer and locked setup cell that comes before it
        in the source; one the learner dragged above them is moved just below the last of
        them (below the test cells already there that come before it in the source)."""
        def record(cell):
            return recorded.get(_meta(cell).get("grade_id"))

        tests = sorted((r for r in map(record, nb.cells) if r and r.is_test),
                       key=lambda r: r.order)
        for test in tests:
            index = next(i for i, c in enumerate(nb.cells) if record(c) is test)
            needed = [i for i, c in enumerate(nb.cells) if record(c) and
                      record(c).runs_before_tests and record(c).order < test.order]
            if not needed or max(needed) < index:
                continue
            cell = nb.cells.pop(index)
            target = max(needed)  # just below the last cell it needs (one place up now)
            last_needed = record(nb.cells[target - 1])
            while target < len(nb.cells) and _precedes(record(nb.cells[target]), test):
                target += 1
            nb.cells.insert(target, cell)
            self.log.warning("cell %d: %s sat above %s, which it needs: moved below it "
                             "(now cell %d)", index, test.describe(), last_needed.describe(),
                             target)
