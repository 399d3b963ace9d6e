"""One bad message never stops, repeats or loses the rest: driven through the CLI and real channels."""

from pathlib import Path

import pytest
from sqlalchemy import func, select

from service.models import Delivery, Person
from tests.conftest import REPO
from tests.helpers import run_cli
from tests.test_smtp import smtp_server  # noqa: F401 - the aiosmtpd fixture

HEADER = "email,name,role,department,supervisor_email,timezone,canvas_user_id\n"
WEEK = "2026-W37"


def roster(tmp_path: Path, *lines: str) -> Path:
    path = tmp_path / "roster.csv"
    people = [f"p{i}@school.example,Person {i},teacher,,,," for i in range(6)]
    path.write_text(HEADER + "\n".join([*people[:3], *lines, *people[3:]]) + "\n", encoding="utf-8")
    return path


def load(capsys, path: Path) -> None:
    for step in (("content", "import", str(REPO / "content" / "social_media.yaml")),
                 ("policy", "import", str(REPO / "content" / "policies" / "social-media-v1.txt"),
                  "--policy", "social-media", "--version", "1"),
                 ("roster", "import", str(path))):
        code, _, err = run_cli(capsys, *step)
        assert code == 0, err


def outcomes(factory) -> dict[str, tuple[str, str | None, int]]:
    with factory() as s:
        return {email: (status, error, attempts) for email, status, error, attempts in s.execute(
            select(Person.email, Delivery.status, Delivery.last_error, Delivery.attempts).join(Person))}


def test_a_non_ascii_address_fails_alone_on_smtp_without_smtputf8(cli_env, capsys, monkeypatch, factory,
                                                                   smtp_server) -> None:  # noqa: F811
    collector, port = smtp_server
    monkeypatch.setenv("NUDGE_EMAIL_BACKEND", "smtp")
    monkeypatch.setenv("NUDGE_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("NUDGE_SMTP_PORT", str(port))
    load(capsys, roster(cli_env, "zoë@school.example,Zoë,teacher,,,,"))
    code, out, err = run_cli(capsys, "digest", "send", "--week", WEEK)
    assert code == 0, err
    results = outcomes(factory)
    status, error, attempts = results.pop("zoë@school.example")
    assert status == "failed" and "SMTPUTF8" in error and attempts == 1
    assert {r[0] for r in results.values()} == {"sent"} and len(collector.messages) == 6
    assert "sent 6" in out and "failed 1" in out


def test_the_roster_refuses_a_line_break_in_a_name(cli_env, capsys, factory) -> None:
    load(capsys, roster(cli_env))
    bad = roster(cli_env, '"x@school.example","Evil\r\nBcc: victim@evil.example",teacher,,,,')
    code, out, err = run_cli(capsys, "roster", "import", str(bad))
    assert code == 1 and "name holds a control character" in err and "nothing was written" in err
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Person)) == 6


def test_the_outbox_channel_fails_one_unbuildable_message_and_writes_the_rest(settings) -> None:
    """Should a message the email library refuses reach a channel anyway, it fails alone."""
    from service.channels import Message, Skeleton
    from service.channels.outbox import OutboxChannel

    skeleton = Skeleton(subject="Hello", html="<p>hi</p>", text="hi")
    names = ["Ann", "Evil\r\nBcc: victim@evil.example", "Bob"]
    batch = [Message(i, "notice", f"p{i}@school.example", name, skeleton) for i, name in enumerate(names, 1)]
    results = OutboxChannel(settings).send(batch)
    assert [r.status for r in results] == ["sent", "failed", "sent"]
    assert "line break" in results[1].error
    files = list((Path(settings.outbox_dir) / "notice").glob("*.eml"))
    assert len(files) == 2 and not any(b"victim@evil" in f.read_bytes() for f in files)


def test_a_refused_sendgrid_key_pauses_email_and_a_fixed_key_sends(cli_env, capsys, monkeypatch, factory,
                                                                  sendgrid_double) -> None:
    monkeypatch.setenv("NUDGE_EMAIL_BACKEND", "sendgrid")
    monkeypatch.setenv("NUDGE_SENDGRID_HOST", sendgrid_double.url)
    monkeypatch.setenv("SENDGRID_API_KEY", "SG.wrong")
    load(capsys, roster(cli_env))
    code, out, err = run_cli(capsys, "digest", "send", "--week", WEEK)
    assert code == 0, err
    assert "Email is paused" in err and "SENDGRID_API_KEY" in err
    assert {r[0] for r in outcomes(factory).values()} == {"pending"}  # waiting, not failed
    assert {r[2] for r in outcomes(factory).values()} == {0}  # a paused send uses no attempt
    code, out, err = run_cli(capsys, "status")
    assert code == 0 and "Email is paused" in err
    monkeypatch.setenv("SENDGRID_API_KEY", sendgrid_double.api_key)
    code, out, err = run_cli(capsys, "dispatch")
    assert code == 0, err
    assert {r[0] for r in outcomes(factory).values()} == {"sent"} and "paused" not in err
    assert len(sendgrid_double.emails) == 6


@pytest.mark.parametrize("week", ["2026-W010", "2026-W1", "2026-W٠١", "2026-W54", "2026-w10", " 2026-W10"])
def test_only_canonical_week_keys(cli_env, capsys, factory, week) -> None:
    load(capsys, roster(cli_env))
    code, out, err = run_cli(capsys, "digest", "send", "--week", week)
    assert code == 1 and "is not an ISO week like 2026-W48" in err and len(err.strip().splitlines()) == 1
    with factory() as s:
        assert s.scalar(select(func.count()).select_from(Delivery)) == 0


def test_a_dry_run_writes_nothing_not_even_canvas_posts(cli_env, capsys, monkeypatch, factory) -> None:
    from service.doubles.canvas import CanvasDouble

    with CanvasDouble() as canvas:
        canvas.add_course(101, "Staff")
        monkeypatch.setenv("CANVAS_API_URL", canvas.url)
        monkeypatch.setenv("CANVAS_API_KEY", canvas.token)
        monkeypatch.setenv("NUDGE_CANVAS_COURSE_IDS", "101")
        load(capsys, roster(cli_env))
        code, out, err = run_cli(capsys, "digest", "send", "--week", "2026-W51", "--dry-run")
        assert code == 0 and "would compose 6 digest(s)" in out
        with factory() as s:
            assert s.scalar(select(func.count()).select_from(Delivery)) == 0
        assert run_cli(capsys, "dispatch")[0] == 0
        assert canvas.announcements() == []  # nothing was left behind to post later
