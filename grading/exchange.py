"""How nbgrader takes a submission in: `nbgrader collect` from the exchange, and autograde's
copy of submitted/ (both configured in nbgrader_config.py).

- `SafeCollect` (`c.ExchangeFactory.collect`): nbgrader's collect, which takes a folder of the
  exchange's inbound for the submission of the student its name says and copies it with
  shutil.copytree (following file links). Here a folder counts only if it is a real folder
  owned by the operating-system account of the student it names (`nbgrader submit` runs as
  the student and names the folder after their account); of those, each student's latest is
  collected as before. Only regular files are copied (grading/files.py). Whatever is refused
  is logged and listed at the end of collect's output.
- `guard_nbgrader_file_reads()`: autograde copies submitted/ the same way and reads
  timestamp.txt with open(); this makes it use grading/files.py too.

Limits, nbgrader's own settings: `CourseDirectory.max_file_size` per file and
`CourseDirectory.max_dir_size` per submission (kilobytes, 1000 bytes).
"""
import glob
import os
import pwd
import shutil
import stat
from collections import defaultdict

from nbgrader.exchange.default.collect import ExchangeCollect
from traitlets import Bool

from .files import (SubmissionRefused, copy_submission, kind_of, read_timestamp,
                    regular_file_problem)


def size_limits(coursedir):
    """(bytes per file, bytes per submission) from nbgrader's settings, in kilobytes."""
    return 1000 * coursedir.max_file_size, 1000 * coursedir.max_dir_size


class SafeCollect(ExchangeCollect):
    """nbgrader's collect, taking from the inbound only regular files, from the account that
    each folder's name says submitted it."""

    require_owner = Bool(True, help=(
        "Collect a folder of the inbound only if it and its files belong to the operating-"
        "system account named like the student it is for (what `nbgrader submit` writes); "
        "others are refused and listed. Set False where student ids are not accounts of "
        "this machine (folders put into the inbound by hand or by another tool): then any "
        "account's folder is taken, and nbgrader only warns when its owner differs."
    )).tag(config=True)

    def init_src(self):
        super().init_src()  # checks the course's inbound and reads the due date
        self.refused, self._owners = [], {}
        student_id = self.coursedir.student_id or "*"
        pattern = os.path.join(self.inbound_path,
                               f"{student_id}+{self.coursedir.assignment_id}+*")
        accepted = [record for record in map(self._path_to_record, sorted(glob.glob(pattern)))
                    if self._accepted(record)]
        by_student = defaultdict(list)
        for record in accepted:
            by_student[record["username"]].append(record)
        self.src_records = [self._chosen(records) for records in by_student.values()]

    def _chosen(self, records):
        """The student's folder to collect: as nbgrader chooses, among the accepted ones."""
        records = self._sort_by_timestamp(records)
        if self.duedate is not None and self.before_duedate:
            return next((r for r in records if r["timestamp"] <= self.duedate), records[0])
        return records[0]

    def _accepted(self, record):
        path = os.path.join(self.inbound_path, record["filename"])
        try:
            info = os.lstat(path)
        except OSError as error:  # removed since it was listed
            return self._refuse(record["filename"], f"cannot be read ({error.strerror})")
        if not stat.S_ISDIR(info.st_mode):
            return self._refuse(record["filename"], f"{kind_of(info.st_mode)}, not a folder")
        if not self.require_owner:
            return True
        student = record["username"]
        try:
            uid = pwd.getpwnam(student).pw_uid
        except KeyError:
            return self._refuse(record["filename"], (
                f"no account named {student!r} on this machine, so nobody can have submitted "
                "it as that student (set SafeCollect.require_owner = False where student ids "
                "are not accounts)"))
        if info.st_uid != uid:
            return self._refuse(record["filename"], (
                f"written by {_account(info.st_uid)}, not by {student}: a submission for "
                "someone else"))
        self._owners[path] = uid
        return True

    def do_copy(self, src, dest, log=None):
        max_file, max_total = size_limits(self.coursedir)
        try:
            refused = copy_submission(src, dest, max_file_bytes=max_file,
                                      max_total_bytes=max_total, owner=self._owners.get(src),
                                      exclude=self.coursedir.ignore)
        except SubmissionRefused as why:  # swapped for a link since it was accepted
            shutil.rmtree(dest, ignore_errors=True)
            self._refuse(os.path.basename(src), str(why))
            return
        for item in refused:
            self._refuse(f"{os.path.basename(src)}/{item.path}", item.reason)

    def copy_files(self):
        super().copy_files()
        if self.refused:
            lines = "\n".join(f"  {path}: {reason}" for path, reason in self.refused)
            print(f"nbgrader collect refused {len(self.refused)} folder(s) or file(s) of the "
                  f"inbound ({self.inbound_path}); nothing of them was copied:\n{lines}",
                  flush=True)

    def _refuse(self, path, reason):
        self.log.error("Refused %s: %s", path, reason)
        self.refused.append((path, reason))
        return False


def _account(uid):
    try:
        return f"{pwd.getpwuid(uid).pw_name} (user id {uid})"
    except KeyError:
        return f"user id {uid}"


def guard_nbgrader_file_reads():
    """Make autograde copy submitted/<student>/<lab>/ with grading/files.py (regular files
    only, within CourseDirectory.max_file_size and max_dir_size, refusals logged by name),
    refuse to grade a notebook that is not a regular file within the limit, and read every
    timestamp.txt safely (a link, special or huge file counts as no timestamp).

    A patch, because nothing in nbgrader's configuration reaches these reads: AutogradeApp
    builds its `Autograde` converter and the `CourseDirectory` itself (neither class can be
    configured), the copy is in BaseConverter.init_assignment, the timestamp is read by
    CourseDirectory.get_existing_timestamp (also before any hook runs, in init_destination),
    and the documented `pre_convert_hook` can only add work before init_assignment (it
    cannot change how it copies, and its exceptions are swallowed). Checked against nbgrader
    0.9.6; other versions get the same two methods replaced, so check them again on an
    upgrade (the grading pipeline test fails if autograde copies a link again)."""
    from nbgrader.converters import Autograde, BaseConverter
    from nbgrader.coursedir import CourseDirectory

    if getattr(BaseConverter.init_assignment, "guards_files", False):
        return  # installed already (the config file is read more than once)
    nbgrader_init_assignment = BaseConverter.init_assignment

    def init_assignment(self, assignment_id, student_id):
        if not isinstance(self, Autograde):  # the instructor's own folders: as nbgrader does
            return nbgrader_init_assignment(self, assignment_id, student_id)
        source = self.coursedir.format_path(self.coursedir.submitted_directory, student_id,
                                            assignment_id)
        max_file, max_total = size_limits(self.coursedir)
        for notebook in self.notebooks:
            problem = regular_file_problem(notebook, max_file)
            if problem:
                raise SubmissionRefused(f"{notebook} is {problem}: it is not graded")
        refused = copy_submission(source, self._format_dest(assignment_id, student_id),
                                  max_file_bytes=max_file, max_total_bytes=max_total,
                                  exclude=self.coursedir.ignore + ["*.ipynb"])
        for item in refused:
            self.log.warning("Not copied from %s: %s", source, item)

    def get_existing_timestamp(self, dest_path):
        return read_timestamp(dest_path, self.log)

    init_assignment.guards_files = True
    BaseConverter.init_assignment = init_assignment
    CourseDirectory.get_existing_timestamp = get_existing_timestamp
