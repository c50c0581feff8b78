"""grading/cells.py (SortOutCells) and grading/markup.py (StudentMarkupAsText), on small
notebooks: autograde's sanitize steps (as nbgrader_config.py lists them) on a source recorded
in a throw-away gradebook by nbgrader's own SaveCells, and the markup step on outputs and
markdown. Fast; the grading pipeline test grades the same mistakes on lab 01 end to end."""
import copy
import logging
import os
import sys
from html.parser import HTMLParser

import nbformat
import pytest
from nbformat import v4
from nbgrader.api import Gradebook
from nbgrader.preprocessors import (CheckCellMetadata, ComputeChecksums, OverwriteCells,
                                    SaveCells)
from traitlets.config import Config

from notebooks import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT))
from grading.cells import SortOutCells  # noqa: E402
from grading.markup import NOTE, StudentMarkupAsText  # noqa: E402


def _cell(kind, grade_id, source, **roles):
    make = v4.new_code_cell if kind == "code" else v4.new_markdown_cell
    meta = dict(grade=False, solution=False, locked=False, schema_version=3, grade_id=grade_id)
    meta.update(roles)
    return nbformat.from_dict(make(source, metadata={"nbgrader": meta}))


def _source():
    return v4.new_notebook(cells=[
        _cell("markdown", "intro", "# A lab", locked=True),
        _cell("code", "setup", "import math", locked=True),
        _cell("code", "a", "def a():\n    return 1", solution=True),
        _cell("code", "test_a", "assert a() == 1", grade=True, locked=True, points=2),
        _cell("markdown", "md_b", "## Part b", locked=True),
        _cell("code", "b", "def b():\n    return 2", solution=True),
        _cell("code", "test_b", "assert b() == 2", grade=True, locked=True, points=3),
    ])


@pytest.fixture(scope="module")
def resources(tmp_path_factory):
    """A gradebook holding the source notebook, as `generate_assignment` leaves it (the steps
    tested only read it)."""
    db_url = f"sqlite:///{tmp_path_factory.mktemp('course') / 'gradebook.db'}"
    # nbgrader runs `alembic` from PATH to create a gradebook (nbgrader_config.py does this)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
        with Gradebook(db_url) as gradebook:
            gradebook.add_assignment("lab")
    resources = {"nbgrader": {"db_url": db_url, "assignment": "lab", "notebook": "nb"}}
    nb = ComputeChecksums().preprocess(_source(), resources)[0]
    SaveCells().preprocess(nb, resources)
    return resources


def _release():
    return ComputeChecksums().preprocess(_source(), {})[0]


def _sanitize(nb, resources, caplog):
    """Autograde's sanitize steps, as nbgrader_config.py lists them (without ClearOutput and
    OverwriteKernelspec, which do not touch cells' metadata)."""
    config = Config()
    config.OverwriteCells.add_missing_cells = True
    with caplog.at_level(logging.WARNING):
        for step in (SortOutCells, OverwriteCells, CheckCellMetadata):
            nb, resources = step(config=config).preprocess(nb, resources)
    return nb


def _ids(nb):
    return [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]


def _at(nb, grade_id):
    return _ids(nb).index(grade_id)


def test_a_duplicated_test_cell_is_graded_once_and_its_copy_runs_as_plain_code(
        resources, caplog):
    nb = _release()
    nb.cells.insert(4, copy.deepcopy(nb.cells[3]))  # JupyterLab's Duplicate: right below
    nb = _sanitize(nb, resources, caplog)
    assert _ids(nb).count("test_a") == 1
    assert _at(nb, "test_a") == 3
    copied = nb.cells[4]
    assert "nbgrader" not in copied.metadata and copied.source == "assert a() == 1"
    assert "cell 4: a copy of test cell test_a (cell 3 is graded): run as plain code" \
        in caplog.text


def test_of_duplicated_answer_cells_the_last_is_the_answer(resources, caplog):
    nb = _release()
    draft = copy.deepcopy(nb.cells[2])
    draft.source = "def a():\n    return 0  # draft"
    nb.cells.insert(2, draft)
    nb = _sanitize(nb, resources, caplog)
    assert _ids(nb).count("a") == 1 and nb.cells[_at(nb, "a")].source == "def a():\n    return 1"
    assert "nbgrader" not in nb.cells[2].metadata and "draft" in nb.cells[2].source
    assert "cell 2: a copy of answer cell a (cell 3 is graded)" in caplog.text


def test_duplicated_locked_cells_are_put_back_once(resources, caplog):
    nb = _release()
    nb.cells.insert(2, copy.deepcopy(nb.cells[1]))
    nb.cells.insert(1, copy.deepcopy(nb.cells[0]))
    nb = _sanitize(nb, resources, caplog)
    assert _ids(nb)[:4] == ["intro", None, "setup", None]
    assert "a copy of locked markdown cell intro" in caplog.text
    assert "a copy of locked setup cell setup" in caplog.text


def test_cells_the_learner_marked_are_plain_cells(resources, caplog):
    nb = _release()
    nb.cells.insert(3, _cell("code", "mine", "assert True", grade=True, locked=True, points=10))
    nb.cells.insert(3, _cell("markdown", "notes", "my notes", grade=True, solution=True,
                             points=5))
    nb.cells.insert(3, nbformat.from_dict(v4.new_code_cell("x = 1", metadata={"nbgrader": {"grade": True}})))
    nb.cells.insert(3, nbformat.from_dict(v4.new_code_cell("y = 1", metadata={"nbgrader": {}})))
    nb = _sanitize(nb, resources, caplog)
    assert all("nbgrader" not in nb.cells[i].metadata for i in range(3, 7))
    for warned in ("cell 6: a cell marked grade/locked under the grade id 'mine', which this "
                   "lab does not have: run as plain code, not graded",
                   "cell 5: a cell marked grade/solution under the grade id 'notes'",
                   "cell 4: a cell marked grade under the grade id None"):
        assert warned in caplog.text
    points = {m["grade_id"]: m["points"] for m in (c.metadata.get("nbgrader", {})
                                                   for c in nb.cells) if m.get("grade")}
    assert points == {"test_a": 2, "test_b": 3}


def test_an_answer_the_learner_marked_graded_gets_its_roles_back(resources, caplog):
    nb = _release()
    nb.cells[2].metadata.nbgrader.update(grade=True, points=50)
    nb.cells[3].metadata.nbgrader.update(grade=False)  # test_a unmarked
    nb = _sanitize(nb, resources, caplog)
    assert {k: nb.cells[2].metadata.nbgrader.get(k) for k in ("grade", "solution", "points")} \
        == {"grade": False, "solution": True, "points": None}
    assert nb.cells[3].metadata.nbgrader["grade"] is True
    assert nb.cells[3].metadata.nbgrader["points"] == 2
    assert _ids(nb).count("test_a") == 1


def test_a_test_dragged_above_its_answer_runs_below_it(resources, caplog):
    nb = _release()
    nb.cells.insert(5, nb.cells.pop(6))  # test_b above b
    nb.cells[2], nb.cells[6] = nb.cells[6], nb.cells[2]  # answers a and b swapped
    assert _ids(nb) == ["intro", "setup", "b", "test_a", "md_b", "test_b", "a"]
    nb = _sanitize(nb, resources, caplog)
    assert _ids(nb) == ["intro", "setup", "b", "md_b", "a", "test_a", "test_b"]
    assert "test cell test_a sat above answer cell a, which it needs: moved below it" \
        in caplog.text


def test_a_test_deleted_with_its_answer_and_the_cell_before_is_put_back(resources, caplog):
    nb = _release()
    del nb.cells[4:7]  # md_b, b, test_b
    nb = _sanitize(nb, resources, caplog)
    assert _ids(nb) == ["intro", "setup", "a", "test_a", "md_b", "test_b"]
    assert nb.cells[-1].source.endswith("assert b() == 2")
    assert nb.cells[-1].metadata.nbgrader["points"] == 3
    assert "test cell test_b is missing: put back from the gradebook" in caplog.text


def test_a_deleted_setup_cell_is_put_back_in_its_place(resources, caplog):
    nb = _release()
    del nb.cells[1]  # the locked setup code
    nb = _sanitize(nb, resources, caplog)
    assert _ids(nb) == _ids(_source())
    assert nb.cells[1].source == "import math" and nb.cells[1].metadata.nbgrader["locked"]
    assert "locked setup cell setup is missing: put back from the gradebook" in caplog.text


def test_an_unchanged_notebook_is_left_as_it_is(resources, caplog):
    nb = _sanitize(_release(), resources, caplog)
    assert _ids(nb) == _ids(_source())
    assert "grading.cells" not in caplog.text and not [
        r for r in caplog.records if r.name.endswith("SortOutCells")]


# -- markup ------------------------------------------------------------------------------------
class _Active(HTMLParser):
    """What in an HTML page can run or fetch: script elements, on* attributes, and
    javascript: targets."""

    def __init__(self, page):
        super().__init__(convert_charrefs=True)
        self.found = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "iframe", "object", "embed"):
            self.found.append(tag)
        for name, value in attrs:
            if name.startswith("on") or "javascript:" in (value or "").lower():
                self.found.append(f"{tag} {name}={value}")


def _markup(cells):
    config = Config()
    config.SanitizeHTML.sanitized_output_types = set()  # as nbgrader_config.py sets it
    return StudentMarkupAsText(config=config).preprocess(v4.new_notebook(cells=cells), {})[0]


def test_rich_outputs_leave_only_their_text_and_images():
    outputs = [
        v4.new_output("display_data", data={"text/html": "<script>alert(1)</script>",
                                            "text/plain": "<IPython.core.display.HTML object>"}),
        v4.new_output("display_data", data={"application/javascript": "alert(2)",
                                            "text/plain": "<Javascript>"}),
        v4.new_output("execute_result", execution_count=1,
                      data={"image/svg+xml": "<svg><script>alert(3)</script></svg>",
                            "image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}),
        v4.new_output("display_data", data={"text/markdown": "<b onclick='x'>Score</b>"}),
        v4.new_output("display_data", data={"text/latex": "$x^2$"}),
        v4.new_output("stream", name="stdout", text="<script>printed</script>"),
    ]
    cell = _markup([v4.new_code_cell("show()", outputs=outputs)]).cells[0]
    assert [sorted(o.get("data", {})) for o in cell.outputs] == [
        ["text/plain"], ["text/plain"], ["image/png", "text/plain"], ["text/plain"],
        ["text/latex"], []]
    assert cell.outputs[3].data["text/plain"] == NOTE
    assert cell.outputs[5].text == "<script>printed</script>"  # a stream is shown as text


def test_the_learners_markdown_is_rendered_inert_and_the_instructors_left_alone():
    hostile = ("<script>alert(1)</script>\n\n<div onclick='alert(2)'>Score: 13 / 13</div>\n\n"
               "[x](javascript:alert(3)) ![y](javascript:alert(4))\n\n**mine** and $a<b$")
    instructor = "<details><summary>Hint</summary>use <b>np.exp</b></details>"
    nb = _markup([v4.new_markdown_cell(hostile),
                  _cell("markdown", "md", instructor, locked=True)])
    learner = nb.cells[0].source
    assert _Active(learner).found == []
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in learner
    assert "<strong>mine</strong>" in learner and "$a&lt;b$" in learner
    assert nb.cells[1].source == instructor
