"""The library installs without the course: `make wheel` builds the library alone, and a released
lab runs wherever that wheel is installed.

The wheel is built by `make wheel` (pip, setuptools) into a temporary folder and installed with
pip into a fresh virtual environment that has nothing of the repository: no lib/ on its path,
no editable install. The environment borrows the course environment's third-party packages
(NumPy, ipykernel, ...) through a .pth line naming their site-packages folder; a folder named in
a .pth file is only appended to sys.path, its own .pth files are not read, so the course's
editable-install hook (which puts lib/ on the path) does not run there. The released lab 01 then
runs in a kernel of that environment, up to its first graded check.
"""
import json
import re
import subprocess
import sys
import sysconfig
import zipfile
from importlib.metadata import version
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

REPO_ROOT = Path(__file__).resolve().parent.parent
LIBRARY = REPO_ROOT / "lib" / "backprop"
RELEASED_LAB = REPO_ROOT / "labs" / "lab01_forward_pass" / "lab01_forward_pass.ipynb"
SOLUTION = REPO_ROOT / "solutions" / "lab01_forward_pass" / "lab01_forward_pass.ipynb"
KERNEL_NAME = "backprop-wheel"
CELL_TIMEOUT = 120  # seconds; each cell used here runs in well under one


def _version():
    """pyproject.toml's version, as the course environment's (editable) install records it."""
    return version("backprop-lab")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    dist = tmp_path_factory.mktemp("dist")
    # With this test's environment, taken as installed (-o: never reinstalled from here).
    built = subprocess.run(["make", "--no-print-directory", f"VENV={sys.prefix}",
                            "-o", f"{sys.prefix}/.installed", "wheel", f"DIST={dist}"],
                           cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, f"`make wheel` failed:\n{built.stdout}\n{built.stderr}"
    wheels = sorted(dist.glob("*.whl"))
    assert [w.name for w in wheels] == [f"backprop_lab-{_version()}-py3-none-any.whl"], wheels
    return wheels[0]


@pytest.fixture(scope="module")
def wheel_venv(wheel, tmp_path_factory):
    """A fresh virtual environment with the wheel installed; returns its Python."""
    venv = tmp_path_factory.mktemp("wheel-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    python = venv / "bin" / "python"
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                    "--no-deps", "--no-index", str(wheel)], check=True, timeout=120)
    site_packages = Path(subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True, timeout=60).stdout.strip())
    # The course environment's third-party packages, after the wheel's own folder on sys.path.
    (site_packages / "course-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python


def test_wheel_holds_the_backprop_package_and_nothing_else(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    dist_info = f"backprop_lab-{_version()}.dist-info/"
    outside = [n for n in names if not n.startswith(("backprop/", dist_info))]
    assert outside == [], f"files of the wheel outside the package: {outside}"
    packaged = {n for n in names if n.startswith("backprop/")}
    library = {f"backprop/{p.relative_to(LIBRARY).as_posix()}" for p in LIBRARY.rglob("*.py")
               if "__pycache__" not in p.parts}
    assert packaged == library, (f"only in the wheel: {sorted(packaged - library)}; "
                                 f"missing from it: {sorted(library - packaged)}")
    with zipfile.ZipFile(wheel) as archive:
        leaked = [n for n in packaged
                  if re.search(r"BEGIN (SOLUTION|HIDDEN TESTS)", archive.read(n).decode())]
    assert leaked == [], f"solution or hidden-test markers in {leaked}"


def test_wheel_imports_outside_the_repository(wheel_venv, tmp_path):
    found = subprocess.run(
        [str(wheel_venv), "-c",
         "import backprop, importlib.metadata as m; print(backprop.__file__); "
         "print(m.distribution('backprop-lab').read_text('WHEEL') is not None); "
         "from backprop import environment; environment.check()"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr
    location, *rest = found.stdout.splitlines()
    assert Path(location).is_relative_to(wheel_venv.parent.parent), location
    assert not Path(location).is_relative_to(REPO_ROOT), location
    assert rest[0] == "True", "backprop-lab's metadata is not the wheel's"
    assert [line for line in rest[1:] if not line.startswith("ok: ")] == [], found.stdout


def _kernel_manager(python, kernels_dir):
    """A kernel running `python` (the wheel's environment), from a kernel spec of its own."""
    spec_dir = kernels_dir / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "backprop from the wheel", "language": "python"}))
    specs = KernelSpecManager(kernel_dirs=[str(kernels_dir)], ensure_native_kernel=False)
    return KernelManager(kernel_name=KERNEL_NAME, kernel_spec_manager=specs)


def _cell(notebook, grade_id):
    return next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def test_released_lab_runs_to_its_first_graded_check_on_the_wheel(wheel_venv, tmp_path):
    lab = nbformat.read(RELEASED_LAB, as_version=4)
    graded = [i for i, c in enumerate(lab.cells) if c.metadata.get("nbgrader", {}).get("grade")]
    first_check = lab.cells[graded[0]]
    answer_id = first_check.metadata["nbgrader"]["grade_id"].removeprefix("test_")
    solution_answer = _cell(nbformat.read(SOLUTION, as_version=4), answer_id)
    where = nbformat.v4.new_code_cell("import backprop; print(backprop.__file__)")

    client = NotebookClient(lab, km=_kernel_manager(wheel_venv, tmp_path / "kernels"),
                            timeout=CELL_TIMEOUT, resources={"metadata": {"path": str(tmp_path)}})
    with client.setup_kernel():
        for index in range(graded[0]):  # every cell before the first check, as released
            if lab.cells[index].cell_type == "code":
                client.execute_cell(lab.cells[index], index)
        client.execute_cell(where, 0)
        location = Path(where.outputs[0]["text"].strip())
        assert location.is_relative_to(wheel_venv.parent.parent), location

        # The blank answer: the check runs (from the wheel), reaches the learner's stub and
        # says to write it, in the course's own error.
        with pytest.raises(CellExecutionError) as blank:
            client.execute_cell(first_check, graded[0])
        assert blank.value.ename == "LabCheckError", blank.value
        assert "NotImplementedError" in blank.value.evalue, blank.value.evalue

        # The solution's answer: the same check passes and says so.
        client.execute_cell(solution_answer, graded[0] - 1)
        client.execute_cell(first_check, graded[0])
    printed = "".join(o.get("text", "") for o in first_check.outputs)
    assert re.search(rf"✓ {answer_id}: \d+ checks passed", printed), printed
