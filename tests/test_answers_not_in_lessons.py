"""No lab's answer is in the lesson it builds on, nor in the lab's own text.

The course teaches by derivation (issue 22): a lesson works its method fully on one case and the
lab asks for a sibling case, so a learner who read the lesson has to use the method, not copy its
result. This test holds every lab to that, mechanically:

- the *answer expressions* of a lab are the expressions in its solution's answer code (between
  nbgrader's ``### BEGIN SOLUTION`` and ``### END SOLUTION``) that are formulas beyond trivial
  size: at least two operators (arithmetic, comparison, boolean) and at least `MIN_NODES`
  expression nodes, such as ``(1 - y ** 2) * dout`` or ``(H + 2 * p - k) // s + 1``. One operation
  on its operands (``dout @ W.T``, ``x.sum(axis=0)``) is the vocabulary every derivation uses and
  a lesson must show, so it is not counted;
- expressions are compared *normalised*: parsed, every variable and argument name replaced by
  ``_`` (so ``dX = dY @ W.T`` and ``dx = dout @ W.T`` are the same), attribute and method names,
  constants and the shape of the expression kept;
- none of them may appear as an expression of any code cell of the lesson (lessons/NN_*.ipynb for
  lab NN), nor in the code shown in the released lab's text (fenced blocks and inline code of its
  markdown cells).
"""
import ast
import re
import textwrap

import nbformat
import pytest

from notebooks import REPO_ROOT

MIN_NODES = 6
MIN_OPERATORS = 2
_OPERATORS = (ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp)
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)
SOLUTIONS = sorted((REPO_ROOT / "solutions").glob("lab*/lab*.ipynb"))


class _Anonymous(ast.NodeTransformer):
    """Every variable and argument name becomes ``_``."""

    def visit_Name(self, node):
        return ast.copy_location(ast.Name(id="_", ctx=ast.Load()), node)

    def visit_arg(self, node):
        node.arg, node.annotation = "_", None
        return node


def expressions(code):
    """{normalised expression: (expression nodes, operators)} of every expression in `code`
    that is more than a name or a constant; {} for code that is not Python (a shell line)."""
    code = re.sub(r"^\s*[%!].*$", "", textwrap.dedent(code), flags=re.M)  # IPython magics
    try:
        tree = _Anonymous().visit(ast.parse(code))
    except SyntaxError:
        return {}
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.expr) and not isinstance(node, (ast.Name, ast.Constant)):
            inside = list(ast.walk(node))
            found.setdefault(ast.unparse(node), (
                sum(isinstance(n, (ast.expr, ast.keyword)) for n in inside),
                sum(isinstance(n, _OPERATORS) for n in inside)))
    return found


def read_notebook(path):
    return nbformat.read(path, as_version=4)


def is_formula(counts):
    nodes, operators = counts
    return nodes >= MIN_NODES and operators >= MIN_OPERATORS


def answer_formulas(solution):
    """{normalised formula: the answer code it comes from} of a solution notebook."""
    found = {}
    for cell in read_notebook(solution).cells:
        if cell.cell_type != "code":
            continue
        for block in SOLUTION.findall(cell.source):
            for expression, counts in expressions(block).items():
                if is_formula(counts):
                    found.setdefault(expression, block.strip().splitlines()[0][:80])
    return found


def lesson_of(solution):
    number = solution.parent.name[len("lab"):len("lab") + 2]
    (lesson,) = (REPO_ROOT / "lessons").glob(f"{number}_*.ipynb")
    return lesson


def code_in_text(notebook):
    """The code shown in a notebook's markdown cells: fenced blocks and inline code."""
    shown = []
    for cell in read_notebook(notebook).cells:
        if cell.cell_type == "markdown":
            shown += re.findall(r"```[a-z]*\n(.*?)```", cell.source, re.S)
            shown += re.findall(r"`([^`\n]+)`", cell.source)
    return shown


def _shown(pieces):
    found = set()
    for piece in pieces:
        found |= set(expressions(piece))
    return found


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda path: path.parent.name)
def test_no_answer_formula_is_in_the_lessons_code(solution):
    lesson = lesson_of(solution)
    answers = answer_formulas(solution)
    cells = [cell.source for cell in read_notebook(lesson).cells if cell.cell_type == "code"]
    copied = sorted(set(answers) & _shown(cells))
    assert not copied, (f"{lesson.name} shows, in its code, formulas of "
                        f"{solution.parent.name}'s answers: "
                        + "; ".join(f"{formula}  (in the answer {answers[formula]!r})"
                                    for formula in copied))


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda path: path.parent.name)
def test_no_answer_formula_is_in_the_labs_text(solution):
    release = REPO_ROOT / "labs" / solution.parent.name / solution.name
    answers = answer_formulas(solution)
    copied = sorted(set(answers) & _shown(code_in_text(release)))
    assert not copied, (f"the text of the released {solution.parent.name} shows formulas of its "
                        "answers: " + "; ".join(copied))


def test_the_comparison_sees_a_copied_formula_through_renamed_variables():
    """What the two tests above rely on: a renamed copy is found, one operation is not counted."""
    answers = {k for k, v in expressions("dx = (1 - out ** 2) * dout\ndW = x.T @ dout").items()
               if is_formula(v)}
    assert answers == {"(1 - _ ** 2) * _"}
    assert answers <= set(expressions("grad_in = (1 - y ** 2) * grad_out"))
    assert not answers & set(expressions("grad_in = (1 - y ** 3) * grad_out"))
