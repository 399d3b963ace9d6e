import subprocess
import sys

from tests.conftest import REPO
from tests.helpers import run_cli

CONTENT = REPO / "content"


def test_demo_sequence_and_status(cli_env, capsys) -> None:
    steps = [
        ("content", "import", str(CONTENT / "social_media.yaml")),
        ("policy", "import", str(CONTENT / "policies" / "social-media-v1.txt"), "--policy", "social-media", "--version", "1"),
        ("roster", "import", str(CONTENT / "sample_roster.csv")),
    ]
    for step in steps:
        code, out, err = run_cli(capsys, *step)
        assert code == 0, err
    code, out, _ = run_cli(capsys, "status")
    assert code == 0
    assert "People by role" in out and "teacher" in out and "coach" in out
    assert "Teams" in out and "María Okafor" in out
    assert "Tips by section" in out and "Employee-Student Relations" in out
    assert "Policies" in out and "social-media" in out
    # reimporting the same policy text stores nothing
    code, out, _ = run_cli(capsys, *steps[1][:-1], "2")
    assert code == 0 and "identical to version 1" in out


def test_usage_errors_exit_non_zero(cli_env, capsys) -> None:
    code, _, err = run_cli(capsys, "roster", "import")
    assert code == 2 and "Missing argument" in err
    code, _, err = run_cli(capsys, "policy", "import", str(CONTENT / "policies" / "social-media-v1.txt"),
                           "--policy", "brand-new", "--version", "1")
    assert code == 1 and "give --title" in err


def test_python_dash_m_service_runs_the_cli() -> None:
    proc = subprocess.run([sys.executable, "-m", "service", "--help"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0
    for command in ("db", "status", "roster", "content", "policy"):
        assert command in proc.stdout


def test_digest_send_preview_and_dispatch(cli_env, capsys, monkeypatch) -> None:
    for step in (("content", "import", str(CONTENT / "social_media.yaml")),
                 ("policy", "import", str(CONTENT / "policies" / "social-media-v1.txt"), "--policy", "social-media",
                  "--version", "1"),
                 ("roster", "import", str(CONTENT / "sample_roster.csv"))):
        assert run_cli(capsys, *step)[0] == 0
    code, out, _ = run_cli(capsys, "digest", "send", "--week", "2026-W50", "--dry-run")
    assert code == 0 and "would compose 40 digest(s)" in out
    code, out, _ = run_cli(capsys, "digest", "send", "--week", "2026-W50")
    assert code == 0 and "composed 40 digest(s)" in out and "sent 40" in out
    assert len(list((cli_env / "outbox" / "digest").glob("*.eml"))) == 40
    code, out, _ = run_cli(capsys, "digest", "send", "--week", "2026-W50")
    assert code == 0 and "composed 0 digest(s)" in out and "40 already composed" in out
    target = cli_env / "preview.html"
    code, out, err = run_cli(capsys, "digest", "preview", "Sam.Whitfield@example.org", "--week", "2026-W50",
                             "--out", str(target))
    assert code == 0 and "is composed (status: sent)" in err
    assert "Got it" in target.read_text(encoding="utf-8")
    code, out, _ = run_cli(capsys, "dispatch")
    assert code == 0 and "sent 0" in out


def test_digest_bad_arguments(cli_env, capsys) -> None:
    code, _, err = run_cli(capsys, "digest", "send", "--week", "2026-48")
    assert code == 1 and "is not an ISO week like 2026-W48" in err
    code, _, err = run_cli(capsys, "digest", "preview", "nobody@example.org")
    assert code == 1 and "no person with email 'nobody@example.org'" in err


def test_winter_break_week_sends_nothing(cli_env, capsys) -> None:
    for step in (("content", "import", str(CONTENT / "social_media.yaml")),
                 ("policy", "import", str(CONTENT / "policies" / "social-media-v1.txt"), "--policy", "social-media",
                  "--version", "1"),
                 ("roster", "import", str(CONTENT / "sample_roster.csv"))):
        assert run_cli(capsys, *step)[0] == 0
    code, out, _ = run_cli(capsys, "digest", "send", "--week", "2026-W53")
    assert code == 0 and "composed 0 digest(s)" in out and "Winter break 2026" in out


def test_status_lists_undeliverable_people_and_admins_can_clear_them(cli_env, capsys, session) -> None:
    from service.models import Person, utcnow

    assert run_cli(capsys, "roster", "import", str(CONTENT / "sample_roster.csv"))[0] == 0
    person = session.query(Person).filter_by(email="sam.whitfield@example.org").one()
    person.undeliverable_since, person.undeliverable_reason = utcnow(), "bounce: 550 user unknown"
    session.commit()
    code, out, _ = run_cli(capsys, "status")
    assert "Undeliverable" in out and "sam.whitfield@example.org" in out
    code, out, _ = run_cli(capsys, "roster", "clear-undeliverable", "Sam.Whitfield@example.org")
    assert code == 0
    session.expire_all()
    assert person.undeliverable_since is None
    assert run_cli(capsys, "roster", "clear-undeliverable", "nobody@example.org")[0] == 1
