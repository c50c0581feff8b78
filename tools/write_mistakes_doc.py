"""Write docs/mistakes.md: for every lab, each common mistake of tests/mistakes/, the graded
test cell that catches it and the message the learner sees.

    python tools/write_mistakes_doc.py      # about half a minute; `make mistakes` runs it

Each lab's solution runs in one kernel (two labs at a time), with each mistake substituted in
turn, exactly as tests/test_mistakes.py runs them. Prints one line per lab; exit status 1 when
a mistake is not caught, not named, or its fixture cannot be applied (the document is written
anyway, and shows it). Speed mistakes (right values, slowly) are counted apart: whether their
speed check caught them on this run depends on the machine's load, so it is printed, neither
written to the document nor counted as a failure.
"""
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))

from mistakes import fixture_labs, run_labs  # noqa: E402 (needs tests/ on the path)
from mistakes.report import document, summary  # noqa: E402

DOC = REPO_ROOT / "docs" / "mistakes.md"


def main():
    start = time.perf_counter()
    runs = run_labs(fixture_labs())
    DOC.write_text(document(runs), encoding="utf-8")
    ok = True
    for lab, run in runs.items():
        total, caught, named, visible, speed = summary(run)
        failing = run.baseline or run.control
        broken = sum(bool(o.problem) for o in run.outcomes)
        unnamed = sum(o.caught and o.mistake.hint is not None and not o.named
                      for o in run.outcomes)
        slow_caught = sum(o.caught for o in run.outcomes if o.mistake.speed)
        ok &= not (failing or broken or unnamed or caught < total)
        print(f"{lab:24s} {total:3d} mistakes, {caught:3d} caught, {named:3d} named, "
              f"{visible:3d} by visible tests; speed checks caught {slow_caught} of {speed} "
              "on this run" + (", SOLUTION FAILS" if failing else "")
              + (f", {broken} fixtures broken" if broken else ""))
    print(f"wrote {DOC.relative_to(REPO_ROOT)} in {time.perf_counter() - start:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
