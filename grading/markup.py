"""`StudentMarkupAsText`: nothing a learner's code displays, or a learner writes in a markdown
cell, reaches autograded/ as markup. Runs among autograde's preprocessors, after execution
(nbgrader_config.py); feedback pages and formgrader render from autograded/, and so do other
tools an instructor may open it with.

Outputs: nbconvert's SanitizeHTML preprocessor, configured in nbgrader_config.py to drop
every output MIME type but text/plain, images (PNG, JPEG), LaTeX and JSON, so HTML, Markdown,
JavaScript, SVG and widget views go and IPython's text/plain form of the same object stays.
An output left with nothing (a raw MIME bundle without text/plain) gets a short note.

The learner's markdown cells (those not locked: locked ones were put back from the gradebook
by OverwriteCells and are the instructor's): SanitizeHTML's bleach escapes HTML tags but
leaves markdown links such as [x](javascript:...), and escapes the `<` of math twice; and
nbgrader's feedback and formgrade templates render markdown cells without nbconvert's
`sanitize_html`. So the learner's markdown is rendered here, by nbconvert's own markdown
renderer (the one those templates use) in mistune's safe mode: raw HTML escaped, links and
images with javascript:, vbscript:, file: or non-image data: targets made inert, math kept
for MathJax. The cell then holds that HTML, which the templates pass through unchanged.
"""
import html

from nbconvert.filters.markdown_mistune import IPythonRenderer, InvalidNotebook, MarkdownWithMath
from nbconvert.preprocessors.sanitize import SanitizeHTML
from nbgrader import utils
from traitlets import Bool

NOTE = "(rich output not shown in grading: only text and images are kept)"


class StudentMarkupAsText(SanitizeHTML):
    """SanitizeHTML on every code cell's outputs (a test cell's outputs are what the learner's
    code displayed while the test called it) and on every markdown or raw cell that is not
    locked (the learner's)."""

    # nbgrader registers its preprocessors without enabling them; nbconvert's skip a notebook
    # unless enabled.
    enabled = Bool(True).tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" and utils.is_locked(cell):
            return cell, resources
        if cell.cell_type == "markdown":
            cell.source = markdown_as_safe_html(cell)
            return cell, resources
        cell, resources = super().preprocess_cell(cell, resources, index)
        for output in cell.get("outputs", []):
            if output.output_type in ("display_data", "execute_result") and not output.data:
                output.data["text/plain"] = NOTE
        return cell, resources


def markdown_as_safe_html(cell):
    """A markdown cell's source as HTML with nothing active in it (see the module's
    docstring); a cell whose markdown cannot be rendered is shown as preformatted text."""
    renderer = IPythonRenderer(escape=True, allow_harmful_protocols=False,
                               attachments=cell.get("attachments", {}))
    try:
        return MarkdownWithMath(renderer=renderer).render(cell.source)
    except InvalidNotebook:  # an image naming an attachment the cell does not have
        return f"<pre>{html.escape(cell.source)}</pre>"
