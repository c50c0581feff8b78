"""What `nbgrader validate` shows for a failed check: the whole message, numbers first.

nbgrader's validator prints each failed test cell's code and error with a 4-space indent and
cuts every line beyond ``Validator.width - 3`` characters with "...". For one planted mistake
per lab (from tests/mistakes/<lab>.py), the lab as released, its answers filled in from the
solution with that one mistake, is validated the way the Validate button does it (nbgrader's
`Validator` with the course's nbgrader_config.py, read from the course folder), and once with
the real ``nbgrader validate`` command. The output must hold every failing check's message,
word for word, with no line cut; the planted mistake's message must give the received and the
expected value on its first line, and its hint.
"""
import contextlib
import io
import os
import re
import subprocess
import sys

import nbformat
import pytest
from nbgrader.apps import NbGrader
from nbgrader.validator import Validator

from backprop import checks
from mistakes import load_mistakes
from notebooks import REPO_ROOT, committed_lab_notebook, lab_names, source_path
from submissions import Lab

# lab -> the planted mistake (a name in tests/mistakes/<lab>.py): one a visible check names,
# with a label that says what was checked, so the message has numbers, context and a hint.
PLANTED = {
    "lab01_forward_pass": "dense_forward: forgot the bias",
    "lab02_losses": "huber_loss: forgot to divide the gradient by the number of entries",
    "lab03_chain_rule": "pow_backward: a.data ** n-1 without parentheses",
    "lab04_backprop_mlp": "network_backward: dW2 from a1 instead of h1 = tanh(a1)",
    "lab05_optimizers": "adamax_update: u bias-corrected too, as Adam's v",
    "lab06_cnn": "conv_backward_naive: windows ignore the stride",
    "lab07_rnn": "gru_step_backward: dh_prev without the direct path through z",
    "lab08_overfitting": "dropconnect_backward: dW with (mask > 0), losing the scale",
    "lab09_local_minima": "hessian_vector_product: forgot to divide by 2 * eps",
    "lab11_normalization": "batchnorm_backward: dgamma from x instead of xhat",
    "lab12_attention": "mha_backward: the 1/sqrt(d) of the scores missing in the backward pass",
    "lab13_generative": "negative_elbo: forgot the KL path into mu",
}
# "= 3.35, expected 17.1" (an entry, a number or a truth value), "is 0.3, expected below 0.1",
# "has shape (3,), expected (2, 3)"
_NUMBER = r"-?(?:[\d.]+(?:e[+-]\d+)?|inf|nan|True|False)"
RECEIVED_AND_EXPECTED = re.compile(rf"(?:= |is |accuracy ){_NUMBER}.*[,;] expected "
                                   rf"(?:at least |at most |below |above )?"
                                   rf"{_NUMBER}|has shape \([\d, ]*\), expected \([\d, ]*\)")


def _course_config():
    """nbgrader's configuration as the Validate button's server handler loads it: the
    nbgrader_config.py of the folder Jupyter runs in (here the course's)."""
    app = NbGrader()
    app.load_config_file()
    return app.config


def _mistake(lab):
    return next(m for m in load_mistakes(lab) if m.name == PLANTED[lab])


def planted_notebook(lab):
    """The lab's release with every answer filled in from the solution, one with its planted
    mistake; the planted `Mistake`."""
    name = f"{lab}/{lab}.ipynb"
    solution = nbformat.read(source_path(name), as_version=4)
    release = committed_lab_notebook(name)
    work, mistake = Lab(solution, release), _mistake(lab)
    return work.answered(**{mistake.answer: mistake.wrong_source(
        work.student_code(mistake.answer))}), mistake


class _Keeping(Validator):
    """nbgrader's Validator, keeping the notebook it executed (to read the errors' messages)."""

    def _preprocess(self, nb):
        self.executed = super()._preprocess(nb)
        return self.executed


def _words(text):
    return " ".join(text.split())


def _check_errors(executed):
    """The messages of the LabCheckErrors the graded test cells raised."""
    return [output["evalue"] for cell in executed.cells if cell.cell_type == "code"
            and cell.metadata.get("nbgrader", {}).get("grade")
            for output in cell.get("outputs", []) if output.get("output_type") == "error"
            and output.get("ename") == "LabCheckError"]


def assert_nothing_cut(printed, width):
    cut = [line for line in printed.splitlines() if set(line) != {"="}  # the rules
           and (line.endswith("...") or len(line) > width - 3)]
    assert not cut, "lines cut by the validator:\n" + "\n".join(cut)


def assert_named_with_numbers(printed, message, mistake):
    """`message` (the planted mistake's) gives both values on its first line, which `printed`
    shows with its numbers, and its hint on a line of its own, shown whole."""
    first = message.splitlines()[0]
    assert RECEIVED_AND_EXPECTED.search(first), (
        f"the first line does not give the received and the expected value: {first!r}")
    shown_first = next(line for line in printed.splitlines()
                       if line.strip().startswith("\u2717 LabCheckError: " + first[:30]))
    assert RECEIVED_AND_EXPECTED.search(shown_first), (
        f"the printed first line lost its numbers to wrapping: {shown_first!r}")
    hint = next((line for line in message.splitlines() if mistake.hint in line), "")
    assert hint.startswith("  Hint: "), f"the hint is not on a line of its own: {message!r}"
    assert _words(hint) in _words(printed), f"the hint is not shown whole:\n{printed}"


@pytest.fixture
def in_course_folder(monkeypatch):
    monkeypatch.chdir(REPO_ROOT)


def test_the_configured_width_fits_the_messages_and_the_test_code(in_course_folder):
    width = _course_config().Validator.width
    assert 4 + checks.MESSAGE_WIDTH <= width - 3 <= 4 + 100, width
    longest = max(len(line) for lab in lab_names()
                  for cell in committed_lab_notebook(f"{lab}/{lab}.ipynb").cells
                  if cell.metadata.get("nbgrader", {}).get("grade")
                  for line in cell.source.splitlines())
    assert 4 + longest <= width - 3, f"a test cell's line of {longest} characters is cut"


def test_every_lab_has_a_planted_mistake_named_by_a_visible_check():
    assert sorted(PLANTED) == lab_names()
    for lab in PLANTED:
        assert _mistake(lab).hint and not _mistake(lab).speed, lab


@pytest.mark.parametrize("lab", sorted(PLANTED))
def test_validate_shows_every_failing_message_whole(lab, tmp_path, in_course_folder):
    nb, mistake = planted_notebook(lab)
    path = tmp_path / f"{lab}.ipynb"
    nbformat.write(nb, path)
    validator = _Keeping(config=_course_config())
    validator.stream = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()):
        validator.validate_and_print(str(path))
    printed = validator.stream.getvalue()
    assert "VALIDATION FAILED" in printed, printed
    assert_nothing_cut(printed, validator.width)
    messages = _check_errors(validator.executed)
    for message in messages:
        assert _words(message) in _words(printed), (
            f"the message\n{message}\nis not shown whole in:\n{printed}")
    named = [m for m in messages if mistake.hint in m]
    assert named, f"no check names {mistake.name!r} (hint {mistake.hint!r}): {messages}"
    assert_named_with_numbers(printed, named[0], mistake)


def test_the_nbgrader_validate_command_shows_a_message_whole(tmp_path):
    lab = "lab07_rnn"
    nb, mistake = planted_notebook(lab)
    path = tmp_path / f"{lab}.ipynb"
    nbformat.write(nb, path)
    nbgrader = os.path.join(os.path.dirname(sys.executable), "nbgrader")
    done = subprocess.run([nbgrader, "validate", str(path)], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=600, check=False)
    printed = done.stdout
    rules = {len(line) for line in printed.splitlines() if line and set(line) == {"="}}
    assert rules == {102}, (printed, done.stderr)  # the course's Validator.width
    assert_nothing_cut(printed, 102)
    # each failed check as printed: "✗ LabCheckError: " to the blank line, indent removed
    messages = [re.sub(r"\n {4}", "\n", block.split("\n\n")[0])
                for block in printed.split("\u2717 LabCheckError: ")[1:]]
    named = [m for m in messages if _words(mistake.hint) in _words(m)]
    assert named, printed
    first = named[0].splitlines()[0]
    assert RECEIVED_AND_EXPECTED.search(first), first
    assert _words(mistake.hint) in _words(printed)


def _first_lines_in_the_mistakes_document():
    """The first line of every message in docs/mistakes.md (made from the real runs of every
    mistake fixture, and kept up to date by tests/test_mistakes.py)."""
    rows = (REPO_ROOT / "docs" / "mistakes.md").read_text(encoding="utf-8").splitlines()
    found = (re.match(r"\| .* \| .*`` \| `` (.*?) ``(?:<br>| *\|)", row) for row in rows)
    return [match.group(1).replace("\\|", "|") for match in found if match]


def test_every_documented_message_with_an_expected_value_shows_it_on_its_first_line():
    firsts = _first_lines_in_the_mistakes_document()
    assert len(firsts) > 200, len(firsts)
    valued = [first for first in firsts if re.search(r"\bexpected\b", first)]
    lost = [first for first in valued if not RECEIVED_AND_EXPECTED.search(
        checks.failure_text("LabCheckError", first).splitlines()[0])]
    assert not lost, ("messages whose first shown line lacks the received and the expected "
                      "value (shorten the label before them):\n" + "\n".join(lost))
