"""<name>-autograde LAB [STUDENT]: autograde a class hub's submissions in the sandbox, as root.

hub/setup.py installs this file as /usr/local/sbin/<name>-autograde (root-owned, 0755, with
the class's settings path above this docstring) and lets the grader account run it through
one sudo rule; the formgrader's Autograde button calls it (hub/course_nbgrader_config.py).

It takes a lab folder of the course's solutions/ and, optionally, one student whose
submission of it is in submitted/ (then it regrades: --force), checks both strictly, runs
`nbgrader autograde` as root from the root-owned {root}/code folder (its nbgrader_config.py
and grading/, which the grader account cannot change), with the course environment and a
clean environment, and gives the grader what it wrote in autograded/ and the gradebook.
"""
import json
import os
import pwd
import re
import stat
import subprocess
import sys

LAB = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
STUDENT = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
PROGRAM = os.path.basename(sys.argv[0])


def fail(message):
    print(f"{PROGRAM}: {message}", file=sys.stderr)
    sys.exit(2)


def is_real_dir(path):
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)  # lstat: a link to a folder is not one
    except OSError:
        return False


def check_no_link(path):
    if os.path.islink(path):
        fail(f"{path} is a symbolic link: refusing to write through it as root")


def give_to(owner, path):
    """Root's new files and folders under `path` become the grader's (links not followed)."""
    if not os.path.lexists(path):
        return
    entries = [path]
    if is_real_dir(path):
        for folder, folders, files in os.walk(path):
            entries += [os.path.join(folder, name) for name in folders + files]
    for entry in entries:
        if os.lstat(entry).st_uid == 0:
            os.lchown(entry, owner.pw_uid, owner.pw_gid)


def main(argv):
    if os.geteuid() != 0:
        fail("runs as root: sudo " + PROGRAM + " LAB [STUDENT]")
    if len(argv) not in (1, 2):
        fail("usage: " + PROGRAM + " LAB [STUDENT]")
    with open(SETTINGS) as settings_file:  # noqa: F821 (the line above this docstring)
        settings = json.load(settings_file)
    course, grader = settings["course"], pwd.getpwnam(settings["grader"])
    lab, student = argv[0], (argv[1] if len(argv) == 2 else None)
    if not LAB.fullmatch(lab):
        fail(f"{lab!r} is not a lab folder name")
    for folder in ("", "solutions", "submitted", "autograded", ".nbgrader"):
        check_no_link(os.path.join(course, folder))
    if not is_real_dir(os.path.join(course, "solutions", lab)):
        fail(f"no lab {lab} in {course}/solutions")
    command = [f"{settings['env']}/bin/nbgrader", "autograde", lab]
    if student is not None:
        if not STUDENT.fullmatch(student):
            fail(f"{student!r} is not a student id")
        if not is_real_dir(os.path.join(course, "submitted", student, lab)):
            fail(f"no submission of {lab} by {student} in {course}/submitted")
        check_no_link(os.path.join(course, "autograded", student))
        command += ["--student", student, "--force"]
    env = {"PATH": f"{settings['env']}/bin:/usr/bin:/bin", "HOME": "/root", "LANG": "C.UTF-8",
           "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           # no configuration of root's own: only the environment's and {root}/code's
           "JUPYTER_CONFIG_DIR": os.path.join(settings["code"], ".jupyter")}
    with open(os.path.join(settings["root"], "course-secret")) as secret:  # root's, 0600
        env["BACKPROP_COURSE_SECRET"] = secret.read().strip()
    status = subprocess.run(command, cwd=settings["code"], env=env,
                            stdin=subprocess.DEVNULL).returncode
    autograded = os.path.join(course, "autograded")
    if os.path.lexists(autograded) and os.lstat(autograded).st_uid == 0:
        os.lchown(autograded, grader.pw_uid, grader.pw_gid)  # made by this run
    give_to(grader, os.path.join(autograded, student) if student else autograded)
    gradebook = os.path.join(course, ".nbgrader", "gradebook.db")
    if os.path.lexists(gradebook) and os.lstat(gradebook).st_uid == 0:
        os.lchown(gradebook, grader.pw_uid, grader.pw_gid)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
