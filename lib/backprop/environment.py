"""One call that says whether this kernel can run the course: ``backprop.environment.check()``.

It prints one stable line per check (the same on every machine that passes, so a lesson can
store its output) and raises ``EnvironmentProblem`` with the fix when a check fails. Versions,
which differ between machines, are printed only with ``versions=True``; no path is ever printed.
"""
import platform
from importlib.metadata import PackageNotFoundError, requires, version

FIX = ("From the repository root run `make lab` (or `pip install -r requirements.txt`), then "
       "restart the kernel and pick the one of that environment.")
DISTRIBUTION = "backprop-lab"


class EnvironmentProblem(RuntimeError):
    """The kernel cannot run the course; the message says what is wrong and how to fix it."""


def wrong_versions(distribution=DISTRIBUTION, installed_version=version):
    """List "name: installed, but the course needs spec" for each unmet required dependency.

    Optional extras (requirements with a marker, such as PyTorch for the benchmarks) are skipped.
    ``installed_version(name)`` returns a version string or raises ``PackageNotFoundError``.
    """
    from packaging.requirements import Requirement  # installed with matplotlib and ipykernel

    try:
        needed = requires(distribution) or []
    except PackageNotFoundError as err:
        raise EnvironmentProblem(f"The course library `{distribution}` is not installed in this "
                                 f"kernel. {FIX}") from err
    problems = []
    for requirement in map(Requirement, needed):
        if requirement.marker is not None:
            continue
        try:
            installed = installed_version(requirement.name)
        except PackageNotFoundError:
            problems.append(f"{requirement.name}: not installed, but the course needs "
                            f"{requirement.specifier}")
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            problems.append(f"{requirement.name}: {installed}, but the course needs "
                            f"{requirement.specifier}")
    return problems


def required_packages(distribution=DISTRIBUTION):
    """Names of the packages the course library requires (optional extras left out)."""
    from packaging.requirements import Requirement

    return [r.name for r in map(Requirement, requires(distribution) or []) if r.marker is None]


def _datasets_load():
    from . import data

    try:
        data.load_digits()
        data.load_breast_cancer()
        data.load_diabetes()
    except Exception as err:  # any failure here means a broken scikit-learn install
        raise EnvironmentProblem(f"A bundled dataset failed to load ({err!r}). The datasets ship "
                                 f"with scikit-learn (no download). {FIX}") from err


def check(versions=False, print_fn=print):
    """Check the kernel and print one "ok" line per check; raise ``EnvironmentProblem`` if not.

    versions: also print the Python version and the version of each required package (these
    lines differ between machines). ``print_fn`` receives each line (``print`` by default).
    """
    problems = wrong_versions()
    if problems:
        raise EnvironmentProblem("Wrong versions in this kernel:\n  " + "\n  ".join(problems)
                                 + f"\n{FIX}")
    _datasets_load()
    lines = ["ok: backprop imports",
             f"ok: {', '.join(required_packages())} have the versions the course needs",
             "ok: the digits, breast-cancer and diabetes datasets load offline"]
    if versions:
        lines.append(f"Python {platform.python_version()}")
        for name in [DISTRIBUTION, *required_packages(), "ipywidgets", "ipykernel"]:
            try:
                lines.append(f"  {name:13s} {version(name)}")
            except PackageNotFoundError:
                lines.append(f"  {name:13s} not installed")
    for line in lines:
        print_fn(line)
