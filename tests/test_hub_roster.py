"""hub/setup.py's roster and the root autograde command's arguments: what `make hub` refuses,
said one line per bad row, before it changes anything (no root needed)."""
from pathlib import Path

import pytest

from hub import setup
from hub.setup import SetupError, read_roster

REPO_ROOT = Path(__file__).resolve().parent.parent
GROUPS = ["bptnone-students", "bptnone-instructors"]  # groups no account is in


def roster(tmp_path, text):
    path = tmp_path / "roster.csv"
    path.write_text(text)
    return path


def test_the_example_roster_is_read_as_students_and_instructors():
    people = read_roster(REPO_ROOT / "hub" / "roster.example.csv", GROUPS)
    assert [(p["id"], p["role"]) for p in people] == [
        ("ada", "student"), ("alan", "student"), ("grace", "instructor")]
    assert people[0]["email"] == "ada@example.org"


def test_every_bad_row_gets_one_line_naming_its_line_and_nothing_is_created(tmp_path):
    path = roster(tmp_path, "id,first_name,last_name,email,role\n"
                            "bptok1,A,B,a@x.org,student\n"
                            "Bob Smith,B,S,b@x.org,student\n"
                            "bptok2,C,D,c@x.org,teacher\n"
                            "bptok1,A,B,a@x.org,student\n"
                            "root,R,R,r@x.org,instructor\n")
    with pytest.raises(SetupError) as refused:
        read_roster(path, GROUPS)
    lines = str(refused.value).splitlines()[1:]
    assert [line.split(":")[0] for line in lines] == [f"{path} line {n}" for n in (3, 4, 5, 6)]
    assert "'Bob Smith' is not an account name" in lines[0]
    assert "'teacher'" in lines[1] and "neither student nor instructor" in lines[1]
    assert "listed twice" in lines[2]
    assert "an account root exists on this machine" in lines[3]


def test_a_roster_without_its_columns_says_which_are_missing(tmp_path):
    with pytest.raises(SetupError, match="no column id, role"):
        read_roster(roster(tmp_path, "name,email\nada,ada@example.org\n"), GROUPS)


def test_setup_refuses_to_run_without_root_and_says_so(monkeypatch, capsys):
    monkeypatch.setattr(setup.os, "geteuid", lambda: 1000)
    assert setup.main(["up", "--roster", "nowhere.csv"]) == 2
    assert "must run as root" in capsys.readouterr().err
