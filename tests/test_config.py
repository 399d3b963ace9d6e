import pytest

from service.config import ConfigError, load_settings


def test_defaults_match_the_design(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NUDGE_DATABASE_URL", "NUDGE_EMAIL_BACKEND", "NUDGE_TIMEZONE", "NUDGE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.database_url == "sqlite:///nudge.db"
    assert settings.email_backend == "outbox"
    assert settings.outbox_dir == "outbox"
    assert settings.smtp_host == "localhost" and settings.smtp_port == 1025
    assert settings.base_url == "http://localhost:8000"
    assert settings.timezone == "America/Chicago"
    assert settings.from_email == "nudge@localhost"
    assert settings.canvas_enabled is False

NEW, OLD = "new-" + "n" * 32, "old-" + "o" * 32


def test_every_design_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "NUDGE_DATABASE_URL": "sqlite:///x.db",
        "NUDGE_EMAIL_BACKEND": "sendgrid",
        "NUDGE_OUTBOX_DIR": "/tmp/out",
        "SENDGRID_API_KEY": "SG.key",
        "NUDGE_SENDGRID_HOST": "http://127.0.0.1:9000",
        "SENDGRID_WEBHOOK_PUBLIC_KEY": "MFkw",
        "NUDGE_SMTP_HOST": "mail",
        "NUDGE_SMTP_PORT": "2525",
        "NUDGE_SMTP_USER": "u",
        "NUDGE_SMTP_PASSWORD": "p",
        "NUDGE_SMTP_STARTTLS": "true",
        "CANVAS_API_URL": "http://canvas",
        "CANVAS_API_KEY": "ck",
        "NUDGE_CANVAS_COURSE_IDS": "101, 102",
        "NUDGE_SECRET_KEY": f"{NEW},{OLD}",  # a deployment's keys: 32 bytes at least
        "NUDGE_BASE_URL": "https://nudge.example.org/",
        "NUDGE_ADMIN_TOKEN": "admin",
        "NUDGE_TIMEZONE": "Europe/London",
        "NUDGE_ADMIN_EMAIL": "it@example.org",
        "NUDGE_FROM_EMAIL": "tips@example.org",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    s = load_settings()
    assert s.email_backend == "sendgrid" and s.outbox_dir == "/tmp/out"
    assert s.sendgrid_api_key is not None and s.sendgrid_api_key.get_secret_value() == "SG.key"
    assert s.sendgrid_host == "http://127.0.0.1:9000"
    assert s.sendgrid_webhook_public_key == "MFkw"
    assert (s.smtp_host, s.smtp_port, s.smtp_user, s.smtp_starttls) == ("mail", 2525, "u", True)
    assert s.canvas_course_ids == [101, 102] and s.canvas_enabled
    assert s.secret_keys == [NEW, OLD]
    assert s.base_url == "https://nudge.example.org"
    assert s.timezone == "Europe/London"
    assert (s.admin_email, s.from_email) == ("it@example.org", "tips@example.org")
    # secrets never show up in a repr (and so not in a log line)
    assert "SG.key" not in repr(s) and "admin" not in repr(s).replace("admin_", "")


@pytest.mark.parametrize(
    "name,value,expected",
    [
        ("NUDGE_TIMEZONE", "Mars/Olympus", "NUDGE_TIMEZONE: unknown timezone 'Mars/Olympus'"),
        ("NUDGE_EMAIL_BACKEND", "pigeon", "NUDGE_EMAIL_BACKEND"),
        ("NUDGE_SMTP_PORT", "seventy", "NUDGE_SMTP_PORT"),
        ("NUDGE_CANVAS_COURSE_IDS", "101,abc", "NUDGE_CANVAS_COURSE_IDS: course id 'abc' is not a number"),
        ("NUDGE_BASE_URL", "nudge.example.org", "NUDGE_BASE_URL"),
    ],
)
def test_a_bad_value_gives_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_cli_reports_bad_config_without_traceback(monkeypatch, capsys) -> None:
    from tests.helpers import run_cli

    monkeypatch.setenv("NUDGE_TIMEZONE", "Nowhere/Land")
    code, out, err = run_cli(capsys, "status")
    assert code == 1
    assert "NUDGE_TIMEZONE: unknown timezone 'Nowhere/Land'" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_canvas_role_sections_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NUDGE_CANVAS_ROLE_SECTIONS", "Coach:12,13; teacher:11")
    assert load_settings().canvas_role_sections == {"coach": [12, 13], "teacher": [11]}
    monkeypatch.setenv("NUDGE_CANVAS_ROLE_SECTIONS", "coach:twelve")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "NUDGE_CANVAS_ROLE_SECTIONS: 'coach:twelve' is not role:section_id,section_id" in str(info.value)
