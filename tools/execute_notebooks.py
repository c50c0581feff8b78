"""Execute notebooks in place (lessons are committed executed) and report each one's run time.

    python tools/execute_notebooks.py lessons/*.ipynb

Runs each notebook top to bottom in a fresh kernel from its own folder, then strips what
changes on every run (execution timestamps, widget model ids), so re-running an unchanged
lesson leaves `git diff` empty.
"""
import argparse
import os
import pathlib
import sys
import time

import nbformat
from nbclient import NotebookClient
from nbconvert.preprocessors import CoalesceStreamsPreprocessor


WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# What the Makefile exports for every kernel (one BLAS thread; NumPy's and OpenBLAS's AVX2 code,
# so that a lesson's numbers are the same on every x86-64 machine), for runs without make.
KERNEL_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                      "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR",
                      "OPENBLAS_CORETYPE": "Haswell"}


def strip_volatile(nb):
    """Drop what changes on every run of an unchanged notebook: execution timestamps,
    ipywidgets' random model ids (a widget's saved state is useless on a code host anyway; its
    plain-text fallback stays), and how a busy machine happened to split one print's text into
    several stream messages (consecutive stream outputs are joined)."""
    nb.metadata.pop("widgets", None)
    CoalesceStreamsPreprocessor().preprocess(nb, {})
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                del data[WIDGET_VIEW]


def execute_in_place(path, timeout=300):
    path = pathlib.Path(path)
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    elapsed = time.perf_counter() - start
    strip_volatile(nb)
    nbformat.write(nb, path)
    return elapsed


def main(argv=None):
    # Small models: one BLAS thread is faster than several fighting for a busy machine's cores.
    for name, value in KERNEL_ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+")
    parser.add_argument("--timeout", type=int, default=300, help="seconds per cell")
    args = parser.parse_args(argv)
    for nb in args.notebooks:
        print(f"{nb}: executed in {execute_in_place(nb, args.timeout):.1f} s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
