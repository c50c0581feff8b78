"""Checks and small steps for the instructor's `make` targets (docs/instructors.md).

    python tools/course_cli.py check autograde --lab lab01_forward_pass
    python tools/course_cli.py check regrade --lab lab01_forward_pass --student ada
    python tools/course_cli.py roster students.csv      # checked, then `nbgrader db student import`
    python tools/course_cli.py duedates                 # duedates.csv -> gradebook, late penalties

`check` runs before each target: bad input (a lab that does not exist, an unknown student, an
empty or missing submitted/, a gradebook without the lab) is one line on stderr saying what to
do, and exit status 2, instead of a traceback from nbgrader. It reads files and the gradebook
only; it never changes anything.
"""
import argparse
import csv
import difflib
import os
import re
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

COMMANDS = ("release", "autograde", "feedback", "grades", "regrade", "similarity", "audit")
FORMATS = ("csv", "canvas", "moodle")
ROSTER_COLUMNS = ("id", "first_name", "last_name", "email", "lms_user_id")
# A student id names a folder under submitted/: no path separators, spaces or leading dot.
STUDENT_ID = re.compile(r"^[^\s/\\.][^\s/\\]*$")


class Refused(Exception):
    """The command cannot run; the message says what to do."""


class Course:
    def __init__(self, root):
        self.root = Path(root)
        self.gradebook = self.root / ".nbgrader" / "gradebook.db"

    def labs(self):
        folder = self.root / "solutions"
        return sorted(d.name for d in folder.iterdir()
                      if d.is_dir() and any(d.glob("*.ipynb"))) if folder.is_dir() else []

    def submitters(self, lab):
        """Students with a folder submitted/<student>/<lab> (any lab for '*')."""
        return sorted(p.parent.name for p in (self.root / "submitted").glob(f"*/{lab}")
                      if p.is_dir())

    def labs_in_gradebook(self):
        if not self.gradebook.is_file():
            return set()
        with sqlite3.connect(f"file:{self.gradebook}?mode=ro", uri=True) as db:
            try:
                return {name for (name,) in db.execute("select name from assignment")}
            except sqlite3.Error:
                return set()


def _listing(names, limit=8):
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _closest(lab, labs):
    """The lab meant by a mistyped name: same number (lab1, lab01), else the nearest spelling."""
    number = re.search(r"\d+", lab)
    same = [name for name in labs if number and re.match(rf"lab0*{int(number.group())}_", name)]
    return (same or difflib.get_close_matches(lab, labs, n=1, cutoff=0.6) or [None])[0]


def _lab_exists(course, lab, command, allow_all=True):
    example = "lab01_forward_pass"
    if not lab:
        raise Refused(f"name the lab: make {command} LAB={example}"
                      + (" (or LAB='*' for every lab)" if allow_all else ""))
    if lab == "*":
        if not allow_all:
            raise Refused(f"make {command} takes one lab at a time: LAB={example}")
        return
    if lab not in course.labs():
        close = _closest(lab, course.labs())
        hint = f"did you mean {close}?" if close else f"labs: {_listing(course.labs())}"
        raise Refused(f"there is no lab {lab!r} in solutions/: {hint}")


def _submissions(course, lab, command):
    """The students who submitted `lab`; refused when there are none."""
    where = course.root / "submitted"
    layout = f"submitted/<student>/{lab}/{lab}.ipynb" if lab != "*" else \
        "submitted/<student>/<lab>/<lab>.ipynb"
    if not where.is_dir() or not any(where.iterdir()):
        raise Refused(f"submitted/ is {'empty' if where.is_dir() else 'missing'}: put each "
                      f"student's notebook at {layout} (or run nbgrader collect {lab}), then "
                      f"make {command} again")
    students = course.submitters(lab)
    if not students:
        raise Refused(f"no student has submitted {lab}: expected {layout} (submitted/ holds "
                      f"{_listing(sorted(p.name for p in where.iterdir() if p.is_dir()))})")
    return students


def _released(course, lab, command):
    known = course.labs_in_gradebook()
    missing = course.labs() if lab == "*" else [lab]
    missing = [name for name in missing if name not in known and course.submitters(name)]
    if missing:
        raise Refused(f"the gradebook has no record of {missing[0]}: run make release "
                      f"LAB={missing[0]} first (it records the tests autograde restores)")


def check(course, command, lab=None, student=None, fmt=None):
    """Raise Refused with what to do when `make <command>` cannot run as asked."""
    if command == "release":
        _lab_exists(course, lab, command)
    elif command == "autograde":
        _lab_exists(course, lab, command)
        _submissions(course, lab, command)
        _released(course, lab, command)
    elif command == "regrade":
        _lab_exists(course, lab, command, allow_all=False)
        if not student:
            raise Refused(f"name the student: make regrade LAB={lab} STUDENT=<id in submitted/>")
        students = _submissions(course, lab, command)
        if student not in students:
            raise Refused(f"unknown student {student!r}: no submitted/{student}/{lab}/ "
                          f"(students who submitted {lab}: {_listing(students)})")
        _released(course, lab, command)
    elif command == "feedback":
        _lab_exists(course, lab, command)
        graded = sorted(p.parent.name for p in (course.root / "autograded").glob(f"*/{lab}"))
        if not graded:
            raise Refused(f"nothing of {lab} is autograded yet: run make autograde LAB={lab} "
                          "first")
    elif command == "grades":
        if fmt not in FORMATS:
            raise Refused(f"unknown FORMAT={fmt!r}: use FORMAT=canvas, FORMAT=moodle or "
                          "FORMAT=csv (the default)")
        if not course.labs_in_gradebook():
            raise Refused("the gradebook is empty: run make release and make autograde first")
    elif command == "similarity":
        _lab_exists(course, lab, command, allow_all=False)
        students = _submissions(course, lab, command)
        if len(students) < 2:
            raise Refused(f"only {students[0]} has submitted {lab}: a similarity report needs "
                          "two submissions or more")
    elif command == "audit":
        if lab and lab != "*":
            _lab_exists(course, lab, command)
        _submissions(course, lab or "*", command)
    else:
        raise Refused(f"no check for {command!r}: one of {', '.join(COMMANDS)}")


def check_roster(path):
    """Raise Refused naming the first bad line of a roster for `nbgrader db student import`."""
    path = Path(path)
    if not path.is_file():
        raise Refused(f"no roster {path}: make students ROSTER=students.csv, a CSV file with "
                      f"the header {','.join(ROSTER_COLUMNS)}")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            rows = list(csv.reader(handle))
    except UnicodeDecodeError:
        raise Refused(f"{path} is not UTF-8 text: save it as 'CSV UTF-8'") from None
    if not rows:
        raise Refused(f"{path} is empty: its first line must be the header "
                      f"{','.join(ROSTER_COLUMNS)}")
    header = [key.strip() for key in rows[0]]
    unknown = [key for key in header if key not in ROSTER_COLUMNS]
    if "id" not in header or unknown:
        what = f"unknown column {unknown[0]!r}" if unknown else "no column 'id'"
        raise Refused(f"{path}, line 1: {what}; the columns nbgrader imports are "
                      f"{', '.join(ROSTER_COLUMNS)} (id required)")
    seen = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(field.strip() for field in row):
            continue
        where = f"{path}, line {number}"
        if len(row) != len(header):
            raise Refused(f"{where}: {len(row)} fields where the header has {len(header)} "
                          "(a name with a comma must be in double quotes)")
        fields = dict(zip(header, (field.strip() for field in row)))
        student = fields["id"]
        if not STUDENT_ID.match(student):
            raise Refused(f"{where}: student id {student!r} cannot name a folder under "
                          "submitted/ (no spaces or slashes, not empty, no leading dot)")
        if student in seen:
            raise Refused(f"{where}: student id {student!r} is also on line {seen[student]}")
        seen[student] = number
        email = fields.get("email", "")
        if email and "@" not in email:
            raise Refused(f"{where}: email {email!r} of {student} has no '@'")
    if not seen:
        raise Refused(f"{path} lists no student below its header")
    return len(seen)


def import_roster(path, root=REPO_ROOT):
    """`nbgrader db student import` of the checked roster. nbgrader reads the file in the
    locale's encoding and takes a byte-order mark (Excel's "CSV UTF-8") as part of the first
    column's name, so it gets a copy in UTF-8 without one, read in UTF-8 mode."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "roster.csv"
        with open(copy, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)
        return subprocess.call([str(Path(sys.executable).parent / "nbgrader"), "db", "student",
                                "import", str(copy)], cwd=root,
                               env=dict(os.environ, PYTHONUTF8="1"))


def duedates(course, path):
    """duedates.csv -> gradebook, and every graded submission's late penalty recomputed."""
    from nbgrader.api import Gradebook
    from traitlets.config.loader import PyFileConfigLoader

    from grading.late import LatePolicy, apply_due_dates, read_due_dates

    dues = read_due_dates(course.root / path, set(course.labs()))
    if not course.gradebook.is_file():
        print(f"{path}: read; no gradebook yet, so nothing to apply (make release creates it)")
        return
    config = PyFileConfigLoader("nbgrader_config.py", path=str(course.root)).load_config()
    policy = LatePolicy(config=config)
    with Gradebook(f"sqlite:///{course.gradebook}") as gradebook:
        penalized = apply_due_dates(gradebook, dues, policy)
    dated = sum(due is not None for due in dues.values())
    print(f"{path}: {dated} due date(s) in the gradebook; late penalties "
          f"({policy.per_day:.0%} of the points per day late): "
          + (", ".join(f"{lab} {count}" for lab, count in penalized.items() if count)
             or "none"))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=str(REPO_ROOT), help="the course folder")
    sub = parser.add_subparsers(dest="action", required=True)
    checking = sub.add_parser("check", help="check what a make target needs")
    checking.add_argument("command", choices=COMMANDS)
    checking.add_argument("--lab", default="")
    checking.add_argument("--student", default="")
    checking.add_argument("--format", default="csv")
    roster = sub.add_parser("roster", help="check a roster, then nbgrader db student import")
    roster.add_argument("path")
    roster.add_argument("--check-only", action="store_true")
    dates = sub.add_parser("duedates", help="apply duedates.csv to the gradebook")
    dates.add_argument("path", nargs="?", default="duedates.csv")
    args = parser.parse_args(argv)
    course = Course(args.root)
    try:
        if args.action == "check":
            check(course, args.command, args.lab.strip(), args.student.strip(),
                  args.format.strip())
        elif args.action == "roster":
            count = check_roster(args.path)
            if args.check_only:
                print(f"{args.path}: {count} students, ready to import")
                return 0
            return import_roster(args.path, course.root)
        else:
            from grading.late import CourseInputError
            try:
                duedates(course, args.path)
            except CourseInputError as error:
                raise Refused(str(error)) from None
    except Refused as refused:
        print(refused, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
