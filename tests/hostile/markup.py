"""Hostile students whose output is markup: HTML, JavaScript and SVG that would run, or forge
a score, in the feedback page and in formgrader (which renders autograded/ notebooks in the
instructor's Jupyter origin). Their answers are right, so they earn the lab's points; what
they display must reach feedback/ and autograded/ as text, never as markup.

Imported at the end of hostile/students.py, which registers them in submissions.STUDENTS.
"""
import nbformat

from hostile.students import _attack, _spy
from submissions import Submission, student

# Text each payload tries to show as if it were the page's own score.
FORGED = "Score: 13 / 13 (forged)"

# What the learner's function displays each time it is called (so also while a test calls
# it): HTML with a script, an event handler and the forged score, and JavaScript.
_DISPLAY_IN_CALL = (
    "from IPython.display import HTML, SVG, Javascript, Markdown, display\n"
    f"_forged = {FORGED!r}\n"
    "display(HTML('<script>document.title = \"pwned\"</script>'\n"
    "             '<img src=\"x\" onerror=\"document.body.innerHTML = _forged\">'\n"
    "             f'<div class=\"score\"><b>{_forged}</b></div>'))\n"
    "display(Javascript('document.body.innerHTML = \"' + _forged + '\"'))\n")

# Every other kind of rich output a learner can display: Markdown holding HTML and a
# javascript: link, SVG with a script, a raw MIME bundle with no text/plain, a widget view.
_DISPLAY = _DISPLAY_IN_CALL + (
    "display(Markdown(f'<a href=\"javascript:alert(1)\">{_forged}</a> '\n"
    "                 '[click](javascript:alert(2)) <script>alert(3)</script>'))\n"
    "display(SVG('<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(4)</script>'\n"
    "            '<circle r=\"5\" onload=\"alert(5)\"/></svg>'))\n"
    "display({'text/html': f'<iframe src=\"javascript:alert(6)\"></iframe>{_forged}'},\n"
    "        raw=True)\n"
    "display({'text/plain': 'a widget', 'application/vnd.jupyter.widget-view+json':\n"
    "         {'model_id': 'x', 'version_major': 2, 'version_minor': 0}}, raw=True)\n")

_MARKDOWN = (
    "My notes.\n\n"
    "<script>document.body.innerHTML = 'pwned'</script>\n\n"
    f"<div class=\"score\" onclick=\"alert(7)\">{FORGED}</div>\n\n"
    "<img src=\"x\" onerror=\"alert(8)\">\n\n"
    "[see this](javascript:alert(9))\n")


@student
def hostile_html_answer(lab):
    """Right answers; a cell of the learner's displays HTML with a <script> and an onerror
    handler forging the score (and JavaScript, Markdown, SVG, a widget view), and a markdown
    cell of theirs holds a <script>, an event handler and a javascript: link."""
    nb = _attack(lab, _DISPLAY)
    nb.cells.append(nbformat.v4.new_markdown_cell(_MARKDOWN))
    return Submission(nb, lab.total)


@student
def hostile_html_during_test(lab):
    """Right answers; the first answer's function displays HTML (a <script>, an onerror
    handler, the forged score) and JavaScript every time it is called, so they appear in the
    outputs of the test cells that call it."""
    return _spy(lab, _DISPLAY_IN_CALL)
