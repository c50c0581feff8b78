"""The course in a real browser, used the way a learner uses it.

A JupyterLab server runs on loopback in a throw-away copy of the course (lab 01's solution,
its release copied into `my-labs/`, lesson 01 and `nbgrader_config.py`; the repository is never
written to), in `make lab`'s configuration: the learner's settings of `tools/jupyter/learner/` on
JUPYTER_CONFIG_PATH and its workspace template imported. Headless Chromium (Debian's
``chromium`` package, driven by Playwright's Python package through ``executable_path``:
Playwright never downloads a browser here) then

- opens the server's front page as `make lab`'s browser does: Lesson 01 open, the file browser
  at the course root listing `my-labs/` and `lessons/`, and no nbgrader instructor screen
  (Create Assignment, Formgrader, Course List, the Nbgrader menu) in the page or the command
  palette; the lab in `my-labs/` has nbgrader's **Validate** button;
- opens lab 01's solution, runs all its cells from the *Run* menu, presses **Validate** and
  reads the verdict in its dialog;
- opens lesson 01 and checks that its stored plots render, saving a screenshot.

The tests skip, saying why, when Chromium or Playwright is missing; `.ci/run` installs Chromium,
so CI always runs them. Every wait is bounded: a hang fails the test instead of stalling CI.
"""
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from browser import CHROMIUM, VALIDATE_SUCCESS, free_port, headless_chromium, press_validate

REPO_ROOT = Path(__file__).resolve().parent.parent
LAB = "solutions/lab01_forward_pass/lab01_forward_pass.ipynb"
LESSON = "lessons/01_forward_pass.ipynb"
RELEASED_LAB = "labs/lab01_forward_pass/lab01_forward_pass.ipynb"
MY_LAB = "my-labs/lab01_forward_pass/lab01_forward_pass.ipynb"  # where `make my-labs` copies it
# `make lab`'s JupyterLab configuration (Makefile: LEARNER_JUPYTER) and its start-up workspace.
LEARNER_JUPYTER = REPO_ROOT / "tools" / "jupyter" / "learner"
WORKSPACE_TEMPLATE = LEARNER_JUPYTER / "backprop-lab.jupyterlab-workspace"
# What nbgrader's instructor extensions put on screen (labels, captions, menu and palette items).
INSTRUCTOR_SCREENS = ("Create Assignment", "Create assignment", "Formgrader", "Course List",
                      "Assignment List", "Nbgrader")
SERVER_START_TIMEOUT = 45   # seconds for JupyterLab to answer on its port
PAGE_TIMEOUT_MS = 30_000    # any single wait in the browser
VALIDATE_TIMEOUT_MS = 60_000  # nbgrader runs the whole notebook again in a fresh kernel
# JupyterLab's page: the notebook on screen, its code cells' prompts, its error outputs.
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
PROMPTS = f"{PANEL} .jp-CodeCell .jp-InputArea-prompt"
ERRORS = f"{PANEL} .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']"

if not Path(CHROMIUM).is_file():
    pytest.skip(f"Chromium is not installed ({CHROMIUM} missing): `apt-get install chromium` "
                "(CI's .ci/run installs it)", allow_module_level=True)
pytest.importorskip(
    "playwright.sync_api",
    reason="the Python package `playwright` is missing: pip install -r requirements.txt")


# -- a JupyterLab server in a copy of the course ----------------------------------------------
def _copy_course(root):
    """The files the tests open, plus nbgrader's configuration, under `root`; lab 01's release
    also where `make my-labs` puts the learner's copy."""
    for source, rel in ((LAB, LAB), (LESSON, LESSON), ("nbgrader_config.py", "nbgrader_config.py"),
                        (RELEASED_LAB, MY_LAB)):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / source, root / rel)


def _isolated_jupyter_env(home):
    """Environment in which Jupyter reads and writes nothing of the user's own (no user
    configuration, settings or workspaces: they could move or hide what the tests click) and
    reads `make lab`'s learner configuration."""
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        env[name] = str(home / name.lower())
    env["JUPYTER_CONFIG_PATH"] = str(LEARNER_JUPYTER)  # `make lab`'s learner configuration
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # Do not ask about fetching Jupyter news: no toast over the page, no request to make.
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    return env


def _server_answers(url, process, deadline):
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.25)
    return False


def _stop(process):
    """Stop the server and everything it started (its kernels): SIGTERM, then SIGKILL."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def jupyter_lab(tmp_path_factory):
    """``(url, course_root)`` of a running JupyterLab serving a copy of the course."""
    base = tmp_path_factory.mktemp("browser")
    course, home = base / "course", base / "jupyter-home"
    _copy_course(course)
    env = _isolated_jupyter_env(home)
    # As `make lab` does the first time: the workspace its default_url opens, from the template.
    subprocess.run([sys.executable, "-m", "jupyter", "lab", "workspaces", "import",
                    f"--LabWorkspaceImportApp.workspaces_dir={home / 'workspaces'}",
                    str(WORKSPACE_TEMPLATE)], env=env, check=True, capture_output=True, timeout=60)
    port, token = free_port(), secrets.token_hex(16)
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--ServerApp.token={token}", f"--ServerApp.root_dir={course}",
        f"--LabApp.user_settings_dir={home / 'settings'}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # jupyter refuses to run as root without it (CI is root)
    log_path = base / "jupyter.log"
    # nbgrader's Validate reads nbgrader_config.py from the server's working directory.
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=course, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)  # its own group: teardown kills all
    url = f"http://127.0.0.1:{port}"
    try:
        if not _server_answers(f"{url}/api/status?token={token}", process,
                               time.monotonic() + SERVER_START_TIMEOUT):
            pytest.fail(f"JupyterLab did not start within {SERVER_START_TIMEOUT} s "
                        f"(exit code {process.poll()}); its log:\n{log_path.read_text()[-3000:]}")
        yield {"url": url, "token": token, "root": course, "log": log_path}
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def browser():
    with headless_chromium(PAGE_TIMEOUT_MS) as chromium:
        yield chromium


@pytest.fixture
def page(browser, jupyter_lab):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        yield page
    finally:
        context.close()


# -- driving JupyterLab ------------------------------------------------------------------------
def open_notebook(page, lab, rel_path):
    """Open `rel_path` in JupyterLab, in a workspace of its own (so no tab of another test comes
    back), and wait until its kernel has started and is idle; return the notebook's panel."""
    workspace = re.sub(r"[^\w-]", "-", rel_path)  # one per file: two labs share a file name
    page.goto(f"{lab['url']}/lab/workspaces/{workspace}/tree/{rel_path}?token={lab['token']}")
    panel = page.locator(PANEL).first
    panel.wait_for(state="visible")
    wait_for_idle_kernel(page)
    return panel


def wait_for_idle_kernel(page):
    # The status bar reads "Python 3 (ipykernel) | Idle" once the kernel is up and not busy.
    page.locator(".jp-StatusBar-Widget").get_by_text(re.compile(r"\| Idle$")).wait_for()


def code_cell_count(path):
    return sum(cell.cell_type == "code" for cell in nbformat.read(path, as_version=4).cells)


def run_all_cells(page, n_code_cells, timeout_ms=PAGE_TIMEOUT_MS):
    """Run > Run All Cells from the menu bar; wait until the run is over (every cell has run,
    or one raised and the rest were cancelled); return the code cells' prompts ("[3]:", ...)."""
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
    page.wait_for_function(
        """([promptSelector, errorSelector, n]) => {
            // textContent: cells scrolled out of view are not rendered, so innerText is empty
            const prompts = [...document.querySelectorAll(promptSelector)]
                .map(prompt => prompt.textContent.trim());
            if (prompts.length !== n || prompts.includes("[*]:")) return false;  // still queued
            return prompts.every(p => /^\\[\\d+\\]:$/.test(p))
                || document.querySelector(errorSelector) !== null;
        }""",
        arg=[PROMPTS, ERRORS, n_code_cells],
        timeout=timeout_ms,
    )
    wait_for_idle_kernel(page)
    return page.locator(PROMPTS).evaluate_all("nodes => nodes.map(n => n.textContent.trim())")


def error_outputs(page):
    """Text of every error (traceback) shown in the outputs of the notebook on screen."""
    texts = page.locator(ERRORS).evaluate_all("nodes => nodes.map(node => node.textContent)")
    return [text for text in texts if "Error" in text or "Traceback" in text]


def open_front_page(page, lab):
    """Open the server's front page as `make lab`'s browser does (the server redirects it to its
    default_url); wait until a notebook is on screen and the file browser has listed its folder."""
    page.goto(f"{lab['url']}/?token={lab['token']}")
    page.locator(PANEL).first.wait_for(state="visible")
    page.locator(".jp-DirListing-item").first.wait_for()


def file_browser_names(page):
    return page.locator(".jp-DirListing-itemName").evaluate_all(
        "nodes => nodes.map(node => node.textContent.trim())")


# -- the tests ---------------------------------------------------------------------------------
def test_make_lab_runs_the_configuration_tested_here():
    """`make lab` starts JupyterLab with the learner configuration and workspace these tests use."""
    commands = subprocess.run(["make", "-n", "lab"], cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=60, check=True).stdout
    assert f'JUPYTER_CONFIG_PATH="{LEARNER_JUPYTER}' in commands, commands
    assert str(WORKSPACE_TEMPLATE) in commands, commands


def test_make_lab_opens_lesson_01_with_my_labs_and_lessons_in_the_file_browser(page, jupyter_lab):
    open_front_page(page, jupyter_lab)
    assert page.url.split("?")[0].endswith("/lab/workspaces/backprop-lab"), page.url
    current_tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current")
    assert current_tab.inner_text().strip() == Path(LESSON).name
    page.locator(".jp-DirListing-itemName", has_text=re.compile(r"^my-labs$")).wait_for()
    names = file_browser_names(page)
    assert {"my-labs", "lessons"} <= set(names), f"the file browser lists {names}"
    assert Path(LESSON).name not in names, f"the file browser is inside lessons/: {names}"


def test_make_lab_shows_no_nbgrader_instructor_screen(page, jupyter_lab):
    open_front_page(page, jupyter_lab)
    menus = page.locator(".lm-MenuBar-itemLabel").all_inner_texts()
    assert "File" in menus and "Kernel" in menus, f"menu bar: {menus}"
    # Every label, caption and tooltip on the page (sidebars, menus, toolbars), not only the text.
    html = page.evaluate("() => document.documentElement.outerHTML")
    shown = [screen for screen in INSTRUCTOR_SCREENS if screen in html]
    assert shown == [], f"instructor screens in the page: {shown}; menu bar: {menus}"

    # The command palette lists every command there is (nbgrader's menu adds its own there).
    page.locator(PANEL).first.click()
    page.keyboard.press("Control+Shift+C")
    page.locator(".lm-CommandPalette-item:visible").first.wait_for()
    commands = page.locator(".lm-CommandPalette-item").evaluate_all(
        "nodes => nodes.map(node => node.textContent)")
    assert len(commands) > 20, f"the command palette lists only {commands}"
    listed = [c for c in commands if any(screen in c for screen in INSTRUCTOR_SCREENS)]
    assert listed == [], f"instructor commands in the command palette: {listed}"

    # The formgrader's pages are not served either (its server extension is off).
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{jupyter_lab['url']}/formgrader?token={jupyter_lab['token']}",
                               timeout=10)
    assert refused.value.code == 404


def test_make_lab_shows_validate_on_a_lab_in_my_labs(page, jupyter_lab):
    panel = open_notebook(page, jupyter_lab, MY_LAB)
    validate = panel.locator(".validate-button").get_by_text("Validate", exact=True)
    assert validate.is_visible()


def test_lab_solution_runs_and_passes_validate_in_jupyterlab(page, jupyter_lab):
    n_code_cells = code_cell_count(jupyter_lab["root"] / LAB)
    open_notebook(page, jupyter_lab, LAB)
    prompts = run_all_cells(page, n_code_cells)
    assert error_outputs(page) == [], "a cell of the lab's solution raised in JupyterLab"
    assert all(re.fullmatch(r"\[\d+\]:", prompt) for prompt in prompts), (
        f"Run All Cells did not run every code cell: prompts {prompts}")

    verdict = press_validate(page, VALIDATE_TIMEOUT_MS)
    print(f"Validate: {verdict}")
    assert verdict == VALIDATE_SUCCESS, (
        f"nbgrader's Validate did not pass the solution; its dialog says:\n{verdict}\n"
        f"server log:\n{jupyter_lab['log'].read_text()[-3000:]}")


def test_lesson_plots_render_in_jupyterlab(page, jupyter_lab, tmp_path):
    panel = open_notebook(page, jupyter_lab, LESSON)
    stored = sum("image/png" in output.get("data", {})
                 for cell in nbformat.read(jupyter_lab["root"] / LESSON, as_version=4).cells
                 for output in cell.get("outputs", []))
    # Outputs are attached cell by cell: wait until every stored plot is there and decoded.
    selector = f"{PANEL} .jp-OutputArea-output img"
    page.wait_for_function(
        """([selector, n]) => {
            const images = [...document.querySelectorAll(selector)];
            return images.length === n && images.every(img => img.complete && img.naturalWidth > 0);
        }""",
        arg=[selector, stored],
    )
    widths = panel.locator(".jp-OutputArea-output img").evaluate_all(
        "images => images.map(img => img.naturalWidth)")
    assert len(widths) == stored > 0 and min(widths) > 0, f"plots' natural widths: {widths}"
    panel.locator(".jp-OutputArea-output img").first.scroll_into_view_if_needed()
    # Cells scrolled into view are painted on the next frames: let two of them pass.
    page.evaluate("() => new Promise(done => "
                  "requestAnimationFrame(() => requestAnimationFrame(done)))")
    screenshot = tmp_path / "lesson01_in_jupyterlab.png"
    page.screenshot(path=str(screenshot))
    print(f"screenshot: {screenshot}")
    assert screenshot.stat().st_size > 10_000
