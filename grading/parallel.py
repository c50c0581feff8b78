"""Autograde many submissions at once: `make autograde LAB=... JOBS=N`, or

    python -m grading.parallel LAB [--jobs N] [--force] [--Class.trait=value ...]

run from the course folder (where nbgrader_config.py is). LAB is a lab folder name or '*'.
Options of the form --Class.trait=value are nbgrader's, as `nbgrader autograde` takes them.

N worker processes (default: the machine's cores) each load nbgrader's configuration once and
then run nbgrader's own `Autograde` converter (what `nbgrader autograde LAB --student=ID --force`
runs) for one submission at a time, so each submission gets its own sandboxed kernel and checker
as a serial run gives it, without nbgrader's start-up of a few seconds per submission.

- The gradebook (sqlite) is shared: sqlite lets one writer in at a time, and each worker's
  connection waits up to `BUSY_SECONDS` for its turn (`gradebook_url`) instead of failing with
  `database is locked` after sqlite's default 5 s.
- Each worker draws its kernels' user ids from a slice of `SandboxedKernelManager.uid_range` of
  its own, so two sandboxes running at once never share one (the sandbox kills every process of
  its user id when its kernel ends).
- A submission that cannot be graded (nbgrader fails on it, or the worker dies) is named as it
  fails and at the end (exit status 1); the others are graded all the same. What each
  submission logged, with whatever its kernel printed to stderr, goes to one log file, a block
  per submission.
- What was graded is remembered in `autograded/.autograde-state.json` (a digest of each
  submission's files): a second run grades only submissions that are new, changed since, or
  failed, unless --force. A folder without a notebook is named and skipped, as nbgrader skips it.
"""
import argparse
import hashlib
import json
import logging
import multiprocessing
import os
import resource
import signal
import sys
import tempfile
import time
import traceback
from multiprocessing.connection import wait
from pathlib import Path

BUSY_SECONDS = 600  # how long a worker waits for the gradebook before it gives up
STATE_FILE = ".autograde-state.json"
LOG_FILE = ".autograde.log"


# -- what to grade --------------------------------------------------------------------------------
def find_submissions(submitted, lab):
    """([(lab, student)] folders holding a notebook, [(lab, student)] folders without one) under
    `submitted` (the course's submitted/ folder) for `lab` ('*': every lab), sorted."""
    with_notebook, without = [], []
    for folder in sorted(Path(submitted).glob(f"*/{lab}")):
        if folder.is_dir() and not folder.is_symlink():
            key = (folder.name, folder.parent.name)
            (with_notebook if any(folder.glob("*.ipynb")) else without).append(key)
    return with_notebook, without


def submission_digest(folder):
    """A digest of a submission's files (names and contents; links by their target, unread)."""
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        if ".ipynb_checkpoints" in path.parts:
            continue
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        if path.is_symlink():
            digest.update(b"link " + os.readlink(path).encode())
        elif path.is_file():
            with open(path, "rb") as file:
                for block in iter(lambda: file.read(1 << 20), b""):
                    digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


class GradingState:
    """{"lab/student": digest of the files last graded successfully}, in a JSON file."""

    def __init__(self, path):
        self.path = Path(path)
        try:
            self.digests = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.digests = {}

    def is_current(self, lab, student, digest):
        return self.digests.get(f"{lab}/{student}") == digest

    def record(self, lab, student, digest):
        """Remember a success (digest) or forget a failure (None), on disk at once."""
        if digest is None:
            self.digests.pop(f"{lab}/{student}", None)
        else:
            self.digests[f"{lab}/{student}"] = digest
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.digests, indent=0, sort_keys=True))
        os.replace(temporary, self.path)


# -- one worker -----------------------------------------------------------------------------------
def gradebook_url(db_url, seconds=BUSY_SECONDS):
    """`db_url` with sqlite's busy timeout set to `seconds` (other databases: unchanged)."""
    if not db_url.startswith("sqlite") or "timeout=" in db_url:
        return db_url
    return f"{db_url}{'&' if '?' in db_url else '?'}timeout={seconds}"


def uid_slice(uid_range, index, count):
    """The `index`-th of `count` disjoint parts of a "low-high" range of user ids."""
    low, high = (int(n) for n in uid_range.split("-"))
    size = (high - low + 1) // count
    if size < 2:
        raise ValueError(f"uid_range {uid_range} is too small for {count} workers")
    return f"{low + index * size}-{low + (index + 1) * size - 1}"


class Grader:
    """nbgrader's AutogradeApp, configured once as `nbgrader autograde` would be (config file,
    then `nbgrader_args`), that grades one submission per call."""

    def __init__(self, nbgrader_args, index=0, count=1):
        from nbgrader.apps import AutogradeApp
        from traitlets.config import Config

        self.app = AutogradeApp()
        self.app.initialize(["*", *nbgrader_args])
        self.app.coursedir.db_url = gradebook_url(self.app.coursedir.db_url)
        uid_range = self.app.config.get("SandboxedKernelManager", {}).get("uid_range",
                                                                          "200000-999999")
        self.app.update_config(Config({"SandboxedKernelManager": {
            "uid_range": uid_slice(uid_range, index, count)}}))
        self.log = tempfile.TemporaryFile("w+")  # nbgrader's log, one submission at a time
        for handler in self.app.log.handlers:
            if isinstance(handler, logging.StreamHandler):
                handler.setStream(self.log)
        self.log_level = self.app.log.level

    def grade(self, lab, student):
        """{"ok", "log", "error"}: nbgrader's Autograde converter on one submission."""
        from nbgrader.converters import Autograde
        from nbgrader.utils import temp_attrs

        self.log.seek(0)
        self.log.truncate()
        stray = os.lseek(2, 0, os.SEEK_END)  # fd 2 is a file here (`_work`)
        self.app.log.setLevel(self.log_level)
        error = None
        try:
            with temp_attrs(self.app.coursedir, assignment_id=lab, student_id=student):
                converter = Autograde(coursedir=self.app.coursedir, parent=self.app)
                converter.force = True
                converter.create_student = True
                converter.start()
        except Exception:  # noqa: BLE001 (nbgrader's failures, whatever they are, are reported)
            error = traceback.format_exc()
        sys.stderr.flush()
        self.log.flush()
        self.log.seek(0)
        log = self.log.read()
        os.lseek(2, stray, os.SEEK_SET)
        printed = os.read(2, 1 << 20).decode(errors="replace")
        if printed.strip():
            log += f"(printed to stderr while grading)\n{printed}"
        return {"ok": error is None, "log": log, "error": error,
                "peak_bytes": 1024 * resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def _work(index, count, nbgrader_args, connection):
    """A worker process: a Grader, then one (lab, student) after another from `connection`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    stderr = tempfile.TemporaryFile("w+b")  # kernels' and libraries' stray output: in the log
    os.dup2(stderr.fileno(), 2)
    try:
        grader = Grader(nbgrader_args, index, count)
    except BaseException:  # noqa: BLE001 (reported to the main process, which stops)
        connection.send({"ready": False, "error": traceback.format_exc()})
        return
    connection.send({"ready": True})
    while (job := connection.recv()) is not None:
        connection.send(grader.grade(*job))


# -- the pool ------------------------------------------------------------------------------------
class WorkerFailed(Exception):
    """A worker could not start (nbgrader's configuration failed)."""


class Pool:
    """`jobs` worker processes, each grading one submission at a time. A worker that dies is
    replaced; the submission it was grading is reported failed."""

    def __init__(self, jobs, nbgrader_args):
        self.jobs, self.nbgrader_args = jobs, nbgrader_args
        self.context = multiprocessing.get_context("spawn")
        self.workers = {}  # index -> [process, connection, job or None, started]

    def _start(self, index):
        ours, theirs = self.context.Pipe()
        process = self.context.Process(target=_work, daemon=True, name=f"grader-{index}",
                                       args=(index, self.jobs, self.nbgrader_args, theirs))
        process.start()
        theirs.close()
        self.workers[index] = [process, ours, "starting", time.monotonic()]

    def start(self):
        """Start every worker (each takes seconds to load nbgrader: the caller can meanwhile
        find what to grade)."""
        for index in range(self.jobs):
            if index not in self.workers:
                self._start(index)

    def run(self, todo, on_result):
        """Grade every (lab, student) of `todo`; on_result(lab, student, result, seconds)."""
        todo = list(todo)
        for index in [i for i in self.workers if i >= len(todo)]:  # more workers than work
            process, connection = self.workers.pop(index)[:2]
            process.terminate()
            process.join()
            connection.close()
        for index in range(min(self.jobs, len(todo))):
            if index not in self.workers:
                self._start(index)
        try:
            while any(worker[2] is not None for worker in self.workers.values()) or todo:
                self._step(todo, on_result)
        finally:
            self.close()

    def _step(self, todo, on_result):
        for index, (process, connection, job, _) in list(self.workers.items()):
            if job is None and todo:
                self._give(index, todo.pop(0))
        busy = {w[1]: i for i, w in self.workers.items() if w[2] is not None}
        sentinels = {w[0].sentinel: i for i, w in self.workers.items() if w[2] is not None}
        for ready in wait([*busy, *sentinels]):
            index = busy.get(ready, sentinels.get(ready))
            process, connection, job, started = self.workers[index]
            if job is None:
                continue
            try:
                result = connection.recv() if connection.poll() else None
            except (EOFError, OSError):
                result = None
            if result is None and process.is_alive():
                continue  # the sentinel of a live process: not ready yet
            if job == "starting":
                if not (result or {}).get("ready"):
                    raise WorkerFailed((result or {}).get("error")
                                       or f"a grading process exited ({process.exitcode})")
                self.workers[index][2] = None
                continue
            if result is None:  # the worker died while grading
                result = {"ok": False, "log": "", "error": (
                    f"the grading process died (exit code {process.exitcode})")}
                process.join()
                self._start(index)
            else:
                self.workers[index][2] = None
            on_result(*job, result, time.monotonic() - started)

    def _give(self, index, job):
        self.workers[index][1].send(job)
        self.workers[index][2:] = [job, time.monotonic()]

    def close(self):
        for process, connection, job, _ in self.workers.values():
            try:
                if job is None:
                    connection.send(None)
            except OSError:
                pass
        for process, connection, job, _ in self.workers.values():
            process.join(timeout=5 if job is None else 0)
            if process.is_alive():
                process.terminate()
                process.join()
            connection.close()
        self.workers = {}


# -- the command ---------------------------------------------------------------------------------
def default_jobs():
    """The cores this process may run on (what `nproc` prints)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _course(nbgrader_args):
    """nbgrader's CourseDirectory as `nbgrader autograde` would configure it, and why its
    kernels cannot be sandboxed as configured (None: they can, or need not be)."""
    from nbgrader.apps import AutogradeApp

    from .sandbox import SandboxedKernelManager, sandbox_problem

    app = AutogradeApp()
    app.initialize(["*", *nbgrader_args])
    sandboxed = SandboxedKernelManager(parent=app).sandbox  # as configured
    return app.coursedir, sandbox_problem() if sandboxed else None


def _missing_labs(coursedir, labs):
    """Labs that have submissions but are not in the gradebook (never released)."""
    from nbgrader.api import Gradebook, MissingEntry

    missing = []
    with Gradebook(gradebook_url(coursedir.db_url), coursedir.course_id) as gradebook:
        for lab in sorted(labs):
            try:
                gradebook.find_assignment(lab)
            except MissingEntry:
                missing.append(lab)
    return missing


class Report:
    """Progress (a bar on a terminal, a line per submission otherwise), the log file, the
    state file and the list of failures."""

    def __init__(self, total, log_path, state, digests, jobs):
        from tqdm import tqdm

        self.state, self.digests, self.failed, self.graded = state, digests, [], 0
        self.peak_bytes = 0  # the most memory one worker process held (not its kernels)
        self.log = open(log_path, "a", encoding="utf-8")
        self.total, self.started = total, time.monotonic()
        self.bar = tqdm(total=total, unit="submission", dynamic_ncols=True, disable=None,
                        desc=f"grading ({jobs} at once)")
        self.bar.set_postfix(done=0, failed=0)

    def __call__(self, lab, student, result, seconds):
        name = f"{lab}/{student}"
        outcome = "graded" if result["ok"] else "FAILED"
        self.log.write(f"==== {name}: {outcome} in {seconds:.1f} s ====\n{result['log']}")
        if result["error"]:
            self.log.write(result["error"])
        self.log.write("\n")
        self.log.flush()
        self.state.record(lab, student, self.digests[lab, student] if result["ok"] else None)
        self.peak_bytes = max(self.peak_bytes, result.get("peak_bytes", 0))
        if result["ok"]:
            self.graded += 1
        else:
            self.failed.append(name)
            self.bar.write(f"FAILED {name}: {_reason(result)}", file=sys.stderr)
        self.bar.update(1)
        self.bar.set_postfix(done=self.graded, failed=len(self.failed))
        if self.bar.disable:
            print(f"[{self.graded + len(self.failed)}/{self.total}] {name} {outcome} "
                  f"({seconds:.1f} s)", flush=True)

    def close(self):
        self.bar.close()
        self.log.close()
        return time.monotonic() - self.started


def _reason(result):
    """One line saying why a submission failed: the exception of the first traceback logged
    (nbgrader logs the error, then raises an exception that only says to read the log)."""
    for text in (result["log"], result["error"] or ""):
        lines = text.splitlines()
        start = next((at for at, line in enumerate(lines)
                      if "Traceback (most recent call last)" in line), None)
        frames = [line for line in lines[start or 0:] if line.lstrip().startswith("File ")]
        if start is None or not frames:
            continue
        indent = len(frames[0]) - len(frames[0].lstrip())
        for line in lines[start + 1:]:
            if line.strip() and len(line) - len(line.lstrip()) < indent:
                return line.strip()[:300]
    return (result["error"] or "see the log").strip().splitlines()[-1][:300]


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m grading.parallel",
        description="Autograde every submission of a lab, several at once (nbgrader's "
                    "Autograde in long-lived worker processes). Options --Class.trait=value "
                    "are passed to nbgrader.")
    parser.add_argument("lab", help="lab folder name, e.g. lab01_forward_pass, or '*'")
    parser.add_argument("--jobs", "-j", type=int, default=default_jobs(),
                        help="submissions graded at once (default: the machine's cores, %(default)s)")
    parser.add_argument("--force", action="store_true",
                        help="grade every submission again, changed or not")
    parser.add_argument("--log", help=f"log file (default: autograded/{LOG_FILE}, appended)")
    args, nbgrader_args = parser.parse_known_args(argv)
    unknown = [a for a in nbgrader_args if not (a.startswith("--") and "." in a.split("=")[0])]
    if unknown:
        parser.error(f"unknown option(s) {' '.join(unknown)}: nbgrader options are written "
                     "--Class.trait=value")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")

    pool = Pool(args.jobs, nbgrader_args)
    pool.start()  # the workers load nbgrader while this process finds what to grade
    try:
        return _grade(args, nbgrader_args, pool)
    finally:
        pool.close()


def _grade(args, nbgrader_args, pool):
    coursedir, problem = _course(nbgrader_args)
    if problem:
        print(f"Cannot sandbox the grading kernels: {problem}", file=sys.stderr)
        return 2
    root = Path(coursedir.root)
    submitted, autograded = root / coursedir.submitted_directory, root / coursedir.autograded_directory
    found, without_notebook = find_submissions(submitted, args.lab)
    for lab, student in without_notebook:
        print(f"skipped {lab}/{student}: {submitted / student / lab} holds no notebook",
              file=sys.stderr)
    if not found:
        print(f"Nothing to grade: no notebook in {submitted}/*/{args.lab}/. Put each "
              f"student's work in submitted/<student>/<lab>/ (or `nbgrader collect`).",
              file=sys.stderr)
        return 2 if not without_notebook else 0
    missing = _missing_labs(coursedir, {lab for lab, _ in found})
    if missing:
        print(f"Not in the gradebook: {', '.join(missing)}. Run `make release LAB=<lab>` "
              "(nbgrader generate_assignment) for it first.", file=sys.stderr)
        return 2

    state = GradingState(autograded / STATE_FILE)
    digests = {(lab, s): submission_digest(submitted / s / lab) for lab, s in found}
    todo = [(lab, s) for lab, s in found
            if args.force or not state.is_current(lab, s, digests[lab, s])
            or not (autograded / s / lab).is_dir()]
    unchanged = len(found) - len(todo)
    jobs = min(args.jobs, len(todo)) or 1
    print(f"{args.lab}: {len(found)} submissions, {len(todo)} to grade with {jobs} worker(s)"
          + (f", {unchanged} unchanged since last graded (--force grades them again)"
             if unchanged else ""), file=sys.stderr)
    if not todo:
        return 0
    log_path = Path(args.log) if args.log else autograded / LOG_FILE
    log_path.parent.mkdir(parents=True, exist_ok=True)
    report = Report(len(todo), log_path, state, digests, jobs)
    try:
        pool.run(todo, report)
    except WorkerFailed as failure:
        report.close()
        print(f"The grading processes could not start:\n{failure}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        report.close()
        print(f"Stopped: {report.graded} graded; run again to grade the rest.", file=sys.stderr)
        return 130
    seconds = report.close()
    print(f"{args.lab}: {report.graded} graded, {len(report.failed)} failed, in {seconds:.0f} s "
          f"({60 * len(todo) / max(seconds, 1e-9):.1f} submissions per minute; a worker held "
          f"at most {report.peak_bytes / 1e6:.0f} MB). Log: {log_path}", file=sys.stderr)
    if report.failed:
        print("Could not be graded (see the log): " + ", ".join(report.failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
