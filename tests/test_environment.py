"""backprop.environment.check: stable lines, no paths, named failures with the fix."""
from importlib.metadata import PackageNotFoundError
import sys

import pytest

from backprop import environment


def lines_of(**options):
    lines = []
    environment.check(print_fn=lines.append, **options)
    return lines


def test_check_prints_only_ok_lines_and_returns_nothing(capsys):
    assert environment.check() is None
    printed = capsys.readouterr().out.splitlines()
    assert printed == lines_of()
    assert len(printed) == 3 and all(line.startswith("ok: ") for line in printed)


def test_check_output_is_identical_on_a_second_call():
    assert lines_of() == lines_of()


def test_check_names_every_required_package():
    line = lines_of()[1]
    for name in ("numpy", "scipy", "matplotlib", "scikit-learn", "tqdm"):
        assert name in line


def test_versions_are_printed_only_on_request():
    plain = lines_of()
    detailed = lines_of(versions=True)
    assert detailed[:len(plain)] == plain
    assert any(line.split() == ["numpy", __import__("numpy").__version__]
               for line in detailed[len(plain):])
    assert not any("numpy " in line and line.strip()[-1].isdigit() for line in plain)


def test_no_line_contains_a_path():
    for line in lines_of(versions=True):
        assert "/" not in line and "\\" not in line, line
        assert sys.prefix not in line


def test_wrong_versions_names_package_installed_and_needed():
    problems = environment.wrong_versions(installed_version=lambda name: "0.0.1")
    assert any(p.startswith("numpy: 0.0.1, but the course needs") and ">=2.0" in p
               for p in problems)


def test_wrong_versions_reports_a_missing_package():
    def missing(name):
        raise PackageNotFoundError(name)
    problems = environment.wrong_versions(installed_version=missing)
    assert any(p.startswith("tqdm: not installed") for p in problems)


def test_wrong_versions_is_empty_in_the_course_environment():
    assert environment.wrong_versions() == []


def test_check_raises_with_the_fix_when_versions_are_wrong(monkeypatch):
    monkeypatch.setattr(environment, "wrong_versions", lambda: ["numpy: 1.0, but the course "
                                                                 "needs >=2.0,<3"])
    with pytest.raises(environment.EnvironmentProblem, match="(?s)numpy: 1.0.*make lab"):
        environment.check(print_fn=lambda line: None)


def test_missing_library_distribution_is_named():
    with pytest.raises(environment.EnvironmentProblem, match="not-a-course.*not installed"):
        environment.wrong_versions("not-a-course")


def test_a_dataset_that_fails_to_load_is_reported(monkeypatch):
    from backprop import data

    def broken():
        raise OSError("file missing")
    monkeypatch.setattr(data, "load_diabetes", broken)
    with pytest.raises(environment.EnvironmentProblem, match="dataset failed.*file missing"):
        environment.check(print_fn=lambda line: None)
