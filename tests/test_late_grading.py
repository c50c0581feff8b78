"""Late work end to end: duedates.csv, `nbgrader autograde` with the course's LatePolicy, and
the Canvas export, in a throw-away course (lab 01 only, one student with right answers who
hands in 3 days late).

The penalty rule itself (1 day, 3 days, a year, on time) is tested on a gradebook built with
nbgrader's API in test_grades_export.py; this test proves the pieces are wired together as
`make duedates`, `make autograde` and `make grades FORMAT=canvas` run them.
"""
import csv
import os
import shutil
import subprocess
import sys

import nbformat
import pytest

from notebooks import IGNORED_NAMES, LABS_DIR, NBGRADER_CONFIG, REPO_ROOT, source_path
from submissions import Lab

sys.path.insert(0, str(REPO_ROOT))
from grading.sandbox import sandbox_problem  # noqa: E402

pytestmark = pytest.mark.grading
LAB = "lab01_forward_pass"
NOTEBOOK = f"{LAB}/{LAB}.ipynb"
DUE = "2026-10-15 23:59 Europe/Berlin"  # 21:59 UTC
HANDED_IN = {"late": "2026-10-18 21:04:00 UTC"}  # 2 days 23 hours late: 3 started days


def _run(root, *command):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep
               + os.environ.get("PATH", ""))
    result = subprocess.run([sys.executable, *command], cwd=root, capture_output=True,
                            text=True, env=env, timeout=600)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n" \
                                   f"{result.stderr[-3000:]}"
    return result


def test_a_late_submission_loses_the_policys_points_in_the_canvas_export(tmp_path):
    root = tmp_path
    shutil.copy2(NBGRADER_CONFIG, root / "nbgrader_config.py")
    for folder in ("grading", f"solutions/{LAB}"):
        shutil.copytree(REPO_ROOT / folder, root / folder,
                        ignore=shutil.ignore_patterns(*IGNORED_NAMES))
    (root / "duedates.csv").write_text(f"lab,due\n{LAB},{DUE}\n")
    _run(root, "-m", "nbgrader", "generate_assignment", LAB, "--force")

    lab = Lab(nbformat.read(source_path(NOTEBOOK), as_version=4),
              nbformat.read(LABS_DIR / NOTEBOOK, as_version=4))
    for student, stamp in HANDED_IN.items():
        folder = root / "submitted" / student / LAB
        folder.mkdir(parents=True)
        nbformat.write(lab.answered(), folder / f"{LAB}.ipynb")
        (folder / "timestamp.txt").write_text(stamp)

    dates = _run(root, str(REPO_ROOT / "tools" / "course_cli.py"), "--root", str(root),
                 "duedates")
    assert "1 due date(s) in the gradebook" in dates.stdout
    sandbox = ["--SandboxedKernelManager.sandbox=False"] if sandbox_problem() else []
    graded = _run(root, "-m", "nbgrader", "autograde", LAB, *sandbox)
    assert "Late submission penalty: 3.9" in graded.stderr + graded.stdout
    _run(root, "-m", "nbgrader", "export", "--exporter=grading.export.CanvasExport",
         "--to", "grades-canvas.csv")

    with open(root / "grades-canvas.csv", newline="", encoding="utf-8") as handle:
        rows = {row[3]: row for row in csv.reader(handle)}
    assert rows["late"][5:] == ["9.1", "9.1"]  # 13 points - 3 days x 10% x 13
