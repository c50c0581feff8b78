"""Bad input to the instructor's make targets is one line saying what to do (tools/course_cli.py).

Each case runs the checker on a small course folder (solutions/ with two labs, submitted/,
a gradebook) and asserts exit status 2 and a single line that names the problem and the fix,
never a traceback. The last tests go through `make` itself.
"""
import importlib.util
import os
import re
import shutil
import sqlite3
import subprocess
import sys

import nbformat
import pytest

from notebooks import REPO_ROOT

spec = importlib.util.spec_from_file_location("course_cli", REPO_ROOT / "tools" / "course_cli.py")
course_cli = importlib.util.module_from_spec(spec)
spec.loader.exec_module(course_cli)

LAB = "lab01_forward_pass"


def _course(root, submitted=("ada", "bob"), released=(LAB,), graded=()):
    for lab in (LAB, "lab02_losses"):
        (root / "solutions" / lab).mkdir(parents=True)
        nbformat.write(nbformat.v4.new_notebook(), root / "solutions" / lab / f"{lab}.ipynb")
    if submitted is not None:
        (root / "submitted").mkdir()
    for student in submitted or ():
        (root / "submitted" / student / LAB).mkdir(parents=True)
    for student in graded:
        (root / "autograded" / student / LAB).mkdir(parents=True)
    if released is not None:
        (root / ".nbgrader").mkdir()
        with sqlite3.connect(root / ".nbgrader" / "gradebook.db") as db:
            db.execute("create table assignment (name text)")
            db.executemany("insert into assignment values (?)", [(lab,) for lab in released])
    return root


def _refused(root, capsys, *args):
    status = course_cli.main(["--root", str(root), *args])
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


@pytest.mark.parametrize("args, says", [
    (["check", "autograde"], "name the lab: make autograde LAB=lab01_forward_pass"),
    (["check", "autograde", "--lab", "lab1"], "no lab 'lab1' in solutions/: did you mean "
                                              "lab01_forward_pass?"),
    (["check", "release", "--lab", "lab01_forwad_pass"], "did you mean lab01_forward_pass?"),
    (["check", "autograde", "--lab", "lab02_losses"], "no student has submitted lab02_losses"),
    (["check", "regrade", "--lab", LAB, "--student", "eve"],
     "unknown student 'eve': no submitted/eve/lab01_forward_pass/ (students who submitted "
     "lab01_forward_pass: ada, bob)"),
    (["check", "regrade", "--lab", LAB], "name the student: make regrade"),
    (["check", "regrade", "--lab", "*", "--student", "ada"], "one lab at a time"),
    (["check", "feedback", "--lab", LAB], "run make autograde LAB=lab01_forward_pass first"),
    (["check", "grades", "--format", "blackboard"], "use FORMAT=canvas, FORMAT=moodle or "
                                                   "FORMAT=csv"),
    (["check", "similarity", "--lab", "*"], "one lab at a time"),
])
def test_bad_input_gets_one_line_saying_what_to_do(tmp_path, capsys, args, says):
    assert says in _refused(_course(tmp_path), capsys, *args)


def test_good_input_passes_silently(tmp_path, capsys):
    root = _course(tmp_path, graded=("ada",))
    for args in (["check", "autograde", "--lab", LAB], ["check", "autograde", "--lab", "*"],
                 ["check", "regrade", "--lab", LAB, "--student", "bob"],
                 ["check", "feedback", "--lab", LAB], ["check", "grades", "--format", "canvas"],
                 ["check", "similarity", "--lab", LAB], ["check", "audit"],
                 ["check", "release", "--lab", "*"]):
        assert course_cli.main(["--root", str(root), *args]) == 0, capsys.readouterr().err
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("command", ["autograde", "audit", "similarity"])
def test_a_missing_submitted_folder_says_where_notebooks_go(tmp_path, capsys, command):
    err = _refused(_course(tmp_path, submitted=None), capsys, "check", command, "--lab", LAB)
    assert "submitted/ is missing: put each student's notebook at " \
           "submitted/<student>/lab01_forward_pass/lab01_forward_pass.ipynb" in err


def test_an_empty_submitted_folder_says_so(tmp_path, capsys):
    err = _refused(_course(tmp_path, submitted=()), capsys, "check", "autograde", "--lab", LAB)
    assert "submitted/ is empty" in err and "nbgrader collect" in err


def test_grading_a_lab_never_released_says_release_first(tmp_path, capsys):
    err = _refused(_course(tmp_path, released=()), capsys, "check", "autograde", "--lab", LAB)
    assert "run make release LAB=lab01_forward_pass first" in err


def test_grades_with_no_gradebook_says_what_comes_first(tmp_path, capsys):
    err = _refused(_course(tmp_path, released=None), capsys, "check", "grades")
    assert "the gradebook is empty: run make release and make autograde first" in err


def test_similarity_of_a_single_submission_says_it_needs_two(tmp_path, capsys):
    err = _refused(_course(tmp_path, submitted=("ada",)), capsys, "check", "similarity",
                   "--lab", LAB)
    assert "only ada has submitted" in err


# -- the roster for `nbgrader db student import` -------------------------------------------------
GOOD = ('id,first_name,last_name,email\nada,Ada,Lovelace,ada@example.org\n'
        'zoe,Zoë,"O\'Brien, Jr.",\n')


@pytest.mark.parametrize("text, says", [
    ("id,first_name,last_name\nada,Ada,Lovelace\nbob,Bob,Smith,Jr\n",
     "line 3: 4 fields where the header has 3 (a name with a comma must be in double quotes)"),
    ("id,first_name\nada,Ada\nada,Ada B.\n", "line 3: student id 'ada' is also on line 2"),
    ("id,first_name\n,Nobody\n", "line 2: student id '' cannot name a folder"),
    ("id,first_name\nada lovelace,Ada\n", "student id 'ada lovelace' cannot name a folder"),
    ("id,firstname\nada,Ada\n", "line 1: unknown column 'firstname'; the columns nbgrader "
                                "imports are id, first_name, last_name, email, lms_user_id"),
    ("student,first_name\nada,Ada\n", "unknown column 'student'"),
    ("id,email\nada,ada.example.org\n", "line 2: email 'ada.example.org' of ada has no '@'"),
    ("", "is empty"),
    ("id,first_name\n", "lists no student"),
])
def test_a_roster_with_a_bad_row_names_the_line(tmp_path, capsys, text, says):
    roster = tmp_path / "students.csv"
    roster.write_text(text, encoding="utf-8")
    assert says in _refused(tmp_path, capsys, "roster", str(roster))


def test_a_missing_roster_says_what_to_give(tmp_path, capsys):
    err = _refused(tmp_path, capsys, "roster", str(tmp_path / "nope.csv"))
    assert "make students ROSTER=students.csv" in err


def test_a_good_roster_with_quoted_names_is_accepted(tmp_path, capsys):
    roster = tmp_path / "students.csv"
    roster.write_text(GOOD, encoding="utf-8")
    assert course_cli.main(["roster", str(roster), "--check-only"]) == 0
    assert "2 students, ready to import" in capsys.readouterr().out


def test_an_excel_roster_is_imported_with_its_names(tmp_path):
    """Excel's "CSV UTF-8" starts with a byte-order mark, which nbgrader's own import takes as
    part of the column name 'id' (and it reads in the locale's encoding)."""
    shutil.copy(REPO_ROOT / "nbgrader_config.py", tmp_path / "nbgrader_config.py")
    roster = tmp_path / "students.csv"
    roster.write_bytes(b"\xef\xbb\xbf" + GOOD.encode("utf-8"))
    env = dict(os.environ, LC_ALL="C", PATH=os.path.dirname(sys.executable) + os.pathsep
               + os.environ.get("PATH", ""))
    run = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "course_cli.py"), "--root",
                          str(tmp_path), "roster", str(roster)], capture_output=True, text=True,
                         env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    with sqlite3.connect(tmp_path / ".nbgrader" / "gradebook.db") as db:
        names = set(db.execute("select id, first_name, last_name from student"))
    assert names == {("ada", "Ada", "Lovelace"), ("zoe", "Zoë", "O'Brien, Jr.")}


def test_a_bad_due_date_file_is_one_line(tmp_path, capsys):
    root = _course(tmp_path)
    (root / "duedates.csv").write_text(f"lab,due\n{LAB},2026-10-15 23:59 Mars/Olympus\n")
    err = _refused(root, capsys, "duedates")
    assert "duedates.csv, line 2: 'Mars/Olympus'" in err and "Europe/Berlin" in err


# -- through make --------------------------------------------------------------------------------
@pytest.mark.parametrize("target, says", [
    (["autograde", "LAB=lab1"], "did you mean lab01_forward_pass?"),
    (["regrade", "LAB=lab01_forward_pass"], ""),
    (["grades", "FORMAT=blackboard"], "unknown FORMAT='blackboard'"),
    (["similarity"], "name the lab: make similarity LAB="),
    (["students", "ROSTER=/nonexistent/students.csv"], "no roster /nonexistent/students.csv"),
])
def test_make_targets_stop_with_the_checkers_line(target, says):
    result = subprocess.run(["make", "--no-print-directory", *target], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr + result.stdout
    ours = [line for line in result.stderr.splitlines() if not re.match(r"make(\[\d+\])?: ", line)]
    assert len(ours) == 1 and says in ours[0], result.stderr
