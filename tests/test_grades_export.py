"""Late work by policy (grading/late.py) and grades an LMS imports (grading/export.py).

A small gradebook is built with nbgrader's own API (no notebook is run): two labs, one past
its due date and one still open, and three students, one with a comma, quotes and an accent
in the name and one who never submits. Late penalties are assigned by nbgrader's own
AssignLatePenalties preprocessor with the course's LatePolicy, as autograde does.
"""
import csv
import io
import os
import shutil
import subprocess
import sys
from datetime import datetime, timedelta

import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.preprocessors import AssignLatePenalties
from traitlets.config import Config

from notebooks import NBGRADER_CONFIG, REPO_ROOT

sys.path.insert(0, str(REPO_ROOT))
from grading.export import CanvasExport, CsvExport, MoodleExport  # noqa: E402
from grading.late import (CourseInputError, LatePolicy, apply_due_dates, parse_due,  # noqa: E402
                          read_due_dates)

COURSE_ID = "backprop-lab"
DUE = datetime(2026, 10, 15, 21, 59)  # UTC, as the gradebook stores it
OPEN_DUE = datetime(2099, 1, 1)
# (student, seconds after the due date, score out of 10) -> the documented penalty, 10% of
# the lab's 10 points per started day late, capped at the score
LATENESS = {"on_time": (-3600, 8, 0.0), "one_hour": (3600, 8, 1.0),
            "one_day": (86400, 8, 1.0), "three_days": (3 * 86400, 8, 3.0),
            "a_year": (365 * 86400, 8, 8.0)}
ODD_NAME = {"first_name": "Zoë", "last_name": 'O"Brien, Jr.', "email": "zoe@example.org"}


def _venv_path():
    # nbgrader runs `alembic` from PATH when it creates a gradebook
    return os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")


def _grade(gradebook, lab, student, score, late_seconds):
    due = gradebook.find_assignment(lab).duedate
    gradebook.add_submission(lab, student, timestamp=due + timedelta(seconds=late_seconds))
    grade = gradebook.find_grade("test_all", lab, lab, student)
    grade.auto_score = score
    gradebook.db.commit()


def _assign_late_penalty(db_url, lab, student, per_day=0.10):
    """What autograde does after scoring a notebook: nbgrader's AssignLatePenalties."""
    config = Config()
    config.AssignLatePenalties.plugin_class = LatePolicy
    config.LatePolicy.per_day = per_day
    resources = {"nbgrader": {"notebook": lab, "assignment": lab, "student": student,
                              "db_url": db_url}}
    AssignLatePenalties(config=config).preprocess(nbformat.v4.new_notebook(), resources)


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A gradebook file: lab01 (10 points, past due), lab02 (5 points, open until 2099)."""
    path = tmp_path_factory.mktemp("gradebook") / "gradebook.db"
    os.environ["PATH"] = _venv_path()
    with Gradebook(f"sqlite:///{path}", COURSE_ID) as gradebook:
        for lab, points, due in (("lab01", 10, DUE), ("lab02", 5, OPEN_DUE)):
            gradebook.add_assignment(lab, duedate=due)
            gradebook.add_notebook(lab, lab)
            gradebook.add_grade_cell("test_all", lab, lab, max_score=points, cell_type="code")
        gradebook.add_student("ada", first_name="Ada", last_name="Lovelace",
                              email="ada@example.org", lms_user_id="4711")
        gradebook.add_student("zoe", **ODD_NAME)
        gradebook.add_student("absent", first_name="Al", last_name="Absent")
        for student in LATENESS:
            gradebook.add_student(student)
        _grade(gradebook, "lab01", "ada", 8, -60)
        _grade(gradebook, "lab01", "zoe", 10, 86400)  # one day late: 10 - 1
        _grade(gradebook, "lab02", "ada", 5, -60)
        for student, (late, score, _) in LATENESS.items():
            _grade(gradebook, "lab01", student, score, late)
    for student in ["ada", "zoe", *LATENESS]:
        _assign_late_penalty(f"sqlite:///{path}", "lab01", student)
    _assign_late_penalty(f"sqlite:///{path}", "lab02", "ada")
    return path


@pytest.fixture
def db_url(template, tmp_path):
    copy = tmp_path / ".nbgrader" / "gradebook.db"
    copy.parent.mkdir()
    shutil.copy(template, copy)
    return f"sqlite:///{copy}"


def _rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _export(plugin_class, db_url, tmp_path, **traits):
    dest = tmp_path / "out.csv"
    with Gradebook(db_url, COURSE_ID) as gradebook:
        plugin_class(to=str(dest), **traits).export(gradebook)
    return dest


# -- the late policy -----------------------------------------------------------------------------
@pytest.mark.parametrize("student", LATENESS)
def test_the_late_penalty_is_10_percent_of_the_points_per_started_day_capped_at_the_score(
        db_url, student):
    with Gradebook(db_url, COURSE_ID) as gradebook:
        submission = gradebook.find_submission("lab01", student)
        assert submission.late_submission_penalty == pytest.approx(LATENESS[student][2])


def test_the_policy_is_configured_in_nbgrader_config():
    text = NBGRADER_CONFIG.read_text()
    assert "c.AssignLatePenalties.plugin_class = LatePolicy" in text
    assert "c.LatePolicy.per_day = 0.10" in text


def test_a_grace_period_counts_as_on_time():
    policy = LatePolicy(grace_minutes=10)
    assert policy.penalty(8, 10, 9 * 60) == 0
    assert policy.penalty(8, 10, 11 * 60) == pytest.approx(1.0)


def test_the_penalty_is_a_clean_number_of_points():
    assert LatePolicy().penalty(13, 13, 3 * 86400 - 60) == 3.9  # not 3.9000000000000004


# -- due dates -----------------------------------------------------------------------------------
def test_a_due_date_in_a_named_zone_is_stored_in_utc():
    assert parse_due("2026-10-15 23:59 Europe/Berlin") == DUE  # CEST, UTC+2
    assert parse_due("2026-12-15 23:59:00 Europe/Berlin") == datetime(2026, 12, 15, 22, 59)
    assert parse_due("2026-10-15 21:59 UTC") == DUE
    assert parse_due("  ") is None


@pytest.mark.parametrize("text, says", [("2026-10-15 23:59 Mars/Olympus", "not a time zone"),
                                        ("15.10.2026 23:59 UTC", "YYYY-MM-DD HH:MM ZONE"),
                                        ("2026-10-15 23:59", "YYYY-MM-DD HH:MM ZONE")])
def test_a_bad_due_date_says_what_is_expected(text, says):
    with pytest.raises(CourseInputError, match=says):
        parse_due(text)


def test_duedates_csv_names_bad_lines(tmp_path):
    path = tmp_path / "duedates.csv"
    path.write_text("lab,due\nlab01,2026-10-15 23:59 UTC\nlab09,2026-10-20 23:59 UTC\n")
    with pytest.raises(CourseInputError, match=r"line 3: no lab 'lab09'"):
        read_due_dates(path, {"lab01", "lab02"})
    path.write_text("\ufefflab,due\nlab01,2026-10-15 23:59 UTC\nlab02,\n", encoding="utf-8")
    assert read_due_dates(path, {"lab01", "lab02"}) == {"lab01": datetime(2026, 10, 15, 23, 59),
                                                        "lab02": None}


def test_the_committed_duedates_csv_lists_every_lab_and_reads():
    labs = {d.name for d in (REPO_ROOT / "solutions").iterdir() if d.is_dir()}
    assert set(read_due_dates(REPO_ROOT / "duedates.csv", labs)) == labs


def test_moving_a_due_date_recomputes_the_penalties_without_regrading(db_url):
    with Gradebook(db_url, COURSE_ID) as gradebook:
        moved = apply_due_dates(gradebook, {"lab01": DUE + timedelta(days=2)}, LatePolicy())
        penalties = {s: gradebook.find_submission("lab01", s).late_submission_penalty
                     for s in LATENESS}
    # three days late becomes one day late; one day late becomes on time
    assert penalties == {"on_time": 0, "one_hour": 0, "one_day": 0, "three_days": 1.0,
                         "a_year": 8.0}
    assert moved == {"lab01": 2}


# -- exports ---------------------------------------------------------------------------------------
def test_canvas_export_has_canvas_gradebook_columns_and_points_possible(db_url, tmp_path):
    rows = _rows(_export(CanvasExport, db_url, tmp_path))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section",
                       "lab01", "lab02", "Final Points"]
    assert rows[1] == ["Points Possible", "", "", "", "", "10", "5", "(read only)"]
    by_login = {row[3]: row for row in rows[2:]}
    assert by_login["ada"][:5] == ["Lovelace, Ada", "4711", "", "ada", ""]
    assert by_login["ada"][5:] == ["8", "5", "13"]


def test_moodle_export_has_an_identifier_and_one_column_per_lab(db_url, tmp_path):
    rows = _rows(_export(MoodleExport, db_url, tmp_path))
    assert rows[0] == ["First name", "Last name", "ID number", "Email address",
                       "lab01", "lab02", "Course total"]
    by_id = {row[2]: row for row in rows[1:]}
    assert by_id["ada"] == ["Ada", "Lovelace", "ada", "ada@example.org", "8", "5", "13"]
    assert len(rows) == 1 + 3 + len(LATENESS)  # one row per student


@pytest.mark.parametrize("plugin_class", [CanvasExport, MoodleExport])
def test_names_with_commas_quotes_and_accents_survive(db_url, tmp_path, plugin_class):
    dest = _export(plugin_class, db_url, tmp_path)
    raw = dest.read_bytes().decode("utf-8")
    assert '"O""Brien, Jr.' in raw  # quoted, the inner quote doubled (RFC 4180)
    zoe = next(row for row in _rows(dest) if "zoe" in row)
    assert "Zoë" in " ".join(zoe) and 'O"Brien, Jr.' in " ".join(zoe)
    assert len(zoe) == len(_rows(dest)[0])


@pytest.mark.parametrize("plugin_class, student_column", [(CanvasExport, 3), (MoodleExport, 2)])
def test_missing_work_is_0_after_the_due_date_and_blank_while_open(db_url, tmp_path,
                                                                   plugin_class, student_column):
    rows = _rows(_export(plugin_class, db_url, tmp_path))
    header = rows[0]
    absent = next(row for row in rows if row[student_column] == "absent")
    assert absent[header.index("lab01")] == "0"
    assert absent[header.index("lab02")] == ""
    assert absent[-1] == "0"


@pytest.mark.parametrize("plugin_class, student_column", [(CanvasExport, 3), (MoodleExport, 2)])
def test_lms_scores_have_the_late_penalty_applied(db_url, tmp_path, plugin_class,
                                                  student_column):
    rows = _rows(_export(plugin_class, db_url, tmp_path))
    lab01 = rows[0].index("lab01")
    scores = {row[student_column]: row[lab01] for row in rows if row[student_column]}
    assert scores["zoe"] == "9"  # 10 points, one day late
    assert {s: scores[s] for s in LATENESS} == {"on_time": "8", "one_hour": "7", "one_day": "7",
                                                "three_days": "5", "a_year": "0"}


def test_csv_export_keeps_nbgraders_columns_and_shows_the_penalty(db_url, tmp_path):
    rows = _rows(_export(CsvExport, db_url, tmp_path))
    assert rows[0] == ["assignment", "duedate", "timestamp", "student_id", "last_name",
                       "first_name", "email", "raw_score", "late_submission_penalty", "score",
                       "max_score"]
    zoe = next(row for row in rows[1:] if row[0] == "lab01" and row[3] == "zoe")
    assert zoe[4:10] == ['O"Brien, Jr.', "Zoë", "zoe@example.org", "10.0", "1.0", "9.0"]
    assert len(rows) == 1 + 2 * (3 + len(LATENESS))  # one row per student and lab


def test_canvas_columns_can_take_the_lms_assignment_names(db_url, tmp_path):
    rows = _rows(_export(CanvasExport, db_url, tmp_path,
                         column_names={"lab01": "Lab 1: forward pass (1234)"},
                         student_id_column="SIS User ID"))
    assert rows[0][5] == "Lab 1: forward pass (1234)"
    ada = next(row for row in rows if row[0] == "Lovelace, Ada")
    assert ada[2:4] == ["ada", ""]


def test_nbgrader_export_uses_the_plugins_from_the_command_line(db_url, tmp_path):
    """`make grades FORMAT=moodle` runs exactly this: nbgrader's exporter option."""
    shutil.copy(NBGRADER_CONFIG, tmp_path / "nbgrader_config.py")
    shutil.copytree(REPO_ROOT / "grading", tmp_path / "grading",
                    ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run(
        [sys.executable, "-m", "nbgrader", "export", "--exporter=grading.export.MoodleExport",
         "--to", "grades-moodle.csv"], cwd=tmp_path, capture_output=True, text=True,
        env=dict(os.environ, PATH=_venv_path()))
    assert result.returncode == 0, result.stderr[-2000:]
    assert _rows(tmp_path / "grades-moodle.csv")[0][:4] == MoodleExport.IDENTITY
    default = subprocess.run([sys.executable, "-m", "nbgrader", "export"], cwd=tmp_path,
                             capture_output=True, text=True,
                             env=dict(os.environ, PATH=_venv_path()))
    assert default.returncode == 0, default.stderr[-2000:]
    text = (tmp_path / "grades.csv").read_text(encoding="utf-8")
    assert '"O""Brien, Jr."' in text  # the default export quotes too
    assert list(csv.reader(io.StringIO(text)))[0][0] == "assignment"


@pytest.mark.parametrize("fmt, command", [
    ("csv", "--exporter=grading.export.CsvExport --to grades.csv"),
    ("canvas", "--exporter=grading.export.CanvasExport --to grades-canvas.csv"),
    ("moodle", "--exporter=grading.export.MoodleExport --to grades-moodle.csv")])
def test_make_grades_picks_the_exporter_of_the_format(fmt, command):
    result = subprocess.run(["make", "-n", "--no-print-directory", "grades", f"FORMAT={fmt}"],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    exports = [line for line in result.stdout.splitlines() if " export " in line]
    assert exports and exports[-1].endswith(command), result.stdout
    assert "course_cli.py duedates" in result.stdout  # due dates applied first
