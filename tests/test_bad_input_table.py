"""Hostile and sloppy input, table-driven, on SQLite and PostgreSQL: the exit code, one clear line,
no traceback, and nothing stored changed. (Issue [2 of 8].)"""

import json
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from service.models import Delivery, Person, PolicyVersion, Tip
from tests.conftest import REPO, LiveServer
from tests.helpers import run_cli

ADMIN_TOKEN = "t0ken-long-enough-for-a-dashboard"
HEADER = "email,name,role,department,supervisor_email,timezone,canvas_user_id\n"
GOOD = "boss@school.example,Boss,administrator,,,,\n"
POLICY_V1 = (REPO / "content" / "policies" / "social-media-v1.txt").read_text(encoding="utf-8")


def deep_yaml(depth: int) -> str:
    return "policy: {slug: p, title: P}\ntips: " + "[" * depth + "]" * depth + "\n"


# name, file to write (or None), argv ({file} is its path), exit code, what the one line says
CASES = [
    ("line break in a name", HEADER + GOOD + '"x@school.example","Evil\r\nBcc: v@evil.example",teacher,,,,\n',
     ["roster", "import", "{file}"], 1, "name holds a control character"),
    ("NUL in a department", HEADER + GOOD + "x@school.example,X,teacher,Dept\x00,,,\n",
     ["roster", "import", "{file}"], 1, "control character"),
    ("321-character email", HEADER + GOOD + "x" * 310 + "@school.example,X,teacher,,,,\n",
     ["roster", "import", "{file}"], 1, "longer than 254 characters"),
    ("40-digit canvas id", HEADER + GOOD + "x@school.example,X,teacher,,,," + "9" * 40 + "\n",
     ["roster", "import", "{file}"], 1, "canvas_user_id"),
    ("20 MB field", HEADER + GOOD + "x@school.example," + "N" * 20_000_000 + ",teacher,,,,\n",
     ["roster", "import", "{file}"], 1, "cannot be read as CSV"),
    ("name of 201 characters", HEADER + GOOD + "x@school.example," + "N" * 201 + ",teacher,,,,\n",
     ["roster", "import", "{file}"], 1, "name is longer than 200 characters"),
    ("YAML nested 2,000 deep", deep_yaml(2000), ["content", "import", "{file}"], 1, "nested too deeply"),
    ("control character in a tip title",
     "policy: {slug: p, title: P}\ntips:\n  - {id: a, section: S, title: \"T\\u0007\", body: b}\n",
     ["content", "import", "{file}"], 1, "title holds a control character"),
    ("NUL in a policy text", POLICY_V1 + "\nA rule\x00 with a NUL.\n",
     ["policy", "import", "{file}", "--policy", "social-media", "--version", "9"], 1, "control character"),
    ("slug too long", POLICY_V1, ["policy", "import", "{file}", "--policy", "p" * 101, "--version", "1",
                                  "--title", "T"], 1, "--policy"),
    ("due days out of range", POLICY_V1,
     ["policy", "import", "{file}", "--policy", "social-media", "--version", "9", "--due-days", "999999999"],
     2, "3650"),
    ("--as-of year 1", None, ["escalate", "--as-of", "0001-01-01"], 1, "between 2000 and 2100"),
    ("--csv into a missing folder", None, ["report", "engagement", "--csv", "/nonexistent/dir/out.csv"], 1,
     "cannot write /nonexistent/dir/out.csv"),
    ("--week not canonical", None, ["digest", "send", "--week", "2026-W010"], 1, "is not an ISO week"),
    ("--week with Arabic-Indic digits", None, ["digest", "send", "--week", "2026-W٠١"], 1, "is not an ISO week"),
]


def counts(factory) -> tuple[int, ...]:
    with factory() as s:
        return tuple(s.scalar(select(func.count()).select_from(model)) for model in (Person, Tip, PolicyVersion,
                                                                                      Delivery))


@pytest.fixture
def loaded_cli(cli_env: Path, capsys) -> Path:
    roster = cli_env / "good.csv"
    roster.write_text(HEADER + GOOD + "ann@school.example,Ann,teacher,,boss@school.example,,\n", encoding="utf-8")
    for step in (("content", "import", str(REPO / "content" / "social_media.yaml")), ("roster", "import", str(roster)),
                 ("policy", "import", str(REPO / "content" / "policies" / "social-media-v1.txt"),
                  "--policy", "social-media", "--version", "1")):
        assert run_cli(capsys, *step)[0] == 0
    return cli_env


@pytest.mark.parametrize(("name", "content", "argv", "code", "says"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_gets_one_clear_line_and_changes_nothing(loaded_cli, capsys, factory, name, content, argv, code,
                                                           says) -> None:
    path = loaded_cli / "input"
    if content is not None:
        path.write_bytes(content.encode("utf-8"))
    before = counts(factory)
    got, out, err = run_cli(capsys, *[a.replace("{file}", str(path)) for a in argv])
    assert got == code, err
    assert says in err and "Traceback" not in err + out
    assert counts(factory) == before


def test_a_bad_database_url_is_one_line(capsys, monkeypatch) -> None:
    monkeypatch.setenv("NUDGE_DATABASE_URL", "notaurl")
    code, out, err = run_cli(capsys, "status")
    assert code == 1 and err.strip().splitlines() == [
        "error: bad configuration: NUDGE_DATABASE_URL: not a database URL like sqlite:///nudge.db or "
        "postgresql+psycopg://host/db"]


def test_markup_in_stored_values_is_shown_as_it_is(loaded_cli, capsys, factory) -> None:
    roster = loaded_cli / "[red]team [bold].csv"
    roster.write_text(HEADER + "boss@school.example,[/] Boss,administrator,,,,\n"
                      "ann@school.example,Ann [bold],teacher,,boss@school.example,,\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "roster", "import", str(roster))
    assert code == 0 and "[red]team [bold].csv" in out, err
    code, out, err = run_cli(capsys, "status")
    assert code == 0, err
    assert "[/] Boss" in out


def test_webhook_events_out_of_range_are_rejected_and_the_rest_stored(factory, live, sendgrid_double,
                                                                      delivered) -> None:
    events = sendgrid_double.events("delivered", delivered[:2])
    events.append({**sendgrid_double.events("delivered", delivered[2:3])[0], "timestamp": 10**15})
    events.append({**sendgrid_double.events("delivered", delivered[3:4])[0], "delivery_id": 10**30})
    events.append({**sendgrid_double.events("delivered", delivered[4:5])[0], "sg_event_id": "x" * 300})
    status, answer = sendgrid_double.post_events(f"{live.url}/webhooks/sendgrid", events)
    assert status == 200 and answer["stored"] == 2 and sorted(r["index"] for r in answer["rejected"]) == [2, 3, 4]
    unsigned = httpx.post(f"{live.url}/webhooks/sendgrid", content=json.dumps(events).encode(), headers={
        "X-Twilio-Email-Event-Webhook-Signature": "abc", "X-Twilio-Email-Event-Webhook-Timestamp": "9" * 20})
    assert unsigned.status_code == 403


def test_out_of_range_ids_in_admin_urls_are_404(factory, settings) -> None:
    from service.web.app import create_app

    admin = settings.model_copy(update={"admin_token": SecretStr(ADMIN_TOKEN), "secret_key": SecretStr("k")})
    with LiveServer(create_app(admin, factory)) as server, \
            httpx.Client(base_url=server.url, follow_redirects=True) as client:
        assert client.post("/admin/login", data={"token": ADMIN_TOKEN}).status_code == 200
        for url in ("/admin/people/99999999999999999999999", "/admin/teams/2147483648", "/admin/notices/0"):
            assert client.get(url).status_code == 404, url


from tests.test_webhook import delivered  # noqa: E402,F401 - the fixture of delivered digests
