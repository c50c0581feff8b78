"""nbgrader configuration of a class hub's course (hub/setup.py installs it as
{root}/code/nbgrader_config.py, root-owned; {root}/course/nbgrader_config.py loads it).

The repository's nbgrader_config.py (copied beside this file as backprop_nbgrader_config.py,
with grading/) sets how labs are graded; this file moves the class's state to the hub's
folders: the course directory, its gradebook, and the shared exchange.

Autograding runs every kernel in the sandbox (grading/sandbox.py), which needs root. The
formgrader runs as the grader account, so its Autograde button goes through the one command
root allows that account (`sudo -n /usr/local/sbin/<name>-autograde LAB STUDENT`, see
hub/autograde.py), which grades as root from this folder, where the grader can change nothing.
"""
import json
import os
import subprocess

c = get_config()  # noqa: F821 (provided by traitlets when nbgrader loads this file)

HERE = os.path.dirname(os.path.abspath(__file__))
load_subconfig(os.path.join(HERE, "backprop_nbgrader_config.py"))  # noqa: F821
with open(os.path.join(os.path.dirname(HERE), "hub.json")) as settings_file:
    HUB = json.load(settings_file)

c.CourseDirectory.root = HUB["course"]
c.CourseDirectory.db_url = "sqlite:///" + os.path.join(HUB["course"], ".nbgrader",
                                                       "gradebook.db")
c.Exchange.root = HUB["exchange"]
if os.environ.get("JUPYTERHUB_API_TOKEN"):  # in the formgrader service, not on the command line
    # Students added in formgrader join the hub group nbgrader-<course> (nbgrader's documented
    # JupyterHub mode); the roster's are in it already (hub/jupyterhub_config.py).
    c.Authenticator.plugin_class = "nbgrader.auth.JupyterHubAuthPlugin"

AUTOGRADE_TIMEOUT = 3600  # seconds for one submission, the sandbox's own limits included


def autograde_through_root_command(api, assignment_id, student_id, force=True, create=True):
    """NbGraderAPI.autograde (what formgrader's Autograde button calls) for a grader that is
    not root: the root command grades the submission in the sandbox. Its result is the API's:
    {"success", "log"} or {"success": False, "error", "log"}."""
    command = ["sudo", "-n", HUB["autograde_command"], assignment_id, student_id]
    try:
        done = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=AUTOGRADE_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as error:
        return {"success": False, "error": f"{' '.join(command)}: {error}", "log": ""}
    log = done.stdout + done.stderr
    if done.returncode == 0:
        return {"success": True, "log": log}
    return {"success": False, "log": log,
            "error": f"{' '.join(command)} exited with {done.returncode}:\n{log[-5000:]}"}


if os.geteuid() != 0:
    from nbgrader.apps.api import NbGraderAPI

    NbGraderAPI.autograde = autograde_through_root_command
