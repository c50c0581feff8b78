"""The committed labs/ is exactly what nbgrader generates from solutions/, and gives nothing away.

Every lab folder in solutions/ is tested; a new lab needs no new test code. "Committed" means
what git has staged (see notebooks.py), so a learner's edits in labs/ never fail these tests.
"""
import difflib
import json

import nbformat
import pytest

from notebooks import (HIDDEN_MARKERS, LABS_DIR, MARK_SCHEME_MARKERS, REGENERATE, SOLUTION_MARKERS,
                       committed_lab_or_fail, committed_release_files, generate_releases,
                       lab_names, lab_notebooks, nbgrader_meta, partition_lines, release_names,
                       source_path, working_tree_files)

LABS = lab_names()
LAB_NOTEBOOKS = lab_notebooks()
# Lines nbgrader itself writes into a release in place of a solution.
STUB_LINES = {"# YOUR CODE HERE", "raise NotImplementedError()", "YOUR ANSWER HERE"}


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    """``(labs_dir, log)``: labs/ as nbgrader generates it now from solutions/, in a temporary
    course, and nbgrader's output."""
    return generate_releases(tmp_path_factory.mktemp("course"))


def _same(name, generated, committed):
    if name.endswith(".ipynb"):  # JSON layout (indentation, line endings) is not content
        try:
            return json.loads(generated) == json.loads(committed)
        except ValueError:  # e.g. merge-conflict markers
            return False
    return generated == committed


def _first_difference(generated, committed):
    """Where two versions of a notebook first differ, in words and a short diff."""
    try:
        new, old = (nbformat.reads(text.decode(), as_version=4) for text in (generated, committed))
    except ValueError as err:
        return f"the committed file is not a readable notebook ({err})"
    if new.metadata != old.metadata:
        return "the notebook metadata differs"
    if len(new.cells) != len(old.cells):
        return f"nbgrader generates {len(new.cells)} cells, the committed file has {len(old.cells)}"
    for i, (a, b) in enumerate(zip(new.cells, old.cells)):
        if a != b:
            label = nbgrader_meta(a).get("grade_id") or a.get("id") or i
            diff = list(difflib.unified_diff(b.source.splitlines(), a.source.splitlines(),
                                             "committed", "generated", lineterm="", n=1))
            return f"cell {i} ({label}) differs" + (":\n" + "\n".join(diff[:12]) if diff else
                                                     " in its metadata or outputs")
    return "the files differ"


@pytest.mark.parametrize("lab", LABS)
def test_committed_release_is_what_nbgrader_generates(lab, regenerated):
    labs_dir, log = regenerated
    assert (labs_dir / lab).is_dir(), (f"nbgrader cannot generate labs/{lab} from "
                                       f"solutions/{lab}/; its output:\n{log[-3000:]}")
    generated = working_tree_files(labs_dir / lab)
    committed = committed_release_files(lab)
    assert committed, f"labs/{lab}/ does not exist. {REGENERATE}"
    missing = sorted(set(generated) - set(committed))
    assert not missing, f"labs/{lab}/ lacks {missing}, which nbgrader generates. {REGENERATE}"
    extra = sorted(set(committed) - set(generated))
    assert not extra, (f"labs/{lab}/ has {extra}, which nbgrader does not generate (from "
                       f"solutions/{lab}/). Remove them with `git rm`; never add files to "
                       "labs/ by hand.")
    for name in sorted(generated):
        if _same(name, generated[name], committed[name]):
            continue
        detail = (_first_difference(generated[name], committed[name])
                  if name.endswith(".ipynb") else "the contents differ")
        on_disk = working_tree_files(LABS_DIR / lab).get(name)
        unstaged = (" Your working-tree copy is up to date but not staged: `git add labs/`."
                    if on_disk is not None and _same(name, generated[name], on_disk) else "")
        pytest.fail(f"labs/{lab}/{name} is not what nbgrader generates from solutions/{lab}/: "
                    f"{detail}\n{REGENERATE}{unstaged} Never edit labs/ by hand.")


def test_every_release_has_a_source():
    orphans = sorted(set(release_names()) - set(LABS))
    assert not orphans, (f"labs/ has {orphans} without a source notebook in solutions/: "
                         "restore the source or remove the release with `git rm -r labs/<lab>`.")


def _secret_lines(nb, markers, whole_cell_if):
    """Stripped lines that exist only inside `markers` regions (or whole cells where
    `whole_cell_if(cell)` holds and the cell has no markers), never elsewhere in `nb`."""
    secret, public = set(), set()
    for cell in nb.cells:
        inside, outside = partition_lines(cell.source, markers)
        if markers[0] not in cell.source and whole_cell_if(cell):
            inside, outside = outside, []
        secret |= {line.strip() for line in inside}
        public |= {line.strip() for line in outside}
    return secret - public - STUB_LINES - {""}


@pytest.mark.parametrize("lab_notebook", LAB_NOTEBOOKS)
def test_release_contains_no_solution_code(lab_notebook):
    source = nbformat.read(source_path(lab_notebook), as_version=4)
    release = committed_lab_or_fail(lab_notebook)
    secret = _secret_lines(source, SOLUTION_MARKERS, lambda c: nbgrader_meta(c).get("solution"))
    for cell in release.cells:
        leaked = [line for line in cell.source.splitlines() if line.strip() in secret]
        assert not leaked, (f"labs/{lab_notebook} shows solution code in cell "
                            f"{nbgrader_meta(cell).get('grade_id', cell.get('id'))}: {leaked[:3]}. "
                            f"Put it between ### BEGIN SOLUTION / ### END SOLUTION in an answer "
                            f"cell (nbgrader solution=True) of solutions/{lab_notebook}. "
                            + REGENERATE)
        markers = [m for m in SOLUTION_MARKERS + MARK_SCHEME_MARKERS if m in cell.source]
        assert not markers, (f"labs/{lab_notebook} contains the marker(s) {markers}: nbgrader "
                             "only removes them from cells marked as answer cells (solution=True)"
                             f". Fix the cell metadata in solutions/{lab_notebook}. " + REGENERATE)


@pytest.mark.parametrize("lab_notebook", LAB_NOTEBOOKS)
def test_release_contains_no_hidden_test(lab_notebook):
    source = nbformat.read(source_path(lab_notebook), as_version=4)
    release = committed_lab_or_fail(lab_notebook)
    secret = _secret_lines(source, HIDDEN_MARKERS, lambda cell: False)
    for cell in release.cells:
        leaked = [line for line in cell.source.splitlines() if line.strip() in secret]
        markers = [m for m in HIDDEN_MARKERS if m in cell.source]
        where = f"labs/{lab_notebook}, cell {nbgrader_meta(cell).get('grade_id', cell.get('id'))}"
        assert not leaked, (f"{where} shows hidden test code: {leaked[:3]}. Hidden tests must "
                            "sit between ### BEGIN HIDDEN TESTS / ### END HIDDEN TESTS in a "
                            "graded test cell (grade=True). " + REGENERATE)
        assert not markers, (f"{where} contains {markers}: nbgrader only removes hidden tests "
                             "from graded test cells (grade=True). " + REGENERATE)


@pytest.mark.parametrize("lab_notebook", LAB_NOTEBOOKS)
def test_source_is_committed_without_outputs(lab_notebook):
    source = nbformat.read(source_path(lab_notebook), as_version=4)
    with_outputs = [nbgrader_meta(c).get("grade_id", c.get("id")) for c in source.cells
                    if c.cell_type == "code" and (c.outputs or c.execution_count is not None)]
    assert not with_outputs, (f"solutions/{lab_notebook} has outputs in cells {with_outputs}; "
                              "sources are committed without outputs (they can show solution "
                              "values). Clear them: `jupyter nbconvert --clear-output --inplace "
                              f"solutions/{lab_notebook}`.")
