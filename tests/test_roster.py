from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.errors import InputErrors
from service.models import Person
from service.roster import import_roster
from tests.conftest import REPO
from tests.helpers import run_cli

HEADER = "email,name,role,department,supervisor_email,timezone,canvas_user_id\n"
SAMPLE = REPO / "content" / "sample_roster.csv"


def write(tmp_path: Path, body: str, header: str = HEADER, name: str = "roster.csv") -> Path:
    path = tmp_path / name
    path.write_text(header + body, encoding="utf-8")
    return path


def people(session) -> dict[str, Person]:
    return {p.email: p for p in session.scalars(select(Person))}


def test_sample_roster_builds_a_three_level_hierarchy(session) -> None:
    plan = import_roster(session, SAMPLE)
    session.commit()
    assert plan.counts() == {"created": 40, "updated": 0, "unchanged": 0, "deactivated": 0}
    stored = people(session)
    head = [p for p in stored.values() if p.supervisor_id is None]
    assert len(head) == 1
    depth = max(_depth(p) for p in stored.values())
    assert depth == 2  # head of school -> division heads -> staff
    assert {p.role for p in stored.values()} >= {"teacher", "staff", "coach", "administrator"}
    assert len({p.timezone for p in stored.values()}) >= 3
    assert sum(p.canvas_user_id is None for p in stored.values()) >= 3
    assert stored["rafael.dominguez@example.org"].name == "Rafael Domínguez"


def _depth(person: Person) -> int:
    return 0 if person.supervisor is None else 1 + _depth(person.supervisor)


def test_reimport_is_unchanged_and_updates_are_counted(session, tmp_path) -> None:
    import_roster(session, SAMPLE)
    session.commit()
    assert import_roster(session, SAMPLE).counts()["unchanged"] == 40
    text = SAMPLE.read_text(encoding="utf-8").replace("Sam Whitfield", "Samuel Whitfield")
    edited = write(tmp_path, text.split("\n", 1)[1])
    plan = import_roster(session, edited)
    session.commit()
    assert plan.updated == ["sam.whitfield@example.org"]
    assert people(session)["sam.whitfield@example.org"].name == "Samuel Whitfield"


def test_people_missing_from_a_full_import_are_deactivated_not_deleted(session, tmp_path) -> None:
    first = write(
        tmp_path,
        "boss@x.org,Boss,administrator,,,,\n"
        "a@x.org,Ann,teacher,,boss@x.org,,\n"
        "b@x.org,Bob,teacher,,boss@x.org,,\n",
    )
    import_roster(session, first)
    session.commit()
    second = write(tmp_path, "boss@x.org,Boss,administrator,,,,\na@x.org,Ann,teacher,,boss@x.org,,\n", name="r2.csv")
    plan = import_roster(session, second)
    session.commit()
    assert plan.deactivated == ["b@x.org"]
    bob = people(session)["b@x.org"]
    assert bob.active is False and bob.deactivated_at is not None
    assert session.scalar(select(func.count()).select_from(Person)) == 3
    # coming back reactivates the same row (history stays attached)
    plan = import_roster(session, first)
    session.commit()
    assert plan.updated == ["b@x.org"] and people(session)["b@x.org"].active


def test_partial_import_keeps_others_and_may_use_stored_supervisors(session, tmp_path) -> None:
    import_roster(session, write(tmp_path, "boss@x.org,Boss,administrator,,,,\n"))
    session.commit()
    plan = import_roster(session, write(tmp_path, "new@x.org,Nia,teacher,,BOSS@x.org,,\n", name="r2.csv"), partial=True)
    session.commit()
    assert plan.counts() == {"created": 1, "updated": 0, "unchanged": 0, "deactivated": 0}
    stored = people(session)
    assert stored["new@x.org"].supervisor_id == stored["boss@x.org"].id
    assert stored["boss@x.org"].active


def test_bom_accents_and_case_insensitive_emails(session, tmp_path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(
        ("\ufeff" + HEADER + "Zoë.Müller@Example.ORG,Zoë Müller,Teacher,Lower,,Europe/Berlin,77\n").encode("utf-8")
    )
    import_roster(session, path)
    session.commit()
    person = people(session)["zoë.müller@example.org"]
    assert (person.name, person.role, person.timezone, person.canvas_user_id) == (
        "Zoë Müller", "teacher", "Europe/Berlin", 77,
    )


def test_optional_columns_may_be_left_out(session, tmp_path) -> None:
    path = write(tmp_path, "a@x.org,Ann,staff\n", header="email,name,role\n")
    assert import_roster(session, path).created == ["a@x.org"]


def test_dry_run_writes_nothing(session) -> None:
    plan = import_roster(session, SAMPLE, dry_run=True)
    session.commit()
    assert len(plan.created) == 40
    assert people(session) == {}


BAD_ROWS = (
    "boss@x.org,Boss,administrator,,,,\n"            # line 2: fine
    "not-an-email,Ann,teacher,,boss@x.org,,\n"      # line 3: bad email
    "BOSS@x.org,Boss Two,teacher,,,,\n"             # line 4: duplicate (case-insensitive)
    "c@x.org,,teacher,,boss@x.org,,\n"              # line 5: empty name
    "d@x.org,Dee,teacher,,boss@x.org,Mars/Base,\n"  # line 6: unknown timezone
    "e@x.org,Eve,teacher,,ghost@x.org,,\n"          # line 7: unknown supervisor
    "f@x.org,Fay,teacher,,g@x.org,,12a\n"           # line 8: non-integer canvas id
    "g@x.org,Gus,teacher,,f@x.org,,\n"              # line 9: (f<->g cycle)
    "h@x.org,Hal,teacher,,h@x.org,,\n"              # line 10: own supervisor
)


def test_every_row_problem_is_reported_at_once_with_its_line(session, tmp_path) -> None:
    with pytest.raises(InputErrors) as info:
        import_roster(session, write(tmp_path, BAD_ROWS))
    problems = info.value.problems
    assert "line 3: email 'not-an-email' is not a valid address" in problems
    assert "line 4: duplicate email 'boss@x.org' (first on line 2)" in problems
    assert "line 5: name is empty" in problems
    assert "line 6: unknown timezone 'Mars/Base'" in problems
    assert "line 7: unknown supervisor 'ghost@x.org' (not in this file or stored)" in problems
    assert "line 8: canvas_user_id '12a' is not a whole number" in problems
    assert "line 8: supervisor cycle: f@x.org -> g@x.org -> f@x.org" in problems
    assert "line 10: h@x.org is their own supervisor" in problems
    assert len(problems) == 8
    assert [int(p.split()[1].rstrip(":")) for p in problems] == sorted(
        int(p.split()[1].rstrip(":")) for p in problems
    )


FIVE_KINDS = "".join(BAD_ROWS.splitlines(keepends=True)[:6])  # lines 2-7: five kinds of error


def test_supervisor_problems_are_reported_with_lines(session, tmp_path) -> None:
    body = (
        "boss@x.org,Boss,administrator,,,,\n"
        "e@x.org,Eve,teacher,,ghost@x.org,,\n"
        "f@x.org,Fay,teacher,,g@x.org,,\n"
        "g@x.org,Gus,teacher,,f@x.org,,\n"
        "h@x.org,Hal,teacher,,h@x.org,,\n"
    )
    with pytest.raises(InputErrors) as info:
        import_roster(session, write(tmp_path, body))
    assert info.value.problems == [
        "line 3: unknown supervisor 'ghost@x.org' (not in this file or stored)",
        "line 4: supervisor cycle: f@x.org -> g@x.org -> f@x.org",
        "line 6: h@x.org is their own supervisor",
    ]


def test_missing_and_unknown_columns_name_line_one(session, tmp_path) -> None:
    with pytest.raises(InputErrors) as info:
        import_roster(session, write(tmp_path, "a@x.org,teacher\n", header="email,rol\n"))
    assert info.value.problems == [
        "line 1: missing required column(s): name, role",
        "line 1: unknown column(s): rol",
    ]


def test_undecodable_file_is_a_clear_error(session, tmp_path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEADER + "a@x.org,Zoë,teacher,,,,\n").encode("latin-1"))
    with pytest.raises(InputErrors) as info:
        import_roster(session, path)
    assert "not UTF-8" in info.value.problems[0]


def test_cli_five_kinds_of_error_leave_the_database_unchanged(cli_env, capsys, session) -> None:
    code, _, _ = run_cli(capsys, "roster", "import", str(SAMPLE))
    assert code == 0
    before = [(p.email, p.name, p.active, p.supervisor_id) for p in session.scalars(select(Person).order_by(Person.id))]
    bad = write(cli_env, FIVE_KINDS)
    code, out, err = run_cli(capsys, "roster", "import", str(bad))
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip().startswith(str(bad))]
    assert len(lines) == 5
    for number in (3, 4, 5, 6, 7):
        assert any(f": line {number}: " in line for line in lines)
    assert "nothing was written" in err
    session.expire_all()
    after = [(p.email, p.name, p.active, p.supervisor_id) for p in session.scalars(select(Person).order_by(Person.id))]
    assert after == before


def test_cli_dry_run_prints_the_plan(cli_env, capsys, session) -> None:
    code, out, _ = run_cli(capsys, "roster", "import", "--dry-run", str(SAMPLE))
    assert code == 0
    assert "would import" in out and "created 40" in out
    assert people(session) == {}
