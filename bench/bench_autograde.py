"""Time autograding a synthetic class of lab 01 with 1 and 2 workers (grading/parallel.py).

A throw-away course (built as tests/test_grading_pipeline.py builds its own) receives lab 01 from
`--students` students, in a fixed mix of every 10: 3 correct, 2 half done (the later half of the
answers left as released), 2 blank, 2 crashing (the answer most others use raises) and 1 looping
(an infinite loop, cut after `--cell-timeout` seconds in each of the 2 cells that call it). Each
worker count grades its own fresh copy of the course with `python -m grading.parallel --jobs N`;
the report gives wall-clock time, submissions per minute, seconds per submission, the speed-up
over the first count, and whether every run wrote the same grades.

    python bench/bench_autograde.py                     # 200 students, 1 and 2 workers
    python bench/bench_autograde.py --students 30 --jobs 1,2,4 --output FILE
    make bench-grading STUDENTS=30

The machine's load average is printed before and after: other programs slow grading, and they
slow a 2-worker run more than a 1-worker run on a 2-core machine.
"""
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import bench_arguments, emit_report, machine_lines

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT / "tests"), str(REPO_ROOT)]
from submissions import STUDENTS, half_done  # noqa: E402
from test_grading_pipeline import (COURSE_ID, FIRST_LAB, NO_SANDBOX, _lab,  # noqa: E402
                                   _make_course, _submit)

MIX = ("correct", "half_done", "blank", "exception", "correct", "half_done", "infinite_loop",
       "blank", "correct", "exception")
KIND_NAMES = {"exception": "crashing", "infinite_loop": "looping"}
# Hidden tests draw their inputs from the course secret (docs/instructors.md): every run of the
# bench grades with the same one, the environment's if set, else one made up for the bench.
COURSE_SECRET = os.environ.get("BACKPROP_COURSE_SECRET") or secrets.token_hex(16)


def make_class(root, students):
    """A course at `root` with lab 01 generated and `students` submissions; {student: points}."""
    _make_course(root)
    subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", FIRST_LAB,
                    "--force"], cwd=root, check=True, capture_output=True)
    lab = _lab(root, f"{FIRST_LAB}/{FIRST_LAB}.ipynb")
    made = {kind: half_done(lab) if kind == "half_done" else STUDENTS[kind](lab)
            for kind in set(MIX)}
    expected = {}
    for number in range(students):
        kind = MIX[number % len(MIX)]
        student = f"s{number:03d}_{KIND_NAMES.get(kind, kind)}"
        _submit(root, student, FIRST_LAB, {f"{FIRST_LAB}.ipynb": made[kind]})
        expected[student] = made[kind].points
    return expected


def scores(root):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / '.nbgrader' / 'gradebook.db'}", COURSE_ID) as gradebook:
        return {s.student_id: s.score for s in gradebook.assignment_submissions(FIRST_LAB)}


def grade(template, workspace, jobs, cell_timeout):
    """Seconds to grade a fresh copy of the course at `template` with `jobs` workers, and the
    scores it wrote."""
    root = workspace / f"jobs{jobs}"
    shutil.copytree(template, root)
    options = [f"--Execute.timeout={cell_timeout}"]
    if NO_SANDBOX:
        options.append("--SandboxedKernelManager.sandbox=False")
    started = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "grading.parallel", FIRST_LAB, "--jobs",
                          str(jobs), *options], cwd=root, capture_output=True, text=True,
                         env=dict(os.environ, BACKPROP_COURSE_SECRET=COURSE_SECRET))
    seconds = time.perf_counter() - started
    if run.returncode not in (0, 1):  # 1: some submissions failed (named in the report)
        sys.exit(f"grading with {jobs} worker(s) stopped (exit {run.returncode}):\n"
                 f"{run.stderr[-3000:]}")
    failed = [line for line in run.stderr.splitlines() if line.startswith("FAILED ")]
    return seconds, scores(root), failed


def load():
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def main():
    parser = bench_arguments(__doc__.splitlines()[0], repeats=1, warmup=0)
    parser.add_argument("--students", type=int, default=200, help="class size (default 200)")
    parser.add_argument("--jobs", default="1,2", help="worker counts to time (default 1,2)")
    parser.add_argument("--cell-timeout", type=int, default=20,
                        help="seconds before a cell is interrupted (the course's is 30; on a "
                             "busy machine less can interrupt honest cells)")
    args = parser.parse_args()
    counts = [int(n) for n in args.jobs.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-autograde-") as folder:
        workspace = Path(folder)
        template = workspace / "course"
        template.mkdir()
        expected = make_class(template, args.students)
        lines = [f"# Autograding {args.students} lab-01 submissions ({FIRST_LAB})", "",
                 *machine_lines(),
                 f"- sandbox: {'off (' + NO_SANDBOX + ')' if NO_SANDBOX else 'bubblewrap'}; "
                 f"cell timeout {args.cell_timeout} s; class mix per 10: 3 correct, 2 half "
                 "done, 2 blank, 2 crashing, 1 looping", "",
                 "| workers | seconds | submissions/min | s per submission | speed-up | "
                 "load before | load after |", "|---|---|---|---|---|---|---|"]
        results, notes = {}, []
        for jobs in counts:
            before = load()
            seconds, written, failed = grade(template, workspace, jobs, args.cell_timeout)
            results[jobs] = (seconds, written)
            notes += [f"{jobs} worker(s): {line}" for line in failed]
            lines.append(f"| {jobs} | {seconds:.0f} | {60 * args.students / seconds:.1f} | "
                         f"{seconds / args.students:.2f} | "
                         f"{results[counts[0]][0] / seconds:.2f} | {before} | {load()} |")
            print(lines[-1], file=sys.stderr, flush=True)
        same = all(written == results[counts[0]][1] for _, written in results.values())
        right = results[counts[0]][1] == expected
        for student, points in expected.items():  # a slow machine can interrupt honest cells
            got = [results[jobs][1].get(student) for jobs in counts]
            if any(score != points for score in got):
                notes.append(f"{student}: earns {points}, scored {got} with {counts} workers")
        lines += ["", f"Every run wrote the same scores: {'yes' if same else 'NO'}; "
                      f"the scores the work earns: {'yes' if right else 'NO'}.",
                  *(["", "Failed or scored otherwise than the work earns:", *notes[:20]]
                    if notes else []), ""]
    emit_report("\n".join(lines), args.output)
    return 0 if same and right else 1


if __name__ == "__main__":
    sys.exit(main())
