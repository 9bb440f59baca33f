"""Directory loading: idempotent upsert; a bad file is refused whole, naming file, table, key."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from gateway.directory import load_directory_file, support_identity
from gateway.errors import DirectoryError
from gateway.models import Person, Team
from gateway.runtime.app import Gateway
from tests.conftest import DIRECTORY


def _count(gateway: Gateway, model: type) -> int:
    with gateway.db.reading() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def test_loading_twice_changes_nothing(gateway: Gateway) -> None:
    people, teams = _count(gateway, Person), _count(gateway, Team)
    with gateway.db.transaction() as session:
        load_directory_file(session, DIRECTORY)
    assert (_count(gateway, Person), _count(gateway, Team)) == (people, teams) == (4, 2)
    with gateway.db.reading() as session:
        anna = session.get(Person, "anna@acme.example")
        acme = session.get(Team, "acme")
        assert anna is not None and anna.role == "admin" and anna.language == "de"
        assert acme is not None and [a.tier for a in acme.addons] == ["enhanced"]
        assert support_identity(session).domains == ("support.example",)


def test_upsert_changes_a_person(gateway: Gateway, tmp_path: Path) -> None:
    update = tmp_path / "update.toml"
    update.write_text('[[people]]\nemail = "MAX@acme.example"\nteam = "acme"\nrole = "admin"\n'
                      'language = "nl"\n')
    with gateway.db.transaction() as session:
        load_directory_file(session, update)
    with gateway.db.reading() as session:
        max_ = session.get(Person, "max@acme.example")
        assert max_ is not None and (max_.role, max_.language) == ("admin", "nl")


@pytest.mark.parametrize(("content", "expected"), [
    ('[[people]]\nemail = "a@b.example"\nrole = "owner"\n', "table [people] entry 1, key 'role'"),
    ('[[people]]\nemail = "a@b.example"\nfavourite = 1\n',
     "table [people] entry 1, key 'favourite': unknown key"),
    ('[[people]]\nemail = "not-an-address"\n', "table [people] entry 1, key 'email'"),
    ('[[teams]]\nid = "t"\nname = "T"\n[[teams]]\nid = "u"\nname = "U"\nlanguage = "fr"\n',
     "table [teams] entry 2, key 'language'"),
    ('[[people]]\nemail = "a@b.example"\nteam = "ghost"\n', "unknown team 'ghost'"),
    ('[supprt]\nname = "x"\n', "table [(top level)], key 'supprt': unknown key"),
    ('[[teams]]\nid = "t"\nname = "T"\naddons = [{ product = "nope", tier = "enhanced" }]\n',
     "unknown product 'nope'"),
])
def test_bad_file_is_refused_whole(gateway: Gateway, tmp_path: Path, content: str,
                                   expected: str) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[agents]]\nemail = "new-agent@support.example"\n' + content)
    with pytest.raises(DirectoryError) as error, gateway.db.transaction() as session:
        load_directory_file(session, bad)
    assert str(bad) in str(error.value) and expected in str(error.value)
    with gateway.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Person).where(
            Person.email == "a@b.example")) == 0


def test_cli_reports_directory_errors_with_exit_status(gateway: Gateway, tmp_path: Path) -> None:
    from tests.conftest import run_gateway

    bad = tmp_path / "bad.toml"
    bad.write_text('[[people]]\nemail = "a@b.example"\nrole = "owner"\n')
    result = run_gateway(gateway.settings, "directory", "load", str(bad))
    assert result.returncode == 65
    assert result.stderr.decode().startswith(f"error: {bad}: table [people] entry 1, key 'role'")


def test_a_person_without_a_language_takes_the_teams(gateway: Gateway, tmp_path: Path) -> None:
    from tests.conftest import run_gateway

    people = tmp_path / "people.toml"
    people.write_text(
        '[[teams]]\nid = "initech"\nname = "Initech AG"\nlanguage = "de"\n\n'
        '[[people]]\nemail = "peter@initech.example"\nteam = "initech"\n\n'
        '[[people]]\nemail = "bill@initech.example"\nteam = "initech"\nlanguage = "it"\n\n'
        '[[people]]\nemail = "solo@nowhere.example"\n')
    result = run_gateway(gateway.settings, "directory", "load", str(people))
    assert result.returncode == 0, result.stderr.decode()
    with gateway.db.reading() as session:
        languages = {email: person.language for email in
                     ("peter@initech.example", "bill@initech.example", "solo@nowhere.example")
                     if (person := session.get(Person, email)) is not None}
    # None given: the team's; given: kept; no team either: English.
    assert languages == {"peter@initech.example": "de", "bill@initech.example": "it",
                         "solo@nowhere.example": "en"}
