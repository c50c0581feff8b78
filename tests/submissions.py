"""Simulated student submissions for the grading pipeline test (test_grading_pipeline.py).

Each *kind of student* is one function registered in `STUDENTS`: given a `Lab` (the nbgrader
source notebook and the release the students received) it returns a `Submission`, the notebook
the student hands in (None: their folder holds no notebook) and the points that work earns.
A new kind of fault is one new function with the `@student` decorator; it raises
`NotApplicable` for a lab it cannot be made for (the test then skips that student there).

The points are derived from the source's graded test cells, never from a grading run: a broken
answer costs the points of every graded test cell that uses, directly or through other answers,
a name the answer defines (`Lab.tests_using`, read from the code by answer_dependencies.py);
mlp_forward calls dense_forward, so a broken dense_forward also fails mlp_forward's test.
"""
import ast
import copy
from dataclasses import dataclass, field

import nbformat

from answer_dependencies import (defined_names, failing_cells, names_classes_use, names_read,
                                 statements)
from notebooks import SOLUTION_MARKERS, graded_test_cells, nbgrader_meta

STUDENTS = {}  # kind of student -> function(Lab) -> Submission


def student(function):
    """Register a kind of student under its function's name."""
    STUDENTS[function.__name__] = function
    return function


@dataclass
class Submission:
    notebook: nbformat.NotebookNode | None  # None: the student's folder holds no notebook
    points: float  # what the work earns
    # other files handed in: name -> bytes, or ("link", target) for a symbolic link
    files: dict = field(default_factory=dict)


class Lab:
    """One lab notebook: its source (answers and all tests) and the release students got."""

    def __init__(self, solution, release, path=None):
        self.solution, self.release = solution, release
        self.path = path  # "<lab>/<notebook>.ipynb"
        self.answer_ids = [nbgrader_meta(c)["grade_id"] for c in solution.cells
                           if c.cell_type == "code" and nbgrader_meta(c).get("solution")]
        self.test_points = {grade_id: nbgrader_meta(cell)["points"]
                            for grade_id, cell in graded_test_cells(solution)}
        self.total = sum(self.test_points.values())

    def _cell(self, nb, grade_id):
        return next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == grade_id)

    def student_code(self, answer_id):
        """The source's answer, as a student would type it (nbgrader's markers removed)."""
        return "\n".join(line for line in self._cell(self.solution, answer_id).source.splitlines()
                         if not any(marker in line for marker in SOLUTION_MARKERS))

    def answered(self, **sources):
        """The release with every answer cell filled in with the source's answer; ``sources``
        maps answer ids to other code (None: left as released)."""
        nb = copy.deepcopy(self.release)
        for answer_id in self.answer_ids:
            code = sources.get(answer_id, self.student_code(answer_id))
            if code is not None:
                self._cell(nb, answer_id).source = code
        return nb

    def tests_using(self, *answer_ids):
        """Grade ids of the graded test cells that fail when these answers are broken."""
        code = [(nbgrader_meta(c).get("grade_id") or f"cell {i}", c.source)
                for i, c in enumerate(self.solution.cells) if c.cell_type == "code"]
        return failing_cells(code, set(answer_ids)) & set(self.test_points)

    def points_without(self, *answer_ids):
        """Points earned when these answers are broken and all others are right."""
        return self.total - sum(self.test_points[t] for t in self.tests_using(*answer_ids))

    def breakable_answers(self):
        """Answers whose failure `tests_using` predicts: they define functions that no class
        uses. Raises NotApplicable when there is none."""
        used_by_classes = names_classes_use(c.source for c in self.solution.cells
                                            if c.cell_type == "code")
        answers = [a for a in self.answer_ids if _functions(self.student_code(a))
                   and not defined_names(self.student_code(a)) & used_by_classes]
        if not answers:
            raise NotApplicable("no answer of this lab can be broken predictably")
        return answers

    def costliest_answer(self):
        """The answer whose failure costs the most points while leaving some."""
        costs = {a: self.points_without(a) for a in self.breakable_answers()}
        return min((a for a in costs if costs[a] > 0), key=costs.get)

    def leaf_answers(self):
        """Answers whose functions return a value that no other answer uses (so a wrong value
        can only fail their own tests)."""
        names = {a: defined_names(self.student_code(a)) for a in self.answer_ids}
        reads = {a: names_read(self.student_code(a)) for a in self.answer_ids}
        leaves = [a for a in self.breakable_answers() if _returns_value(self.student_code(a))
                  and not any(names[a] & reads[b] for b in self.answer_ids if b != a)]
        if not leaves:
            raise NotApplicable("no answer of this lab returns a value no other answer uses")
        return leaves


class NotApplicable(Exception):
    """This kind of student cannot be made for this lab."""


# -- changing answers ----------------------------------------------------------------------------
def _into_body(lab, answer_id, lines):
    """The student's answer with `lines` put at the start of its code (the solution region)."""
    source = lab._cell(lab.solution, answer_id).source.splitlines()
    begin = next(i for i, line in enumerate(source) if SOLUTION_MARKERS[0] in line)
    indent = source[begin][:len(source[begin]) - len(source[begin].lstrip())]
    source[begin + 1:begin + 1] = [indent + line for line in lines]
    return "\n".join(line for line in source if not any(m in line for m in SOLUTION_MARKERS))


def _functions(code):
    """Names of the functions a cell's code defines at the top level."""
    return [s.name for s in statements(code) if isinstance(s, ast.FunctionDef)]


def _returns_value(code):
    return any(isinstance(node, ast.Return) and node.value is not None
               for s in statements(code) for node in ast.walk(s))


def _wrapped(lab, answer_id, returns):
    """The student's answer with each function it defines replaced by one that returns
    `returns`, an expression of the correct answer's result `value` and the arguments `args`."""
    functions = _functions(lab.student_code(answer_id))
    wrappers = [f"_answer_{name} = {name}\n"
                f"def {name}(*args, **kwargs):\n"
                f"    value = _answer_{name}(*args, **kwargs)\n"
                f"    return {returns}\n" for name in functions]
    return "\n".join([lab.student_code(answer_id), "import numpy", *wrappers])


_OFF_BY_HALF = ("def _off_by_half(value):  # a wrong answer of the right shape\n"
                "    if isinstance(value, tuple):\n"
                "        return tuple(_off_by_half(v) for v in value)\n"
                "    return numpy.asarray(value) + 0.5\n")


def _all_wrong(lab, returns="_off_by_half(value)"):
    """Every answer wrong: each function returns `returns` (by default its correct result, or
    each number of a tuple of them, shifted by 0.5); an answer without functions is left as
    released."""
    return {a: _OFF_BY_HALF + _wrapped(lab, a, returns) if _functions(lab.student_code(a))
            else lab._cell(lab.release, a).source for a in lab.answer_ids}


def _with_first_answer_prefixed(lab, sources, code):
    first = lab.answer_ids[0]
    return dict(sources, **{first: code + "\n" + sources[first]})


def _test_cells_replaced(nb, source):
    """`nb` with every graded test cell's code replaced by `source` (None: cell deleted)."""
    graded = {id(cell) for _, cell in graded_test_cells(nb)}
    nb.cells = [cell for cell in nb.cells if id(cell) not in graded or source is not None]
    for cell in nb.cells:
        if id(cell) in graded:
            cell.source = source
    return nb


# -- the class ---------------------------------------------------------------------------------
@student
def correct(lab):
    """Every answer right: the source's code."""
    return Submission(lab.answered(), lab.total)


@student
def blank(lab):
    """Hands in the release as given."""
    return Submission(copy.deepcopy(lab.release), 0)


@student
def syntax_error(lab):
    """The last answer does not parse (an unclosed bracket); the others are right. (Here and
    below, only answers whose failure `Lab.tests_using` can predict are broken.)"""
    target = lab.breakable_answers()[-1]
    code = lab.student_code(target) + '\nprint("done"'
    return Submission(lab.answered(**{target: code}), lab.points_without(target))


@student
def exception(lab):
    """The answer that most other work depends on raises; the others are right."""
    target = lab.costliest_answer()
    code = _into_body(lab, target, ['raise KeyError("a bug in this answer")'])
    return Submission(lab.answered(**{target: code}), lab.points_without(target))


@student
def infinite_loop(lab):
    """One answer never returns (nbgrader interrupts it after Execute.timeout seconds in every
    cell that calls it, so the first of the answers the fewest test cells use is chosen)."""
    target = min(lab.breakable_answers(), key=lambda a: len(lab.tests_using(a)))
    code = _into_body(lab, target, ["while True:  # forgot to advance the loop", "    pass"])
    return Submission(lab.answered(**{target: code}), lab.points_without(target))


@student
def wrong_shape(lab):
    """One answer returns its result with an extra axis (an answer no other answer uses, so
    only its own tests fail)."""
    leaves = lab.leaf_answers()
    target = leaves[len(leaves) // 2]
    code = _wrapped(lab, target, "numpy.expand_dims(value, -1)")
    return Submission(lab.answered(**{target: code}), lab.points_without(target))


@student
def tests_edited(lab):
    """Every test cell replaced by `pass`, and the costliest answer left blank: restored
    tests must run, so the blank answer earns nothing and the others still count."""
    target = lab.costliest_answer()
    nb = _test_cells_replaced(lab.answered(**{target: None}), "# all good\npass")
    return Submission(nb, lab.points_without(target))


@student
def tests_deleted(lab):
    """Every test cell deleted, and the costliest answer left blank: nbgrader must put the
    tests back and run them, not score them 0."""
    target = lab.costliest_answer()
    return Submission(_test_cells_replaced(lab.answered(**{target: None}), None),
                      lab.points_without(target))


@student
def huge_output(lab):
    """Every answer right, but one prints 100,000 lines when it runs and a line on every call."""
    first = lab.answer_ids[0]
    code = _into_body(lab, first, ['print("computing...")'])
    flood = 'for step in range(100_000):\n    print(f"debug {step}: still here")\n'
    return Submission(lab.answered(**{first: flood + code}), lab.total)


@student
def missing(lab):
    """Submits a folder without the notebook."""
    return Submission(None, 0)


@student
def tamper_checks(lab):
    """Every answer wrong, and the first answer cell switches the checks off: the `checks`
    module's functions and the name `checks` replaced by ones that never fail."""
    tamper = ("import types, backprop.checks\n"
              "never_fail = lambda *args, **kwargs: None\n"
              "for name in ('check_close', 'check_scalar', 'check_shape', 'check_true'):\n"
              "    setattr(backprop.checks, name, never_fail)\n"
              "checks = types.SimpleNamespace(check_close=never_fail, check_scalar=never_fail,\n"
              "                               check_shape=never_fail, check_true=never_fail)\n")
    sources = _with_first_answer_prefixed(lab, _all_wrong(lab), tamper)
    return Submission(lab.answered(**sources), 0)


@student
def tamper_numpy(lab):
    """Every answer wrong, and the first answer cell makes NumPy's comparisons always agree."""
    tamper = ("import numpy\n"
              "numpy.allclose = lambda *args, **kwargs: True\n"
              "numpy.array_equal = lambda *args, **kwargs: True\n"
              "numpy.isclose = lambda a, b, *args, **kwargs: numpy.ones(\n"
              "    numpy.broadcast(numpy.asarray(a), numpy.asarray(b)).shape, dtype=bool)\n")
    sources = _with_first_answer_prefixed(lab, _all_wrong(lab), tamper)
    return Submission(lab.answered(**sources), 0)


@student
def tamper_peek(lab):
    """Every answer returns the test's own `expected` value when there is one (test cells run
    in the student's namespace), a wrong value otherwise."""
    sources = _all_wrong(lab, "globals().get('expected', _off_by_half(value))")
    return Submission(lab.answered(**sources), 0)


# -- honest mistakes with cells (what JupyterLab lets a learner do to the notebook) --------------
def _position(nb, grade_id):
    return next(i for i, c in enumerate(nb.cells) if nbgrader_meta(c).get("grade_id") == grade_id)


def _tests_after(lab, answer_id):
    """Grade ids of the graded test cells that follow `answer_id` in the source, up to the
    next answer cell."""
    ids = [nbgrader_meta(c).get("grade_id") for c in lab.solution.cells]
    start, tests = ids.index(answer_id) + 1, []
    for grade_id in ids[start:]:
        if grade_id in lab.answer_ids:
            break
        if grade_id in lab.test_points:
            tests.append(grade_id)
    return tests


@student
def duplicated_test_cell(lab):
    """Right answers; a locked test cell duplicated in JupyterLab (the copy, right below it,
    has the same metadata, grade id and cell id). The copy runs as plain code, ungraded."""
    nb = lab.answered()
    first_test = next(iter(lab.test_points))
    at = _position(nb, first_test)
    nb.cells.insert(at + 1, copy.deepcopy(nb.cells[at]))
    return Submission(nb, lab.total)


@student
def duplicated_locked_cells(lab):
    """Right answers; the locked setup cell and a locked markdown cell duplicated (each copy
    right below its original, same metadata and cell id)."""
    nb = lab.answered()
    locked = [i for i, c in enumerate(nb.cells) if nbgrader_meta(c).get("locked")
              and not nbgrader_meta(c).get("grade")]
    setup = [i for i in locked if nb.cells[i].cell_type == "code"]
    markdown = [i for i in locked if nb.cells[i].cell_type == "markdown"]
    if not setup or not markdown:
        raise NotApplicable("this lab has no locked setup code or no locked markdown")
    for at in sorted({setup[0], markdown[-1]}, reverse=True):
        nb.cells.insert(at + 1, copy.deepcopy(nb.cells[at]))
    return Submission(nb, lab.total)


@student
def duplicated_answer_cell(lab):
    """Right answers; the first answer cell duplicated, the copy (above the original) still
    holding the released stub, the right answer written in the lower copy. Both carry the
    answer's grade id: the lower one keeps it (its definitions are those the tests see)."""
    first = lab.answer_ids[0]
    nb = lab.answered()
    stub = copy.deepcopy(lab._cell(lab.release, first))
    nb.cells.insert(_position(nb, first), stub)
    return Submission(nb, lab.total)


@student
def stray_graded_cell(lab):
    """Right answers; the learner marks cells of their own in the nbgrader toolbar: a code
    cell "Autograder tests" worth 10 points under a new grade id, a markdown cell "Manually
    graded answer" worth 5, and a "Read-only" cell. None of them is in the gradebook."""
    nb = lab.answered()
    meta = {"schema_version": 3, "checksum": "0"}
    own = [
        nbformat.v4.new_code_cell("assert 1 + 1 == 2  # my own check", metadata={"nbgrader": dict(
            meta, grade=True, solution=False, locked=True, points=10, grade_id="my_check")}),
        nbformat.v4.new_markdown_cell("My notes on the activations.", metadata={"nbgrader": dict(
            meta, grade=True, solution=True, locked=False, points=5, grade_id="my_notes")}),
        nbformat.v4.new_code_cell("scratch = 1", metadata={"nbgrader": dict(
            meta, grade=False, solution=False, locked=True, grade_id="my_scratch")}),
    ]
    at = _position(nb, lab.answer_ids[0]) + 1
    nb.cells[at:at] = own
    return Submission(nb, lab.total)


@student
def cells_reordered(lab):
    """Right answers; the first two answer cells swapped (each moved with nothing else), and
    the test cells of the last answer that has tests dragged above that answer."""
    if len(lab.answer_ids) < 2:
        raise NotApplicable("this lab has a single answer cell")
    nb = lab.answered()
    a, b = _position(nb, lab.answer_ids[0]), _position(nb, lab.answer_ids[1])
    nb.cells[a], nb.cells[b] = nb.cells[b], nb.cells[a]
    tested = [a for a in lab.answer_ids if _tests_after(lab, a)][-1]
    moved = [nb.cells[_position(nb, t)] for t in _tests_after(lab, tested)]
    nb.cells = [c for c in nb.cells if not any(c is m for m in moved)]
    at = _position(nb, tested)
    nb.cells[at:at] = moved
    return Submission(nb, lab.total)


@student
def answer_and_tests_deleted(lab):
    """The answer cell of one answer deleted, with its test cells and the locked markdown
    before it (nbgrader puts a deleted test back after the cell before it in the source, here
    deleted too): the tests are put back and fail, the rest counts."""
    target = lab.leaf_answers()[0]
    nb = lab.answered()
    gone = {target, *_tests_after(lab, target)}
    ids = [nbgrader_meta(c).get("grade_id") for c in lab.solution.cells]
    before = ids[ids.index(target) - 1]
    if before and nbgrader_meta(lab._cell(lab.solution, before)).get("locked"):
        gone.add(before)
    nb.cells = [c for c in nb.cells if nbgrader_meta(c).get("grade_id") not in gone]
    return Submission(nb, lab.points_without(target))


# -- not in the pipeline test's class (test_parallel_autograde.py, bench/bench_autograde.py) ----
def half_done(lab):
    """The first half of the answers right, the later half left as released."""
    later = lab.answer_ids[len(lab.answer_ids) // 2:]
    return Submission(lab.answered(**{answer: None for answer in later}),
                      lab.points_without(*later))
