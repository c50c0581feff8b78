"""Parallel autograding (grading/parallel.py, `make autograde LAB=... JOBS=N`) on a small class.

One throw-away course, built as the grading pipeline test builds its own, receives lab 01 from
seven students: correct, blank, half done (the later half of the answers left as released), one
whose most-used answer raises, an infinite loop (cut after the pipeline test's cell timeout), a
notebook that is not JSON (nbgrader cannot grade it) and a folder without a notebook. A copy of the course is graded one submission at a time by `nbgrader autograde`, the
original by the parallel grader with two workers; the gradebooks must hold the same grades, cell by
cell, each submission once. Then, after one student hands in again, a re-run grades only that
submission and the one that failed, and --force grades everything again.
"""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time

import nbformat
import pytest
from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from notebooks import REPO_ROOT
from submissions import STUDENTS, half_done
from test_grading_pipeline import (CELL_TIMEOUT, COURSE_ID, FIRST_LAB, NO_SANDBOX, _lab,
                                   _make_course, _submit)

sys.path.insert(0, str(REPO_ROOT))
from grading.parallel import STATE_FILE, gradebook_url, uid_slice  # noqa: E402

pytestmark = pytest.mark.grading
KINDS = ("correct", "blank", "half_done", "exception", "infinite_loop")
NOTEBOOK = f"{FIRST_LAB}.ipynb"
NBGRADER_OPTIONS = [f"--Execute.timeout={CELL_TIMEOUT}",
                    *(["--SandboxedKernelManager.sandbox=False"] if NO_SANDBOX else [])]


class Course:
    def __init__(self, root):
        self.root = root
        self.runs = []  # CompletedProcess of each grading run, in order
        self.snapshots = []  # grades after each run
        self.seconds = []  # wall-clock seconds of each run

    def parallel(self, *options):
        started = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "grading.parallel", FIRST_LAB, "--jobs", "2",
                              *options, *NBGRADER_OPTIONS], cwd=self.root, capture_output=True,
                             text=True)
        self.runs.append(run)
        self.seconds.append(time.perf_counter() - started)
        self.snapshots.append((grades(self.root), graded_files(self.root)))
        return run


def grades(root):
    """[(student, notebook, grade cell, auto score)] of every grade in the gradebook, sorted
    (a submission graded twice into the gradebook would appear twice)."""
    rows = []
    with Gradebook(f"sqlite:///{root / '.nbgrader' / 'gradebook.db'}", COURSE_ID) as gradebook:
        for submission in gradebook.assignment_submissions(FIRST_LAB):
            for notebook in submission.notebooks:
                rows += [(submission.student_id, notebook.name, grade.name, grade.auto_score)
                         for grade in notebook.grades]
    return sorted(rows, key=str)


def score(root, student):
    with Gradebook(f"sqlite:///{root / '.nbgrader' / 'gradebook.db'}", COURSE_ID) as gradebook:
        try:
            return gradebook.find_submission(FIRST_LAB, student).score
        except MissingEntry:
            return None


def graded_files(root):
    """{student: modification time of their autograded notebook}."""
    return {path.parent.parent.name: path.stat().st_mtime_ns
            for path in (root / "autograded").glob(f"*/{FIRST_LAB}/{NOTEBOOK}")}


def submissions_per_student(root):
    with sqlite3.connect(root / ".nbgrader" / "gradebook.db") as db:
        return dict(db.execute("select student_id, count(*) from submitted_assignment "
                               "group by student_id").fetchall())


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("parallel")
    _make_course(root)
    subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", FIRST_LAB, "--force"],
                   cwd=root, check=True, capture_output=True)
    lab = _lab(root, f"{FIRST_LAB}/{NOTEBOOK}")
    course = Course(root)
    course.lab, course.expected = lab, {}
    for kind in KINDS:
        submission = half_done(lab) if kind == "half_done" else STUDENTS[kind](lab)
        _submit(root, kind, FIRST_LAB, {NOTEBOOK: submission})
        course.expected[kind] = submission.points
    (root / "submitted" / "corrupt" / FIRST_LAB).mkdir(parents=True)
    (root / "submitted" / "corrupt" / FIRST_LAB / NOTEBOOK).write_text('{"cells": [')
    (root / "submitted" / "missing" / FIRST_LAB).mkdir(parents=True)
    (root / "submitted" / "missing" / FIRST_LAB / "timestamp.txt").write_text(
        "2025-01-15 12:00:00.000000 UTC")

    course.serial_root = tmp_path_factory.mktemp("serial") / "course"
    shutil.copytree(root, course.serial_root)
    started = time.perf_counter()
    course.serial = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", FIRST_LAB,
                                    *NBGRADER_OPTIONS], cwd=course.serial_root,
                                   capture_output=True, text=True)
    course.serial_seconds = time.perf_counter() - started

    course.parallel()  # 0: the class
    changed = root / "submitted" / "blank" / FIRST_LAB / NOTEBOOK
    nbformat.write(STUDENTS["correct"](lab).notebook, changed)
    course.parallel()  # 1: again, after blank handed in the solution
    course.parallel("--force")  # 2: everything again
    return course


def _log(run):
    return f"{run.stdout}\n{run.stderr}"


def test_a_submission_that_cannot_be_graded_is_named_and_the_others_are_graded(course):
    run = course.runs[0]
    assert run.returncode == 1, f"exit status {run.returncode}:\n{_log(run)[-3000:]}"
    assert f"FAILED {FIRST_LAB}/corrupt" in run.stderr
    assert f"Could not be graded (see the log): {FIRST_LAB}/corrupt" in run.stderr
    assert f"skipped {FIRST_LAB}/missing" in run.stderr
    graded, _ = course.snapshots[0]
    assert {student for student, *_ in graded} >= set(KINDS)


def test_parallel_grades_equal_serial_grades_cell_by_cell(course):
    assert course.serial.returncode == 1, _log(course.serial)[-3000:]  # the corrupt notebook
    serial, (parallel, _) = grades(course.serial_root), course.snapshots[0]
    assert parallel == serial, f"parallel {parallel}\nserial {serial}"
    for kind in KINDS:
        assert score(course.serial_root, kind) == course.expected[kind]


def test_each_submission_is_in_the_gradebook_once(course):
    counts = submissions_per_student(course.root)
    assert counts == submissions_per_student(course.serial_root)
    assert all(count == 1 for count in counts.values()), counts
    assert set(KINDS) <= set(counts)


def test_no_gradebook_error_surfaces(course):
    log = (course.root / "autograded" / ".autograde.log").read_text()
    for text_ in (log, *(_log(run) for run in course.runs)):
        assert "database is locked" not in text_
        assert "error accessing the nbgrader database" not in text_


def test_a_rerun_grades_only_what_changed_or_failed(course):
    run = course.runs[1]
    assert f"{FIRST_LAB}: 6 submissions, 2 to grade" in run.stderr, run.stderr  # blank, corrupt
    assert f"FAILED {FIRST_LAB}/corrupt" in run.stderr
    assert score(course.root, "blank") == course.lab.total
    (before, before_files), (after, after_files) = course.snapshots[0], course.snapshots[1]
    assert [g for g in after if g[0] != "blank"] == [g for g in before if g[0] != "blank"]
    assert {s for s in after_files if after_files[s] != before_files.get(s)} == {"blank"}
    state = json.loads((course.root / "autograded" / STATE_FILE).read_text())
    assert sorted(state) == sorted(f"{FIRST_LAB}/{kind}" for kind in KINDS)


def test_force_grades_everything_again(course):
    run = course.runs[2]
    assert f"{FIRST_LAB}: 6 submissions, 6 to grade" in run.stderr, run.stderr
    (before, before_files), (after, after_files) = course.snapshots[1], course.snapshots[2]
    assert after == before
    assert all(after_files[s] > before_files[s] for s in KINDS)


def test_the_rerun_takes_less_time_than_the_first_run(course, capsys):
    """It grades two submissions of six (the looping one not among them); the figures show."""
    with capsys.disabled():
        print(f"\n[parallel autograde] 6 submissions: serial nbgrader autograde "
              f"{course.serial_seconds:.0f} s; parallel (2 jobs) {course.seconds[0]:.0f} s, "
              f"re-run (one changed, one failing) {course.seconds[1]:.0f} s, --force "
              f"{course.seconds[2]:.0f} s; load average {os.getloadavg()[0]:.1f}")
    assert course.seconds[1] < course.seconds[0]


# -- the parts ---------------------------------------------------------------------------------
def test_gradebook_url_makes_a_writer_wait_for_another(tmp_path):
    """sqlite's default: a writer gives up after 5 s with `database is locked`; the workers'
    URL waits. Shown with a 0.2 s wait (fails) and `gradebook_url`'s (succeeds)."""
    path = tmp_path / "gradebook.db"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("create table t (x)")
    holder.execute("begin immediate")  # another worker's write, in progress
    threading.Timer(1.0, lambda: holder.execute("commit")).start()
    impatient = create_engine(f"sqlite:///{path}?timeout=0.2")
    with pytest.raises(OperationalError, match="database is locked"):
        with impatient.begin() as connection:
            connection.execute(text("insert into t values (1)"))
    patient = create_engine(gradebook_url(f"sqlite:///{path}", seconds=30))
    with patient.begin() as connection:
        connection.execute(text("insert into t values (2)"))
    assert holder.execute("select x from t").fetchall() == [(2,)]


def test_gradebook_url_leaves_other_databases_and_a_set_timeout():
    assert gradebook_url("postgresql://h/db") == "postgresql://h/db"
    assert gradebook_url("sqlite:///g.db?timeout=9") == "sqlite:///g.db?timeout=9"
    assert gradebook_url("sqlite:///g.db", seconds=60) == "sqlite:///g.db?timeout=60"


def test_workers_draw_user_ids_from_disjoint_ranges():
    slices = [uid_slice("200000-999999", i, 64) for i in range(64)]
    ranges = [range(int(a), int(b) + 1) for a, b in (s.split("-") for s in slices)]
    assert all(r[-1] < s[0] for r, s in zip(ranges, ranges[1:]))
    assert ranges[0][0] == 200000 and ranges[-1][-1] <= 999999
    with pytest.raises(ValueError, match="too small"):
        uid_slice("200000-200010", 0, 64)
