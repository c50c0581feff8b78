"""A submission is files, nothing else: how collect and autograde copy a student's folder.

nbgrader copies a submission with shutil (`copytree` in collect, `shutil.copy` in autograde)
and reads its `timestamp.txt` with `open()`: all follow symbolic links and read devices and
pipes as if they were files. As the grader (root), a file link to /dev/zero copies until the
disk is full, `timestamp.txt` -> /dev/zero is read until memory runs out, and a link to the
gradebook or /etc/shadow arrives in submitted/ as a copy of it.

`copy_submission` copies regular files only. Each file and folder is opened by a file
descriptor relative to its parent's, never following a link (a folder swapped for a link while
it is copied is refused too), and each file is checked on the descriptor it is read through:
a regular file with one name (a hard link could be any file of the file system), at most
`max_file_bytes`, all of them together at most `max_total_bytes`, and, for collect, owned by
the student. Everything else is refused and returned, named, with the reason.

`read_timestamp` reads `timestamp.txt` the same way. `guard_nbgrader_file_reads` makes
nbgrader's autograde use both (see there why that one needs a patch).
"""
import fnmatch
import os
import stat
from dataclasses import dataclass

# Opening never follows a link (ELOOP), and a named pipe opens at once instead of waiting for
# a writer; what was opened is then checked on its descriptor.
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_OPEN_FOLDER = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC
_CHUNK = 1 << 20
MAX_DEPTH = 16  # folders inside a submission; deeper ones are refused
MAX_TIMESTAMP_BYTES = 1000  # "2025-01-15 12:00:00.000000 UTC" is 30


@dataclass(frozen=True)
class Refused:
    """A file or folder of a submission that was not copied."""
    path: str  # relative to the submission's folder
    reason: str

    def __str__(self):
        return f"{self.path}: {self.reason}"


class SubmissionRefused(Exception):
    """The submission's folder itself cannot be copied (a link, not a folder, not the
    student's)."""


def kind_of(mode):
    """What a file of this mode is, in words."""
    for test, name in ((stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a folder"),
                       (stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a named pipe"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def _owner_problem(info, owner):
    if owner is None or info.st_uid == owner:
        return None
    return f"owned by user id {info.st_uid}, not by the student (user id {owner})"


def _open_or_problem(name, flags, dir_fd):
    """(descriptor, None), or (None, why it cannot be opened as a file or folder)."""
    try:
        return os.open(name, flags, dir_fd=dir_fd), None
    except OSError as error:
        try:
            kind = kind_of(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
        except OSError:
            kind = None
        if kind == "a symbolic link":
            return None, _link(name, dir_fd)
        return None, f"cannot be opened ({error.strerror})"


def _link(name, dir_fd):
    """'a symbolic link (to TARGET)', for the refusal to say where it led."""
    try:
        return f"a symbolic link (to {os.readlink(name, dir_fd=dir_fd)})"
    except OSError:
        return "a symbolic link"


def _open_regular_file(path, max_bytes):
    """(descriptor, None) for a regular file of at most `max_bytes`, or (None, why not)."""
    fd, problem = _open_or_problem(path, _OPEN_FILE, None)
    if fd is None:
        return None, problem
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        problem = kind_of(info.st_mode)
    elif info.st_size > max_bytes:
        problem = f"larger than {max_bytes:,} bytes (the limit per file)"
    if problem:
        os.close(fd)
        return None, problem
    return fd, None


class _Copy:
    """One submission's copy: the bytes copied so far and what was refused."""

    def __init__(self, max_file_bytes, max_total_bytes, owner, exclude):
        self.max_file_bytes, self.max_total_bytes = max_file_bytes, max_total_bytes
        self.owner, self.exclude = owner, list(exclude)
        self.copied_bytes, self.refused = 0, []

    def folder(self, fd, dest, relative, depth):
        names = sorted(os.listdir(fd), key=lambda n: (not n.endswith(".ipynb"), n))
        for name in names:
            if any(fnmatch.fnmatch(name, pattern) for pattern in self.exclude):
                continue
            path = os.path.join(relative, name) if relative else name
            info = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                self.subfolder(fd, name, os.path.join(dest, name), path, depth + 1)
            elif stat.S_ISREG(info.st_mode):
                self.file(fd, name, os.path.join(dest, name), path)
            elif stat.S_ISLNK(info.st_mode):
                self.refuse(path, _link(name, fd))
            else:
                self.refuse(path, kind_of(info.st_mode))

    def subfolder(self, parent_fd, name, dest, path, depth):
        if depth > MAX_DEPTH:
            return self.refuse(path, f"a folder more than {MAX_DEPTH} levels deep")
        fd, problem = _open_or_problem(name, _OPEN_FOLDER, parent_fd)
        if fd is None:
            return self.refuse(path, problem)
        try:
            problem = _owner_problem(os.fstat(fd), self.owner)
            if problem:
                return self.refuse(path, problem)
            os.makedirs(dest, mode=0o755, exist_ok=True)
            self.folder(fd, dest, path, depth)
        finally:
            os.close(fd)

    def file(self, parent_fd, name, dest, path):
        fd, problem = _open_or_problem(name, _OPEN_FILE, parent_fd)
        if fd is None:
            return self.refuse(path, problem)
        try:
            info = os.fstat(fd)
            problem = self.file_problem(info)
            if problem:
                return self.refuse(path, problem)
            left = min(self.max_file_bytes, self.max_total_bytes - self.copied_bytes)
            written = _copy_at_most(fd, dest, left)
            if written is None:  # it grew while it was read
                return self.refuse(path, self.size_problem(left + 1))
            self.copied_bytes += written
        finally:
            os.close(fd)

    def file_problem(self, info):
        if not stat.S_ISREG(info.st_mode):  # replaced since it was listed
            return kind_of(info.st_mode)
        if info.st_nlink > 1:
            return (f"a hard link ({info.st_nlink} names for one file, which may lie outside "
                    "the submission)")
        return _owner_problem(info, self.owner) or self.size_problem(info.st_size)

    def size_problem(self, size):
        if size > self.max_file_bytes:
            return f"larger than {self.max_file_bytes:,} bytes (the limit per file)"
        if self.copied_bytes + size > self.max_total_bytes:
            return (f"the submission would exceed {self.max_total_bytes:,} bytes (the limit "
                    "per submission)")
        return None

    def refuse(self, path, reason):
        self.refused.append(Refused(path, reason))


def _copy_at_most(fd, dest, limit):
    """Copy the open file `fd` to `dest` (replaced if it exists); the bytes copied, or None
    (and no `dest`) when it holds more than `limit`."""
    if os.path.lexists(dest):
        os.unlink(dest)
    written = 0
    with open(dest, "xb") as out:
        while chunk := os.read(fd, _CHUNK):
            written += len(chunk)
            if written > limit:
                break
            out.write(chunk)
    if written > limit:
        os.unlink(dest)
        return None
    return written


def copy_submission(src, dest, *, max_file_bytes, max_total_bytes, owner=None, exclude=()):
    """Copy the regular files of the folder `src` into `dest` (created), keeping its layout;
    return the list of `Refused` entries. `owner`: the user id every file and folder must
    belong to (None: any). `exclude`: name patterns skipped silently, as nbgrader's
    CourseDirectory.ignore. Raises SubmissionRefused when `src` itself is not a folder of
    `owner`'s."""
    fd, problem = _open_or_problem(src, _OPEN_FOLDER, None)
    if fd is None:
        raise SubmissionRefused(f"{src} is {problem}" if problem.startswith("a symbolic")
                                else f"{src} {problem}")
    try:
        problem = _owner_problem(os.fstat(fd), owner)
        if problem:
            raise SubmissionRefused(f"{src} is {problem}")
        copy = _Copy(max_file_bytes, max_total_bytes, owner, exclude)
        os.makedirs(dest, mode=0o755, exist_ok=True)
        copy.folder(fd, dest, "", 0)
        return copy.refused
    finally:
        os.close(fd)


def regular_file_problem(path, max_bytes):
    """Why `path` cannot be read as a regular file of at most `max_bytes` bytes, or None."""
    fd, problem = _open_regular_file(path, max_bytes)
    if fd is not None:
        os.close(fd)
    return problem


def read_timestamp(folder, log):
    """The time in `folder`/timestamp.txt, as nbgrader's CourseDirectory.get_existing_timestamp
    reads it, or None when there is none; a link, a special or a huge file, or text that is
    not a time, is logged and counts as no timestamp."""
    from nbgrader.utils import parse_utc

    path = os.path.join(folder, "timestamp.txt")
    if not os.path.lexists(path):
        return None
    fd, problem = _open_regular_file(path, MAX_TIMESTAMP_BYTES)
    if fd is not None:
        with os.fdopen(fd, "rb") as file:  # at most the limit, even if it grew since
            text = file.read(MAX_TIMESTAMP_BYTES).decode("utf-8", "replace").strip()
    if problem:
        log.warning("Timestamp refused, the submission counts as having none: %s is %s",
                    path, problem)
        return None
    if not text:
        log.warning("Empty timestamp file: %s", path)
        return None
    try:
        return parse_utc(text)
    except (ValueError, OverflowError) as error:
        log.warning("Timestamp ignored, the submission counts as having none: %s holds %r, "
                    "not a time (%s)", path, text[:60], error)
        return None
