"""Hostile students whose attack is a file or the size of an output, not code: registered in
submissions.STUDENTS by the import at the end of hostile/students.py.

Neither has a line of code that tools/audit_submissions.py (which reads code) could point at,
so the grading test does not expect the audit to flag them (`NOTHING_TO_READ`); collect and
autograde log the files they refuse, by name.
"""
from submissions import Submission, student

NOTHING_TO_READ = {"hostile_dev_zero_link", "hostile_huge_error"}


@student
def hostile_dev_zero_link(lab):
    """Right answers; hands in a file link to /dev/zero next to the notebook, and a
    `timestamp.txt` that is one too (copied or read as the grader, they fill its disk or its
    memory)."""
    return Submission(lab.answered(), lab.total,
                      files={"data.bin": ("link", "/dev/zero"),
                             "timestamp.txt": ("link", "/dev/zero")})


@student
def hostile_huge_error(lab):
    """The answer that most other work depends on raises an exception with a 200 MB message
    when its cell runs (so its functions are never defined); the others are right."""
    target = lab.costliest_answer()
    code = 'raise ValueError("x" * 200_000_000)\n' + lab.student_code(target)
    return Submission(lab.answered(**{target: code}), lab.points_without(target))
