"""Which submissions of a lab are most alike: evidence for a human to read, never a verdict.

    python tools/similarity.py lab01_forward_pass      # make similarity LAB=lab01_forward_pass

Takes the code each student wrote in submitted/<student>/<lab>/*.ipynb (the answer cells, and
code cells of their own; not the setup and test cells the lab gave them), writes it to
similarity/<lab>/<student>/<notebook>.py, and runs copydetect (winnowing over the token stream,
so renamed variables and changed comments do not hide a copy) over every pair, with the
released lab's code as boilerplate (the signatures, docstrings and stubs everyone received do
not count). Writes copydetect's HTML report, similarity/<lab>.html, and prints the most similar
pairs. Short, standard answers (`np.maximum(x, 0)`) are alike in honest work too: read the
code before concluding anything.
"""
import argparse
import os
import shutil
import sys
from pathlib import Path

import nbformat

REPO_ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("MPLBACKEND", "Agg")  # copydetect draws its report's plots


def _grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def released_code(release_dir):
    """``(answer grade ids, every code cell's source)`` of the released lab."""
    answers, code = set(), []
    for path in sorted(Path(release_dir).glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            code.append(cell.source)
            if cell.metadata.get("nbgrader", {}).get("solution"):
                answers.add(_grade_id(cell))
    return answers, code


def student_code(notebook, answers, released):
    """The code a student wrote: answer cells, and code cells that are not the lab's."""
    kept = []
    for cell in nbformat.read(notebook, as_version=4).cells:
        if cell.cell_type != "code" or not cell.source.strip():
            continue
        graded = cell.metadata.get("nbgrader", {})
        if _grade_id(cell) in answers or (not graded.get("locked") and not graded.get("grade")
                                          and cell.source not in released):
            kept.append(cell.source)
    return "\n\n".join(kept) + "\n"


def extract(root, lab, workdir):
    """Write the students' code and the release's code under `workdir`; returns the students."""
    answers, released = released_code(root / "labs" / lab)
    if workdir.exists():
        shutil.rmtree(workdir)
    (workdir / "boilerplate").mkdir(parents=True)
    (workdir / "boilerplate" / f"{lab}.py").write_text("\n\n".join(released) + "\n")
    students = []
    for notebook in sorted((root / "submitted").glob(f"*/{lab}/*.ipynb")):
        student = notebook.parts[-3]
        target = workdir / "submissions" / student / (notebook.stem + ".py")
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            target.write_text(student_code(notebook, answers, set(released)))
        except Exception as error:  # an unreadable notebook is reported, not compared
            print(f"skipped {notebook}: not a readable notebook ({error})", file=sys.stderr)
            target.unlink(missing_ok=True)
            continue
        students.append(student)
    return sorted(set(students))


def ranked_pairs(detector):
    """``[(similarity, student, student)]``, most similar first: the share of one student's
    code (after the boilerplate) found in the other's, the larger of the two directions."""
    best = {}
    matrix = detector.similarity_matrix
    for i, first in enumerate(detector.test_files):
        for j, second in enumerate(detector.ref_files):
            a, b = Path(first).parent.name, Path(second).parent.name
            if a == b or matrix[i, j, 0] < 0:
                continue
            pair = tuple(sorted((a, b)))
            best[pair] = max(best.get(pair, 0.0), *matrix[i, j])
    return sorted(((score, *pair) for pair, score in best.items()), key=lambda p: (-p[0], p[1:]))


def report(root, lab, out=None, threshold=0.33):
    """Run copydetect over `lab`'s submissions; returns ``(ranked pairs, report path)``."""
    from copydetect import CopyDetector

    root = Path(root)
    workdir = root / "similarity" / lab
    extract(root, lab, workdir)
    out = Path(out or root / "similarity" / f"{lab}.html")
    detector = CopyDetector(test_dirs=[str(workdir / "submissions")],
                            ref_dirs=[str(workdir / "submissions")],
                            boilerplate_dirs=[str(workdir / "boilerplate")], extensions=["py"],
                            ignore_leaf=True, display_t=threshold, autoopen=False, silent=True,
                            out_file=str(out))
    detector.run()
    detector.generate_html_report()
    return ranked_pairs(detector), out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("lab")
    parser.add_argument("--root", default=str(REPO_ROOT))
    parser.add_argument("--top", type=int, default=10, help="pairs to print (default 10)")
    parser.add_argument("--threshold", type=float, default=0.33,
                        help="pairs above this similarity get their code in the report")
    args = parser.parse_args(argv)
    pairs, out = report(args.root, args.lab, threshold=args.threshold)
    print(f"Most similar pairs of {args.lab} (share of one student's own code found in the "
          "other's; evidence to read, not a verdict):")
    for score, first, second in pairs[:args.top]:
        print(f"  {score:5.0%}  {first}  {second}")
    print(f"Report with the matching code highlighted: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
