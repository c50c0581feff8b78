"""A class on JupyterHub, end to end, in a real browser on loopback (`make hub`'s set-up).

hub/setup.py brings up a class hub on 127.0.0.1 with two students and one instructor (accounts
named for this run, `bpt<hex>...`), lab 01 only, in its own folder /srv/<run>. Headless
Chromium (Debian's, driven by Playwright as in tests/test_browser.py) then does the term:

- the instructor logs in through the hub's login page and releases lab 01 from formgrader;
- each student logs in, fetches lab 01 from nbgrader's Assignments list, works on it (the
  notebook is written into their home as their file: one with the solution's answers, one
  with half of them), presses Validate, and submits from the Assignments list;
- the instructor collects, autogrades each submission (formgrader's button, which goes
  through the root command and its sudo rule into the sandbox), generates and releases
  feedback; each student fetches their own feedback.

Then: scores (13 of 13, and partial), and what a student cannot reach, checked as that
operating-system account (`runuser`): the other student's files, the gradebook, the course's
solutions, the exchange's inbound; and in the browser, the other's server and the formgrader.
Everything the run made (accounts, processes, files, sudo rule) is removed and checked gone.

It needs root, npm, Chromium, bubblewrap and the course environment (`make hub-env`, which
.ci/run builds before the suite): otherwise it skips, saying which is missing.
"""
import csv
import glob
import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import nbformat
import pytest

from browser import CHROMIUM, VALIDATE_SUCCESS, free_port, headless_chromium, press_validate
from hub.setup import processes_of

REPO_ROOT = Path(__file__).resolve().parent.parent
SETUP = REPO_ROOT / "hub" / "setup.py"
PREFIX = Path("/opt/backprop-lab")
LAB = "lab01_forward_pass"
SOLUTION = REPO_ROOT / "solutions" / LAB / f"{LAB}.ipynb"
FULL_MARKS = 13
COURSE = "backprop-lab"
PAGE_TIMEOUT_MS = 90_000     # any single wait in the browser (a first server spawn included)
GRADING_TIMEOUT_MS = 240_000  # one sandboxed autograde through sudo

pytestmark = pytest.mark.hub


def _missing():
    if os.geteuid() != 0:
        return "not root: a class hub creates accounts and runs JupyterHub as root"
    for tool, why in (("npm", "configurable-http-proxy"), ("bwrap", "the autograding sandbox"),
                      ("useradd", "the roster's accounts")):
        if shutil.which(tool) is None:
            return f"`{tool}` is missing ({why})"
    if not Path(CHROMIUM).is_file():
        return f"Chromium is not installed ({CHROMIUM}): apt-get install chromium"
    if not (PREFIX / "env" / "bin" / "jupyterhub").exists():
        return (f"the hub's course environment is not built ({PREFIX}/env): run `make hub-env` "
                "as root first (about 90 s; .ci/run does)")
    return None


if _missing():
    pytest.skip(f"no class hub on this machine: {_missing()}", allow_module_level=True)
pytest.importorskip(
    "playwright.sync_api",
    reason="the Python package `playwright` is missing: pip install -r requirements.txt")


def _setup(*args, timeout=600):
    done = subprocess.run(["/usr/bin/python3", str(SETUP), *args], capture_output=True,
                          text=True, timeout=timeout,
                          env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"})
    output = "\n".join(line for line in (done.stdout + done.stderr).splitlines()
                       if not line.startswith("WARNING: Location"))  # this machine's pip index
    return done.returncode, output


def as_user(user, *command):
    """Run `command` as the operating-system account `user`; (exit status, output)."""
    done = subprocess.run(["runuser", "-u", user, "--", *command], capture_output=True,
                          text=True, timeout=120)
    return done.returncode, done.stdout + done.stderr


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    run = "bpt" + secrets.token_hex(3)
    root = Path("/srv") / run
    people = {"full": f"{run}s1", "half": f"{run}s2", "instructor": f"{run}i1"}
    grader = f"{run}g"
    roster = tmp_path_factory.mktemp("hub") / "roster.csv"
    roster.write_text("id,first_name,last_name,email,role\n"
                      f"{people['full']},Ada,Full,full@example.org,student\n"
                      f"{people['half']},Alan,Half,half@example.org,student\n"
                      f"{people['instructor']},Grace,Teach,teach@example.org,instructor\n")
    port = free_port()
    started = time.monotonic()
    status, output = _setup("up", "--root", str(root), "--roster", str(roster),
                            "--ip", "127.0.0.1", "--port", str(port), "--name", run,
                            "--grader", grader, "--labs", LAB)
    try:
        assert status == 0, f"hub/setup.py up failed:\n{output}"
        print(f"hub/setup.py up: {time.monotonic() - started:.1f} s")
        with open(root / "initial-passwords.csv") as passwords:
            password = {row["id"]: row["initial_password"] for row in csv.DictReader(passwords)}
        yield {"url": f"http://127.0.0.1:{port}", "root": root, "run": run, "grader": grader,
               "people": people, "password": password,
               "settings": json.loads((root / "hub.json").read_text())}
    finally:
        accounts = [*people.values(), grader]
        uids = {pwd.getpwnam(a).pw_uid for a in accounts if _account(a)}
        if (root / "hub.json").exists():
            status, output = _setup("remove", "--root", str(root), timeout=120)
            assert status == 0, f"hub/setup.py remove failed:\n{output}"
        else:  # `up` stopped before it wrote the class's settings
            for account in filter(_account, accounts):
                subprocess.run(["userdel", "--remove", account], capture_output=True)
            shutil.rmtree(root, ignore_errors=True)
        left = [a for a in accounts if _account(a)]
        assert not left, f"accounts left behind: {left}"
        assert not root.exists() and not glob.glob(f"/etc/sudoers.d/{run}*") \
            and not glob.glob(f"/usr/local/sbin/{run}*"), "files left behind"
        assert not processes_of(uids), "processes of the class's accounts left behind"
        assert not any(Path("/home", a).exists() for a in accounts), "home folders left behind"


def _account(name):
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


@pytest.fixture(scope="module")
def browser():
    with headless_chromium(PAGE_TIMEOUT_MS) as chromium:
        yield chromium


# -- the hub's pages ---------------------------------------------------------------------------
def log_in(browser, hub, user, next_path=None):
    """A browser session of `user`, logged in through the hub's login page, sent to
    `next_path` (by default, where the hub sends them: their JupyterLab); its page."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.goto(f"{hub['url']}/hub/login" + (f"?next={quote(next_path)}" if next_path else ""))
    page.fill("#username_input", user)
    page.fill("#password_input", hub["password"][user])
    page.click("#login_submit")
    return page


def formgrader(hub, page_name=""):
    return f"/services/{COURSE}/formgrader/{page_name}"


def formgrader_action(page, row, column, timeout=PAGE_TIMEOUT_MS):
    """Click the link of `column` in formgrader's table row `row`; the title and text of the
    dialog that answers (success or error), closed afterwards."""
    row.locator(f"td.{column} a").click()
    dialog = page.locator("#success-modal, #error-modal")
    dialog.wait_for(state="visible", timeout=timeout)
    title = dialog.locator(".modal-title").inner_text().strip()
    text = dialog.locator(".modal-body").inner_text().strip()
    dialog.locator(".modal-footer button").click()
    dialog.wait_for(state="detached")
    return title, text


def open_assignments(page):
    """nbgrader's Assignments list, from the Nbgrader menu of JupyterLab."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Nbgrader$")).click()
    menu = page.locator(".lm-Menu-content")
    items = menu.locator(".lm-Menu-itemLabel").all_inner_texts()
    menu.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Assignment List$")).click()
    page.locator("#released_assignments_list_loading").wait_for(state="hidden")
    return items


def wait_for_lab(page, user):
    page.wait_for_url(re.compile(rf"/user/{user}/lab"), timeout=PAGE_TIMEOUT_MS)
    page.locator("#jp-main-dock-panel").wait_for(state="visible")
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Nbgrader$")).wait_for()


def student_work(released, answered_fraction):
    """The released notebook with the solution's code in the first `answered_fraction` of its
    answer cells (matched by grade id); the rest left as released."""
    solution = {cell.metadata["nbgrader"]["grade_id"]: cell.source
                for cell in nbformat.read(SOLUTION, as_version=4).cells
                if cell.metadata.get("nbgrader", {}).get("solution")}
    notebook = nbformat.read(released, as_version=4)
    answers = [cell for cell in notebook.cells
               if cell.metadata.get("nbgrader", {}).get("solution")
               and cell.cell_type == "code"]
    for cell in answers[:round(len(answers) * answered_fraction)]:
        cell.source = solution[cell.metadata["nbgrader"]["grade_id"]]
    return notebook, len(answers)


def write_as(user, path, notebook):
    account = pwd.getpwnam(user)
    nbformat.write(notebook, str(path))
    os.chown(path, account.pw_uid, account.pw_gid)


def validate(page, user, relative):
    """Open the notebook in the student's JupyterLab and press Validate; the dialog's text."""
    page.goto(f"{page.url.split('/user/')[0]}/user/{user}/lab/tree/{relative}")
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").wait_for(state="visible")
    verdict = press_validate(page, PAGE_TIMEOUT_MS)
    page.locator(".jp-Dialog .jp-Dialog-button").last.click()
    return verdict


# -- the term ----------------------------------------------------------------------------------
def test_a_class_on_the_hub_releases_collects_grades_and_hands_back(hub, browser):
    people, root, timings = hub["people"], hub["root"], {}
    students = {people["full"]: 1.0, people["half"]: 0.5}

    # The instructor releases lab 01 from formgrader (a hub service, as the grader account).
    teacher = log_in(browser, hub, people["instructor"], formgrader(hub, "manage_assignments"))
    row = teacher.locator("#main-table tr", has_text=LAB)
    row.locator("td.release a").wait_for()
    title, text = formgrader_action(teacher, row, "release")
    assert title == "Success", f"formgrader could not release {LAB}: {text}"

    # Each student logs in (their servers spawn side by side), fetches lab 01, works, submits.
    pages = {s: log_in(browser, hub, s) for s in students}
    for student, fraction in students.items():
        page = pages[student]
        wait_for_lab(page, student)
        menu = open_assignments(page)
        assert "Formgrader" not in menu and "Create Assignment" not in " ".join(menu), (
            f"a student's Nbgrader menu offers instructor screens: {menu}")
        page.locator("#released_assignments_list").get_by_text(LAB).wait_for()
        page.locator("#released_assignments_list button", has_text="Fetch").click()
        page.locator("#fetched_assignments_list").get_by_text(LAB).first.wait_for()

        home = Path(pwd.getpwnam(student).pw_dir)
        released = home / LAB / f"{LAB}.ipynb"
        notebook, n_answers = student_work(released, fraction)
        write_as(student, released, notebook)
        verdict = validate(page, student, f"{LAB}/{LAB}.ipynb")
        if fraction == 1.0:
            assert verdict == VALIDATE_SUCCESS, f"Validate on the solution's answers: {verdict}"
        else:
            assert verdict != VALIDATE_SUCCESS, "Validate passed a half-done lab"

        open_assignments(page)
        page.locator("#fetched_assignments_list button", has_text="Submit").first.click()
        page.locator("#submitted_assignments_list").get_by_text(LAB).first.wait_for()

    # The instructor collects, autogrades each submission (through the root command), and
    # hands feedback back.
    teacher.goto(f"{hub['url']}{formgrader(hub, 'manage_assignments')}")
    row = teacher.locator("#main-table tr", has_text=LAB)
    row.locator("td.collect a").wait_for()
    title, text = formgrader_action(teacher, row, "collect")
    assert title == "Success", f"collect failed: {text}"
    teacher.goto(f"{hub['url']}{formgrader(hub, 'manage_submissions/' + LAB)}")
    scores = {}
    for student in students:
        student_row = teacher.locator("#main-table tr", has_text=student)
        student_row.locator("td.autograde a").wait_for()
        started = time.monotonic()
        title, text = formgrader_action(teacher, student_row, "autograde",
                                        timeout=GRADING_TIMEOUT_MS)
        timings[student] = time.monotonic() - started
        assert title == "Success", f"autograde of {student} failed: {text}"
        teacher.reload()
        score = teacher.locator("#main-table tr", has_text=student).locator("td.score")
        teacher.wait_for_function("el => /\\d/.test(el.textContent)",
                                  arg=score.element_handle())
        scores[student] = score.inner_text().strip()
    # Graded by root in the sandbox; what it wrote is handed to the grader account.
    grader_uid = pwd.getpwnam(hub["grader"]).pw_uid
    for student in students:
        graded = Path(hub["settings"]["course"]) / "autograded" / student / LAB
        assert {p.stat().st_uid for p in [graded, *graded.rglob("*")]} == {grader_uid}
    print("autograde through formgrader (s per submission):",
          {s: round(t, 1) for s, t in timings.items()})
    assert scores[people["full"]] == f"{FULL_MARKS} / {FULL_MARKS}", scores
    got, total = (float(n) for n in scores[people["half"]].split(" / "))
    assert total == FULL_MARKS and 0 < got < FULL_MARKS, f"half-done lab scored {scores}"

    teacher.goto(f"{hub['url']}{formgrader(hub, 'manage_assignments')}")
    row = teacher.locator("#main-table tr", has_text=LAB)
    row.locator("td.generate-feedback a").wait_for()
    for column in ("generate-feedback", "release-feedback"):
        title, text = formgrader_action(teacher, row, column, timeout=GRADING_TIMEOUT_MS)
        assert title == "Success", f"{column} failed: {text}"
        row = teacher.locator("#main-table tr", has_text=LAB)

    # Each student fetches their own feedback.
    for student in students:
        page = pages[student]
        page.goto(f"{hub['url']}/user/{student}/lab")
        wait_for_lab(page, student)
        open_assignments(page)
        page.locator("#submitted_assignments_list button", has_text="Fetch Feedback").click()
        home = Path(pwd.getpwnam(student).pw_dir)
        deadline = time.monotonic() + 60
        while not glob.glob(str(home / LAB / "feedback" / "*" / f"{LAB}.html")):
            assert time.monotonic() < deadline, f"{student}'s feedback never arrived"
            time.sleep(0.5)
        feedback = Path(glob.glob(str(home / LAB / "feedback" / "*" / f"{LAB}.html"))[0])
        assert feedback.stat().st_uid == pwd.getpwnam(student).pw_uid
        assert "HIDDEN TESTS" not in feedback.read_text()
    check_students_are_apart(hub, pages)


def check_students_are_apart(hub, pages):
    """What one student cannot reach, as their operating-system account and in the browser."""
    full, half = hub["people"]["full"], hub["people"]["half"]
    settings, root = hub["settings"], hub["root"]
    other_home = Path(pwd.getpwnam(half).pw_dir)
    forbidden = {
        "the other student's lab": ["cat", str(other_home / LAB / f"{LAB}.ipynb")],
        "the other student's feedback": ["ls", str(other_home / LAB / "feedback")],
        "the gradebook": ["cat", f"{settings['course']}/.nbgrader/gradebook.db"],
        "the course's solutions": ["ls", f"{settings['course']}/solutions"],
        "the exchange's submissions": ["ls", f"{settings['exchange']}/{COURSE}/inbound"],
        "the grading code run as root": ["ls", settings["code"]],
        "the initial passwords": ["cat", str(root / "initial-passwords.csv")],
        "the class's settings (the roster's ids)": ["cat", str(root / "hub.json")],
        "the root autograde command": ["sudo", "-n", settings["autograde_command"], LAB, full],
    }
    for what, command in forbidden.items():
        status, output = as_user(full, *command)
        assert status != 0, f"{full} can read {what}: {' '.join(command)}\n{output[:300]}"
    # The grader account may ask for grading, and only with well-formed arguments.
    status, output = as_user(hub["grader"], "sudo", "-n", settings["autograde_command"],
                             "../solutions", full)
    assert status == 2 and "not a lab folder name" in output, output
    # No course source in the environment every student runs.
    assert not glob.glob(f"{settings['env']}/**/solutions", recursive=True)

    page = pages[full]
    for path in (f"/user/{half}/lab", formgrader(hub, "manage_assignments")):
        response = page.goto(f"{hub['url']}{path}")
        assert response.status == 403, f"{full} opened {path} (HTTP {response.status})"
