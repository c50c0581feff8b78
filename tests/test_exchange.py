"""A submission is files, nothing else: grading/files.py's copy, and `nbgrader collect` with the
course's nbgrader_config.py (grading/exchange.py's SafeCollect) on an inbound written by
hostile students.

The collect tests need root: they create two real accounts (useradd, removed afterwards),
since collect takes a folder only from the account its name says submitted it. Autograde's
copy is tested on the simulated class in test_grading_pipeline.py (hostile_dev_zero_link).
"""
import logging
import os
import resource
import shutil
import subprocess
import sys
from datetime import datetime, timezone

import pytest

from notebooks import IGNORED_NAMES, NBGRADER_CONFIG, REPO_ROOT

sys.path.insert(0, str(REPO_ROOT))
from grading.files import SubmissionRefused, copy_submission, read_timestamp  # noqa: E402

LAB = "lab01_forward_pass"
MB = 1_000_000
IS_ROOT = os.geteuid() == 0
as_root = pytest.mark.skipif(not IS_ROOT, reason="creating test accounts and files owned "
                             "by them needs root")


def _copy(src, dest, **limits):
    limits = {"max_file_bytes": MB, "max_total_bytes": 10 * MB, **limits}
    return {item.path: item.reason for item in copy_submission(src, dest, **limits)}


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# -- the copy ----------------------------------------------------------------------------------
def test_regular_files_are_copied_with_their_folders(tmp_path):
    (tmp_path / "in" / "data").mkdir(parents=True)
    (tmp_path / "in" / "notes.txt").write_text("mine")
    (tmp_path / "in" / "data" / "x.csv").write_text("1,2")
    assert _copy(tmp_path / "in", tmp_path / "out") == {}
    assert _files(tmp_path / "out") == ["data/x.csv", "notes.txt"]
    assert (tmp_path / "out" / "data" / "x.csv").read_text() == "1,2"


def test_links_pipes_and_devices_are_refused_and_named(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "answer.txt").write_text("mine")
    (folder / "zeros").symlink_to("/dev/zero")
    (folder / "secrets").symlink_to(tmp_path / "gradebook.db")
    (folder / "etc").symlink_to("/etc")
    os.mkfifo(folder / "pipe")
    refused = _copy(folder, tmp_path / "out")
    assert refused == {"zeros": "a symbolic link (to /dev/zero)",
                       "secrets": f"a symbolic link (to {tmp_path / 'gradebook.db'})",
                       "etc": "a symbolic link (to /etc)", "pipe": "a named pipe"}
    assert _files(tmp_path / "out") == ["answer.txt"]


def test_a_hard_link_is_refused(tmp_path):
    """A second name for a file: it could be any file of the same file system."""
    (tmp_path / "in").mkdir()
    (tmp_path / "elsewhere").write_text("not the student's")
    os.link(tmp_path / "elsewhere", tmp_path / "in" / "copy")
    assert "hard link" in _copy(tmp_path / "in", tmp_path / "out")["copy"]
    assert _files(tmp_path / "out") == []


def test_a_file_over_the_limit_is_refused(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "big.bin").write_bytes(b"x" * 2001)
    (tmp_path / "in" / "small.bin").write_bytes(b"x" * 2000)
    refused = _copy(tmp_path / "in", tmp_path / "out", max_file_bytes=2000)
    assert refused == {"big.bin": "larger than 2,000 bytes (the limit per file)"}
    assert _files(tmp_path / "out") == ["small.bin"]


def test_the_submission_limit_keeps_notebooks_first(tmp_path):
    (tmp_path / "in").mkdir()
    for name in ("a.bin", "b.bin", "lab.ipynb"):
        (tmp_path / "in" / name).write_bytes(b"x" * 400)
    refused = _copy(tmp_path / "in", tmp_path / "out", max_total_bytes=1000)
    assert list(refused) == ["b.bin"] and "per submission" in refused["b.bin"]
    assert _files(tmp_path / "out") == ["a.bin", "lab.ipynb"]


def test_a_folder_that_is_a_link_is_refused(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with pytest.raises(SubmissionRefused, match="is a symbolic link"):
        _copy(tmp_path / "link", tmp_path / "out")


@as_root
def test_files_of_another_account_are_refused(tmp_path):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "mine.txt").write_text("mine")
    (tmp_path / "in" / "theirs.txt").write_text("theirs")
    os.chown(tmp_path / "in" / "theirs.txt", 65534, 65534)
    refused = _copy(tmp_path / "in", tmp_path / "out", owner=0)
    assert refused == {"theirs.txt": "owned by user id 65534, not by the student (user id 0)"}
    with pytest.raises(SubmissionRefused, match="owned by user id 0"):
        _copy(tmp_path / "in", tmp_path / "out2", owner=65534)


@pytest.mark.parametrize("make, why", [
    (lambda path: path.symlink_to("/dev/zero"), "a symbolic link (to /dev/zero)"),
    (lambda path: os.mkfifo(path), "a named pipe"),
    (lambda path: path.write_text("2025-01-15 12:00:00 UTC" + " " * 2000), "larger than"),
])
def test_a_timestamp_that_is_not_a_small_file_counts_as_none(tmp_path, caplog, make, why):
    make(tmp_path / "timestamp.txt")
    with caplog.at_level(logging.WARNING):
        assert read_timestamp(tmp_path, logging.getLogger("test")) is None
    assert why in caplog.text and "timestamp.txt" in caplog.text


def test_a_timestamp_file_is_read(tmp_path, caplog):
    (tmp_path / "timestamp.txt").write_text("2025-01-15 12:00:00.000000 UTC\n")
    assert read_timestamp(tmp_path, logging.getLogger("test")) == datetime(2025, 1, 15, 12)
    (tmp_path / "timestamp.txt").write_text("yesterday, roughly")
    assert read_timestamp(tmp_path, logging.getLogger("test")) is None
    assert "not a time" in caplog.text


# -- nbgrader collect --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def accounts():
    """Two accounts of this machine, as students who submit with `nbgrader submit`."""
    if not IS_ROOT or not shutil.which("useradd"):
        pytest.skip("needs root and useradd to create the students' accounts")
    names = [f"bpx{os.getpid() % 100000}{who}" for who in ("ada", "bob")]
    for name in names:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                       check=True, capture_output=True)
    try:
        yield names
    finally:
        for name in names:
            subprocess.run(["userdel", name], check=False, capture_output=True)


def _course(root):
    shutil.copy2(NBGRADER_CONFIG, root / "nbgrader_config.py")
    shutil.copytree(REPO_ROOT / "grading", root / "grading",
                    ignore=shutil.ignore_patterns(*IGNORED_NAMES))
    (root / ".nbgrader").mkdir()  # collect creates the gradebook there before it copies
    inbound = root / ".nbgrader" / "exchange" / "backprop-lab" / "inbound"
    inbound.mkdir(parents=True)
    return inbound


def _submitted(inbound, student, when, owner, notebook="{}", **files):
    """A folder in the inbound as `nbgrader submit` writes it, owned by `owner`."""
    stamp = f"{datetime(2025, 1, 15, when, tzinfo=timezone.utc):%Y-%m-%d %H:%M:%S.%f} UTC"
    folder = inbound / f"{student}+{LAB}+{stamp}+{when:08x}"
    folder.mkdir()
    (folder / f"{LAB}.ipynb").write_text(notebook)
    if "timestamp.txt" not in files:
        (folder / "timestamp.txt").write_text(stamp)
    for name, target in files.items():
        (folder / name).symlink_to(target) if target != "fifo" else os.mkfifo(folder / name)
    for path in [folder, *folder.iterdir()]:
        os.chown(path, owner, owner, follow_symlinks=False)
    return folder


def _collect(root, *args):
    """`nbgrader collect` as the instructor (root), writing at most 50 MB per file: if a link
    to /dev/zero were followed, the test would fail instead of filling the disk."""
    def limit_file_size():
        resource.setrlimit(resource.RLIMIT_FSIZE, (50 * MB, 50 * MB))
    return subprocess.run([sys.executable, "-m", "nbgrader", "collect", LAB, *args],
                          cwd=root, capture_output=True, text=True, timeout=300,
                          preexec_fn=limit_file_size)


@pytest.fixture(scope="module")
def collected(tmp_path_factory, accounts):
    """An inbound with the honest work of two students and every way of handing in what is
    not one's own files; collected once."""
    import pwd
    ada, bob = accounts
    ada_id, bob_id = (pwd.getpwnam(name).pw_uid for name in accounts)
    root = tmp_path_factory.mktemp("exchange-course")
    inbound = _course(root)
    _submitted(inbound, ada, 10, ada_id, notebook='{"ada": "her own work"}')
    _submitted(inbound, ada, 11, bob_id, notebook='{"bob": "ada gets nothing"}')  # later
    _submitted(inbound, bob, 10, bob_id, notebook='{"bob": "his own work"}', **{
        "zeros.bin": "/dev/zero", "timestamp.txt": "/dev/zero",
        "grades.db": str(root / ".nbgrader" / "gradebook.db"), "shadow": "/etc/shadow",
        "pipe": "fifo"})
    _submitted(inbound, "nobody_here", 10, bob_id)  # no such account
    elsewhere = root / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / f"{LAB}.ipynb").write_text('{"from": "outside the inbound"}')
    (inbound / f"{bob}+{LAB}+2025-01-15 12:00:00.000000 UTC+link").symlink_to(elsewhere)
    run = _collect(root)
    return root, run, ada, bob


def test_collect_finishes(collected):
    root, run, *_ = collected
    assert run.returncode == 0, f"nbgrader collect failed:\n{run.stdout}\n{run.stderr}"


def test_each_student_gets_their_own_work_only(collected):
    root, run, ada, bob = collected
    submitted = root / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == sorted([ada, bob])
    assert (submitted / ada / LAB / f"{LAB}.ipynb").read_text() == '{"ada": "her own work"}'
    assert (submitted / bob / LAB / f"{LAB}.ipynb").read_text() == '{"bob": "his own work"}'
    assert _files(submitted / ada / LAB) == [f"{LAB}.ipynb", "timestamp.txt"]
    assert _files(submitted / bob / LAB) == [f"{LAB}.ipynb"]


@pytest.mark.parametrize("refused, why", [
    ("{ada}+{lab}+2025-01-15 11:00:00.000000 UTC+0000000b", "written by {bob} (user id"),
    ("nobody_here+{lab}+2025-01-15 10:00:00.000000 UTC+0000000a", "no account named"),
    ("{bob}+{lab}+2025-01-15 12:00:00.000000 UTC+link", "a symbolic link, not a folder"),
    ("/zeros.bin", "a symbolic link (to /dev/zero)"),
    ("/timestamp.txt", "a symbolic link (to /dev/zero)"),
    ("/grades.db", "a symbolic link (to {root}/.nbgrader/gradebook.db)"),
    ("/shadow", "a symbolic link (to /etc/shadow)"),
    ("/pipe", "a named pipe"),
])
def test_what_is_not_the_students_own_files_is_refused_and_reported(collected, refused, why):
    root, run, ada, bob = collected
    names = {"ada": ada, "bob": bob, "lab": LAB, "root": root}
    report = run.stdout.split("nbgrader collect refused", 1)[-1]
    lines = [line for line in report.splitlines() if why.format(**names) in line]
    assert [line for line in lines if refused.format(**names) in line], (
        f"collect's output does not report {refused.format(**names)!r} as "
        f"{why.format(**names)!r}:\n{run.stdout}")


def test_without_the_owner_rule_the_latest_folder_is_taken(tmp_path, accounts):
    """Where student ids are not accounts of the machine (require_owner = False), the folder
    named for a student is theirs, whoever wrote it (nbgrader's own rule)."""
    import pwd
    ada, bob = accounts
    inbound = _course(tmp_path)
    _submitted(inbound, ada, 10, pwd.getpwnam(ada).pw_uid, notebook='{"ada": "her work"}')
    _submitted(inbound, ada, 11, pwd.getpwnam(bob).pw_uid, notebook='{"bob": "forged"}')
    run = _collect(tmp_path, "--SafeCollect.require_owner=False")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "submitted" / ada / LAB / f"{LAB}.ipynb").read_text() == '{"bob": "forged"}'
    assert "cheating attempt?" in run.stderr  # nbgrader's warning, all it does
