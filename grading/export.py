"""Grades in the layouts learning-management systems import (`make grades FORMAT=...`).

nbgrader's own export mechanism: each class is an `nbgrader.plugins.ExportPlugin`, used as
``nbgrader export --exporter=grading.export.CanvasExport --to grades-canvas.csv``. Every file
is written with Python's csv module (fields with commas, quotes or line breaks are quoted,
text is UTF-8), and every score is the score after the late penalty (grading/late.py).

- `CsvExport`: nbgrader's own columns (one row per student and lab, the penalty in its own
  column), correctly quoted (nbgrader's CsvExportPlugin joins fields with commas unquoted).
- `CanvasExport`: the Canvas gradebook's CSV layout (``Student,ID,SIS User ID,SIS Login ID,
  Section``, one column per lab, a ``Points Possible`` row), one row per student.
- `MoodleExport`: for Moodle's "Import grades from CSV": ``First name,Last name,ID number,
  Email address``, one column per lab, ``Course total``; one row per student.

A student without a submission scores 0 once the lab's due date has passed (or when it has
none): the LMS must count missing work. While the lab is still open the cell is blank, which
both systems import as "no grade yet". docs/instructors.md, section 6, shows each import.
"""
import csv
from datetime import datetime, timezone

from nbgrader.api import MissingEntry
from nbgrader.plugins import CsvExportPlugin, ExportPlugin
from traitlets import Dict, Unicode


def points(value):
    """A score as the LMS reads it: at most two decimals, no trailing zeros (12.5, 13)."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


class _Table(ExportPlugin):
    """One row per student and one column per lab (labs in the gradebook that have notebooks,
    in due-date order), each cell the score after the late penalty."""

    default_to = "grades.csv"
    column_names = Dict(
        {}, help="The LMS's name for a lab's column, by lab: {'lab01_forward_pass': "
                 "'Lab 1 (1234)'}. Unlisted labs keep their folder name.").tag(config=True)

    def header(self, labs):
        raise NotImplementedError

    def identity(self, student):
        raise NotImplementedError

    def top_rows(self, labs):
        return []

    def total(self, scores):
        return points(sum(score for score in scores if score is not None))

    def export(self, gradebook):
        dest = self.to or self.default_to
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        labs = [lab for lab in gradebook.assignments if lab.max_score and _wanted(self, lab, None)]
        students = [s for s in gradebook.students if _wanted(self, None, s)]
        self.log.info("Exporting %d students and %d labs to %s", len(students), len(labs), dest)
        with open(dest, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(self.header([self.column_names.get(lab.name, lab.name)
                                         for lab in labs]))
            writer.writerows(self.top_rows(labs))
            for student in sorted(students, key=lambda s: (s.last_name or "", s.first_name or "",
                                                            s.id)):
                scores = [_score(gradebook, lab, student.id, now) for lab in labs]
                writer.writerow(self.identity(student)
                                + ["" if score is None else points(score) for score in scores]
                                + [self.total(scores)])


def _wanted(plugin, lab, student):
    """Whether `--assignment` and `--student` (when given) include this lab and student."""
    return ((lab is None or not plugin.assignment
             or lab.name in {str(name) for name in plugin.assignment})
            and (student is None or not plugin.student
                 or student.id in {str(name) for name in plugin.student}))


def _score(gradebook, lab, student_id, now):
    """The score after the late penalty; 0 for no submission, None (blank) while still open."""
    try:
        submission = gradebook.find_submission(lab.name, student_id)
    except MissingEntry:
        return None if lab.duedate is not None and lab.duedate > now else 0.0
    return max(0.0, submission.score - submission.late_submission_penalty)


class CanvasExport(_Table):
    """Canvas: Grades > Import. The identity columns of Canvas's own gradebook export; Canvas
    matches a row to a student by ID, SIS User ID or SIS Login ID. nbgrader's student id goes
    into `student_id_column`, the roster's `lms_user_id` (if given) into ID. The total is
    written as "Final Points", a column Canvas computes itself and ignores on import (a column
    named "Total" would become a new assignment)."""

    default_to = "grades-canvas.csv"
    IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    TOTAL = "Final Points"
    student_id_column = Unicode(
        "SIS Login ID", help="Which Canvas column holds nbgrader's student id: 'SIS Login ID' "
                             "or 'SIS User ID'.").tag(config=True)

    def header(self, labs):
        if self.student_id_column not in ("SIS Login ID", "SIS User ID"):
            raise ValueError(f"CanvasExport.student_id_column is {self.student_id_column!r}; "
                             "set it to 'SIS Login ID' or 'SIS User ID' in nbgrader_config.py")
        return self.IDENTITY + labs + [self.TOTAL]

    def top_rows(self, labs):
        # Canvas's export has this row, and its import reads new assignments' points from it.
        return [["Points Possible", "", "", "", ""] + [points(lab.max_score) for lab in labs]
                + ["(read only)"]]

    def identity(self, student):
        name = ", ".join(part for part in (student.last_name, student.first_name) if part)
        row = dict.fromkeys(self.IDENTITY, "")
        row.update({"Student": name or student.id, "ID": student.lms_user_id or "",
                    self.student_id_column: student.id})
        return [row[column] for column in self.IDENTITY]


class MoodleExport(_Table):
    """Moodle: Grades > Import > CSV file. Identify users by "Email address" (to the user
    field email) or "ID number" (nbgrader's student id, to idnumber); map each lab's column to
    its grade item, and leave "Course total" on "Ignore" (Moodle computes it)."""

    default_to = "grades-moodle.csv"
    IDENTITY = ["First name", "Last name", "ID number", "Email address"]
    TOTAL = "Course total"

    def header(self, labs):
        return self.IDENTITY + labs + [self.TOTAL]

    def identity(self, student):
        return [student.first_name or "", student.last_name or "", student.id,
                student.email or ""]


class CsvExport(CsvExportPlugin):
    """nbgrader's own export, columns unchanged, with fields quoted by the csv module."""

    KEYS = ["assignment", "duedate", "timestamp", "student_id", "last_name", "first_name",
            "email", "raw_score", "late_submission_penalty", "score", "max_score"]

    def export(self, gradebook):
        dest = self.to or "grades.csv"
        self.log.info("Exporting grades to %s", dest)
        with open(dest, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(self.KEYS)
            for lab in gradebook.assignments:
                writer.writerows(_nbgrader_row(gradebook, lab, student)
                                 for student in gradebook.students
                                 if _wanted(self, lab, student))


def _nbgrader_row(gradebook, lab, student):
    try:
        submission = gradebook.find_submission(lab.name, student.id)
    except MissingEntry:
        timestamp, raw, penalty = None, 0.0, 0.0
    else:
        timestamp, raw = submission.timestamp, submission.score
        penalty = submission.late_submission_penalty
    values = [lab.name, lab.duedate, timestamp, student.id, student.last_name,
              student.first_name, student.email, raw, penalty, max(0.0, raw - penalty),
              lab.max_score]
    return ["" if value is None else str(value) for value in values]
