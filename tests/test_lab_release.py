"""The committed labs/ is exactly what nbgrader generates from solutions/, and gives nothing away.

Every lab folder in solutions/ is tested; a new lab needs no new test code. "Committed" means
what git has staged (see notebooks.py), so a learner's edits in labs/ never fail these tests.
"""
import ast
import difflib
import json

import nbformat
import pytest

from notebooks import (HIDDEN_MARKERS, LABS_DIR, MARK_SCHEME_MARKERS, REGENERATE, REPO_ROOT,
                       SOLUTION_MARKERS, committed_lab_or_fail, committed_release_files,
                       generate_releases, graded_test_cells, is_graded_test, lab_names,
                       lab_notebooks, nbgrader_meta, partition_lines, release_names,
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


# -- the visible tests give nothing away -------------------------------------------------------
MIN_EXPRESSION = 8  # characters: shorter expressions (`x.T`, `N * D`) say nothing of an answer
BARE = (ast.Name, ast.Constant, ast.Attribute, ast.Starred, ast.Slice)
MAX_VISIBLE_TEST_LINES = 6
LABCHECKS_DIR = REPO_ROOT / "lib" / "backprop" / "labchecks"


def _expression_nodes(tree, lines=None):
    """``{ast.unparse(node)}`` of every expression in `tree` (within the line numbers `lines`,
    when given) that computes something: not a bare name, constant or attribute, and at least
    MIN_EXPRESSION characters long."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.expr) and not isinstance(node, BARE) and (
                lines is None or (node.lineno in lines and node.end_lineno in lines)):
            text = ast.unparse(node)
            if len(text) >= MIN_EXPRESSION:
                found.add(text)
    return found


def _parse(source):
    """The cell's code as an AST (IPython magics and shell lines left out); None if it does
    not parse."""
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())
    try:
        return ast.parse(code)
    except SyntaxError:
        return None


def solution_expressions(nb):
    """The expressions of the solution's answers: code between the solution markers of every
    answer cell."""
    found = set()
    for cell in nb.cells:
        if cell.cell_type != "code" or not nbgrader_meta(cell).get("solution"):
            continue
        tree, lines, inside = _parse(cell.source), set(), False
        for number, line in enumerate(cell.source.splitlines(), 1):
            if SOLUTION_MARKERS[0] in line or SOLUTION_MARKERS[1] in line:
                inside = SOLUTION_MARKERS[0] in line
            elif inside:
                lines.add(number)
        if tree is not None:
            found |= _expression_nodes(tree, lines)
    return found


def _visible_code(cell):
    """The code lines of a release's test cell (no blank or comment-only lines)."""
    return [line for line in cell.source.splitlines()
            if line.strip() and not line.strip().startswith("#")]


@pytest.mark.parametrize("lab_notebook", LAB_NOTEBOOKS)
def test_visible_tests_do_not_compute_the_answer(lab_notebook):
    answers = solution_expressions(nbformat.read(source_path(lab_notebook), as_version=4))
    release = committed_lab_or_fail(lab_notebook)
    for cell in release.cells:
        if cell.cell_type != "code" or not nbgrader_meta(cell).get("grade") or \
                nbgrader_meta(cell).get("solution"):
            continue
        tree = _parse(cell.source)
        shown = set() if tree is None else _expression_nodes(tree)
        leaked = sorted(shown & answers)
        assert not leaked, (
            f"labs/{lab_notebook}, test cell {nbgrader_meta(cell).get('grade_id')}, computes "
            f"what the solution computes: {leaked[:3]}. A learner who scrolls down reads the "
            "answer. Move the check into the lab's module in backprop.labchecks (finite "
            "differences, stored values, invariants) and call it from the cell.")


@pytest.mark.parametrize("lab_notebook", LAB_NOTEBOOKS)
def test_visible_test_cells_are_one_call_to_the_labs_checks(lab_notebook):
    lab_id = lab_notebook.split("_")[0]
    release = committed_lab_or_fail(lab_notebook)
    for grade_id, cell in graded_test_cells(release):
        code = _visible_code(cell)
        where = f"labs/{lab_notebook}, test cell {grade_id}"
        assert len(code) <= MAX_VISIBLE_TEST_LINES, (
            f"{where} has {len(code)} lines of visible test code (at most "
            f"{MAX_VISIBLE_TEST_LINES}): a failure should show the check's message, not a page "
            "of test code. Call one function of backprop.labchecks." + lab_id)
        assert f'fresh("{lab_id}")' in cell.source or f"fresh('{lab_id}')" in cell.source, (
            f'{where} does not take its checks from fresh("{lab_id}"), the copy of '
            f"backprop.labchecks.{lab_id} that an answer cell cannot have changed.")


@pytest.mark.parametrize("lab", LABS)
def test_every_lab_has_its_visible_checks_and_uses_them_all(lab):
    lab_id = lab.split("_")[0]
    module = LABCHECKS_DIR / f"{lab_id}.py"
    assert module.is_file(), f"lib/backprop/labchecks/{lab_id}.py, the visible checks of {lab}, is missing."
    defined = {node.name for node in ast.parse(module.read_text(encoding="utf-8")).body
               if isinstance(node, ast.FunctionDef) and node.name.startswith("check_")}
    assert defined, f"lib/backprop/labchecks/{lab_id}.py defines no check_* function."
    cells = "\n".join(cell.source for notebook in LAB_NOTEBOOKS if notebook.startswith(lab)
                      for _, cell in graded_test_cells(committed_lab_or_fail(notebook)))
    unused = sorted(name for name in defined if f".{name}(" not in cells)
    assert not unused, (f"lib/backprop/labchecks/{lab_id}.py defines checks no test cell of "
                        f"labs/{lab} calls: {unused}. Call them or remove them.")


@pytest.mark.parametrize("lab_notebook", LAB_NOTEBOOKS)
def test_every_lab_ends_in_building_and_training_a_model(lab_notebook):
    source = nbformat.read(source_path(lab_notebook), as_version=4)
    ids = {nbgrader_meta(cell).get("grade_id"): cell for cell in source.cells}
    answer, test = ids.get("build_and_train"), ids.get("test_build_and_train")
    assert answer is not None and nbgrader_meta(answer).get("solution"), (
        f"solutions/{lab_notebook} has no answer cell `build_and_train` (solution=True) in "
        "which the learner assembles what they derived into a model and trains it.")
    assert test is not None and is_graded_test(test) and nbgrader_meta(test).get("points"), (
        f"solutions/{lab_notebook} has no graded test cell `test_build_and_train` (with points) "
        "that measures the trained model on held-out data.")
