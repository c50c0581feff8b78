"""Lessons 06-11 assert what their text says about their own numbers (issue 19, item 6;
lesson 11 from issue 23).

Reads the committed .ipynb files only (no kernel): each lesson imports `backprop.claims.claim`
and calls it; every code cell that calls it shows, in its stored outputs, the "✓ statement"
line(s) that the call prints, so the committed lesson was executed with its claims holding; and
no stored output is an error (a ClaimError or any other exception). nbval (`pytest lessons/`)
re-runs the claims; this test catches a lesson committed with a failed or never-run claim.
"""
import json
import re
from pathlib import Path

import pytest

LESSONS_DIR = Path(__file__).resolve().parent.parent / "lessons"
LESSONS = ["06_cnn", "07_rnn", "08_overfitting", "09_local_minima", "10_beyond_backprop",
           "11_normalization"]
IMPORT = "from backprop.claims import claim"
CALL = re.compile(r"(?<![\w.])claim\(")
# A cell comparing with PyTorch prints this instead of running its claim when PyTorch is absent.
SKIPPED = "skipped: PyTorch is not installed"


def code_cells(name):
    notebook = json.loads((LESSONS_DIR / f"{name}.ipynb").read_text(encoding="utf-8"))
    return [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]


def source(cell):
    return "".join(cell["source"])


def output_text(cell):
    parts = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append("".join(output["text"]))
        elif output["output_type"] == "error":
            parts.append(f"{output['ename']}: {output['evalue']}\n" + "\n".join(output["traceback"]))
        else:
            parts.append("".join(output.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_imports_and_calls_claim(name):
    cells = code_cells(name)
    assert any(IMPORT in source(cell) for cell in cells), f"{name}: no `{IMPORT}`"
    calls = sum(len(CALL.findall(source(cell))) for cell in cells)
    assert calls >= 5, f"{name}: {calls} claim(...) calls; its measured sentences are not asserted"


@pytest.mark.parametrize("name", LESSONS)
def test_every_claiming_cell_shows_its_checks(name):
    missing = []
    for index, cell in enumerate(code_cells(name)):
        text = output_text(cell)
        if CALL.search(source(cell)) and "\u2713 " not in text and SKIPPED not in text:
            missing.append(f"code cell {index}: {source(cell)[:80]!r}")
    assert not missing, (f"{name}: cells that call claim() but show no '✓' line, so the committed "
                         "lesson was not executed with them: " + "; ".join(missing))


@pytest.mark.parametrize("name", LESSONS)
def test_no_stored_output_is_an_error(name):
    errors = []
    for index, cell in enumerate(code_cells(name)):
        kinds = [output["output_type"] for output in cell.get("outputs", [])]
        text = output_text(cell)
        if "error" in kinds or "ClaimError" in text or "Traceback (most recent call last)" in text:
            errors.append(f"code cell {index}: {text[:200]!r}")
    assert not errors, f"{name}: stored outputs with an error: " + "; ".join(errors)


@pytest.mark.parametrize("name", LESSONS)
def test_no_claim_is_a_constant(name):
    constant = re.compile(r"(?<![\w.])claim\(\s*(True|False|1|0)\s*,")
    offenders = [source(cell)[:80] for cell in code_cells(name) if constant.search(source(cell))]
    assert not offenders, f"{name}: claims that cannot fail: {offenders}"
