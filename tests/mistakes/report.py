"""docs/mistakes.md from the runs of the mistake fixtures: for every lab, each mistake, the
graded cell that catches it and the first lines of the message the learner sees."""
import re

TITLE = "# Common mistakes and what the labs tell the learner"
INTRO = """\
Learners' wrong answers are not random: they forget the 1/N of a mean, transpose a gradient,
write `=` where `+=` accumulates, drop the max-subtraction of softmax, forget a derivative, sum
over the wrong axis, mishandle stride or padding, update with the wrong sign. For every lab,
`tests/mistakes/<lab>.py` rewrites one answer of the solution into such a mistake, and
`tests/test_mistakes.py` runs the solution with each one substituted and checks that a graded
test cell fails with a message that names the mistake.

This file is generated from those runs: `python tools/write_mistakes_doc.py` (also
`make mistakes`). Do not edit it by hand; tests/test_mistakes.py fails when it is out of date.
"Caught by" is the graded test cell that fails (*hidden* when only its hidden tests catch the
mistake, so the learner sees the message in the feedback, not while working); the message is
what that cell raises. At least 90% of each lab's mistakes are named by a visible check.

*Speed mistakes* compute the right values, only slowly (a Python loop where one array
operation would do). What catches them is a speed check: a graded cell that times the answer
against a vectorized reference and fails when it takes more than a set factor of the
reference's time. Whether it does on a given run depends on the machine and its load, so
this file shows the check and its factor, not the outcome, and its counts of mistakes caught
and named leave speed mistakes out: the file depends on the code alone."""
MAX_LINES = 3      # lines of a message shown
MAX_CHARS = 300    # characters of one line shown


def _prose(text):
    """Markdown-safe text for a table cell."""
    return re.sub(r"([\\`*_|\[\]])", r"\\\1", text).replace("<", "&lt;")


def _code(text):
    """A table cell's code span (a pipe still needs its backslash inside a table)."""
    return f"`` {text.replace('|', chr(92) + '|')} ``"


def message_lines(message):
    """The first lines of a message, each shortened, as they are shown in the table."""
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    shown = [line if len(line) <= MAX_CHARS else line[:MAX_CHARS - 3] + "..."
             for line in lines[:MAX_LINES]]
    return shown + (["..."] if len(lines) > MAX_LINES else [])


def _speed_row(name, check):
    """A speed mistake's row: its check and factor, never whether this run caught it."""
    where = _code(check.grade_id) + ("" if check.visible else " (*hidden*)")
    factor = f"{check.factor}x" if check.factor else "a set factor of"
    return (f"| {name} | speed check {where} | caught when it takes more than {factor} the "
            "reference's time; not recorded here, because that depends on the machine |")


def _row(outcome):
    name = _prose(outcome.mistake.name)
    if outcome.problem:
        return f"| {name} | **fixture broken** | {_code(outcome.problem)} |"
    if outcome.speed_check is not None:
        return _speed_row(name, outcome.speed_check)
    shown = outcome.shown
    if shown is None:
        return f"| {name} | **not caught** | |"
    caught_by = _code(shown.grade_id) + ("" if shown.visible else " (*hidden*)")
    if not outcome.named:
        caught_by += " (not named)"
    return f"| {name} | {caught_by} | {'<br>'.join(map(_code, message_lines(shown.message)))} |"


def summary(run):
    """``(mistakes, caught, named, named by a visible check, speed mistakes)`` of one lab's
    run; the first four leave speed mistakes out, whose outcome depends on the machine."""
    outcomes = [o for o in run.outcomes if not o.mistake.speed]
    return (len(outcomes), sum(o.caught for o in outcomes), sum(o.named for o in outcomes),
            sum(o.named_visibly for o in outcomes), len(run.outcomes) - len(outcomes))


def lab_section(run):
    """The markdown section of one lab."""
    total, caught, named, visible, speed = summary(run)
    return "\n".join([
        f"## {run.lab}", "",
        f"{total} mistakes: {caught} caught, {named} named by the message, {visible} named by "
        f"a visible check; and {speed} speed mistake{'s' * (speed != 1)}.", "",
        "| Mistake | Caught by | What the learner sees |",
        "| --- | --- | --- |",
        *map(_row, run.outcomes)]) + "\n"


def document(runs):
    """The whole of docs/mistakes.md for ``{lab: LabRun}``."""
    rows = ["| Lab | Mistakes | Caught | Named | Named by a visible check | Speed mistakes |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for lab, run in runs.items():
        rows.append(f"| [{lab}](#{lab}) | " + " | ".join(map(str, summary(run))) + " |")
    sections = [lab_section(run) for run in runs.values()]
    return "\n\n".join([TITLE, INTRO, "\n".join(rows)] + [s.rstrip("\n") for s in sections]) + "\n"
