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
what that cell raises (times a speed check measured are shown as N). At least 90% of each
lab's mistakes are named by a visible check."""
MAX_LINES = 3      # lines of a message shown
# Time budgets report what they measured, which differs on every run: shown as "N".
MEASURED = re.compile(r"\d[\d.]*(?:e[+-]?\d+)?(?= ms\b| times the (?:library|matrix))")
MAX_CHARS = 300    # characters of one line shown


def _prose(text):
    """Markdown-safe text for a table cell."""
    return re.sub(r"([\\`*_|\[\]])", r"\\\1", text).replace("<", "&lt;")


def _code(text):
    """A table cell's code span (a pipe still needs its backslash inside a table)."""
    return f"`` {text.replace('|', chr(92) + '|')} ``"


def message_lines(message):
    """The first lines of a message, each shortened, as they are shown in the table."""
    lines = [MEASURED.sub("N", line.strip()) for line in message.strip().splitlines()
             if line.strip()]
    shown = [line if len(line) <= MAX_CHARS else line[:MAX_CHARS - 3] + "..."
             for line in lines[:MAX_LINES]]
    return shown + (["..."] if len(lines) > MAX_LINES else [])


def _row(outcome):
    name = _prose(outcome.mistake.name)
    if outcome.problem:
        return f"| {name} | **fixture broken** | {_code(outcome.problem)} |"
    shown = outcome.shown
    if shown is None:
        return f"| {name} | **not caught** | |"
    caught_by = _code(shown.grade_id) + ("" if shown.visible else " (*hidden*)")
    if not outcome.named:
        caught_by += " (not named)"
    return f"| {name} | {caught_by} | {'<br>'.join(map(_code, message_lines(shown.message)))} |"


def summary(run):
    """``(mistakes, caught, named, named by a visible check)`` of one lab's run."""
    outcomes = run.outcomes
    return (len(outcomes), sum(o.caught for o in outcomes), sum(o.named for o in outcomes),
            sum(o.named_visibly for o in outcomes))


def lab_section(run):
    """The markdown section of one lab."""
    total, caught, named, visible = summary(run)
    return "\n".join([
        f"## {run.lab}", "",
        f"{total} mistakes: {caught} caught, {named} named by the message, {visible} named by "
        "a visible check.", "",
        "| Mistake | Caught by | What the learner sees |",
        "| --- | --- | --- |",
        *map(_row, run.outcomes)]) + "\n"


def document(runs):
    """The whole of docs/mistakes.md for ``{lab: LabRun}``."""
    rows = ["| Lab | Mistakes | Caught | Named | Named by a visible check |",
            "| --- | ---: | ---: | ---: | ---: |"]
    for lab, run in runs.items():
        rows.append(f"| [{lab}](#{lab}) | " + " | ".join(map(str, summary(run))) + " |")
    sections = [lab_section(run) for run in runs.values()]
    return "\n\n".join([TITLE, INTRO, "\n".join(rows)] + [s.rstrip("\n") for s in sections]) + "\n"
