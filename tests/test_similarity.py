"""`make similarity` (tools/similarity.py, copydetect) ranks a planted copy first.

Ten submissions of lab 01: eight students who each wrote lab 01's six functions in their own
mix of four common styles (so honest pairs share some answers, as real classes do), one who
handed in the release as given, and one who copied the first student's work with every
variable renamed and the comments changed.
"""
import importlib.util
import re
import shutil

import nbformat
import pytest

from notebooks import LABS_DIR, REPO_ROOT, source_path
from submissions import Lab

spec = importlib.util.spec_from_file_location("similarity", REPO_ROOT / "tools" / "similarity.py")
similarity = importlib.util.module_from_spec(spec)
spec.loader.exec_module(similarity)

LAB = "lab01_forward_pass"
NOTEBOOK = f"{LAB}/{LAB}.ipynb"

STYLES = {
    "sigmoid": [
        "def sigmoid(x):\n    x = np.asarray(x)\n    e = np.exp(-np.abs(x))  # never overflows\n"
        "    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))\n",
        "def sigmoid(x):\n    x = np.asarray(x, dtype=float)\n    out = np.empty_like(x)\n"
        "    pos = x >= 0\n    out[pos] = 1 / (1 + np.exp(-x[pos]))\n    ex = np.exp(x[~pos])\n"
        "    out[~pos] = ex / (1 + ex)\n    return out\n",
        "def sigmoid(x):\n    x = np.clip(np.asarray(x, dtype=float), -500, 500)\n"
        "    return 1.0 / (1.0 + np.exp(-x))\n",
        "def sigmoid(x):\n    # sigmoid from tanh: 0.5 (1 + tanh(x / 2))\n"
        "    return 0.5 * (1 + tanh(np.asarray(x, dtype=float) / 2))\n",
    ],
    "tanh": [
        "def tanh(x):\n    x = np.asarray(x)\n    e = np.exp(-2 * np.abs(x))\n"
        "    return np.sign(x) * (1 - e) / (1 + e)\n",
        "def tanh(x):\n    return 2 * sigmoid(2 * np.asarray(x, dtype=float)) - 1\n",
        "def tanh(x):\n    x = np.clip(np.asarray(x, dtype=float), -50, 50)\n"
        "    a, b = np.exp(x), np.exp(-x)\n    return (a - b) / (a + b)\n",
        "def tanh(x):\n    x = np.asarray(x, dtype=float)\n    result = np.zeros_like(x)\n"
        "    for idx in np.ndindex(x.shape):\n        e = np.exp(-2 * abs(x[idx]))\n"
        "        result[idx] = np.copysign((1 - e) / (1 + e), x[idx])\n    return result\n",
    ],
    "relu": [
        "def relu(x):\n    return np.maximum(x, 0)\n",
        "def relu(x):\n    x = np.asarray(x, dtype=float)\n    return np.where(x > 0, x, 0.0)\n",
        "def relu(x):\n    x = np.array(x, dtype=float)\n    x[x < 0] = 0\n    return x\n",
        "def relu(x):\n    x = np.asarray(x)\n    return x * (x > 0)\n",
    ],
    "dense_forward": [
        "def dense_forward(x, W, b):\n    return x @ W + b\n",
        "def dense_forward(x, W, b):\n    return np.dot(x, W) + b[None, :]\n",
        "def dense_forward(x, W, b):\n    out = np.matmul(x, W)\n    out += b\n    return out\n",
        "def dense_forward(x, W, b):\n    return np.einsum('nd,dm->nm', x, W) + b\n",
    ],
    "mlp_forward": [
        "def mlp_forward(x, params):\n"
        "    hidden = relu(dense_forward(x, params['W1'], params['b1']))\n"
        "    return dense_forward(hidden, params['W2'], params['b2'])\n",
        "def mlp_forward(x, params):\n    h = dense_forward(x, params['W1'], params['b1'])\n"
        "    h = relu(h)\n    logits = dense_forward(h, params['W2'], params['b2'])\n"
        "    return logits\n",
        "def mlp_forward(x, params):\n"
        "    W1, b1, W2, b2 = (params[k] for k in ('W1', 'b1', 'W2', 'b2'))\n"
        "    return dense_forward(relu(dense_forward(x, W1, b1)), W2, b2)\n",
        "def mlp_forward(x, params):\n    out = x\n"
        "    for i, (w, b) in enumerate([('W1', 'b1'), ('W2', 'b2')]):\n"
        "        out = dense_forward(out, params[w], params[b])\n        if i == 0:\n"
        "            out = relu(out)\n    return out\n",
    ],
    "predict": [
        "def predict(x, params):\n    return np.argmax(mlp_forward(x, params), axis=1)\n",
        "def predict(x, params):\n    logits = mlp_forward(x, params)\n"
        "    return logits.argmax(axis=-1)\n",
        "def predict(x, params):\n    scores = mlp_forward(x, params)\n"
        "    labels = np.zeros(len(scores), dtype=int)\n    for i, row in enumerate(scores):\n"
        "        labels[i] = int(np.argmax(row))\n    return labels\n",
        "def predict(x, params):\n    return mlp_forward(x, params).argmax(1).astype(int)\n",
    ],
}
# Student s writes function f in style MIX[s][f]: every honest pair shares at most 2 of 6.
MIX = ["000000", "111111", "222222", "333333", "012301", "123012", "230123", "301230"]
RENAMES = {r"\bx\b": "inp", r"\bW\b": "weights", r"\bb\b": "bias", r"\be\b": "expo",
           r"\bhidden\b": "hid_layer", r"\bparams\b": "p"}


def _copied(code):
    """The copier's version: every variable renamed, comments changed."""
    code = re.sub(r"#.*", "# my own approach, worked out myself", code)
    for pattern, new in RENAMES.items():
        code = re.sub(pattern, new, code)
    return code


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    (root / "labs" / LAB).mkdir(parents=True)
    shutil.copy(LABS_DIR / NOTEBOOK, root / "labs" / NOTEBOOK)
    lab = Lab(nbformat.read(source_path(NOTEBOOK), as_version=4),
              nbformat.read(LABS_DIR / NOTEBOOK, as_version=4))
    functions = list(STYLES)

    def hand_in(student, notebook):
        (root / "submitted" / student / LAB).mkdir(parents=True)
        nbformat.write(notebook, root / "submitted" / student / NOTEBOOK)

    sources = {}
    for number, mix in enumerate(MIX):
        sources[number] = {f: STYLES[f][int(style)] for f, style in zip(functions, mix)}
        hand_in(f"student{number:02d}", lab.answered(build_and_train=None, **sources[number]))
    hand_in("blank", lab.answered(**{answer: None for answer in lab.answer_ids}))
    copy = {f: _copied(code) for f, code in sources[4].items()}
    hand_in("copier", lab.answered(build_and_train=None, **copy))
    return root


def test_the_planted_copy_is_ranked_first(course):
    pairs, report = similarity.report(course, LAB)
    assert pairs[0][1:] == ("copier", "student04"), pairs[:3]
    assert pairs[0][0] > 0.9
    assert pairs[0][0] - pairs[1][0] > 0.2, pairs[:3]  # well clear of honest pairs
    assert report.is_file() and "copier" in report.read_text()


def test_every_pair_of_the_ten_is_compared(course):
    pairs, _ = similarity.report(course, LAB)
    assert len(pairs) == 10 * 9 // 2


def test_the_released_code_does_not_count(course):
    """The blank submission is the release itself: nothing of it is the student's code."""
    pairs, _ = similarity.report(course, LAB)
    assert all(score == 0 for score, *students in pairs if "blank" in students)
    extracted = (course / "similarity" / LAB / "submissions" / "blank" / f"{LAB}.py")
    assert "NotImplementedError" in extracted.read_text()  # the stub: boilerplate, not code


def test_only_what_the_student_wrote_is_compared(course):
    extracted = (course / "similarity" / LAB / "submissions" / "copier" / f"{LAB}.py")
    similarity.report(course, LAB)
    code = extracted.read_text()
    assert "def sigmoid(inp)" in code
    assert "fresh(" not in code and "import numpy as np" not in code  # tests and setup left out


def test_the_command_prints_the_ranking(course, capsys):
    assert similarity.main([LAB, "--root", str(course), "--top", "3"]) == 0
    printed = capsys.readouterr().out
    assert "copier  student04" in printed and "not a verdict" in printed


def test_an_unreadable_notebook_is_named_and_the_rest_compared(course, tmp_path, capsys):
    root = tmp_path / "course"
    shutil.copytree(course, root, ignore=shutil.ignore_patterns("similarity"))
    broken = root / "submitted" / "broken" / NOTEBOOK
    broken.parent.mkdir(parents=True)
    broken.write_text('{"cells": [')  # a notebook cut off mid-upload
    pairs, _ = similarity.report(root, LAB)
    assert "skipped" in capsys.readouterr().err and "broken" not in {s for p in pairs
                                                                     for s in p[1:]}
    assert pairs[0][1:] == ("copier", "student04")
