"""Every lab's checks catch the mistakes learners really make, and name them.

For each lab, tests/mistakes/<lab>.py lists realistic wrong answers (see tests/mistakes/
__init__.py). Each lab's solution runs once in one kernel, each mistake is substituted in turn,
and the graded test cells after that answer are run again: at least one must fail, and when a
hint is given, the message must carry it. docs/mistakes.md, generated from the same runs, must
be up to date.

Nothing here depends on the machine's speed or load. A speed mistake (a slow loop with the
right values, ``Mistake(..., speed=True)``) is caught by a speed check whose verdict does, so
for it the tests require the speed check to exist (`test_every_mistake_applies`) and its
message, when it does fail, to name the mistake; whether it failed on this run is printed.
"""
import re

import pytest

from mistakes import (Failure, LabRun, Mistake, Outcome, SpeedCheck, fixture_labs,
                      load_mistakes, run_labs)
from mistakes.report import document, lab_section
from notebooks import REPO_ROOT, lab_names

MIN_MISTAKES = 8          # per lab
MIN_NAMED_VISIBLY = 0.9   # of a lab's mistakes, named by a visible check's message
DOC = "docs/mistakes.md"
REWRITE_DOC = f"Rewrite {DOC} with `python tools/write_mistakes_doc.py` (`make mistakes`)."


def _describe(outcome):
    failures = "".join(f"\n    {f.grade_id}: {f.message.splitlines()[0][:300]}"
                       for f in outcome.failures) or " no graded cell fails"
    return f"  - {outcome.mistake.name} (hint {outcome.mistake.hint!r}):{failures}"


def test_every_lab_has_mistake_fixtures():
    labs, fixtures = lab_names(), fixture_labs()
    missing = [lab for lab in labs if lab not in fixtures]
    assert not missing, (f"labs without common-mistake fixtures: {missing}. Add "
                         f"tests/mistakes/<lab>.py with at least {MIN_MISTAKES} Mistake(...)s.")
    unknown = [lab for lab in fixtures if lab not in labs]
    assert not unknown, f"tests/mistakes/ has modules for labs that do not exist: {unknown}"
    for lab in fixtures:
        names = [mistake.name for mistake in load_mistakes(lab)]
        assert len(names) >= MIN_MISTAKES, (f"tests/mistakes/{lab}.py lists {len(names)} "
                                            f"mistakes; at least {MIN_MISTAKES} are needed.")
        repeated = sorted({name for name in names if names.count(name) > 1})
        assert not repeated, f"tests/mistakes/{lab}.py repeats mistake names: {repeated}"


def test_the_document_does_not_depend_on_a_speed_checks_verdict():
    """The same code, caught or not by its speed check (load decides), gives the same text."""
    slow = Mistake("a Python loop", "f", ("a", "b"), hint="vectorize", speed=True)
    check = SpeedCheck("test_f", visible=False, factor=25)
    timed_out = Failure("test_f", "LabCheckError", "f took 93 ms, the library 2 ms: vectorize",
                        visible=False)
    texts = {document({"lab": LabRun("lab", [Outcome(slow, failures, speed_check=check)], {}, {})})
             for failures in ([], [timed_out])}
    assert len(texts) == 1, texts
    text = texts.pop()
    assert "speed check `` test_f `` (*hidden*)" in text and "more than 25x" in text
    assert "93 ms" not in text
    assert "0 mistakes: 0 caught" in text and "1 speed mistake." in text


def _selected_labs(session):
    """The labs of the tests in this module that the session runs (``-k`` may pick some)."""
    labs = set()
    for item in session.items:
        callspec = getattr(item, "callspec", None)
        if getattr(getattr(item, "module", None), "__name__", None) == __name__ and callspec and "lab" in callspec.params:
            labs.add(callspec.params["lab"])
    return sorted(labs)


@pytest.fixture(scope="session")
def runs(request):
    """``{lab: LabRun}``: each selected lab's solution and mistakes run in one kernel, two
    kernels at a time (half the time of one after the other)."""
    return run_labs(_selected_labs(request.session))


@pytest.fixture(params=fixture_labs())
def lab(request):
    return request.param


@pytest.fixture
def lab_run(lab, runs):
    return runs[lab]


def test_the_solution_passes_before_and_after_the_mistakes(lab_run):
    assert not lab_run.baseline, (f"graded cells fail on solutions/{lab_run.lab} itself: "
                                  f"{lab_run.baseline}")
    assert not lab_run.control, (
        f"graded cells fail on solutions/{lab_run.lab} after its mistakes were undone: "
        f"{lab_run.control}. A mistake changed state that outlives its answer cell (an array "
        "of a setup cell changed in place?); make its fixture leave that state alone.")


def test_every_mistake_applies(lab_run):
    broken = [f"  - {o.mistake.name}: {o.problem}" for o in lab_run.outcomes if o.problem]
    assert not broken, (f"mistake fixtures of {lab_run.lab} that cannot be applied (did the "
                        "solution change?):\n" + "\n".join(broken))


def test_every_mistake_is_caught(lab_run, capsys):
    slow = [o for o in lab_run.outcomes if o.mistake.speed and not o.problem]
    if slow:
        with capsys.disabled():  # measured, not asserted: the verdict depends on the load
            print(f"\n[{lab_run.lab}] speed mistakes caught on this run: "
                  f"{sum(o.caught for o in slow)} of {len(slow)}")
    missed = [_describe(o) for o in lab_run.outcomes
              if not o.problem and not o.mistake.speed and not o.caught]
    assert not missed, (f"{lab_run.lab}: every graded test cell passes with these mistakes; "
                        "add a test (with the hint) that catches each:\n" + "\n".join(missed))


# A message that reports a measured time ("took 12.3 ms", "took 4.1 s"): its verdict is the load's.
_TIMED_MESSAGE = re.compile(r"took [\d.e+-]+ m?s\b")


def test_only_speed_mistakes_are_caught_by_a_time(lab_run):
    """A time decides only speed mistakes, and only in their speed check: anything else would
    make the outcome, and docs/mistakes.md, depend on the machine's load."""
    wrong = [f"  - {o.mistake.name}: caught by {o.shown.grade_id}: {o.shown.message[:200]}"
             for o in lab_run.outcomes if o.caught and (
                 o.speed_check.grade_id != o.shown.grade_id if o.mistake.speed
                 else _TIMED_MESSAGE.search(o.shown.message))]
    assert not wrong, (f"{lab_run.lab}: mistakes whose verdict is a measured time, outside a "
                       "speed mistake's speed check (mark a slow-but-right answer "
                       "Mistake(..., speed=True); catch a wrong one by its values):\n"
                       + "\n".join(wrong))


def test_every_mistake_is_named(lab_run):
    unnamed = [_describe(o) for o in lab_run.outcomes
               if o.caught and o.mistake.hint is not None and not o.named]
    assert not unnamed, (f"{lab_run.lab}: no failing graded cell's message carries the hint "
                         "of these mistakes; name them in the test (checks' mistakes={hint: "
                         "wrong value}) or fix the hint:\n" + "\n".join(unnamed))


def test_most_mistakes_are_named_while_the_learner_works(lab_run):
    outcomes = [o for o in lab_run.outcomes if not o.mistake.speed]  # caught or not by load
    hidden_only = [o for o in outcomes if o.named and not o.named_visibly]
    named = sum(o.named_visibly for o in outcomes)
    assert named >= MIN_NAMED_VISIBLY * len(outcomes), (
        f"{lab_run.lab}: only {named} of {len(outcomes)} mistakes are named by a visible "
        f"check (at least {MIN_NAMED_VISIBLY:.0%} should be: the learner sees a hidden test's "
        "message only in the feedback, after grading). Named only by hidden tests:\n"
        + "\n".join(_describe(o) for o in hidden_only))


def test_the_mistakes_document_is_up_to_date(lab_run):
    path = REPO_ROOT / DOC
    if not path.is_file():
        pytest.fail(f"{DOC} does not exist. {REWRITE_DOC}")
    text = path.read_text(encoding="utf-8")
    assert lab_section(lab_run) in text, f"{DOC} is out of date for {lab_run.lab}. {REWRITE_DOC}"
