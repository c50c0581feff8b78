"""What each cell of a lab is, read from the instructor's source notebook (never from the
submission): which cells are setup code the checker runs in its own namespace, which are
graded tests it runs, and which names the answers define (the only names the checker reads
from the student's kernel). Used by `SandboxedExecute` (grading/preprocessors.py).
"""
import ast
import os
from dataclasses import dataclass, field

import nbformat
from nbgrader import utils
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.coursedir import CourseDirectory


@dataclass
class SourceCells:
    """The roles of a source notebook's code cells, by grade id, in notebook order."""
    setup: dict = field(default_factory=dict)  # grade id -> code of a locked, ungraded cell
    tests: dict = field(default_factory=dict)  # grade id -> code of a graded test cell
    answers: frozenset = frozenset()  # names the answer cells define at top level
    order: list = field(default_factory=list)  # grade ids of setup and test cells, in order
    # code of the setup and answer cells, in order: what the checker builds the hidden tests'
    # reference answers from (None when read from the gradebook, which holds no answers)
    reference: list = None

    @property
    def hidden_tests(self):
        """Whether any graded test cell holds hidden tests."""
        return any("BEGIN HIDDEN TESTS" in code for code in self.tests.values())

    def setup_before(self, grade_id):
        """The setup cells that come before `grade_id` in the source."""
        earlier = self.order[:self.order.index(grade_id)] if grade_id in self.order else []
        return [g for g in earlier if g in self.setup]


def bound_names(source, imports=True):
    """Names a cell's code binds at the top level: functions, classes, assignment, loop and
    `with` targets, and imports (unless `imports` is False). (Names inside functions, classes,
    lambdas and comprehensions are theirs, not the notebook's.)"""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return set()
    names, todo = set(), list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            todo += node.decorator_list
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if imports:
                names.update((a.asname or a.name).split(".")[0] for a in node.names
                             if a.name != "*")
            continue
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp,
                             ast.GeneratorExp)):
            continue
        todo += list(ast.iter_child_nodes(node))
    return names


def _kind(cell_type, graded, solution, locked):
    if cell_type != "code":
        return None
    if solution:
        return "answer"
    if graded:
        return "test"
    return "setup" if locked else None


def _from_cells(cells):
    """cells: (grade id, kind, code) in notebook order."""
    found = SourceCells(reference=[])
    answers = set()
    for grade_id, kind, code in cells:
        if kind in ("setup", "answer"):
            found.reference.append(code)
        if kind == "answer":
            # Not what an answer imports: that is the library's object, never the learner's
            # answer, and the checker's own setup imports give the tests the same.
            answers |= bound_names(code, imports=False)
        elif kind in ("setup", "test") and grade_id not in found.order:
            (found.setup if kind == "setup" else found.tests)[grade_id] = code
            found.order.append(grade_id)
    found.answers = frozenset(answers)
    return found


def read_source_notebook(path):
    nb = nbformat.read(path, as_version=4)
    cells = []
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id:
            cells.append((grade_id, _kind(cell.cell_type, utils.is_grade(cell),
                                          utils.is_solution(cell), utils.is_locked(cell)),
                          cell.source))
    return _from_cells(cells)


def _from_gradebook(db_url, assignment, notebook):
    with Gradebook(db_url) as gradebook:
        found = gradebook.find_notebook(notebook, assignment)
        graded = {cell.name for cell in found.grade_cells}
        solutions = {cell.name for cell in found.solution_cells}
        cells = _from_cells([(cell.name, _kind(cell.cell_type, cell.name in graded,
                                               cell.name in solutions, cell.locked), cell.source)
                             for cell in found.source_cells])
    cells.reference = None  # the gradebook holds the release's answer cells, not the answers
    return cells


def source_cells(config, resources, log):
    """The `SourceCells` of the notebook being graded: from
    <CourseDirectory.root>/<source_directory>/<assignment>/<notebook>.ipynb, or, when that
    file is missing, from the gradebook (which holds the source's cells since
    generate_assignment). None when neither has it: then no cell runs in the checker."""
    info = resources.get("nbgrader", {})
    assignment, notebook = info.get("assignment"), info.get("notebook")
    if not (assignment and notebook):
        log.warning("No assignment or notebook name: graded test cells run in the kernel")
        return None
    coursedir = CourseDirectory(config=config)
    path = os.path.join(coursedir.format_path(coursedir.source_directory, ".", assignment),
                        f"{notebook}.ipynb")
    if os.path.isfile(path):
        return read_source_notebook(path)
    log.warning("The source notebook %s is missing: the setup and test cells the checker runs "
                "come from the gradebook", path)
    try:
        return _from_gradebook(info.get("db_url") or coursedir.db_url, assignment, notebook)
    except MissingEntry:
        log.error("Neither %s nor the gradebook has %s/%s: its test cells cannot be graded",
                  path, assignment, notebook)
        return None
