"""The course's late-work policy and the due dates it applies to (docs/instructors.md, 0 and 6).

`LatePolicy` is nbgrader's LateSubmissionPlugin with the course's default rule: a submission
loses `per_day` of the notebook's points for every day, or part of a day, it is late (after
`grace_minutes`), never more than it scored. nbgrader_config.py installs it
(`c.AssignLatePenalties.plugin_class`); `nbgrader autograde` calls it for each late submission
and stores the penalty in the gradebook, and `nbgrader export` subtracts it.

`duedates.csv` (one row per lab: ``lab,due``) is the one place due dates are kept;
`apply_due_dates` writes them to the gradebook and recomputes the penalty of every submission
already graded, so a changed due date needs no regrading.
"""
import csv
import math
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from nbgrader.api import MissingEntry
from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float

DAY_SECONDS = 24 * 60 * 60
DUE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")


class CourseInputError(ValueError):
    """An instructor's input (a file, a name) is wrong; the message says what to do."""


class LatePolicy(LateSubmissionPlugin):
    """`per_day` of the points per started day late, after a grace period; capped at the score."""

    per_day = Float(0.10, help="Fraction of the notebook's points lost per day, or part of a "
                               "day, late (0.10: 10%; 0 switches late penalties off)."
                    ).tag(config=True)
    grace_minutes = Float(0.0, help="Minutes after the due date that still count as on time."
                          ).tag(config=True)

    def days_late(self, total_seconds_late):
        """Started days late after the grace period: 1 s to 24 h is 1 day."""
        seconds = max(0.0, total_seconds_late - 60 * self.grace_minutes)
        return math.ceil(seconds / DAY_SECONDS)

    def penalty(self, score, max_score, total_seconds_late):
        lost = self.per_day * self.days_late(total_seconds_late) * max_score
        return round(min(score, lost), 6)  # 3.9, not 3.9000000000000004

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        # nbgrader passes the notebook's score only; its points come from the notebook being
        # graded, which AssignLatePenalties (this plugin's parent) holds.
        grader = self.parent
        if not hasattr(grader, "notebook_id"):
            raise RuntimeError("LatePolicy is the late-submission plugin of nbgrader's "
                               "AssignLatePenalties (c.AssignLatePenalties.plugin_class); "
                               "elsewhere, call LatePolicy().penalty(score, points, seconds)")
        notebook = grader.gradebook.find_submission_notebook(
            grader.notebook_id, grader.assignment_id, student_id)
        return self.penalty(score, notebook.max_score, total_seconds_late)


def parse_due(text, where="duedates.csv"):
    """A due date as naive UTC (the gradebook's convention) from ``YYYY-MM-DD HH:MM[:SS] ZONE``
    where ZONE is an IANA name (Europe/Berlin) or UTC; blank is no due date (None)."""
    text = (text or "").strip()
    if not text:
        return None
    stamp, _, zone = text.rpartition(" ")
    for fmt in DUE_FORMATS:
        try:
            local = datetime.strptime(stamp, fmt)
            break
        except ValueError:
            continue
    else:
        raise CourseInputError(f"{where}: due date {text!r} is not 'YYYY-MM-DD HH:MM ZONE' "
                               "(e.g. 2026-10-15 23:59 Europe/Berlin)")
    try:
        tz = timezone.utc if zone.upper() == "UTC" else ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CourseInputError(f"{where}: {zone!r} in {text!r} is not a time zone; use a name "
                               "such as Europe/Berlin, America/New_York or UTC") from None
    return local.replace(tzinfo=tz).astimezone(timezone.utc).replace(tzinfo=None)


def read_due_dates(path, labs):
    """``{lab: due (naive UTC) or None}`` from duedates.csv; `labs` are the labs that exist."""
    path = Path(path)
    if not path.is_file():
        raise CourseInputError(f"{path} is missing: create it with the header 'lab,due' and one "
                               "row per lab (docs/instructors.md, section 0)")
    with open(path, newline="", encoding="utf-8-sig") as handle:  # -sig: as Excel saves it
        rows = list(csv.reader(handle))
    if not rows or [cell.strip() for cell in rows[0][:2]] != ["lab", "due"]:
        raise CourseInputError(f"{path}: the first line must be the header 'lab,due'")
    dues = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path.name}, line {number}"
        if len(row) != 2:
            raise CourseInputError(f"{where}: expected 2 fields 'lab,due', found {len(row)}")
        lab = row[0].strip()
        if lab not in labs:
            raise CourseInputError(f"{where}: no lab {lab!r} in solutions/ (labs: "
                                   f"{', '.join(sorted(labs))})")
        if lab in dues:
            raise CourseInputError(f"{where}: {lab} has a due date already (line above)")
        dues[lab] = parse_due(row[1], where)
    return dues


def apply_due_dates(gradebook, dues, policy):
    """Write `dues` to the gradebook (an assignment not there yet is added, as `nbgrader db
    assignment add` does) and set every graded submission's late penalty by `policy`.
    Returns ``{lab: number of submissions with a penalty}``."""
    penalized = {}
    for lab, due in dues.items():
        try:
            assignment = gradebook.find_assignment(lab)
        except MissingEntry:
            if due is None:
                continue
            gradebook.add_assignment(lab, duedate=due)
        else:
            assignment.duedate = due
        gradebook.db.commit()
        penalized[lab] = 0
        for submission in gradebook.assignment_submissions(lab):
            late = submission.total_seconds_late
            for notebook in submission.notebooks:
                penalty = policy.penalty(notebook.score, notebook.max_score, late) if late else 0
                notebook.late_submission_penalty = penalty or None
                penalized[lab] += bool(penalty)
        gradebook.db.commit()
    return penalized
