"""Every lesson asserts what its prose says its numbers show, and is committed executed.

Each lesson imports `backprop.claims.claim` and calls it beside the prints that show a measured
claim; nbval re-runs the lessons, so a claim that stops holding fails `make test`. This file
reads the committed .ipynb JSON only (fast, no kernel) and checks what nbval cannot: that the
claims are there at all, and that the stored outputs belong to the current source, since a cell
whose claims were added or reworded without re-executing the lesson would show stale outputs
(nbval would then fail on the text, or, for an ignored cell, say nothing).
"""
import ast
import re
from pathlib import Path

import nbformat
import pytest

LESSONS_DIR = Path(__file__).resolve().parent.parent / "lessons"
LESSONS = sorted(LESSONS_DIR.glob("[0-9][0-9]_*.ipynb"))
CHECK_MARK = "\u2713 "
# A cell comparing with PyTorch prints this instead of running its claims when PyTorch is absent.
SKIPPED = "skipped: PyTorch is not installed"
IMPORT = re.compile(r"^from backprop\.claims import (?:.*\b)?claim\b", re.MULTILINE)


def code_cells(path):
    return [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


def python_source(cell):
    """The cell's source without IPython magics (``%matplotlib inline``), which ast cannot parse."""
    return "\n".join(line for line in cell.source.splitlines() if not line.lstrip().startswith("%"))


def output_text(cell):
    """Everything a cell printed or displayed as text, error tracebacks included."""
    parts = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            parts.append(output.text)
        elif output.output_type == "error":
            parts.append(f"{output.ename}: {output.evalue}\n" + "\n".join(output.traceback))
        else:
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)   # each output starts on a line of its own


def claim_calls(cell):
    """The ``claim(...)`` calls in a cell, each as (statement or None, inside a loop?)."""
    calls = []

    def visit(node, in_loop):
        looping = isinstance(node, (ast.For, ast.While, ast.ListComp, ast.SetComp,
                                    ast.DictComp, ast.GeneratorExp))
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "claim":
            statement = node.args[1] if len(node.args) > 1 else None
            text = statement.value if isinstance(statement, ast.Constant) else None
            calls.append((text, in_loop))
        for child in ast.iter_child_nodes(node):
            visit(child, in_loop or looping)

    visit(ast.parse(python_source(cell)), False)
    return calls


@pytest.fixture(params=LESSONS, ids=lambda path: path.name)
def lesson(request):
    return request.param


def test_every_lesson_is_found():
    numbers = [int(path.name[:2]) for path in LESSONS]
    assert numbers == list(range(1, len(LESSONS) + 1)) and len(numbers) >= 11, numbers


def test_the_lesson_imports_claim_and_uses_it(lesson):
    cells = code_cells(lesson)
    imports = [i for i, cell in enumerate(cells) if IMPORT.search(cell.source)]
    assert imports, f"{lesson.name} never imports claim (from backprop.claims import claim)"
    calls = [i for i, cell in enumerate(cells) if claim_calls(cell)]
    assert len(calls) >= 5, (f"{lesson.name} calls claim in {len(calls)} cells: its measured "
                             "sentences are not asserted")
    assert min(calls) >= imports[0], (
        f"{lesson.name}: claim is called in code cell {min(calls)} before it is imported "
        f"(code cell {imports[0]})")


def test_no_stored_output_shows_an_error(lesson):
    for number, cell in enumerate(code_cells(lesson)):
        text = output_text(cell)
        assert "ClaimError" not in text, (
            f"{lesson.name}, code cell {number}: a claim failed when the lesson was executed:\n"
            f"{text[-800:]}")
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        assert not errors, (f"{lesson.name}, code cell {number} stored an error: "
                            f"{errors[0].ename}: {errors[0].evalue}")


def test_every_claim_shows_its_check_mark_in_the_stored_output(lesson):
    """The committed outputs come from the current claims: each claim whose statement is a
    plain string printed exactly that statement, and each cell printed at least as many check
    marks as it has claims outside loops. Re-execute the lesson after editing a claim."""
    for number, cell in enumerate(code_cells(lesson)):
        calls = claim_calls(cell)
        if not calls or SKIPPED in output_text(cell):
            continue
        printed = [line[len(CHECK_MARK):] for line in output_text(cell).splitlines()
                   if line.startswith(CHECK_MARK)]
        for statement, _ in calls:
            if statement is not None:
                assert statement in printed, (
                    f"{lesson.name}, code cell {number}: the claim {statement!r} is not in the "
                    "stored output; re-execute the lesson (make lessons)")
        outside_loops = sum(1 for _, in_loop in calls if not in_loop)
        assert len(printed) >= max(outside_loops, 1), (
            f"{lesson.name}, code cell {number}: {outside_loops} claims but {len(printed)} check "
            "marks in the stored output; re-execute the lesson (make lessons)")


def test_no_claim_is_a_constant(lesson):
    """A claim whose condition is a literal cannot fail, so it checks nothing."""
    for number, cell in enumerate(code_cells(lesson)):
        for node in ast.walk(ast.parse(python_source(cell))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "claim":
                condition = node.args[0] if node.args else None
                assert not isinstance(condition, ast.Constant), (
                    f"{lesson.name}, code cell {number}: claim({condition.value!r}, ...) "
                    "cannot fail")
