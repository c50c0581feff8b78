"""List the code in submitted notebooks that reaches outside an answer: the tampering that
nbgrader and the lab tests cannot stop (docs/instructors.md, "What grading cannot stop").

    python tools/audit_submissions.py lab01_forward_pass     # or '*' for every lab

Reads submitted/<student>/<lab>/*.ipynb and prints each suspicious line of the code that runs
when the notebook is graded and that the student wrote: answer cells and any cell they added
or changed. Locked cells (setup, tests) are skipped, since nbgrader puts them back as released.
A heuristic for a human to read, not a verdict: ordinary code can match, and tampering can be
disguised. Exit status 1 when anything was found.
"""
import argparse
import re
import sys
from pathlib import Path

import nbformat

REPO_ROOT = Path(__file__).resolve().parent.parent
SUSPICIOUS = {
    "changes how IPython runs cells (the tests may not run at all)":
        r"get_ipython|input_transformers|set_custom_exc|\bIPython\b|run_cell",
    "reaches into Python's machinery":
        r"sys\.modules|_getframe|\binspect\b|\bbuiltins\b|__import__|importlib|globals\(\)"
        r"|(?<![\w.])exec\(|(?<![\w.])eval\(|__code__|__globals__|settrace|setprofile|addaudithook|linecache"
        r"|f_globals|f_locals|_current_frames",
    "replaces a function of NumPy or of the course library":
        r"^\s*(np|numpy|checks|backprop)(\.\w+)+\s*=[^=]|setattr\(",
    "rebinds a name the setup cell gives (the tests do not use it, but why?)":
        r"^\s*(np|numpy|checks|math|plt|engine|Value)\s*=[^=]",
    "binds a name to a function of NumPy or of the library (an alias is not an answer)":
        r"^\s*\w+\s*=\s*(np|numpy|math|backprop|engine|functional)(\.\w+)+\s*(#.*)?$",
    "imports the course library (does it call a reference for what the lab asks?)":
        r"^\s*(from|import)\s+backprop\b",
    "touches files, processes or the network":
        r"\bopen\(|\bos\.(system|remove|unlink|_exit|kill|environ)|subprocess|shutil|pathlib"
        r"|socket|urllib|requests|sqlite3|os\.fork|ctypes",
}


def _code_cells(path):
    return [cell for cell in nbformat.read(path, as_version=4).cells if cell.cell_type == "code"]


def _grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def audit_notebook(submitted, release):
    """``[(cell number, line, reason)]`` for the suspicious lines of a submitted notebook."""
    released = _code_cells(release) if release.is_file() else []
    provided = {cell.source for cell in released}
    restored = {_grade_id(cell) for cell in released
                if cell.metadata.get("nbgrader", {}).get("locked")} - {None}
    findings, seen = [], set()
    for number, cell in enumerate(_code_cells(submitted), start=1):
        grade_id = _grade_id(cell)
        # Autograde puts back the first cell carrying a locked grade id; a copy of it runs
        # as the student wrote it (grading/cells.py), so only the first is skipped.
        first = grade_id in restored and grade_id not in seen
        seen.add(grade_id)
        if cell.source in provided or first:
            continue
        for line in cell.source.splitlines():
            findings += [(number, line.strip(), reason) for reason, pattern in SUSPICIOUS.items()
                         if re.search(pattern, line)]
    return findings


def audit(root, lab="*"):
    """``{(student, lab, notebook): findings}`` for every submission with findings."""
    root = Path(root)
    results = {}
    for path in sorted(root.glob(f"submitted/*/{lab}/*.ipynb")):
        student, lab_name = path.parts[-3], path.parts[-2]
        findings = audit_notebook(path, root / "labs" / lab_name / path.name)
        if findings:
            results[student, lab_name, path.name] = findings
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lab", nargs="?", default="*", help="lab folder name or glob")
    parser.add_argument("--root", default=REPO_ROOT, help="course folder (default: this repo)")
    args = parser.parse_args(argv)
    results = audit(args.root, args.lab)
    for (student, lab, notebook), findings in results.items():
        for number, line, reason in findings:
            print(f"{student}  {lab}/{notebook}  code cell {number}: {reason}\n    {line}")
    print(f"{len(results)} submission(s) to read by hand." if results else "Nothing found.")
    return 1 if results else 0


if __name__ == "__main__":
    sys.exit(main())
