"""Common-mistake fixtures: the wrong answers learners really write, and the hint each deserves.

Every lab has one module here, named like its folder (``lab01_forward_pass.py``), holding
``MISTAKES``, a list of `Mistake`. A mistake rewrites ONE answer cell of the lab's solution
notebook into a realistic wrong version and names the hint the learner should then see:

    Mistake("forgot the 1/N of the mean in dpred", "mse_loss",
            ("2 * diff / diff.size", "2 * diff"), hint="you forgot the 1/M of the mean")

`run_lab` executes the solution once in one kernel, then substitutes each mistake in turn,
re-runs the graded test cells after that answer and records which fail, with what message.
tests/test_mistakes.py asserts that every mistake is caught and named;
tools/write_mistakes_doc.py writes docs/mistakes.md from the same runs.
"""
import asyncio
import importlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from notebooks import SOLUTIONS_DIR, nbgrader_meta

FIXTURES_DIR = Path(__file__).resolve().parent
# Seconds a cell may run before the kernel is interrupted: a mistake can loop forever.
CELL_TIMEOUT = 30
HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
# The course secret of these runs (backprop.labchecks.secret): any fixed string.
MISTAKES_SECRET = "docs/mistakes.md"


@dataclass(frozen=True)
class Mistake:
    """One realistic wrong answer.

    name: what the learner did wrong, in their words ("forgot to divide by the batch size").
    answer: grade_id of the answer cell it rewrites.
    code: the wrong answer cell (its whole source), or ``(old, new)`` or a list of such
        pairs: substrings of the solution's answer cell replaced, each found exactly once.
    hint: a substring of the message the learner should see; None when the checks catch the
        mistake without naming it (allowed for at most one mistake in ten: 90% must be named by a
        visible check).
    speed: True for an answer that computes the right values, only slowly (a Python loop):
        what catches it is a speed check, a graded cell after the answer that times it with
        ``checks.best_time`` against a vectorized reference. Whether that check fails depends
        on the machine's load, so its outcome is neither required by the tests nor written to
        docs/mistakes.md; that the speed check exists is.
    """
    name: str
    answer: str
    code: object
    hint: str | None
    speed: bool = False

    def wrong_source(self, source):
        """The answer cell's code with this mistake made; ValueError if it cannot be made."""
        wrong = self.code if isinstance(self.code, str) else source
        pairs = [] if isinstance(self.code, str) else \
            [self.code] if isinstance(self.code[0], str) else list(self.code)
        for old, new in pairs:
            found = wrong.count(old)
            if found != 1:
                raise ValueError(f"mistake {self.name!r}: {old!r} occurs {found} times in the "
                                 f"answer cell {self.answer!r}, expected exactly once")
            wrong = wrong.replace(old, new)
        if wrong.strip() == source.strip():
            raise ValueError(f"mistake {self.name!r} leaves the answer cell {self.answer!r} "
                             "as it is")
        return wrong


@dataclass
class Failure:
    """A graded test cell that failed: its grade_id, the error, and whether the learner sees it
    while working (raised by the visible tests) or only in the feedback (hidden tests)."""
    grade_id: str
    ename: str
    evalue: str
    visible: bool

    @property
    def message(self):
        """What the learner reads: the check's message, or ``Name: text`` for other errors."""
        return self.evalue if self.ename == "LabCheckError" else f"{self.ename}: {self.evalue}"


@dataclass(frozen=True)
class SpeedCheck:
    """The graded cell that times a speed mistake's answer: its grade_id, whether the timing
    lies in its visible part, and the factor over the reference's time it allows (None when
    the cell's code does not show it as ``<factor> * <reference time>``)."""
    grade_id: str
    visible: bool
    factor: int | None


@dataclass
class Outcome:
    """What happened to one mistake: the graded cells that failed (`Failure`s, in notebook
    order, up to the first whose message carries the hint: later cells are not run)."""
    mistake: Mistake
    failures: list = field(default_factory=list)
    problem: str | None = None  # the fixture itself could not be applied or run
    speed_check: SpeedCheck | None = None  # a speed mistake's timing cell

    @property
    def caught(self):
        return bool(self.failures)

    @property
    def named(self):
        return self.mistake.hint is not None and self.shown is not None \
            and self.mistake.hint in self.shown.message

    @property
    def named_visibly(self):
        """Named by a check the learner runs while working, not only by the hidden tests."""
        return self.named and self.shown.visible

    @property
    def shown(self):
        """The failure to show: the first one carrying the hint, else the first one."""
        hint = self.mistake.hint
        return next((f for f in self.failures if hint is not None and hint in f.message),
                    self.failures[0] if self.failures else None)


@dataclass
class LabRun:
    """All outcomes of one lab, plus the graded cells that failed on the unchanged solution
    before (``baseline``) and after (``control``) the mistakes: both must be empty."""
    lab: str
    outcomes: list
    baseline: dict
    control: dict


# -- finding fixtures --------------------------------------------------------------------------
def fixture_labs():
    """Labs that have a mistakes module here, sorted."""
    return sorted(p.stem for p in FIXTURES_DIR.glob("lab*.py"))


def load_mistakes(lab):
    """The ``MISTAKES`` list of the lab's module."""
    return list(importlib.import_module(f"{__name__}.{lab}").MISTAKES)


def solution_notebook(lab):
    notebooks = sorted((SOLUTIONS_DIR / lab).glob("*.ipynb"))
    if len(notebooks) != 1:
        raise ValueError(f"solutions/{lab} holds {len(notebooks)} notebooks; mistake fixtures "
                         "expect exactly one")
    return notebooks[0]


# -- running -----------------------------------------------------------------------------------
def _kind(cell):
    """"answer", "test", "given" (locked setup) or "demo" (a cell nbgrader does not know)."""
    meta = nbgrader_meta(cell)
    if meta.get("solution"):
        return "answer"
    if meta.get("grade"):
        return "test"
    return "given" if meta else "demo"


def _error(cell):
    return next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_CELL_LINE = re.compile(r"Cell In\[\d+\], line (\d+)")
_CHAINED = re.compile(r"The above exception was the direct cause|During handling of the above")


def _raised_in_visible_part(error, source):
    """Whether the test cell's line that raised lies before its hidden tests."""
    lines = source.splitlines()
    hidden = next((n for n, line in enumerate(lines, 1) if HIDDEN_BEGIN in line), None)
    if hidden is None:
        return True
    frames = [_ANSI.sub("", frame) for frame in error.get("traceback", [])]
    # A chained error (a check's call of the learner's function that raised) prints the cause
    # first: the check that failed is the outermost frame after the last chaining line.
    chained = [i for i, frame in enumerate(frames) if _CHAINED.search(frame)]
    for frame in frames[chained[-1] + 1:] if chained else frames:
        match = _CELL_LINE.search(frame)
        if match:  # the outermost frame: the test cell itself
            return int(match.group(1)) < hidden
    return False


_TIMED = "best_time("
# "25 * library_time", "max(5 * library, 0.01)", "8 * reference": the allowed factor.
_FACTOR = re.compile(r"\b(\d+) \* \w*(?:library|reference)")


def speed_check(code, after):
    """The `SpeedCheck` of the first graded cell after cell `after` that times something with
    ``checks.best_time``, or None. Read from the code, so it does not depend on the machine."""
    for i, cell, kind in code:
        if kind == "test" and i > after and _TIMED in cell.source:
            lines = cell.source.splitlines()
            timed = next(n for n, line in enumerate(lines) if _TIMED in line)
            hidden = next((n for n, line in enumerate(lines) if HIDDEN_BEGIN in line), None)
            factor = _FACTOR.search(cell.source[cell.source.index(_TIMED):])
            return SpeedCheck(nbgrader_meta(cell)["grade_id"], hidden is None or timed < hidden,
                              int(factor.group(1)) if factor else None)
    return None


async def _try(mistake, lab, nb, answers, run, graded_failures, code):
    """Substitute `mistake`, run the graded cells after its answer, and restore the answer."""
    outcome = Outcome(mistake)
    index = answers.get(mistake.answer)
    if index is None:
        outcome.problem = (f"no answer cell {mistake.answer!r} in solutions/{lab} "
                           f"(answer cells: {sorted(answers)})")
        return outcome
    if mistake.speed:
        outcome.speed_check = speed_check(code, index)
        if outcome.speed_check is None:
            outcome.problem = (f"a speed mistake, but no graded cell after the answer cell "
                               f"{mistake.answer!r} times it (checks.best_time)")
            return outcome
    try:
        source = mistake.wrong_source(nb.cells[index].source)
    except ValueError as err:
        outcome.problem = str(err)
        return outcome
    error = await run(index, source)
    if error is not None:
        outcome.problem = f"the wrong answer cell itself raised {error['ename']}: {error['evalue']}"
    else:
        outcome.failures = await graded_failures(index, mistake.hint)
    await run(index)  # the correct answer again, for the next mistake
    return outcome


async def _run_lab(lab, mistakes, timeout):
    nb = nbformat.read(solution_notebook(lab), as_version=4)
    client = NotebookClient(nbformat.from_dict(nb), timeout=timeout, interrupt_on_timeout=True,
                            allow_errors=True,
                            kernel_name=nb.metadata.get("kernelspec", {}).get("name", "python3"),
                            resources={"metadata": {"path": str(SOLUTIONS_DIR / lab)}})
    code = [(i, cell, _kind(cell)) for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]
    answers = {nbgrader_meta(cell).get("grade_id"): i for i, cell, kind in code
               if kind == "answer"}

    async def run(index, source=None):
        """Execute cell `index` (with `source` instead of its own); its error output or None."""
        cell = nbformat.v4.new_code_cell(nb.cells[index].source if source is None else source)
        return _error(await client.async_execute_cell(cell, index))

    async def failure(i, cell):
        """Run graded cell `i`; its `Failure`, or None when it passes."""
        error = await run(i)
        return None if error is None else Failure(
            nbgrader_meta(cell)["grade_id"], error["ename"], error["evalue"],
            _raised_in_visible_part(error, cell.source))

    async def graded_failures(after=-1, hint=None):
        """The graded cells after cell `after` that fail, up to the first that shows `hint`."""
        failures = []
        for i, cell, kind in code:
            if kind == "test" and i > after and (found := await failure(i, cell)):
                failures.append(found)
                if hint is not None and hint in found.message:
                    break
        return failures

    last_test = max((i for i, _, kind in code if kind == "test"), default=-1)
    outcomes, baseline = [], {}
    async with client.async_setup_kernel():
        # Plain tracebacks: still say which line raised, and cost a tenth of the default.
        # A failed check shows only its message in a notebook; here the traceback is kept, to
        # tell a visible check from a hidden one (the handler is installed by the first import).
        await client.async_execute_cell(nbformat.v4.new_code_cell(
            "%xmode Plain\nimport backprop.checks\nget_ipython().set_custom_exc((), None)"), 0)
        # The hidden tests as the grader runs them: inputs from a course secret (a fixed one,
        # so that docs/mistakes.md is a function of the code) and expected values from the
        # solution's answers, built apart from the answers a mistake rewrites.
        reference_cells = [cell.source for _, cell, kind in code if kind in ("answer", "given")]
        await client.async_execute_cell(nbformat.v4.new_code_cell(
            "from backprop.labchecks import secret as _secret\n"
            f"_secret.use_grading_context({MISTAKES_SECRET!r}, {lab!r}, "
            f"_secret.reference_from_cells({reference_cells!r})[0])\n"
            "del _secret"), 0)
        for i, cell, kind in code:  # the solution, up to its last test and without the demos
            if kind == "test" and (found := await failure(i, cell)):
                baseline[found.grade_id] = found.message
            elif kind in ("answer", "given") and i < last_test:
                await run(i)
        for mistake in mistakes:
            outcomes.append(await _try(mistake, lab, nb, answers, run, graded_failures, code))
        control = {f.grade_id: f.message for f in await graded_failures()}
    return LabRun(lab, outcomes, baseline, control)


def run_lab(lab, mistakes=None, timeout=CELL_TIMEOUT):
    """Run the lab's solution and each of its mistakes (default: its module's) in one kernel."""
    mistakes = load_mistakes(lab) if mistakes is None else mistakes
    return asyncio.run(_run_lab(lab, mistakes, timeout))


def run_labs(labs, parallel=2, timeout=CELL_TIMEOUT):
    """``{lab: LabRun}`` for several labs, `parallel` kernels at a time."""
    async def run_all():
        limit = asyncio.Semaphore(parallel)

        async def one(lab):
            async with limit:
                return await _run_lab(lab, load_mistakes(lab), timeout)
        return await asyncio.gather(*(one(lab) for lab in labs))
    return dict(zip(labs, asyncio.run(run_all())))


__all__ = ["Mistake", "Failure", "SpeedCheck", "Outcome", "LabRun", "fixture_labs", "load_mistakes",
           "run_lab", "run_labs"]
